// Package tracee is bpbench's own target program for real debug registers.
//
// The tracee is a child mode (package internal/child) of any binary that
// links this package and calls child.Main at its start (every hwregs test
// binary, the bpbench CLI): started with the environment from Env, a copy
// of the binary starts the requested number of worker threads, reports
// their thread ids and the addresses of the watched variables to the
// tracer, and then serves commands. No C toolchain is needed at run time.
//
// Protocol. The tracer starts the binary with the environment from Env and
// two pipes: fd 3 (ReadyFD) is read by the tracee, fd 4 (HelloFD) is
// written by it. The tracee writes a Hello, the tracer seizes every worker
// thread and writes one byte to fd 3, and every worker then stops itself by
// sending SIGTRAP to its own thread (tgkill), which a ptrace tracer sees as
// a signal-delivery stop with si_code SI_TKILL. From then on a worker is
// either running a command or stopped that way: the tracer writes the next
// Command into the tracee's memory at Hello.CtlAddr while the workers are
// stopped and resumes them; each runs the command, adds its operations to
// its own counter and stops itself again. When fd 3 reaches end of file
// (the tracer closed it or died) the tracee exits.
//
// The worker loops neither allocate nor make system calls, and the tracee
// runs with GODEBUG=asyncpreemptoff=1 and GOGC=off so the Go runtime sends
// no signals to traced threads and never needs to stop the world while a
// tracer holds a worker stopped.
package tracee

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/internal/enum"
)

// File descriptors the tracer passes to the tracee (os/exec ExtraFiles order).
const (
	ReadyFD = 3 // tracee reads: one byte once every worker is seized; EOF ends it
	HelloFD = 4 // tracee writes: the Hello
)

// MaxThreads bounds the number of worker threads one tracee has, spare
// ones included.
const MaxThreads = 4096

// CheckpointSignal is the signal a worker sends itself at the end of a
// burst when Command.Checkpoint is set: a ptrace stop the tracer
// suppresses, standing for the frequent stops (system calls, signals) of a
// real traced thread, at which a lazy debugger writes pending registers.
// Nothing in the Go runtime uses it.
const CheckpointSignal = unix.SIGSTKFLT

// Spawn protocol bytes on ReadyFD, after the first release byte.
const (
	// SpawnRequest is followed by a little-endian uint32 count: start that
	// many more workers and report them on HelloFD (a SpawnReport).
	SpawnRequest = 'S'
	// SpawnRelease lets the workers of the last report run: each parks
	// itself, as the first workers do.
	SpawnRelease = 'R'
)

// NumVars is the number of watched variables per thread and shared ones,
// one for each debug register.
const NumVars = 4

// Op is what a worker does in a command.
type Op uint64

const (
	// OpNone does nothing: the workers stop again at once.
	OpNone Op = iota
	// OpWrite stores to the watched variable.
	OpWrite
	// OpRead loads the watched variable.
	OpRead
	// OpExec calls the function at Hello.FuncAddr.
	OpExec
	// OpPingPong pairs worker 2k with worker 2k+1: they hand a token back
	// and forth through a futex word, Count round trips (one operation is
	// one round trip, two hand-offs; Count must be nonzero; an unpaired
	// last worker does nothing). With both threads on one CPU every
	// hand-off is a context switch, the shape of `perf bench sched pipe`.
	// The watched variables are not touched.
	OpPingPong
	numOps
)

// opNames are the names of the Op values, for String.
var opNames = [...]string{OpNone: "none", OpWrite: "write", OpRead: "read", OpExec: "exec", OpPingPong: "pingpong"}

// String returns "none", "write", "read", "exec" or "pingpong".
func (o Op) String() string { return enum.Name("Op", opNames[:], o) }

// Command tells every worker what to do until it next stops. Its memory
// image (Ctl) lives in the tracee at Hello.CtlAddr.
type Command struct {
	Op Op
	// Var selects the watched variable, 0 <= Var < NumVars.
	Var int
	// Count is the number of operations per worker; 0 runs until the
	// tracer sets Ctl.Halt.
	Count uint64
	// Shared selects the process-wide variables instead of each worker's own.
	Shared bool
	// Burst, when nonzero, splits the run into bursts of Burst operations;
	// after each burst the worker stops itself (Checkpoint) and/or sleeps
	// (Pause). Workers that sleep between bursts let a tracer stop
	// thousands of them quickly on a few CPUs: a sleeping thread stops at
	// once, a spinning one only when the scheduler next runs it.
	Burst uint64
	// Pause is the sleep after each burst (needs Burst).
	Pause time.Duration
	// Checkpoint makes each worker stop itself with CheckpointSignal after
	// each burst (needs Burst).
	Checkpoint bool
}

// Validate reports a command the tracee cannot run, naming the bad field.
func (c Command) Validate() error {
	if c.Op >= numOps {
		return fmt.Errorf("tracee: Command.Op = %d: unknown op", uint64(c.Op))
	}
	if c.Var < 0 || c.Var >= NumVars {
		return fmt.Errorf("tracee: Command.Var = %d out of range [0,%d)", c.Var, NumVars)
	}
	if c.Op == OpPingPong && (c.Count == 0 || c.Burst != 0) {
		return fmt.Errorf("tracee: Command.Op = pingpong with Count = %d, Burst = %d: want a nonzero Count and no bursts", c.Count, c.Burst)
	}
	if c.Pause < 0 {
		return fmt.Errorf("tracee: Command.Pause = %v is negative", c.Pause)
	}
	if c.Burst == 0 && (c.Pause != 0 || c.Checkpoint) {
		return fmt.Errorf("tracee: Command.Burst = 0 with Pause = %v, Checkpoint = %v: pauses and checkpoints come after bursts", c.Pause, c.Checkpoint)
	}
	return nil
}

// Ctl is the command block in the tracee's memory. The tracer writes it
// with process_vm_writev; Halt may be written while workers run.
type Ctl struct {
	Gen    uint64 // incremented by the tracer for every command
	Op     uint64
	Var    uint64
	Count  uint64
	Shared uint64
	Halt   uint64 // nonzero ends a Count == 0 command
	Burst  uint64
	Pause  uint64 // nanoseconds
	Check  uint64 // nonzero: checkpoint after each burst
}

// CtlSize is the size of Ctl in bytes.
const CtlSize = int(unsafe.Sizeof(Ctl{}))

// Encode returns the memory image of c for generation gen (Halt clear).
func (c Command) Encode(gen uint64) Ctl {
	s := uint64(0)
	if c.Shared {
		s = 1
	}
	ck := uint64(0)
	if c.Checkpoint {
		ck = 1
	}
	return Ctl{Gen: gen, Op: uint64(c.Op), Var: uint64(c.Var), Count: c.Count, Shared: s,
		Burst: c.Burst, Pause: uint64(c.Pause.Nanoseconds()), Check: ck}
}

// Block is one worker's memory: its watched variables and counters, on
// cache lines of their own so that workers do not slow each other down.
type Block struct {
	Vars [NumVars]uint64 // the worker's own watched variables
	Ops  uint64          // operations performed, cumulative
	Tid  uint64          // the worker's thread id
	_    [128 - (NumVars+2)*8]byte
}

// BlockSize is the size of Block in bytes.
const BlockSize = int(unsafe.Sizeof(Block{}))

// OpsOffset is the offset of Block.Ops.
const OpsOffset = int(unsafe.Offsetof(Block{}.Ops))

// Hello is what the tracee reports once its workers run.
type Hello struct {
	Pid        int
	Tids       []int  // worker thread ids, in worker order
	CtlAddr    uint64 // address of the Ctl block
	BlocksAddr uint64 // address of worker 0's Block; worker i's is BlocksAddr + i*BlockSize
	SharedAddr uint64 // address of the NumVars shared watched variables
	FuncAddr   uint64 // entry of the function OpExec calls
	// Spare is how many more workers Spawn can start; their Blocks follow
	// the first workers'.
	Spare int
}

// VarAddr returns the address of watched variable v of worker i.
func (h *Hello) VarAddr(i, v int) uint64 {
	return h.BlocksAddr + uint64(i*BlockSize+8*v)
}

// SharedVarAddr returns the address of shared watched variable v.
func (h *Hello) SharedVarAddr(v int) uint64 { return h.SharedAddr + uint64(8*v) }

// OpsAddr returns the address of worker i's operation counter.
func (h *Hello) OpsAddr(i int) uint64 { return h.BlocksAddr + uint64(i*BlockSize+OpsOffset) }

const helloMagic = 0x6270626e63687472 // "bpbnchtr"

// ErrBadHello means the tracee's report could not be decoded.
var ErrBadHello = errors.New("tracee: malformed hello")

// ReadHello decodes the tracee's report from r.
func ReadHello(r io.Reader) (*Hello, error) {
	var hdr [8]uint64
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrBadHello, err)
	}
	if hdr[0] != helloMagic {
		return nil, fmt.Errorf("%w: magic %#x", ErrBadHello, hdr[0])
	}
	n := hdr[2]
	if n < 1 || n > MaxThreads {
		return nil, fmt.Errorf("%w: %d threads", ErrBadHello, n)
	}
	tids := make([]uint64, n)
	if err := binary.Read(r, binary.LittleEndian, tids); err != nil {
		return nil, fmt.Errorf("%w: tids: %w", ErrBadHello, err)
	}
	if hdr[7] > MaxThreads-n {
		return nil, fmt.Errorf("%w: %d spare threads with %d", ErrBadHello, hdr[7], n)
	}
	h := &Hello{Pid: int(hdr[1]), CtlAddr: hdr[3], BlocksAddr: hdr[4], SharedAddr: hdr[5], FuncAddr: hdr[6], Spare: int(hdr[7])}
	h.Tids = make([]int, n)
	for i, t := range tids {
		h.Tids[i] = int(t)
	}
	return h, nil
}

func writeHello(w io.Writer, h *Hello) error {
	buf := []uint64{helloMagic, uint64(h.Pid), uint64(len(h.Tids)), h.CtlAddr, h.BlocksAddr, h.SharedAddr, h.FuncAddr, uint64(h.Spare)}
	for _, t := range h.Tids {
		buf = append(buf, uint64(t))
	}
	return binary.Write(w, binary.LittleEndian, buf)
}

const spawnMagic = 0x6270626e63737077 // "bpbncspw"

// ReadSpawnReport decodes the tids of newly started workers, in worker
// order, from r.
func ReadSpawnReport(r io.Reader) ([]int, error) {
	var hdr [2]uint64
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: spawn report: %w", ErrBadHello, err)
	}
	if hdr[0] != spawnMagic || hdr[1] > MaxThreads {
		return nil, fmt.Errorf("%w: spawn report header %#x, %d threads", ErrBadHello, hdr[0], hdr[1])
	}
	tids := make([]uint64, hdr[1])
	if err := binary.Read(r, binary.LittleEndian, tids); err != nil {
		return nil, fmt.Errorf("%w: spawn report tids: %w", ErrBadHello, err)
	}
	out := make([]int, len(tids))
	for i, t := range tids {
		out[i] = int(t)
	}
	return out, nil
}

// The tracee's watched memory. Globals so that their addresses are fixed
// before any worker starts.
var (
	ctl    Ctl
	_      [64]byte // keep ctl and shared on different cache lines
	shared [NumVars]uint64
	blocks []Block
	sink   uint64
	turns  []turn // OpPingPong's futex words, one per pair of workers
)

// turn is one pair's futex word, on a cache line of its own: 0 while the
// even worker holds the token, 1 while the odd one does.
type turn struct {
	v uint32
	_ [60]byte
}

// ExecTarget is the function OpExec calls; an exec breakpoint at its entry
// traps once per call. It must stay a real call, hence noinline.
//
//go:noinline
//go:norace
func ExecTarget(p *uint64) { *p++ }

// serve runs the tracee; it returns when the tracer goes away.
func serve(n, spare int) error {
	ready := os.NewFile(ReadyFD, "ready")
	hello := os.NewFile(HelloFD, "hello")
	if ready == nil || hello == nil {
		return fmt.Errorf("fds %d and %d must be the tracer's pipes", ReadyFD, HelloFD)
	}
	blocks = make([]Block, n+spare)
	turns = make([]turn, (n+spare+1)/2)
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	for i := range blocks[:n] {
		go worker(&blocks[i], &started, release, 0)
	}
	started.Wait()
	h := &Hello{
		Pid:        os.Getpid(),
		CtlAddr:    uint64(uintptr(unsafe.Pointer(&ctl))),
		BlocksAddr: uint64(uintptr(unsafe.Pointer(&blocks[0]))),
		SharedAddr: uint64(uintptr(unsafe.Pointer(&shared[0]))),
		FuncAddr:   uint64(reflect.ValueOf(ExecTarget).Pointer()),
		Spare:      spare,
	}
	for i := range blocks[:n] {
		h.Tids = append(h.Tids, int(blocks[i].Tid))
	}
	if err := writeHello(hello, h); err != nil {
		return fmt.Errorf("writing hello: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(ready, b[:]); err != nil {
		return nil // the tracer gave up before seizing
	}
	close(release)
	// Serve spawn requests until the tracer closes its end; exiting then
	// kills the workers.
	live := n
	var spawned chan struct{}
	for {
		if _, err := io.ReadFull(ready, b[:]); err != nil {
			return nil
		}
		switch b[0] {
		case SpawnRequest:
			var cnt [4]byte
			if _, err := io.ReadFull(ready, cnt[:]); err != nil {
				return nil
			}
			k := int(binary.LittleEndian.Uint32(cnt[:]))
			if k > len(blocks)-live {
				return fmt.Errorf("spawn of %d workers: only %d spare left", k, len(blocks)-live)
			}
			spawned = make(chan struct{})
			var st sync.WaitGroup
			st.Add(k)
			// Workers started now must not run the command current when
			// they first park: they start at its generation.
			gen := atomic.LoadUint64(&ctl.Gen)
			for i := live; i < live+k; i++ {
				go worker(&blocks[i], &st, spawned, gen)
			}
			st.Wait()
			rep := []uint64{spawnMagic, uint64(k)}
			for i := live; i < live+k; i++ {
				rep = append(rep, blocks[i].Tid)
			}
			live += k
			if err := binary.Write(hello, binary.LittleEndian, rep); err != nil {
				return fmt.Errorf("writing spawn report: %w", err)
			}
		case SpawnRelease:
			if spawned != nil {
				close(spawned)
				spawned = nil
			}
		}
	}
}

// worker runs on its own OS thread for the life of the tracee. Once
// released it stops itself, then runs one command per resume.
func worker(blk *Block, started *sync.WaitGroup, release <-chan struct{}, last uint64) {
	runtime.LockOSThread()
	pid, tid := unix.Getpid(), unix.Gettid()
	blk.Tid = uint64(tid)
	started.Done()
	<-release
	for {
		// A traced SIGTRAP to ourselves is a stop the tracer suppresses;
		// the command to run next is in ctl when we continue.
		unix.Tgkill(pid, tid, unix.SIGTRAP)
		gen := atomic.LoadUint64(&ctl.Gen)
		if gen == last {
			continue // resumed without a new command (e.g. after an interrupt)
		}
		last = gen
		run(blk, Op(ctl.Op), int(ctl.Var), ctl.Count, ctl.Shared != 0, pid, tid)
	}
}

// run performs one command. The counter is updated with every operation so
// that a tracer stopping the worker mid-run reads an exact count, except
// when it stops between the counter update and the access. Watched
// memory is touched through the helpers below, never sync/atomic: under
// -race an atomic first probes its address, which would trap twice.
//
//go:norace
func run(blk *Block, op Op, v int, count uint64, sharedVars bool, pid, tid int) {
	if op == OpPingPong {
		pingPong(blk, count)
		return
	}
	p := &blk.Vars[v]
	if sharedVars {
		p = &shared[v]
	}
	burst, check := ctl.Burst, ctl.Check != 0
	pause := unix.NsecToTimespec(int64(ctl.Pause))
	left := burst
	for j := uint64(0); count == 0 || j < count; j++ {
		if count == 0 && atomic.LoadUint64(&ctl.Halt) != 0 {
			return
		}
		// The counter goes up just before the access, so at a trap stop
		// (after the store of a data breakpoint, before the instruction
		// of an exec breakpoint) it already counts the access that
		// trapped: a tracer that stops the thread right after resuming it
		// from a trap reads an exact count.
		switch op {
		case OpWrite:
			store(&blk.Ops, load(&blk.Ops)+1)
			store(p, j)
		case OpRead:
			store(&blk.Ops, load(&blk.Ops)+1)
			sink += load(p)
		case OpExec:
			store(&blk.Ops, load(&blk.Ops)+1)
			ExecTarget(&sink)
		default:
			return
		}
		if burst != 0 {
			if left--; left == 0 {
				left = burst
				if check {
					unix.Tgkill(pid, tid, CheckpointSignal)
				}
				if pause.Nsec != 0 || pause.Sec != 0 {
					// Interrupted by a ptrace stop it simply ends early.
					unix.Nanosleep(&pause, nil)
				}
			}
		}
	}
}

// pingPong runs count round trips with the worker's partner (OpPingPong).
// A round trip is: the even worker passes the token (word = 1, wake) and
// sleeps until it comes back; the odd one sleeps until it has the token,
// passes it back (word = 0, wake). Both leave the word at 0.
func pingPong(blk *Block, count uint64) {
	i := int((uintptr(unsafe.Pointer(blk)) - uintptr(unsafe.Pointer(&blocks[0]))) / uintptr(BlockSize))
	if i^1 >= len(blocks) || blocks[i^1].Tid == 0 {
		return // no partner
	}
	w := &turns[i/2].v
	mine, theirs := uint32(0), uint32(1) // the word's value while this worker holds the token
	if i%2 == 1 {
		mine, theirs = 1, 0
	}
	for j := uint64(0); j < count; j++ {
		for atomic.LoadUint32(w) != mine {
			futex(w, futexWait, theirs)
		}
		store(&blk.Ops, load(&blk.Ops)+1)
		atomic.StoreUint32(w, theirs)
		futex(w, futexWake, 1)
	}
	for i%2 == 0 && atomic.LoadUint32(w) != mine {
		futex(w, futexWait, theirs) // the last token coming back
	}
}

// Private futex operations (linux/futex.h), which x/sys/unix does not name.
const (
	futexWait = 0 | 128 // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
	futexWake = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
)

// futex is futex(2) with no timeout; EAGAIN and EINTR need no handling
// since callers recheck the word.
func futex(w *uint32, op int, val uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), uintptr(op), uintptr(val), 0, 0, 0)
}

// load is one 8-byte read of *p; a call, so the compiler cannot merge or
// hoist the accesses of the loop.
//
//go:noinline
//go:norace
func load(p *uint64) uint64 { return *p }

// store is one 8-byte write to *p.
//
//go:noinline
//go:norace
func store(p *uint64, v uint64) { *p = v }

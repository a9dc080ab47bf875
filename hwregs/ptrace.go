package hwregs

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/hwregs/tracee"
	"bpbench/internal/cpupin"
)

// Errors of the ptrace backend; test with errors.Is. Kernel errors are
// wrapped as well, so errors.Is(err, unix.ESRCH) works too.
var (
	// ErrWrongThread: a ptrace call was made off the tracer thread. Run it
	// inside Ptrace.Do.
	ErrWrongThread = errors.New("ptrace call off the tracer thread")
	// ErrNotStopped: the thread is running; ptrace can only change the
	// registers of a stopped thread.
	ErrNotStopped = errors.New("tracee thread is not stopped")
	// ErrTraceeGone: the tracee thread or process no longer exists.
	ErrTraceeGone = errors.New("tracee is gone")
	// ErrTracerClosed: the Ptrace backend was closed.
	ErrTracerClosed = errors.New("ptrace backend closed")
)

// NoPin is PtraceOptions.CPU for a tracer thread left unpinned.
const NoPin = -1

// PtraceOptions configures StartPtrace.
type PtraceOptions struct {
	// Threads is the number of tracee worker threads, each traced; 0 means 1.
	Threads int
	// CPU is the CPU the tracer thread is pinned to (default 0), or NoPin.
	// Unpinned, a debug-register poke varies by 20x between runs on small VMs.
	CPU int
	// Executable is the binary started as the tracee; "" means this one
	// (os.Executable), which links package tracee through hwregs.
	Executable string
	// StartTimeout bounds the tracee's start-up; 0 means 30 seconds.
	StartTimeout time.Duration
	// Spare is how many more worker threads Spawn may start later.
	Spare int
}

// ptState is where a tracee thread is, as the tracer last saw it.
type ptState uint8

const (
	ptRunning     ptState = iota
	ptParked              // stopped itself after a command (tgkill SIGTRAP)
	ptInterrupted         // stopped by PTRACE_INTERRUPT, mid-command
	ptGone
)

func (s ptState) String() string {
	return [...]string{"running", "parked", "interrupted", "gone"}[s]
}

// Ptrace is the real-kernel Backend: the debug registers of the threads of
// a tracee process (package tracee), written with one PTRACE_POKEUSER per
// register. Target{Task: i} is worker thread i; CPU targets are refused
// with ErrUnsupported, since ptrace has no CPU-bound registers.
//
// Linux only accepts ptrace calls from the thread that attached, so a
// Ptrace owns one goroutine locked to one OS thread, pinned to a CPU.
// WriteDR and ReadDR make their system call directly and must run on that
// thread, i.e. inside Do: a channel hop per call would cost more than the
// 10% over the bare syscall the backend is allowed. Off the thread they fail
// with ErrWrongThread. The other methods move to the tracer thread
// themselves.
//
// The tracee dies with the Ptrace: Close kills and reaps it, so does a panic
// or runtime.Goexit inside Do, and if the tracer process dies the kernel
// kills it (PTRACE_O_EXITKILL, Pdeathsig, and the tracee exits when its
// command pipe closes).
type Ptrace struct {
	writes atomic.Uint64

	reqs      chan func()
	quit      chan struct{}
	dead      chan struct{}
	closeOnce sync.Once
	closeErr  error

	tracerTid int
	hello     *tracee.Hello
	pid       int
	tids      []int
	index     map[int]int // tid → worker index
	state     []ptState
	wantStop  []bool
	ready     *os.File // tracee's fd 3, our write end
	helloR    *os.File
	broken    error // set once the tracee died under us
	reaped    bool

	// resumeHook runs on the tracer thread just before a worker resumes:
	// the moment a lazy debugger writes that thread's pending registers.
	resumeHook func(i int)

	gen     uint64
	baseOps []uint64
	curOps  []uint64 // Wait's buffer, reused so that a loop of Runs does not allocate per run
	opsBuf  []byte
	res     PtraceResult
	si      ptSiginfo
	peek    uint64
}

// PtraceResult is what the tracee's workers did during one command.
type PtraceResult struct {
	// Ops is the number of operations each worker performed, by its own count.
	Ops []uint64
	// Traps counts, per worker, hardware breakpoint traps by the DR6 slot
	// bits (B0-B3) the kernel reported.
	Traps [][NumSlots]uint64
	// Stops is the number of hardware-breakpoint stops per worker (one stop
	// may set several DR6 bits).
	Stops []uint64
	// Checkpoints counts, per worker, the CheckpointSignal stops of bursty
	// commands (tracee.Command.Checkpoint); they are suppressed.
	Checkpoints []uint64
	// OtherTraps counts SIGTRAPs that were neither breakpoints nor a
	// worker parking itself; they are suppressed.
	OtherTraps uint64
	// Signals counts other signals the tracer passed on to the tracee.
	Signals uint64
}

// TotalOps returns the operations of all workers.
func (r *PtraceResult) TotalOps() uint64 {
	var n uint64
	for _, v := range r.Ops {
		n += v
	}
	return n
}

// TotalTraps returns the traps of all workers on slot i.
func (r *PtraceResult) TotalTraps(i int) uint64 {
	var n uint64
	for _, t := range r.Traps {
		n += t[i]
	}
	return n
}

// ptrace requests and constants that x/sys/unix does not name.
const (
	ptWNothread    = 0x20000000 // __WNOTHREAD
	ptTrapHwbkpt   = 4          // si_code TRAP_HWBKPT
	ptSITkill      = -6         // si_code SI_TKILL
	ptDebugRegBase = 848        // offsetof(struct user, u_debugreg) on amd64
)

// ptSiginfo is the prefix of siginfo_t the tracer reads: for SI_TKILL,
// si_pid follows the three ints and padding.
type ptSiginfo struct {
	Signo, Errno, Code, _ int32
	Pid, UID              int32
	_                     [104]byte
}

// StartPtrace starts a tracee with opts.Threads worker threads and traces
// every one of them; on return all workers are stopped. Without permission
// to trace (no CAP_SYS_PTRACE, Yama), the error wraps unix.EPERM.
func StartPtrace(opts PtraceOptions) (*Ptrace, error) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("hwregs: ptrace backend on %s/%s: %w (it needs linux/amd64)", runtime.GOOS, runtime.GOARCH, ErrUnsupported)
	}
	if opts.Threads == 0 {
		opts.Threads = 1
	}
	if opts.Spare < 0 || opts.Spare > tracee.MaxThreads-max(opts.Threads, 0) {
		return nil, fmt.Errorf("%w: PtraceOptions.Spare = %d out of range [0,%d]", alloc.ErrInvalid, opts.Spare, tracee.MaxThreads-max(opts.Threads, 0))
	}
	if opts.Threads < 0 || opts.Threads > tracee.MaxThreads {
		return nil, fmt.Errorf("%w: PtraceOptions.Threads = %d out of range [1,%d]", alloc.ErrInvalid, opts.Threads, tracee.MaxThreads)
	}
	if opts.CPU < NoPin || opts.CPU >= runtime.NumCPU() {
		return nil, fmt.Errorf("%w: PtraceOptions.CPU = %d out of range [0,%d) (or NoPin = -1)", alloc.ErrInvalid, opts.CPU, runtime.NumCPU())
	}
	if opts.StartTimeout < 0 {
		return nil, fmt.Errorf("%w: PtraceOptions.StartTimeout = %v is negative", alloc.ErrInvalid, opts.StartTimeout)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	p := &Ptrace{
		reqs:  make(chan func()),
		quit:  make(chan struct{}),
		dead:  make(chan struct{}),
		index: map[int]int{},
	}
	started := make(chan error, 1)
	go p.loop(opts, started)
	if err := <-started; err != nil {
		<-p.dead
		return nil, err
	}
	return p, nil
}

// loop is the tracer goroutine. It never unlocks its OS thread, so the
// thread exits with it: the tracee's Pdeathsig and PTRACE_O_EXITKILL are
// tied to that thread, and both must only fire once the tracee is reaped.
func (p *Ptrace) loop(opts PtraceOptions, started chan<- error) {
	runtime.LockOSThread()
	defer close(p.dead)
	defer p.shutdown()
	p.tracerTid = unix.Gettid()
	if err := p.setup(opts); err != nil {
		started <- err
		return
	}
	started <- nil
	for {
		select {
		case f := <-p.reqs:
			f()
		case <-p.quit:
			return
		}
	}
}

func (p *Ptrace) setup(opts PtraceOptions) error {
	if opts.CPU != NoPin {
		// Never unpinned: the thread ends with the tracer goroutine.
		if _, err := cpupin.Pin(opts.CPU); err != nil {
			return fmt.Errorf("hwregs: pinning the tracer thread: %w", err)
		}
	}
	exe := opts.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("hwregs: finding the tracee binary: %w", err)
		}
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("hwregs: tracee pipe: %w", err)
	}
	p.ready = readyW
	helloR, helloW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		return fmt.Errorf("hwregs: tracee pipe: %w", err)
	}
	p.helloR = helloR
	null, err := os.Open(os.DevNull)
	if err != nil {
		readyR.Close()
		helloW.Close()
		return fmt.Errorf("hwregs: %w", err)
	}
	pid, err := syscall.ForkExec(exe, []string{exe}, &syscall.ProcAttr{
		Env:   ptTraceeEnv(opts.Threads, opts.Spare),
		Files: []uintptr{null.Fd(), os.Stderr.Fd(), os.Stderr.Fd(), readyR.Fd(), helloW.Fd()},
		// Own process group: a terminal's SIGINT reaches the tracer, not the
		// tracee, whose death then follows the tracer's.
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	})
	null.Close()
	readyR.Close()
	helloW.Close()
	if err != nil {
		return fmt.Errorf("hwregs: starting tracee %s: %w", exe, err)
	}
	p.pid = pid
	helloR.SetReadDeadline(time.Now().Add(opts.StartTimeout))
	h, err := tracee.ReadHello(helloR)
	if err != nil {
		return fmt.Errorf("hwregs: tracee %s (pid %d) did not report: %w", exe, pid, err)
	}
	if h.Pid != pid || len(h.Tids) != opts.Threads || h.Spare != opts.Spare {
		return fmt.Errorf("hwregs: tracee reported pid %d with %d+%d threads, want pid %d with %d+%d", h.Pid, len(h.Tids), h.Spare, pid, opts.Threads, opts.Spare)
	}
	p.hello = h
	tids := h.Tids
	h.Tids = nil
	if err := p.seize(tids); err != nil {
		return err
	}
	if _, err := p.ready.Write([]byte{1}); err != nil {
		return fmt.Errorf("hwregs: releasing tracee workers: %w", err)
	}
	// Every worker parks itself once released.
	if err := p.waitParked(); err != nil {
		return fmt.Errorf("hwregs: waiting for tracee workers to stop: %w", err)
	}
	return nil
}

// seize traces new worker threads and grows the per-worker state for them.
// It runs on the tracer thread; the workers must not have been released
// yet, so that each is traced before it first parks.
func (p *Ptrace) seize(tids []int) error {
	n := len(p.tids) + len(tids)
	p.opsBuf = make([]byte, n*tracee.BlockSize)
	for _, tid := range tids {
		i := len(p.tids)
		_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(tid), 0, unix.PTRACE_O_EXITKILL, 0, 0)
		if e != 0 {
			return fmt.Errorf("hwregs: PTRACE_SEIZE of tracee thread %d (tid %d): %w", i, tid, e)
		}
		p.index[tid] = i
		p.tids = append(p.tids, tid)
		p.hello.Tids = append(p.hello.Tids, tid)
		// A thread added mid-way is parked before it ever ran a command,
		// so ptParked would be right too; ptRunning until it says so.
		p.state = append(p.state, ptRunning)
		p.wantStop = append(p.wantStop, false)
		p.baseOps = append(p.baseOps, 0)
		p.res.Ops = append(p.res.Ops, 0)
		p.res.Traps = append(p.res.Traps, [NumSlots]uint64{})
		p.res.Stops = append(p.res.Stops, 0)
		p.res.Checkpoints = append(p.res.Checkpoints, 0)
	}
	return nil
}

// ptTraceeEnv is this process's environment with the tracee's settings in
// place of any inherited ones.
func ptTraceeEnv(threads, spare int) []string {
	env := tracee.EnvSpare(threads, spare)
	for _, kv := range os.Environ() {
		keep := true
		for _, t := range env {
			if k, _, _ := strings.Cut(t, "="); strings.HasPrefix(kv, k+"=") {
				keep = false
				break
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

// shutdown kills the tracee and reaps its threads and process. It runs on
// the tracer thread: only that thread may wait for its tracees, and
// __WNOTHREAD keeps it from reaping other children of this process.
func (p *Ptrace) shutdown() {
	if p.pid > 0 && !p.reaped {
		unix.Kill(p.pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(-1, &ws, unix.WALL|ptWNothread, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil { // ECHILD: every thread and the process are reaped
				break
			}
		}
		p.reaped = true
		for i := range p.state {
			p.state[i] = ptGone
		}
		if p.broken == nil {
			p.broken = ErrTracerClosed
		}
	}
	if p.ready != nil {
		p.ready.Close()
		p.ready = nil
	}
	if p.helloR != nil {
		p.helloR.Close()
		p.helloR = nil
	}
}

// Close kills and reaps the tracee and ends the tracer thread. It is safe
// to call more than once, but not from inside Do.
func (p *Ptrace) Close() error {
	if p.onTracer() {
		return fmt.Errorf("hwregs: Ptrace.Close called inside Do: would wait for itself")
	}
	p.closeOnce.Do(func() { close(p.quit) })
	<-p.dead
	return p.closeErr
}

// Pid returns the tracee's process id.
func (p *Ptrace) Pid() int { return p.pid }

// Tids returns the worker thread ids; Target{Task: i} is Tids()[i].
func (p *Ptrace) Tids() []int { return append([]int(nil), p.tids...) }

// Threads returns the number of traced worker threads.
func (p *Ptrace) Threads() int { return len(p.tids) }

// Hello returns the tracee's layout: watched variable and function addresses.
func (p *Ptrace) Hello() *tracee.Hello { return p.hello }

// Name returns "ptrace".
func (p *Ptrace) Name() string { return "ptrace" }

// Writes returns the number of PTRACE_POKEUSER calls made by WriteDR.
func (p *Ptrace) Writes() uint64 { return p.writes.Load() }

func (p *Ptrace) onTracer() bool { return unix.Gettid() == p.tracerTid }

type ptPanic struct{ val any }

// Do runs f on the tracer thread, where WriteDR and ReadDR may be called
// directly; a hot loop belongs inside one Do. Called on the tracer thread
// (nested), it runs f at once. If f panics the tracee is killed and reaped
// and Do panics with the same value; if f calls runtime.Goexit (t.FailNow)
// the tracee is killed and Do returns ErrTracerClosed.
func (p *Ptrace) Do(f func()) error {
	if p.onTracer() {
		f()
		return nil
	}
	res := make(chan *ptPanic, 1)
	call := func() {
		defer func() {
			if v := recover(); v != nil {
				p.shutdown()
				res <- &ptPanic{v}
			}
		}()
		f()
		res <- nil
	}
	select {
	case p.reqs <- call:
	case <-p.dead:
		return ErrTracerClosed
	}
	select {
	case pv := <-res:
		if pv != nil {
			panic(pv.val)
		}
		return nil
	case <-p.dead:
		select {
		case pv := <-res:
			if pv != nil {
				panic(pv.val)
			}
			return nil
		default:
		}
		return fmt.Errorf("%w: the tracer goroutine exited inside Do (runtime.Goexit, e.g. t.FailNow)", ErrTracerClosed)
	}
}

// on runs f on the tracer thread and returns its error. Its closure
// escapes (Do hands it to the tracer goroutine), so a method called in hot
// loops inside Do checks onTracer itself and calls its body directly:
// building the closure only off the tracer thread keeps that path free of
// allocations.
func (p *Ptrace) on(f func() error) error {
	if p.onTracer() {
		return f()
	}
	var err error
	if derr := p.Do(func() { err = f() }); derr != nil {
		return derr
	}
	return err
}

// thread maps a target to a worker index.
func (p *Ptrace) thread(t Target) (int, error) {
	if uint(t.Task) < uint(len(p.tids)) {
		return t.Task, nil
	}
	if t.Task == alloc.NoTask {
		return 0, fmt.Errorf("%w: ptrace target %v: %w (ptrace has no CPU-bound registers)", alloc.ErrInvalid, t, ErrUnsupported)
	}
	return 0, fmt.Errorf("%w: ptrace Target.Task = %d out of range [0,%d) (tracee threads)", alloc.ErrInvalid, t.Task, len(p.tids))
}

// ptRegOffset returns the struct user offset of a debug register. A bad
// register number is a bad request here, so the error wraps
// alloc.ErrInvalid as well as checkReg's ErrBadReg.
func ptRegOffset(reg int) (uintptr, error) {
	if err := checkReg(reg); err != nil {
		return 0, fmt.Errorf("%w: %w", alloc.ErrInvalid, err)
	}
	return uintptr(ptDebugRegBase + 8*reg), nil
}

// WriteDR writes one debug register of a stopped tracee thread with a
// single PTRACE_POKEUSER. Kernel refusals keep the old register value and
// map to: ENOSPC → alloc.ErrNoSlot; EINVAL → alloc.ErrInvalid (and
// ErrBadAddr for DR0-DR3); ESRCH → ErrWrongThread, ErrNotStopped or
// ErrTraceeGone. It must run on the tracer thread (inside Do).
func (p *Ptrace) WriteDR(t Target, reg int, val uint64) error {
	i, err := p.thread(t)
	if err != nil {
		return err
	}
	off, err := ptRegOffset(reg)
	if err != nil {
		return err
	}
	p.writes.Add(1)
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_POKEUSR, uintptr(p.tids[i]), off, uintptr(val), 0, 0)
	if e != 0 {
		return p.regErr("POKEUSER", i, reg, val, e)
	}
	return nil
}

// ReadDR reads one debug register of a stopped tracee thread. It must run
// on the tracer thread (inside Do).
func (p *Ptrace) ReadDR(t Target, reg int) (uint64, error) {
	i, err := p.thread(t)
	if err != nil {
		return 0, err
	}
	off, err := ptRegOffset(reg)
	if err != nil {
		return 0, err
	}
	return p.peekUser(i, reg, off)
}

// peekUser reads a word of struct user; the raw syscall stores it at the
// address in data (the libc wrapper hides this).
func (p *Ptrace) peekUser(i, reg int, off uintptr) (uint64, error) {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKUSR, uintptr(p.tids[i]), off, uintptr(unsafe.Pointer(&p.peek)), 0, 0)
	if e != 0 {
		return 0, p.regErr("PEEKUSER", i, reg, 0, e)
	}
	return p.peek, nil
}

// regErr explains a failed register access. It runs only on failure, so
// the checks that cost a system call (which thread are we on?) live here
// and not on the write path.
func (p *Ptrace) regErr(op string, i, reg int, val uint64, e unix.Errno) error {
	what := fmt.Sprintf("ptrace %s DR%d of tracee thread %d (tid %d)", op, reg, i, p.tids[i])
	if op == "POKEUSER" {
		what = fmt.Sprintf("ptrace %s DR%d = %#x of tracee thread %d (tid %d)", op, reg, val, i, p.tids[i])
	}
	switch e {
	case unix.ENOSPC:
		return fmt.Errorf("hwregs: %s: %w: %w", what, alloc.ErrNoSlot, e)
	case unix.EINVAL:
		if reg <= RegDR3 {
			return fmt.Errorf("hwregs: %s: %w: %w: %w", what, alloc.ErrInvalid, ErrBadAddr, e)
		}
		return fmt.Errorf("hwregs: %s: %w: %w", what, alloc.ErrInvalid, e)
	case unix.ESRCH:
		switch {
		case !p.onTracer():
			return fmt.Errorf("hwregs: %s: %w (tid %d, tracer tid %d); call it inside Ptrace.Do: %w", what, ErrWrongThread, unix.Gettid(), p.tracerTid, e)
		case p.state[i] == ptGone || p.broken != nil:
			return fmt.Errorf("hwregs: %s: %w: %w", what, ErrTraceeGone, e)
		case p.state[i] == ptRunning:
			return fmt.Errorf("hwregs: %s: %w (stop it first): %w", what, ErrNotStopped, e)
		}
		if unix.Tgkill(p.pid, p.tids[i], 0) == unix.ESRCH {
			return fmt.Errorf("hwregs: %s: %w: %w", what, ErrTraceeGone, e)
		}
	case unix.EPERM:
		return fmt.Errorf("hwregs: %s: permission denied (CAP_SYS_PTRACE?): %w", what, e)
	case unix.EIO:
		return fmt.Errorf("hwregs: %s: the kernel has no such register: %w", what, e)
	}
	return fmt.Errorf("hwregs: %s: %w", what, e)
}

// ptcall makes a ptrace request that returns only an error.
func ptcall(req int, tid int, addr, data uintptr) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), addr, data, 0, 0)
	return e
}

// Start has every worker run cmd: it writes the command into the tracee
// and resumes all workers, which must all be parked (after StartPtrace or
// Wait). Collect the outcome with Wait.
func (p *Ptrace) Start(cmd tracee.Command) error {
	if err := cmd.Validate(); err != nil {
		return fmt.Errorf("%w: %w", alloc.ErrInvalid, err)
	}
	if p.onTracer() {
		return p.start(cmd)
	}
	return p.on(func() error { return p.start(cmd) })
}

// start is Start on the tracer thread.
func (p *Ptrace) start(cmd tracee.Command) error {
	if p.broken != nil {
		return p.broken
	}
	for i, s := range p.state {
		if s != ptParked {
			return fmt.Errorf("hwregs: Start: tracee thread %d (tid %d) is %v, want parked (Wait for the last command, ResumeThread interrupted ones)", i, p.tids[i], s)
		}
	}
	p.gen++
	c := cmd.Encode(p.gen)
	if err := p.writeMem(p.hello.CtlAddr, unsafe.Slice((*byte)(unsafe.Pointer(&c)), tracee.CtlSize)); err != nil {
		return err
	}
	if err := p.readOps(p.baseOps); err != nil {
		return err
	}
	clear(p.res.Traps)
	clear(p.res.Stops)
	clear(p.res.Ops)
	clear(p.res.Checkpoints)
	p.res.OtherTraps, p.res.Signals = 0, 0
	for i := range p.tids {
		if err := p.cont(i, 0); err != nil {
			return err
		}
	}
	return nil
}

// Halt ends a command started with Count 0; Wait then returns once every
// worker has parked. It may be called from any goroutine.
func (p *Ptrace) Halt() error {
	one := uint64(1)
	return p.writeMem(p.hello.CtlAddr+uint64(unsafe.Offsetof(tracee.Ctl{}.Halt)), unsafe.Slice((*byte)(unsafe.Pointer(&one)), 8))
}

// Wait handles the tracee's stops (counting breakpoint traps, passing on
// other signals) until every worker has parked, and returns what the
// workers did since Start. The result is reused by the next Wait.
func (p *Ptrace) Wait() (*PtraceResult, error) {
	var err error
	if p.onTracer() {
		err = p.wait()
	} else {
		err = p.on(p.wait)
	}
	if err != nil {
		return nil, err
	}
	return &p.res, nil
}

// wait is Wait on the tracer thread.
func (p *Ptrace) wait() error {
	if err := p.waitParked(); err != nil {
		return err
	}
	if cap(p.curOps) < len(p.tids) {
		p.curOps = make([]uint64, len(p.tids))
	}
	cur := p.curOps[:len(p.tids)]
	if err := p.readOps(cur); err != nil {
		return err
	}
	for i := range cur {
		p.res.Ops[i] = cur[i] - p.baseOps[i]
	}
	return nil
}

// Run is Start followed by Wait.
func (p *Ptrace) Run(cmd tracee.Command) (*PtraceResult, error) {
	if err := p.Start(cmd); err != nil {
		return nil, err
	}
	return p.Wait()
}

// StopThread interrupts running worker i (PTRACE_INTERRUPT) and waits
// until it is stopped, handling other workers' stops meanwhile. A parked
// or interrupted worker is left as it is.
func (p *Ptrace) StopThread(i int) error {
	if i < 0 || i >= len(p.tids) {
		return fmt.Errorf("%w: StopThread(%d): thread out of range [0,%d)", alloc.ErrInvalid, i, len(p.tids))
	}
	return p.on(func() error {
		if p.state[i] != ptRunning {
			return nil
		}
		if e := ptcall(unix.PTRACE_INTERRUPT, p.tids[i], 0, 0); e != 0 {
			return fmt.Errorf("hwregs: PTRACE_INTERRUPT of tracee thread %d (tid %d): %w", i, p.tids[i], e)
		}
		p.wantStop[i] = true
		for p.state[i] == ptRunning {
			if err := p.waitOne(); err != nil {
				return err
			}
		}
		return nil
	})
}

// StopAll interrupts every running worker at once and waits until all are
// stopped: one round trip for the whole process rather than one per thread.
func (p *Ptrace) StopAll() error {
	if p.onTracer() {
		return p.stopAll()
	}
	return p.on(p.stopAll)
}

// stopAll is StopAll on the tracer thread.
func (p *Ptrace) stopAll() error {
	for i, s := range p.state {
		if s != ptRunning {
			continue
		}
		if e := ptcall(unix.PTRACE_INTERRUPT, p.tids[i], 0, 0); e != 0 {
			return fmt.Errorf("hwregs: PTRACE_INTERRUPT of tracee thread %d (tid %d): %w", i, p.tids[i], e)
		}
		p.wantStop[i] = true
	}
	for i := range p.state {
		for p.state[i] == ptRunning {
			if err := p.waitOne(); err != nil {
				return err
			}
		}
	}
	return nil
}

// ResumeAll resumes every worker that StopThread or StopAll stopped.
func (p *Ptrace) ResumeAll() error {
	if p.onTracer() {
		return p.resumeAll()
	}
	return p.on(p.resumeAll)
}

// resumeAll is ResumeAll on the tracer thread.
func (p *Ptrace) resumeAll() error {
	for i, s := range p.state {
		if s == ptInterrupted {
			if err := p.cont(i, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// ResumeThread resumes worker i if StopThread stopped it mid-command.
func (p *Ptrace) ResumeThread(i int) error {
	if i < 0 || i >= len(p.tids) {
		return fmt.Errorf("%w: ResumeThread(%d): thread out of range [0,%d)", alloc.ErrInvalid, i, len(p.tids))
	}
	return p.on(func() error {
		if p.state[i] != ptInterrupted {
			return nil
		}
		return p.cont(i, 0)
	})
}

// Stopped reports whether worker i is stopped (parked or interrupted), so
// that its registers can be written.
func (p *Ptrace) Stopped(i int) bool {
	if i < 0 || i >= len(p.tids) {
		return false
	}
	var s ptState
	p.on(func() error { s = p.state[i]; return nil })
	return s == ptParked || s == ptInterrupted
}

func (p *Ptrace) cont(i int, sig int) error {
	if p.resumeHook != nil {
		p.resumeHook(i)
	}
	if e := ptcall(unix.PTRACE_CONT, p.tids[i], 0, uintptr(sig)); e != 0 {
		return p.lost(i, fmt.Errorf("hwregs: PTRACE_CONT of tracee thread %d (tid %d): %w", i, p.tids[i], e))
	}
	p.state[i] = ptRunning
	return nil
}

// lost records that the tracee can no longer be driven.
func (p *Ptrace) lost(i int, err error) error {
	if p.broken == nil {
		p.broken = fmt.Errorf("%w: %w", ErrTraceeGone, err)
	}
	return p.broken
}

// waitParked handles stops until every worker is parked.
func (p *Ptrace) waitParked() error {
	for {
		all := true
		for _, s := range p.state {
			if s != ptParked {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		if err := p.waitOne(); err != nil {
			return err
		}
	}
}

// waitOne waits for one stop or exit of a tracee thread and handles it:
// breakpoint traps are counted and suppressed, a worker's own SIGTRAP parks
// it, an interrupt the tracer asked for leaves the thread stopped, and any
// other signal is passed on.
func (p *Ptrace) waitOne() error {
	_, err := p.waitNext(0)
	return err
}

// waitNext is waitOne with extra wait4 flags: with WNOHANG it returns
// false at once when no thread has a stop to report.
func (p *Ptrace) waitNext(flags int) (bool, error) { return p.waitFrom(-1, flags) }

// waitFrom is waitNext for one thread id (or -1 for any).
func (p *Ptrace) waitFrom(pid, flags int) (bool, error) {
	if p.broken != nil {
		return false, p.broken
	}
	var ws unix.WaitStatus
	var wpid int
	var err error
	for {
		wpid, err = unix.Wait4(pid, &ws, unix.WALL|ptWNothread|flags, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return false, p.lost(0, fmt.Errorf("hwregs: wait4 for tracee %d: %w", p.pid, err))
	}
	if wpid == 0 {
		return false, nil
	}
	return true, p.handle(wpid, ws)
}

// handle acts on one wait4 report of tracee thread (or process) wpid.
func (p *Ptrace) handle(wpid int, ws unix.WaitStatus) error {
	i, ok := p.index[wpid]
	if !ok {
		if wpid == p.pid && (ws.Exited() || ws.Signaled()) {
			p.reaped = true
			return p.lost(0, fmt.Errorf("hwregs: tracee %d exited (%s)", p.pid, ptStatus(ws)))
		}
		return nil // the untraced main thread of a dying tracee
	}
	tid := p.tids[i]
	switch {
	case ws.Exited() || ws.Signaled():
		p.state[i] = ptGone
		return p.lost(i, fmt.Errorf("hwregs: tracee thread %d (tid %d) exited (%s)", i, tid, ptStatus(ws)))
	case !ws.Stopped():
		return nil
	}
	sig := ws.StopSignal()
	if ws>>16 == unix.PTRACE_EVENT_STOP {
		// An interrupt stop, or a group stop of a seized tracee.
		if p.wantStop[i] {
			p.wantStop[i] = false
			p.state[i] = ptInterrupted
			return nil
		}
		return p.cont(i, 0) // a stale interrupt or a group stop: keep running
	}
	if sig == tracee.CheckpointSignal {
		p.res.Checkpoints[i]++
		return p.cont(i, 0)
	}
	if sig != unix.SIGTRAP {
		p.res.Signals++
		return p.cont(i, int(sig))
	}
	if e := ptcall(unix.PTRACE_GETSIGINFO, tid, 0, uintptr(unsafe.Pointer(&p.si))); e != 0 {
		return p.lost(i, fmt.Errorf("hwregs: PTRACE_GETSIGINFO of tracee thread %d (tid %d): %w", i, tid, e))
	}
	switch {
	case p.si.Code == ptTrapHwbkpt:
		dr6, err := p.peekUser(i, RegDR6, ptDebugRegBase+8*RegDR6)
		if err != nil {
			return p.lost(i, err)
		}
		p.res.Stops[i]++
		for k := 0; k < NumSlots; k++ {
			if dr6&(1<<k) != 0 {
				p.res.Traps[i][k]++
			}
		}
		return p.cont(i, 0)
	case p.si.Code == ptSITkill && int(p.si.Pid) == p.pid:
		p.state[i] = ptParked
		p.wantStop[i] = false // a pending interrupt is moot: the worker is stopped
		return nil
	}
	p.res.OtherTraps++
	return p.cont(i, 0)
}

func ptStatus(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

func (p *Ptrace) writeMem(addr uint64, b []byte) error {
	local := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMWritev(p.pid, local, remote, 0)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short write %d of %d bytes", n, len(b))
	}
	if err != nil {
		return fmt.Errorf("hwregs: writing tracee %d memory at %#x: %w", p.pid, addr, err)
	}
	return nil
}

// readOps reads every worker's operation counter.
func (p *Ptrace) readOps(dst []uint64) error {
	b := p.opsBuf
	local := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	remote := []unix.RemoteIovec{{Base: uintptr(p.hello.BlocksAddr), Len: len(b)}}
	n, err := unix.ProcessVMReadv(p.pid, local, remote, 0)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short read %d of %d bytes", n, len(b))
	}
	if err != nil {
		return fmt.Errorf("hwregs: reading tracee %d counters: %w", p.pid, err)
	}
	for i := range dst {
		dst[i] = *(*uint64)(unsafe.Pointer(&b[i*tracee.BlockSize+tracee.OpsOffset]))
	}
	return nil
}

// setResumeHook installs f to run on the tracer thread just before any
// worker is resumed (nil removes it). It must run on the tracer thread.
func (p *Ptrace) setResumeHook(f func(i int)) { p.resumeHook = f }

// Progress returns the counts of the current command so far: traps, stops
// and checkpoints (Ops are filled in by Wait only). It must run on the
// tracer thread (inside Do), and the result is overwritten by later stops.
func (p *Ptrace) Progress() *PtraceResult { return &p.res }

// ReadOps stores every worker's cumulative operation count in dst (len
// Threads()) with one process_vm_readv. Running workers are read as they
// are at that moment. It may be called from any goroutine.
func (p *Ptrace) ReadOps(dst []uint64) error {
	if len(dst) != len(p.tids) {
		return fmt.Errorf("%w: ReadOps: len(dst) = %d, want %d (Threads)", alloc.ErrInvalid, len(dst), len(p.tids))
	}
	if p.onTracer() {
		return p.readOps(dst)
	}
	return p.on(func() error { return p.readOps(dst) })
}

// Serve handles the tracee's stops (traps, checkpoints, signals; resuming
// each stopped thread through the resume hook) on the tracer thread until
// done returns true or timeout passes. It polls wait4 without blocking and
// sleeps briefly between empty polls, so that done is checked even while
// no thread stops; a stop therefore waits up to about poll before it is
// handled.
//
// wait4 for any thread reports stopped threads in a fixed order, so a
// tracer that cannot keep up (thousands of threads trapping) would serve
// the same threads forever and never resume the others. Serve therefore
// also asks one thread in turn after each stop: every stopped thread is
// served within Threads() stops.
func (p *Ptrace) Serve(done func() bool, timeout, poll time.Duration) error {
	if timeout <= 0 || poll < 0 {
		return fmt.Errorf("%w: Serve(timeout = %v, poll = %v): want timeout > 0 and poll >= 0", alloc.ErrInvalid, timeout, poll)
	}
	if p.onTracer() {
		return p.serve(done, timeout, poll)
	}
	return p.on(func() error { return p.serve(done, timeout, poll) })
}

// serve is Serve on the tracer thread.
func (p *Ptrace) serve(done func() bool, timeout, poll time.Duration) error {
	ts := unix.NsecToTimespec(poll.Nanoseconds())
	deadline := time.Now().Add(timeout)
	turn := 0
	for !done() {
		got, err := p.waitNext(unix.WNOHANG)
		if err != nil {
			return err
		}
		if got && len(p.tids) > 1 {
			turn = (turn + 1) % len(p.tids)
			if p.state[turn] == ptRunning {
				if _, err := p.waitFrom(p.tids[turn], unix.WNOHANG); err != nil {
					return err
				}
			}
		}
		// Checked after every stop too: a tracee that stops faster than
		// the tracer handles its stops never leaves wait4 empty.
		if time.Now().After(deadline) {
			return fmt.Errorf("hwregs: Serve: condition not met within %v: %w", timeout, os.ErrDeadlineExceeded)
		}
		if !got && poll > 0 {
			unix.Nanosleep(&ts, nil)
		}
	}
	return nil
}

// Spawn has the tracee start k more worker threads (at most the Spare left
// of PtraceOptions) and traces them; they are workers Threads()..Threads()+k-1
// and are parked on return. Every worker must be parked: the new ones start
// at the next command. They are seized by thread id once the tracee reports
// them, before they run any command (not through PTRACE_O_TRACECLONE: the
// Go runtime creates threads from its own untraced threads). It returns
// the new tids.
func (p *Ptrace) Spawn(k int) ([]int, error) {
	if k < 1 || k > p.hello.Spare {
		return nil, fmt.Errorf("%w: Spawn(%d): want 1 to %d (spare threads left)", alloc.ErrInvalid, k, p.hello.Spare)
	}
	var tids []int
	err := p.on(func() error {
		if p.broken != nil {
			return p.broken
		}
		for i, s := range p.state {
			if s != ptParked {
				return fmt.Errorf("hwregs: Spawn: tracee thread %d (tid %d) is %v, want every worker parked", i, p.tids[i], s)
			}
		}
		req := []byte{tracee.SpawnRequest, byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
		if _, err := p.ready.Write(req); err != nil {
			return p.lost(0, fmt.Errorf("hwregs: asking tracee %d to spawn: %w", p.pid, err))
		}
		var err error
		p.helloR.SetReadDeadline(time.Now().Add(30 * time.Second))
		if tids, err = tracee.ReadSpawnReport(p.helloR); err != nil {
			return p.lost(0, fmt.Errorf("hwregs: tracee %d spawn report: %w", p.pid, err))
		}
		if len(tids) != k {
			return p.lost(0, fmt.Errorf("hwregs: tracee %d spawned %d threads, asked for %d", p.pid, len(tids), k))
		}
		if err := p.seize(tids); err != nil {
			return p.lost(0, err)
		}
		p.hello.Spare -= k
		if _, err := p.ready.Write([]byte{tracee.SpawnRelease}); err != nil {
			return p.lost(0, fmt.Errorf("hwregs: releasing spawned threads of tracee %d: %w", p.pid, err))
		}
		return p.waitParked()
	})
	return tids, err
}

package hwregs

import (
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/hwregs/tracee"
)

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

// StopThread interrupts running worker i (PTRACE_INTERRUPT) and waits
// until it is stopped, handling other workers' stops meanwhile. A parked
// or interrupted worker is left as it is.
func (p *Ptrace) StopThread(i int) error {
	if i < 0 || i >= len(p.tids) {
		return fmt.Errorf("%w: StopThread(%d): thread out of range [0,%d)", alloc.ErrInvalid, i, len(p.tids))
	}
	return p.on(func() error { return p.stop(i, i+1) })
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
func (p *Ptrace) stopAll() error { return p.stop(0, len(p.tids)) }

// stop interrupts the running workers among lo..hi-1 and waits until they
// are stopped, handling other workers' stops meanwhile.
func (p *Ptrace) stop(lo, hi int) error {
	for i := lo; i < hi; i++ {
		if p.state[i] != ptRunning {
			continue
		}
		if e := ptcall(unix.PTRACE_INTERRUPT, p.tids[i], 0, 0); e != 0 {
			return fmt.Errorf("hwregs: PTRACE_INTERRUPT of tracee thread %d (tid %d): %w", i, p.tids[i], e)
		}
		p.wantStop[i] = true
	}
	for i := lo; i < hi; i++ {
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

// setResumeHook installs f to run on the tracer thread just before any
// worker is resumed (nil removes it). It must run on the tracer thread.
func (p *Ptrace) setResumeHook(f func(i int)) { p.resumeHook = f }

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

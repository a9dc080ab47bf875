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

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/hwregs/tracee"
	"bpbench/internal/child"
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
	// Executable is the binary started as the tracee; "" means this one,
	// which links package tracee through hwregs and must call child.Main
	// at its start (cli.Main does; a test package's TestMain must).
	Executable string
	// StartTimeout bounds the tracee's start-up; 0 means 30 seconds.
	StartTimeout time.Duration
	// Spare is how many more worker threads Spawn may start later.
	Spare int
}

// Ptrace is the real-kernel Backend: the debug registers of the threads of
// a tracee process (package tracee), written with one PTRACE_POKEUSER per
// register. Target{Task: i} is worker thread i; CPU targets are refused
// with ErrUnsupported, since ptrace has no CPU-bound registers.
//
// Linux only accepts ptrace calls from the thread that attached, so a
// Ptrace owns one goroutine locked to one OS thread, pinned to a CPU.
// WriteDR and ReadDR make their system call directly and must run on that
// thread, i.e. inside Do: a hop per register write, even the polled
// hand-off Do makes (ptrace_thread.go), costs more than the 10% over the
// bare syscall the backend is allowed. Off the thread they fail with
// ErrWrongThread. The other methods move to the tracer thread themselves.
//
// The files of the backend follow its jobs: ptrace.go starts and closes it,
// ptrace_thread.go is the tracer thread's discipline (loop, Do, on),
// ptrace_tracee.go controls the tracee's threads (seize, Spawn, stop,
// resume, wait, Serve), ptrace_regs.go reads and writes registers and
// memory, and ptrace_protocol.go speaks the tracee's command protocol
// (Start, Wait, Halt, ReadOps).
//
// The tracee dies with the Ptrace: Close kills and reaps it, so does a panic
// or runtime.Goexit inside Do, and if the tracer process dies the kernel
// kills it (PTRACE_O_EXITKILL, Pdeathsig, and the tracee exits when its
// command pipe closes).
type Ptrace struct {
	writes atomic.Uint64
	_      [56]byte // WriteDR's counter off the line a caller polls in Do

	h         handoff // how Do reaches the tracer thread
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

// StartPtrace starts a tracee with opts.Threads worker threads and traces
// every one of them; on return all workers are stopped. Without permission
// to trace (no CAP_SYS_PTRACE, Yama), the error wraps unix.EPERM.
func StartPtrace(opts PtraceOptions) (*Ptrace, error) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("hwregs: ptrace backend on %s/%s: x86 only (it writes DR0-DR7 at u_debugreg with PTRACE_POKEUSER, which only linux/amd64 has): %w", runtime.GOOS, runtime.GOARCH, ErrUnsupported)
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
		h:     newHandoff(opts.CPU),
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

func (p *Ptrace) setup(opts PtraceOptions) error {
	if opts.CPU != NoPin {
		// Never unpinned: the thread ends with the tracer goroutine.
		if _, err := cpupin.Pin(opts.CPU); err != nil {
			return fmt.Errorf("hwregs: pinning the tracer thread: %w", err)
		}
	}
	exe, argv := opts.Executable, []string{opts.Executable}
	if exe == "" {
		var err error
		if exe, argv, err = child.Self(tracee.Mode); err != nil {
			return fmt.Errorf("hwregs: starting the tracee: %w", err)
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
	pid, err := syscall.ForkExec(exe, argv, &syscall.ProcAttr{
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

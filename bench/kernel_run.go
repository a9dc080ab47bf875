package bench

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// kernelSettle is perf bench enable's usleep(10000) that lets the threads
// block before timing starts.
const kernelSettle = 10 * time.Millisecond

// threadParams are the parameters of `perf bench -r Repeat breakpoint
// thread -b Breakpoints -p Parallelism -t Threads`.
type threadParams struct {
	Breakpoints int // inheritable breakpoints, 0-4
	Parallelism int // threads that create and join batches
	Threads     int // threads per batch
	Repeat      int // batches in all, shared by the parallel threads
}

// validate names the first bad field, wrapping ErrInvalidParam.
func (p threadParams) validate() error {
	if p.Breakpoints < 0 || p.Breakpoints > 4 {
		return fmt.Errorf("%w: threadParams.Breakpoints = %d, want 0..4 (x86 has four slots per thread)", ErrInvalidParam, p.Breakpoints)
	}
	return firstBelow(
		minParam{"threadParams.Parallelism", p.Parallelism, 1},
		minParam{"threadParams.Threads", p.Threads, 1},
		minParam{"threadParams.Repeat", p.Repeat, 1},
	)
}

// minParam is an int parameter, its name as errors print it, and the
// least value it may take.
type minParam struct {
	name   string
	v, min int
}

// firstBelow names the first of ps below its minimum, wrapping
// ErrInvalidParam, or returns nil.
func firstBelow(ps ...minParam) error {
	for _, p := range ps {
		if p.v < p.min {
			return fmt.Errorf("%w: %s = %d, want >= %d", ErrInvalidParam, p.name, p.v, p.min)
		}
	}
	return nil
}

// enableParams are the parameters of `perf bench -r Repeat breakpoint
// enable -p Passive -a Active`.
type enableParams struct {
	Passive int // threads blocked in the kernel
	Active  int // threads spinning in user space
	Repeat  int // IOC_DISABLE + IOC_ENABLE pairs
}

// validate names the first bad field, wrapping ErrInvalidParam.
func (p enableParams) validate() error {
	return firstBelow(
		minParam{"enableParams.Passive", p.Passive, 0},
		minParam{"enableParams.Active", p.Active, 0},
		minParam{"enableParams.Repeat", p.Repeat, 1},
	)
}

// threadRun is one Go run of the thread benchmark.
type threadRun struct {
	UsecsPerOp float64 // total µs / Repeat / Threads, as perf bench prints
	Workers    int     // worker goroutines run (Repeat * Threads)
	// DistinctOS is how many workers ran on a thread id that none of the
	// Window workers started before it had: Workers when every worker got
	// a thread of its own. Thread ids are recycled once the kernel's
	// cyclic allocator wraps at pid_max, so distinctness is only checked
	// within a window of at most a quarter of pid_max: an id seen twice
	// inside it cannot have wrapped (that would take more than three
	// quarters of pid_max thread creations by the rest of the machine in
	// the meantime), so it is a thread the runtime reused.
	DistinctOS int
	Window     int // workers in the distinctness window
	Counts     []uint64
	// Switches are the context switches of every thread of the child
	// over its life (its rusage at exit, exited threads included),
	// voluntary (a thread blocked: each needs a wakeup from another) and
	// involuntary (preempted), counted as perf bench's are: the runtime's
	// start adds a few tens to the thousand or more of a run.
	Switches switches
}

// sample is the run's usecs/op and its context switches per worker
// (thread created).
func (r threadRun) sample() kernelSample {
	n := float64(max(r.Workers, 1))
	return kernelSample{usecs: r.UsecsPerOp, csw: float64(r.Switches.Voluntary) / n, ivcsw: float64(r.Switches.Involuntary) / n}
}

// switches are context switches counted by getrusage.
type switches struct{ Voluntary, Involuntary int64 }

// rusageSwitches returns the switches of a reaped child.
func rusageSwitches(ps *os.ProcessState) switches {
	if ps == nil {
		return switches{}
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return switches{}
	}
	return switches{Voluntary: ru.Nvcsw, Involuntary: ru.Nivcsw}
}

// runThread runs the Go version of `perf bench breakpoint thread` once. With
// touch set, every worker writes each watched byte once, so Counts (one per
// breakpoint, summed over every thread that inherited it) must equal
// Workers; perf bench never touches them, so benchmarks leave it false.
func runThread(ctx context.Context, p threadParams, touch bool) (threadRun, error) {
	if err := p.validate(); err != nil {
		return threadRun{}, err
	}
	t := 0
	if touch {
		t = 1
	}
	c, err := startKernelChild(ctx, "thread", []int{p.Repeat, p.Parallelism, p.Threads, p.Breakpoints, t, int(kernelWatchAddr())}, p.Breakpoints)
	if err != nil {
		return threadRun{}, err
	}
	defer c.kill()
	line, err := c.readLine()
	if err != nil {
		return threadRun{}, err
	}
	var usec float64
	var workers, distinct, window int
	if _, err := fmt.Sscanf(line, "usec=%g workers=%d distinct=%d window=%d", &usec, &workers, &distinct, &window); err != nil {
		return threadRun{}, fmt.Errorf("bench: kernel thread child said %q: %w", line, err)
	}
	if err := c.wait(); err != nil {
		return threadRun{}, err
	}
	r := threadRun{UsecsPerOp: usec / float64(p.Repeat) / float64(p.Threads), Workers: workers, DistinctOS: distinct, Window: window,
		Switches: rusageSwitches(c.cmd.ProcessState)}
	for _, e := range c.events {
		n, err := e.Count()
		if err != nil {
			return threadRun{}, err
		}
		r.Counts = append(r.Counts, n)
	}
	return r, nil
}

// runEnable runs the Go version of `perf bench breakpoint enable` once and
// returns µs per IOC_DISABLE + IOC_ENABLE pair.
func runEnable(ctx context.Context, p enableParams) (float64, error) {
	if err := p.validate(); err != nil {
		return 0, err
	}
	c, err := startKernelChild(ctx, "enable", []int{p.Passive, p.Active}, 1)
	if err != nil {
		return 0, err
	}
	defer c.kill()
	if line, err := c.readLine(); err != nil {
		return 0, err
	} else if line != "ready" {
		return 0, fmt.Errorf("bench: kernel enable child said %q, want ready", line)
	}
	time.Sleep(kernelSettle)
	e := c.events[0]
	start := time.Now()
	for i := 0; i < p.Repeat; i++ {
		if err := e.Disable(); err != nil {
			return 0, err
		}
		if err := e.Enable(); err != nil {
			return 0, err
		}
	}
	elapsed := time.Since(start)
	if err := c.wait(); err != nil {
		return 0, err
	}
	return float64(elapsed.Nanoseconds()) / 1e3 / float64(p.Repeat), nil
}

package bench

import (
	"bpbench/bench/harness"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/hwregs"
)

// The kernel experiment re-implements `perf bench breakpoint thread` and
// `perf bench breakpoint enable` (tools/perf/bench/breakpoint.c) in Go.
//
// perf bench opens inheritable breakpoints on its main thread before it
// creates any thread, so every thread of the process carries them. A Go
// process has runtime threads before main runs, and the runtime clones new
// threads from whichever thread needs one, so opening the breakpoints in
// the measuring process would leave most threads without them. Instead the
// workload runs in a child (this binary re-executed in a child mode): it is
// stopped by ptrace at exec, the breakpoints are opened on its only thread
// with inherit = 1, and it is released; every thread the Go runtime then
// creates inherits them, and the parent's fds are the parents of all the
// inherited events, as in perf bench.

const (
	kernelChildEnv = "BPBENCH_KERNEL_CHILD" // child mode: "thread" or "enable"
	kernelArgsEnv  = "BPBENCH_KERNEL_ARGS"  // the mode's integer arguments, space separated

	// kernelSettle is perf bench enable's usleep(10000) that lets the
	// threads block before timing starts.
	kernelSettle = 10 * time.Millisecond
)

func init() {
	if mode := os.Getenv(kernelChildEnv); mode != "" {
		os.Exit(kernelChildMain(mode, os.Getenv(kernelArgsEnv)))
	}
}

var kernelExperiment = Experiment{
	Name:     "kernel",
	Question: "How much do inherited hardware breakpoints slow down thread creation and how much does toggling one cost, measured from Go and by perf bench breakpoint on the same kernel?",
	Cases:    kernelCases,
}

// ThreadParams are the parameters of `perf bench -r Repeat breakpoint
// thread -b Breakpoints -p Parallelism -t Threads`.
type ThreadParams struct {
	Breakpoints int // inheritable breakpoints, 0-4
	Parallelism int // threads that create and join batches
	Threads     int // threads per batch
	Repeat      int // batches in all, shared by the parallel threads
}

// Validate names the first bad field, wrapping ErrInvalidParam.
func (p ThreadParams) Validate() error {
	if p.Breakpoints < 0 || p.Breakpoints > 4 {
		return fmt.Errorf("%w: ThreadParams.Breakpoints = %d, want 0..4 (x86 has four slots per thread)", ErrInvalidParam, p.Breakpoints)
	}
	return firstBelow(
		minParam{"ThreadParams.Parallelism", p.Parallelism, 1},
		minParam{"ThreadParams.Threads", p.Threads, 1},
		minParam{"ThreadParams.Repeat", p.Repeat, 1},
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

// EnableParams are the parameters of `perf bench -r Repeat breakpoint
// enable -p Passive -a Active`.
type EnableParams struct {
	Passive int // threads blocked in the kernel
	Active  int // threads spinning in user space
	Repeat  int // IOC_DISABLE + IOC_ENABLE pairs
}

// Validate names the first bad field, wrapping ErrInvalidParam.
func (p EnableParams) Validate() error {
	return firstBelow(
		minParam{"EnableParams.Passive", p.Passive, 0},
		minParam{"EnableParams.Active", p.Active, 0},
		minParam{"EnableParams.Repeat", p.Repeat, 1},
	)
}

// ErrInvalidParam is wrapped by errors about bad experiment parameters.
var ErrInvalidParam = errors.New("invalid experiment parameter")

// ThreadRun is one Go run of the thread benchmark.
type ThreadRun struct {
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
}

// RunThread runs the Go version of `perf bench breakpoint thread` once. With
// touch set, every worker writes each watched byte once, so Counts (one per
// breakpoint, summed over every thread that inherited it) must equal
// Workers; perf bench never touches them, so benchmarks leave it false.
func RunThread(ctx context.Context, p ThreadParams, touch bool) (ThreadRun, error) {
	if err := p.Validate(); err != nil {
		return ThreadRun{}, err
	}
	t := 0
	if touch {
		t = 1
	}
	c, err := startKernelChild(ctx, "thread", []int{p.Repeat, p.Parallelism, p.Threads, p.Breakpoints, t, int(kernelWatchAddr())}, p.Breakpoints)
	if err != nil {
		return ThreadRun{}, err
	}
	defer c.kill()
	line, err := c.readLine()
	if err != nil {
		return ThreadRun{}, err
	}
	var usec float64
	var workers, distinct, window int
	if _, err := fmt.Sscanf(line, "usec=%g workers=%d distinct=%d window=%d", &usec, &workers, &distinct, &window); err != nil {
		return ThreadRun{}, fmt.Errorf("bench: kernel thread child said %q: %w", line, err)
	}
	if err := c.wait(); err != nil {
		return ThreadRun{}, err
	}
	r := ThreadRun{UsecsPerOp: usec / float64(p.Repeat) / float64(p.Threads), Workers: workers, DistinctOS: distinct, Window: window}
	for _, e := range c.events {
		n, err := e.Count()
		if err != nil {
			return ThreadRun{}, err
		}
		r.Counts = append(r.Counts, n)
	}
	return r, nil
}

// RunEnable runs the Go version of `perf bench breakpoint enable` once and
// returns µs per IOC_DISABLE + IOC_ENABLE pair.
func RunEnable(ctx context.Context, p EnableParams) (float64, error) {
	if err := p.Validate(); err != nil {
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

// kernelWatched are the watched bytes, perf bench's breakpoints[i].watched.
// The child is this same binary, so (unless it is built as a PIE) they sit
// at the same address there; the touch mode checks that before relying on
// it. Nothing else touches them.
var kernelWatched [4]byte

func kernelWatchAddr() uint64 { return uint64(uintptr(unsafe.Pointer(&kernelWatched[0]))) }

// kernelChild is a re-executed copy of this binary running a workload with
// inherited breakpoints that this process holds.
type kernelChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
	events []*hwregs.PerfEvent
	done   bool
}

// startKernelChild starts the child stopped at exec, opens nbp inheritable
// read/write breakpoints on its only thread (one byte each of
// kernelWatched, as perf bench's breakpoint_setup), and lets it run.
func startKernelChild(ctx context.Context, mode string, args []int, nbp int) (c *kernelChild, err error) {
	if err := hwregs.PerfSupported(); err != nil {
		return nil, Skipf("perf breakpoints: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: kernel child: %w", err)
	}
	sargs := make([]string, len(args))
	for i, a := range args {
		sargs[i] = strconv.Itoa(a)
	}
	c = &kernelChild{cmd: exec.CommandContext(ctx, exe)}
	c.cmd.Env = append(os.Environ(), kernelChildEnv+"="+mode, kernelArgsEnv+"="+strings.Join(sargs, " "))
	c.cmd.Stderr = &c.stderr
	// The tracer is the thread that forks, and only it may detach.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true, Pdeathsig: syscall.SIGKILL}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("bench: kernel child: %w", err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: kernel child: %w", err)
	}
	c.out = bufio.NewReader(stdout)
	// Pdeathsig fires when the thread that started the child exits, not
	// the process: this thread stays locked for the whole function (ptrace
	// needs that too) and is unlocked, not ended, afterwards, so the
	// signal comes only when this process dies.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start kernel child: %w", err)
	}
	defer func() {
		if err != nil {
			c.kill()
		}
	}()
	pid := c.cmd.Process.Pid
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return c, fmt.Errorf("bench: wait for kernel child at exec: %w", err)
	}
	if !ws.Stopped() {
		return c, fmt.Errorf("bench: kernel child not stopped at exec (status %#x)", uint32(ws))
	}
	for i := 0; i < nbp; i++ {
		a := hwregs.Attr{Addr: kernelWatchAddr() + uint64(i), Len: 1, Type: hwregs.ReadWrite}
		e, err := hwregs.OpenPerf(a, pid, -1, hwregs.PerfInherit())
		if err != nil {
			return c, fmt.Errorf("bench: breakpoint %d on kernel child: %w", i, err)
		}
		c.events = append(c.events, e)
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return c, fmt.Errorf("bench: detach kernel child: %w", err)
	}
	return c, nil
}

func (c *kernelChild) readLine() (string, error) {
	line, err := c.out.ReadString('\n')
	if err != nil {
		c.kill()
		return "", fmt.Errorf("bench: kernel child exited early: %w (stderr: %s)", err, strings.TrimSpace(c.stderr.String()))
	}
	return strings.TrimSpace(line), nil
}

// wait tells the child to finish (EOF on its stdin) and reaps it; the
// breakpoints stay open so their counts can be read.
func (c *kernelChild) wait() error {
	c.stdin.Close()
	io.Copy(io.Discard, c.out)
	err := c.cmd.Wait()
	c.done = true
	if err != nil {
		return fmt.Errorf("bench: kernel child: %w (stderr: %s)", err, strings.TrimSpace(c.stderr.String()))
	}
	return nil
}

// kill ends and reaps the child if it is still there and closes the
// breakpoints; it is safe to call more than once.
func (c *kernelChild) kill() {
	if !c.done {
		c.done = true
		c.cmd.Process.Kill()
		c.stdin.Close()
		c.cmd.Wait()
	}
	for _, e := range c.events {
		e.Close()
	}
}

// kernelChildMain runs the child side and returns its exit status.
func kernelChildMain(mode, args string) int {
	var a []int
	for _, f := range strings.Fields(args) {
		n, err := strconv.Atoi(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s=%q: %v\n", kernelArgsEnv, args, err)
			return 2
		}
		a = append(a, n)
	}
	var err error
	switch {
	case mode == "thread" && len(a) == 6:
		if a[4] != 0 && uint64(a[5]) != kernelWatchAddr() {
			err = fmt.Errorf("watched bytes at %#x here, %#x in the parent (a PIE build?): touch mode cannot check counts", kernelWatchAddr(), a[5])
			break
		}
		err = threadChild(a[0], a[1], a[2], a[3], a[4] != 0)
	case mode == "enable" && len(a) == 2:
		err = enableChild(a[0], a[1])
	default:
		err = fmt.Errorf("bad child mode %q args %q", mode, args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// threadChild is breakpoint_thread: parallel goroutines take batches from a
// shared counter and each batch starts threads workers, lets them all
// start, releases and joins them. A worker locks its OS thread and returns
// still locked, so the runtime destroys the thread; the next worker needs a
// thread the runtime has to create (clone), which inherits the
// breakpoints. It prints the elapsed µs and how many distinct thread ids
// the workers ran on.
func threadChild(repeat, parallel, threads, nbp int, touch bool) error {
	var watched []byte
	var touchMu sync.Mutex // the workers' writes would race otherwise; the lock's own accesses are elsewhere
	if touch {
		watched = kernelWatched[:nbp]
	}
	// Workers record their thread id in the order they start, over all
	// the parallel goroutines, for the windowed distinctness check.
	tids := make([]int32, repeat*threads)
	var seq atomic.Int64
	left := atomic.Int64{}
	left.Store(int64(repeat))
	var wg sync.WaitGroup
	start := time.Now()
	for p := 0; p < parallel; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				var started, joined sync.WaitGroup
				done := make(chan struct{})
				for i := 0; i < threads; i++ {
					started.Add(1)
					joined.Add(1)
					go func() {
						runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
						tids[seq.Add(1)-1] = int32(unix.Gettid())
						if watched != nil {
							touchMu.Lock()
							for j := range watched {
								watched[j] = 1
							}
							touchMu.Unlock()
						}
						started.Done()
						<-done
						joined.Done()
					}()
				}
				started.Wait()
				close(done)
				joined.Wait()
			}
		}(p)
	}
	wg.Wait()
	elapsed := time.Since(start)
	window := tidWindow(len(tids))
	fmt.Printf("usec=%g workers=%d distinct=%d window=%d\n", float64(elapsed.Nanoseconds())/1e3, len(tids), distinctWithin(tids, window), window)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// tidWindow is the distinctness window for n workers: a quarter of
// /proc/sys/kernel/pid_max (the kernel's default minimum, 32768, when it
// cannot be read), and at most n.
func tidWindow(n int) int {
	pidMax := 32768
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			pidMax = v
		}
	}
	return max(1, min(n, pidMax/4))
}

// distinctWithin counts the entries of ids that differ from each of the
// window-1 entries before them.
func distinctWithin(ids []int32, window int) int {
	last := make(map[int32]int, min(len(ids), window))
	n := 0
	for i, id := range ids {
		if j, ok := last[id]; !ok || i-j >= window {
			n++
		}
		last[id] = i
	}
	return n
}

// enableChild starts passive threads blocked in the kernel and active ones
// spinning, says "ready", and keeps them until its stdin closes.
func enableChild(passive, active int) error {
	var stop atomic.Bool
	done := make(chan struct{})
	var started, joined sync.WaitGroup
	for i := 0; i < passive+active; i++ {
		started.Add(1)
		joined.Add(1)
		go func(spin bool) {
			defer joined.Done()
			runtime.LockOSThread()
			started.Done()
			if spin {
				for !stop.Load() {
				}
				return
			}
			<-done // a locked goroutine parks its thread in futex_wait
		}(i >= passive)
	}
	started.Wait()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	stop.Store(true)
	close(done)
	joined.Wait()
	return nil
}

var perfUsecsRE = regexp.MustCompile(`(?m)^\s*([0-9.]+)\s+usecs/op\s*$`)

// parsePerfUsecs extracts the usecs/op line of perf bench breakpoint output.
func parsePerfUsecs(out string) (float64, error) {
	if strings.Contains(out, "Skipping") {
		return 0, Skipf("perf bench: %s", strings.TrimSpace(out))
	}
	m := perfUsecsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("bench: no usecs/op in perf bench output %q", out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// runPerfBench runs `perf bench -r repeat breakpoint <args>` and returns its
// usecs/op; ok is false when perf is not installed.
func runPerfBench(ctx context.Context, repeat int, args ...string) (usecs float64, ok bool, err error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return 0, false, nil
	}
	full := append([]string{"bench", "-r", strconv.Itoa(repeat), "breakpoint"}, args...)
	out, err := outputOf(exec.CommandContext(ctx, perf, full...))
	if err != nil {
		return 0, true, fmt.Errorf("bench: perf %s: %w", strings.Join(full, " "), err)
	}
	u, err := parsePerfUsecs(out)
	return u, true, err
}

// startChild starts cmd with a parent-death signal (SIGKILL), so that the
// child dies with this process even when it is killed. The signal fires
// when the OS thread that started the child exits, not the process: the
// goroutine is locked to its thread around Start and unlocked (the thread
// lives on in the runtime's pool) afterwards; a caller that ends its
// locked thread after starting a child would kill the child.
func startChild(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// outputOf runs cmd, started by startChild, to its end and returns its
// standard output; every path reaps it (exec.CommandContext kills it on
// cancellation, Wait reaps it). A failure carries its standard error.
func outputOf(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := startChild(cmd); err != nil {
		return "", err
	}
	if err := cmd.Wait(); err != nil {
		return stdout.String(), fmt.Errorf("%w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func perfVersion() string {
	out, err := outputOf(exec.Command("perf", "--version"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// kernelCases lists the quick or full cases. Full matches the reference
// `perf bench -r 200 breakpoint thread -p 2 -t 10` with -b 0 and 4.
func kernelCases(o Options) ([]Case, error) {
	repeat, enableRepeat := 50, 2000
	bps := []int{0, 4}
	enables := [][2]int{{0, 0}, {16, 0}, {0, 1}}
	if o.Full {
		repeat, enableRepeat = 200, 4000
		bps = []int{0, 1, 4}
		enables = append(enables, [2]int{64, 0}, [2]int{16, 1})
	}
	var cs []Case
	for _, b := range bps {
		cs = append(cs, threadCase(ThreadParams{Breakpoints: b, Parallelism: 2, Threads: 10, Repeat: repeat}))
	}
	for _, pa := range enables {
		cs = append(cs, enableCase(EnableParams{Passive: pa[0], Active: pa[1], Repeat: enableRepeat}))
	}
	return cs, nil
}

func kernelParams(kv ...string) map[string]string {
	m := map[string]string{"backend": "perf", "kernel": harness.KernelRelease(), "gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0))}
	if v := perfVersion(); v != "" {
		m["perf"] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// threadCase measures p with breakpoints and, for Breakpoints > 0, with
// none in the same case, from Go and from perf bench when installed.
// n > 0 sets the number of threads created (Repeat = n / Threads).
func threadCase(p ThreadParams) Case {
	name := fmt.Sprintf("KernelThread/breakpoints=%d/parallelism=%d/threads=%d", p.Breakpoints, p.Parallelism, p.Threads)
	return Case{
		Name:     name,
		Estimate: time.Duration(4*kernelRounds*p.Repeat*p.Threads) * 100 * time.Microsecond,
		Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
			t.StopTimer()
			p := p // n must not change the case's own default
			if n > 0 {
				p.Repeat = max(1, int(n)/p.Threads)
			}
			base := p
			base.Breakpoints = 0
			args := func(b int) []string {
				return []string{"thread", "-b", strconv.Itoa(b), "-p", strconv.Itoa(p.Parallelism), "-t", strconv.Itoa(p.Threads)}
			}
			// The machine is shared and noisy: alternate the four runs for
			// kernelRounds rounds and report medians, so the ratios compare
			// runs made at nearly the same time.
			var goB, go0, perfB, perf0 []float64
			havePerf := true
			for r := 0; r < kernelRounds; r++ {
				if r == 0 { // go test's ns/op: one Go run, child start included
					t.StartTimer()
				}
				run, err := RunThread(ctx, p, false)
				t.StopTimer()
				if err != nil {
					return Result{}, err
				}
				if run.DistinctOS != run.Workers {
					return Result{}, fmt.Errorf("bench: %s: %d of %d workers ran on a thread id already used within the previous %d workers; threads were reused, not created", name, run.Workers-run.DistinctOS, run.Workers, run.Window)
				}
				goB = append(goB, run.UsecsPerOp)
				if p.Breakpoints > 0 {
					b0, err := RunThread(ctx, base, false)
					if err != nil {
						return Result{}, err
					}
					go0 = append(go0, b0.UsecsPerOp)
				}
				if !havePerf {
					continue
				}
				pu, ok, err := runPerfBench(ctx, p.Repeat, args(p.Breakpoints)...)
				if err != nil || !ok {
					if err = ignoreSkip(err); err != nil {
						return Result{}, err
					}
					havePerf = false
					continue
				}
				perfB = append(perfB, pu)
				if p.Breakpoints > 0 {
					pb0, _, err := runPerfBench(ctx, p.Repeat, args(0)...)
					if err != nil {
						return Result{}, err
					}
					perf0 = append(perf0, pb0)
				}
			}
			batches := roundBatches(goB)
			u := median(goB)
			res := Result{
				Experiment: "kernel",
				Name:       name,
				Params: kernelParams("breakpoints", strconv.Itoa(p.Breakpoints), "parallelism", strconv.Itoa(p.Parallelism),
					"threads", strconv.Itoa(p.Threads), "repeat", strconv.Itoa(p.Repeat), "rounds", strconv.Itoa(kernelRounds)),
				Iterations: int64(p.Repeat * p.Threads),
				NsPerOp:    u * 1e3,
				Metrics:    map[string]float64{"usecs/op": u},
				Batches:    batches,
			}
			if len(go0) > 0 {
				res.Metrics["b0-usecs/op"] = median(go0)
				res.Metrics["slowdown"] = u / median(go0)
			}
			if havePerf && len(perfB) > 0 {
				res.Metrics["perf-usecs/op"] = median(perfB)
				res.Metrics["go/perf"] = u / median(perfB)
				if len(perf0) > 0 {
					res.Metrics["perf-b0-usecs/op"] = median(perf0)
					res.Metrics["perf-slowdown"] = median(perfB) / median(perf0)
				}
			}
			return res, nil
		},
	}
}

// roundBatches returns the Go runs' usecs/op, one per round, as the case's
// batches: each round is a separate child process, as independent as
// runs of the case get.
func roundBatches(usecs []float64) map[string][]float64 {
	if len(usecs) < 2 {
		return nil
	}
	ns := make([]float64, len(usecs))
	for i, u := range usecs {
		ns[i] = u * 1e3
	}
	return map[string][]float64{"usecs/op": append([]float64(nil), usecs...), "ns/op": ns}
}

// kernelRounds is how many times each case alternates its Go and perf
// bench runs; results are medians.
const kernelRounds = 3

// enableCase measures p from Go and from perf bench when installed.
// n > 0 sets Repeat.
func enableCase(p EnableParams) Case {
	name := fmt.Sprintf("KernelEnable/passive=%d/active=%d", p.Passive, p.Active)
	return Case{
		Name:     name,
		Estimate: kernelRounds * (time.Duration(2*p.Repeat)*100*time.Microsecond + 200*time.Millisecond),
		Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
			t.StopTimer()
			p := p // n must not change the case's own default
			if n > 0 {
				p.Repeat = int(n)
			}
			var goU, perfU []float64
			havePerf := true
			for r := 0; r < kernelRounds; r++ {
				if r == 0 {
					t.StartTimer()
				}
				u, err := RunEnable(ctx, p)
				t.StopTimer()
				if err != nil {
					return Result{}, err
				}
				goU = append(goU, u)
				if !havePerf {
					continue
				}
				pu, ok, err := runPerfBench(ctx, p.Repeat, "enable", "-p", strconv.Itoa(p.Passive), "-a", strconv.Itoa(p.Active))
				if err != nil || !ok {
					if err = ignoreSkip(err); err != nil {
						return Result{}, err
					}
					havePerf = false
					continue
				}
				perfU = append(perfU, pu)
			}
			batches := roundBatches(goU)
			u := median(goU)
			res := Result{
				Experiment: "kernel",
				Name:       name,
				Params:     kernelParams("passive", strconv.Itoa(p.Passive), "active", strconv.Itoa(p.Active), "repeat", strconv.Itoa(p.Repeat), "rounds", strconv.Itoa(kernelRounds)),
				Iterations: int64(p.Repeat),
				NsPerOp:    u * 1e3,
				Metrics:    map[string]float64{"usecs/op": u},
				Batches:    batches,
			}
			if havePerf && len(perfU) > 0 {
				res.Metrics["perf-usecs/op"] = median(perfU)
				res.Metrics["go/perf"] = u / median(perfU)
			}
			return res, nil
		},
	}
}

// ignoreSkip drops a perf bench skip (no hardware support): the Go figures
// still stand.
func ignoreSkip(err error) error {
	if errors.Is(err, ErrSkip) {
		return nil
	}
	return err
}

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"bpbench/internal/child"
	"bpbench/internal/testenv"
)

func BenchmarkKernelThread(b *testing.B) { benchKernel(b, "KernelThread") }

func BenchmarkKernelEnable(b *testing.B) { benchKernel(b, "KernelEnable") }

// benchKernel runs the kernel experiment's cases named prefix/...,
// holding the debug-register lock.
func benchKernel(b *testing.B, prefix string) {
	testenv.LockDebugRegs(b)
	var cs []Case
	for _, c := range casesOf(b, "kernel", Options{}) {
		if strings.HasPrefix(c.Name, prefix+"/") {
			cs = append(cs, c)
		}
	}
	runCases(b, prefix, cs)
}

// TestKernelThreadInherits checks that the Go workload really creates a new
// OS thread per worker and that every one of them carries the inherited
// breakpoints: each worker writes each watched byte once, and the parent's
// events count every write, summed over the threads that inherited them.
func TestKernelThreadInherits(t *testing.T) {
	testenv.LockDebugRegs(t)
	p := threadParams{Breakpoints: 4, Parallelism: 2, Threads: 5, Repeat: 6}
	run, err := runThread(context.Background(), p, true)
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if want := p.Repeat * p.Threads; run.Workers != want || run.DistinctOS != want {
		t.Fatalf("workers = %d on %d distinct OS threads, want %d on %d", run.Workers, run.DistinctOS, want, want)
	}
	if len(run.Counts) != p.Breakpoints {
		t.Fatalf("%d counts, want %d", len(run.Counts), p.Breakpoints)
	}
	for i, n := range run.Counts {
		if n != uint64(run.Workers) {
			t.Errorf("breakpoint %d counted %d accesses, want %d (one write per worker)", i, n, run.Workers)
		}
	}
	if run.UsecsPerOp <= 0 {
		t.Errorf("usecs/op = %v, want > 0", run.UsecsPerOp)
	}
}

// TestKernelCases runs a tiny case of each kind and checks the results are
// sane and, where perf is installed, that its output was parsed.
func TestKernelCases(t *testing.T) {
	testenv.LockDebugRegs(t)
	_, perfErr := exec.LookPath("perf")
	cases := []Case{
		threadCase(threadParams{Breakpoints: 2, Parallelism: 2, Threads: 4, Repeat: 5}),
		enableCase(enableParams{Passive: 2, Active: 1, Repeat: 200}),
	}
	for _, c := range cases {
		res, err := c.Run(context.Background(), 0, NopTimer)
		testenv.SkipIfUnsupported(t, err)
		if err != nil {
			t.Fatal(err)
		}
		if res.Name != c.Name || res.Experiment != "kernel" {
			t.Errorf("result %q/%q, want kernel/%q", res.Experiment, res.Name, c.Name)
		}
		if res.Metrics[MetricUsecs] <= 0 || res.NsPerOp <= 0 || res.Iterations <= 0 {
			t.Errorf("%s: usecs/op = %v, ns/op = %v, iterations = %d; want > 0", c.Name, res.Metrics[MetricUsecs], res.NsPerOp, res.Iterations)
		}
		if got := res.Batches[MetricUsecs]; len(got) != kernelRounds || len(res.Batches[UnitNsPerOp]) != kernelRounds {
			t.Errorf("%s: batches %v, want one per round (%d)", c.Name, res.Batches, kernelRounds)
		}
		if res.Params["kernel"] == "" {
			t.Errorf("%s: no kernel release in Params %v", c.Name, res.Params)
		}
		thread := strings.HasPrefix(c.Name, "KernelThread/")
		want := []string{MetricUsecs}
		if thread {
			// Every created thread blocks at least once (it waits to be
			// released), so there is at least one voluntary switch per
			// thread.
			want = append(want, MetricB0Usecs, MetricSlowdown, MetricCswPerThread)
		}
		if perfErr == nil {
			want = append(want, MetricPerfUsecs, MetricGoPerPerf)
			if thread {
				want = append(want, MetricPerfB0Usecs, MetricPerfSlowdown, MetricPerfCswPerThread)
			}
		}
		for _, m := range want {
			if v, ok := res.Metrics[m]; !ok || v <= 0 {
				t.Errorf("%s: metric %s = %v (present %v), want > 0", c.Name, m, v, ok)
			}
			// Each figure has one value per round, perf bench's too, so
			// that a single run gives intervals on both sides.
			if got := res.Batches[m]; len(got) != kernelRounds {
				t.Errorf("%s: %s batches %v, want one per round (%d)", c.Name, m, got, kernelRounds)
			}
		}
		if thread && res.Metrics[MetricCswPerThread] < 1 {
			t.Errorf("%s: %v voluntary switches per created thread; each one blocks until released", c.Name, res.Metrics[MetricCswPerThread])
		}
		t.Logf("%s: %v", c.Name, res.Metrics)
	}
}

func TestParsePerfUsecs(t *testing.T) {
	out := "# Running 'breakpoint/thread' benchmark:\n# Created/joined 200 threads with 4 breakpoints and 2 parallelism\n     Total time: 0.163 [sec]\n\n     81.712500 usecs/op\n    163.425000 usecs/op/cpu\n"
	u, err := parsePerfUsecs(out)
	if err != nil || u != 81.7125 {
		t.Fatalf("parsePerfUsecs = %v, %v; want 81.7125", u, err)
	}
	if _, err := parsePerfUsecs("Skipping perf bench breakpoint thread: No hardware support\n"); !errors.Is(err, ErrSkip) {
		t.Fatalf("skip output: err = %v, want ErrSkip", err)
	}
	if _, err := parsePerfUsecs("garbage"); err == nil || errors.Is(err, ErrSkip) {
		t.Fatalf("garbage output: err = %v, want a parse error", err)
	}
}

func TestKernelParamsValidate(t *testing.T) {
	bad := []error{
		threadParams{Breakpoints: 5, Parallelism: 1, Threads: 1, Repeat: 1}.validate(),
		threadParams{Breakpoints: 0, Parallelism: 0, Threads: 1, Repeat: 1}.validate(),
		threadParams{Breakpoints: 0, Parallelism: 1, Threads: 0, Repeat: 1}.validate(),
		threadParams{Breakpoints: 0, Parallelism: 1, Threads: 1, Repeat: 0}.validate(),
		enableParams{Passive: -1, Repeat: 1}.validate(),
		enableParams{Active: -1, Repeat: 1}.validate(),
		enableParams{Repeat: 0}.validate(),
	}
	for i, err := range bad {
		if !errors.Is(err, ErrInvalidParam) {
			t.Errorf("case %d: err = %v, want ErrInvalidParam", i, err)
		}
	}
}

func TestDistinctWithin(t *testing.T) {
	ids := []int32{1, 2, 3, 1, 4, 5, 6, 7, 2}
	// Window 3: the 1 at index 3 is 3 after the first (not within), the
	// final 2 is 7 after its first: every id counts.
	if got := distinctWithin(ids, 3); got != len(ids) {
		t.Errorf("window 3: %d distinct, want %d", got, len(ids))
	}
	// Window 4: the second 1 is within; the second 2 is not.
	if got := distinctWithin(ids, 4); got != len(ids)-1 {
		t.Errorf("window 4: %d distinct, want %d", got, len(ids)-1)
	}
	if got := distinctWithin(ids, len(ids)); got != len(ids)-2 {
		t.Errorf("whole run: %d distinct, want %d", got, len(ids)-2)
	}
	if w := tidWindow(10); w != 10 {
		t.Errorf("tidWindow(10) = %d, want 10", w)
	}
	if w := tidWindow(1 << 30); w < 1 || w >= 1<<30 {
		t.Errorf("tidWindow(2^30) = %d, want a quarter of pid_max", w)
	}
}

// deathParentMode is the child mode TestChildrenDieWithParent runs its
// parent in: it starts the children this package starts (a kernel child
// with a breakpoint, and a command through startChild, as perf bench is),
// prints their pids and waits to be killed.
const deathParentMode = "bench-test-death-parent"

func init() { child.Add(deathParentMode, deathParentMain) }

func deathParentMain() int {
	sleep := exec.Command("sleep", "1000")
	if err := startChild(sleep); err != nil {
		fmt.Println("error", err)
		return 1
	}
	kpid := 0
	c, err := startKernelChild(context.Background(), "enable", []int{0, 0}, 1)
	if err == nil {
		kpid = c.cmd.Process.Pid
	} else if !errors.Is(err, ErrSkip) {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("pids", sleep.Process.Pid, kpid)
	select {}
}

// TestChildrenDieWithParent checks that the children the experiment
// starts die when their parent is SIGKILLed, so nothing outlives a killed
// run: it re-executes the test binary as such a parent, kills it, and
// waits for each child's pid to vanish (or turn zombie, waiting for its
// new parent to reap it). The timeout only bounds a failure.
func TestChildrenDieWithParent(t *testing.T) {
	testenv.LockDebugRegs(t) // the kernel child opens a breakpoint
	exe, argv, err := child.Self(deathParentMode)
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(exe, argv[1:]...)
	parent.Env = append(os.Environ(), child.Env(deathParentMode))
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := startChild(parent); err != nil { // dies with this test too
		t.Fatal(err)
	}
	defer parent.Wait()
	defer parent.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("parent said %q: %v", line, err)
	}
	var sleepPid, kernelPid int
	if _, err := fmt.Sscanf(line, "pids %d %d", &sleepPid, &kernelPid); err != nil {
		t.Fatalf("parent said %q: %v", line, err)
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	pids := []int{sleepPid}
	if kernelPid != 0 {
		pids = append(pids, kernelPid)
	} else {
		t.Log("no perf breakpoints here: only the startChild child is checked")
	}
	for _, pid := range pids {
		deadline := time.Now().Add(time.Minute)
		for alive(pid) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("child %d still alive a minute after its parent was killed", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

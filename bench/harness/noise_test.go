package harness

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bpbench/internal/child"
	"bpbench/internal/testenv"
)

// TestMain serves the child modes the noise tests start copies of the test
// binary in.
func TestMain(m *testing.M) { testenv.Main(m) }

// spinEnv carries a spinning child's CPU time to burn, in milliseconds.
const spinEnv = "BPBENCH_TEST_SPIN_MS"

func init() {
	child.Add("harness-spin", spinChild)
	child.Add("harness-spin-parent", spinParentChild)
}

// cpuNs is this process's CPU time, all threads.
func cpuNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// spinChild waits for a line on stdin, burns spinEnv ms of CPU time, says
// "spun <ns>" (the CPU time it burnt), and exits at EOF on stdin: a
// child that is alive before, during and after its work, as the test
// needs.
func spinChild() int {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return 1
	}
	ms, _ := strconv.Atoi(os.Getenv(spinEnv))
	t0 := cpuNs()
	for cpuNs()-t0 < int64(ms)*1e6 {
	}
	fmt.Printf("spun %d\n", cpuNs()-t0)
	io.Copy(io.Discard, in)
	return 0
}

// spinParentChild is spinChild's work done by a grandchild: on a line on
// stdin it starts a spinChild, lets it spin, reaps it, says "spun <ns>"
// with the grandchild's CPU time, and exits at EOF on stdin.
func spinParentChild() int {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return 1
	}
	exe, argv, err := child.Self("harness-spin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command(exe, argv[1:]...)
	cmd.Env = append(os.Environ(), child.Env("harness-spin"))
	cmd.Stdin = strings.NewReader("go\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("spun %d\n", cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	io.Copy(io.Discard, in)
	return 0
}

// spinner is a running spinChild or spinParentChild.
type spinner struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startSpinner(t *testing.T, mode string, ms int) *spinner {
	t.Helper()
	exe, argv, err := child.Self(mode)
	if err != nil {
		t.Fatal(err)
	}
	s := &spinner{cmd: exec.Command(exe, argv[1:]...)}
	s.cmd.Env = append(os.Environ(), child.Env(mode), spinEnv+"="+strconv.Itoa(ms))
	s.cmd.Stderr = os.Stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.out = bufio.NewReader(stdout)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	return s
}

// spin has the spinner do its work and returns the CPU time it burnt in
// clock ticks, rounded down.
func (s *spinner) spin(t *testing.T) uint64 {
	t.Helper()
	if _, err := io.WriteString(s.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	line, err := s.out.ReadString('\n')
	var ns int64
	if _, serr := fmt.Sscanf(line, "spun %d", &ns); err != nil || serr != nil {
		t.Fatalf("spinner said %q: %v %v", line, err, serr)
	}
	return uint64(ns / tickNs)
}

// reap ends the spinner and returns its whole CPU time (its reaped
// children's included) in clock ticks, rounded up.
func (s *spinner) reap(t *testing.T) uint64 {
	t.Helper()
	s.stdin.Close()
	if err := s.cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	ru := s.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	ns := ru.Utime.Nano() + ru.Stime.Nano()
	return uint64((ns + tickNs - 1) / tickNs)
}

// tickNs is a clock tick (USER_HZ = 100).
const tickNs = int64(10 * time.Millisecond)

// ownTicks is this process's own CPU time, children left out.
func ownTicks(t *testing.T) uint64 {
	st, ok := readProcStat("self")
	if !ok {
		t.Fatal("cannot read /proc/self/stat")
	}
	return st.own
}

// TestFamilyTicksCountsChildren checks that the CPU time of a case's
// children counts as the case's own, whatever the child's life relative
// to the case: started and reaped within it, alive at both ends, alive at
// the start and reaped within, and a grandchild reaped by a child alive at
// both ends. The family's ticks over the case must hold the work the
// child did inside it (less the ticks lost to rounding) and no more than
// this process's own time and the child's whole life (so nothing is
// counted twice). Timing-free: the machine may be as loaded as it likes.
func TestFamilyTicksCountsChildren(t *testing.T) {
	const ms = 300
	// slack is the rounding: each reading truncates this process's
	// utime, stime, cutime and cstime and each live descendant's, to
	// whole ticks.
	const slack = 4
	check := func(t *testing.T, f0, f1, own0, own1, inside, whole uint64) {
		t.Helper()
		got := f1 - f0
		own := own1 - own0
		t.Logf("family +%d ticks: own +%d, child %d inside the case, %d in its life", got, own, inside, whole)
		if got+slack < inside {
			t.Errorf("family ticks grew by %d over the case, less than the %d ticks the child burnt in it: its work would count as another process's", got, inside)
		}
		if got > own+whole+slack {
			t.Errorf("family ticks grew by %d, more than this process's %d and the child's whole %d: counted twice", got, own, whole)
		}
	}
	// Each life says whether the child starts after the case's first
	// reading and whether it is reaped before the case's last one.
	for _, tc := range []struct {
		life                      string
		mode                      string
		startsInside, reapsInside bool
	}{
		{"within", "harness-spin", true, true},
		{"across", "harness-spin", false, false},
		{"reaped-inside", "harness-spin", false, true},
		{"grandchild", "harness-spin-parent", false, false},
	} {
		t.Run("life="+tc.life, func(t *testing.T) {
			var s *spinner
			if !tc.startsInside {
				s = startSpinner(t, tc.mode, ms)
			}
			f0, own0 := familyTicks(), ownTicks(t)
			if tc.startsInside {
				s = startSpinner(t, tc.mode, ms)
			}
			inside := s.spin(t)
			var whole uint64
			if tc.reapsInside {
				whole = s.reap(t)
			}
			f1, own1 := familyTicks(), ownTicks(t)
			if !tc.reapsInside {
				whole = s.reap(t)
			}
			check(t, f0, f1, own0, own1, inside, whole)
		})
	}
}

// TestNoiseLeavesChildrenOut checks the probe's arithmetic end to end: a
// case whose work is a child's spinning does not count that work among
// the other processes, so Others is at most what the CPUs did beyond it.
func TestNoiseLeavesChildrenOut(t *testing.T) {
	p := StartNoise()
	s := startSpinner(t, "harness-spin", 300)
	inside := s.spin(t)
	s.reap(t)
	n := p.Stop()
	t.Logf("%+v, child %d ticks", n, inside)
	if n.Ticks == 0 || n.CPUs < 1 {
		t.Fatalf("probe read no ticks: %+v", n)
	}
	busy := n.Busy * float64(n.Ticks)
	others := n.Others * float64(n.Ticks)
	// Others counts busy ticks less the family's; the child's are in the
	// family, less rounding of a few ticks.
	if others > busy-float64(inside)+4 {
		t.Errorf("others took %.0f of %.0f busy ticks while the child burnt %d: the child counted as another process", others, busy, inside)
	}
}

// TestNoiseReadsProc checks that a probe over some work reads the kernel's
// counters: fractions in range and at least this process runnable.
func TestNoiseReadsProc(t *testing.T) {
	p := StartNoise()
	x := 0
	for i := 0; i < 1e7; i++ {
		x += i
	}
	_ = x
	n := p.Stop()
	if n.RunnableMax < 1 || n.Busy < 0 || n.Busy > 1 || n.Steal < 0 || n.Steal > 1 || n.Others < 0 || n.Others > 1 || n.LoadAvg1 < 0 {
		t.Errorf("implausible noise %+v", n)
	}
}

// TestLoadedBeyondTicks checks that a share of the CPUs' time counts as
// load only beyond what the tick counters can resolve: one stray tick in
// a short case is not load, the same share over a long case is.
func TestLoadedBeyondTicks(t *testing.T) {
	for _, c := range []struct {
		n    Noise
		want bool
	}{
		// A 40 ms case on 2 CPUs: 8 ticks, margin 3/8.
		{Noise{Ticks: 8, CPUs: 2, Others: 1.0 / 8}, false},
		{Noise{Ticks: 8, CPUs: 2, Others: 3.0 / 8}, false},
		{Noise{Ticks: 8, CPUs: 2, Others: 4.0 / 8}, true},
		{Noise{Ticks: 8, CPUs: 2, Steal: 3.0 / 8}, false},
		// A second on 2 CPUs: 200 ticks, margin 1.5%.
		{Noise{Ticks: 200, CPUs: 2, Others: 1.0 / 8}, true},
		{Noise{Ticks: 200, CPUs: 2, Others: 0.11}, false},
		{Noise{Ticks: 200, CPUs: 2, Steal: 0.04}, true},
		// No ticks: the counters say nothing; the lock and the pin do.
		{Noise{Others: 0.9}, false},
		{Noise{LockWait: time.Millisecond}, true},
		{Noise{Ticks: 8, CPUs: 2, PinLost: 1}, true},
	} {
		if got := c.n.Loaded(); got != c.want {
			t.Errorf("%+v: Loaded() = %v, want %v (margin %.3f)", c.n, got, c.want, c.n.Margin())
		}
	}
	if (Noise{Ticks: 3, CPUs: 2}).Resolved() || !(Noise{Ticks: 4, CPUs: 2}).Resolved() {
		t.Error("3 ticks on 2 CPUs resolve nothing (margin 1); 4 do (margin 0.75)")
	}
}

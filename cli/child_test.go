package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bpbench/bench"
	"bpbench/internal/child"
	"bpbench/internal/testenv"
)

// childOutEnv names the directory the child mode "cli-test-run" writes
// into: the test binary becomes a bpbench run of one case that blocks
// until the run is cancelled, a real process the tests can signal or kill
// midway through a run.
const childOutEnv = "BPBENCH_CLI_TEST_OUT"

func init() {
	child.Add("cli-test-run", func() int {
		out := os.Getenv(childOutEnv)
		return withSignals(func(ctx context.Context) int {
			return finish(ctx, runExperiments(ctx, &runConfig{exps: []bench.Experiment{blockingExperiment()}, count: 1, out: out, slots: fixedSlots, conform: noConform}, os.Stdout, os.Stderr), os.Stderr)
		})
	})
}

func TestMain(m *testing.M) { testenv.Main(m) }

// blockingExperiment has one case that runs until its context is
// cancelled.
func blockingExperiment() bench.Experiment {
	c := bench.Case{Name: "Block/case=wait", Estimate: time.Hour, Run: func(ctx context.Context, _ int64, _ bench.Timer) (bench.Result, error) {
		<-ctx.Done()
		return bench.Result{}, ctx.Err()
	}}
	return bench.Experiment{Name: "block", Cases: func(bench.Options) ([]bench.Case, error) { return []bench.Case{c}, nil }}
}

// childRun is a running child bpbench run.
type childRun struct {
	cmd     *exec.Cmd
	stderr  bytes.Buffer
	exited  chan struct{}
	partial string // its partial results directory
}

// startChildRun starts the test binary as a blocking run writing to
// parent/res and returns once its partial directory exists, that is once
// the run is under way (the condition is polled; nothing is timed). The
// child is killed and reaped when the test ends, whatever happened.
func startChildRun(t *testing.T, parent string) *childRun {
	t.Helper()
	c := &childRun{exited: make(chan struct{})}
	exe, argv, err := child.Self("cli-test-run")
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(exe, argv[1:]...)
	c.cmd.Env = append(os.Environ(), child.Env("cli-test-run"), childOutEnv+"="+filepath.Join(parent, "res"))
	c.cmd.Stderr = &c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
	})
	for {
		for _, name := range dirEntries(t, parent) {
			if strings.Contains(name, ".partial-") {
				c.partial = filepath.Join(parent, name)
				return c
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("child run exited before starting: %v\n%s", c.cmd.ProcessState, c.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop sends sig and returns the exit status once the child is reaped.
func (c *childRun) stop(t *testing.T, sig syscall.Signal) (code int, signaled bool) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-c.exited
	ws := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws.ExitStatus(), ws.Signaled()
}

// TestSignalExitStatus interrupts real runs: SIGINT exits 130 and SIGTERM
// 143, each with one message, and nothing is left behind.
func TestSignalExitStatus(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			parent := t.TempDir()
			c := startChildRun(t, parent)
			code, signaled := c.stop(t, tc.sig)
			if signaled || code != tc.code {
				t.Errorf("exit status %d (killed by the signal: %v), want %d", code, signaled, tc.code)
			}
			msg := c.stderr.String()
			if n := strings.Count(msg, "interrupted"); n != 1 || !strings.Contains(msg, "bpbench: interrupted by "+unix.SignalName(tc.sig)+": nothing written\n") {
				t.Errorf("want one interrupt message naming %v, got %d:\n%s", tc.sig, n, msg)
			}
			if names := dirEntries(t, parent); len(names) != 0 {
				t.Errorf("interrupted run left %v", names)
			}
		})
	}
}

// TestStalePartialRemoved kills a real run outright, which leaves its
// partial directory; the next run removes it and says so.
func TestStalePartialRemoved(t *testing.T) {
	parent := t.TempDir()
	c := startChildRun(t, parent)
	if _, signaled := c.stop(t, syscall.SIGKILL); !signaled {
		t.Fatal("child not killed by SIGKILL")
	}
	if _, err := os.Stat(c.partial); err != nil {
		t.Fatalf("SIGKILL left no partial directory to clean up: %v", err)
	}
	// A live run's partial directory (this process's) must survive.
	live, err := os.MkdirTemp(parent, partialPattern("other"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(parent, "res")
	var o, e bytes.Buffer
	if err := runExperiments(context.Background(), &runConfig{exps: []bench.Experiment{okExperiment()}, count: 1, out: out, slots: fixedSlots, conform: noConform}, &o, &e); err != nil {
		t.Fatalf("%v\n%s", err, e.String())
	}
	want := fmt.Sprintf("removed stale partial directory %s (its run, PID %d, is no longer running)\n", c.partial, c.cmd.Process.Pid)
	if !strings.Contains(e.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, e.String())
	}
	names := dirEntries(t, parent)
	if len(names) != 2 || !slicesContain(names, "res") || !slicesContain(names, filepath.Base(live)) {
		t.Errorf("parent holds %v, want res and the live partial directory only", names)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// okExperiment has one instant case.
func okExperiment() bench.Experiment {
	c := bench.Case{Name: "Fixture/case=ok", Estimate: time.Millisecond, Run: func(context.Context, int64, bench.Timer) (bench.Result, error) {
		return bench.Result{Iterations: 10, NsPerOp: 5}, nil
	}}
	return bench.Experiment{Name: "fixture", Cases: func(bench.Options) ([]bench.Case, error) { return []bench.Case{c}, nil }}
}

func TestPartialOwner(t *testing.T) {
	self := strings.TrimSuffix(partialPattern("res"), "-") + "-123"
	if pid, alive, ours := partialOwnerAlive(self); !ours || !alive || pid != os.Getpid() {
		t.Errorf("own partial %q: pid %d alive %v ours %v", self, pid, alive, ours)
	}
	// The same PID with another start time is a reused PID: stale.
	reused := fmt.Sprintf(".res.partial-%d-1-123", os.Getpid())
	if _, alive, ours := partialOwnerAlive(reused); !ours || alive {
		t.Errorf("reused pid %q: alive %v ours %v", reused, alive, ours)
	}
	// Old-style names (no owner) are not ours to remove.
	if _, _, ours := partialOwnerAlive(".res.partial-123456"); ours {
		t.Error("an unattributable partial directory counted as attributable")
	}
}

// fixedSlots stands in for the slot probe in runs of fixture experiments,
// which must not wait for the machine-wide debug-register lock.
func fixedSlots() (int, error) { return 4, nil }

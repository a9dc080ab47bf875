package bench

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"bpbench/alloc"
	"bpbench/bench/schedsim"
	"bpbench/hwregs"
	"bpbench/hwregs/tracee"
	"bpbench/internal/testenv"
)

// BenchmarkSwitch runs the switch cases; each takes the debug-register
// lock itself.
func BenchmarkSwitch(b *testing.B) { runCases(b, "Switch", casesOf(b, "switch", Options{})) }

// startArmed starts a ping-pong tracee armed through backend, skipping
// where the machine cannot.
func startArmed(t *testing.T, backend string, nbp, threads int) *pingPong {
	t.Helper()
	pp, err := startPingPong(0, switchTracerCPU(0))
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pp.close)
	err = pp.arm(backend, nbp, threads)
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	return pp
}

// TestSwitchBreakpointsInstalled checks that the breakpoints the switch
// experiment sets are live on exactly the threads it names: after the
// ping-pong, each worker writes its watched variables, and only the armed
// threads' writes are counted (perf) or trapped (ptrace).
func TestSwitchBreakpointsInstalled(t *testing.T) {
	testenv.LockDebugRegs(t)
	const writes = 7
	for _, be := range []string{SwitchPerf, SwitchPtrace} {
		t.Run("backend="+be, func(t *testing.T) {
			pp := startArmed(t, be, 4, 1)
			if _, err := pp.trips(100); err != nil {
				t.Fatal(err)
			}
			for v := 0; v < hwregs.NumSlots; v++ {
				res, err := pp.p.Run(tracee.Command{Op: tracee.OpWrite, Var: v, Count: writes})
				if err != nil {
					t.Fatal(err)
				}
				if be == SwitchPtrace {
					if got := res.Traps[0][v]; got != writes {
						t.Errorf("thread 0 slot %d: %d traps, want %d", v, got, writes)
					}
					if got := res.Traps[1][v]; got != 0 {
						t.Errorf("thread 1 (not armed) slot %d: %d traps, want 0", v, got)
					}
				}
			}
			if be == SwitchPerf {
				if len(pp.events) != 4 {
					t.Fatalf("%d events, want 4", len(pp.events))
				}
				for v, e := range pp.events {
					n, err := e.Count()
					if err != nil {
						t.Fatal(err)
					}
					if n != writes {
						t.Errorf("breakpoint %d on thread 0 counted %d writes, want %d", v, n, writes)
					}
				}
			}
		})
	}
}

// TestSwitchFifthRefused checks that four breakpoints really hold all of
// the armed thread's slots: the kernel refuses a fifth on it, through
// either backend, and admits one on the unarmed thread.
func TestSwitchFifthRefused(t *testing.T) {
	testenv.LockDebugRegs(t)
	for _, be := range []string{SwitchPerf, SwitchPtrace} {
		t.Run("backend="+be, func(t *testing.T) {
			pp := startArmed(t, be, 4, 1)
			h := pp.p.Hello()
			a := hwregs.Attr{Addr: h.SharedVarAddr(0), Len: 8, Type: hwregs.Write}
			e, err := hwregs.OpenPerf(a, h.Tids[0], -1)
			if err == nil {
				e.Close()
				t.Fatal("a fifth breakpoint on the armed thread was admitted")
			}
			if !errors.Is(err, alloc.ErrNoSlot) {
				t.Fatalf("fifth breakpoint: %v, want alloc.ErrNoSlot", err)
			}
			e, err = hwregs.OpenPerf(a, h.Tids[1], -1)
			if err != nil {
				t.Fatalf("breakpoint on the unarmed thread: %v", err)
			}
			e.Close()
		})
	}
}

// TestSwitchReaped checks that closing a ping-pong kills and reaps its
// tracee.
func TestSwitchReaped(t *testing.T) {
	pp, err := startPingPong(0, switchTracerCPU(0))
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	pid := pp.p.Pid()
	pp.close()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("tracee %d after close: kill(0) = %v, want ESRCH (killed and reaped)", pid, err)
	}
}

// TestSwitchCaseResult runs one small case end to end and checks the
// result's shape: usecs/op, slowdown and one batch figure per batch pair.
func TestSwitchCaseResult(t *testing.T) {
	var c Case
	for _, cc := range mustSwitchCases(t) {
		if cc.Name == "Switch/backend=ptrace/breakpoints=2/threads-with=2" {
			c = cc
		}
	}
	if c.Run == nil {
		t.Fatal("no case Switch/backend=ptrace/breakpoints=2/threads-with=2")
	}
	res, err := c.Run(context.Background(), 3*200, NopTimer)
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{MetricUsecs, MetricSlowdown, MetricB0Usecs} {
		if v, ok := res.Metrics[m]; !ok || !(v > 0) {
			t.Errorf("metric %s = %v (present %v), want > 0", m, v, ok)
		}
		if n := len(res.Batches[m]); n != switchQuickBatches {
			t.Errorf("%d batches of %s, want %d", n, m, switchQuickBatches)
		}
	}
	if res.Params["threads-with"] != "2" || res.Params[ParamBreakpoints] != "2" || res.Params[ParamBackend] != "ptrace" {
		t.Errorf("params %v", res.Params)
	}
}

// TestSwitchPerfBenchAnchor runs the perf bench anchor small: perf bench
// sched pipe as two processes and with -T as two threads, and the Go
// ping-pong, one figure each per batch, and the ratios between them.
func TestSwitchPerfBenchAnchor(t *testing.T) {
	const batches = 3
	c := perfBenchSchedCase(Options{}, 500, batches)
	res, err := c.Run(context.Background(), 0, NopTimer)
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{MetricUsecs, MetricThreadsUsecs, MetricGoUsecs, MetricGoPerPerfBench, MetricGoPerPerfBenchThreads, MetricProcessesPerThreads} {
		if v, ok := res.Metrics[m]; !ok || !(v > 0) {
			t.Errorf("metric %s = %v (present %v), want > 0", m, v, ok)
		}
		if n := len(res.Batches[m]); n != batches {
			t.Errorf("%d batches of %s, want %d", n, m, batches)
		}
	}
	// The ratios are of the same batch's figures.
	b := res.Batches
	for i := 0; i < batches; i++ {
		if got, want := b[MetricProcessesPerThreads][i], b[MetricUsecs][i]/b[MetricThreadsUsecs][i]; got != want {
			t.Errorf("batch %d: processes/threads %v, want %v", i, got, want)
		}
	}
	if !strings.Contains(res.Params["command-threads"], "perf bench sched pipe -T") {
		t.Errorf("params %v do not name the -T command", res.Params)
	}
	t.Logf("%v", res.Metrics)
}

// TestSwitchCaseNames checks the case list: the perf bench anchor and, per
// backend, breakpoints 0 (threads-with=0) and 1, 2, 4 on 1 or 2 threads.
func TestSwitchCaseNames(t *testing.T) {
	cs := mustSwitchCases(t)
	seen := map[string]bool{}
	for _, c := range cs {
		seen[c.Name] = true
	}
	want := []string{"Switch/backend=perfbench/breakpoints=0/threads-with=0"}
	for _, be := range []string{"perf", "ptrace"} {
		want = append(want, "Switch/backend="+be+"/breakpoints=0/threads-with=0")
		for _, b := range []string{"1", "2", "4"} {
			for _, tw := range []string{"1", "2"} {
				want = append(want, "Switch/backend="+be+"/breakpoints="+b+"/threads-with="+tw)
			}
		}
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("missing case %s", w)
		}
	}
	if len(cs) != len(want) {
		t.Errorf("%d cases, want %d", len(cs), len(want))
	}
}

func TestSwitchParamsValidate(t *testing.T) {
	good := SwitchParams{Backend: SwitchPerf, Breakpoints: 1, ThreadsWith: 1, Trips: 1, Batches: 1}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []SwitchParams{
		{Backend: "x", Trips: 1, Batches: 1},
		{Backend: SwitchPerf, Breakpoints: 5, ThreadsWith: 1, Trips: 1, Batches: 1},
		{Backend: SwitchPerf, Breakpoints: 0, ThreadsWith: 1, Trips: 1, Batches: 1},
		{Backend: SwitchPerf, Breakpoints: 1, ThreadsWith: 3, Trips: 1, Batches: 1},
		{Backend: SwitchPerf, Trips: 0, Batches: 1},
		{Backend: SwitchPerf, Trips: 1, Batches: 1, CPU: -1},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidParam) {
			t.Errorf("%+v: %v, want ErrInvalidParam", bad, err)
		} else if !strings.Contains(err.Error(), "SwitchParams.") {
			t.Errorf("%+v: %v does not name the field", bad, err)
		}
	}
}

func mustSwitchCases(t *testing.T) []Case {
	t.Helper()
	cs, err := switchCases(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// BenchmarkSwitchModel runs the switch-model cases; an op is a scheduler
// event.
func BenchmarkSwitchModel(b *testing.B) {
	runCases(b, "SwitchModel", casesOf(b, "switch-model", Options{}))
}

// TestSwitchModelCases checks the model cases' figures: lazy-global loses
// traps on 2 or more CPUs and none on 1; the other policies lose and
// misdeliver nothing; changed and lazy-percpu write no more than eager on
// the same schedule (lazy-global may: each real trap it takes for a
// leftover costs a clear that eager never makes).
func TestSwitchModelCases(t *testing.T) {
	cs, err := switchModelCases(Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 4*4*2*2 {
		t.Fatalf("%d cases, want 64", len(cs))
	}
	res := map[string]Result{}
	for _, c := range cs {
		r, err := c.Run(context.Background(), 50_000, NopTimer)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{MetricWritesPerSwitch, MetricExceptionsPerSwitch, MetricLost, MetricMisdelivered} {
			if _, ok := r.Metrics[m]; !ok {
				t.Fatalf("%s: no %s", c.Name, m)
			}
			if len(r.Batches[m]) != switchModelBatches {
				t.Fatalf("%s: %d batches of %s", c.Name, len(r.Batches[m]), m)
			}
		}
		res[c.Name] = r
	}
	for _, s := range switchModelSpecs() {
		r := res[s.Name()]
		lost, mis := r.Metrics[MetricLost], r.Metrics[MetricMisdelivered]
		if mis != 0 {
			t.Errorf("%s: misdelivered/op = %g", s.Name(), mis)
		}
		switch {
		case s.Policy == schedsim.LazyGlobal && s.CPUs > 1:
			if lost == 0 {
				t.Errorf("%s: lost/op = 0, want the SMP failure to show", s.Name())
			}
		case lost != 0:
			t.Errorf("%s: lost/op = %g, want 0", s.Name(), lost)
		}
		if s.Policy == schedsim.LazyGlobal {
			continue
		}
		e := s
		e.Policy = schedsim.Eager
		if w, we := r.Metrics[MetricWritesPerSwitch], res[e.Name()].Metrics[MetricWritesPerSwitch]; w > we {
			t.Errorf("%s: writes/switch %g > eager's %g", s.Name(), w, we)
		}
	}
}

// TestPingPongCommandValidate: a ping-pong needs a round-trip count and
// takes no bursts.
func TestPingPongCommandValidate(t *testing.T) {
	if err := (tracee.Command{Op: tracee.OpPingPong, Count: 1}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []tracee.Command{{Op: tracee.OpPingPong}, {Op: tracee.OpPingPong, Count: 1, Burst: 1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", c)
		}
	}
	if s := tracee.OpPingPong.String(); s != "pingpong" {
		t.Errorf("String() = %q", s)
	}
}

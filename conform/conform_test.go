package conform

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"bpbench/alloc"
	"bpbench/internal/testenv"
)

// run runs a lockstep sequence or skips, with the reason, where this
// machine cannot (no root or CAP_PERFMON, no breakpoint PMU).
func run(t *testing.T, o Options) *Report {
	t.Helper()
	r, err := Run(context.Background(), o)
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Clean {
		// Every test that creates breakpoints takes internal/kernlock,
		// which Run holds: an unclean start is another process's doing.
		t.Fatalf("unclean start: %s", r.Note)
	}
	return r
}

// TestModelAgreesWithKernel is the lockstep check: every built-in strategy
// answers every open as the kernel does.
func TestModelAgreesWithKernel(t *testing.T) {
	r := run(t, Options{Ops: 600, Seed: 1, Strategies: builtins()})
	t.Log(r.Summary())
	if r.Admitted == 0 || r.Refused == 0 || r.Inst == 0 || r.Closes == 0 {
		t.Errorf("sequence did not exercise both answers, instructions and closes: %+v", r)
	}
	for _, a := range r.Strategies {
		if a.Diverged != 0 {
			t.Errorf("%s diverged on %d of %d opens; first: %+v", a.Strategy, a.Diverged, r.Opens, a.Divergences[0])
		}
		if a.Agreed != r.Opens {
			t.Errorf("%s agreed on %d of %d opens", a.Strategy, a.Agreed, r.Opens)
		}
	}
	if want := fmt.Sprintf("model agreed with the kernel on %d opens (%d admitted, %d refused)", r.Opens, r.Admitted, r.Refused); !r.Agrees() || r.Summary() != want {
		t.Errorf("summary %q", r.Summary())
	}
}

// TestFacts checks the premises the model rests on, on this kernel.
func TestFacts(t *testing.T) {
	r := run(t, Options{Ops: 1, Seed: 2})
	seen := map[string]Fact{}
	for _, f := range r.Facts {
		seen[f.Name] = f
		t.Logf("%s = %s (%s)", f.Name, f.Value, f.Detail)
		if !f.Holds() {
			t.Errorf("fact %s: got %q, the model assumes %q (%s) %s", f.Name, f.Value, f.Assumed, f.Detail, f.Error)
		}
	}
	for _, name := range []string{"slots-per-thread", "inst-slots-per-thread", "inst-data-one-pool", "modify-keeps-slot", "ptrace-dr-write-reserves", "ptrace-dr7-enable-keeps", "ptrace-dr7-zero-releases"} {
		if _, ok := seen[name]; !ok {
			t.Errorf("fact %s not probed", name)
		}
	}
	switch runtime.GOARCH {
	case "amd64":
		// x86: four debug registers a thread, shared by both kinds; the
		// model is configured as alloc.X86.
		if seen["slots-per-thread"].Value != "4" || seen["inst-slots-per-thread"].Value != "4" || seen["inst-data-one-pool"].Value != "yes" {
			t.Errorf("x86 has 4 debug registers a thread in one pool, probed %v", seen)
		}
		if r.Slots != 4 || r.InstSlots != 0 || r.Pools() != (Pools{Data: 4, Inst: 4, Shared: true}) {
			t.Errorf("model configured with Slots %d, InstSlots %d; want alloc.X86's 4 and 0", r.Slots, r.InstSlots)
		}
	case "arm64":
		if seen["inst-data-one-pool"].Value != "no" || r.InstSlots == 0 {
			t.Errorf("arm64 has separate pools, probed %v (InstSlots %d)", seen["inst-data-one-pool"], r.InstSlots)
		}
		for _, name := range []string{"ptrace-dr-write-reserves", "ptrace-dr7-enable-keeps", "ptrace-dr7-zero-releases"} {
			if seen[name].Skipped == "" {
				t.Errorf("fact %s probed on arm64, want it skipped as x86 only", name)
			}
		}
	}
}

// TestTraceReplays records the kernel's side of a sequence and replays it
// without the kernel: every strategy, configured as the kernel's machine
// was, answers every open as it did live, and a strategy that never
// refuses diverges on every refusal, as it does live.
func TestTraceReplays(t *testing.T) {
	r := run(t, Options{Ops: 400, Seed: 4, Strategies: []string{"mutex"}, Trace: true})
	if len(r.Trace) != r.Opens+r.Closes {
		t.Fatalf("trace has %d lines for %d opens and %d closes", len(r.Trace), r.Opens, r.Closes)
	}
	ag, err := Replay(r.Trace, alloc.Config{CPUs: r.CPUs, Slots: r.Slots, InstSlots: r.InstSlots}, append(builtins(), "conform-test-admit-all"), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ag {
		want := 0
		if a.Strategy == "conform-test-admit-all" {
			want = r.Refused
		}
		if a.Diverged != want || a.Agreed+a.Diverged != r.Opens {
			t.Errorf("replay: %s agreed %d, diverged %d; want %d divergences of %d opens", a.Strategy, a.Agreed, a.Diverged, want, r.Opens)
		}
	}
}

func TestReplayRefusesBadTraces(t *testing.T) {
	cfg := alloc.X86(2)
	for _, tr := range [][]string{
		{"0 open task=0/cpu=any/data maybe"},
		{"0 open task=0/cpu=any/disk admitted"},
		{"0 close 7"},
		{"x open task=0/cpu=any/data admitted"},
		{"0 reopen"},
	} {
		if _, err := Replay(tr, cfg, []string{"mutex"}, 1); err == nil {
			t.Errorf("Replay(%q) accepted it", tr)
		}
	}
	for _, s := range []string{"task=none/cpu=1/inst", "task=3/cpu=any/data"} {
		r, err := ParseRequest(s)
		if err != nil || r.String() != s {
			t.Errorf("ParseRequest(%q) = %v, %v; want it back", s, r, err)
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{{Ops: -1}, {Threads: 65}, {Threads: -1}} {
		if _, err := Run(context.Background(), o); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("Run(%+v) = %v, want an invalid-options error", o, err)
		}
	}
}

// admitAll is a deliberately wrong strategy: it never refuses.
type admitAll struct{ gen uint32 }

func (a *admitAll) Reserve(r alloc.Request) (alloc.Slot, error) {
	a.gen++
	return alloc.NewSlot(r, 0, a.gen), nil
}
func (a *admitAll) Release(alloc.Slot) error { return nil }
func (a *admitAll) InUse() bool              { return false }

func init() {
	if err := alloc.Register("conform-test-admit-all", func(alloc.Config) (alloc.Allocator, error) { return &admitAll{}, nil }); err != nil {
		panic(err)
	}
}

// builtins are the strategies the lockstep test expects to agree: all but
// the deliberately wrong one.
func builtins() []string {
	var out []string
	for _, s := range alloc.Strategies() {
		if s != "conform-test-admit-all" {
			out = append(out, s)
		}
	}
	return out
}

// TestDivergenceReported proves the check can fail: a strategy that never
// refuses diverges exactly where the kernel said ENOSPC, and the report
// shows the live state before it.
func TestDivergenceReported(t *testing.T) {
	r := run(t, Options{Ops: 300, Seed: 3, Strategies: []string{"mutex", "conform-test-admit-all"}})
	if r.Refused == 0 {
		t.Fatalf("the sequence had no refusal to diverge on: %+v", r)
	}
	good, bad := r.Strategies[0], r.Strategies[1]
	if good.Diverged != 0 {
		t.Errorf("mutex diverged %d times", good.Diverged)
	}
	if bad.Diverged != r.Refused || bad.Agreed != r.Admitted {
		t.Errorf("admit-all: agreed %d diverged %d; kernel admitted %d refused %d", bad.Agreed, bad.Diverged, r.Admitted, r.Refused)
	}
	d := bad.Divergences[0]
	if d.Kernel != "ENOSPC" || d.Model != "admitted" || len(d.Before) == 0 {
		t.Errorf("first divergence %+v", d)
	}
	if r.Agrees() || !strings.Contains(r.Summary(), "DISAGREED") {
		t.Errorf("summary %q", r.Summary())
	}
}

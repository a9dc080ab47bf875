package conform

import (
	"context"
	"errors"
	"fmt"
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
	for _, name := range []string{"slots-per-thread", "inst-data-one-pool", "modify-keeps-slot", "ptrace-dr-write-reserves", "ptrace-dr7-enable-keeps", "ptrace-dr7-zero-releases"} {
		if _, ok := seen[name]; !ok {
			t.Errorf("fact %s not probed", name)
		}
	}
	if f := seen["slots-per-thread"]; f.Value != "4" {
		t.Errorf("x86 has 4 debug registers a thread, probed %s", f.Value)
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

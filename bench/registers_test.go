package bench

import (
	"context"
	"strings"
	"testing"

	"bpbench/bench/harness"
	"bpbench/hwregs"
	"bpbench/internal/testenv"
)

// BenchmarkRegisters compares write-changed with write-all per change.
func BenchmarkRegisters(b *testing.B) { runCases(b, "Registers", casesOf(b, "registers", Options{})) }

// changedWrites is what WriteChanged must write for the change from prev to
// next: DRi when the address moves, DR7 when the type or length changes.
func changedWrites(prev, next hwregs.Attr) uint64 {
	var n uint64
	if prev.Addr != next.Addr {
		n++
	}
	if prev.Len != next.Len || prev.Type != next.Type {
		n++
	}
	return n
}

// TestRegistersSeq checks the drawn change cycle: every step is a valid
// attribute that differs from the one before, and the mix is the one
// registersMix documents.
func TestRegistersSeq(t *testing.T) {
	addrs := []uint64{0x1000, 0x1008, 0x1010, 0x1018}
	start := hwregs.Attr{Addr: addrs[3], Len: 8, Type: hwregs.Write}
	seq := registersSeq(7, start, addrs)
	prev := start
	var addrOnly, dr7Only, both int
	for i, a := range seq {
		if err := a.Validate(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		switch addr, dr7 := a.Addr != prev.Addr, a.Len != prev.Len || a.Type != prev.Type; {
		case addr && dr7:
			both++
		case addr:
			addrOnly++
		case dr7:
			dr7Only++
		default:
			t.Fatalf("step %d: %v does not change %v", i, a, prev)
		}
		prev = a
	}
	// 60/30/10 with 4096 draws: allow 4 points either way.
	n := float64(len(seq))
	for _, c := range []struct {
		what string
		got  int
		want float64
	}{{"move", addrOnly, 0.6}, {"resize/retype", dr7Only, 0.3}, {"move+resize", both, 0.1}} {
		if f := float64(c.got) / n; f < c.want-0.04 || f > c.want+0.04 {
			t.Errorf("%s: %.3f of changes, want %.2f", c.what, f, c.want)
		}
	}
	if again := registersSeq(7, start, addrs); again[100] != seq[100] || again[4000] != seq[4000] {
		t.Error("the same seed drew another sequence")
	}
}

// registersCheck runs both policies on one backend and checks writes/op:
// exactly 6 for WriteAll (DR0-DR3, DR6, DR7), exactly the registers that
// differ for WriteChanged.
func registersCheck(t *testing.T, backend string, n int64, run func(hwregs.WritePolicy) (Result, error)) {
	t.Helper()
	got := map[hwregs.WritePolicy]Result{}
	for _, pol := range hwregs.Policies {
		res, err := run(pol)
		testenv.SkipIfUnsupported(t, err)
		if err != nil {
			t.Fatal(err)
		}
		want := "Registers/backend=" + backend + "/policy=" + hwregs.PolicyName(pol)
		if res.Experiment != "registers" || res.Name != want || res.Iterations != n {
			t.Fatalf("got %s/%s with %d changes, want registers/%s with %d", res.Experiment, res.Name, res.Iterations, want, n)
		}
		for _, kv := range strings.Split(res.Name, "/")[1:] {
			k, v, _ := strings.Cut(kv, "=")
			if res.Params[k] != v {
				t.Errorf("%s: Params[%q] = %q, want %q", res.Name, k, res.Params[k], v)
			}
		}
		for _, k := range []string{"strategy", "slots", "seed", "pinned_cpu", "kernel", "mix", "ops", "gomaxprocs"} {
			if res.Params[k] == "" {
				t.Errorf("%s: Params[%q] missing (have %v)", res.Name, k, res.Params)
			}
		}
		if res.Latency == nil || res.Latency.Count != uint64(harness.Sampled(n, 1)) || res.Metrics[MetricP99] <= 0 || len(res.Batches[UnitNsPerOp]) < 2 {
			t.Errorf("%s: latency not recorded: %+v", res.Name, res.Latency)
		}
		got[pol] = res
	}
	if w := got[hwregs.WriteAll].Metrics[MetricWrites]; w != 6 {
		t.Errorf("%s policy=all: writes/op = %g, want 6", backend, w)
	}
	addrs := registersTestAddrs
	start := hwregs.Attr{Addr: addrs[3], Len: 8, Type: hwregs.Write}
	seq := registersSeq(0, start, addrs)
	prev := start
	var want uint64
	for _, a := range seq[:n] {
		want += changedWrites(prev, a)
		prev = a
	}
	if w := got[hwregs.WriteChanged].Metrics[MetricWrites]; w != float64(want)/float64(n) {
		t.Errorf("%s policy=changed: writes/op = %g, want %g (the registers that differ)", backend, w, float64(want)/float64(n))
	}
}

// registersTestAddrs stands for any eight distinct places: which registers
// a change touches depends on the positions registersSeq draws, not on the
// addresses, so the expected writes are the same for the tracee's.
var registersTestAddrs = []uint64{0x20000, 0x20008, 0x20010, 0x20018, 0x20020, 0x20028, 0x20030, 0x20038}

func TestRegistersSim(t *testing.T) {
	const n = 3000
	registersCheck(t, "sim", n, func(p hwregs.WritePolicy) (Result, error) {
		return registersSim(context.Background(), Options{}, p, n, NopTimer)
	})
}

// TestRegistersPtrace runs the real tracee: every write is a
// PTRACE_POKEUSER the kernel accepted (a refused one fails the case).
func TestRegistersPtrace(t *testing.T) {
	testenv.LockDebugRegs(t)
	const n = 1000
	registersCheck(t, "ptrace", n, func(p hwregs.WritePolicy) (Result, error) {
		return registersPtrace(context.Background(), Options{}, p, n, NopTimer)
	})
}

package hwregs

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loov/hrtime"

	"bpbench/alloc"
)

// BenchmarkUpdate compares ways of changing a held breakpoint on each
// backend: BenchmarkUpdate/backend=sim/strategy=S/policy=P/op=..., backend=ptrace/op=...,
// backend=perf/op=...
func BenchmarkUpdate(b *testing.B) {
	b.Run("backend=sim", benchUpdateSim)
	b.Run("backend=ptrace", benchUpdatePtrace)
	b.Run("backend=perf", benchUpdatePerf)
}

// updateOps are the sim update operations, named as in the ptrace and perf
// cases.
var updateOps = []string{"modify", "disable-enable", "reregister"}

// benchUpdateSim runs the backend=sim cases: every strategy, both policies,
// every op, reporting register writes per op and sampled latency
// percentiles.
func benchUpdateSim(b *testing.B) {
	for _, s := range strategies(b) {
		for _, p := range Policies {
			for _, op := range updateOps {
				b.Run(fmt.Sprintf("strategy=%s/policy=%v/op=%s", s, p, op), func(b *testing.B) {
					benchSimOp(b, s, p, op)
				})
			}
		}
	}
}

// sampleEvery is how often an op is timed on its own for the percentiles:
// timing every op would add two clock reads (tens of ns) to ops that cost
// about as much.
const sampleEvery = 16

// benchSimOp alternates one breakpoint between two addresses with op, so
// every iteration really changes the registers. The task also holds three
// other breakpoints so the Writer works on a full register file.
func benchSimOp(b *testing.B, strategy string, p Policy, op string) {
	sim := NewSim()
	w := NewWriter(newAlloc(b, strategy, alloc.X86(2)), sim, p)
	for i := 0; i < NumSlots-1; i++ {
		if _, err := w.Register(taskReq, Attr{Addr: uint64(0x9000 + 8*i), Len: 8, Type: ReadWrite}); err != nil {
			b.Fatal(err)
		}
	}
	attrs := [2]Attr{{Addr: 0x1000, Len: 8, Type: Write}, {Addr: 0x2000, Len: 8, Type: Write}}
	bp, err := w.Register(taskReq, attrs[0])
	if err != nil {
		b.Fatal(err)
	}
	var change func(bp *Breakpoint, a Attr) error
	switch op {
	case "modify":
		change = w.Modify
	case "disable-enable":
		change = w.DisableModifyEnable
	case "reregister":
		change = func(bp *Breakpoint, a Attr) error { _, err := w.Reregister(bp, a); return err }
	default:
		b.Fatalf("unknown op %q", op)
	}
	samples := make([]time.Duration, 0, b.N/sampleEvery+1)
	overhead := clockOverhead()
	b.ReportAllocs()
	writes := sim.Writes()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := attrs[(i+1)&1]
		if i%sampleEvery != 0 {
			if err := change(&bp, a); err != nil {
				b.Fatal(err)
			}
			continue
		}
		t0 := hrtime.Now()
		err := change(&bp, a)
		samples = append(samples, hrtime.Now()-t0)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(sim.Writes()-writes)/float64(b.N), "writes/op")
	slices.Sort(samples)
	for _, q := range []struct {
		unit string
		q    float64
	}{{"p50-ns", 0.50}, {"p99-ns", 0.99}} {
		v := samples[int(q.q*float64(len(samples)-1))]
		b.ReportMetric(max(float64(v.Nanoseconds())-overhead, 0), q.unit)
	}
	checkBP(b, sim, bp)
}

// clockOverhead returns the median cost in ns of one pair of clock reads,
// which the sampled latencies subtract.
func clockOverhead() float64 {
	var d [1001]time.Duration
	for i := range d {
		t0 := hrtime.Now()
		d[i] = hrtime.Now() - t0
	}
	slices.Sort(d[:])
	return float64(d[len(d)/2].Nanoseconds())
}

// BenchmarkWriterParallel runs Modify from GOMAXPROCS goroutines, each on
// its own task (targets=own: the Writer's per-target mirrors and the Sim's
// shards should keep them apart) or all on one task (targets=shared: they
// serialise on that task's mirror, as the kernel serialises on one task).
func BenchmarkWriterParallel(b *testing.B) {
	for _, s := range strategies(b) {
		for _, shared := range []bool{false, true} {
			name := fmt.Sprintf("strategy=%s/targets=own/op=modify", s)
			if shared {
				name = fmt.Sprintf("strategy=%s/targets=shared/op=modify", s)
			}
			b.Run(name, func(b *testing.B) {
				sim := NewSim()
				w := NewWriter(newAlloc(b, s, alloc.X86(2)), sim, WriteChanged)
				var next atomic.Int64
				b.ReportAllocs()
				writes := sim.Writes()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					g := int(next.Add(1))
					req := alloc.Request{Task: g, CPU: alloc.AnyCPU, Kind: alloc.Data}
					if shared {
						req.Task = 0
					}
					base := uint64(0x100000 * g)
					attrs := [2]Attr{{Addr: base, Len: 8, Type: Write}, {Addr: base + 64, Len: 8, Type: Write}}
					bp, err := w.Register(req, attrs[0])
					if err != nil {
						b.Error(err) // more goroutines than a shared task's four registers
						return
					}
					for i := 0; pb.Next(); i++ {
						if err := w.Modify(&bp, attrs[(i+1)&1]); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(sim.Writes()-writes)/float64(b.N), "writes/op")
			})
		}
	}
}

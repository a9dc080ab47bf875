package hwregs

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loov/hrtime"
	"golang.org/x/sys/unix"

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
func benchSimOp(b *testing.B, strategy string, p WritePolicy, op string) {
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

// BenchmarkWriterPaired measures the Writer's own cost on the real ptrace
// backend by pairing every Writer op with the bare pokes of its floor, one
// after the other on the same thread: noise on this shared machine then
// hits both halves of a pair alike, where BenchmarkUpdate's floor, run after
// the whole Writer loop, can land in a quieter or busier moment. The floor
// moves a second breakpoint (DR1, enabled before the Writer's mirror is
// made, so the Writer keeps its DR7 bits) with the same register writes the
// Writer makes for DR0. Reported: p50-ns of the Writer op, raw-p50-ns of its
// floor, ratio-p50 of the two, and overhead-ns, the median of the per-pair
// differences. op=writedr pairs Ptrace.WriteDR alone with the same poke, the
// backend's share of the Writer's overhead. Only the WriteChanged policy is
// paired: WriteAll writes the registers of the floor's breakpoint too. ns/op
// counts both halves of a pair.
func BenchmarkWriterPaired(b *testing.B) {
	b.Run("backend=ptrace", func(b *testing.B) {
		p := ptStart(b, 1)
		h := p.Hello()
		// The backend alone first: the part of the Writer's overhead that is
		// Ptrace.WriteDR's own.
		b.Run("op=writedr", func(b *testing.B) { benchPairedPtrace(b, p, h.VarAddr, "writedr") })
		for _, op := range updateOps {
			b.Run(fmt.Sprintf("policy=%v/op=%s", WriteChanged, op), func(b *testing.B) {
				benchPairedPtrace(b, p, h.VarAddr, op)
			})
		}
	})
}

// benchPairedPtrace runs one BenchmarkWriterPaired case; varAddr is the
// tracee's map of watched variables.
func benchPairedPtrace(b *testing.B, p *Ptrace, varAddr func(worker, v int) uint64, op string) {
	attrs := [2]Attr{{Addr: varAddr(0, 0), Len: 8, Type: Write}, {Addr: varAddr(0, 1), Len: 8, Type: Write}}
	rawAttrs := [2]Attr{{Addr: varAddr(0, 2), Len: 8, Type: Write}, {Addr: varAddr(0, 3), Len: 8, Type: Write}}
	a, err := alloc.New(ptBenchStrategy, alloc.X86(1))
	if err != nil {
		b.Fatal(err)
	}
	// The floor's breakpoint takes DR1; the Writer's first Register gets
	// the lowest free index, DR0, from an allocator that does not know
	// about DR1.
	tid := p.tids[0]
	rawOff := DR7(0).WithSlot(0, attrs[0])
	rawOn := rawOff.WithSlot(1, rawAttrs[0])
	var change func(bp *Breakpoint, a Attr) error
	var w *Writer
	var raw func(addr uint64) unix.Errno
	switch op {
	case "modify", "writedr":
		change = func(bp *Breakpoint, a Attr) error { return w.Modify(bp, a) }
		if op == "writedr" {
			// Bypasses the Writer, whose mirror stays behind: the case
			// ends by unregistering through the Writer, which only
			// clears DR7's bits for DR0.
			change = func(_ *Breakpoint, a Attr) error { return p.WriteDR(Target{Task: 0}, RegDR0, a.Addr) }
		}
		raw = func(addr uint64) unix.Errno { return ptPoke(tid, RegDR1, addr) }
	case "disable-enable", "reregister":
		// Both write DR7 with the slot off, its address, DR7 with it on.
		if op == "disable-enable" {
			change = func(bp *Breakpoint, a Attr) error { return w.DisableModifyEnable(bp, a) }
		} else {
			change = func(bp *Breakpoint, a Attr) error { _, err := w.Reregister(bp, a); return err }
		}
		raw = func(addr uint64) unix.Errno {
			e := ptPoke(tid, RegDR7, uint64(rawOff))
			if e == 0 {
				e = ptPoke(tid, RegDR1, addr)
			}
			if e == 0 {
				e = ptPoke(tid, RegDR7, uint64(rawOn))
			}
			return e
		}
	default:
		b.Fatalf("unknown op %q", op)
	}
	lat := make([]hrtime.Count, b.N)
	rawLat := make([]hrtime.Count, b.N)
	diff := make([]int64, b.N)
	var bp Breakpoint
	body := func() error {
		if err := ptReset(p); err != nil {
			return err
		}
		if e := ptPoke(tid, RegDR1, rawAttrs[0].Addr); e != 0 {
			return e
		}
		if e := ptPoke(tid, RegDR7, uint64(DR7(0).WithSlot(1, rawAttrs[0]))); e != 0 {
			return e
		}
		w = NewWriter(a, p, WriteChanged)
		var err error
		if bp, err = w.Register(alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Data}, attrs[0]); err != nil {
			return err
		}
		if bp.Slot.Index() != 0 {
			return fmt.Errorf("writer breakpoint at DR%d, want DR0", bp.Slot.Index())
		}
		for i := range lat {
			t0 := hrtime.TSC()
			err := change(&bp, attrs[(i+1)&1])
			t1 := hrtime.TSC()
			e := raw(rawAttrs[(i+1)&1].Addr)
			t2 := hrtime.TSC()
			if err != nil {
				return err
			}
			if e != 0 {
				return e
			}
			lat[i], rawLat[i] = t1-t0, t2-t1
			diff[i] = int64(lat[i]) - int64(rawLat[i])
		}
		return w.Unregister(bp)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if derr := p.Do(func() { err = body() }); derr != nil {
		b.Fatal(derr)
	}
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	slices.Sort(rawLat)
	slices.Sort(diff)
	b.ReportMetric(ptQuantile(lat, 0.5), "p50-ns")
	b.ReportMetric(ptQuantile(lat, 0.99), "p99-ns")
	b.ReportMetric(ptQuantile(rawLat, 0.5), "raw-p50-ns")
	b.ReportMetric(ptQuantile(lat, 0.5)/ptQuantile(rawLat, 0.5), "ratio-p50")
	med := diff[len(diff)/2]
	sign := 1.0
	if med < 0 {
		med, sign = -med, -1
	}
	b.ReportMetric(sign*float64(hrtime.Count(med).ApproxDuration().Nanoseconds()), "overhead-ns")
}

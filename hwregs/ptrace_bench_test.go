package hwregs

import (
	"fmt"
	"slices"
	"testing"

	"github.com/loov/hrtime"
	"golang.org/x/sys/unix"

	"bpbench/alloc"
)

// ptBenchStrategy is the model allocator behind Writer benchmarks: ptrace
// itself has no reservation step separate from the DR write.
const ptBenchStrategy = "mutex"

// benchUpdatePtrace runs BenchmarkUpdate's backend=ptrace cases on one
// stopped thread of a real tracee, the tracer thread pinned to CPU 0: the
// bare POKEUSER loops (op=raw-*) and the same changes through the Writer
// under both policies, so the Writer's overhead is a ratio within one run.
// Each op alternates the breakpoint between two variables so the kernel
// really changes it. Writer cases report ratio-p50 = their median latency
// over that of the raw loop that writes the same registers, measured right
// after them.
func benchUpdatePtrace(b *testing.B) {
	p := ptStart(b, 1)
	h := p.Hello()
	attrs := [2]Attr{{Addr: h.VarAddr(0, 0), Len: 8, Type: Write}, {Addr: h.VarAddr(0, 1), Len: 8, Type: Write}}

	b.Run("op=raw-poke", func(b *testing.B) {
		ptBench(b, p, 1, func(lat []hrtime.Count) error { return ptRawPoke(p, attrs, lat) })
	})
	b.Run("op=raw-disable-enable", func(b *testing.B) {
		ptBench(b, p, 3, func(lat []hrtime.Count) error { return ptRawDisableEnable(p, attrs, lat) })
	})
	b.Run("op=writedr", func(b *testing.B) {
		// The backend alone, without the Writer: WriteDR's own overhead.
		lat := ptBench(b, p, 0, func(lat []hrtime.Count) error {
			t := Target{Task: 0}
			if err := p.WriteDR(t, RegDR0, attrs[0].Addr); err != nil {
				return err
			}
			if err := p.WriteDR(t, RegDR7, uint64(DR7(0).WithSlot(0, attrs[0]))); err != nil {
				return err
			}
			for i := range lat {
				t0 := hrtime.TSC()
				err := p.WriteDR(t, RegDR0, attrs[(i+1)&1].Addr)
				lat[i] = hrtime.TSC() - t0
				if err != nil {
					return err
				}
			}
			return nil
		})
		ptReportRatio(b, p, lat, func(raw []hrtime.Count) error { return ptRawPoke(p, attrs, raw) })
	})
	for _, pol := range Policies {
		for _, op := range []string{"modify", "disable-enable", "reregister"} {
			b.Run(fmt.Sprintf("policy=%v/op=%s", pol, op), func(b *testing.B) {
				ptBenchWriter(b, p, pol, op, attrs)
			})
		}
	}
}

// ptBench runs body on the tracer thread with one latency slot per op and
// reports p50-ns, p99-ns and writes/op.
// Raw loops bypass WriteDR, so they pass the pokes per op they make as
// rawWrites; Writer loops pass 0 and the backend's count is used.
func ptBench(b *testing.B, p *Ptrace, rawWrites int, body func(lat []hrtime.Count) error) []hrtime.Count {
	lat := make([]hrtime.Count, b.N)
	var err error
	if derr := p.Do(func() { err = ptReset(p) }); derr != nil || err != nil {
		b.Fatal(derr, err)
	}
	w0 := p.Writes()
	b.ReportAllocs()
	b.ResetTimer()
	if derr := p.Do(func() { err = body(lat) }); derr != nil {
		b.Fatal(derr)
	}
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if rawWrites > 0 {
		b.ReportMetric(float64(rawWrites), "writes/op")
	} else {
		b.ReportMetric(float64(p.Writes()-w0)/float64(b.N), "writes/op")
	}
	ptReportLatency(b, lat)
	return lat
}

// ptReportLatency sorts lat and reports its median and 99th percentile;
// the ptrace, perf and Writer benchmarks all report latency through it.
func ptReportLatency(b *testing.B, lat []hrtime.Count) {
	slices.Sort(lat)
	b.ReportMetric(ptQuantile(lat, 0.50), "p50-ns")
	b.ReportMetric(ptQuantile(lat, 0.99), "p99-ns")
}

func ptQuantile(sorted []hrtime.Count, q float64) float64 {
	return float64(sorted[int(q*float64(len(sorted)-1))].ApproxDuration().Nanoseconds())
}

// ptReset clears thread 0's address registers and DR7, the state a new
// Writer's mirror assumes.
func ptReset(p *Ptrace) error {
	for _, reg := range []int{RegDR7, RegDR0, RegDR1, RegDR2, RegDR3} {
		if err := p.WriteDR(Target{Task: 0}, reg, 0); err != nil {
			return err
		}
	}
	return nil
}

// ptPoke is the raw floor: one PTRACE_POKEUSER, exactly as WriteDR makes it.
func ptPoke(tid int, reg int, val uint64) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_POKEUSR, uintptr(tid), uintptr(ptDebugRegBase+8*reg), uintptr(val), 0, 0)
	return e
}

// ptRawPoke moves an enabled slot-0 breakpoint between two addresses with
// one DR0 poke per op: what Modify costs at the least.
func ptRawPoke(p *Ptrace, attrs [2]Attr, lat []hrtime.Count) error {
	tid := p.tids[0]
	if e := ptPoke(tid, RegDR0, attrs[0].Addr); e != 0 {
		return e
	}
	if e := ptPoke(tid, RegDR7, uint64(DR7(0).WithSlot(0, attrs[0]))); e != 0 {
		return e
	}
	for i := range lat {
		t0 := hrtime.TSC()
		e := ptPoke(tid, RegDR0, attrs[(i+1)&1].Addr)
		lat[i] = hrtime.TSC() - t0
		if e != 0 {
			return e
		}
	}
	return nil
}

// ptRawDisableEnable is the raw floor of a debugger's safe change: DR7
// off, DR0, DR7 on.
func ptRawDisableEnable(p *Ptrace, attrs [2]Attr, lat []hrtime.Count) error {
	tid := p.tids[0]
	on := uint64(DR7(0).WithSlot(0, attrs[0]))
	for i := range lat {
		t0 := hrtime.TSC()
		e := ptPoke(tid, RegDR7, 0)
		if e == 0 {
			e = ptPoke(tid, RegDR0, attrs[(i+1)&1].Addr)
		}
		if e == 0 {
			e = ptPoke(tid, RegDR7, on)
		}
		lat[i] = hrtime.TSC() - t0
		if e != 0 {
			return e
		}
	}
	return nil
}

// ptRawWrites replays n ops of what the Writer writes per op under a
// policy, as bare pokes: the floor its ratio is taken against.
func ptRawWrites(p *Ptrace, pol WritePolicy, op string, attrs [2]Attr, lat []hrtime.Count) error {
	tid := p.tids[0]
	on := uint64(DR7(0).WithSlot(0, attrs[0]))
	// The registers each op writes, in order; -1 stands for "the new address".
	var seq []int
	var vals []uint64
	switch {
	case pol == WriteChanged && op == "modify":
		seq = []int{RegDR0}
	case pol == WriteChanged:
		seq = []int{RegDR7, RegDR0, RegDR7} // disable-enable, and reregister (DR7 off; DR0, DR7 on)
	case op == "modify":
		seq = []int{RegDR0, RegDR1, RegDR2, RegDR3, RegDR6, RegDR7}
	case op == "disable-enable", op == "reregister":
		seq = []int{RegDR0, RegDR1, RegDR2, RegDR3, RegDR6, RegDR7, RegDR0, RegDR1, RegDR2, RegDR3, RegDR6, RegDR7, RegDR0, RegDR1, RegDR2, RegDR3, RegDR6, RegDR7}
		if op == "reregister" {
			seq = seq[:12]
		}
	}
	// Start from the Writer's state: slot 0 enabled at attrs[0].
	if e := ptPoke(tid, RegDR0, attrs[0].Addr); e != 0 {
		return e
	}
	if e := ptPoke(tid, RegDR7, on); e != 0 {
		return e
	}
	vals = make([]uint64, len(seq))
	for i := range lat {
		addr := attrs[(i+1)&1].Addr
		for j, reg := range seq {
			switch reg {
			case RegDR0:
				vals[j] = addr
			case RegDR7:
				vals[j] = on
				if len(seq) == 3 && j == 0 {
					vals[j] = 0
				}
			default:
				vals[j] = 0
			}
		}
		t0 := hrtime.TSC()
		for j, reg := range seq {
			if e := ptPoke(tid, reg, vals[j]); e != 0 {
				return e
			}
		}
		lat[i] = hrtime.TSC() - t0
	}
	return nil
}

// ptBenchWriter measures one Writer op under a policy, then the raw pokes
// of the same registers, and reports their median ratio.
func ptBenchWriter(b *testing.B, p *Ptrace, pol WritePolicy, op string, attrs [2]Attr) {
	a, err := alloc.New(ptBenchStrategy, alloc.X86(1))
	if err != nil {
		b.Fatal(err)
	}
	w := NewWriter(a, p, pol)
	req := alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Data}
	var bp Breakpoint
	lat := ptBench(b, p, 0, func(lat []hrtime.Count) error {
		var err error
		if bp, err = w.Register(req, attrs[0]); err != nil {
			return err
		}
		for i := range lat {
			next := attrs[(i+1)&1]
			t0 := hrtime.TSC()
			switch op {
			case "modify":
				err = w.Modify(&bp, next)
			case "disable-enable":
				err = w.DisableModifyEnable(&bp, next)
			case "reregister":
				_, err = w.Reregister(&bp, next)
			}
			lat[i] = hrtime.TSC() - t0
			if err != nil {
				return err
			}
		}
		return w.Unregister(bp)
	})
	ptReportRatio(b, p, lat, func(raw []hrtime.Count) error { return ptRawWrites(p, pol, op, attrs, raw) })
}

// ptReportRatio runs the raw loop that makes the same syscalls as the
// measured one, with as many ops, and reports ratio-p50, the measured
// median latency over the raw one. The floor is sampled right after the
// measured loop; on a shared machine a burst of noise in one of them shows
// as one outlying run of -count, not in all.
func ptReportRatio(b *testing.B, p *Ptrace, sortedLat []hrtime.Count, rawLoop func(raw []hrtime.Count) error) {
	raw := make([]hrtime.Count, len(sortedLat))
	var err error
	if derr := p.Do(func() { err = rawLoop(raw) }); derr != nil || err != nil {
		b.Fatal(derr, err)
	}
	slices.Sort(raw)
	b.ReportMetric(ptQuantile(sortedLat, 0.5)/ptQuantile(raw, 0.5), "ratio-p50")
}

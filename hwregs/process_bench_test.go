package hwregs

import (
	"fmt"
	"sort"
	"testing"

	"github.com/loov/hrtime"
)

// BenchmarkProcessModify changes one process-wide watchpoint between two
// addresses on every thread of a parked tracee and resumes every thread
// once (each parks again at once), as a debugger in all-stop mode does
// after a change; eager writes during Modify, lazy while resuming. The
// loop runs on the pinned tracer thread and does not allocate.
func BenchmarkProcessModify(b *testing.B) {
	for _, pol := range ApplyModes {
		for _, n := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("policy=%s/threads=%d", pol, n), func(b *testing.B) { benchProcessModify(b, pol, n) })
		}
	}
}

func benchProcessModify(b *testing.B, pol ApplyMode, threads int) {
	b.ReportAllocs()
	p := ptStart(b, threads)
	w, err := NewProcessWriter(p, pol)
	if err != nil {
		b.Fatal(err)
	}
	h := p.Hello()
	attrs := [2]Attr{{Addr: h.SharedVarAddr(0), Len: 8, Type: Write}, {Addr: h.SharedVarAddr(1), Len: 8, Type: Write}}
	lat := make([]hrtime.Count, b.N)
	var loopErr error
	var writes uint64
	// resume continues every parked worker; with no new command each
	// parks again at once.
	resume := func() error {
		for i := range p.tids {
			if err := p.cont(i, 0); err != nil {
				return err
			}
		}
		return p.waitParked()
	}
	ptDo(b, p, func() error {
		bp, err := w.Set(attrs[0])
		if err != nil {
			return err
		}
		if err := resume(); err != nil {
			return err
		}
		w0 := p.Writes()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := hrtime.TSC()
			if loopErr = w.Modify(&bp, attrs[(i+1)&1]); loopErr != nil {
				break
			}
			if loopErr = resume(); loopErr != nil {
				break
			}
			lat[i] = hrtime.TSC() - t0
		}
		b.StopTimer()
		writes = p.Writes() - w0
		return w.Clear(bp)
	})
	if loopErr != nil {
		b.Fatal(loopErr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
	b.ReportMetric(float64(lat[len(lat)/2].ApproxDuration().Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].ApproxDuration().Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)/2].ApproxDuration().Nanoseconds())/float64(threads), "ns/thread")
}

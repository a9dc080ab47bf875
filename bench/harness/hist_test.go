package harness

import (
	"bpbench/internal/testenv"
	"context"
	"math/rand"
	"sort"
	"testing"
)

func TestBucketBounds(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1<<62 + 7} {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf not monotonic at %d", v)
		}
		prev = i
		if up := bucketUpper(i); up < v {
			t.Fatalf("bucketUpper(%d) = %d < value %d", i, up, v)
		}
		if i > 0 && bucketUpper(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d (upper %d)", v, i-1, bucketUpper(i-1))
		}
		if v >= 128 {
			if width := bucketUpper(i) - bucketUpper(i-1); float64(width) > float64(v)/64+1 {
				t.Fatalf("bucket width %d too coarse for %d", width, v)
			}
		}
	}
}

func TestQuantilesAgainstSort(t *testing.T) {
	r := NewRecorder()
	rng := rand.New(rand.NewSource(1))
	vals := make([]int64, 100000)
	for i := range vals {
		vals[i] = int64(rng.ExpFloat64() * 5000)
		r.Record(Ticks(vals[i]))
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := TicksToNs(Ticks(vals[int(q*float64(len(vals)))-1]))
		got := r.Quantile(q)
		if got < want || got > want*1.02+TicksToNs(1) {
			t.Errorf("q%.3f = %.1f ns, exact %.1f ns (allowed +2%%)", q, got, want)
		}
	}
	h := r.Summary()
	if h.Count != uint64(len(vals)) || h.Max != TicksToNs(Ticks(vals[len(vals)-1])) || h.Min != TicksToNs(Ticks(vals[0])) {
		t.Fatalf("summary count/min/max wrong: %+v", h)
	}
	last := h.CDF[len(h.CDF)-1]
	if last.Fraction != 1 {
		t.Fatalf("CDF does not end at 1: %+v", last)
	}
	for i := 1; i < len(h.CDF); i++ {
		if h.CDF[i].NS < h.CDF[i-1].NS || h.CDF[i].Fraction < h.CDF[i-1].Fraction {
			t.Fatalf("CDF not monotonic at %d", i)
		}
	}
}

func TestMergeEqualsCombined(t *testing.T) {
	a, b, c := NewRecorder(), NewRecorder(), NewRecorder()
	for i := 0; i < 1000; i++ {
		a.Record(Ticks(i))
		c.Record(Ticks(i))
		b.Record(Ticks(i * 37))
		c.Record(Ticks(i * 37))
	}
	a.Merge(b)
	if a.counts != c.counts || a.n != c.n || a.min != c.min || a.max != c.max {
		t.Fatal("merge differs from recording both")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	testenv.SkipUnderRace(t)
	r := NewRecorder()
	if n := testing.AllocsPerRun(1000, func() { s := Now(); r.Record(Now() - s) }); n != 0 {
		t.Fatalf("Record allocates %.1f times per op", n)
	}
}

// BenchmarkHarness measures what sampling one op costs: two TSC reads and
// a Record, the overhead every sampled latency carries (target <= 15 ns).
func BenchmarkHarness(b *testing.B) {
	b.Run("op=sample", func(b *testing.B) {
		r := NewRecorder()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			s := Now()
			r.Record(Now() - s)
		}
	})
	b.Run("op=lap", func(b *testing.B) {
		l := Lap{R: NewRecorder()}
		b.ReportAllocs()
		l.Start()
		for i := 0; i < b.N; i++ {
			l.Lap()
		}
	})
	b.Run("op=tsc", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Now()
		}
	})
	b.Run("op=empty", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
		}
	})
}

// TestMergeNetShifts checks that merging with the sampler's cost taken out
// is recording every value less that cost, clamped at 0: exact in the
// linear region, within a bucket above it, and with an exact mean.
func TestMergeNetShifts(t *testing.T) {
	const c = 25
	rng := rand.New(rand.NewSource(2))
	gross, net, got := NewRecorder(), NewRecorder(), NewRecorder()
	var sum uint64
	for i := 0; i < 50_000; i++ {
		v := Ticks(rng.ExpFloat64() * 400)
		if i%10 == 0 {
			v = Ticks(rng.Intn(2 * c)) // some below the cost: clamp at 0
		}
		gross.Record(v)
		net.Record(max(0, v-c))
		sum += uint64(max(0, v-c))
	}
	got.mergeNet(gross, c)
	if got.n != net.n || got.min != net.min || got.max != net.max || got.sum != sum {
		t.Fatalf("n %d min %d max %d sum %d; recording the net values gives %d %d %d %d", got.n, got.min, got.max, got.sum, net.n, net.min, net.max, sum)
	}
	for i := 0; i < subCount-c; i++ {
		if got.counts[i] != net.counts[i] {
			t.Fatalf("linear bucket %d holds %d, want %d", i, got.counts[i], net.counts[i])
		}
	}
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 0.999} {
		g, w := got.Quantile(q), net.Quantile(q)
		if g < w/1.02-TicksToNs(1) || g > w*1.02+TicksToNs(1) {
			t.Errorf("q%.3f = %.1f ns, recording the net values gives %.1f ns (allowed 2%%)", q, g, w)
		}
	}
	// Merging net into a Recorder that already holds values adds to them.
	got.mergeNet(gross, c)
	if got.n != 2*net.n || got.sum != 2*sum {
		t.Fatalf("second merge: n %d sum %d, want %d %d", got.n, got.sum, 2*net.n, 2*sum)
	}
}

// TestDiffLogMedian checks that the per-chunk differences kept, however
// many chunks a loop has, span the whole loop and give its median.
func TestDiffLogMedian(t *testing.T) {
	for _, n := range []int{minDiffs - 1, minDiffs, 101, diffCap, 10*diffCap + 3, 1 << 20} {
		var l diffLog
		for i := 0; i < n; i++ {
			l.add(float64(i))
		}
		m, _, _, ok := l.median()
		if n < minDiffs {
			if ok {
				t.Errorf("%d chunks: median %v from too few", n, m)
			}
			continue
		}
		if !ok || l.n > diffCap || l.n < min(n, diffCap/2) {
			t.Fatalf("%d chunks: %d kept, ok %v", n, l.n, ok)
		}
		// The kept values are every stride-th: the last one kept is
		// within a stride of the end, and the median within a stride
		// of the middle.
		if last := l.d[l.n-1]; last < float64(n-2*l.stride) {
			t.Errorf("%d chunks: last kept %v, the loop ran to %d", n, last, n-1)
		}
		if mid := float64(n-1) / 2; m < mid-float64(l.stride) || m > mid+float64(l.stride) {
			t.Errorf("%d chunks: median %v, want %v within %d", n, m, mid, l.stride)
		}
	}
}

// TestTimeLoopTareInSitu checks that a loop long enough measures the
// sampler's cost in the loop and subtracts that, and that a short one
// falls back to its cost alone.
func TestTimeLoopTareInSitu(t *testing.T) {
	if MeasureTare() == 0 {
		// arm64's generic timer ticks at 24 MHz to 1 GHz (62.5 MHz
		// under QEMU, 16 ns a tick): two readings back to back mostly
		// land in one tick, and a sampler cost of 0 ticks is what such a
		// clock measures; there is nothing to take out.
		t.Skipf("this clock's tick (%.1f ns) is coarser than the sampler's cost: its tare is 0", NsPerTick())
	}
	op := func(int64) error { return nil }
	long, err := TimeLoop(context.Background(), NopTimer, 1<<16, 1024, 0, op, NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	short, err := TimeLoop(context.Background(), NopTimer, 10, 1024, 0, op, NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	if !long.TareInSitu || short.TareInSitu || short.TareNs <= 0 {
		t.Errorf("long loop in situ %v (%v ns), short loop in situ %v (%v ns)", long.TareInSitu, long.TareNs, short.TareInSitu, short.TareNs)
	}
}

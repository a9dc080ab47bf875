package harness

import (
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

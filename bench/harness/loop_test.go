package harness

import (
	"bpbench/internal/testenv"
	"context"
	"errors"
	"math"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestBatchLogKeepsEveryChunk adds more chunks than the log has entries:
// the totals are kept exactly, entries stay consecutive and equal, and the
// batches cover every entry once.
func TestBatchLogKeepsEveryChunk(t *testing.T) {
	var b batchLog
	const chunks = 1000
	for i := 1; i <= chunks; i++ {
		b.add(Ticks(i), 2)
	}
	tt, ops := b.total()
	if tt != chunks*(chunks+1)/2 || ops != 2*chunks {
		t.Fatalf("total %d ticks, %d ops; want %d, %d", tt, ops, chunks*(chunks+1)/2, 2*chunks)
	}
	if b.n > logCap || b.n < logCap/2 {
		t.Fatalf("%d entries, want in [%d, %d]", b.n, logCap/2, logCap)
	}
	for i := 0; i < b.n-1; i++ {
		if b.ops[i] != int64(2*b.per) {
			t.Fatalf("entry %d holds %d ops, want %d", i, b.ops[i], 2*b.per)
		}
	}
	nb := b.count()
	if nb != MaxBatches {
		t.Fatalf("%d batches, want %d", nb, MaxBatches)
	}
	var st Ticks
	var so int64
	for k := 0; k < nb; k++ {
		bt, bo := b.batch(k, nb)
		st += bt
		so += bo
	}
	if st != tt || so != ops {
		t.Fatalf("batches sum to %d ticks, %d ops; want %d, %d", st, so, tt, ops)
	}
}

// TestTimeLoopSplits checks TimeLoop's bookkeeping: every op runs once in
// order, half of them (to within a chunk) are sampled into the recorders
// by index, the rest are timed in bulk, and batches have enough ops.
func TestTimeLoopSplits(t *testing.T) {
	for _, n := range []int64{1, 7, 100, 999, 100_000} {
		recs := []*Recorder{NewRecorder(), NewRecorder()}
		var next int64
		s, err := TimeLoop(context.Background(), NopTimer, n, 1024, 0, func(i int64) error {
			if i != next {
				return errors.New("out of order")
			}
			next++
			return nil
		}, recs...)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		sampled := int64(recs[0].Count() + recs[1].Count())
		if s.Done != n || next != n || sampled+s.Unsampled != n {
			t.Fatalf("n=%d: done %d, ran %d, sampled %d + unsampled %d", n, s.Done, next, sampled, s.Unsampled)
		}
		if want := Sampled(n, 2); sampled != want {
			t.Errorf("n=%d: %d sampled, Sampled says %d", n, sampled, want)
		}
		if d := s.Unsampled - sampled; d < 0 || d > chunkHalf(n, 2) {
			t.Errorf("n=%d: %d unsampled, %d sampled; want halves within one chunk", n, s.Unsampled, sampled)
		}
		if d := int64(recs[0].Count()) - int64(recs[1].Count()); d < -1 || d > 1 {
			t.Errorf("n=%d: recorders hold %d and %d, want alternate ops", n, recs[0].Count(), recs[1].Count())
		}
		if s.Unsampled >= 2*MinBatchOps && len(s.Batches) < 2 {
			t.Errorf("n=%d: %d batches", n, len(s.Batches))
		}
		if len(s.Batches) > 0 && s.Unsampled/int64(len(s.Batches)) < MinBatchOps {
			t.Errorf("n=%d: %d batches of %d unsampled ops", n, len(s.Batches), s.Unsampled)
		}
	}
}

// TestTimeLoopStops checks the error paths: op's error is returned with
// the ops before it counted, a cancelled context stops the loop, a budget
// ends an unbounded one, and a loop without n or budget is refused.
func TestTimeLoopStops(t *testing.T) {
	boom := errors.New("boom")
	s, err := TimeLoop(context.Background(), NopTimer, 100, 1024, 0, func(i int64) error {
		if i == 42 {
			return boom
		}
		return nil
	}, NewRecorder())
	if !errors.Is(err, boom) || s.Done != 42 {
		t.Fatalf("done %d, err %v; want 42, boom", s.Done, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := TimeLoop(ctx, NopTimer, 100, 1024, 0, func(int64) error { return nil }, NewRecorder()); !errors.Is(err, context.Canceled) || s.Done != 0 {
		t.Fatalf("cancelled: done %d, err %v", s.Done, err)
	}
	// An unbounded loop ends at its budget (that it returns at all is the
	// verdict; how many ops fit in the budget depends on the machine).
	if _, err := TimeLoop(context.Background(), NopTimer, 0, 64, time.Millisecond, func(int64) error { return nil }, NewRecorder()); err != nil {
		t.Fatalf("budget: err %v", err)
	}
	if _, err := TimeLoop(context.Background(), NopTimer, 0, 64, 0, func(int64) error { return nil }, NewRecorder()); err == nil {
		t.Fatal("a loop with neither n nor budget was accepted")
	}
}

// TestTimeLoopDoesNotAllocate checks the loop's own bookkeeping allocates
// nothing per op.
func TestTimeLoopDoesNotAllocate(t *testing.T) {
	testenv.SkipUnderRace(t)
	r := NewRecorder()
	op := func(int64) error { return nil }
	ctx := context.Background()
	small := testing.AllocsPerRun(5, func() { TimeLoop(ctx, NopTimer, 1000, 1024, 0, op, r) })
	big := testing.AllocsPerRun(5, func() { TimeLoop(ctx, NopTimer, 100_000, 1024, 0, op, r) })
	if big > small {
		t.Fatalf("100000 ops allocate %v times, 1000 ops %v: the loop allocates per op", big, small)
	}
}

// TestWorkerLoop checks RunWorkers' Loop-derived figures: every op counted,
// every sampled op in the recorders.
func TestWorkerLoop(t *testing.T) {
	spec := WorkerSpec{Workers: 3, Ops: 30_000, Body: func(w *Worker) error {
		return w.Loop(func(int64) error { return nil })
	}}
	r, err := RunWorkers(context.Background(), nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Looped || r.Ops != 30_000 || r.WallOpsPerSec <= 0 {
		t.Fatalf("looped %v, ops %d, rate %v", r.Looped, r.Ops, r.WallOpsPerSec)
	}
	if got, want := r.Latency.Count(), uint64(3*Sampled(10_000, 1)); got != want {
		t.Fatalf("%d samples of 3 x 10000 ops, want %d", got, want)
	}
}

// TestWorkerLoopWallClock: the throughput is the operations completed over
// the shared wall-clock interval, the sampler's share of the CPUs taken
// out, never a sum of per-worker rates; with more workers than CPUs (and
// the workers pinned) it is the same count, and its batches are slices
// of that interval.
func TestWorkerLoopWallClock(t *testing.T) {
	for _, workers := range []int{1, 4 * runtime.NumCPU()} {
		spec := WorkerSpec{Workers: workers, Pin: true, Duration: 100 * time.Millisecond, Body: func(w *Worker) error {
			var x uint64
			return w.Loop(func(i int64) error {
				for j := 0; j < 50; j++ {
					x += uint64(i) * uint64(j)
				}
				sink.Store(x)
				return nil
			})
		}}
		r, err := RunWorkers(context.Background(), nil, spec)
		if err != nil {
			t.Fatal(err)
		}
		gross := float64(r.Ops) / r.Elapsed.Seconds()
		if r.SamplerShare <= 0 || r.SamplerShare >= 0.5 {
			t.Errorf("%d workers: sampler share %v, want in (0, 0.5)", workers, r.SamplerShare)
		}
		if want := gross / (1 - r.SamplerShare); math.Abs(r.WallOpsPerSec-want) > 1e-9*want {
			t.Errorf("%d workers: ops/s %v, want ops over the wall interval net of the sampler, %v", workers, r.WallOpsPerSec, want)
		}
		if len(r.WallBatches) < 2 {
			t.Fatalf("%d workers: batches %v", workers, r.WallBatches)
		}
		// The slices partition the interval: their operations add up to
		// every operation completed (a slice may hold none, when only a
		// preempted straggler was left to notice the stop).
		var sum float64
		for _, b := range r.WallBatches {
			if b < 0 {
				t.Fatalf("%d workers: batch %v in %v", workers, b, r.WallBatches)
			}
			sum += b * (1 - r.SamplerShare) * r.Elapsed.Seconds() / float64(len(r.WallBatches))
		}
		if math.Abs(sum-float64(r.Ops)) > 0.01*float64(r.Ops) {
			t.Errorf("%d workers: the batches hold %.0f operations, the run %d", workers, sum, r.Ops)
		}
		if ns := r.LoopNsPerOp(); math.Abs(ns*r.WallOpsPerSec-1e9) > 1e-3 {
			t.Errorf("%d workers: ns/op %v is not 1e9 / ops/s %v", workers, ns, r.WallOpsPerSec)
		}
	}
}

// sink keeps the test op's work from being optimised away.
var sink atomic.Uint64

func TestBatchLogExported(t *testing.T) {
	var b BatchLog
	if b.NsPerOp() != nil {
		t.Fatal("batches from an empty log")
	}
	for i := 0; i < 100; i++ {
		b.Add(Ticks(1000), 1)
	}
	vs := b.NsPerOp()
	if len(vs) != MaxBatches {
		t.Fatalf("%d batches, want %d", len(vs), MaxBatches)
	}
	for _, v := range vs {
		if want := TicksToNs(1000); v < want*0.999 || v > want*1.001 {
			t.Fatalf("batch %v ns/op, want %v", v, want)
		}
	}
}

// TestWorkerLoopIdle checks that a worker with no ops (more workers than
// ops) returns at once instead of running until stopped.
func TestWorkerLoopIdle(t *testing.T) {
	spec := WorkerSpec{Workers: 3, Ops: 1, Body: func(w *Worker) error {
		return w.Loop(func(int64) error { return nil })
	}}
	r, err := RunWorkers(context.Background(), nil, spec)
	if err != nil || r.Ops != 1 {
		t.Fatalf("1 op over 3 workers: %d ops, %v", r.Ops, err)
	}
}

// TestWallBatches cuts a run of two loops, one at a steady rate and one
// that doubles its rate half-way, into equal wall slices: the slices
// before the change report the first total rate and those after it the
// second, divided by the net factor.
func TestWallBatches(t *testing.T) {
	var steady, doubling []wallPoint
	steady = append(steady, wallPoint{})
	doubling = append(doubling, wallPoint{})
	var a, b float64
	for ms := 1; ms <= 160; ms++ {
		a += 500
		if ms <= 80 {
			b += 500
		} else {
			b += 1500
		}
		steady = append(steady, wallPoint{at: float64(ms) * 1e6, ops: a})
		doubling = append(doubling, wallPoint{at: float64(ms) * 1e6, ops: b})
	}
	got := cutWall([][]wallPoint{steady, doubling}, 160*time.Millisecond, 0.5)
	if len(got) != MaxBatches {
		t.Fatalf("%d batches, want %d", len(got), MaxBatches)
	}
	for k, v := range got {
		want := 2e6 // 1000 ops per ms, over a net factor of 0.5
		if k >= MaxBatches/2 {
			want = 4e6
		}
		if math.Abs(v-want) > 1e-6*want {
			t.Errorf("batch %d: %v ops/s, want %v", k, v, want)
		}
	}
	if cutWall([][]wallPoint{{{}}}, time.Millisecond, 1) != nil {
		t.Error("batches from a loop with no chunk ends")
	}
}

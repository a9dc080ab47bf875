package harness

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"
)

// TimeOps is the older measured loop, kept for cases that need every op
// sampled: it runs op(0) .. op(n-1) with the
// timer t running only around the loop, records each op's latency in rec
// (chained, one clock read per op), and checks ctx before every every-th
// op (every is a power of two: a check per op would cost more than a model
// op). It returns how many ops completed, the loop's wall time, and the
// first error: op's, returned as is (its index is done), or ctx's.
// Every op carries the sampler's cost (a TSC read and a Record, about
// 13 ns) in both its latency and the wall time; TimeLoop keeps it out of
// both.
func TimeOps(ctx context.Context, t Timer, n, every int64, rec *Recorder, op func(i int64) error) (done int64, elapsed time.Duration, err error) {
	lap := Lap{R: rec}
	t.ResetTimer()
	t.StartTimer()
	begin := time.Now()
	lap.Start()
	for ; done < n; done++ {
		if done&(every-1) == 0 {
			if err = ctx.Err(); err != nil {
				break
			}
		}
		if err = op(done); err != nil {
			break
		}
		lap.Lap()
	}
	elapsed = time.Since(begin)
	t.StopTimer()
	return done, elapsed, err
}

// Batching of a timed loop (TimeLoop, Worker.Loop). A loop runs in chunks
// of 2h operations: the first h are unsampled, timed only as a whole by
// the clock reads at the chunk's edges, and give ns/op; the next h are
// sampled one by one with a Lap (net of the sampler's tare) and give the
// latency distribution. So the sampler's cost never lands in ns/op, and
// the samples are spread over the whole run, not its first ops. The
// unsampled parts of consecutive chunks are gathered into up to
// MaxBatches consecutive, disjoint batches, each of at least
// MinBatchOps operations, whose ns/op values are the run's per-batch
// figures (Result.Batches): slices of one loop at different times,
// independent as far as the machine's state allows.
const (
	// MaxBatches is the most batches a loop reports.
	MaxBatches = 16
	// MinBatchOps is the fewest unsampled operations in a batch.
	MinBatchOps = 8
	// maxHalf is h for long loops: one clock read per 64 unsampled ops
	// costs under 0.2 ns/op.
	maxHalf = 64
	logCap  = 4 * MaxBatches
)

// chunkHalf is h for a loop of n operations (n <= 0: unbounded) sampled
// into m recorders: short loops get small chunks, so that they still have
// several batches, and h is a multiple of m, so that every recorder gets
// its share of samples.
func chunkHalf(n, m int64) int64 {
	h := int64(maxHalf)
	if n > 0 {
		h = min(maxHalf, n/256)
	}
	return max(m, h/m*m)
}

// Sampled returns how many of a completed TimeLoop's (or Worker.Loop's) n
// operations over m recorders were sampled; the rest were timed in bulk.
func Sampled(n int64, m int) int64 {
	h := chunkHalf(n, int64(m))
	return n/(2*h)*h + max(0, n%(2*h)-h)
}

// batchLog keeps the unsampled (ticks, ops) of a loop's chunks in at most
// logCap consecutive entries without allocating: when it is full,
// neighbouring entries are merged and each entry takes twice as many
// chunks from then on.
type batchLog struct {
	ticks [logCap]Ticks
	ops   [logCap]int64
	// end and upto are, per entry, the clock when its last chunk ended
	// (sampled half included) and the loop's operations done by then:
	// where the loop stood in wall-clock time, for throughput over
	// intervals shared with other loops (RunWorkers).
	end  [logCap]Ticks
	upto [logCap]int64
	n    int // entries in use
	per  int // chunks per entry
	cur  int // chunks in the last entry
}

func (b *batchLog) add(t Ticks, ops int64) {
	if b.per == 0 {
		b.per = 1
	}
	if b.n == 0 || b.cur == b.per {
		if b.n == logCap {
			for i := 0; i < logCap/2; i++ {
				b.ticks[i] = b.ticks[2*i] + b.ticks[2*i+1]
				b.ops[i] = b.ops[2*i] + b.ops[2*i+1]
				b.end[i], b.upto[i] = b.end[2*i+1], b.upto[2*i+1]
			}
			b.n = logCap / 2
			b.per *= 2
		}
		b.ticks[b.n], b.ops[b.n] = 0, 0
		b.n++
		b.cur = 0
	}
	if t < 0 {
		t = 0
	}
	b.ticks[b.n-1] += t
	b.ops[b.n-1] += ops
	b.cur++
}

// mark records that the loop had done ops operations when the clock read
// now, at the end of the last entry's latest chunk.
func (b *batchLog) mark(now Ticks, done int64) {
	if b.n > 0 {
		b.end[b.n-1], b.upto[b.n-1] = now, done
	}
}

// total returns the unsampled ticks and ops over every entry.
func (b *batchLog) total() (t Ticks, ops int64) {
	for i := 0; i < b.n; i++ {
		t += b.ticks[i]
		ops += b.ops[i]
	}
	return t, ops
}

// count is how many batches the log can be cut into.
func (b *batchLog) count() int {
	_, ops := b.total()
	return int(min(int64(MaxBatches), int64(b.n), ops/MinBatchOps))
}

// batch returns the unsampled ticks and ops of batch k of nb: entries
// [k*n/nb, (k+1)*n/nb).
func (b *batchLog) batch(k, nb int) (t Ticks, ops int64) {
	for i := k * b.n / nb; i < (k+1)*b.n/nb; i++ {
		t += b.ticks[i]
		ops += b.ops[i]
	}
	return t, ops
}

// BatchLog gathers the (time, ops) of consecutive parts of a loop timed
// by its caller into at most MaxBatches consecutive batches, for loops
// whose operations are long enough to time one by one (milliseconds: a
// clock read is noise there). The zero value is ready; Add never
// allocates.
type BatchLog struct{ log batchLog }

// Add records one consecutive part of the loop: ops operations in t ticks.
func (b *BatchLog) Add(t Ticks, ops int64) { b.log.add(t, ops) }

// NsPerOp returns the ns/op of each batch, nil when there are fewer than
// two (see MinBatchOps; here a batch needs at least one op, as each op is
// long).
func (b *BatchLog) NsPerOp() []float64 {
	_, ops := b.log.total()
	nb := int(min(int64(MaxBatches), int64(b.log.n), ops))
	if nb < 2 {
		return nil
	}
	out := make([]float64, nb)
	for k := range out {
		t, o := b.log.batch(k, nb)
		out[k] = TicksToNs(t) / float64(o)
	}
	return out
}

// opLoop is the state of one timed loop.
type opLoop struct {
	log batchLog
	// tare is the sampler's cost per sampled operation, subtracted from
	// every sample: its cost in this loop (insitu) when the loop measured
	// it, else its cost alone (MeasureTare).
	tare   Ticks
	insitu bool // tare was measured in the loop
	done   int64
	// diff holds each chunk's sampled less bulk time per operation, whose
	// median is the sampler's in-situ cost (settle).
	diff diffLog
}

// diffLog keeps up to diffCap of a loop's per-chunk differences without
// allocating: when it is full it keeps every other one and takes every
// other one from then on, so what it holds is spread over the whole loop.
type diffLog struct {
	d      [diffCap]float64
	n      int // entries in use
	stride int // differences per entry kept
	seen   int // differences since the last kept
}

// diffCap is how many per-chunk differences a loop keeps for their
// median: enough that the median is off by a few percent of their spread.
const diffCap = 512

func (l *diffLog) add(x float64) {
	if l.stride == 0 {
		l.stride = 1
	}
	if l.seen++; l.seen < l.stride {
		return
	}
	l.seen = 0
	if l.n == diffCap {
		for i := 0; i < diffCap/2; i++ {
			l.d[i] = l.d[2*i+1]
		}
		l.n = diffCap / 2
		l.stride *= 2
	}
	l.d[l.n] = x
	l.n++
}

// median sorts the kept differences and returns their median and the
// distribution-free 95% interval around it (the order statistics
// n/2 ± 1.96·√n/2); ok is false when there are fewer than minDiffs.
func (l *diffLog) median() (m, lo, hi float64, ok bool) {
	if l.n < minDiffs {
		return 0, 0, 0, false
	}
	d := l.d[:l.n]
	slices.Sort(d)
	m = d[l.n/2]
	if l.n%2 == 0 {
		m = (d[l.n/2-1] + d[l.n/2]) / 2
	}
	k := 1.96 * math.Sqrt(float64(l.n)) / 2
	i := max(0, int(math.Floor(float64(l.n)/2-k)))
	j := min(l.n-1, int(math.Ceil(float64(l.n)/2+k)))
	return m, d[i], d[j], true
}

// minDiffs is the fewest chunks whose median difference is taken for the
// sampler's in-situ cost; a shorter loop subtracts its cost alone.
const minDiffs = 16

// maxRecs is the most Recorders a loop samples into (TimeLoop's recs).
const maxRecs = 8

// run runs op(done) for done in [0, n) (n <= 0: until stop), in chunks as
// described above, sampling into recs[i mod len(recs)] net of the
// sampler's cost (see settle). stop is called about every every ops,
// between chunks, outside every timed interval.
func (l *opLoop) run(n, every int64, stop func() bool, recs []*Recorder, op func(i int64) error) error {
	var scratch [maxRecs]*Recorder
	raw := scratch[:0]
	if len(recs) > maxRecs {
		raw = make([]*Recorder, 0, len(recs))
	}
	raw = raw[:len(recs)]
	for i := range raw {
		raw[i] = spareRecs.Get().(*Recorder)
		raw[i].Reset()
	}
	err := l.chunks(n, every, stop, raw, op)
	l.settle(raw, recs)
	for _, r := range raw {
		spareRecs.Put(r)
	}
	return err
}

// chunks is run's loop, sampling the gross intervals into raw.
func (l *opLoop) chunks(n, every int64, stop func() bool, raw []*Recorder, op func(i int64) error) error {
	m := int64(len(raw))
	h := chunkHalf(n, m)
	if n <= 0 {
		n = math.MaxInt64
	}
	lap := Lap{R: raw[0]}
	nextCheck := int64(0)
	t0 := Now()
	for l.done < n {
		if l.done >= nextCheck {
			if stop() {
				return nil
			}
			nextCheck = l.done + every
			t0 = Now()
		}
		end := min(n, l.done+h)
		k := end - l.done
		for ; l.done < end; l.done++ {
			if err := op(l.done); err != nil {
				return err
			}
		}
		t1 := Now()
		l.log.add(t1-t0, k)
		lap.prev = t1
		end = min(n, l.done+h)
		ks := end - l.done
		if m == 1 {
			for ; l.done < end; l.done++ {
				if err := op(l.done); err != nil {
					return err
				}
				lap.Lap()
			}
		} else {
			for ; l.done < end; l.done++ {
				if err := op(l.done); err != nil {
					return err
				}
				lap.R = raw[l.done%m]
				lap.Lap()
			}
		}
		if ks > 0 && k > 0 {
			l.diff.add(float64(lap.prev-t1)/float64(ks) - float64(t1-t0)/float64(k))
		}
		t0 = lap.prev
		l.log.mark(t0, l.done)
	}
	return nil
}

// settle takes the sampler's cost out of the gross intervals in raw and
// adds them to recs (raw[i] to recs[i]).
//
// The cost taken out is the sampler's cost in this loop: the median over
// the chunks of the sampled half's time per operation less the bulk
// half's. Alone (MeasureTare: back-to-back laps around nothing, about
// 20 ns on the reference VM) the sampler costs more than it adds to a
// loop, where its clock read and Record overlap the operation in the
// pipeline (7-14 ns there for the model's operations): subtracting the
// cost alone put percentiles below what the operations take. The median,
// not the mean, because the halves' means carry whatever preempted the
// loop (milliseconds, on a shared machine) in one half or the other; the
// halves of a chunk run back to back, so the machine's drift cancels in
// their difference. Where the loop cannot resolve the cost (fewer than
// minDiffs chunks, or the median's 95% interval wider than the cost
// alone, as with operations of tens of microseconds that vary by more),
// the cost alone is taken out; a median below 0 (the sampler hides
// entirely in the operation's stalls) takes nothing out.
func (l *opLoop) settle(raw, recs []*Recorder) {
	alone := MeasureTare()
	l.tare = alone
	if d, lo, hi, ok := l.diff.median(); ok && hi-lo <= float64(alone) {
		l.tare = Ticks(math.Round(max(0, d)))
		l.insitu = true
	}
	for i, r := range raw {
		recs[i].mergeNet(r, l.tare)
	}
}

// mergeNet adds o's observations to r, each less c ticks (clamped at 0).
// A value in o's linear region (below subCount ticks) moves exactly;
// above, a bucket's observations move as one, by its middle value, so the
// result is as exact as the buckets are.
func (r *Recorder) mergeNet(o *Recorder, c Ticks) {
	if c <= 0 {
		r.Merge(o)
		return
	}
	if o.n == 0 {
		return
	}
	var sum uint64
	for i, k := range o.counts {
		if k == 0 {
			continue
		}
		lo, up := uint64(0), bucketUpper(i)
		if i > 0 {
			lo = bucketUpper(i-1) + 1
		}
		v := Ticks((lo + up) / 2)
		if i < subCount {
			v = Ticks(i)
		}
		net := max(0, v-c)
		r.counts[bucketOf(uint64(net))] += k
		sum += k * uint64(net)
	}
	r.n += o.n
	// The sum is o's exact sum less c per value, except for values below
	// c, which clamp at 0: those are all in the linear region when c is.
	if c < subCount {
		var under uint64
		for i := 0; i < int(c); i++ {
			under += o.counts[i] * uint64(int(c)-i)
		}
		sum = o.sum + under - o.n*uint64(c)
	}
	r.sum += sum
	r.min = min(r.min, max(0, o.min-c))
	r.max = max(r.max, max(0, o.max-c))
}

// Figures say what a timed loop's figures measure, for the params of its
// results: on a shared machine they answer different questions, and a
// p99-ns below ns/op is then no contradiction.
const (
	// LoopNsFigure is ns/op of TimeLoop.
	LoopNsFigure = "ns/op: mean over the operations timed in bulk, every stall included (a preemption adds its whole length)"
	// WorkersNsFigure is ns/op of RunWorkers with Loop.
	WorkersNsFigure = "ns/op: wall-clock time per operation over all workers (1e9 / ops/s), every stall included"
	// SampledFigures are the percentiles of the sampled operations.
	SampledFigures = "p50-ns, p99-ns: percentiles of single sampled operations less the sampler's cost (sampler-ns: measured in the loop where it resolves it, else alone), " +
		"where a stall is one sample; under load ns/op can exceed p99-ns"
)

// LoopStats is what a TimeLoop measured.
type LoopStats struct {
	// Done is the number of operations that completed.
	Done int64
	// Elapsed is the loop's wall time, sampled operations included.
	Elapsed time.Duration
	// Unsampled is the number of operations timed only in bulk.
	Unsampled int64
	// UnsampledNs is their total time in nanoseconds.
	UnsampledNs float64
	// Batches are the ns/op of consecutive batches of the unsampled
	// operations (nil when there are fewer than two).
	Batches []float64
	// TareNs is the sampler's cost per sampled operation, subtracted
	// from every recorded latency: its cost in this loop when TareInSitu,
	// else its cost alone (see opLoop.settle).
	TareNs float64
	// TareInSitu says TareNs was measured in the loop, as the median
	// over its chunks of the sampled half's time per operation less the
	// bulk half's.
	TareInSitu bool
}

// NsPerOp returns the mean time of an unsampled operation, which carries
// no sampler cost (0 when there is none).
func (s LoopStats) NsPerOp() float64 {
	if s.Unsampled == 0 {
		return 0
	}
	return s.UnsampledNs / float64(s.Unsampled)
}

func (l *opLoop) stats(elapsed time.Duration) LoopStats {
	t, ops := l.log.total()
	s := LoopStats{Done: l.done, Elapsed: elapsed, Unsampled: ops, UnsampledNs: TicksToNs(t), TareNs: TicksToNs(l.tare), TareInSitu: l.insitu}
	if nb := l.log.count(); nb >= 2 {
		s.Batches = make([]float64, nb)
		for k := range s.Batches {
			bt, bo := l.log.batch(k, nb)
			s.Batches[k] = TicksToNs(bt) / float64(bo)
		}
	}
	return s
}

// TimeLoop is the measured loop of a single-threaded case: it runs op(0)
// .. op(n-1) (n <= 0: until budget) with the timer t running only around
// the loop, times half of the operations in bulk for ns/op and batches,
// and samples the other half one by one into recs (operation i into
// recs[i mod len(recs)]), net of the sampler's tare (see the batching
// note above). It checks ctx, and budget when it is > 0, about every
// every ops, outside the timed intervals. It returns the first error:
// op's, returned as is (the ops before it are counted), or ctx's.
func TimeLoop(ctx context.Context, t Timer, n, every int64, budget time.Duration, op func(i int64) error, recs ...*Recorder) (LoopStats, error) {
	if len(recs) == 0 {
		return LoopStats{}, errors.New("harness: TimeLoop needs a Recorder")
	}
	if n <= 0 && budget <= 0 {
		return LoopStats{}, errors.New("harness: TimeLoop needs n > 0 or a budget")
	}
	var l opLoop
	var begin time.Time
	stop := func() bool {
		return ctx.Err() != nil || (budget > 0 && time.Since(begin) > budget)
	}
	t.ResetTimer()
	t.StartTimer()
	begin = time.Now()
	err := l.run(n, every, stop, recs, op)
	elapsed := time.Since(begin)
	t.StopTimer()
	if err == nil {
		err = ctx.Err()
	}
	return l.stats(elapsed), err
}

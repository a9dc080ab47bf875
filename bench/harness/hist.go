package harness

import (
	"math"
	"math/bits"
	"sync"
	"time"

	"github.com/loov/hrtime"
)

// Ticks is a reading of the CPU's cycle counter (Now): the cheapest clock
// there is, converted to nanoseconds only when a Recorder is summarised.
type Ticks = hrtime.Count

var (
	calOnce   sync.Once
	nsPerTick float64
)

// calibrate measures ticks per nanosecond against the monotonic clock over
// 20 ms; hrtime's own calibration runs for microseconds and is off by
// several percent on these VMs.
func calibrate() {
	t0, c0 := time.Now(), Now()
	for time.Since(t0) < 20*time.Millisecond {
	}
	t1, c1 := time.Now(), Now()
	if c1 > c0 {
		nsPerTick = float64(t1.Sub(t0).Nanoseconds()) / float64(c1-c0)
	} else {
		nsPerTick = 1
	}
}

// NsPerTick returns the calibrated length of one tick in nanoseconds.
func NsPerTick() float64 { calOnce.Do(calibrate); return nsPerTick }

// TicksToNs converts a tick count to nanoseconds.
func TicksToNs(t Ticks) float64 { return float64(t) * NsPerTick() }

// Recorder histogram layout: values below 2^subBits are exact; above, each
// power of two is split into 2^(subBits-1) linear buckets, so a bucket's
// width is at most 1/64 of its value (1.6% relative error).
const (
	subBits    = 7
	subCount   = 1 << subBits // 128 exact values
	halfSub    = subCount / 2 // 64 buckets per power of two
	numBuckets = subCount + (64-subBits)*halfSub
)

// Recorder is a log-linear histogram of tick counts. Record never
// allocates or locks; a Recorder belongs to one goroutine, and Recorders are
// merged after the workers stop.
type Recorder struct {
	counts [numBuckets]uint64
	n      uint64
	sum    uint64
	min    Ticks
	max    Ticks
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	calOnce.Do(calibrate)
	return &Recorder{min: math.MaxInt64}
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1
	m := v >> uint(e)            // in [64, 128)
	return subCount + (e-1)*halfSub + int(m-halfSub)
}

// bucketUpper returns the largest value that falls in bucket i.
func bucketUpper(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	j := i - subCount
	e := j/halfSub + 1
	m := uint64(j%halfSub + halfSub)
	return (m+1)<<uint(e) - 1
}

// Record adds one observation of d ticks (negative values, from a clock
// that stepped back across CPUs, count as 0).
func (r *Recorder) Record(d Ticks) {
	if d < 0 {
		d = 0
	}
	r.counts[bucketOf(uint64(d))]++
	r.n++
	r.sum += uint64(d)
	if d < r.min {
		r.min = d
	}
	if d > r.max {
		r.max = d
	}
}

// Lap is the cheapest way to time a loop of operations: call Start once,
// then Lap after each operation. Each Lap reads the clock once and records
// the time since the previous Lap, so a sampled operation carries one TSC
// read and one Record (about 15 ns on the reference VM, where RDTSC alone
// costs 10 ns; BenchmarkHarness/op=lap measures it).
type Lap struct {
	R *Recorder
	// Tare, when set, is subtracted from every recorded interval (clamped
	// at 0): the sampler's own cost, as MeasureTare finds it, so that a
	// recorded latency estimates the operation alone.
	Tare Ticks
	prev Ticks
}

// Start begins timing.
func (l *Lap) Start() { l.prev = Now() }

// Lap records the time since Start or the previous Lap.
func (l *Lap) Lap() {
	t := Now()
	l.R.Record(t - l.prev - l.Tare)
	l.prev = t
}

// spareRecs recycles the Recorders of MeasureTare and of the timed loops
// (which sample into one before the sampler's cost, known only at the
// loop's end, is taken out), so that a timed loop allocates nothing
// beyond its caller's own.
var spareRecs = sync.Pool{New: func() any { return NewRecorder() }}

// tareLaps is how many empty laps MeasureTare times.
const tareLaps = 2048

// MeasureTare returns the sampler's own cost: the median interval of
// back-to-back Laps around no operation (one TSC read and one Record),
// what every sampled latency carries on top of its operation. It runs on
// the calling thread and takes about 30 µs.
func MeasureTare() Ticks {
	r := spareRecs.Get().(*Recorder)
	defer spareRecs.Put(r)
	r.Reset()
	l := Lap{R: r}
	l.Start()
	for i := 0; i < tareLaps; i++ {
		l.Lap()
	}
	return Ticks(math.Round(r.Quantile(0.5) / NsPerTick()))
}

// Skip restarts timing without recording, to leave out work that is not
// part of the measured operation.
func (l *Lap) Skip() { l.prev = Now() }

// RecordNs adds one observation given in nanoseconds.
func (r *Recorder) RecordNs(ns float64) { r.Record(Ticks(ns / NsPerTick())) }

// Count returns the number of observations.
func (r *Recorder) Count() uint64 { return r.n }

// Merge adds o's observations to r.
func (r *Recorder) Merge(o *Recorder) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		r.counts[i] += c
	}
	r.n += o.n
	r.sum += o.sum
	if o.min < r.min {
		r.min = o.min
	}
	if o.max > r.max {
		r.max = o.max
	}
}

// Reset empties the Recorder.
func (r *Recorder) Reset() { *r = Recorder{min: math.MaxInt64} }

// Quantile returns the q-quantile (0 <= q <= 1) in nanoseconds, as the
// upper bound of the bucket that holds it (exact below 128 ticks), clamped
// to the observed maximum.
func (r *Recorder) Quantile(q float64) float64 {
	if r.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(r.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range r.counts {
		seen += c
		if seen >= rank {
			v := Ticks(bucketUpper(i))
			if v > r.max {
				v = r.max
			}
			return TicksToNs(v)
		}
	}
	return TicksToNs(r.max)
}

// Summary returns the distribution in nanoseconds with percentiles and a
// CDF of at most about 200 points; nil when nothing was recorded.
func (r *Recorder) Summary() *Histogram {
	if r.n == 0 {
		return nil
	}
	h := &Histogram{
		Count: r.n,
		Min:   TicksToNs(r.min),
		Mean:  float64(r.sum) / float64(r.n) * NsPerTick(),
		P50:   r.Quantile(0.50),
		P90:   r.Quantile(0.90),
		P99:   r.Quantile(0.99),
		P999:  r.Quantile(0.999),
		Max:   TicksToNs(r.max),
	}
	var seen uint64
	nonEmpty := 0
	for _, c := range r.counts {
		if c > 0 {
			nonEmpty++
		}
	}
	step := nonEmpty/200 + 1
	k := 0
	for i, c := range r.counts {
		if c == 0 {
			continue
		}
		seen += c
		k++
		if k%step == 0 || seen == r.n {
			up := Ticks(bucketUpper(i))
			if up > r.max {
				up = r.max
			}
			h.CDF = append(h.CDF, CDFPoint{NS: TicksToNs(up), Fraction: float64(seen) / float64(r.n)})
		}
	}
	return h
}

// Metrics returns the percentiles under benchmark-style unit names with a
// prefix, e.g. prefix "window-ns" gives "window-ns/p50" ... "window-ns/max".
func (h *Histogram) Metrics(prefix string, into map[string]float64) {
	if h == nil {
		return
	}
	into[prefix+"/p50"] = h.P50
	into[prefix+"/p90"] = h.P90
	into[prefix+"/p99"] = h.P99
	into[prefix+"/p99.9"] = h.P999
	into[prefix+"/max"] = h.Max
}

package bench

import (
	"context"
	"math"
	"time"

	"bpbench/bench/harness"
)

// wilsonZ is the normal quantile of a two-sided 95% interval.
const wilsonZ = 1.959963984540054

// wilson returns the 95% Wilson score interval of a proportion with k
// successes in n trials; [0, 1] when there were no trials. It is the CLI's
// interval (cli.Wilson), computed here because bench does not import cli.
func wilson(k, n int64) (lo, hi float64) { return wilsonF(float64(k), float64(n)) }

// wilsonF is wilson for counts that need not be whole (stealInterval).
func wilsonF(k, fn float64) (lo, hi float64) {
	if fn <= 0 {
		return 0, 1
	}
	z2 := wilsonZ * wilsonZ
	p := k / fn
	d := 1 + z2/fn
	c := (p + z2/(2*fn)) / d
	h := wilsonZ * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn)) / d
	lo, hi = math.Max(0, c-h), math.Min(1, c+h)
	// At p = 0 or 1 the bound is exact; rounding must not leave the
	// measured rate outside its own interval.
	if k == 0 {
		lo = 0
	}
	if k == fn {
		hi = 1
	}
	return lo, hi
}

// stealsNarrow reports whether k steals in n changes pin the steal rate
// down well enough to stop: the Wilson interval's half-width is at most
// 0.01 absolute or 10% of the rate, whichever is wider.
func stealsNarrow(k, n int64) bool {
	if n <= 0 {
		return false
	}
	lo, hi := wilson(k, n)
	return narrow(lo, hi, float64(k)/float64(n))
}

// narrow reports whether the interval [lo, hi] of a rate p has a
// half-width of at most 0.01 absolute or 10% of p.
func narrow(lo, hi, p float64) bool { return (hi-lo)/2 <= math.Max(0.01, 0.1*p) }

// minDispersionBatches is the fewest batches dispersion estimates from.
const minDispersionBatches = 4

// dispersion estimates how much more the steal count varies than
// independent changes would make it: Pearson's χ² of the batches' steal
// counts against the run's rate, over its degrees of freedom, at least 1
// (1 with fewer than minDispersionBatches batches, or no steal, or
// nothing but steals). Steals come in bursts when the scheduler moves a
// competitor on and off its CPU every few milliseconds, and then the
// binomial interval of the counts is too narrow.
func (st *raceStats) dispersion() float64 {
	n, k := st.changes, st.steals()
	if len(st.batches) < minDispersionBatches || k == 0 || k == n {
		return 1
	}
	p := float64(k) / float64(n)
	var chi2 float64
	for _, b := range st.batches {
		if b.changes == 0 {
			continue
		}
		e := float64(b.changes) * p
		d := float64(b.steals) - e
		chi2 += d * d / (e * (1 - p))
	}
	return math.Max(1, chi2/float64(len(st.batches)-1))
}

// stealInterval is the Wilson interval of the steal rate with the counts
// divided by their dispersion (the quasi-binomial interval): with no
// excess dispersion, the Wilson interval of the counts themselves.
func (st *raceStats) stealInterval() (lo, hi, phi float64) {
	phi = st.dispersion()
	lo, hi = wilsonF(float64(st.steals())/phi, float64(st.changes)/phi)
	return lo, hi, phi
}

// intervalNarrow reports whether the run's steal interval is narrow
// enough to stop.
func (st *raceStats) intervalNarrow() bool {
	if st.changes <= 0 {
		return false
	}
	lo, hi, _ := st.stealInterval()
	return narrow(lo, hi, float64(st.steals())/float64(st.changes))
}

// predictSteals is the steal rate the window distribution and the
// competitors' achieved rate predict: each of k competitors runs a
// fraction onCPU of the time, independently of the holder, and while it
// runs attempts at rate per second, periodically and with a phase
// independent of the holder's, so one lands in a window of w ns with
// probability onCPU·min(1, rate·w), and the window is stolen unless none
// of them does: p(w) = 1 - (1 - onCPU·min(1, rate·w))^k, averaged over
// the windows (cdf, ns).
//
// The competitors are periodic, not Poisson: a Pacer keeps an absolute
// schedule, and an unlimited competitor repeats the same refused attempt
// at a nearly constant cost, so the memoryless 1 - exp(-rate·w) would
// describe some other competitor. The two agree within (rate·w)²/2, so the
// choice matters only where windows are not short against the attempt
// interval.
func predictSteals(cdf []harness.CDFPoint, rate, onCPU float64, k int) float64 {
	if k <= 0 || rate <= 0 {
		return 0
	}
	var p, prev float64
	for _, pt := range cdf {
		q := onCPU * math.Min(1, rate*pt.NS*1e-9)
		p += (1 - math.Pow(1-q, float64(k))) * (pt.Fraction - prev)
		prev = pt.Fraction
	}
	return p
}

// raceBudget bounds an adaptive race case (the CLI's n <= 0): the holder
// changes its breakpoint in chunks until the steal interval is narrow
// (stealsNarrow), but for at least minTime, so that slow swings of the
// scheduler are averaged rather than sampled, and at most maxTime.
type raceBudget struct {
	chunk            int64
	minTime, maxTime time.Duration
}

// Race budgets per case. Quick: the 110 race and ptrace-race cases of
// five strategies took 4.0-11.1 s in all on the 2-CPU reference VM under
// load (most stop at minTime); full: 374 cases of at most 1 s each, about
// 2-6 minutes.
var (
	raceBudgetSimQuick  = raceBudget{chunk: 1000, minTime: 20 * time.Millisecond, maxTime: 100 * time.Millisecond}
	raceBudgetSimFull   = raceBudget{chunk: 1000, minTime: 250 * time.Millisecond, maxTime: time.Second}
	raceBudgetRealQuick = raceBudget{chunk: 100, minTime: 20 * time.Millisecond, maxTime: 100 * time.Millisecond}
	raceBudgetRealFull  = raceBudget{chunk: 100, minTime: 250 * time.Millisecond, maxTime: time.Second}
)

func pickBudget(o Options, quick, full raceBudget) raceBudget {
	if o.Full {
		return full
	}
	return quick
}

// raceBatch is what one chunk of holder changes counted.
type raceBatch struct {
	changes, steals int64
	elapsed         time.Duration
}

// maxRaceBatches caps Result.Batches: past it, neighbouring batches merge.
const maxRaceBatches = 64

// addBatch appends a chunk's counts, merging neighbours pairwise when
// there are too many, so that batches stay of about equal size.
func (st *raceStats) addBatch(b raceBatch) {
	st.batches = append(st.batches, b)
	if len(st.batches) <= maxRaceBatches {
		return
	}
	out := st.batches[:0]
	for i := 0; i < len(st.batches); i += 2 {
		m := st.batches[i]
		if i+1 < len(st.batches) {
			n := st.batches[i+1]
			m.changes, m.steals, m.elapsed = m.changes+n.changes, m.steals+n.steals, m.elapsed+n.elapsed
		}
		out = append(out, m)
	}
	st.batches = out
}

// runChanges runs the holder's changes: exactly n when n > 0 (benchmark
// semantics: b.N fixes the work), otherwise chunks of b.chunk until the
// steal interval is narrow or the budget ends, one batch per chunk.
func runChanges(ctx context.Context, t Timer, n int64, b raceBudget, ctxEvery int64, st *raceStats, change func(i int64) error) error {
	if n > 0 {
		return timeChanges(ctx, t, n, ctxEvery, st, change)
	}
	begin := time.Now()
	for chunk := int64(firstChunk); ; {
		base, steals0, el0 := st.changes, st.steals(), st.elapsed
		err := timeChanges(ctx, t, chunk, ctxEvery, st, func(i int64) error { return change(base + i) })
		st.addBatch(raceBatch{changes: st.changes - base, steals: st.steals() - steals0, elapsed: st.elapsed - el0})
		if err != nil {
			return err
		}
		ran := time.Since(begin)
		if ran >= b.maxTime || ran >= b.minTime && st.intervalNarrow() {
			return nil
		}
		// The next chunk takes at most about a sixteenth of the budget
		// at the pace so far: a holder starved by its competitors makes
		// changes of milliseconds.
		perChange := st.elapsed.Seconds() / float64(max(st.changes, 1))
		chunk = min(b.chunk, max(firstChunk, int64(b.maxTime.Seconds()/16/max(perChange, 1e-9))))
	}
}

// firstChunk is the size of an adaptive run's first chunk, small enough
// for the slowest holder not to overrun the budget on it.
const firstChunk = 16

// raceEstimate is what a race case usually takes: most stop well inside
// their budget once the steal interval is narrow, so half the budget's
// longest time, plus setup (a tracee, a competitor pool).
func raceEstimate(o Options, setup time.Duration) time.Duration {
	b := pickBudget(o, raceBudgetSimQuick, raceBudgetSimFull)
	return b.maxTime/2 + setup
}

package bench

import (
	"context"
	"math"
	"testing"
	"time"

	"bpbench/bench/harness"
)

// TestRaceWilson checks the interval on counts with known bounds.
func TestRaceWilson(t *testing.T) {
	for _, c := range []struct {
		k, n   int64
		lo, hi float64
	}{
		{0, 100, 0, 0.036994},         // z²/(n+z²)
		{50, 100, 0.403832, 0.596168}, // symmetric about 1/2
		{100, 100, 0.963006, 1},
		{1, 10, 0.017876, 0.404150},
		{0, 0, 0, 1},
	} {
		lo, hi := wilson(c.k, c.n)
		if math.Abs(lo-c.lo) > 1e-6 || math.Abs(hi-c.hi) > 1e-6 {
			t.Errorf("wilson(%d, %d) = [%.6f, %.6f], want [%.6f, %.6f]", c.k, c.n, lo, hi, c.lo, c.hi)
		}
	}
	// No steals: the half-width z²/(2(n+z²)) reaches 0.01 at n = 189.
	if stealsNarrow(0, 188) || !stealsNarrow(0, 189) {
		t.Errorf("stealsNarrow(0, 188) = %v, (0, 189) = %v, want false, true", stealsNarrow(0, 188), stealsNarrow(0, 189))
	}
	// Half the changes stolen: 0.01 absolute needs n of about 9600 (the
	// 10% relative bound, 0.05, is wider and needs about 380).
	if stealsNarrow(150, 300) || !stealsNarrow(200, 400) {
		t.Errorf("stealsNarrow(150, 300) = %v, (200, 400) = %v, want false, true", stealsNarrow(150, 300), stealsNarrow(200, 400))
	}
}

// TestRacePredictionPaced constructs the case the prediction must get
// exactly: k competitors attempt every T ticks, each at its own phase, and
// windows of a few lengths start at every phase against them (all T² phase
// pairs for two competitors). Counting the windows holding an attempt
// gives the measured steal rate; predictSteals, given the windows'
// recorded distribution and the attempt rate, must give the same.
func TestRacePredictionPaced(t *testing.T) {
	const period = 100 // ticks; windows below 128 ticks are recorded exactly
	widths := []int{10, 37, 100}
	holds := func(start, w, phase int) bool { // [start, start+w) holds phase + j·period
		first := phase
		for first < start {
			first += period
		}
		return first < start+w
	}
	for _, k := range []int{1, 2} {
		rec := harness.NewRecorder()
		var windows, stolen int
		for _, w := range widths {
			for s := 0; s < period; s++ {
				for ph := 0; ph < period; ph++ {
					if k == 1 && ph > 0 {
						break
					}
					rec.Record(harness.Ticks(w))
					windows++
					if holds(s, w, 0) || k == 2 && holds(s, w, ph) {
						stolen++
					}
				}
			}
		}
		rate := 1e9 / (period * harness.NsPerTick()) // attempts per second per competitor
		got, want := predictSteals(rec.Summary().CDF, rate, 1, k), float64(stolen)/float64(windows)
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("k = %d: predicted %.9f, counted %.9f (%d of %d windows)", k, got, want, stolen, windows)
		}
	}
	if p := predictSteals([]harness.CDFPoint{{NS: 1e6, Fraction: 1}}, 1e5, 1, 1); p != 1 {
		t.Errorf("a window of 100 attempt intervals: predicted %g, want 1", p)
	}
	if p := predictSteals([]harness.CDFPoint{{NS: 50, Fraction: 1}}, 1e6, 1, 0); p != 0 {
		t.Errorf("no competitors: predicted %g, want 0", p)
	}
}

// TestRaceResultPrediction: a Result reports the achieved rate and the
// prediction from its own counts.
func TestRaceResultPrediction(t *testing.T) {
	st := newRaceStats()
	const w = 100 // ticks
	for i := 0; i < 1000; i++ {
		st.exposure.Record(w)
		st.window.Record(w)
	}
	st.changes, st.lost, st.elapsed = 1000, 30, time.Millisecond
	st.compAttempts, st.compElapsed, st.compCPU = 4e5, 2*time.Second, 1
	s := raceSpec{backend: "sim", strategy: "x", mode: raceReregister, raceRate: raceRate{competitors: 2, place: placeOther}}
	m := st.result(s, Options{}, 2, nil).Metrics
	if m[MetricRateAchieved] != 1e5 {
		t.Errorf("rate-achieved/s = %g, want 1e5 (4e5 attempts by 2 competitors in 2 s)", m[MetricRateAchieved])
	}
	q := 1e5 * w * harness.NsPerTick() * 1e-9
	if want := 1 - (1-q)*(1-q); math.Abs(m[MetricStealsPredicted]-want) > 1e-12 {
		t.Errorf("steals-predicted/op = %g, want %g", m[MetricStealsPredicted], want)
	}
	// Measured run time: the threads ran half the time, at twice the rate.
	st.compOnCPU, st.hasOnCPU = 2*time.Second, true
	m = st.result(s, Options{}, 2, nil).Metrics
	q = 0.5 * 2e5 * w * harness.NsPerTick() * 1e-9
	if want := 1 - (1-q)*(1-q); m["competitor-oncpu"] != 0.5 || math.Abs(m[MetricStealsPredicted]-want) > 1e-12 || m[MetricRateAchieved] != 1e5 {
		t.Errorf("on CPU half the time: competitor-oncpu = %g, steals-predicted/op = %g, rate-achieved/s = %g, want 0.5, %g, 1e5",
			m["competitor-oncpu"], m[MetricStealsPredicted], m[MetricRateAchieved], want)
	}
	lo, hi := wilson(30, 1000)
	if m[MetricSteals] != 0.03 || m[MetricStealsLo] != lo || m[MetricStealsHi] != hi || m[MetricChanges] != 1000 {
		t.Errorf("steals %g [%g, %g] in %g changes, want 0.03 [%g, %g] in 1000", m[MetricSteals], m[MetricStealsLo], m[MetricStealsHi], m[MetricChanges], lo, hi)
	}
}

// TestRaceDispersion: batches whose steals vary as binomial counts do
// leave the Wilson interval of the counts; steals all in half of the
// batches widen it by their dispersion.
func TestRaceDispersion(t *testing.T) {
	even, bursty := newRaceStats(), newRaceStats()
	for i := 0; i < 8; i++ {
		even.addBatch(raceBatch{changes: 100, steals: 10})
		bursty.addBatch(raceBatch{changes: 100, steals: int64(20 * (i % 2))})
	}
	even.changes, even.lost = 800, 80
	bursty.changes, bursty.lost = 800, 80
	if lo, hi, phi := even.stealInterval(); phi != 1 {
		t.Errorf("equal batches: dispersion %g, want 1", phi)
	} else if wlo, whi := wilson(80, 800); lo != wlo || hi != whi {
		t.Errorf("equal batches: interval [%g, %g], want the Wilson [%g, %g]", lo, hi, wlo, whi)
	}
	// χ² = 8·10²/(100·0.1·0.9) = 88.9 over 7 degrees of freedom.
	lo, hi, phi := bursty.stealInterval()
	if want := 800.0 / 9 / 7; math.Abs(phi-want) > 1e-9 {
		t.Errorf("bursty batches: dispersion %g, want %g", phi, want)
	}
	if wlo, whi := wilsonF(80/phi, 800/phi); lo != wlo || hi != whi {
		t.Errorf("bursty batches: interval [%g, %g], want [%g, %g]", lo, hi, wlo, whi)
	}
	if _, _, phi := newRaceStats().stealInterval(); phi != 1 {
		t.Errorf("no batches: dispersion %g, want 1", phi)
	}
}

// TestRaceBatchesMerge: past maxRaceBatches, neighbouring batches merge
// and no count is lost.
func TestRaceBatchesMerge(t *testing.T) {
	st := newRaceStats()
	for i := 0; i <= maxRaceBatches; i++ {
		st.addBatch(raceBatch{changes: 10, steals: int64(i % 2), elapsed: time.Microsecond})
	}
	if len(st.batches) != maxRaceBatches/2+1 {
		t.Fatalf("%d batches after %d, want %d", len(st.batches), maxRaceBatches+1, maxRaceBatches/2+1)
	}
	var changes, steals int64
	for _, b := range st.batches {
		changes, steals = changes+b.changes, steals+b.steals
	}
	if changes != 10*(maxRaceBatches+1) || steals != maxRaceBatches/2 {
		t.Errorf("merged batches hold %d changes, %d steals, want %d, %d", changes, steals, 10*(maxRaceBatches+1), maxRaceBatches/2)
	}
}

// TestRaceAdaptive: with n = 0 a case runs chunks until its steal
// interval is narrow (no competitor: once it made 189 changes) and its
// minimum time is over, and reports the changes it made.
func TestRaceAdaptive(t *testing.T) {
	s := raceSpec{backend: "sim", strategy: strategies(t)[0], mode: raceReregister, raceRate: raceRate{place: placeNone}}
	res, err := runRaceSim(context.Background(), s, Options{}, 0, NopTimer, raceHooks{})
	if err != nil {
		t.Fatal(err)
	}
	checkRaceResult(t, s, res, 0)
	if res.Iterations < firstChunk || res.Metrics[MetricSteals] != 0 || !stealsNarrow(0, res.Iterations) {
		t.Errorf("%s: %d changes, steals/op %g: want at least a chunk, no steal, a narrow interval", res.Name, res.Iterations, res.Metrics[MetricSteals])
	}
	if b := res.Batches[MetricSteals]; len(b) > maxRaceBatches {
		t.Errorf("%s: %d batches, want at most %d", res.Name, len(b), maxRaceBatches)
	}
}

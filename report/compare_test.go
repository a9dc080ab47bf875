package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"bpbench/bench"
	"bpbench/runfile"
)

// synthRun is a run of rows cases, each repeated count times, with values
// drawn from one distribution per case: log-normal noise of the given
// spread, one outlier in twenty (a preempted run), and within-run
// batches. shift scales every value of the cases that match.
func synthRun(rng *rand.Rand, rows, count int, noise, shift float64, shifted *regexp.Regexp) *runfile.Run {
	run := &runfile.Run{}
	for rep := 0; rep < count; rep++ {
		for c := 0; c < rows; c++ {
			name := fmt.Sprintf("Update/case=%d", c)
			base := 100 * math.Pow(1.07, float64(c%50))
			if shifted != nil && shifted.MatchString(name) {
				base *= shift
			}
			draw := func() float64 {
				v := base * math.Exp(noise*rng.NormFloat64())
				if rng.IntN(20) == 0 {
					v *= 1.5
				}
				return v
			}
			var b []float64
			for range 16 {
				b = append(b, draw())
			}
			run.Results = append(run.Results, bench.Result{Name: name, Iterations: 1000, NsPerOp: draw(),
				Batches: map[string][]float64{"ns/op": b}})
		}
	}
	return run
}

// TestCompareAA: two runs drawn from one distribution are flagged in no
// more rows than the significance level allows, at count 1, 3 and 5;
// batches within a run are never the samples of a test.
func TestCompareAA(t *testing.T) {
	const rows = 400
	for _, count := range []int{1, 3, 5} {
		rng := rand.New(rand.NewPCG(uint64(count), 7))
		a := sideFromRun("a", synthRun(rng, rows, count, 0.06, 1, nil))
		b := sideFromRun("b", synthRun(rng, rows, count, 0.06, 1, nil))
		c := CompareSides([2]*side{a, b}, nil)
		if len(c.Rows) != rows {
			t.Fatalf("count %d: %d rows, want %d", count, len(c.Rows), rows)
		}
		flagged := c.Flagged()
		t.Logf("count %d: %d of %d rows flagged, %d not tested", count, flagged, rows, c.Untested)
		if float64(flagged) > 0.05*rows {
			t.Errorf("count %d: A/A flags %d of %d rows, more than 5%%", count, flagged, rows)
		}
		if count < 4 && (c.Untested != rows || flagged != 0) {
			t.Errorf("count %d: %d rows tested, want none (too few runs)", count, rows-c.Untested)
		}
	}
}

// TestCompareShiftDetected: at count 5 a 10% shift under 2% run-to-run
// noise, with one run in twenty an outlier, is flagged in most shifted
// rows (88 of 100 with this seed), and the unshifted rows
// stay within the significance level.
func TestCompareShiftDetected(t *testing.T) {
	const rows = 200
	shifted := regexp.MustCompile(`case=\d*[02468]$`)
	rng := rand.New(rand.NewPCG(5, 10))
	a := sideFromRun("a", synthRun(rng, rows, 5, 0.02, 1, nil))
	b := sideFromRun("b", synthRun(rng, rows, 5, 0.02, 1.10, shifted))
	c := CompareSides([2]*side{a, b}, nil)
	var hit, shiftedN, false_, same int
	for _, r := range c.Rows {
		if shifted.MatchString(r.Name) {
			shiftedN++
			if r.Significant && r.DeltaPct > 0 {
				hit++
			}
		} else {
			same++
			if r.Significant {
				false_++
			}
		}
	}
	t.Logf("10%% shift: %d of %d shifted rows flagged; %d of %d unshifted", hit, shiftedN, false_, same)
	if float64(hit) < 0.8*float64(shiftedN) {
		t.Errorf("10%% shift flagged in %d of %d rows, want at least 80%% (one run in twenty is an outlier)", hit, shiftedN)
	}
	if float64(false_) > 0.05*float64(same) {
		t.Errorf("%d of %d unshifted rows flagged", false_, same)
	}
}

// TestCompareMissingAndFilter: benchmarks one side lacks are one summary
// line, not rows; a filter keeps only the names it matches.
func TestCompareMissingAndFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := sideFromRun("a", synthRun(rng, 10, 5, 0.02, 1, nil))
	b := sideFromRun("b", synthRun(rng, 6, 5, 0.02, 1, nil))
	c := CompareSides([2]*side{a, b}, nil)
	if len(c.Rows) != 6 || len(c.OnlyOld) != 4 || len(c.OnlyNew) != 0 {
		t.Fatalf("rows %d, only old %d, only new %d; want 6, 4, 0", len(c.Rows), len(c.OnlyOld), len(c.OnlyNew))
	}
	sum := strings.Join(c.Summary(), "\n")
	if !strings.Contains(sum, "4 benchmark units only in old, not compared (Update/case=6 ns/op; Update/case=7 ns/op; Update/case=8 ns/op, …)") {
		t.Errorf("summary:\n%s", sum)
	}
	c = CompareSides([2]*side{a, b}, regexp.MustCompile(`case=[12]$`))
	if len(c.Rows) != 2 || len(c.OnlyOld) != 0 {
		t.Errorf("filtered: %d rows, %d only old; want 2, 0", len(c.Rows), len(c.OnlyOld))
	}
}

// TestCSVFloat: medians of two values print without float noise.
func TestCSVFloat(t *testing.T) {
	if got := csvFloat((171.97 + 171.99) / 2); got != "171.98" {
		t.Errorf("csvFloat = %s, want 171.98", got)
	}
	if got := csvFloat(math.NaN()); got != "" {
		t.Errorf("csvFloat(NaN) = %q", got)
	}
}

// TestCompareCalibrationTies: two runs that read the same histogram bucket
// through clocks calibrated a few parts in 10⁵ apart are not different.
func TestCompareCalibrationTies(t *testing.T) {
	mk := func(scale float64) *side {
		run := &runfile.Run{}
		for rep := 0; rep < 5; rep++ {
			run.Results = append(run.Results, bench.Result{Name: "Update/case=0", Iterations: 1000, NsPerOp: 100 + float64(rep),
				Metrics: map[string]float64{"p50-ns": 79.7401 * scale}})
		}
		return sideFromRun("x", run)
	}
	c := CompareSides([2]*side{mk(1), mk(1.000024)}, nil)
	for _, r := range c.Rows {
		if r.Significant {
			t.Errorf("%s %s: flagged a difference of %.4f%%", r.Name, r.Unit, r.DeltaPct)
		}
	}
	c = CompareSides([2]*side{mk(1), mk(1.02)}, nil)
	if n := c.Flagged(); n != 1 {
		t.Errorf("a 2%% shift in p50: %d rows flagged, want 1", n)
	}
}

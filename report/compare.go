package report

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// side is one run's values to compare: per benchmark and unit (units as
// written: "ns/op", "steals/op", ...), the values of its repetitions and,
// when the run recorded them, of its within-run batches.
type side struct {
	dir    string
	config []benchfmt.Config // bench.txt's configuration lines
	names  []string          // first-seen order
	units  map[string][]string
	runs   map[[2]string][]float64
	batch  map[[2]string][]float64
}

func newSide(dir string) *side {
	return &side{dir: dir, units: map[string][]string{}, runs: map[[2]string][]float64{}, batch: map[[2]string][]float64{}}
}

func (s *side) add(name, unit string, v float64) {
	if _, ok := s.units[name]; !ok {
		s.names = append(s.names, name)
	}
	k := [2]string{name, unit}
	if _, ok := s.runs[k]; !ok {
		s.units[name] = append(s.units[name], unit)
	}
	s.runs[k] = append(s.runs[k], v)
}

// LoadSides reads both runs from results.json when both have one (it
// holds the within-run batches), else from both bench.txt files.
func LoadSides(oldDir, newDir string) ([2]*side, error) {
	var out [2]*side
	dirs := [2]string{oldDir, newDir}
	var runs [2]*runfile.Run
	haveJSON := true
	for i, dir := range dirs {
		if !runfile.HaveResults(dir) {
			haveJSON = false
			continue
		}
		r, err := runfile.Load(dir)
		if err != nil {
			return out, fmt.Errorf("compare: %w", err)
		}
		runs[i] = r
	}
	for i, dir := range dirs {
		var err error
		if haveJSON {
			out[i] = sideFromRun(dir, runs[i])
		} else if out[i], err = sideFromBench(dir); err != nil {
			return out, err
		}
		if len(out[i].names) == 0 {
			return out, runfile.NotResultsf("compare: %s holds no benchmark results", dir)
		}
	}
	return out, nil
}

func sideFromRun(dir string, r *runfile.Run) *side {
	s := newSide(dir)
	s.config = runfile.BenchConfig(r)
	for _, res := range r.Results {
		name := runfile.BenchName(res.Name)
		s.add(name, bench.UnitNsPerOp, res.NsPerOp)
		for _, u := range slices.Sorted(maps.Keys(res.Metrics)) {
			s.add(name, u, res.Metrics[u])
		}
		for u, b := range res.Batches {
			k := [2]string{name, u}
			s.batch[k] = append(s.batch[k], b...)
		}
	}
	return s
}

func sideFromBench(dir string) (*side, error) {
	path := filepath.Join(dir, runfile.BenchFile)
	res, err := runfile.ReadBenchFile(path)
	if err != nil {
		return nil, runfile.NotResultsf("compare: cannot read %s: %v (want a directory written by `bpbench run`)", path, runfile.UnwrapPath(err))
	}
	s := newSide(dir)
	for _, r := range res {
		if s.config == nil {
			s.config = r.Config
		}
		// The name without its -GOMAXPROCS suffix, so that runs on
		// machines of different sizes line up.
		base, parts := r.Name.Parts()
		name := string(base)
		for _, p := range parts {
			if p[0] == '/' {
				name += string(p)
			}
		}
		for _, v := range r.Values {
			val, unit := v.Value, v.Unit
			if v.OrigUnit != "" {
				val, unit = v.OrigValue, v.OrigUnit
			}
			s.add(name, unit, val)
		}
	}
	return s, nil
}

// compareRow is one benchmark and unit that both runs measured.
type compareRow struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// OldN and NewN are the runs of the case on each side: the samples
	// of the test.
	OldN      int     `json:"old_n"`
	NewN      int     `json:"new_n"`
	OldMedian float64 `json:"old_median"`
	NewMedian float64 `json:"new_median"`
	// OldCI and NewCI are the medians' intervals: over the runs, or, for a
	// side run once, over its within-run batches (From "batches"), shown
	// for what they are but never tested.
	OldCI    stats.Interval `json:"old_ci"`
	NewCI    stats.Interval `json:"new_ci"`
	DeltaPct float64        `json:"delta_pct"`
	// Tested says the runs were enough to test (stats.MinSignificant a
	// side); P and Significant are meaningful only then.
	Tested      bool    `json:"tested"`
	P           float64 `json:"p_value"`
	Significant bool    `json:"significant"`

	cmp benchmath.Comparison
}

// note says why a row was not tested, or "".
func (r *compareRow) note() string {
	if r.Tested {
		return ""
	}
	return fmt.Sprintf("not tested: %d vs %d runs, need %d a side", r.OldN, r.NewN, stats.MinSignificant)
}

// Geomean is the geometric mean of a unit's medians over the rows both
// sides have.
type Geomean struct {
	Unit     string  `json:"unit"`
	Rows     int     `json:"rows"`
	Old      float64 `json:"old"`
	New      float64 `json:"new"`
	DeltaPct float64 `json:"delta_pct"`
}

// Comparison is two runs side by side: the rows both measured, tested
// where both ran often enough, and the benchmarks only one side has.
type Comparison struct {
	Rows     []*compareRow
	geomeans []Geomean
	// Untested counts the rows with too few runs to test.
	Untested int
	// OnlyOld and OnlyNew are the benchmarks (name and unit) one side
	// lacks, summarised rather than listed row by row.
	OnlyOld, OnlyNew []string
}

// Tested counts the rows that were tested.
func (c *Comparison) Tested() int { return len(c.Rows) - c.Untested }

// Flagged counts the rows whose difference is significant.
func (c *Comparison) Flagged() int {
	n := 0
	for _, r := range c.Rows {
		if r.Significant {
			n++
		}
	}
	return n
}

// unitOrder puts ns/op first, then the other units sorted, as bench.txt
// writes them.
func unitOrder(units []string) []string {
	u := slices.Clone(units)
	slices.SortFunc(u, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == bench.UnitNsPerOp:
			return -1
		case b == bench.UnitNsPerOp:
			return 1
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(u)
}

// CompareSides compares every benchmark and unit whose name filter
// matches (nil: all). The samples of the test are the runs of each case
// and nothing else: the batches within one run are not independent draws
// of the run-to-run distribution, and a test over them flags differences
// between two identical runs (an A/A pair of count 3 once had 55 of 108
// rows flagged). With fewer than stats.MinSignificant runs a side no
// Mann-Whitney U test can reach significance, so such rows are not
// tested and say so.
func CompareSides(sides [2]*side, filter *regexp.Regexp) *Comparison {
	old, new := sides[0], sides[1]
	names := slices.Clone(old.names)
	for _, n := range new.names {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if filter != nil {
		names = slices.DeleteFunc(names, func(n string) bool { return !filter.MatchString(n) })
	}
	var units []string
	for _, n := range names {
		units = append(units, old.units[n]...)
		units = append(units, new.units[n]...)
	}
	thr := benchmath.DefaultThresholds
	c := &Comparison{}
	for _, u := range unitOrder(units) {
		var lo, ln []float64
		for _, n := range names {
			k := [2]string{n, u}
			ov, nv := old.runs[k], new.runs[k]
			switch {
			case ov == nil && nv == nil:
				continue
			case nv == nil:
				c.OnlyOld = append(c.OnlyOld, n+" "+u)
				continue
			case ov == nil:
				c.OnlyNew = append(c.OnlyNew, n+" "+u)
				continue
			}
			row := &compareRow{Name: n, Unit: u, OldN: len(ov), NewN: len(nv), P: math.NaN()}
			row.OldCI, row.NewCI = sideInterval(ov, old.batch[k]), sideInterval(nv, new.batch[k])
			row.OldMedian, row.NewMedian = row.OldCI.Median, row.NewCI.Median
			if row.OldMedian != 0 {
				row.DeltaPct = (row.NewMedian - row.OldMedian) / row.OldMedian * 100
			}
			if row.OldN >= stats.MinSignificant && row.NewN >= stats.MinSignificant {
				row.Tested = true
				row.cmp = benchmath.AssumeNothing.Compare(benchmath.NewSample(resolved(ov), &thr), benchmath.NewSample(resolved(nv), &thr))
				row.P = row.cmp.P
				row.Significant = row.cmp.P < row.cmp.Alpha
			} else {
				c.Untested++
			}
			if row.OldMedian > 0 && row.NewMedian > 0 {
				lo, ln = append(lo, row.OldMedian), append(ln, row.NewMedian)
			}
			c.Rows = append(c.Rows, row)
		}
		if len(lo) > 0 {
			g := Geomean{Unit: u, Rows: len(lo), Old: geoMean(lo), New: geoMean(ln)}
			g.DeltaPct = (g.New - g.Old) / g.Old * 100
			c.geomeans = append(c.geomeans, g)
		}
	}
	return c
}

// testDigits is the precision values are tested at. Each process
// calibrates its clock afresh, and the calibrations differ in the fifth
// digit, so one histogram bucket read in two runs gives two values a few
// parts in 10⁵ apart: repeated within each run, they separate perfectly
// and a test over them flags a difference no measurement here resolves.
// Four digits keep every difference the clocks and histograms can show
// (a bucket is up to 1.6% wide; a calibration is good to about 0.01%).
const testDigits = 4

// resolved returns vs at testDigits significant digits.
func resolved(vs []float64) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = present.RoundSig(v, testDigits)
	}
	return out
}

// sideInterval is one side's median and interval: over its runs, or,
// for a case run once that recorded within-run batches, over those, so
// that a single run still shows its spread.
func sideInterval(runs, batches []float64) stats.Interval {
	if len(runs) == 1 && len(batches) > 1 {
		iv := stats.MedianInterval(batches, "batches")
		iv.Median = runs[0]
		return iv
	}
	return stats.MedianInterval(runs, "runs")
}

func geoMean(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += math.Log(v)
	}
	return math.Exp(s / float64(len(vs)))
}

package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
	"golang.org/x/perf/benchunit"

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
		s.add(name, "ns/op", res.NsPerOp)
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

// compareRow is one benchmark and unit of a comparison.
type compareRow struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// From says what the values are: "runs", or "batches" (within-run
	// batches, used when a side has fewer than minSignificant runs).
	From      string  `json:"from,omitempty"`
	OldN      int     `json:"old_n"`
	NewN      int     `json:"new_n"`
	OldMedian float64 `json:"old_median"`
	NewMedian float64 `json:"new_median"`
	// OldCI and NewCI are the medians' intervals.
	OldCI       stats.Interval `json:"old_ci"`
	NewCI       stats.Interval `json:"new_ci"`
	DeltaPct    float64        `json:"delta_pct"`
	P           float64        `json:"p_value"`
	Significant bool           `json:"significant"`
	// Missing says the benchmark ran on one side only.
	Missing bool `json:"missing,omitempty"`
	// TooFew says a side has fewer than minSignificant values.
	TooFew bool `json:"too_few,omitempty"`

	cmp benchmath.Comparison
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

type comparison struct {
	Rows     []*compareRow
	geomeans []Geomean
	Small    int
}

// unitOrder puts ns/op first, then the other units sorted, as bench.txt
// writes them.
func unitOrder(units []string) []string {
	u := slices.Clone(units)
	slices.SortFunc(u, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "ns/op":
			return -1
		case b == "ns/op":
			return 1
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(u)
}

func CompareSides(sides [2]*side) *comparison {
	old, new := sides[0], sides[1]
	names := slices.Clone(old.names)
	for _, n := range new.names {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var units []string
	for _, n := range names {
		units = append(units, old.units[n]...)
		units = append(units, new.units[n]...)
	}
	thr := benchmath.DefaultThresholds
	c := &comparison{}
	for _, u := range unitOrder(units) {
		var lo, ln []float64
		for _, n := range names {
			k := [2]string{n, u}
			ov, nv := old.runs[k], new.runs[k]
			if ov == nil && nv == nil {
				continue
			}
			row := &compareRow{Name: n, Unit: u, From: "runs", P: math.NaN()}
			// Batches stand in for runs when runs are too few, on both
			// sides alike so that like is compared with like.
			if (len(ov) < stats.MinSignificant || len(nv) < stats.MinSignificant) &&
				len(old.batch[k]) >= stats.MinSignificant && len(new.batch[k]) >= stats.MinSignificant {
				ov, nv, row.From = old.batch[k], new.batch[k], "batches"
			}
			row.OldN, row.NewN = len(ov), len(nv)
			if ov == nil || nv == nil {
				row.Missing = true
			}
			var samples [2]*benchmath.Sample
			for i, vs := range [2][]float64{ov, nv} {
				if len(vs) == 0 {
					continue
				}
				samples[i] = benchmath.NewSample(vs, &thr)
				iv := stats.MedianInterval(vs, row.From)
				if i == 0 {
					row.OldCI, row.OldMedian = iv, iv.Median
				} else {
					row.NewCI, row.NewMedian = iv, iv.Median
				}
			}
			if !row.Missing {
				row.cmp = benchmath.AssumeNothing.Compare(samples[0], samples[1])
				row.P = row.cmp.P
				row.Significant = row.cmp.P < row.cmp.Alpha
				if row.OldMedian != 0 {
					row.DeltaPct = (row.NewMedian - row.OldMedian) / row.OldMedian * 100
				}
				if row.OldN < stats.MinSignificant || row.NewN < stats.MinSignificant {
					row.TooFew = true
					c.Small++
				}
				if row.OldMedian > 0 && row.NewMedian > 0 {
					lo, ln = append(lo, row.OldMedian), append(ln, row.NewMedian)
				}
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

func geoMean(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += math.Log(v)
	}
	return math.Exp(s / float64(len(vs)))
}

// fmtValue scales v of unit as benchstat does ("1.234µ" sec/op), and
// returns the tidied unit for the table header.
func fmtValue(v float64, unit string) (string, string) {
	tv, tu := benchunit.Tidy(v, unit)
	return benchunit.Scale(tv, benchunit.ClassOf(tu)), tu
}

// WriteCompareText prints, per unit, old and new medians with their 95%
// intervals, the delta and the Mann-Whitney p-value, as benchstat does,
// and the geomean of the unit's medians.
func WriteCompareText(w io.Writer, oldName, newName string, sides [2]*side, c *comparison) error {
	oldCol, newCol := filepath.Base(filepath.Clean(oldName)), filepath.Base(filepath.Clean(newName))
	if oldCol == newCol {
		oldCol, newCol = "old", "new"
	}
	printConfigDiff(w, oldName, newName, sides[0].config, sides[1].config)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	unit, batches, partial := "", false, false
	geo := map[string]Geomean{}
	for _, g := range c.geomeans {
		geo[g.Unit] = g
	}
	flushGeo := func(u string) {
		if g, ok := geo[u]; ok && g.Rows > 1 {
			o, _ := fmtValue(g.Old, u)
			n, _ := fmtValue(g.New, u)
			fmt.Fprintf(tw, "geomean\t%s\t%s\t%+.2f%%\t\n", o, n, g.DeltaPct)
		}
	}
	for _, r := range c.Rows {
		if r.Unit != unit {
			flushGeo(unit)
			unit = r.Unit
			_, tu := fmtValue(1, r.Unit)
			fmt.Fprintf(tw, "\n%s\t%s\t%s\tdelta\tp-value\n", tu, oldCol, newCol)
		}
		col := [2]string{"missing", "missing"}
		for i, n := range [2]int{r.OldN, r.NewN} {
			if n == 0 {
				continue
			}
			iv := r.OldCI
			if i == 1 {
				iv = r.NewCI
			}
			col[i], _ = fmtValue(iv.Median, r.Unit)
			switch {
			case n == 1:
				col[i] += " (n=1)"
			case iv.Median == 0:
				col[i] += fmt.Sprintf(" [%s, %s]", present.TrimFloat(iv.Lo), present.TrimFloat(iv.Hi))
			default:
				col[i] += fmt.Sprintf(" ± %.0f%%", 100*max(iv.Hi-iv.Median, iv.Median-iv.Lo)/math.Abs(iv.Median))
				if !iv.Resolved() {
					col[i] += fmt.Sprintf(" @%.0f%%", 100*iv.Coverage)
					partial = true
				}
			}
		}
		delta, note := "~", "n/a (missing on one side)"
		if !r.Missing {
			delta = r.cmp.FormatDelta(r.OldMedian, r.NewMedian)
			note = r.cmp.String()
			if r.From == "batches" {
				note += " batches"
				batches = true
			}
			if r.TooFew {
				note += " (n too small)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, col[0], col[1], delta, note)
	}
	flushGeo(unit)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n±: 95%% confidence interval of the median (order statistics).\n~: no significant difference (Mann-Whitney U, alpha %.2f).\n", benchmath.DefaultThresholds.CompareAlpha)
	if partial {
		fmt.Fprintf(w, "@N%%: the interval [min, max] covers the median only N%% of the time: fewer than 6 values, too few for 95%%.\n")
	}
	if batches {
		fmt.Fprintf(w, "\"batches\": a side ran fewer than %d times, so its within-run batches are the samples; they miss run-to-run variation, so a difference there may not repeat.\n", stats.MinSignificant)
	}
	if c.Small > 0 {
		fmt.Fprintf(w, "Rows marked \"n too small\" have fewer than %d samples on a side, where no difference can be significant; run both with --count %d or more.\n", stats.MinSignificant, runfile.FullCount)
	}
	return nil
}

// csvFloat formats a figure for csv and json readers: full precision, and
// empty when there is none.
func csvFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func WriteCompareCSV(w io.Writer, c *comparison) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"name", "unit", "old_median", "new_median", "delta_pct", "p_value", "significant"})
	for _, r := range c.Rows {
		oldM, newM, delta := csvFloat(r.OldMedian), csvFloat(r.NewMedian), csvFloat(r.DeltaPct)
		if r.OldN == 0 {
			oldM, delta = "", ""
		}
		if r.NewN == 0 {
			newM, delta = "", ""
		}
		cw.Write([]string{r.Name, r.Unit, oldM, newM, delta, csvFloat(r.P), strconv.FormatBool(r.Significant)})
	}
	cw.Flush()
	return cw.Error()
}

// jsonRow is compareRow with NaN p-values as null.
type jsonRow struct {
	*compareRow
	P *float64 `json:"p_value"`
}

func WriteCompareJSON(w io.Writer, oldName, newName string, c *comparison) error {
	out := struct {
		Old      string    `json:"old"`
		New      string    `json:"new"`
		Alpha    float64   `json:"alpha"`
		Rows     []jsonRow `json:"rows"`
		Geomeans []Geomean `json:"geomeans"`
	}{Old: oldName, New: newName, Alpha: benchmath.DefaultThresholds.CompareAlpha, Rows: []jsonRow{}, Geomeans: c.geomeans}
	for _, r := range c.Rows {
		jr := jsonRow{compareRow: r}
		if !math.IsNaN(r.P) {
			p := r.P
			jr.P = &p
		}
		out.Rows = append(out.Rows, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("compare: encoding json: %w", err)
	}
	return nil
}

// printConfigDiff prints the configuration of both runs, with the old
// and new value where they differ.
func printConfigDiff(w io.Writer, oldName, newName string, old, new []benchfmt.Config) {
	fmt.Fprintf(w, "old: %s\nnew: %s\n", oldName, newName)
	for _, c := range old {
		if !c.File {
			continue
		}
		nv := "unknown"
		for _, n := range new {
			if n.Key == c.Key {
				nv = string(n.Value)
			}
		}
		if nv != string(c.Value) {
			fmt.Fprintf(w, "%s: %s -> %s\n", c.Key, c.Value, nv)
		} else {
			fmt.Fprintf(w, "%s: %s\n", c.Key, c.Value)
		}
	}
}

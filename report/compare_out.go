package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
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

// fmtValue scales v of unit as benchstat does ("1.234µ" sec/op), and
// returns the tidied unit for the table header.
func fmtValue(v float64, unit string) (string, string) {
	tv, tu := benchunit.Tidy(v, unit)
	return benchunit.Scale(tv, benchunit.ClassOf(tu)), tu
}

// WriteCompareText prints, per unit, old and new medians with their 95%
// intervals, the delta and the Mann-Whitney p-value, as benchstat does,
// and the geomean of the unit's medians; a row with too few runs to test
// says so, and the benchmarks only one side has are summarised in a line.
func WriteCompareText(w io.Writer, oldName, newName string, sides [2]*side, c *Comparison) error {
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
		var col [2]string
		for i, iv := range [2]stats.Interval{r.OldCI, r.NewCI} {
			col[i], _ = fmtValue(iv.Median, r.Unit)
			switch {
			case iv.N == 1:
				col[i] += " (n=1)"
			case iv.Median == 0:
				col[i] += fmt.Sprintf(" [%s, %s]", present.TrimFloat(iv.Lo), present.TrimFloat(iv.Hi))
			default:
				col[i] += fmt.Sprintf(" ± %.0f%%", 100*max(iv.Hi-iv.Median, iv.Median-iv.Lo)/math.Abs(iv.Median))
				if iv.From == "batches" {
					col[i] += " (batches)"
					batches = true
				} else if !iv.Resolved() {
					col[i] += fmt.Sprintf(" @%.0f%%", 100*iv.Coverage)
					partial = true
				}
			}
		}
		delta, note := fmt.Sprintf("%+.2f%%", r.DeltaPct), r.note()
		if r.Tested {
			delta, note = r.cmp.FormatDelta(r.OldMedian, r.NewMedian), r.cmp.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, col[0], col[1], delta, note)
	}
	flushGeo(unit)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n±: 95%% confidence interval of the median (order statistics).\n~: no significant difference (Mann-Whitney U over the runs of each case, alpha %.2f).\n", benchmath.DefaultThresholds.CompareAlpha)
	if partial {
		fmt.Fprintf(w, "@N%%: the interval [min, max] covers the median only N%% of the time: fewer than 6 values, too few for 95%%.\n")
	}
	if batches {
		fmt.Fprintf(w, "(batches): the side ran once, so its interval is over batches within that run; it shows the run's own spread, not how a second run would differ, and is not tested.\n")
	}
	for _, line := range c.summary() {
		fmt.Fprintln(w, line)
	}
	return nil
}

// summary is what the table leaves out, a line each: how many rows were
// flagged of those tested, how many could not be tested, and the
// benchmarks one side lacks.
func (c *Comparison) summary() []string {
	var out []string
	if t := c.Tested(); t > 0 {
		out = append(out, fmt.Sprintf("%d of %d tested rows differ significantly (by chance alone about %.0f%% of rows would; the U test over 5 runs a side reaches p < 0.05 for about 3%%).",
			c.Flagged(), t, 100*benchmath.DefaultThresholds.CompareAlpha))
	}
	if c.Untested > 0 {
		out = append(out, fmt.Sprintf("%d of %d rows not tested: fewer than %d runs on a side, where no difference can be significant; run both with --count %d or more.",
			c.Untested, len(c.Rows), stats.MinSignificant, runfile.FullCount))
	}
	for _, m := range []struct {
		side  string
		names []string
	}{{"old", c.OnlyOld}, {"new", c.OnlyNew}} {
		if len(m.names) == 0 {
			continue
		}
		eg := m.names[:min(3, len(m.names))]
		more := ""
		if len(m.names) > len(eg) {
			more = ", …"
		}
		out = append(out, fmt.Sprintf("%d benchmark units only in %s, not compared (%s%s).", len(m.names), m.side, strings.Join(eg, "; "), more))
	}
	return out
}

// csvFloat formats a figure for csv and json readers: ten significant
// digits, far below any measurement's noise, so that a median of two
// values prints as 171.98 rather than 171.98000000000002; empty when
// there is none.
func csvFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(present.RoundSig(v, 10), 'g', -1, 64)
}

// WriteCompareCSV writes one line per row: name, unit, the medians, the
// delta in percent, the p-value and whether the difference is
// significant, then a note (why the row was not tested). Benchmarks one
// side lacks are not rows; their summary is returned for the caller to
// print.
func WriteCompareCSV(w io.Writer, c *Comparison) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"name", "unit", "old_median", "new_median", "delta_pct", "p_value", "significant", "note"})
	for _, r := range c.Rows {
		cw.Write([]string{r.Name, r.Unit, csvFloat(r.OldMedian), csvFloat(r.NewMedian), csvFloat(r.DeltaPct), csvFloat(r.P), strconv.FormatBool(r.Significant), r.note()})
	}
	cw.Flush()
	return cw.Error()
}

// Summary is the lines WriteCompareText ends with, for csv and json
// callers to print elsewhere.
func (c *Comparison) Summary() []string { return c.summary() }

// jsonRow is compareRow with NaN p-values as null.
type jsonRow struct {
	*compareRow
	P    *float64 `json:"p_value"`
	Note string   `json:"note,omitempty"`
}

// WriteCompareJSON writes the comparison as one JSON object.
func WriteCompareJSON(w io.Writer, oldName, newName string, c *Comparison) error {
	out := struct {
		Old      string    `json:"old"`
		New      string    `json:"new"`
		Alpha    float64   `json:"alpha"`
		Tested   int       `json:"tested"`
		Flagged  int       `json:"flagged"`
		Untested int       `json:"untested"`
		Rows     []jsonRow `json:"rows"`
		Geomeans []Geomean `json:"geomeans"`
		OnlyOld  []string  `json:"only_old,omitempty"`
		OnlyNew  []string  `json:"only_new,omitempty"`
	}{Old: oldName, New: newName, Alpha: benchmath.DefaultThresholds.CompareAlpha, Tested: c.Tested(), Flagged: c.Flagged(), Untested: c.Untested,
		Rows: []jsonRow{}, Geomeans: c.geomeans, OnlyOld: c.OnlyOld, OnlyNew: c.OnlyNew}
	for _, r := range c.Rows {
		jr := jsonRow{compareRow: r, Note: r.note()}
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

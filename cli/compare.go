package cli

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
	"golang.org/x/perf/benchproc"
	"golang.org/x/perf/benchunit"
)

// minSignificant is the smallest sample size per side at which the
// two-sided Mann-Whitney U test can reach p < 0.05 (4+4 gives p = 0.029).
const minSignificant = 4

func cmdCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("compare: want two results directories, got %d arguments (usage: bpbench compare DIR1 DIR2)", len(pos))
	}
	var sides [2][]*benchfmt.Result
	for i, dir := range pos {
		path := filepath.Join(dir, benchFile)
		res, err := readBenchFile(path)
		if err != nil {
			return usagef("compare: cannot read %s: %v (want a directory written by `bpbench run`)", path, unwrapPath(err))
		}
		if len(res) == 0 {
			return usagef("compare: %s holds no benchmark results", path)
		}
		sides[i] = res
	}
	return compareTables(stdout, pos[0], pos[1], sides[0], sides[1])
}

// cell is one side of one (benchmark, unit) row.
type cell struct{ values [2][]float64 }

// compareTables prints, per unit, old and new centres with their
// confidence ranges, the delta and the Mann-Whitney p-value, as benchstat
// does. Rows are grouped by the full benchmark name without /gomaxprocs,
// so two machines with different CPU counts line up.
func compareTables(w io.Writer, oldName, newName string, old, new []*benchfmt.Result) error {
	var parser benchproc.ProjectionParser
	if _, err := parser.Parse("/gomaxprocs", nil); err != nil {
		return err
	}
	rowBy, unitField, err := parser.ParseWithUnit(".fullname", nil)
	if err != nil {
		return err
	}
	cells := map[benchproc.Key]*cell{}
	var keys []benchproc.Key
	for side, results := range [2][]*benchfmt.Result{old, new} {
		for _, r := range results {
			for i, k := range rowBy.ProjectValues(r) {
				c := cells[k]
				if c == nil {
					c = &cell{}
					cells[k] = c
					keys = append(keys, k)
				}
				c.values[side] = append(c.values[side], r.Values[i].Value)
			}
		}
	}
	// One table per unit, units in order of first appearance (ns/op
	// first, as written), rows in benchproc's order within a unit.
	benchproc.SortKeys(keys)
	unitRank := map[string]int{}
	for _, k := range keys {
		if _, ok := unitRank[k.Get(unitField)]; !ok {
			unitRank[k.Get(unitField)] = len(unitRank)
		}
	}
	for _, results := range [2][]*benchfmt.Result{old, new} {
		for _, r := range results {
			for _, v := range r.Values {
				if _, ok := unitRank[v.Unit]; !ok {
					unitRank[v.Unit] = len(unitRank)
				}
			}
			break
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return unitRank[keys[i].Get(unitField)] < unitRank[keys[j].Get(unitField)] })
	nameField := rowBy.Fields()[0]
	oldCol, newCol := filepath.Base(filepath.Clean(oldName)), filepath.Base(filepath.Clean(newName))
	if oldCol == newCol {
		oldCol, newCol = "old", "new"
	}

	printConfigDiff(w, oldName, newName, old[0], new[0])
	thr := benchmath.DefaultThresholds
	assume := benchmath.AssumeNothing
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	unit := ""
	small := false
	for _, k := range keys {
		u := k.Get(unitField)
		if u != unit {
			unit = u
			fmt.Fprintf(tw, "\n%s\t%s\t%s\tdelta\tp-value\n", u, oldCol, newCol)
		}
		c := cells[k]
		name := k.Get(nameField)
		var s [2]*benchmath.Sample
		var col [2]string
		for i := range s {
			if len(c.values[i]) == 0 {
				col[i] = "missing"
				continue
			}
			s[i] = benchmath.NewSample(c.values[i], &thr)
			sum := assume.Summary(s[i], 0.95)
			col[i] = benchunit.Scale(sum.Center, benchunit.ClassOf(u)) + " ± " + sum.PctRangeString()
		}
		delta, note := "~", "n/a (missing on one side)"
		if s[0] != nil && s[1] != nil {
			cmp := assume.Compare(s[0], s[1])
			delta = cmp.FormatDelta(assume.Summary(s[0], 0.95).Center, assume.Summary(s[1], 0.95).Center)
			note = cmp.String()
			if len(c.values[0]) < minSignificant || len(c.values[1]) < minSignificant {
				note += " (n too small)"
				small = true
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, col[0], col[1], delta, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n±: 95%% confidence interval of the median (∞: too few samples for one).\n~: no significant difference (Mann-Whitney U, alpha %.2f).\n", thr.CompareAlpha)
	if small {
		fmt.Fprintf(w, "Rows marked \"n too small\" have fewer than %d samples on a side, where no difference can be significant; run both with --count %d or more.\n", minSignificant, minSignificant+1)
	}
	return nil
}

// printConfigDiff prints the configuration of both runs where it differs.
func printConfigDiff(w io.Writer, oldName, newName string, old, new *benchfmt.Result) {
	fmt.Fprintf(w, "old: %s\nnew: %s\n", oldName, newName)
	for _, c := range old.Config {
		if !c.File {
			continue
		}
		nv := new.GetConfig(c.Key)
		if nv != string(c.Value) {
			fmt.Fprintf(w, "%s: %s -> %s\n", c.Key, c.Value, nv)
		} else {
			fmt.Fprintf(w, "%s: %s\n", c.Key, c.Value)
		}
	}
}

package dbgreport

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bpbench/bench"
	"bpbench/debuggers"
	"bpbench/runfile"
)

// loadRun reads testdata/results.json: the debuggers results and skips of
// a real quick run (`bpbench run --experiments debuggers`).
func loadRun(t *testing.T) ([]bench.Result, []runfile.Skip) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		Results []bench.Result `json:"results"`
		Skipped []runfile.Skip `json:"skipped"`
	}
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	if len(run.Results) == 0 {
		t.Fatal("no results in testdata/results.json")
	}
	return run.Results, run.Skipped
}

// metric returns a result's metric by debugger, threads and action.
func metric(t *testing.T, rs []bench.Result, dbg string, threads int, action, unit string) float64 {
	t.Helper()
	name := debuggers.CaseName(dbg, threads, action)
	for _, r := range rs {
		if r.Name == name {
			v, ok := r.Metrics[unit]
			if !ok {
				t.Fatalf("%s has no %s", name, unit)
			}
			return v
		}
	}
	t.Fatalf("no result %s", name)
	return 0
}

// TestSection checks the rendered section against the run it renders: a
// table per debugger with a row per thread count and action holding its
// figures, the headline per move with the debugger's and write-changed's
// writes, and rr's reason.
func TestSection(t *testing.T) {
	rs, skips := loadRun(t)
	s := Section(rs, skips)
	if !strings.HasPrefix(s, "## "+Title+"\n") {
		t.Errorf("section does not start with its heading:\n%.200s", s)
	}
	for _, dbg := range []string{debuggers.GDB, debuggers.Delve} {
		var at, wrote, changed []string
		for _, th := range []int{1, 8, 64} {
			at = append(at, trim(float64(th)))
			wrote = append(wrote, trim(metric(t, rs, dbg, th, debuggers.ActionMove, debuggers.MetricDRWrites)))
			changed = append(changed, trim(metric(t, rs, dbg, th, debuggers.ActionMove, debuggers.PolicyMetric("changed"))))
		}
		detail := "At 64 threads a `move` is " + trim(metric(t, rs, dbg, 64, debuggers.ActionMove, debuggers.MetricPtrace)) + " ptrace requests (" +
			trim(metric(t, rs, dbg, 64, debuggers.ActionMove, debuggers.PtraceMetric("pokeuser"))) + " pokeuser"
		if dbg == debuggers.Delve {
			detail = "At 64 threads a `move` is " + trim(metric(t, rs, dbg, 64, debuggers.ActionMove, debuggers.MetricPtrace)) + " ptrace requests (" +
				trim(metric(t, rs, dbg, 64, debuggers.ActionMove, debuggers.PtraceMetric("peekuser"))) + " peekuser"
		}
		if !strings.Contains(s, detail) {
			t.Errorf("%s: no breakdown of a move starting %q", dbg, detail)
		}
		want := "per `move` at " + list(at) + " threads: " + list(wrote) + " debug-register writes; write-changed would make " + list(changed)
		if !strings.Contains(s, want) {
			t.Errorf("%s: headline lacks %q", dbg, want)
		}
		for _, th := range []int{1, 8, 64} {
			for _, a := range debuggers.Actions {
				// The row's leading cells: threads (and the Go target's
				// total), action, ptrace/op and DR writes/op.
				ptrace := trim(metric(t, rs, dbg, th, a, debuggers.MetricPtrace))
				writes := trim(metric(t, rs, dbg, th, a, debuggers.MetricDRWrites))
				found := false
				for _, line := range strings.Split(s, "\n") {
					cells := strings.Split(line, " | ")
					if len(cells) > 4 && strings.HasPrefix(cells[0], "| "+trim(float64(th))) && cells[1] == a &&
						strings.HasPrefix(cells[2], ptrace) && strings.HasPrefix(cells[3], writes) {
						found = true
					}
				}
				if !found {
					t.Errorf("no row for %s, %d threads, %s with %s ptrace and %s writes", dbg, th, a, ptrace, writes)
				}
			}
		}
	}
	if !strings.Contains(s, "### GDB") && !strings.Contains(s, "### GNU gdb") {
		t.Error("no GDB table")
	}
	if !strings.Contains(s, "### Delve") {
		t.Error("no Delve table")
	}
	if !strings.Contains(s, "rr") || !strings.Contains(s, "performance counters") {
		t.Error("the section does not say why rr did not run")
	}
	// GDB's hits write on every thread in this run: the section says why.
	if !strings.Contains(s, "always-inserted") {
		t.Error("no note on GDB's writes at a hit")
	}
	if empty := Section(nil, nil); !strings.Contains(empty, "No debuggers results") {
		t.Errorf("section of an empty run:\n%s", empty)
	}
}

// TestPlot renders the chart in both formats and saves it.
func TestPlot(t *testing.T) {
	rs, _ := loadRun(t)
	png, err := Plot(rs, "png")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Error("png output is not a PNG")
	}
	svg, err := Plot(rs, "svg")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "move", "write-changed"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("svg lacks %q", want)
		}
	}
	dir := t.TempDir()
	path, err := SavePlot(rs, dir, "svg")
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, PlotName+".svg") {
		t.Errorf("saved to %s", path)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files in the plot directory, want the chart alone", len(ents))
	}
	if _, err := Plot(nil, "png"); err == nil {
		t.Error("a chart of no results")
	}
}

// TestMedianInterval checks the order statistics the tables print.
func TestMedianInterval(t *testing.T) {
	five := medianInterval([]float64{5, 1, 4, 2, 3})
	if five.med != 3 || five.lo != 1 || five.hi != 5 || math.Abs(five.coverage-0.9375) > 1e-9 {
		t.Errorf("five values: %+v; want 3 in [1, 5] covering 93.75%%", five)
	}
	ten := medianInterval([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	if ten.med != 5.5 || ten.lo != 2 || ten.hi != 9 || ten.coverage < 0.95 {
		t.Errorf("ten values: %+v; want 5.5 in [2, 9] (the 2nd and 9th, 97.9%%)", ten)
	}
	if medianInterval(nil).ok {
		t.Error("an interval of nothing")
	}
}

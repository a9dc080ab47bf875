package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"bpbench/bench"
	"bpbench/runfile"
)

// reportWriter accumulates the Markdown report. Every number it prints
// comes from the run; a section whose data is absent says so.
type reportWriter struct {
	strings.Builder
	dir string
	run *runfile.Run
	all []*runfile.Case
}

func (w *reportWriter) p(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

// plotLink links a chart if it was drawn into DIR/plots.
func (w *reportWriter) plotLink(stem, alt string) {
	rel := filepath.Join(runfile.PlotsDir, stem+".png")
	if _, err := os.Stat(filepath.Join(w.dir, rel)); err == nil {
		w.p("\n![%s](%s)", alt, filepath.ToSlash(rel))
	}
}

func (w *reportWriter) absent(what string) {
	w.p("_No %s results in this run; section omitted._", what)
}

// Build renders the report for run, whose plots are under dir/plots.
func Build(run *runfile.Run, dir string) string {
	w := &reportWriter{dir: dir, run: run, all: runfile.Summarize(run)}
	m := run.Machine
	w.p("# bpbench report\n")
	w.p("| | |\n|---|---|")
	slots := "unknown"
	if m.Slots > 0 {
		slots = strconv.Itoa(m.Slots)
	}
	for _, kv := range [][2]string{
		{"host", m.Host}, {"cpu", m.CPUModel}, {"cpus / GOMAXPROCS", fmt.Sprintf("%d / %d", m.NumCPU, m.GOMAXPROCS)},
		{"kernel", m.Kernel}, {"goos/goarch", m.GOOS + "/" + m.GOARCH}, {"go", m.GoVersion},
		{"breakpoint slots per thread", slots}, {"tracer pinned to CPU", strconv.Itoa(m.PinnedCPU)},
		{"commit", commitLine(m)}, {"suite", run.Mode},
		{"started", run.Started.Format(time.RFC3339)}, {"duration", run.Duration.Round(time.Millisecond).String()},
	} {
		w.p("| %s | %s |", kv[0], kv[1])
	}
	w.p("")
	w.p("Figures are medians with their 95%% interval in brackets, over the runs of a case (or over batches within one run). " +
		"Fewer than 6 values cannot reach 95%%: such an interval is printed as [min–max of N runs, coverage]. " +
		"A comparison is stated only where the two intervals do not overlap; otherwise the report says it is not resolved and about how many runs would resolve it.\n")
	w.sectionUpdate()
	w.sectionRace()
	w.sectionScaling()
	w.sectionTasks()
	w.sectionKernel()
	w.sectionRegisters()
	w.sectionExclusion()
	w.sectionThreads()
	w.sectionSwitch()
	w.sectionConformance()
	w.sectionNoise()
	if len(run.Skipped) > 0 {
		w.p("\n## Skipped\n")
		for _, s := range run.Skipped {
			w.p("- `%s`: %s", s.Name, s.Reason)
		}
	}
	if len(run.Failed) > 0 {
		w.p("\n## Failed\n")
		for _, f := range run.Failed {
			w.p("- `%s`: %s", f.Name, f.Error)
		}
	}
	return w.String()
}

// commitLine is the run's commit and whether the tree was dirty.
func commitLine(m bench.Machine) string {
	switch {
	case m.Commit == "":
		return "unknown (not built from a git checkout)"
	case m.Dirty:
		return m.Commit + " (dirty tree: uncommitted changes were measured)"
	}
	return m.Commit + " (clean tree)"
}

// --- intervals and verdicts ---

// list prints at most max lines and says how many it left out.
func (w *reportWriter) list(lines []string, max int) {
	for i, l := range lines {
		if i == max {
			w.p("- … and %d more.", len(lines)-max)
			break
		}
		w.p("%s", l)
	}
}

// --- shared lookups ---

// find returns the case of family fam whose name parameters include all
// of want, preferring the first.
func (w *reportWriter) find(fam string, want map[string]string) *runfile.Case {
	for _, c := range runfile.Family(w.all, fam) {
		if runfile.HasParams(c, want) {
			return c
		}
	}
	return nil
}

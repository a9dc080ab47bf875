package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// reportWriter accumulates the detail of the report and the verdict rows
// its sections contribute. Every number it prints comes from the run; a
// section whose data is absent says so.
type reportWriter struct {
	strings.Builder
	dir string
	run *runfile.Run
	all []*runfile.Case
	// std is the run's standard interval, named once in the header.
	std      ivStyle
	verdicts []verdict
	// pending is the header of the current section until its first
	// line; missing lists the sections without data.
	pending string
	missing []string
	// broken maps a strategy that disagreed with the kernel (a failed
	// Conform/strategy=NAME case) to its failure.
	broken map[string]string
	// resolvedNote, when set, is what the answers table says "resolved"
	// means (a report whose figures are not two intervals compared).
	resolvedNote string
}

// p prints a line, after the header of the section when it is the
// section's first.
func (w *reportWriter) p(format string, args ...any) {
	if w.pending != "" {
		w.WriteString(w.pending)
		w.pending = ""
	}
	fmt.Fprintf(w, format+"\n", args...)
}

// gap ends a paragraph with one blank line, however many paragraphs
// end at once.
func (w *reportWriter) gap() {
	if w.pending == "" && w.Len() > 0 && !strings.HasSuffix(w.String(), "\n\n") {
		w.WriteString("\n")
	}
}

// section starts a section titled title; its header is printed with its
// first line, so a section without data prints nothing.
func (w *reportWriter) section(title string) { w.pending = "## " + title + "\n" }

// plotLink links a chart if it was drawn into DIR/plots; a section's
// charts follow one another without blank lines.
func (w *reportWriter) plotLink(stem, alt string) {
	rel := filepath.Join(runfile.PlotsDir, stem+".png")
	if _, err := os.Stat(filepath.Join(w.dir, rel)); err == nil {
		// A section's charts form one paragraph, a line each.
		if s := w.String(); !strings.HasSuffix(s, ".png)\n") {
			w.gap()
		}
		w.p("![%s](%s)", alt, filepath.ToSlash(rel))
	}
}

// open starts the section titled title on the cases of family fam, and
// returns them; without any it records the family as not measured and
// returns nil, and the section prints nothing.
func (w *reportWriter) open(title, fam string) []*runfile.Case { return w.openAs(title, fam, fam) }

// openAs is open for a section that names what it lacks otherwise than
// by its family.
func (w *reportWriter) openAs(title, fam, missing string) []*runfile.Case {
	w.section(title)
	cases := runfile.Family(w.all, fam)
	if len(cases) == 0 {
		w.absent(missing)
		return nil
	}
	return cases
}

// absent drops the current section, which has no data, and records it
// for the one line that lists what the run did not measure.
func (w *reportWriter) absent(what string) {
	w.pending = ""
	w.missing = append(w.missing, what)
}

// strat names a strategy, marked when it broke the admission rules so
// that none of its figures reads as comparable with the others'.
func (w *reportWriter) strat(name string) string {
	if _, ok := w.broken[name]; ok {
		return name + " †"
	}
	return name
}

// sections are the report's detail, in order; each writes its section
// and adds its verdict rows.
var sections = []func(*reportWriter){
	(*reportWriter).sectionUpdate,
	onFamily("How often does re-registering lose the slot to a competitor?\n", "Race", (*reportWriter).sectionRace),
	onFamily("Which allocation strategy scales with concurrent reservers?\n", "Scaling", (*reportWriter).sectionScaling),
	onFamily("Does reservation cost grow with the number of live tasks, and with CPUs?\n", "Tasks", (*reportWriter).sectionTasks),
	onFamily("Should updates write only the changed debug registers?\n", "Registers", (*reportWriter).sectionRegisters),
	onFamily("What does exclusive-breakpoint support cost?\n", "Exclusion", (*reportWriter).sectionExclusion),
	(*reportWriter).sectionThreads,
	(*reportWriter).sectionSwitch,
	(*reportWriter).sectionDebuggers,
	(*reportWriter).sectionConformance,
	(*reportWriter).sectionKernel,
	onFamily("Does this kernel's reservation cost grow with live task breakpoints?\n", "KernelTasks", (*reportWriter).sectionKernelTasks),
	(*reportWriter).sectionNoise,
}

// onFamily is the section titled title on the cases of family fam: write
// writes it from them, or, without any, the family is recorded as not
// measured and the section prints nothing.
func onFamily(title, fam string, write func(*reportWriter, []*runfile.Case)) func(*reportWriter) {
	return func(w *reportWriter) {
		if cases := w.open(title, fam); cases != nil {
			write(w, cases)
		}
	}
}

// conformPrefix names the failed case of a strategy that disagreed with
// the kernel (cli's divergenceFailures).
const conformPrefix = "Conform/strategy="

// Build renders the report for run, whose plots are under dir/plots:
// failures first, then the answers, the machine, and the detail.
func Build(run *runfile.Run, dir string) string {
	w := &reportWriter{dir: dir, run: run, all: runfile.Summarize(run), broken: map[string]string{}}
	var nsIvs []stats.Interval
	for _, c := range w.all {
		nsIvs = append(nsIvs, runfile.IvOf(c, bench.UnitNsPerOp))
	}
	w.std = standardStyle(nsIvs)
	for _, f := range run.Failed {
		if st, ok := strings.CutPrefix(f.Name, conformPrefix); ok {
			w.broken[st] = f.Error
		}
	}
	for _, s := range sections {
		s(w)
	}
	if len(w.missing) > 0 {
		w.p("_Not in this run: %s._\n", strings.Join(w.missing, ", "))
	}
	if len(run.Skipped) > 0 {
		w.section("Skipped\n")
		for _, s := range run.Skipped {
			w.p("- `%s`: %s", s.Name, s.Reason)
		}
	}
	var out strings.Builder
	out.WriteString("# bpbench report\n\n")
	writeFailures(&out, run)
	w.writeVerdicts(&out)
	writeMachine(&out, run, w.std)
	out.WriteString(w.String())
	return out.String()
}

// writeFailures says at the top which cases failed, and which strategies
// broke the admission rules (their figures stay, marked †).
func writeFailures(out *strings.Builder, run *runfile.Run) {
	if len(run.Failed) == 0 {
		return
	}
	fmt.Fprintf(out, "**%s failed.**\n\n", present.Plural(len(run.Failed), "case"))
	broke := false
	for _, f := range run.Failed {
		if st, ok := strings.CutPrefix(f.Name, conformPrefix); ok {
			broke = true
			fmt.Fprintf(out, "- Strategy **%s broke the admission rules**: %s.\n", st, strings.TrimSuffix(f.Error, "."))
			continue
		}
		fmt.Fprintf(out, "- `%s`: %s\n", f.Name, f.Error)
	}
	if broke {
		fmt.Fprintf(out, "\nFigures of a strategy that broke the rules are marked † below: it admits or refuses what the kernel does not, so they do not compare with the others'.\n")
	}
	fmt.Fprintln(out)
}

// writeMachine prints where and how the run happened, and what its
// brackets mean.
func writeMachine(out *strings.Builder, run *runfile.Run, std ivStyle) {
	m := run.Machine
	fmt.Fprintf(out, "## Machine\n\n| | |\n|---|---|\n")
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
		fmt.Fprintf(out, "| %s | %s |\n", kv[0], kv[1])
	}
	fmt.Fprintf(out, "\n%s A figure from another source says so in its brackets (batches, Wilson's interval of a count, or a single value). "+
		"A comparison is stated only where the two intervals do not overlap; otherwise the report says it is not resolved and about how many runs would resolve it.\n\n", std.sentence())
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

// backendsOf lists the backends cases ran on, in presentation order.
func backendsOf(cases []*runfile.Case) []string {
	set := map[string]bool{}
	for _, c := range cases {
		set[bench.NameParams(c.Name)[bench.ParamBackend]] = true
	}
	return present.OrderedBackends(set)
}

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

func mergeParams(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func atoiOr(s string, d int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return d
}

package report

import (
	"fmt"
	"slices"
	"strings"

	"bpbench/conform"
	"bpbench/internal/present"
	"bpbench/runfile"
)

// The cross-kernel report: what every cell of a `bpbench kernels` run
// says, side by side. Divergences come first (each is a finding), then
// the answers, the cells, the architectures' pools, and the cost against
// live task breakpoints next to the model's curves (kernels_cost.go).

// kernelsResolved is what "resolved" means in the cross-kernel answers.
const kernelsResolved = "Resolved: exact where every op was compared or counted; for a cost, the ratio's 95% interval lies wholly on one side of the thresholds (above 1.5: the pre-2022 walk; at most 1.3: flat)."

// BuildKernels renders the cross-kernel report.md of m, whose plots are
// under dir/plots.
func BuildKernels(m *runfile.Matrix, dir string) string {
	w := &reportWriter{dir: dir, std: ivStyle{from: runfile.FromSubSamples}, resolvedNote: kernelsResolved}
	labels, cpus, at := m.Grid()
	g := kernelGrid{m: m, labels: labels, cpus: cpus, at: at}
	w.kernelsCells(g)
	w.kernelsArches(g)
	w.kernelsSummary(g)
	w.kernelsVerdicts(g)
	w.kernelsTasks(g)
	w.kernelsSeries(g)

	var out strings.Builder
	fmt.Fprintf(&out, "# Real kernels: %s\n\n", m.Started.Format("2006-01-02 15:04 UTC"))
	arches := m.Arches()
	if len(arches) == 0 {
		arches = []string{m.Arch}
	}
	fmt.Fprintf(&out, "%s (%s), %s, in %v. %s", present.Plural(len(m.Cells), "cell"), strings.Join(arches, ", "), jobText(m.Job), m.Duration.Round(1e9), accelText(m))
	if slices.Contains(cellAccels(m), "tcg") {
		out.WriteString(" Under TCG every time is emulated, about 15× native, and work that crosses CPUs costs emulation time too: compare shapes within one kernel (ratios to its own held=64), and kernels with each other at the same vCPU count; never absolute times with the host cell.")
		if len(arches) > 1 {
			out.WriteString(" Each architecture is emulated at its own speed: set an arm64 guest's times beside an x86 guest's only as shapes, never as times.")
		}
	}
	out.WriteString(" A cost is the p50 of its case's interleaved sub-samples, and brackets are its 95% interval over them.\n\n")
	w.conformanceFirst(&out, g)
	w.writeVerdicts(&out)
	out.WriteString(w.String())
	return out.String()
}

// kernelGrid is the matrix's cells by kernel label and vCPU count.
type kernelGrid struct {
	m      *runfile.Matrix
	labels []string
	cpus   []int
	at     map[string]map[int]*runfile.Cell
}

// each calls f on every cell, by kernel then vCPU count.
func (g kernelGrid) each(f func(c *runfile.Cell)) {
	for _, l := range g.labels {
		for _, n := range g.cpus {
			if c := g.at[l][n]; c != nil {
				f(c)
			}
		}
	}
}

func jobText(j runfile.KernelJob) string {
	s := "conform"
	if len(j.Experiments) > 0 {
		s += " + " + strings.Join(j.Experiments, ", ")
	}
	if j.Full {
		s += " (full)"
	}
	if j.Count > 1 {
		s += fmt.Sprintf(", count %d", j.Count)
	}
	return s
}

// cellAccels returns the accelerators of the VM cells (and the matrix's),
// without the host cell's "none".
func cellAccels(m *runfile.Matrix) []string {
	var out []string
	for _, c := range m.Cells {
		if c.Accel != "" && c.Accel != "none" && !slices.Contains(out, c.Accel) {
			out = append(out, c.Accel)
		}
	}
	if m.Accel != "" && m.Accel != "none" && !slices.Contains(out, m.Accel) {
		out = append(out, m.Accel)
	}
	return out
}

// accelText says which accelerator each architecture's VM cells ran
// under, and why.
func accelText(m *runfile.Matrix) string {
	var parts []string
	seen := map[string]bool{}
	for _, c := range m.Cells {
		if c.Accel == "" || c.Accel == "none" || seen[c.Arch+c.Accel] {
			continue
		}
		seen[c.Arch+c.Accel] = true
		parts = append(parts, fmt.Sprintf("%s guests under **%s** (%s)", c.Arch, strings.ToUpper(c.Accel), c.AccelWhy))
	}
	if len(parts) == 0 {
		if m.Accel == "" {
			return "No VM."
		}
		return fmt.Sprintf("Accelerator: **%s** (%s).", strings.ToUpper(m.Accel), m.AccelWhy)
	}
	return "Accelerator: " + strings.Join(parts, "; ") + "."
}

// conformanceFirst writes, before the answers, whatever disagreed or
// failed: a divergence is a finding, a failed cell a missing figure.
func (w *reportWriter) conformanceFirst(out *strings.Builder, g kernelGrid) {
	var div, failed []string
	ran := 0
	g.each(func(c *runfile.Cell) {
		if !c.OK() {
			failed = append(failed, fmt.Sprintf("- **%s** failed: %s", c.Name, strings.ReplaceAll(c.Error, "\n", "\n  ")))
			return
		}
		ran++
		if r := c.Run.Conformance; r != nil && !r.Agrees() {
			div = append(div, fmt.Sprintf("- **%s** (%s, %s): %s", c.Name, c.Arch, c.Release, r.Summary()))
		}
	})
	fmt.Fprintf(out, "## Conformance\n\n")
	switch {
	case len(div) > 0:
		fmt.Fprintf(out, "**The model diverged from the kernel** (a finding; each divergence is in the cell's report):\n\n%s\n\n", strings.Join(div, "\n"))
	case ran > 0:
		fmt.Fprintf(out, "Zero divergences: the model, configured with the pools each kernel was probed to have, agreed with every kernel that ran, op by op.\n\n")
	}
	if len(failed) > 0 {
		fmt.Fprintf(out, "Cells that produced no results:\n\n%s\n\n", strings.Join(failed, "\n"))
	}
}

// kernelsCells lists every cell: where it ran, what conform found, and
// what its boot and job cost.
func (w *reportWriter) kernelsCells(g kernelGrid) {
	w.section("Cells\n")
	w.p("| cell | arch | kernel | vCPUs | conform | pools a thread holds | boot | job | wall |\n|---|---|---|---|---|---|---|---|---|")
	g.each(func(c *runfile.Cell) {
		conf, pools, boot, job := "FAILED", "", "", ""
		if c.OK() && c.Run.Conformance != nil {
			r := c.Run.Conformance
			conf = fmt.Sprintf("%s, %d opens", map[bool]string{true: "agreed", false: "DIVERGED"}[r.Agrees()], r.Opens)
			if r.Slots > 0 {
				pools = r.Pools().String()
			}
		}
		if c.Guest != nil {
			boot = fmt.Sprintf("%.1f s", c.Guest.UptimeStart)
			job = fmt.Sprintf("%.1f s", c.Guest.UptimeEnd-c.Guest.UptimeStart)
		}
		w.p("| [%s](%s/report.md) | %s | %s %s | %d | %s | %s | %s | %s | %.1f s |", c.Name, c.Name, c.Arch, c.Kernel, c.Release, c.CPUs, conf, pools, boot, job, c.Wall.Seconds())
	})
	w.p("\nboot: guest uptime when init started; job: conform and the experiments inside; wall: QEMU's start to its exit, boot to results and power-off (the host cell: its run).")
	w.gap()
}

// archRow is one architecture's conformance and pools, summed over its
// cells.
type archRow struct {
	arch                       string
	cells, opens, inst, instNo int
	diverged                   []string
	pools                      []string // distinct, with the kernels that have them
	skipped                    []string // facts that do not apply, with why
}

// kernelsArches puts the architectures side by side: what a thread may
// hold on each (probed, and the model configured from it), and whether
// the model agreed with every kernel of it.
func (w *reportWriter) kernelsArches(g kernelGrid) {
	var rows []*archRow
	byArch := map[string]*archRow{}
	g.each(func(c *runfile.Cell) {
		if !c.OK() || c.Run.Conformance == nil || c.Run.Conformance.Slots == 0 {
			return
		}
		r := c.Run.Conformance
		a := byArch[c.Arch]
		if a == nil {
			a = &archRow{arch: c.Arch}
			byArch[c.Arch] = a
			rows = append(rows, a)
		}
		a.cells++
		a.opens += r.Opens
		a.inst += r.Inst
		a.instNo += r.InstRefused
		for _, s := range r.Strategies {
			if s.Diverged > 0 {
				a.diverged = append(a.diverged, fmt.Sprintf("%s on %s (%d)", s.Strategy, c.Name, s.Diverged))
			}
		}
		p := r.Pools().String()
		if !slices.ContainsFunc(a.pools, func(s string) bool { return strings.HasPrefix(s, p) }) {
			a.pools = append(a.pools, p)
		}
		for _, f := range r.Facts {
			if f.Skipped != "" && !slices.Contains(a.skipped, f.Name) {
				a.skipped = append(a.skipped, f.Name)
			}
		}
	})
	w.section("Architectures side by side: pools and conformance\n")
	if len(rows) == 0 {
		w.absent("the pools a thread holds (no cell ran conform)")
		return
	}
	w.p("What one thread may hold, counted on each kernel with perf_event_open until ENOSPC (instruction breakpoints, data watchpoints, and whether holding a full pool of one kind refuses the other), and the lockstep check with the model configured from those counts (`alloc.Config{Slots: data, InstSlots: instruction}`, 0 for one shared pool), not from an architecture's constants.\n")
	w.p("| arch | cells | pools a thread holds | model configured | opens checked | instruction opens (refused) | divergences | facts not probed here |\n|---|---|---|---|---|---|---|---|")
	var answer, figure []string
	for _, a := range rows {
		cfg := "–"
		if r := firstConformance(g, a.arch); r != nil {
			cfg = fmt.Sprintf("Slots %d, InstSlots %d", r.Slots, r.InstSlots)
		}
		div := "0"
		if len(a.diverged) > 0 {
			div = "**" + strings.Join(a.diverged, ", ") + "**"
		}
		w.p("| %s | %d | %s | %s | %d | %d (%d) | %s | %s |", a.arch, a.cells, strings.Join(a.pools, "; "), cfg, a.opens, a.inst, a.instNo, div, strings.Join(a.skipped, ", "))
		answer = append(answer, a.arch+": "+strings.Join(a.pools, " or "))
		figure = append(figure, fmt.Sprintf("%s: %s, %d opens", a.arch, present.Plural(a.cells, "cell"), a.opens))
	}
	for _, a := range rows {
		if len(a.skipped) > 0 {
			if r := firstConformance(g, a.arch); r != nil {
				for _, f := range r.Facts {
					if f.Skipped != "" {
						w.p("\nNot probed on %s: %s.", a.arch, f.Skipped)
						break
					}
				}
			}
		}
	}
	w.verdict(verdict{
		question: "How many breakpoints may a thread hold on each architecture, and do instruction and data breakpoints share them?",
		answer:   strings.Join(answer, "; "),
		figure:   strings.Join(figure, "; "),
		resolved: "exact: counted to ENOSPC on every kernel",
	})
	var bad []string
	for _, a := range rows {
		bad = append(bad, a.diverged...)
	}
	v := verdict{
		question: "Does the model, configured with each kernel's probed pools, admit and refuse what the kernel does?",
		answer:   "yes, every strategy on every kernel, op for op",
		figure:   strings.Join(figure, "; "),
		resolved: "exact: every op compared",
	}
	if len(bad) > 0 {
		v.answer = "no: " + strings.Join(bad, ", ") + " diverged"
	}
	w.verdict(v)
	w.gap()
}

// firstConformance is the conformance report of the first cell of arch
// that has one.
func firstConformance(g kernelGrid, arch string) *conform.Report {
	var out *conform.Report
	g.each(func(c *runfile.Cell) {
		if out == nil && c.Arch == arch && c.OK() && c.Run.Conformance != nil && c.Run.Conformance.Slots > 0 {
			out = c.Run.Conformance
		}
	})
	return out
}

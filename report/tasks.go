package report

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"bpbench/charts"
	"bpbench/internal/present"
	"bpbench/runfile"
)

// cpusLabel says which CPU count a Tasks case ran at: the host's or a
// simulated one.
func cpusLabel(cpus string, host int) string {
	switch {
	case cpus == "":
		return "at the host's CPU count"
	case cpus == strconv.Itoa(host):
		return fmt.Sprintf("at %s CPUs (the host's count)", cpus)
	}
	return fmt.Sprintf("at %s simulated CPUs", cpus)
}

func (w *reportWriter) sectionTasks() {
	w.p("## Does reservation cost grow with the number of live tasks, and with CPUs?\n")
	cases := runfile.Family(w.all, "Tasks")
	if len(cases) == 0 {
		w.absent("Tasks")
		return
	}
	for _, cpus := range runfile.ParamValues(cases, "cpus") {
		// Compare at the largest task count that legacy and others share.
		byTasks := map[int]map[string]*runfile.Case{}
		for _, c := range cases {
			p := runfile.NameParams(c.Name)
			n, err := strconv.Atoi(p["tasks"])
			if err != nil || p["cpus"] != cpus {
				continue
			}
			if byTasks[n] == nil {
				byTasks[n] = map[string]*runfile.Case{}
			}
			byTasks[n][p["strategy"]] = c
		}
		var counts []int
		for n := range byTasks {
			counts = append(counts, n)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(counts)))
		where := cpusLabel(cpus, w.run.Machine.NumCPU)
		if len(runfile.ParamValues(cases, "cpus")) > 1 {
			w.p("**%s%s:**\n", strings.ToUpper(where[:1]), where[1:])
		}
		said := false
		for _, n := range counts {
			leg := byTasks[n]["legacy"]
			if leg == nil || len(byTasks[n]) < 2 {
				continue
			}
			li := runfile.IvOf(leg, "ns/op")
			for _, st := range slices.Sorted(maps.Keys(byTasks[n])) {
				if st == "legacy" {
					continue
				}
				oi := runfile.IvOf(byTasks[n][st], "ns/op")
				v := resolveNote(li, oi)
				if li.Separated(oi) {
					v = present.Ratio(li.Median, oi.Median) + " slower"
				}
				w.p("- %s, at %d tasks legacy costs %s per reservation against %s for %s: %s.", where, n, fmtIv(li, nsUnit), fmtIv(oi, nsUnit), st, v)
			}
			said = true
			break
		}
		if !said {
			w.p("- _No task count with both the legacy strategy and another one; no comparison._")
		}
		if len(counts) > 1 {
			lo, hi := counts[len(counts)-1], counts[0]
			for _, st := range slices.Sorted(maps.Keys(byTasks[hi])) {
				a, b := byTasks[lo][st], byTasks[hi][st]
				if a == nil || b == nil {
					continue
				}
				ai, bi := runfile.IvOf(a, "ns/op"), runfile.IvOf(b, "ns/op")
				v := resolveNote(bi, ai)
				if ai.Separated(bi) {
					v = present.Ratio(bi.Median, ai.Median)
					if bi.Median < ai.Median {
						v += "; cheaper with more live tasks: **unexplained**"
					}
				}
				w.p("- %s: %s with %d live tasks, %s with %d (%s).", st, fmtIv(ai, nsUnit), lo, fmtIv(bi, nsUnit), hi, v)
			}
		}
		w.p("")
	}
	for _, cpus := range runfile.ParamValues(cases, "cpus") {
		w.plotLink(charts.TasksStem(cpus), "cost vs live tasks"+strings.TrimSuffix(", cpus="+cpus, ", cpus="))
	}
	w.plotLink("tasks-cpus", "cost vs CPUs")
	w.p("")
}

package report

import (
	"fmt"
	"math"
	"sort"
	"time"

	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// wideSpread is the relative interval width above which a case's spread
// counts as wide.
const wideSpread = 0.25

// spread is an interval's width relative to its median.
func spread(iv stats.Interval) float64 {
	if iv.N < 2 || iv.Median == 0 {
		return 0
	}
	return (iv.Hi - iv.Lo) / math.Abs(iv.Median)
}

// sectionNoise lists the cases measured under load (bench.Result.Noise)
// and the cases whose run-to-run spread is wide, so that a reader knows
// which figures to distrust.
func (w *reportWriter) sectionNoise() {
	w.p("## Which figures were measured under noise?\n")
	type loaded struct {
		name       string
		reps, of   int
		load, stel float64
		others     float64
		wait       time.Duration
		pinLost    int
	}
	byName := map[string]*loaded{}
	var order []string
	recorded := false
	for _, r := range w.run.Results {
		l := byName[r.Name]
		if l == nil {
			l = &loaded{name: r.Name}
			byName[r.Name] = l
			order = append(order, r.Name)
		}
		l.of++
		if r.Noise == nil {
			continue
		}
		recorded = true
		if r.Noise.Loaded() {
			l.reps++
			l.load = math.Max(l.load, r.Noise.LoadAvg1)
			l.stel = math.Max(l.stel, r.Noise.Steal)
			l.others = math.Max(l.others, r.Noise.Others)
			l.wait += r.Noise.LockWait
			l.pinLost += r.Noise.PinLost
		}
	}
	if !recorded {
		w.p("_This run recorded no machine noise (results written before bench.Result.Noise); load is unknown._")
	} else {
		var lines []string
		for _, n := range order {
			l := byName[n]
			if l.reps == 0 {
				continue
			}
			s := fmt.Sprintf("- `%s`: %d of %d runs under load (other processes up to %s of the CPUs, load average up to %s, steal up to %s",
				l.name, l.reps, l.of, pct(l.others, 1), present.TrimFloat(l.load), pct(l.stel, 1))
			if l.wait > 0 {
				s += ", waited " + l.wait.Round(time.Microsecond).String() + " for the debug-register lock"
			}
			if l.pinLost > 0 {
				s += fmt.Sprintf(", %d pinned threads found off their CPU", l.pinLost)
			}
			lines = append(lines, s+")")
		}
		if len(lines) == 0 {
			w.p("No case ran under load (other processes above 10%% of the CPUs, steal above 2%%, a wait for the debug-register lock, or a pinned thread off its CPU).")
		} else {
			w.p("Cases measured under load (other processes above 10%% of the CPUs, steal above 2%%, a wait for the debug-register lock, or a pinned thread off its CPU):\n")
			w.list(lines, 30)
		}
	}
	type wide struct {
		c  *runfile.Case
		iv stats.Interval
	}
	var ws []wide
	for _, c := range w.all {
		iv := runfile.IvOf(c, "ns/op")
		if spread(iv) > wideSpread {
			ws = append(ws, wide{c, iv})
		}
	}
	sort.SliceStable(ws, func(i, j int) bool { return spread(ws[i].iv) > spread(ws[j].iv) })
	if len(ws) == 0 {
		w.p("\nNo case's ns/op interval is wider than %s of its median.", pct(wideSpread, 1))
	} else {
		w.p("\nCases whose ns/op interval is wider than %s of its median (widest first):\n", pct(wideSpread, 1))
		var lines []string
		for _, x := range ws {
			lines = append(lines, fmt.Sprintf("- `%s`: %s (width %s of the median)", x.c.Name, fmtIv(x.iv, nsUnit), pct(spread(x.iv), 1)))
		}
		w.list(lines, 20)
	}
	w.p("")
}

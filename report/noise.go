package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// wideSpread is the relative interval width above which a case's spread
// counts as wide.
const wideSpread = 0.25

// Load thresholds: a case shared the machine when other processes took
// more than othersLoaded of all CPUs' time or the hypervisor stole more
// than stealLoaded (harness.Noise.Loaded), beyond what the clock-tick
// counters can tell.
const (
	othersLoaded = 0.10
	stealLoaded  = 0.02
	// tickNs is a tick of /proc/stat's counters (USER_HZ = 100 on Linux).
	tickNs = 10e6
)

// spread is an interval's width relative to its median.
func spread(iv stats.Interval) float64 {
	if iv.N < 2 || iv.Median == 0 {
		return 0
	}
	return (iv.Hi - iv.Lo) / math.Abs(iv.Median)
}

// tickMargin is the fraction of a case's CPU time that the clock-tick
// counters cannot resolve: /proc/stat charges each CPU's time a whole
// 10 ms tick to whatever runs when the tick fires, so over a case each
// CPU's share is off by up to a tick at either end, and the process's
// own time is truncated to a tick. A case of 40 ms on 2 CPUs spans 8
// ticks, and one stray tick is 12.5% of them: other processes' share
// moves in steps of 12.5%, 25%, 37.5%. ticks is a lower bound on the
// ticks the case spanned, from the time its operations took (the case
// ran at least that long); 0 when unknown.
func tickMargin(r bench.Result, ncpu int) (margin float64, ticks float64) {
	if ncpu < 1 {
		ncpu = 1
	}
	ticks = float64(r.Iterations) * r.NsPerOp / tickNs * float64(ncpu)
	if ticks <= 0 {
		return 1, 0
	}
	return float64(ncpu+1) / ticks, ticks
}

// loadOf says whether a result was measured under load, and whether the
// tick counters could tell at all.
func loadOf(r bench.Result, ncpu int) (loaded, known bool) {
	n := r.Noise
	if n == nil {
		return false, false
	}
	if n.LockWait > 0 || n.PinLost > 0 {
		return true, true
	}
	m, _ := tickMargin(r, ncpu)
	if othersLoaded+m >= 1 {
		return false, false
	}
	return n.Others > othersLoaded+m || n.Steal > stealLoaded+m, true
}

// sectionNoise says which figures were measured under load
// (bench.Result.Noise) and which cases spread widely from run to run, so
// that a reader knows which figures to distrust.
func (w *reportWriter) sectionNoise() {
	w.section("Which figures were measured under noise?\n")
	type fam struct {
		name          string
		loaded, of    int
		unknown       int
		others, steal float64
		wait          time.Duration
		pinLost       int
		cases         map[string]bool
	}
	byFam := map[string]*fam{}
	var order []string
	recorded, loadedRuns, unknownRuns := false, 0, 0
	var maxShort float64
	ncpu := w.run.Machine.NumCPU
	for _, r := range w.run.Results {
		name, _, _ := strings.Cut(r.Name, "/")
		f := byFam[name]
		if f == nil {
			f = &fam{name: name, cases: map[string]bool{}}
			byFam[name] = f
			order = append(order, name)
		}
		f.of++
		if r.Noise == nil {
			continue
		}
		recorded = true
		loaded, known := loadOf(r, ncpu)
		if !known {
			f.unknown++
			unknownRuns++
			_, t := tickMargin(r, ncpu)
			maxShort = math.Max(maxShort, t*tickNs/float64(max(ncpu, 1)))
			continue
		}
		if !loaded {
			continue
		}
		loadedRuns++
		f.loaded++
		f.cases[r.Name] = true
		f.others = math.Max(f.others, r.Noise.Others)
		f.steal = math.Max(f.steal, r.Noise.Steal)
		f.wait += r.Noise.LockWait
		f.pinLost += r.Noise.PinLost
	}
	switch {
	case !recorded:
		w.p("_This run recorded no machine noise; load is unknown._")
	case loadedRuns == 0:
		w.p("No case ran under load that the counters can tell (other processes above %s of the CPUs' time or steal above %s, beyond the counters' 10 ms ticks; a wait for the debug-register lock; a pinned thread off its CPU).", pct(othersLoaded, 1), pct(stealLoaded, 1))
	default:
		w.p("Case runs under load: other processes took more than %s of the CPUs' time or the hypervisor stole more than %s, by more than the counters' 10 ms ticks can blur (a run spanning few ticks needs a larger share to count), or the case waited for the debug-register lock, or a pinned thread was found off its CPU.\n", pct(othersLoaded, 1), pct(stealLoaded, 1))
		w.p("| experiment | runs under load | cases | other processes up to | steal up to | lock wait | pinned threads off their CPU |\n|---|---|---|---|---|---|---|")
		for _, n := range order {
			f := byFam[n]
			if f.loaded == 0 {
				continue
			}
			wait := "0"
			if f.wait > 0 {
				wait = f.wait.Round(time.Millisecond).String()
			}
			w.p("| %s | %d of %d | %d | %s | %s | %s | %d |", f.name, f.loaded, f.of, len(f.cases), pct(f.others, 1), pct(f.steal, 1), wait, f.pinLost)
		}
		w.gap()
	}
	if unknownRuns > 0 {
		w.p("%s too short for the tick counters to tell load from noise (%s or less each); their load is unknown.\n", present.Plural(unknownRuns, "case run"), present.FmtNs(maxShort))
	}
	w.wideCases()
}

// wideCases lists the cases whose ns/op interval is wide.
func (w *reportWriter) wideCases() {
	type wide struct {
		c  *runfile.Case
		iv stats.Interval
	}
	var ws []wide
	for _, c := range w.all {
		iv := runfile.IvOf(c, bench.UnitNsPerOp)
		if spread(iv) > wideSpread {
			ws = append(ws, wide{c, iv})
		}
	}
	sort.SliceStable(ws, func(i, j int) bool { return spread(ws[i].iv) > spread(ws[j].iv) })
	if len(ws) == 0 {
		w.p("No case's ns/op interval is wider than %s of its median.\n", pct(wideSpread, 1))
		return
	}
	w.p("%s whose ns/op interval is wider than %s of its median; the widest:\n", present.Plural(len(ws), "case"), pct(wideSpread, 1))
	var lines []string
	for _, x := range ws {
		lines = append(lines, fmt.Sprintf("- %s: %s (width %s of the median)", w.markName(x.c.Name), w.iv(x.iv, nsUnit), pct(spread(x.iv), 1)))
	}
	w.list(lines, 5)
	w.gap()
}

package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"bpbench/bench"
	"bpbench/bench/harness"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// wideSpread is the relative interval width above which a case's spread
// counts as wide.
const wideSpread = 0.25

// tickNs is a tick of /proc/stat's counters (USER_HZ = 100 on Linux).
const tickNs = 10e6

// spread is an interval's width relative to its median.
func spread(iv stats.Interval) float64 {
	if iv.N < 2 || iv.Median == 0 {
		return 0
	}
	return (iv.Hi - iv.Lo) / math.Abs(iv.Median)
}

// noiseOf is r's Noise as harness.Noise.Loaded judges it. Results
// recorded before Noise carried its Ticks get an estimate: a lower bound
// on the ticks the case spanned, from the time its operations took (the
// case ran at least that long) on ncpu CPUs, which makes Margin an upper
// bound; without one the counters resolve nothing.
func noiseOf(r bench.Result, ncpu int) (harness.Noise, bool) {
	if r.Noise == nil {
		return harness.Noise{}, false
	}
	n := *r.Noise
	if n.Ticks == 0 {
		n.CPUs = max(ncpu, 1)
		n.Ticks = uint64(float64(r.Iterations) * r.NsPerOp / tickNs * float64(n.CPUs))
	}
	return n, true
}

// loadOf says whether a result was measured under load, and whether the
// tick counters could tell at all (harness.Noise.Resolved; a lock wait
// or a lost pin tells regardless).
func loadOf(r bench.Result, ncpu int) (loaded, known bool) {
	n, ok := noiseOf(r, ncpu)
	if !ok {
		return false, false
	}
	if n.LockWait > 0 || n.PinLost > 0 {
		return true, true
	}
	if !n.Resolved() {
		return false, false
	}
	return n.Loaded(), true
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
			n, _ := noiseOf(r, ncpu)
			maxShort = math.Max(maxShort, float64(n.Ticks)*tickNs/float64(max(n.CPUs, 1)))
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
		w.p("No case ran under load that the counters can tell (other processes above %s of the CPUs' time or steal above %s, beyond the counters' 10 ms ticks; a wait for the debug-register lock; a pinned thread off its CPU).", pct(harness.OthersLoaded, 1), pct(harness.StealLoaded, 1))
	default:
		w.p("Case runs under load: other processes took more than %s of the CPUs' time or the hypervisor stole more than %s, by more than the counters' 10 ms ticks can blur (a run spanning few ticks needs a larger share to count), or the case waited for the debug-register lock, or a pinned thread was found off its CPU.\n", pct(harness.OthersLoaded, 1), pct(harness.StealLoaded, 1))
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

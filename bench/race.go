package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"bpbench/bench/harness"
	"bpbench/hwregs"
)

// The race experiment measures the slot-stealing window that motivated
// modify-in-place (commit 44234adcdce3, "Modify breakpoints without
// unregistering them"): a holder fills its task's four slots and changes
// one of its breakpoints over and over, while K competitors keep trying to
// reserve a CPU-bound slot on the holder's CPU at rate R each. Changing by
// modify never gives the slot up; changing by re-register frees it for the
// time between the release and the new reservation, and a competitor that
// reserves in that window makes the holder's reservation fail until the
// competitor lets go.
//
// Besides the model window (window-ns/p50|p99: release to admitted
// reservation, refused attempts included), every backend reports
// unarmed-ns/p50|p99: how long the changing breakpoint is not armed in the
// registers during a change. For re-register it is the whole change, timed
// around Writer.Reregister and any recovery Registers after a steal (sim,
// ptrace), or around the close and the admitted re-open (perf): from just
// before the write that disarms the slot to just after the last write that
// arms the new one, so it holds the window and every register write
// around it (plus the few nanoseconds of argument checks before the
// disarming write). For modify it is 0: the slot stays armed, one address
// write moving it from the old address to the new one (perf's ioctl
// disables and re-enables inside the kernel, on the watched thread itself,
// which runs no user code meanwhile).
//
// The holder's thread is pinned to Options.PinCPU and the competitors'
// threads to the holder's CPU (place=same: time-sliced with the holder)
// or to the other one (place=other: in parallel); their reservations
// target the holder's CPU either way. Each case reports the competitors'
// achieved rate (rate-achieved/s, per competitor: refused attempts per
// second of not holding the slot), the steal rate with its 95% Wilson
// interval (steals/op, steals-lo/op, steals-hi/op) and the steal rate its
// own window and rate predict for competitors arriving independently of
// the holder (steals-predicted/op, see predictSteals; exposure-ns/p50|p99
// is the window it uses). Run by the CLI (n <= 0), a case makes changes
// until its steal interval is narrow or its time budget ends
// (raceBudget), and reports how many (changes); under `go test -bench`
// b.N fixes them.

// Race modes: how the holder changes its breakpoint.
const (
	raceModify     = "modify"
	raceReregister = "reregister"
)

// raceSimHold is how long a model competitor keeps the slot it won. In the
// kernel a CPU-bound competitor holds its slot from the reservation inside
// perf_event_open (hw_breakpoint_event_init) until close destroys the
// event: the rest of the open, installing the event on the CPU, the return
// to user space and the close, a few microseconds of the ~7 µs an open and
// close cost (shared/anchors.md). A competitor that released at once would
// hold for the few nanoseconds between two atomics and almost never be
// caught holding it, which no real competitor does.
const raceSimHold = 2 * time.Microsecond

// raceHolderTask is the model's task id of the holder.
const raceHolderTask = 1

// Competitor placements: where the competitors' threads run, pinned.
// Their reservations always target the holder's CPU (the model's
// simulated CPU opts.PinCPU, or the real CPU the holder is pinned to);
// place moves only the threads that make them. On the holder's CPU they
// are time-sliced with the holder, so an attempt can land in a window only
// when the scheduler preempts the holder inside it; on the other CPU they
// run beside it.
const (
	placeNone  = "none" // no competitor
	placeSame  = "same"
	placeOther = "other"
)

// raceRate is one point of the competitor sweep: attempts per second
// per competitor, 0 for as fast as it can go (only with competitors > 0),
// and where the competitors run.
type raceRate struct {
	competitors int
	rate        float64
	place       string // placeSame or placeOther; placeNone without competitors
}

// competitorCPU returns the CPU the competitors' threads are pinned to
// for the holder's CPU, or -1 without competitors.
func (r raceRate) competitorCPU(holder int) int {
	switch r.place {
	case placeSame:
		return holder
	case placeOther:
		return (holder + 1) % runtime.NumCPU()
	}
	return -1
}

// label is the rate as it appears in names: "0" without competitors, "max"
// for an unlimited competitor, otherwise the rate in attempts per second.
func (r raceRate) label() string {
	switch {
	case r.competitors == 0:
		return "0"
	case r.rate == 0:
		return "max"
	}
	return strconv.FormatFloat(r.rate, 'f', -1, 64)
}

// raceSweep returns the competitor sweep: no competitor, then each rate for
// each competitor count and placement, ending at an unlimited competitor.
func raceSweep(full bool) []raceRate {
	rates, counts := []float64{1e4, 0}, []int{1}
	if full {
		rates, counts = []float64{1e3, 1e4, 1e5, 0}, []int{1, 2}
	}
	sweep := []raceRate{{place: placeNone}}
	for _, place := range []string{placeSame, placeOther} {
		for _, k := range counts {
			for _, r := range rates {
				sweep = append(sweep, raceRate{competitors: k, rate: r, place: place})
			}
		}
	}
	return sweep
}

// raceSpec is one race case.
type raceSpec struct {
	backend  string // "sim" or "perf"
	strategy string // alloc strategy, "kernel" for perf
	mode     string // raceModify or raceReregister
	raceRate
}

func (s raceSpec) name() string {
	return fmt.Sprintf("Race/backend=%s/strategy=%s/mode=%s/competitors=%d/rate=%s/place=%s",
		s.backend, s.strategy, s.mode, s.competitors, s.label(), s.place)
}

// validate reports a spec no case can run, naming the bad field.
func (s raceSpec) validate() error {
	switch {
	case s.mode != raceModify && s.mode != raceReregister:
		return fmt.Errorf("bench: race: mode = %q, want %q or %q", s.mode, raceModify, raceReregister)
	case s.competitors < 0:
		return fmt.Errorf("bench: race: competitors = %d, need >= 0", s.competitors)
	case s.rate < 0:
		return fmt.Errorf("bench: race: rate = %g, need >= 0 (0: unlimited)", s.rate)
	case s.competitors == 0 && s.place != placeNone:
		return fmt.Errorf("bench: race: place = %q without competitors, want %q", s.place, placeNone)
	case s.competitors > 0 && s.place != placeSame && s.place != placeOther:
		return fmt.Errorf("bench: race: place = %q, want %q or %q", s.place, placeSame, placeOther)
	case s.place == placeOther && runtime.NumCPU() < 2:
		return Skipf("place=%s needs a second CPU, this machine has %d", placeOther, runtime.NumCPU())
	}
	return nil
}

// scenario describes the case as data for Result.Params.
func (s raceSpec) scenario(opts Options, cpus int, n int64) harness.Scenario {
	return harness.Scenario{
		Experiment:  "race",
		Strategy:    s.strategy,
		Backend:     s.backend,
		CPUs:        cpus,
		Slots:       hwregs.NumSlots,
		Mix:         s.mode,
		Competitors: s.competitors,
		Rate:        s.rate,
		Ops:         n,
		Seed:        opts.Seed,
		PinCPU:      opts.PinCPU,
	}
}

func raceCases(opts Options) ([]Case, error) {
	if err := checkOptions("race", opts); err != nil {
		return nil, err
	}
	cases := raceCasesOn("sim", strategiesOf(opts), opts, 10*time.Millisecond, false, runRaceSim)
	return append(cases, raceCasesOn("perf", []string{"kernel"}, opts, 50*time.Millisecond, true, runRacePerf)...), nil
}

// raceCasesOn lists the cases of backend for strategies, each estimated at
// setup beyond the run's budget and run by run; locked runs each under the
// debug-register lock, for a backend that reaches the real registers.
func raceCasesOn(backend string, strategies []string, o Options, setup time.Duration, locked bool,
	run func(context.Context, raceSpec, Options, int64, Timer, raceHooks) (Result, error)) []Case {
	var cs []Case
	for _, s := range raceSpecs(backend, strategies, o.Full) {
		cs = append(cs, Case{
			Name:     s.name(),
			Estimate: raceEstimate(o, setup),
			Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
				if !locked {
					return run(ctx, s, o, n, t, raceHooks{})
				}
				return underKernlock(func() (Result, error) { return run(ctx, s, o, n, t, raceHooks{}) })
			},
		})
	}
	return cs
}

var raceExperiment = Experiment{Name: "race", Cases: raceCases,
	Question: "How often does re-registering a breakpoint lose its slot to a CPU-bound competitor, how long is the window, and does modify-in-place ever lose it?"}

// raceSpecs lists the race specs of backend for each of strategies: every
// mode, each at every rate of the sweep.
func raceSpecs(backend string, strategies []string, full bool) []raceSpec {
	var ss []raceSpec
	for _, st := range strategies {
		for _, mode := range []string{raceModify, raceReregister} {
			for _, r := range raceSweep(full) {
				ss = append(ss, raceSpec{backend: backend, strategy: st, mode: mode, raceRate: r})
			}
		}
	}
	return ss
}

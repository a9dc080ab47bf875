package bench

import (
	"bpbench/bench/harness"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/hwregs"
	"bpbench/internal/cpupin"
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
var raceExperiment = Experiment{
	Name:     "race",
	Question: "How often does re-registering a breakpoint lose its slot to a CPU-bound competitor, how long is the window, and does modify-in-place ever lose it?",
	Cases:    raceCases,
}

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
	strategies := opts.Strategies
	if strategies == nil {
		strategies = alloc.Strategies()
	}
	var cases []Case
	for _, s := range raceSpecs("sim", strategies, opts.Full) {
		cases = append(cases, Case{
			Name:     s.name(),
			Estimate: 200 * time.Millisecond,
			Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
				return runRaceSim(ctx, s, opts, n, t, raceHooks{})
			},
		})
	}
	for _, s := range raceSpecs("perf", []string{"kernel"}, opts.Full) {
		cases = append(cases, Case{
			Name:     s.name(),
			Estimate: time.Second,
			Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
				return underKernlock(func() (Result, error) { return runRacePerf(ctx, s, opts, n, t, raceHooks{}) })
			},
		})
	}
	return cases, nil
}

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

// raceStats is what one race run counted; both backends fill it and
// raceResult turns it into a Result.
type raceStats struct {
	changes int64             // holder changes completed
	elapsed time.Duration     // wall time of the holder's loop
	lost    int64             // re-registrations refused (ENOSPC / ErrNoSlot)
	moved   int64             // re-registrations that got another register
	latency *harness.Recorder // time per change, recovery included
	window  *harness.Recorder // release -> successful reserve, retries included
	unarmed *harness.Recorder // disarming write -> last arming write, re-register only
	recover *harness.Recorder // first refusal -> successful reserve

	exposure *harness.Recorder // release -> the holder's first reservation after it returns

	compAttempts uint64        // competitor reservations tried
	compWins     uint64        // competitor reservations admitted
	compElapsed  time.Duration // how long the competitors ran
	compHeld     time.Duration // how long they spent in admitted attempts, summed
	compOnCPU    time.Duration // how long their threads ran, summed
	hasOnCPU     bool          // compOnCPU was measured
	compCPU      int           // CPU the competitors are pinned to, -1 for none

	batches []raceBatch // adaptive runs: one per chunk of changes

	spurious    uint64 // alloc.SpuriousRefusals over the run
	hasSpurious bool
}

func newRaceStats() *raceStats {
	return &raceStats{latency: harness.NewRecorder(), window: harness.NewRecorder(), unarmed: harness.NewRecorder(),
		recover: harness.NewRecorder(), exposure: harness.NewRecorder(), compCPU: -1}
}

// steals is the number of changes that lost their slot or register.
func (st *raceStats) steals() int64 { return st.lost + st.moved }

// result fills a Result from the counts; extra adds backend-specific
// Params.
func (st *raceStats) result(s raceSpec, opts Options, cpus int, extra map[string]string) Result {
	cc := "none"
	if st.compCPU >= 0 {
		cc = strconv.Itoa(st.compCPU)
	}
	p := commonParams(s.scenario(opts, cpus, st.changes),
		"mode", s.mode, "competitors", strconv.Itoa(s.competitors), "rate", s.label(),
		"place", s.place, "competitor_cpu", cc, "predictor", "paced")
	for k, v := range extra {
		p[k] = v
	}
	res := Result{
		Experiment: "race",
		Name:       s.name(),
		Params:     p,
		Iterations: st.changes,
		Metrics:    map[string]float64{},
		Latency:    st.latency.Summary(),
		Window:     st.window.Summary(),
	}
	n := float64(max(st.changes, 1))
	res.NsPerOp = float64(st.elapsed.Nanoseconds()) / n
	m := res.Metrics
	m["changes"] = float64(st.changes)
	m["steals/op"] = float64(st.steals()) / n
	m["steals-lo/op"], m["steals-hi/op"], m["steals-dispersion"] = st.stealInterval()
	m["lost/op"] = float64(st.lost) / n
	m["moved/op"] = float64(st.moved) / n
	m["competitor-wins/op"] = float64(st.compWins) / n
	// The achieved rate per competitor is that of its refused attempts
	// over the time it was not in an admitted one: a window opens with
	// the holder owning every slot, so this is the rate at which attempts
	// arrive in it; after a steal an unlimited competitor spends most of
	// its time holding the slot it keeps re-taking, which would otherwise
	// count as a low rate. Every attempt targets the holder's CPU; without
	// competitors the rate is 0. competitor-attempts/s counts every
	// attempt over the whole time.
	//
	// A competitor attempts only while its thread runs: on a loaded
	// machine other processes take its CPU for whole time slices. The
	// prediction therefore uses the fraction of the time its thread ran
	// (competitor-oncpu, from its thread's CPU time) and its
	// rate while running; the two agree with rate-achieved/s wherever a
	// window is short against the attempt interval.
	rate, rateOn, onCPU := 0.0, 0.0, 1.0
	if s.competitors > 0 && st.compElapsed > 0 {
		k := float64(s.competitors)
		m["competitor-attempts/s"] = float64(st.compAttempts) / k / st.compElapsed.Seconds()
		refused := float64(st.compAttempts - st.compWins)
		if free := k*st.compElapsed.Seconds() - st.compHeld.Seconds(); free > 0 {
			rate, rateOn = refused/free, refused/free
		}
		if st.hasOnCPU {
			onCPU = math.Min(1, st.compOnCPU.Seconds()/(k*st.compElapsed.Seconds()))
			m["competitor-oncpu"] = onCPU
			if run := st.compOnCPU.Seconds() - st.compHeld.Seconds(); run > 0 {
				rateOn = refused / run
			}
		}
	}
	m["rate-achieved/s"] = rate
	m["steals-predicted/op"] = 0
	if h := st.exposure.Summary(); h != nil {
		m["steals-predicted/op"] = predictSteals(h.CDF, rateOn, onCPU, s.competitors)
	}
	m["exposure-ns/p50"], m["exposure-ns/p99"] = st.exposure.Quantile(0.5), st.exposure.Quantile(0.99)
	if len(st.batches) > 1 {
		res.Batches = map[string][]float64{}
		for _, b := range st.batches {
			bn := float64(max(b.changes, 1))
			res.Batches["steals/op"] = append(res.Batches["steals/op"], float64(b.steals)/bn)
			res.Batches["ns/op"] = append(res.Batches["ns/op"], float64(b.elapsed.Nanoseconds())/bn)
		}
	}
	if res.Latency != nil {
		m["p50-ns"] = res.Latency.P50
		m["p99-ns"] = res.Latency.P99
	}
	// Modify never releases the slot, so its window is empty by
	// construction; report it as 0 so every case has the same metrics.
	m["window-ns/p50"], m["window-ns/p99"] = 0, 0
	if res.Window != nil {
		m["window-ns/p50"], m["window-ns/p99"] = res.Window.P50, res.Window.P99
	}
	// Likewise modify never disarms the slot (see the experiment's doc).
	m["unarmed-ns/p50"], m["unarmed-ns/p99"] = 0, 0
	if st.unarmed.Count() > 0 {
		m["unarmed-ns/p50"], m["unarmed-ns/p99"] = st.unarmed.Quantile(0.5), st.unarmed.Quantile(0.99)
	}
	m["recover-ns/p50"], m["recover-ns/p99"] = 0, 0
	if st.recover.Count() > 0 {
		m["recover-ns/p50"], m["recover-ns/p99"] = st.recover.Quantile(0.5), st.recover.Quantile(0.99)
	}
	if st.hasSpurious {
		m["spurious-refusals"] = float64(st.spurious)
	}
	return res
}

// windowAlloc decorates the holder's allocator to time the window: from the
// moment the holder's slot is released to the moment a reservation of the
// holder's task succeeds again, refused attempts in between included
// (window), and to the return of the first reservation after the release,
// admitted or not (exposure: the time a competitor's reservation could
// take the slot, which predictSteals uses; after a refusal the slot is
// already gone). Only the holder's goroutine calls it (competitors use the
// inner allocator), so its fields need no synchronisation.
type windowAlloc struct {
	alloc.Allocator
	cfg      alloc.Config
	task     int
	window   *harness.Recorder
	exposure *harness.Recorder
	relAt    harness.Ticks
	pending  bool
	exposed  bool // the exposure of the pending window is recorded
	// onRelease, when set, runs right after the holder's release,
	// onRefused after a refused reservation of the holder and onAdmitted
	// after the admitted one that ends a window: tests use them to put a
	// competitor's reservation inside the window deterministically.
	onRelease, onRefused, onAdmitted func()
}

// Config returns the model's configuration, so that the Writer knows the
// pools (hwregs.Configurer).
func (w *windowAlloc) Config() alloc.Config { return w.cfg }

func (w *windowAlloc) Release(s alloc.Slot) error {
	err := w.Allocator.Release(s)
	if err == nil && s.Request().Task == w.task {
		w.relAt, w.pending, w.exposed = harness.Now(), true, false
		if w.onRelease != nil {
			w.onRelease()
		}
	}
	return err
}

func (w *windowAlloc) Reserve(r alloc.Request) (alloc.Slot, error) {
	s, err := w.Allocator.Reserve(r)
	if r.Task != w.task {
		return s, err
	}
	now := harness.Now()
	if w.pending && !w.exposed {
		w.exposure.Record(now - w.relAt)
		w.exposed = true
	}
	switch {
	case err == nil && w.pending:
		w.window.Record(now - w.relAt)
		w.pending = false
		if w.onAdmitted != nil {
			w.onAdmitted()
		}
	case err != nil && w.onRefused != nil:
		w.onRefused()
	}
	return s, err
}

// raceAddrs are the model's watched addresses: the holder's four
// breakpoints watch the first four, and the changing one alternates
// between the fourth and the fifth.
var raceAddrs = [...]uint64{0x10000, 0x10008, 0x10010, 0x10018, 0x10020}

// runRaceSim runs one model case. The holder is the calling goroutine,
// pinned to opts.PinCPU; the competitors are pinned as s.place says.
// hooks (tests only) put competitors into windows deterministically.
func runRaceSim(ctx context.Context, s raceSpec, opts Options, n int64, t Timer, hooks raceHooks) (Result, error) {
	t.StopTimer()
	if err := s.validate(); err != nil {
		return Result{}, err
	}
	budget := pickBudget(opts, raceBudgetSimQuick, raceBudgetSimFull)
	cpus := max(runtime.NumCPU(), opts.PinCPU+1, 2)
	cfg := alloc.X86(cpus)
	inner, err := alloc.New(s.strategy, cfg)
	if err != nil {
		return Result{}, fmt.Errorf("bench: race %s: %w", s.name(), err)
	}
	unpin, err := cpupin.Pin(opts.PinCPU)
	if err != nil {
		return Result{}, fmt.Errorf("bench: race %s: %w", s.name(), err)
	}
	defer unpin()
	defer raceProcs(s.competitors)()
	st := newRaceStats()
	wa := &windowAlloc{Allocator: inner, cfg: cfg, task: raceHolderTask, window: st.window, exposure: st.exposure}
	compReq := alloc.Request{Task: alloc.NoTask, CPU: opts.PinCPU, Kind: alloc.Data}
	setup, halt := hooks.competitors(wa, inner, compReq, st)
	defer halt()
	w := hwregs.NewWriter(wa, hwregs.NewSim(), hwregs.WriteChanged)
	holder := alloc.Request{Task: raceHolderTask, CPU: alloc.AnyCPU, Kind: alloc.Data}
	var bps [hwregs.NumSlots]hwregs.Breakpoint
	for i := range bps {
		if bps[i], err = w.Register(holder, hwregs.Attr{Addr: raceAddrs[i], Len: 8, Type: hwregs.Write}); err != nil {
			return Result{}, fmt.Errorf("bench: race %s: holder breakpoint %d: %w", s.name(), i, err)
		}
	}
	attrs := [2]hwregs.Attr{
		{Addr: raceAddrs[4], Len: 8, Type: hwregs.Write},
		{Addr: raceAddrs[3], Len: 8, Type: hwregs.Write},
	}
	spurious := spuriousSince(inner)
	comp := startCompetitors(ctx, s, s.competitorCPU(opts.PinCPU), setup)
	loopErr := runChanges(ctx, t, n, budget, 1024, st, writerChange(ctx, s, w, &bps[3], holder, &attrs, st))
	halt()
	compErr := stopCompetitors(comp, st)
	spurious(st)
	if err := unregisterAll(w, bps[:]); loopErr == nil {
		loopErr = err
	}
	if err := errors.Join(loopErr, compErr); err != nil {
		return Result{}, fmt.Errorf("bench: race %s: %w", s.name(), err)
	}
	return st.result(s, opts, cpus, map[string]string{"policy": hwregs.WriteChanged.String(), "competitor_hold": raceSimHold.String()}), nil
}

// raceProcs raises GOMAXPROCS, for the time of a case, to give the holder
// and each of k competitors, every one locked to its own pinned thread, a
// P of its own plus one for the rest of the program. With fewer Ps the Go
// scheduler, not the kernel, would decide who runs: a spinning goroutine
// keeps its P until the runtime preempts it after 10 ms, whatever CPU its
// thread is pinned to. It returns the function that restores the old
// value.
func raceProcs(k int) func() {
	old := runtime.GOMAXPROCS(0)
	if want := k + 2; old < want {
		runtime.GOMAXPROCS(want)
		return func() { runtime.GOMAXPROCS(old) }
	}
	return func() {}
}

// raceHooks are the tests' ways of putting a competitor into the window
// deterministically; the zero value adds none.
type raceHooks struct {
	// stealEvery > 0 reserves for a competitor inside every
	// stealEvery-th window, from the holder's goroutine (stealEveryNth).
	stealEvery int
	// gated makes the real competitor goroutines attempt exactly once
	// inside every window (raceGate).
	gated bool
}

// competitors returns the setup of a model case's competitors, after
// installing the hooks in wa, and a function to call once the holder is
// done, before the competitors stop (it may be called again).
func (h raceHooks) competitors(wa *windowAlloc, inner alloc.Allocator, req alloc.Request, st *raceStats) (harness.CompetitorSetup, func()) {
	switch {
	case h.gated:
		g := newRaceGate(wa, inner, req)
		return g.setup, g.halt
	case h.stealEvery > 0:
		return modelCompetitor(inner, req), stealEveryNth(wa, inner, req, st, h.stealEvery)
	}
	return modelCompetitor(inner, req), func() {}
}

// raceGate puts the real competitor goroutines into every window: the
// holder, on releasing its slot, lets exactly one competitor attempt and
// waits for the attempt to be made; a competitor that wins holds the slot
// until the holder's reservation has been refused (or, were a strategy to
// over-admit, admitted: the test then fails instead of hanging). Each
// competitor's first
// attempt, which startCompetitors waits for before the holder starts, is
// not gated.
type raceGate struct {
	open     chan struct{}
	tried    chan struct{}
	refused  chan struct{} // the holder's reservation was decided; capacity 1: the holder never blocks on it
	stopped  chan struct{}
	stopOnce sync.Once
	setup    harness.CompetitorSetup
}

func newRaceGate(wa *windowAlloc, inner alloc.Allocator, req alloc.Request) *raceGate {
	g := &raceGate{open: make(chan struct{}), tried: make(chan struct{}), refused: make(chan struct{}, 1), stopped: make(chan struct{})}
	wa.onRelease = func() {
		// A refusal of the previous window's retries must not release
		// this window's winner early.
		select {
		case <-g.refused:
		default:
		}
		select {
		case g.open <- struct{}{}:
			<-g.tried
		case <-g.stopped:
		}
	}
	wa.onRefused = func() {
		select {
		case g.refused <- struct{}{}:
		default:
		}
	}
	wa.onAdmitted = wa.onRefused
	g.setup = func() (func() (bool, error), func(), error) {
		first := true
		attempt := func() (bool, error) {
			gated := !first
			first = false
			if gated {
				select {
				case <-g.open:
				case <-g.stopped:
					return false, nil
				}
			}
			sl, err := inner.Reserve(req)
			if gated {
				g.tried <- struct{}{}
			}
			switch {
			case errors.Is(err, alloc.ErrNoSlot):
				return false, nil
			case err != nil:
				return false, err
			}
			if gated {
				select {
				case <-g.refused:
				case <-g.stopped:
				}
			}
			return true, inner.Release(sl)
		}
		return attempt, func() {}, nil
	}
	return g
}

// halt lets every competitor blocked on the gate go, and makes the
// holder's later releases (teardown) pass without waiting.
func (g *raceGate) halt() { g.stopOnce.Do(func() { close(g.stopped) }) }

// spuriousSince returns a function that stores in st the refusals a
// counted as spurious since spuriousSince was called, for the strategies
// that count them (alloc.SpuriousRefusals); for the others it does nothing.
func spuriousSince(a alloc.Allocator) func(st *raceStats) {
	sp, ok := a.(alloc.SpuriousRefusals)
	if !ok {
		return func(*raceStats) {}
	}
	sp0 := sp.SpuriousRefusals()
	return func(st *raceStats) { st.spurious, st.hasSpurious = sp.SpuriousRefusals()-sp0, true }
}

// modelCompetitor is the startCompetitors setup of a competitor on a model
// allocator: each attempt reserves req on inner and, when admitted, holds
// the slot for raceSimHold before releasing it, as a real CPU-bound
// breakpoint holds its slot from open to close.
func modelCompetitor(inner alloc.Allocator, req alloc.Request) harness.CompetitorSetup {
	holdTicks := harness.Ticks(float64(raceSimHold) / harness.NsPerTick())
	return func() (func() (bool, error), func(), error) {
		attempt := func() (bool, error) {
			sl, err := inner.Reserve(req)
			if errors.Is(err, alloc.ErrNoSlot) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			for t0 := harness.Now(); harness.Now()-t0 < holdTicks; {
			}
			return true, inner.Release(sl)
		}
		return attempt, func() {}, nil
	}
}

// timeChanges runs the holder's n changes, change(i) making change i, and
// records each change's time in st.latency and the loop's in st.elapsed;
// the Timer runs only around the loop. It checks ctx every ctxEvery
// changes (a power of two): often enough to stop a slow backend promptly,
// rarely enough not to weigh on a fast one.
func timeChanges(ctx context.Context, t Timer, n, ctxEvery int64, st *raceStats, change func(i int64) error) error {
	done, elapsed, err := harness.TimeOps(ctx, t, n, ctxEvery, st.latency, change)
	st.changes += done
	st.elapsed += elapsed
	return err
}

// writerChange returns the change function of a holder whose registers go
// through w: change i sets bp to attrs[i&1], by modify or by re-register
// as s.mode says. A re-registration, recovery included, is recorded in
// st.unarmed: Reregister's first register write disarms the slot and the
// last write of the Register that succeeds arms it again, so the call's
// time is the time the breakpoint is unarmed, up to the argument checks
// before the first write.
func writerChange(ctx context.Context, s raceSpec, w *hwregs.Writer, bp *hwregs.Breakpoint, holder alloc.Request, attrs *[2]hwregs.Attr, st *raceStats) func(int64) error {
	return func(i int64) error {
		a := attrs[i&1]
		if s.mode == raceModify {
			if err := w.Modify(bp, a); err != nil {
				return fmt.Errorf("modify %d: %w", i, err)
			}
			return nil
		}
		t0 := harness.Now()
		if err := reregisterSim(ctx, w, bp, holder, a, st); err != nil {
			return fmt.Errorf("re-register %d: %w", i, err)
		}
		st.unarmed.Record(harness.Now() - t0)
		return nil
	}
}

// unregisterAll unregisters the holder's breakpoints still registered and
// returns the first error.
func unregisterAll(w *hwregs.Writer, bps []hwregs.Breakpoint) error {
	var first error
	for i := range bps {
		if bps[i].Slot.Valid() {
			if err := w.Unregister(bps[i]); err != nil && first == nil {
				first = fmt.Errorf("teardown: %w", err)
			}
		}
	}
	return first
}

// reregisterSim changes bp to a by re-registering. A refused reservation is
// a steal: it retries until the competitor lets go and records the time to
// recover. Getting another register index is a steal too.
func reregisterSim(ctx context.Context, w *hwregs.Writer, bp *hwregs.Breakpoint, req alloc.Request, a hwregs.Attr, st *raceStats) error {
	moved, err := w.Reregister(bp, a)
	if err == nil {
		if moved {
			st.moved++
		}
		return nil
	}
	if !errors.Is(err, alloc.ErrNoSlot) {
		return err
	}
	st.lost++
	t0 := harness.Now()
	for tries := 0; ; tries++ {
		nb, err := w.Register(req, a)
		if err == nil {
			st.recover.Record(harness.Now() - t0)
			*bp = nb
			return nil
		}
		if !errors.Is(err, alloc.ErrNoSlot) {
			return err
		}
		// Let a competitor on this CPU run and let go; runtime.Gosched
		// would hand the locked goroutine's P away and park its thread.
		unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		if tries&255 == 255 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if d := time.Duration(harness.TicksToNs(harness.Now() - t0)); d > maxRecover {
				return fmt.Errorf("race: holder did not win its slot back within %v (%d attempts) against the competitors", maxRecover, tries+1)
			}
		}
	}
}

// maxRecover bounds one recovery in the model race, so a competitor setup
// that starves the holder fails the case instead of hanging the run.
const maxRecover = 10 * time.Second

// startCompetitors starts s's competitors, pinned to cpu (-1: unpinned),
// each attempting at s's rate with what setup gives it; the caller has
// given them Ps of their own (raceProcs). It returns once each has made
// one attempt.
func startCompetitors(ctx context.Context, s raceSpec, cpu int, setup harness.CompetitorSetup) *harness.Competitors {
	return harness.StartCompetitors(ctx, harness.CompetitorSpec{Count: s.competitors, Rate: s.rate, CPU: cpu, Setup: setup})
}

// stopCompetitors halts c, waits for its competitors and adds what they
// did to st.
func stopCompetitors(c *harness.Competitors, st *raceStats) error {
	cs, err := c.Stop()
	if cs.CPU >= 0 {
		st.compCPU = cs.CPU
	}
	st.compElapsed += cs.Elapsed
	st.compAttempts += cs.Attempts
	st.compWins += cs.Wins
	st.compHeld += cs.Held
	st.compOnCPU += cs.OnCPU
	st.hasOnCPU = cs.HasOnCPU
	return err
}

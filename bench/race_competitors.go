package bench

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"bpbench/alloc"
	"bpbench/bench/harness"
)

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

// startCompetitors starts s's competitors, pinned to cpu (-1: unpinned),
// each attempting at s's rate with what setup gives it; the caller has
// given them Ps of their own (raceProcs). It returns once each has made
// one attempt.
func startCompetitors(ctx context.Context, s raceSpec, cpu int, setup harness.CompetitorSetup) *harness.Competitors {
	return harness.StartCompetitors(ctx, harness.CompetitorSpec{Count: s.competitors, Rate: s.rate, CPU: cpu, Setup: setup})
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/bench/harness"
	"bpbench/hwregs"
)

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

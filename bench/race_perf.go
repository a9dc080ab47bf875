package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/bench/harness"
	"bpbench/hwregs"
	"bpbench/internal/cpupin"
)

// raceVars are the variables the real-kernel holder watches: four
// breakpoints on the first four, the changing one alternating between the
// fourth and the fifth. The competitors watch the sixth. Nothing accesses
// them; the experiment measures admission, not traps.
var raceVars [6]uint64

func raceVarAttr(i int) hwregs.Attr {
	return hwregs.Attr{Addr: uint64(uintptr(unsafe.Pointer(&raceVars[i]))), Len: 8, Type: hwregs.Write}
}

// perfOpenRaw is perf_event_open without the allocations of
// hwregs.OpenPerf, for loops that must not allocate; attr comes from
// hwregs.PerfAttr.
func perfOpenRaw(attr *unix.PerfEventAttr, pid, cpu int) (int, unix.Errno) {
	fd, _, errno := unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(attr)),
		uintptr(pid), uintptr(cpu), ^uintptr(0), unix.PERF_FLAG_FD_CLOEXEC, 0)
	return int(fd), errno
}

// runRacePerf runs one real-kernel case: the holder is the calling
// goroutine, locked to its thread and pinned to opts.PinCPU, with four task
// breakpoints on that thread (pid 0, cpu -1); competitors are goroutines
// pinned as s.place says (the holder's CPU or the other one), opening and
// closing CPU-bound breakpoints on the holder's CPU (pid -1, cpu =
// opts.PinCPU). A task breakpoint on all CPUs is refused when any CPU has
// no slot left for it, so the competitors' target CPU only has to be one
// the holder's breakpoints count on; the holder's is. The kernel does not
// say which debug register a task breakpoint gets (it picks one at
// schedule-in), so a steal here is a refused re-open (ENOSPC) only. The
// caller holds the kernlock. hooks.stealEvery > 0 (tests only) opens a
// CPU-bound breakpoint from the holder's thread inside every
// stealEvery-th window, closing it once the holder's re-open was refused.
func runRacePerf(ctx context.Context, s raceSpec, opts Options, n int64, t Timer, hooks raceHooks) (res Result, err error) {
	t.StopTimer()
	if err := s.validate(); err != nil {
		return Result{}, err
	}
	budget := pickBudget(opts, raceBudgetRealQuick, raceBudgetRealFull)
	if err := perfSupported(); err != nil {
		return Result{}, err
	}
	unpin, err := cpupin.Pin(opts.PinCPU)
	if err != nil {
		return Result{}, fmt.Errorf("bench: race %s: %w", s.name(), err)
	}
	defer unpin()
	defer func() {
		if err != nil {
			err = fmt.Errorf("bench: race %s: %w", s.name(), err)
		}
	}()

	st := newRaceStats()
	// The three breakpoints that never change; in modify mode the fourth
	// is a PerfEvent too, in reregister mode a raw fd so that re-opening
	// it does not allocate.
	var events []*hwregs.PerfEvent
	defer func() {
		for _, e := range events {
			if cerr := e.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	for i := 0; i < 3; i++ {
		e, err := hwregs.OpenPerf(raceVarAttr(i), 0, -1)
		if err != nil {
			return Result{}, skipIfUnsupported(err)
		}
		events = append(events, e)
	}
	attrs := [2]hwregs.Attr{raceVarAttr(4), raceVarAttr(3)}
	rawAttrs := &[2]unix.PerfEventAttr{hwregs.PerfAttr(attrs[0]), hwregs.PerfAttr(attrs[1])}
	var changing *hwregs.PerfEvent
	fd := -1
	defer func() {
		if fd >= 0 {
			if cerr := unix.Close(fd); cerr != nil && err == nil {
				err = fmt.Errorf("closing holder breakpoint: %w", cerr)
			}
		}
	}()
	if s.mode == raceModify {
		if changing, err = hwregs.OpenPerf(attrs[1], 0, -1); err != nil {
			return Result{}, err
		}
		events = append(events, changing)
	} else {
		var errno unix.Errno
		if fd, errno = perfOpenRaw(&rawAttrs[1], 0, -1); errno != 0 {
			fd = -1
			return Result{}, fmt.Errorf("holder breakpoint 3: perf_event_open: %w", errno)
		}
	}

	cpu := opts.PinCPU
	defer raceProcs(s.competitors)()
	ro := &perfReopen{st: st}
	if hooks.stealEvery > 0 {
		defer ro.stealEvery(hooks.stealEvery, cpu)()
	}
	comp := startCompetitors(ctx, s, s.competitorCPU(cpu), func() (func() (bool, error), func(), error) {
		attr := new(unix.PerfEventAttr)
		*attr = hwregs.PerfAttr(raceVarAttr(5))
		attempt := func() (bool, error) {
			cfd, errno := perfOpenRaw(attr, -1, cpu)
			switch errno {
			case 0:
			case unix.ENOSPC:
				return false, nil
			default:
				return false, fmt.Errorf("perf_event_open(pid=-1, cpu=%d): %w", cpu, errno)
			}
			if err := unix.Close(cfd); err != nil {
				return true, fmt.Errorf("closing competitor breakpoint: %w", err)
			}
			return true, nil
		}
		return attempt, func() {}, nil
	})

	loopErr := runChanges(ctx, t, n, budget, 64, st, func(i int64) error {
		if s.mode == raceModify {
			if err := changing.Modify(attrs[i&1]); err != nil {
				return fmt.Errorf("modify %d: %w", i, err)
			}
			return nil
		}
		var err error
		if fd, err = ro.reopen(ctx, fd, &rawAttrs[i&1]); err != nil {
			return fmt.Errorf("re-register %d: %w", i, err)
		}
		return nil
	})
	compErr := stopCompetitors(comp, st)
	if err := errors.Join(loopErr, compErr); err != nil {
		return Result{}, err
	}
	return st.result(s, opts, runtime.NumCPU(), map[string]string{"competitor_hold": "none"}), nil
}

// perfReopen re-registers the holder's perf breakpoint and counts in st;
// the hooks, when set (tests only), run on the holder's thread right
// after the close and after a refused open.
type perfReopen struct {
	st                  *raceStats
	onClosed, onRefused func() error
}

// reopen closes the holder's breakpoint fd and opens attr in its place
// on the calling thread, retrying after ENOSPC (a competitor took the slot)
// until the kernel admits it. It returns the new fd, or -1 with an error.
// The time from before the close to after the admitted open is recorded
// in st.unarmed: close uninstalls the breakpoint from the registers and
// the open installs the new one on this (current) thread before it
// returns. The exposure runs from the close's return to the first open's:
// the kernel releases the slot inside close and reserves it early inside
// perf_event_open (hw_breakpoint_event_init), so it counts the open's tail
// after the reservation instead of the close's tail after the release.
func (ro *perfReopen) reopen(ctx context.Context, fd int, attr *unix.PerfEventAttr) (int, error) {
	st := ro.st
	closing := harness.Now()
	if err := unix.Close(fd); err != nil {
		return -1, fmt.Errorf("close: %w", err)
	}
	released := harness.Now()
	if ro.onClosed != nil {
		if err := ro.onClosed(); err != nil {
			return -1, err
		}
	}
	var refusedAt harness.Ticks
	for tries := 0; ; tries++ {
		nfd, errno := perfOpenRaw(attr, 0, -1)
		now := harness.Now()
		if tries == 0 {
			st.exposure.Record(now - released)
		}
		switch errno {
		case 0:
			st.window.Record(now - released)
			st.unarmed.Record(now - closing)
			if tries > 0 {
				st.recover.Record(now - refusedAt)
			}
			return nfd, nil
		case unix.ENOSPC:
			if tries == 0 {
				st.lost++
				refusedAt = now
			}
			if ro.onRefused != nil {
				if err := ro.onRefused(); err != nil {
					return -1, err
				}
			}
		default:
			return -1, fmt.Errorf("perf_event_open: %w", errno)
		}
		if tries&63 == 63 {
			if err := ctx.Err(); err != nil {
				return -1, fmt.Errorf("slot still taken after %d attempts: %w", tries+1, err)
			}
		}
	}
}

// stealEvery makes ro open a CPU-bound breakpoint on cpu from the holder's
// thread inside every nth window and close it after the holder's re-open
// was refused, as stealEveryNth does in the model. The returned function
// closes one still open and stops stealing.
func (ro *perfReopen) stealEvery(n, cpu int) func() {
	attr := hwregs.PerfAttr(raceVarAttr(5))
	held, windows := -1, 0
	ro.onClosed = func() error {
		if windows++; windows%n != 0 {
			return nil
		}
		ro.st.compAttempts++
		fd, errno := perfOpenRaw(&attr, -1, cpu)
		switch errno {
		case 0:
			held = fd
			ro.st.compWins++
		case unix.ENOSPC:
		default:
			return fmt.Errorf("stealing competitor: perf_event_open(pid=-1, cpu=%d): %w", cpu, errno)
		}
		return nil
	}
	ro.onRefused = func() error {
		if held < 0 {
			return nil
		}
		err := unix.Close(held)
		held = -1
		return err
	}
	return func() { ro.onRefused(); ro.onClosed, ro.onRefused = nil, nil }
}

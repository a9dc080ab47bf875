package bench

import (
	"bpbench/bench/harness"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/hwregs"
	"bpbench/internal/cpupin"
	"bpbench/internal/kernlock"
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

// underKernlock runs f holding the machine-wide debug-register lock, so
// that other bpbench processes neither steal nor lend slots meanwhile.
// Tests take the lock themselves (kernlock.For) and call the unlocked
// function: flock does not nest within a process.
func underKernlock(f func() (Result, error)) (Result, error) {
	lock, err := kernlock.Acquire()
	if err != nil {
		return Result{}, err
	}
	defer lock.Unlock()
	return f()
}

// competitorCPU returns the CPU perf competitors pin to: another CPU than
// the holder's, so the two really run at the same time; -1 (unpinned) on a
// single-CPU machine.
func competitorCPU(holder int) int {
	if runtime.NumCPU() < 2 {
		return -1
	}
	return (holder + 1) % runtime.NumCPU()
}

// runRacePerf runs one real-kernel case: the holder is the calling
// goroutine, locked to its thread and pinned to opts.PinCPU, with four task
// breakpoints on that thread (pid 0, cpu -1); competitors are goroutines
// pinned to another CPU opening and closing CPU-bound breakpoints (pid -1,
// cpu = the holder's CPU). The kernel does not say which debug register a
// task breakpoint gets (it picks one at schedule-in), so a steal here is a
// refused re-open (ENOSPC) only. The caller holds the kernlock.
func runRacePerf(ctx context.Context, s raceSpec, opts Options, n int64, t Timer) (res Result, err error) {
	t.StopTimer()
	if err := s.validate(); err != nil {
		return Result{}, err
	}
	n = defaultOps(n, opts, racePerfQuick, racePerfFull)
	if err := hwregs.PerfSupported(); err != nil {
		return Result{}, skipIfUnsupported(err)
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
	compCPU := competitorCPU(cpu)
	comp := startCompetitors(ctx, s, func() (func() (bool, error), func(), error) {
		teardown := func() {}
		if compCPU >= 0 {
			u, err := cpupin.Pin(compCPU)
			if err != nil {
				return nil, nil, err
			}
			teardown = u
		}
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
		return attempt, teardown, nil
	})

	loopErr := timeChanges(ctx, t, n, 64, st, func(i int64) error {
		if s.mode == raceModify {
			if err := changing.Modify(attrs[i&1]); err != nil {
				return fmt.Errorf("modify %d: %w", i, err)
			}
			return nil
		}
		var err error
		if fd, err = reopenPerf(ctx, fd, &rawAttrs[i&1], st); err != nil {
			return fmt.Errorf("re-register %d: %w", i, err)
		}
		return nil
	})
	compErr := comp.stop(st)
	if err := errors.Join(loopErr, compErr); err != nil {
		return Result{}, err
	}
	cc := "none"
	if compCPU >= 0 {
		cc = strconv.Itoa(compCPU)
	}
	return st.result(s, opts, runtime.NumCPU(), map[string]string{"competitor_cpu": cc, "competitor_hold": "none"}), nil
}

// reopenPerf closes the holder's breakpoint fd and opens attr in its place
// on the calling thread, retrying after ENOSPC (a competitor took the slot)
// until the kernel admits it. It returns the new fd, or -1 with an error.
// The time from before the close to after the admitted open is recorded
// in st.unarmed: close uninstalls the breakpoint from the registers and
// the open installs the new one on this (current) thread before it
// returns.
func reopenPerf(ctx context.Context, fd int, attr *unix.PerfEventAttr, st *raceStats) (int, error) {
	closing := harness.Now()
	if err := unix.Close(fd); err != nil {
		return -1, fmt.Errorf("close: %w", err)
	}
	released := harness.Now()
	var refusedAt harness.Ticks
	for tries := 0; ; tries++ {
		nfd, errno := perfOpenRaw(attr, 0, -1)
		switch errno {
		case 0:
			now := harness.Now()
			st.window.Record(now - released)
			st.unarmed.Record(now - closing)
			if tries > 0 {
				st.recover.Record(now - refusedAt)
			}
			return nfd, nil
		case unix.ENOSPC:
			if tries == 0 {
				st.lost++
				refusedAt = harness.Now()
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

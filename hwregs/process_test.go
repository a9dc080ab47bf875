package hwregs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/hwregs/tracee"
	"bpbench/internal/testenv"
)

// pwStart starts a tracee with threads workers (and spare ones) and a
// ProcessWriter over it; both are closed at the end of the test, and the
// tracee must then be gone.
func pwStart(t *testing.T, threads, spare int, pol ApplyMode) (*Ptrace, *ProcessWriter) {
	t.Helper()
	testenv.LockDebugRegs(t)
	p, err := StartPtrace(PtraceOptions{Threads: threads, Spare: spare})
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pid, tids := p.Pid(), p.Tids()
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		ptWantGone(t, pid, tids)
	})
	w, err := NewProcessWriter(p, pol)
	if err != nil {
		t.Fatal(err)
	}
	return p, w
}

// forApplyModes runs f as subtest policy=<mode> for each apply mode, with
// a tracee and ProcessWriter from pwStart(t, threads, spare, mode).
func forApplyModes(t *testing.T, threads, spare int, f func(t *testing.T, pol ApplyMode, p *Ptrace, w *ProcessWriter)) {
	for _, pol := range ApplyModes {
		t.Run("policy="+pol.String(), func(t *testing.T) {
			p, w := pwStart(t, threads, spare, pol)
			f(t, pol, p, w)
		})
	}
}

// pwWantRegs reads DR0-DR3 and DR7 of every thread and compares them with
// want and with the writer's mirror.
func pwWantRegs(t *testing.T, p *Ptrace, w *ProcessWriter, dr [NumSlots]uint64, dr7 DR7) {
	t.Helper()
	ptDo(t, p, func() error {
		for i := 0; i < p.Threads(); i++ {
			var got [NumSlots]uint64
			for r := range got {
				v, err := p.ReadDR(Target{Task: i}, r)
				if err != nil {
					return err
				}
				got[r] = v
			}
			g7, err := p.ReadDR(Target{Task: i}, RegDR7)
			if err != nil {
				return err
			}
			if got != dr || DR7(g7) != dr7 {
				return fmt.Errorf("thread %d: DR0-3 = %#x, DR7 = %v; want %#x, %v", i, got, DR7(g7), dr, dr7)
			}
			mdr, m7, _ := w.ThreadRegs(i)
			if mdr != got || m7 != DR7(g7) {
				return fmt.Errorf("thread %d: mirror %#x/%v differs from registers %#x/%v", i, mdr, m7, got, DR7(g7))
			}
		}
		return nil
	})
}

// pwSharedWrites has every worker write shared variable v count times and
// checks each thread's traps on slot idx (want: count if armed, else 0).
func pwSharedWrites(t *testing.T, p *Ptrace, v int, count uint64, idx int, armed bool) {
	t.Helper()
	r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: v, Count: count, Shared: true})
	for i := 0; i < p.Threads(); i++ {
		want := [NumSlots]uint64{}
		if armed {
			want[idx] = count
		}
		if r.Ops[i] != count {
			t.Errorf("thread %d counted %d writes, want %d", i, r.Ops[i], count)
		}
		ptWantTraps(t, r, i, want)
	}
}

func TestProcessSetModifyClear(t *testing.T) {
	const n = 8
	forApplyModes(t, n, 0, func(t *testing.T, pol ApplyMode, p *Ptrace, w *ProcessWriter) {
		h := p.Hello()
		a0 := Attr{Addr: h.SharedVarAddr(0), Len: 8, Type: Write}
		a1 := Attr{Addr: h.SharedVarAddr(1), Len: 8, Type: Write}
		w0 := p.Writes()
		bp, err := w.Set(a0)
		if err != nil {
			t.Fatal(err)
		}
		if bp.Index != 0 {
			t.Fatalf("first breakpoint in DR%d, want DR0", bp.Index)
		}
		on0 := DR7(0).WithSlot(0, a0)
		if pol == ApplyLazy {
			// Nothing is written until the threads resume.
			if got := p.Writes() - w0; got != 0 || w.Pending() != n {
				t.Fatalf("lazy set wrote %d registers with %d pending, want 0 and %d", got, w.Pending(), n)
			}
			pwWantRegs(t, p, w, [NumSlots]uint64{}, 0)
		} else {
			pwWantRegs(t, p, w, [NumSlots]uint64{a0.Addr}, on0)
		}
		pwSharedWrites(t, p, 0, 50, 0, true)
		pwWantRegs(t, p, w, [NumSlots]uint64{a0.Addr}, on0)
		// DR0 and DR7 on each thread, for either policy.
		if got := p.Writes() - w0; got != 2*n {
			t.Errorf("set wrote %d registers, want %d (DR0 and DR7 of each thread)", got, 2*n)
		}
		if w.Pending() != 0 {
			t.Errorf("pending = %d after a resume of every thread", w.Pending())
		}

		w1 := p.Writes()
		if err := w.Modify(&bp, a1); err != nil {
			t.Fatal(err)
		}
		pwSharedWrites(t, p, 1, 30, 0, true)
		pwSharedWrites(t, p, 0, 30, 0, false)
		// Same length and type: only DR0 changes.
		if got := p.Writes() - w1; got != n {
			t.Errorf("modify wrote %d registers, want %d (DR0 of each thread)", got, n)
		}
		pwWantRegs(t, p, w, [NumSlots]uint64{a1.Addr}, DR7(0).WithSlot(0, a1))

		if err := w.Clear(bp); err != nil {
			t.Fatal(err)
		}
		pwSharedWrites(t, p, 1, 30, 0, false)
		// No thread keeps a stale address or enable bit.
		pwWantRegs(t, p, w, [NumSlots]uint64{}, 0)
		if err := w.Clear(bp); !errors.Is(err, alloc.ErrNotReserved) {
			t.Errorf("second Clear = %v, want ErrNotReserved", err)
		}
		if err := w.Modify(&bp, a0); !errors.Is(err, alloc.ErrNotReserved) {
			t.Errorf("Modify after Clear = %v, want ErrNotReserved", err)
		}
		if err := w.Err(); err != nil {
			t.Errorf("Err = %v", err)
		}
	})
}

func TestProcessSlotsAndBadInput(t *testing.T) {
	p, w := pwStart(t, 2, 0, ApplyEager)
	h := p.Hello()
	var bps []ProcessBreakpoint
	for i := 0; i < NumSlots; i++ {
		bp, err := w.Set(Attr{Addr: h.SharedVarAddr(i), Len: 8, Type: Write})
		if err != nil {
			t.Fatal(err)
		}
		if bp.Index != i {
			t.Fatalf("breakpoint %d in DR%d", i, bp.Index)
		}
		bps = append(bps, bp)
	}
	if _, err := w.Set(Attr{Addr: h.VarAddr(0, 0), Len: 8, Type: Write}); !errors.Is(err, alloc.ErrNoSlot) {
		t.Fatalf("fifth Set = %v, want ErrNoSlot", err)
	}
	if err := w.Clear(bps[1]); err != nil {
		t.Fatal(err)
	}
	bp, err := w.Set(Attr{Addr: h.VarAddr(0, 0), Len: 8, Type: Write})
	if err != nil || bp.Index != 1 {
		t.Fatalf("Set after clearing DR1 = %+v, %v; want DR1", bp, err)
	}
	if err := w.Clear(bps[1]); !errors.Is(err, alloc.ErrNotReserved) {
		t.Errorf("Clear of the old DR1 handle = %v, want ErrNotReserved (its slot was reused)", err)
	}
	if _, err := w.Set(Attr{Addr: h.SharedVarAddr(0) + 1, Len: 8, Type: Write}); !errors.Is(err, alloc.ErrInvalid) || !strings.Contains(err.Error(), "Attr.Addr") {
		t.Errorf("unaligned Set = %v, want ErrInvalid naming Attr.Addr", err)
	}
	if _, err := NewProcessWriter(p, ApplyLazy); !errors.Is(err, ErrWriterBusy) {
		t.Errorf("second ProcessWriter = %v, want ErrWriterBusy", err)
	}
	if _, err := ParseApplyMode("sometimes"); !errors.Is(err, alloc.ErrInvalid) {
		t.Errorf("ParseApplyMode(sometimes) = %v, want ErrInvalid", err)
	}
}

// TestProcessRollback fills one thread's four slots with perf breakpoints,
// so that the kernel refuses its DR0 write (ENOSPC): an eager Set must fail
// and leave every thread, those written before the refusal included, with
// its old registers. ApplyLazy cannot roll back threads that already ran with
// the change; it leaves the refused thread unarmed and reports it in Err.
func TestProcessRollback(t *testing.T) {
	const n, victim = 4, 2
	forApplyModes(t, n, 0, func(t *testing.T, pol ApplyMode, p *Ptrace, w *ProcessWriter) {
		h := p.Hello()
		fds := ptFillSlots(t, p.Tids()[victim], func(i int) uint64 { return h.VarAddr(victim, i) })
		a := Attr{Addr: h.SharedVarAddr(0), Len: 8, Type: Write}
		w0 := p.Writes()
		bp, err := w.Set(a)
		if pol == ApplyEager {
			if !errors.Is(err, alloc.ErrNoSlot) || !strings.Contains(err.Error(), fmt.Sprintf("thread %d", victim)) {
				t.Fatalf("Set with thread %d full = %v, want ErrNoSlot naming the thread", victim, err)
			}
			// Threads 0 and 1 were written (DR0, DR7) and restored.
			if got := p.Writes() - w0; got < 2*victim+1 {
				t.Errorf("only %d writes: the threads before the victim were not written", got)
			}
			pwWantRegs(t, p, w, [NumSlots]uint64{}, 0)
			pwSharedWrites(t, p, 0, 20, 0, false)
		} else {
			if err != nil {
				t.Fatal(err)
			}
			r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 0, Count: 20, Shared: true})
			for i := 0; i < n; i++ {
				want := [NumSlots]uint64{20}
				if i == victim {
					want = [NumSlots]uint64{}
				}
				ptWantTraps(t, r, i, want)
			}
			if err := w.Err(); !errors.Is(err, alloc.ErrNoSlot) {
				t.Errorf("Err = %v, want ErrNoSlot from thread %d's resume", err, victim)
			}
		}
		// Free the slots: now every thread takes the watchpoint.
		for _, fd := range *fds {
			unix.Close(fd)
		}
		*fds = nil
		if pol == ApplyEager {
			if _, err := w.Set(a); err != nil {
				t.Fatal(err)
			}
		} else {
			// Re-apply: a new change clears the failure marks.
			if err := w.Modify(&bp, Attr{Addr: h.SharedVarAddr(0), Len: 4, Type: Write}); err != nil {
				t.Fatal(err)
			}
		}
		pwSharedWrites(t, p, 0, 20, 0, true)
	})
}

// TestProcessSpawnInherits: threads started after the watchpoint was set
// get it before they first run, and trap like the others.
func TestProcessSpawnInherits(t *testing.T) {
	forApplyModes(t, 3, 4, func(t *testing.T, pol ApplyMode, p *Ptrace, w *ProcessWriter) {
		h := p.Hello()
		a := Attr{Addr: h.SharedVarAddr(2), Len: 8, Type: Write}
		bp, err := w.Set(a)
		if err != nil {
			t.Fatal(err)
		}
		pwSharedWrites(t, p, 2, 10, 0, true)
		tids, err := p.Spawn(3)
		if err != nil {
			t.Fatal(err)
		}
		if len(tids) != 3 || p.Threads() != 6 {
			t.Fatalf("Spawn(3) = %v, Threads = %d; want 3 new of 6", tids, p.Threads())
		}
		pwSharedWrites(t, p, 2, 15, 0, true)
		pwWantRegs(t, p, w, [NumSlots]uint64{a.Addr}, DR7(0).WithSlot(0, a))
		if err := w.Clear(bp); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Spawn(1); err != nil {
			t.Fatal(err)
		}
		pwSharedWrites(t, p, 2, 15, 0, false)
		pwWantRegs(t, p, w, [NumSlots]uint64{}, 0)
		if _, err := p.Spawn(1); !errors.Is(err, alloc.ErrInvalid) {
			t.Errorf("Spawn beyond the spare threads = %v, want ErrInvalid", err)
		}
		if err := w.Err(); err != nil {
			t.Error(err)
		}
	})
}

// TestProcessRunning sets a watchpoint on threads that are running bursts
// and stopping at checkpoints: every write after a thread was armed traps.
// Under ApplyLazy a thread is armed at a checkpoint stop, between two
// operations, so the count is exact; under ApplyEager it is armed wherever
// PTRACE_INTERRUPT stopped it, possibly between its counter update and its
// store, so one trapped write may have been counted before it was armed.
func TestProcessRunning(t *testing.T) {
	const n = 8
	forApplyModes(t, n, 0, func(t *testing.T, pol ApplyMode, p *Ptrace, w *ProcessWriter) {
		h := p.Hello()
		armedAt := make([]uint64, n)
		buf := make([]uint64, n)
		w.OnApplied = func(i int) {
			if err := p.readOps(buf); err == nil {
				armedAt[i] = buf[i]
			}
		}
		cmd := tracee.Command{Op: tracee.OpWrite, Var: 3, Shared: true, Burst: 16, Pause: 200 * time.Microsecond, Checkpoint: true}
		if err := p.Start(cmd); err != nil {
			t.Fatal(err)
		}
		if err := p.Serve(func() bool { return false }, 5*time.Millisecond, 20*time.Microsecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Serve = %v, want its deadline", err)
		}
		bp, err := w.Set(Attr{Addr: h.SharedVarAddr(3), Len: 8, Type: Write})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Serve(func() bool { return w.PendingNow() == 0 }, 10*time.Second, 20*time.Microsecond); err != nil {
			t.Fatal(err)
		}
		p.Serve(func() bool { return false }, 20*time.Millisecond, 20*time.Microsecond)
		if err := p.Halt(); err != nil {
			t.Fatal(err)
		}
		r, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		end := make([]uint64, n)
		if err := p.ReadOps(end); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			after, traps := end[i]-armedAt[i], r.Traps[i][bp.Index]
			ok := traps == after || (pol == ApplyEager && traps == after+1)
			if !ok || after == 0 {
				t.Errorf("thread %d: %d writes after it was armed, %d traps", i, after, traps)
			}
			if r.Checkpoints[i] == 0 {
				t.Errorf("thread %d: no checkpoint stops", i)
			}
		}
		if err := w.Clear(bp); err != nil {
			t.Fatal(err)
		}
		pwSharedWrites(t, p, 3, 10, 0, false)
		pwWantRegs(t, p, w, [NumSlots]uint64{}, 0)
	})
}

func TestProcessBadOptions(t *testing.T) {
	if _, err := StartPtrace(PtraceOptions{Threads: 2, Spare: -1}); !errors.Is(err, alloc.ErrInvalid) || !strings.Contains(err.Error(), "Spare") {
		t.Errorf("Spare = -1: %v, want ErrInvalid naming Spare", err)
	}
	if err := (tracee.Command{Op: tracee.OpWrite, Pause: time.Millisecond}).Validate(); err == nil || !strings.Contains(err.Error(), "Burst") {
		t.Errorf("Pause without Burst: %v, want an error naming Burst", err)
	}
}

// TestProcessModifyResumeNoAllocs checks that the steady-state cycle of the
// apply benchmark (Modify, then resume every thread and wait for it to
// park) allocates nothing on the tracer thread, for both policies, and
// that the cycle still does its work: each Modify writes DR0 of every
// thread (at the change or at the resume) and the last one is in place.
func TestProcessModifyResumeNoAllocs(t *testing.T) {
	const n = 2
	forApplyModes(t, n, 0, func(t *testing.T, pol ApplyMode, p *Ptrace, w *ProcessWriter) {
		h := p.Hello()
		attrs := [2]Attr{
			{Addr: h.SharedVarAddr(0), Len: 8, Type: Write},
			{Addr: h.SharedVarAddr(1), Len: 8, Type: Write},
		}
		none := tracee.Command{Op: tracee.OpNone}
		var (
			bp      ProcessBreakpoint
			k       int
			allocs  float64
			w0      uint64
			loopErr error
		)
		cycle := func() {
			if loopErr != nil {
				return
			}
			k ^= 1
			if loopErr = w.Modify(&bp, attrs[k]); loopErr != nil {
				return
			}
			r, err := p.Run(none)
			if err != nil {
				loopErr = err
				return
			}
			if r.TotalTraps(0) != 0 || r.OtherTraps != 0 || r.Signals != 0 {
				loopErr = fmt.Errorf("resume round: %d traps, %d stray SIGTRAPs, %d signals", r.TotalTraps(0), r.OtherTraps, r.Signals)
			}
		}
		const runs = 20
		ptDo(t, p, func() error {
			var err error
			if bp, err = w.Set(attrs[0]); err != nil {
				return err
			}
			if _, err := p.Run(none); err != nil {
				return err
			}
			w0 = p.Writes()
			// AllocsPerRun calls cycle once more to warm up.
			allocs = testing.AllocsPerRun(runs, cycle)
			return loopErr
		})
		if allocs != 0 {
			t.Errorf("Modify + resume cycle: %v allocs/op, want 0", allocs)
		}
		// Same length and type: each Modify changes only DR0.
		if got, want := p.Writes()-w0, uint64((runs+1)*n); got != want {
			t.Errorf("%d cycles wrote %d registers, want %d (DR0 of each thread per cycle)", runs+1, got, want)
		}
		if w.Pending() != 0 {
			t.Errorf("pending = %d after every thread resumed", w.Pending())
		}
		pwWantRegs(t, p, w, [NumSlots]uint64{attrs[k].Addr}, DR7(0).WithSlot(0, attrs[k]))
		pwSharedWrites(t, p, k, 20, 0, true)
	})
}

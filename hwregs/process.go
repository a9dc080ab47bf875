package hwregs

import (
	"errors"
	"fmt"

	"bpbench/alloc"
	"bpbench/internal/enum"
)

// ApplyMode says when a ProcessWriter writes a process-wide change into
// the registers of each thread.
type ApplyMode uint8

const (
	// ApplyEager stops every running thread (PTRACE_INTERRUPT), writes every
	// thread's registers, and resumes the threads it stopped, before the
	// change returns; a failure on any thread rolls back the others.
	ApplyEager ApplyMode = iota
	// ApplyLazy records the change and writes a thread's registers just before
	// that thread next resumes from a ptrace stop (a trap, a checkpoint, a
	// resume of parked threads), skipping threads whose registers already
	// match (rr's fix for rr#3463, GDB's x86 low_prepare_to_resume). A
	// running thread cannot be written, so until its next stop it runs
	// unwatched: the blind window is as long as the gap between its stops.
	ApplyLazy
	numApplyModes
)

// ApplyModes lists both modes, for benchmarks that sweep them.
var ApplyModes = []ApplyMode{ApplyEager, ApplyLazy}

// applyModeNames are the names of the ApplyMode values, for String and
// ParseApplyMode.
var applyModeNames = [...]string{ApplyEager: "eager", ApplyLazy: "lazy"}

// String returns "eager" or "lazy", the names ParseApplyMode accepts.
func (p ApplyMode) String() string { return enum.Name("ApplyMode", applyModeNames[:], p) }

// ParseApplyMode returns the mode named s; any other name is an error
// wrapping alloc.ErrInvalid.
func ParseApplyMode(s string) (ApplyMode, error) {
	if p, ok := enum.Parse[ApplyMode](applyModeNames[:], s); ok {
		return p, nil
	}
	return 0, fmt.Errorf("%w: apply mode %q: unknown (want \"eager\" or \"lazy\")", alloc.ErrInvalid, s)
}

// ErrWriterBusy: the Ptrace already has a ProcessWriter.
var ErrWriterBusy = errors.New("ptrace backend already has a ProcessWriter")

// ProcessBreakpoint is a breakpoint a ProcessWriter applies to every thread
// of the tracee: the same debug register Index and the same Attr in each.
type ProcessBreakpoint struct {
	Index int
	Attr  Attr
	gen   uint32
}

// ProcessWriter applies breakpoints to a whole traced process, as a
// debugger's "watch" does: every thread gets the same slot index and
// registers, threads started later (Ptrace.Spawn) get them before they
// first run, and, under ApplyEager, a kernel refusal on any thread (ENOSPC when
// perf events hold its slots) rolls back the threads already written, so
// the change happens on all threads or on none (GDB's insert on a copy).
//
// The slot is chosen in one process-wide mirror, lowest free index first,
// as GDB's x86_debug_reg_state per process does; the kernel admits each
// thread's register write. Each thread has its own mirror of DR0-DR3 and
// DR7, so only registers that differ are written (WriteChanged), and a
// clear zeroes the address as well as the enable bit, so that no thread
// keeps a stale address.
//
// All state lives on the tracer thread: every method moves there (or runs
// at once inside Ptrace.Do), and the resume hook runs there too.
type ProcessWriter struct {
	p    *Ptrace
	mode ApplyMode
	regs *Writer // only its register-writing half (writeState) is used

	want    regState
	used    [NumSlots]bool
	gen     [NumSlots]uint32
	threads []*mirror
	failed  []bool
	orig    []regState // scratch for rollback, one per thread
	stopped []int      // scratch for ApplyEager: the threads a change stopped
	pending int
	lazyErr error

	// OnApplied, if set, runs on the tracer thread right after thread i's
	// registers reach the process's wanted state (not for threads that
	// already had it). Benchmarks time the blind window with it; tests read
	// the thread's counters.
	OnApplied func(i int)
}

// NewProcessWriter returns a ProcessWriter over every current and future
// worker thread of p, reading each thread's registers into its mirror.
// Only one ProcessWriter may use a Ptrace at a time; Close detaches it.
func NewProcessWriter(p *Ptrace, mode ApplyMode) (*ProcessWriter, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: NewProcessWriter: nil Ptrace", alloc.ErrInvalid)
	}
	if mode >= numApplyModes {
		return nil, fmt.Errorf("%w: NewProcessWriter: undefined %v", alloc.ErrInvalid, mode)
	}
	w := &ProcessWriter{p: p, mode: mode, regs: &Writer{be: p}}
	err := p.on(func() error {
		if p.resumeHook != nil {
			return fmt.Errorf("hwregs: NewProcessWriter: %w", ErrWriterBusy)
		}
		if err := w.track(); err != nil {
			return err
		}
		p.setResumeHook(w.beforeResume)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Close detaches w from its Ptrace; the registers stay as they are.
func (w *ProcessWriter) Close() error {
	return w.p.on(func() error {
		w.p.setResumeHook(nil)
		return nil
	})
}

// Mode returns the writer's apply mode.
func (w *ProcessWriter) Mode() ApplyMode { return w.mode }

// track adds mirrors for threads the Ptrace gained since the last call,
// reading their registers: a new thread starts with its debug registers
// cleared (the kernel does not copy them on clone), but reading costs one
// syscall per register only once per thread and keeps the mirror honest.
func (w *ProcessWriter) track() error {
	for i := len(w.threads); i < len(w.p.tids); i++ {
		m := &mirror{t: Target{Task: i, CPU: alloc.AnyCPU}}
		for r := 0; r < NumSlots; r++ {
			v, err := w.p.ReadDR(m.t, r)
			if err != nil {
				return fmt.Errorf("hwregs: process writer: reading DR%d of thread %d: %w", r, i, err)
			}
			m.cur.DR[r] = v
		}
		v, err := w.p.ReadDR(m.t, RegDR7)
		if err != nil {
			return fmt.Errorf("hwregs: process writer: reading DR7 of thread %d: %w", i, err)
		}
		m.cur.DR7 = DR7(v)
		w.threads = append(w.threads, m)
		w.failed = append(w.failed, false)
		w.orig = append(w.orig, regState{})
		if m.cur != w.want {
			w.pending++
		}
	}
	if cap(w.stopped) < len(w.threads) {
		w.stopped = make([]int, 0, len(w.threads))
	}
	return nil
}

// beforeResume is the Ptrace resume hook: it brings thread i up to the
// wanted registers. Under ApplyEager this only happens for new threads (and
// threads an earlier rollback could not restore); under ApplyLazy it is where
// every change is written.
func (w *ProcessWriter) beforeResume(i int) {
	if i >= len(w.threads) {
		if err := w.track(); err != nil {
			w.noteLazy(err)
			return
		}
	}
	m := w.threads[i]
	if m.cur == w.want || w.failed[i] {
		return
	}
	if err := w.regs.writeState(m, w.want, planChanged); err != nil {
		// The thread runs on with what it has; retrying at every stop
		// would repeat a refusal the kernel keeps making.
		w.failed[i] = true
		w.pending-- // settled, unarmed: Err reports it
		w.noteLazy(fmt.Errorf("hwregs: process writer: thread %d at resume: %w", i, err))
		return
	}
	w.pending--
	if w.OnApplied != nil {
		w.OnApplied(i)
	}
}

func (w *ProcessWriter) noteLazy(err error) {
	if w.lazyErr == nil {
		w.lazyErr = err
	}
}

// Err returns the first failure of a deferred write (ApplyLazy, or a new
// thread's first resume): that thread runs without the change. A later
// change that succeeds on every thread clears the failure marks but not
// the error.
func (w *ProcessWriter) Err() error {
	var err error
	w.p.on(func() error { err = w.lazyErr; return nil })
	return err
}

// Pending returns how many threads' registers still differ from the
// process's wanted state and may still be written (ApplyLazy: not yet resumed
// since the change); threads whose write failed are not counted (see Err).
func (w *ProcessWriter) Pending() int {
	var n int
	w.p.on(func() error { n = w.pending; return nil })
	return n
}

// PendingNow is Pending for callers already on the tracer thread (inside
// Do or a Serve condition), without the hop.
func (w *ProcessWriter) PendingNow() int { return w.pending }

// Set applies a to every thread in the lowest slot free process-wide.
// Errors: alloc.ErrNoSlot when the process already uses all four
// registers, or (ApplyEager) when the kernel refuses a thread's write, after
// every thread was rolled back; alloc.ErrInvalid for a bad a.
func (w *ProcessWriter) Set(a Attr) (ProcessBreakpoint, error) {
	if err := a.Validate(); err != nil {
		return ProcessBreakpoint{}, fmt.Errorf("hwregs: process set %v: %w", a, err)
	}
	if w.p.onTracer() {
		return w.set(a)
	}
	var bp ProcessBreakpoint
	err := w.p.on(func() (err error) { bp, err = w.set(a); return err })
	return bp, err
}

// set is Set on the tracer thread.
func (w *ProcessWriter) set(a Attr) (ProcessBreakpoint, error) {
	idx := -1
	for i, u := range w.used {
		if !u {
			idx = i
			break
		}
	}
	if idx < 0 {
		return ProcessBreakpoint{}, fmt.Errorf("hwregs: process set %v: all %d registers in use: %w", a, NumSlots, alloc.ErrNoSlot)
	}
	next := w.want
	next.DR[idx] = a.Addr
	next.DR7 = next.DR7.WithSlot(idx, a)
	if err := w.change(next); err != nil {
		return ProcessBreakpoint{}, fmt.Errorf("hwregs: process set %v at DR%d: %w", a, idx, err)
	}
	w.used[idx] = true
	w.gen[idx]++
	return ProcessBreakpoint{Index: idx, Attr: a, gen: w.gen[idx]}, nil
}

// held checks that bp is live; it runs on the tracer thread.
func (w *ProcessWriter) held(op string, bp ProcessBreakpoint) error {
	if bp.Index < 0 || bp.Index >= NumSlots || bp.gen == 0 || !w.used[bp.Index] || w.gen[bp.Index] != bp.gen {
		return fmt.Errorf("hwregs: process %s DR%d: %w (never set, or already cleared)", op, bp.Index, alloc.ErrNotReserved)
	}
	return nil
}

// Modify changes bp to a on every thread, in place: the same register.
// On failure bp and every thread's registers stay as they were.
func (w *ProcessWriter) Modify(bp *ProcessBreakpoint, a Attr) error {
	if err := a.Validate(); err != nil {
		return fmt.Errorf("hwregs: process modify %v: %w", bp.Attr, err)
	}
	if w.p.onTracer() {
		return w.modify(bp, a)
	}
	return w.p.on(func() error { return w.modify(bp, a) })
}

// modify is Modify on the tracer thread.
func (w *ProcessWriter) modify(bp *ProcessBreakpoint, a Attr) error {
	if err := w.held("modify", *bp); err != nil {
		return err
	}
	next := w.want
	next.DR[bp.Index] = a.Addr
	next.DR7 = next.DR7.WithSlot(bp.Index, a)
	if err := w.change(next); err != nil {
		return fmt.Errorf("hwregs: process modify %v to %v at DR%d: %w", bp.Attr, a, bp.Index, err)
	}
	bp.Attr = a
	return nil
}

// Clear removes bp from every thread: its DR7 enable bits and its address
// register are zeroed. Clearing twice is an error wrapping
// alloc.ErrNotReserved.
func (w *ProcessWriter) Clear(bp ProcessBreakpoint) error {
	if w.p.onTracer() {
		return w.clear(bp)
	}
	return w.p.on(func() error { return w.clear(bp) })
}

// clear is Clear on the tracer thread.
func (w *ProcessWriter) clear(bp ProcessBreakpoint) error {
	if err := w.held("clear", bp); err != nil {
		return err
	}
	next := w.want
	next.DR[bp.Index] = 0
	next.DR7 = next.DR7.WithoutSlot(bp.Index)
	if err := w.change(next); err != nil {
		return fmt.Errorf("hwregs: process clear %v at DR%d: %w", bp.Attr, bp.Index, err)
	}
	w.used[bp.Index] = false
	return nil
}

// change moves the process's wanted registers to next under the policy.
// It runs on the tracer thread.
func (w *ProcessWriter) change(next regState) error {
	if err := w.track(); err != nil {
		return err
	}
	if w.mode == ApplyLazy {
		w.setWant(next)
		return nil
	}
	// ApplyEager: every thread must be stopped to be written. Threads already
	// stopped (parked, or stopped by the caller) stay stopped afterwards.
	stopped := w.stopped[:0]
	for i, s := range w.p.state {
		if s == ptRunning {
			stopped = append(stopped, i)
		}
	}
	w.stopped = stopped // reused: a change per stop must not allocate
	if len(stopped) > 0 {
		if err := w.p.stopAll(); err != nil {
			return err
		}
	}
	err := w.writeAll(next)
	if err == nil {
		w.setWant(next)
	}
	for _, i := range stopped {
		if w.p.state[i] == ptInterrupted {
			if cerr := w.p.cont(i, 0); cerr != nil {
				return errors.Join(err, cerr)
			}
		}
	}
	return err
}

// setWant makes next the wanted state and recounts the threads behind it.
func (w *ProcessWriter) setWant(next regState) {
	w.want = next
	w.pending = 0
	for i, m := range w.threads {
		w.failed[i] = false
		if m.cur != next {
			w.pending++
		}
	}
}

// writeAll writes next into every stopped thread, in thread order; if one
// write fails it restores every thread written so far, the failing one
// included, and returns the error (joined with any restore failure).
func (w *ProcessWriter) writeAll(next regState) error {
	for i, m := range w.threads {
		w.orig[i] = m.cur
		if w.p.state[i] == ptGone || m.cur == next {
			continue
		}
		if err := w.regs.writeState(m, next, planChanged); err != nil {
			err = fmt.Errorf("thread %d (tid %d): %w", i, w.p.tids[i], err)
			for j := i; j >= 0; j-- {
				if w.threads[j].cur == w.orig[j] || w.p.state[j] == ptGone {
					continue
				}
				if rerr := w.regs.writeState(w.threads[j], w.orig[j], planChanged); rerr != nil {
					err = errors.Join(err, fmt.Errorf("rolling back thread %d: %w", j, rerr))
				}
			}
			return err
		}
		if w.OnApplied != nil {
			w.OnApplied(i)
		}
	}
	return nil
}

// ThreadRegs returns thread i's DR0-DR3 and DR7 as the writer last wrote
// or read them (its mirror). Tests compare it with ReadDR.
func (w *ProcessWriter) ThreadRegs(i int) (dr [NumSlots]uint64, dr7 DR7, err error) {
	err = w.p.on(func() error {
		if i < 0 || i >= len(w.threads) {
			return fmt.Errorf("%w: ThreadRegs(%d): thread out of range [0,%d)", alloc.ErrInvalid, i, len(w.threads))
		}
		dr, dr7 = w.threads[i].cur.DR, w.threads[i].cur.DR7
		return nil
	})
	return dr, dr7, err
}

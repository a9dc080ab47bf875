package alloc

import (
	"errors"
	"fmt"
	"sync"

	"bpbench/internal/enum"
)

// Owner says which kernel interface created a breakpoint: ptrace (a
// debugger) or perf_event_open (a profiler or a tool like `perf record`).
type Owner uint8

const (
	// Ptrace is a breakpoint a debugger set through ptrace: always bound to
	// one task on every CPU.
	Ptrace Owner = iota + 1
	// Perf is a breakpoint created with perf_event_open: task, task-on-CPU
	// or CPU-bound.
	Perf
)

// ownerNames are the names of the Owner values, for String.
var ownerNames = [...]string{Ptrace: "ptrace", Perf: "perf"}

// String returns "ptrace" or "perf".
func (o Owner) String() string { return enum.Name("Owner", ownerNames[:], o) }

// ErrExcluded is wrapped, together with ErrNoSlot (the kernel answered
// ENOSPC), by an Exclusion refusal: the range overlaps a live breakpoint
// of the other owner kind. The message names the conflicting breakpoint.
var ErrExcluded = errors.New("overlaps a breakpoint of the other owner (ptrace/perf exclusion)")

// exclGranule is the alignment the old powerpc code widened both ranges
// to before comparing them (HW_BREAKPOINT_SIZE, one doubleword): two
// breakpoints in the same doubleword conflict even if their bytes do not.
const exclGranule = 8

// exclEntry is one tracked breakpoint, the old code's struct breakpoint.
type exclEntry struct {
	slot       Slot
	owner      Owner
	start, end uint64 // [start, end), widened to exclGranule
}

// Exclusion is the ptrace/perf exclusion that powerpc enforced from 2020
// until 2023 (arch/powerpc/kernel/hw_breakpoint.c, arch_reserve_bp_slot,
// removed by "powerpc/hw_breakpoint: Remove ptrace/perf exclusion"), as a
// decorator around any Allocator. A breakpoint whose widened address range
// overlaps one of the other owner kind is refused:
//
//   - ptrace (task t, every CPU): refused by an overlapping perf
//     breakpoint on any CPU's list (CPU-bound ones, and task-on-one-CPU
//     ones of any task, as all_cpu_bps_check did), or by an overlapping
//     perf breakpoint of task t (same_task_bps_check);
//   - perf on task t, every CPU: refused by an overlapping ptrace
//     breakpoint of task t;
//   - perf on task t, CPU c: the same check; it is then listed both as a
//     task and as a CPU breakpoint;
//   - perf CPU-bound on CPU c: refused by an overlapping ptrace breakpoint
//     of any task (all_task_bps_check walks every task breakpoint).
//
// As in the kernel, every check walks a global list of all task
// breakpoints (and each CPU's list) under one lock, nr_bp_mutex there: the
// cost of a reservation grows with the number of live task breakpoints,
// which is what the exclusion experiment measures. The lock is held across
// the inner Reserve so the check and the admission are one step and no
// conflicting pair can slip in between.
type Exclusion struct {
	inner Allocator

	mu    sync.Mutex
	tasks []exclEntry       // task_bps: every task breakpoint (perf task-on-CPU ones too)
	cpus  [][]exclEntry     // cpu_bps: perf breakpoints bound to a CPU, indexed by CPU
	plain map[Slot]struct{} // slots reserved through Reserve, not tracked
}

// NewExclusion returns an Exclusion that admits through inner.
func NewExclusion(inner Allocator) *Exclusion {
	if inner == nil {
		panic("alloc: NewExclusion needs a non-nil inner allocator")
	}
	return &Exclusion{inner: inner, plain: map[Slot]struct{}{}}
}

// Inner returns the decorated allocator.
func (e *Exclusion) Inner() Allocator { return e.inner }

// exclRange widens [addr, addr+length) to whole granules.
func exclRange(addr uint64, length int) (start, end uint64) {
	start = addr &^ (exclGranule - 1)
	end = (addr + uint64(length) + exclGranule - 1) &^ (exclGranule - 1)
	return start, end
}

// conflicts reports whether b, of owner o, may not coexist with a:
// can_co_exist's negation.
func (a *exclEntry) conflicts(o Owner, start, end uint64) bool {
	return a.owner != o && a.start < end && start < a.end
}

// ReserveRange reserves a slot for a breakpoint on [addr, addr+length)
// created by owner, unless it overlaps a live breakpoint of the other
// owner kind as the type comment describes; then the error wraps both
// ErrNoSlot and ErrExcluded and names the conflicting breakpoint. A ptrace
// breakpoint must be a task breakpoint on every CPU (ErrInvalid
// otherwise), and length must be at least 1.
func (e *Exclusion) ReserveRange(req Request, owner Owner, addr uint64, length int) (Slot, error) {
	switch {
	case owner != Ptrace && owner != Perf:
		return Slot{}, fmt.Errorf("%w: owner = %v: want Ptrace or Perf", ErrInvalid, owner)
	case length < 1:
		return Slot{}, fmt.Errorf("%w: length = %d: need >= 1", ErrInvalid, length)
	case addr+uint64(length) < addr:
		return Slot{}, fmt.Errorf("%w: addr = %#x, length = %d: range wraps around", ErrInvalid, addr, length)
	case owner == Ptrace && (req.Task == NoTask || req.CPU != AnyCPU):
		return Slot{}, fmt.Errorf("%w: %v: a ptrace breakpoint belongs to one task on every CPU (Task >= 0, CPU = AnyCPU)", ErrInvalid, req)
	}
	start, end := exclRange(addr, length)

	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.conflict(req, owner, start, end); c != nil {
		return Slot{}, fmt.Errorf("%w: %w: %v %v [%#x, %#x) vs live %v %v [%#x, %#x)",
			ErrNoSlot, ErrExcluded, owner, req, start, end, c.owner, c.slot.Request(), c.start, c.end)
	}
	s, err := e.inner.Reserve(req)
	if err != nil {
		return Slot{}, err
	}
	ent := exclEntry{slot: s, owner: owner, start: start, end: end}
	if req.Task != NoTask {
		e.tasks = append(e.tasks, ent)
	}
	if req.CPU != AnyCPU {
		for len(e.cpus) <= req.CPU {
			e.cpus = append(e.cpus, nil)
		}
		e.cpus[req.CPU] = append(e.cpus[req.CPU], ent)
	}
	return s, nil
}

// conflict returns the first live breakpoint the new one may not coexist
// with, or nil, following arch_reserve_bp_slot. Called with e.mu held.
func (e *Exclusion) conflict(req Request, owner Owner, start, end uint64) *exclEntry {
	if owner == Ptrace {
		for cpu := range e.cpus { // all_cpu_bps_check
			l := e.cpus[cpu]
			for i := range l {
				if l[i].conflicts(owner, start, end) {
					return &l[i]
				}
			}
		}
	}
	if req.Task == NoTask { // all_task_bps_check
		for i := range e.tasks {
			if e.tasks[i].conflicts(owner, start, end) {
				return &e.tasks[i]
			}
		}
		return nil
	}
	for i := range e.tasks { // same_task_bps_check
		if e.tasks[i].slot.req.Task == req.Task && e.tasks[i].conflicts(owner, start, end) {
			return &e.tasks[i]
		}
	}
	return nil
}

// Reserve reserves a slot without an address range, like the old code's
// breakpoints at kernel addresses: it is never refused by, and never
// refuses, another breakpoint on exclusion grounds.
func (e *Exclusion) Reserve(req Request) (Slot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.inner.Reserve(req)
	if err != nil {
		return Slot{}, err
	}
	e.plain[s] = struct{}{}
	return s, nil
}

// Release releases s and removes it from the lists (task_bps_remove and
// cpu_bps_remove: linear searches, as in the kernel). A slot not held is
// an error wrapping ErrNotReserved.
func (e *Exclusion) Release(s Slot) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.plain[s]; ok {
		if err := e.inner.Release(s); err != nil {
			return err
		}
		delete(e.plain, s)
		return nil
	}
	ti, ci := -1, -1
	if s.req.Task != NoTask {
		ti = indexOf(e.tasks, s)
	}
	if s.req.CPU != AnyCPU && s.req.CPU < len(e.cpus) {
		ci = indexOf(e.cpus[s.req.CPU], s)
	}
	if ti < 0 && ci < 0 {
		return errExclNotHeld
	}
	if err := e.inner.Release(s); err != nil {
		return err
	}
	if ti >= 0 {
		e.tasks = removeAt(e.tasks, ti)
	}
	if ci >= 0 {
		e.cpus[s.req.CPU] = removeAt(e.cpus[s.req.CPU], ci)
	}
	return nil
}

// errExclNotHeld is the release of a slot the lists do not hold, built
// once: a stale release is a hot path under contention and must not
// allocate (alloctest's allocs check), so it cannot name the slot.
var errExclNotHeld = fmt.Errorf("alloc: exclusion: release of a slot not held: %w", ErrNotReserved)

// InUse reports whether the inner allocator holds any slot.
func (e *Exclusion) InUse() bool { return e.inner.InUse() }

// Tracked returns how many breakpoints the exclusion lists hold (a perf
// breakpoint on one task and one CPU counts once).
func (e *Exclusion) Tracked() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.tasks)
	for _, l := range e.cpus {
		for i := range l {
			if l[i].slot.req.Task == NoTask {
				n++
			}
		}
	}
	return n
}

func indexOf(l []exclEntry, s Slot) int {
	for i := range l {
		if l[i].slot == s {
			return i
		}
	}
	return -1
}

// removeAt deletes l[i] by moving the last entry into its place: the order
// of the list carries no meaning.
func removeAt(l []exclEntry, i int) []exclEntry {
	last := len(l) - 1
	l[i] = l[last]
	l[last] = exclEntry{}
	return l[:last]
}

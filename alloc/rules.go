package alloc

import (
	"fmt"
	"math/bits"
	"strconv"
	"sync/atomic"
)

// admits is the one admission rule every strategy applies, on every CPU a
// breakpoint can run on: the CPU-bound slots there, the task-side term and
// the new breakpoint itself must fit in the pool (kernel/events/hw_breakpoint.c,
// max_bp_pinned_slots and __reserve_bp_slot: "max_pinned_slots > slots" is
// -ENOSPC). The task-side term is max over tasks of pinned_t(c) for a
// CPU-bound request and the requesting task's own pinned_t(c) for a task
// request; another task never counts against a task request.
func admits(cpuPinned, taskPinned, n int) bool {
	return cpuPinned+taskPinned+1 <= n
}

// lowestFree returns the lowest register index below n whose bit is clear in
// used, or -1 when all n are taken. Lowest first keeps indexes the same on
// every strategy, which the differential test relies on.
func lowestFree(used uint32, n int) int {
	free := ^used & (uint32(1)<<n - 1)
	if free == 0 {
		return -1
	}
	return bits.TrailingZeros32(free)
}

// overflowRaw encodes overflow position pos (a NoIndex slot) as a raw index;
// raw indexes >= 0 are real registers.
func overflowRaw(pos int) int { return -1 - pos }

// overflowPos is the inverse of overflowRaw.
func overflowPos(raw int) int { return -1 - raw }

// poolIndex returns the array index of a request's pool.
func (c Config) poolIndex(k Kind) int { return int(c.Pool(k)) }

// requestOK is ValidateRequest's verdict without building an error, small
// enough to inline on the hot paths.
func (c Config) requestOK(r Request) bool {
	return r.Kind < numKinds && r.Task >= NoTask && r.CPU >= AnyCPU && r.CPU < c.CPUs &&
		(r.Task != NoTask || r.CPU != AnyCPU)
}

// validate is ValidateRequest with the common, valid case inlined.
func (c Config) validate(r Request) error {
	if c.requestOK(r) {
		return nil
	}
	return c.ValidateRequest(r)
}

// checkRelease rejects slots that cannot belong to any allocator for c: the
// zero Slot, or a slot whose request or index is out of range. A slot that
// could be ours but is not held is the strategy's call (ErrNotReserved).
func (c Config) checkRelease(s Slot) error {
	if !s.Valid() {
		return errZeroSlot
	}
	if !c.requestOK(s.req) {
		return fmt.Errorf("release of %v: %w", s.req, ErrNotReserved)
	}
	raw, n := int(s.index), c.PoolSize(s.req.Kind)
	if raw >= n || (raw < 0 && (s.req.IsCPUBound() || s.req.CPU != AnyCPU || overflowPos(raw) >= MaxSlots)) {
		return fmt.Errorf("release of %v index %d: %w", s.req, raw, ErrNotReserved)
	}
	return nil
}

// errZeroSlot is built once: releasing the zero Slot is a common bug in a
// caller's cleanup path and should not allocate each time it happens.
var errZeroSlot = fmt.Errorf("release of the zero Slot: %w", ErrNotReserved)

// targetError is the refusal of a reservation (ErrNoSlot) or the failed
// release of a slot not held (ErrNotReserved) for one target: a CPU, a task
// on one CPU, or a task on every CPU, in one kind's pool. Its values live in
// an allocator's errTable, built once, because refusals are the hot path of
// an allocator under an aggressive competitor and a fmt.Errorf per refusal
// cost allocations there. The price is that a task's error names the
// target's shape but not the task id, which the caller has anyway.
type targetError struct {
	cpu     int32 // the CPU, or AnyCPU
	task    bool  // a task breakpoint rather than a CPU-bound one
	kind    Kind
	release bool // ErrNotReserved rather than ErrNoSlot
}

// Error describes the target the way Request.String does, with "task=some"
// standing for the task id the error does not keep.
func (e *targetError) Error() string {
	t, c := "none", "any"
	if e.task {
		t = "some"
	}
	if e.cpu != AnyCPU {
		c = strconv.Itoa(int(e.cpu))
	}
	if e.release {
		return fmt.Sprintf("release of a task=%s/cpu=%s/%v slot: %v", t, c, e.kind, ErrNotReserved)
	}
	return fmt.Sprintf("task=%s/cpu=%s/%v: %v", t, c, e.kind, ErrNoSlot)
}

// Unwrap returns ErrNoSlot or ErrNotReserved.
func (e *targetError) Unwrap() error {
	if e.release {
		return ErrNotReserved
	}
	return ErrNoSlot
}

// errTable holds every targetError of one Config, indexed by target, kind
// and outcome: 8 bytes per entry, (2*CPUs+1)*4 entries.
type errTable struct {
	cpus int
	e    []targetError
}

func newErrTable(cfg Config) errTable {
	t := errTable{cpus: cfg.CPUs, e: make([]targetError, (2*cfg.CPUs+1)*int(numKinds)*2)}
	for i := range t.e {
		target := i / (int(numKinds) * 2)
		e := &t.e[i]
		e.kind = Kind(i / 2 % int(numKinds))
		e.release = i%2 == 1
		e.task = target >= cfg.CPUs
		e.cpu = int32(target % cfg.CPUs)
		if target == 2*cfg.CPUs {
			e.cpu = AnyCPU
		}
	}
	return t
}

// at returns the entry of a valid request r (Config.requestOK).
func (t *errTable) at(r Request, release bool) *targetError {
	target := r.CPU
	if r.Task != NoTask {
		target = t.cpus + r.CPU
		if r.CPU == AnyCPU {
			target = 2 * t.cpus
		}
	}
	i := (target*int(numKinds) + int(r.Kind)) * 2
	if release {
		i++
	}
	return &t.e[i]
}

// noSlot is the refusal of a valid request r; it does not allocate.
func (t *errTable) noSlot(r Request) error { return t.at(r, false) }

// stale is the error for a release of a slot for valid request r that is
// not held (double or stale release); it does not allocate.
func (t *errTable) stale(r Request) error { return t.at(r, true) }

// histogram is the kernel's bp_slots_histogram: count[k] is the number of
// targets holding k+1 slots, so its maximum is found in O(pool size)
// whatever the number of targets. Counts are atomic because the linux
// strategy updates them under a shared (read) lock, as the kernel does.
type histogram struct {
	count [MaxSlots]atomic.Int32
}

// add moves one target from holding old slots to old+delta
// (bp_slots_histogram_add). Unlike the kernel, which only scans under the
// write lock, it increments the new bucket before decrementing the old one,
// so a concurrent lock-free scan (cas) never misses the target.
func (h *histogram) add(old, delta int) {
	if nw := old + delta; nw > 0 {
		h.count[nw-1].Add(1)
	}
	if old > 0 {
		h.count[old-1].Add(-1)
	}
}

// max returns the largest number of slots any target holds
// (bp_slots_histogram_max).
func (h *histogram) max(n int) int {
	for i := n - 1; i >= 0; i-- {
		if h.count[i].Load() > 0 {
			return i + 1
		}
	}
	return 0
}

// maxMerge returns the largest count held in either histogram
// (bp_slots_histogram_max_merge).
func maxMerge(a, b *histogram, n int) int {
	for i := n - 1; i >= 0; i-- {
		if a.count[i].Load()+b.count[i].Load() > 0 {
			return i + 1
		}
	}
	return 0
}

// used reports whether any target holds a slot.
func (h *histogram) used() bool {
	for i := range h.count {
		if h.count[i].Load() != 0 {
			return true
		}
	}
	return false
}

// gens holds one generation counter per register index: even means free,
// odd means held, and the odd value is the holder's Slot.Gen, so a stale or
// double release never matches. Callers synchronise access.
type gens [MaxSlots]uint32

// take marks index i held and returns its generation.
func (g *gens) take(i int) uint32 {
	g[i]++
	return g[i]
}

// give frees index i if gen is its current holder.
func (g *gens) give(i int, gen uint32) bool {
	if g[i] != gen || gen&1 == 0 {
		return false
	}
	g[i]++
	return true
}

// cpuPart is one task's one-CPU breakpoints on one CPU.
type cpuPart struct {
	n    int    // how many
	mask uint32 // their register indexes
	gen  gens
}

// taskPool is one task's breakpoints in one pool, as the lock-based
// strategies keep it (the kernel's task_bps_ht entries for the task).
type taskPool struct {
	all     int    // breakpoints on every CPU, NoIndex ones included
	allMask uint32 // register indexes of all-CPU breakpoints
	ovMask  uint32 // overflow positions of all-CPU breakpoints without an index
	onCPU   int    // one-CPU breakpoints; 0 is the kernel's CPU-independent fast path
	allGen  gens
	ovGen   gens
	cpu     []cpuPart // per CPU, allocated on the task's first one-CPU breakpoint
}

// pinned returns pinned_t(c): the task's breakpoints on every CPU plus its
// breakpoints bound to c.
func (t *taskPool) pinned(c int) int {
	if t.onCPU == 0 {
		return t.all
	}
	return t.all + t.cpu[c].n
}

// pick chooses the raw index for a new breakpoint on cpu (AnyCPU or c): the
// lowest register free on every CPU the breakpoint can run on. An all-CPU
// breakpoint of a task whose one-CPU breakpoints fragment the indexes may
// find none although admission passed; it then gets an overflow position
// (Slot.Index() == NoIndex), see NoIndex.
func (t *taskPool) pick(cpu, n int) int {
	if cpu != AnyCPU {
		used := t.allMask
		if t.onCPU > 0 {
			used |= t.cpu[cpu].mask
		}
		return lowestFree(used, n)
	}
	used := t.allMask
	if t.onCPU > 0 {
		for i := range t.cpu {
			used |= t.cpu[i].mask
		}
	}
	if i := lowestFree(used, n); i >= 0 {
		return i
	}
	return overflowRaw(lowestFree(t.ovMask, MaxSlots))
}

// hold records a breakpoint on cpu at raw index and returns its generation.
func (t *taskPool) hold(cpu, raw, cpus int) uint32 {
	if cpu == AnyCPU {
		t.all++
		if raw < 0 {
			t.ovMask |= 1 << overflowPos(raw)
			return t.ovGen.take(overflowPos(raw))
		}
		t.allMask |= 1 << raw
		return t.allGen.take(raw)
	}
	if t.cpu == nil {
		t.cpu = make([]cpuPart, cpus)
	}
	t.onCPU++
	p := &t.cpu[cpu]
	p.n++
	p.mask |= 1 << raw
	return p.gen.take(raw)
}

// drop removes the breakpoint at raw index on cpu if gen is its holder.
func (t *taskPool) drop(cpu, raw int, gen uint32) bool {
	if cpu == AnyCPU {
		if raw < 0 {
			if !t.ovGen.give(overflowPos(raw), gen) {
				return false
			}
			t.ovMask &^= 1 << overflowPos(raw)
		} else {
			if !t.allGen.give(raw, gen) {
				return false
			}
			t.allMask &^= 1 << raw
		}
		t.all--
		return true
	}
	if t.cpu == nil || !t.cpu[cpu].gen.give(raw, gen) {
		return false
	}
	p := &t.cpu[cpu]
	p.n--
	p.mask &^= 1 << raw
	t.onCPU--
	return true
}

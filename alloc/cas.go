package alloc

import (
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

func init() { register("cas", newCAS) }

// The cas strategy takes no lock on any Reserve or Release path. Its state,
// per pool:
//
//   - per CPU c, one packed word W_c: for each register index a field
//     holding a generation counter, then tmax, then a version. Reserving and
//     releasing each advance a field by one (modulo its width), so an odd
//     field is held and its value is the holder's Slot.Gen; its low bit is
//     the live bit. cp(c), the number of CPU-bound breakpoints on c, is the
//     number of live bits. tmax is an upper bound on pinned_t(c) for every
//     task t.
//   - per CPU c, a histogram H_c of the tasks' counts on c (bucket k: tasks
//     with k breakpoints on c) and a counter of histogram moves in flight.
//   - per task and CPU, a word P_tc = {register mask, count}: count is
//     pinned_t(c) (tentative holds included), mask the indexes the task uses
//     on c (an all-CPU breakpoint sets its bit in every P_tc).
//
// Invariant A: every CAS that raises cp(c) or tmax(c) checks
// cp(c) + tmax(c) <= N in the value it installs; lowering either only
// decreases it. So cp(c) + tmax(c) <= N always holds in W_c.
//
// Invariant B: every change of P_tc (claim, unclaim: CAS or atomic add, so
// one task's changes on c are totally ordered) is followed by exactly one
// histogram move with the same old and new counts, and a move increments
// the new bucket before decrementing the old. Moves of concurrent
// operations of one task can still land out of P order and leave a bucket
// transiently at -1, which would hide another task counted in it; hence D.
//
// Invariant D: a task operation on c is bracketed by begin/end, which count
// it in busy_c (started<<32 | in flight) from before its P_tc change until
// after its histogram move. A scan of H_c taken while busy_c showed nothing
// in flight and did not change is of a quiescent histogram, whose buckets
// are then exactly the committed pinned_t(c) of the tasks. Only such a scan
// may lower tmax; every operation tries to lower after its end, so the last
// one out leaves tmax exact.
//
// Invariant C: tmax(c) >= the committed pinned_t(c) of every task. A task
// reservation commits on c only after a CAS on W_c that installs
// tmax >= k+1 (checked against cp by A) and bumps the version - even when
// tmax is already large enough. A lowering reads W_c (version v), takes a
// quiescent scan (D) and installs its maximum by CAS expecting v. A raiser
// whose CAS came before the lowerer read W_c had moved H_c before that, and
// either it is still in flight (no lowering) or the scan sees it; if the
// raiser's CAS came between the read and the lowering CAS, the version
// changed and the lowering fails and retries; if it came after, the raiser
// sees the lowered tmax and re-checks it against cp.
//
// From A and C: cp(c) + pinned_t(c) <= N for every task and CPU at every
// instant, which is exactly what Linux's rules guarantee, so cas never
// over-admits. Each decision is linearised at its successful CAS on W_c
// (for an all-CPU breakpoint, the last of its per-CPU CASes, with the
// earlier ones tentative holds that are rolled back on refusal).
//
// Because tentative holds are visible, cas can refuse what some serial
// order would admit: a CPU-bound request that sees a raiser's hold that is
// later rolled back, or a task request that sees a concurrent tentative
// hold of the same task. Refusals made while such holds were in flight are
// counted (SpuriousRefusals); the count is an upper bound. A CPU-bound
// refusal caused only by a tmax not yet lowered after a release is not
// made: the refuser helps lower tmax and retries. Under continuous task
// traffic on a CPU, D can defer lowering; CPU-bound refusals made meanwhile
// see task operations in flight and are counted too.
//
// Limits of the packing, documented rather than hidden: a CPU-bound slot's
// generation has 7 bits for pools of up to 6 registers (fewer for larger
// pools, 2 at 16), so a stale CPU-bound Slot is recognised unless its index
// was reused a multiple of 2^bits times since; the version has 64 - 5 -
// N*field bits (27 at N = 4, 11 at N = 16) and a lowering is only fooled if
// exactly a multiple of 2^bits raises on the same CPU happen between its two
// accesses to W_c. Task slots keep full 32-bit generations.

const (
	taskCntShift = 16 // P_tc: bits 0..15 register mask, bits 16.. count
	taskOne      = 1 << taskCntShift
)

// casCPU is one CPU's state in one pool.
type casCPU struct {
	w    atomic.Uint64
	busy atomic.Uint64 // task operations on this CPU: started<<32 | in flight
	h    histogram
	_    [48]byte
}

// casPool is the per-pool layout and per-CPU state.
type casPool struct {
	n         int
	n64       uint64   // n, for reserveCPU's comparison without conversions
	fb        uint     // bits per register field
	fieldMask uint64   // one field, at index 0
	liveBits  uint64   // the live bit of every field
	idxOf     [64]int8 // register index of a live bit's position (no division on the hot path)
	tShift    uint     // tmax position (5 bits)
	vShift    uint     // version position, up to bit 63
	cpu       []casCPU
}

func newCASPool(n, cpus int) *casPool {
	fb := uint(48 / n)
	if fb > 8 {
		fb = 8
	}
	p := &casPool{n: n, n64: uint64(n), fb: fb, fieldMask: 1<<fb - 1, cpu: make([]casCPU, cpus)}
	for i := 0; i < n; i++ {
		p.liveBits |= 1 << (uint(i) * fb)
		p.idxOf[uint(i)*fb] = int8(i)
	}
	p.tShift = uint(n) * fb
	p.vShift = p.tShift + 5
	return p
}

func (p *casPool) cp(w uint64) int   { return bits.OnesCount64(w & p.liveBits) }
func (p *casPool) tmax(w uint64) int { return int(w>>p.tShift) & 31 }

// withTmax returns w with tmax t and the version bumped.
func (p *casPool) withTmax(w uint64, t int) uint64 {
	w = w&^(31<<p.tShift) | uint64(t)<<p.tShift
	return w + 1<<p.vShift // the version wraps off the top
}

// casTaskCPU is one task's state on one CPU.
type casTaskCPU struct {
	w   atomic.Uint64 // P_tc
	gen [MaxSlots]atomic.Uint32
}

// casTaskPool is one task's state in one pool.
type casTaskPool struct {
	cpu    []casTaskCPU
	allGen [MaxSlots]atomic.Uint32
	ovGen  [MaxSlots]atomic.Uint32
	ov     atomic.Uint32 // overflow positions held (see NoIndex)
	// one counts the task's one-CPU breakpoints, held or being reserved.
	// Only they can fragment its indexes; without them a full union of
	// masks is a full pool or another operation of the task in flight.
	one atomic.Int32
}

// casTask is a task's record.
type casTask struct {
	inflight atomic.Int32 // reservations of this task in progress
	pools    [numKinds]casTaskPool
}

type casAlloc struct {
	cfg      Config
	pools    [numKinds]*casPool
	byKind   [numKinds]*casPool // pools[cfg.poolIndex(k)], without the branch
	tasks    sync.Map           // task id -> *casTask
	spurious atomic.Uint64
	errs     errTable
}

func newCAS(cfg Config) (Allocator, error) {
	a := &casAlloc{cfg: cfg, errs: newErrTable(cfg)}
	a.pools[Data] = newCASPool(cfg.Slots, cfg.CPUs)
	if cfg.InstSlots > 0 {
		a.pools[Inst] = newCASPool(cfg.InstSlots, cfg.CPUs)
	}
	for k := range a.byKind {
		a.byKind[k] = a.pools[cfg.poolIndex(Kind(k))]
	}
	return a, nil
}

// SpuriousRefusals implements SpuriousRefusals.
func (a *casAlloc) SpuriousRefusals() uint64 { return a.spurious.Load() }

func (a *casAlloc) task(id int) *casTask {
	if v, ok := a.tasks.Load(id); ok {
		return v.(*casTask)
	}
	t := new(casTask)
	per := make([]casTaskCPU, a.cfg.CPUs*int(numKinds))
	for k := range t.pools {
		t.pools[k].cpu = per[k*a.cfg.CPUs : (k+1)*a.cfg.CPUs]
	}
	v, _ := a.tasks.LoadOrStore(id, t)
	return v.(*casTask)
}

// Reserve implements Allocator. A CPU-bound request is validated by the
// comparisons reserveCPU needs anyway and admitted inline; everything else
// goes through reserveSlow.
func (a *casAlloc) Reserve(r Request) (Slot, error) {
	if r.Task == NoTask && r.Kind < numKinds {
		if p := a.byKind[r.Kind]; uint(r.CPU) < uint(len(p.cpu)) {
			st := &p.cpu[r.CPU]
			if nw, free := p.reserveCPU(st); free != 0 {
				return p.cpuSlot(r, nw, free), nil
			}
			if nw, free := p.tryCPU(st); free != 0 { // a task holds a breakpoint on the CPU
				return p.cpuSlot(r, nw, free), nil
			}
			return a.reserveCPUSlow(p, r)
		}
	}
	return a.reserveSlow(r)
}

// reserveSlow validates r and reserves it; CPU-bound requests only get here
// when invalid.
func (a *casAlloc) reserveSlow(r Request) (Slot, error) {
	if err := a.cfg.validate(r); err != nil {
		return Slot{}, err
	}
	p := a.byKind[r.Kind]
	t := a.task(r.Task)
	t.inflight.Add(1)
	s, err := a.reserveTask(p, &t.pools[a.cfg.poolIndex(r.Kind)], r)
	if err != nil && t.inflight.Load() > 1 {
		a.spurious.Add(1)
	}
	t.inflight.Add(-1)
	return s, err
}

// reserveCPU is the fast path of a valid CPU-bound request on the CPU
// whose state is st, for the common case of a CPU on which no task holds a
// breakpoint (tmax = 0): admission is then a free register, and the whole
// reservation one load and one CAS on W_c. It returns the word it installed
// and the live bit it set, or free = 0, having changed nothing, when tmax
// is not 0, the CPU is full or the CAS lost a race; Reserve then tries
// tryCPU, the general rule, once and leaves the rest to reserveCPUSlow.
// Leaving the population count (and the runtime's check for the POPCNT
// instruction) out of the common case saves about 5% of the pair in
// BenchmarkFloorRatio; the price, one more failed check on CPUs where a
// task holds a breakpoint, shows in BenchmarkTasks/op=cpu.
//
// The new word is w plus the lowest free live bit: a free field holds an
// even generation and reserving makes it the next, odd one (releasing makes
// it the next even one, see Release). Nothing depends on the bit's
// position between the load and the CAS, which would otherwise add a bit
// scan and four shifts to the latency of every admission.
func (p *casPool) reserveCPU(st *casCPU) (nw, free uint64) {
	w := st.w.Load()
	free = ^w & p.liveBits & -(^w & p.liveBits) // the lowest free live bit
	if free != 0 && w>>(p.tShift&63)&31 == 0 {
		if nw = w + free; st.w.CompareAndSwap(w, nw) {
			return nw, free
		}
	}
	return 0, 0
}

// cpuSlot is the Slot of request r for which a CAS installed word nw by
// setting live bit free.
func (p *casPool) cpuSlot(r Request, nw, free uint64) Slot {
	sh := uint(bits.TrailingZeros64(free)) & 63
	return NewSlot(r, int(p.idxOf[sh]), uint32(nw>>sh&p.fieldMask))
}

// tryCPU is one attempt at the general CPU-bound rule, cp + tmax + 1 <= N,
// with reserveCPU's field update and results. Reserve tries it inline when
// reserveCPU fails because a task holds a breakpoint on the CPU.
func (p *casPool) tryCPU(st *casCPU) (nw, free uint64) {
	w := st.w.Load()
	if bits.OnesCount64(w&p.liveBits)+int(w>>(p.tShift&63)&31) < p.n { // admits(cp, tmax, n)
		free = ^w & p.liveBits & -(^w & p.liveBits) // not 0 since cp < n
		if nw = w + free; st.w.CompareAndSwap(w, nw) {
			return nw, free
		}
	}
	return 0, 0
}

// reserveCPUSlow retries tryCPU after lost CASes, helps a release that has
// not lowered tmax yet, and refuses.
func (a *casAlloc) reserveCPUSlow(p *casPool, r Request) (Slot, error) {
	st := &p.cpu[r.CPU]
	for tries := 0; ; tries++ {
		if nw, free := p.tryCPU(st); free != 0 {
			return p.cpuSlot(r, nw, free), nil
		}
		w := st.w.Load()
		cp, t := p.cp(w), p.tmax(w)
		if admits(cp, t, p.n) {
			continue // lost a race; try again
		}
		if m := st.h.max(p.n); m < t && admits(cp, m, p.n) && tries < 8 {
			a.lower(p, r.CPU) // a release has not lowered tmax yet: help
			continue
		}
		if uint32(st.busy.Load()) != 0 || tries >= 8 {
			a.spurious.Add(1)
		}
		return Slot{}, a.errs.noSlot(r)
	}
}

// begin and end bracket every task operation on CPUs lo..hi-1: the change
// of P_tc and its histogram move. A lowering trusts only a scan that saw
// nothing in flight and nothing started (invariant D).
func begin(p *casPool, lo, hi int) {
	for c := lo; c < hi; c++ {
		p.cpu[c].busy.Add(1<<32 | 1)
	}
}

func (a *casAlloc) end(p *casPool, lo, hi int) {
	for c := lo; c < hi; c++ {
		p.cpu[c].busy.Add(^uint64(0))
	}
	for c := lo; c < hi; c++ {
		a.lower(p, c)
	}
}

// raise moves a task from k to k+1 breakpoints on c in H_c and commits it
// on W_c (invariant C). The histogram move always happens: on refusal the
// caller undoes the claim with unclaim and move, so every change of P_tc
// has exactly one histogram move with the same old and new counts.
func (a *casAlloc) raise(p *casPool, c, k int) bool {
	st := &p.cpu[c]
	st.h.add(k, 1)
	for {
		w := st.w.Load()
		nt := max(p.tmax(w), k+1)
		if !admits(p.cp(w), nt-1, p.n) {
			return false
		}
		if st.w.CompareAndSwap(w, p.withTmax(w, nt)) {
			return true
		}
	}
}

// move records in H_c a task going from k to k-1 breakpoints on c.
func move(p *casPool, c, k int) { p.cpu[c].h.add(k, -1) }

// lower brings tmax(c) down to the histogram maximum, if that is lower and
// the scan was quiescent (invariant D); otherwise the last operation in
// flight on c lowers it when it ends.
func (a *casAlloc) lower(p *casPool, c int) {
	st := &p.cpu[c]
	for {
		w := st.w.Load()
		t := p.tmax(w)
		if t == 0 {
			return
		}
		b := st.busy.Load()
		if uint32(b) != 0 {
			return
		}
		m := st.h.max(p.n)
		if m >= t || st.busy.Load() != b {
			return
		}
		if st.w.CompareAndSwap(w, p.withTmax(w, m)) {
			return
		}
	}
}

// claim adds a breakpoint at index i (-1: none) to P_tc, returning the old
// count, or -1 if i is taken meanwhile.
func claim(w *atomic.Uint64, i int) int {
	add := uint64(taskOne)
	if i >= 0 {
		add |= 1 << i
	}
	for {
		old := w.Load()
		if i >= 0 && old&(1<<i) != 0 {
			return -1
		}
		if w.CompareAndSwap(old, old+add) {
			return int(old >> taskCntShift)
		}
	}
}

// unclaim removes a breakpoint at index i (-1: none) from P_tc, returning
// the old count.
func unclaim(w *atomic.Uint64, i int) int {
	sub := uint64(taskOne)
	if i >= 0 {
		sub |= 1 << i
	}
	return int(w.Add(-sub)+sub) >> taskCntShift
}

func (a *casAlloc) reserveTask(p *casPool, tp *casTaskPool, r Request) (Slot, error) {
	if c := r.CPU; c != AnyCPU {
		pc := &tp.cpu[c]
		tp.one.Add(1)
		begin(p, c, c+1)
		defer a.end(p, c, c+1)
		for {
			i := lowestFree(uint32(pc.w.Load()), p.n)
			if i < 0 { // pinned_t(c) >= N already
				tp.one.Add(-1)
				return Slot{}, a.errs.noSlot(r)
			}
			k := claim(&pc.w, i)
			if k < 0 {
				continue // a concurrent reservation of this task took i
			}
			if !a.raise(p, c, k) {
				move(p, c, unclaim(&pc.w, i))
				tp.one.Add(-1)
				return Slot{}, a.errs.noSlot(r)
			}
			return NewSlot(r, i, pc.gen[i].Add(1)), nil
		}
	}
	begin(p, 0, len(tp.cpu))
	defer a.end(p, 0, len(tp.cpu))
	for tries := 0; ; tries++ {
		var used uint32
		full := false
		for c := range tp.cpu {
			m := uint32(tp.cpu[c].w.Load())
			used |= m
			full = full || lowestFree(m, p.n) < 0
		}
		i, pos := lowestFree(used, p.n), -1
		if i < 0 && tp.one.Load() == 0 {
			// No one-CPU breakpoints, so no fragmentation: either some CPU
			// holds N (refuse, as the rules do) or the masks differ only
			// because another operation of this task is between CPUs.
			if full || tries >= 64 {
				return Slot{}, a.errs.noSlot(r)
			}
			runtime.Gosched()
			continue
		}
		if i < 0 { // fragmented indexes: see NoIndex
			for {
				o := tp.ov.Load()
				pos = lowestFree(o, MaxSlots)
				if tp.ov.CompareAndSwap(o, o|1<<pos) {
					break
				}
			}
		}
		c, taken, refused := 0, false, false
		for ; c < len(tp.cpu); c++ {
			k := claim(&tp.cpu[c].w, i)
			if k < 0 {
				taken = true
				break
			}
			if !a.raise(p, c, k) {
				move(p, c, unclaim(&tp.cpu[c].w, i))
				refused = true
				break
			}
		}
		if taken || refused {
			for d := c - 1; d >= 0; d-- {
				move(p, d, unclaim(&tp.cpu[d].w, i))
			}
			if pos >= 0 {
				tp.ov.And(^uint32(1 << pos))
			}
			if taken {
				continue
			}
			return Slot{}, a.errs.noSlot(r)
		}
		if pos >= 0 {
			return NewSlot(r, overflowRaw(pos), tp.ovGen[pos].Add(1)), nil
		}
		return NewSlot(r, i, tp.allGen[i].Add(1)), nil
	}
}

// Release implements Allocator. A CPU-bound slot is checked and released
// inline: its generation must be odd (live; this also rejects the zero
// Slot) and equal to its field in W_c, and the CAS that advances the field
// to the next, even generation expects the word that check was made on, so
// a double, stale or concurrent second release of the same slot fails with
// ErrNotReserved and never frees a later holder's field.
func (a *casAlloc) Release(s Slot) error {
	r := s.req
	if r.Task == NoTask && r.Kind < numKinds && s.gen&1 != 0 {
		p := a.byKind[r.Kind]
		if uint(r.CPU) < uint(len(p.cpu)) && uint(s.index) < uint(p.n) {
			st := &p.cpu[r.CPU]
			sh := uint(s.index) * p.fb & 63
			// The field goes from s.gen to the next generation, 0 after the
			// top; the field is s.gen when the CAS succeeds, so adding the
			// difference (modulo 2^64) changes it and nothing else.
			next := uint64(s.gen+1) & p.fieldMask
			delta := (next - uint64(s.gen)) << sh
			for {
				w := st.w.Load()
				if uint32(w>>sh&p.fieldMask) != s.gen {
					return a.errs.stale(r)
				}
				if st.w.CompareAndSwap(w, w+delta) {
					return nil
				}
			}
		}
	}
	return a.releaseSlow(s)
}

// releaseSlow releases task slots and rejects everything the CPU-bound fast
// path did not take.
func (a *casAlloc) releaseSlow(s Slot) error {
	if err := a.cfg.checkRelease(s); err != nil {
		return err
	}
	r := s.req
	p := a.byKind[r.Kind]
	raw := int(s.index)
	if r.IsCPUBound() {
		return a.errs.stale(r) // an even generation: never live
	}
	v, ok := a.tasks.Load(r.Task)
	if !ok {
		return a.errs.stale(r)
	}
	tp := &v.(*casTask).pools[a.cfg.poolIndex(r.Kind)]
	if r.CPU != AnyCPU {
		if s.gen&1 == 0 || !tp.cpu[r.CPU].gen[raw].CompareAndSwap(s.gen, s.gen+1) {
			return a.errs.stale(r)
		}
		begin(p, r.CPU, r.CPU+1)
		move(p, r.CPU, unclaim(&tp.cpu[r.CPU].w, raw))
		a.end(p, r.CPU, r.CPU+1)
		tp.one.Add(-1)
		return nil
	}
	i := raw
	if raw < 0 {
		if s.gen&1 == 0 || !tp.ovGen[overflowPos(raw)].CompareAndSwap(s.gen, s.gen+1) {
			return a.errs.stale(r)
		}
		i = -1
	} else if s.gen&1 == 0 || !tp.allGen[raw].CompareAndSwap(s.gen, s.gen+1) {
		return a.errs.stale(r)
	}
	begin(p, 0, len(tp.cpu))
	for c := range tp.cpu {
		move(p, c, unclaim(&tp.cpu[c].w, i))
	}
	a.end(p, 0, len(tp.cpu))
	if raw < 0 {
		tp.ov.And(^uint32(1 << overflowPos(raw)))
	}
	return nil
}

// InUse implements Allocator: a live CPU-bound field or a task count
// bounded above zero on any CPU.
func (a *casAlloc) InUse() bool {
	for _, p := range a.pools {
		if p == nil {
			continue
		}
		for c := range p.cpu {
			w := p.cpu[c].w.Load()
			if p.cp(w) > 0 || p.tmax(w) > 0 {
				return true
			}
		}
	}
	return false
}

// String describes the packing, for test failure messages.
func (p *casPool) String() string {
	return fmt.Sprintf("cas pool n=%d field=%d bits tmax@%d version@%d", p.n, p.fb, p.tShift, p.vShift)
}

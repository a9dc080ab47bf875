package alloc

import (
	"runtime"
	"sync"
	"sync/atomic"
)

func init() { register("cas-percpu", newCASPercpu) }

// The cas-percpu strategy is the first lock-free design, kept for comparison
// with cas: it accounts every task breakpoint on every CPU it can run on, so
// an all-CPU task reservation costs a dozen locked operations per simulated
// CPU, which is why Linux 6.x keeps all-CPU task counts in one global
// histogram. It takes no lock on any Reserve or Release path. Its state,
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
// Limits of the packing, documented rather than hidden: a CPU-bound
// slot's field has 8 bits for pools of up to 6 registers, so a stale
// CPU-bound Slot is recognised unless its index was reused a multiple of
// 128 times since; larger pools (narrower fields, 3 bits at 16) keep a
// 32-bit generation per CPU and index beside W_c (casPool.wide). The
// version has 64 - 6 - N*field bits (26 at N = 4, 10 at N = 16; cas uses
// the bit after tmax) and a lowering is only fooled if exactly a multiple
// of 2^bits raises on the same CPU happen between its two accesses to W_c.
// Task slots keep full 32-bit generations.

const (
	pcCntShift = 16 // P_tc: bits 0..15 register mask, bits 16.. count
	pcOne      = 1 << pcCntShift
)

// pcTaskCPU is one task's state on one CPU.
type pcTaskCPU struct {
	w   atomic.Uint64 // P_tc
	gen [MaxSlots]atomic.Uint32
}

// pcTaskPool is one task's state in one pool.
type pcTaskPool struct {
	cpu    []pcTaskCPU
	allGen [MaxSlots]atomic.Uint32
	ovGen  [MaxSlots]atomic.Uint32
	ov     atomic.Uint32 // overflow positions held (see NoIndex)
	// one counts the task's one-CPU breakpoints, held or being reserved.
	// Only they can fragment its indexes; without them a full union of
	// masks is a full pool or another operation of the task in flight.
	one atomic.Int32
}

// pcTask is a task's record.
type pcTask struct {
	inflight atomic.Int32 // reservations of this task in progress
	pools    [numKinds]pcTaskPool
}

type casPercpuAlloc struct {
	casBase
	tasks sync.Map // task id -> *pcTask
}

func newCASPercpu(cfg Config) (Allocator, error) {
	a := new(casPercpuAlloc)
	a.init(cfg, false)
	return a, nil
}

func (a *casPercpuAlloc) task(id int) *pcTask {
	if v, ok := a.tasks.Load(id); ok {
		return v.(*pcTask)
	}
	t := new(pcTask)
	per := make([]pcTaskCPU, a.cfg.CPUs*int(numKinds))
	for k := range t.pools {
		t.pools[k].cpu = per[k*a.cfg.CPUs : (k+1)*a.cfg.CPUs]
	}
	v, _ := a.tasks.LoadOrStore(id, t)
	return v.(*pcTask)
}

// Reserve implements Allocator: CPU-bound requests by cpuFast, the rest
// by reserveSlow.
func (a *casPercpuAlloc) Reserve(r Request) (Slot, error) {
	if r.Task == NoTask {
		if s, p, ok := a.cpuFast(r); ok {
			return s, nil
		} else if p != nil {
			return a.reserveCPUSlow(p, r)
		}
	}
	return a.reserveSlow(r)
}

// reserveSlow validates r and reserves it; CPU-bound requests only get here
// when invalid.
func (a *casPercpuAlloc) reserveSlow(r Request) (Slot, error) {
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

// reserveCPUSlow retries tryCPU after lost CASes, helps a release that has
// not lowered tmax yet, and refuses.
func (a *casPercpuAlloc) reserveCPUSlow(p *casPool, r Request) (Slot, error) {
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
func pcBegin(p *casPool, lo, hi int) {
	for c := lo; c < hi; c++ {
		p.cpu[c].busy.Add(1<<32 | 1)
	}
}

func (a *casPercpuAlloc) end(p *casPool, lo, hi int) {
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
func (a *casPercpuAlloc) raise(p *casPool, c, k int) bool {
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
func pcMove(p *casPool, c, k int) { p.cpu[c].h.add(k, -1) }

// lower brings tmax(c) down to the histogram maximum, if that is lower and
// the scan was quiescent (invariant D); otherwise the last operation in
// flight on c lowers it when it ends.
func (a *casPercpuAlloc) lower(p *casPool, c int) {
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

// pcClaim adds a breakpoint at index i (-1: none) to P_tc, returning the
// old count, pcTaken if i is taken meanwhile, or pcFull if the task already
// holds n breakpoints on the CPU: the count never exceeds the pool, so no
// histogram move can index past it (a task with 16 one-CPU breakpoints on a
// CPU of a 16-register pool once crashed an all-CPU request here).
func pcClaim(w *atomic.Uint64, i, n int) int {
	add := uint64(pcOne)
	if i >= 0 {
		add |= 1 << i
	}
	for {
		old := w.Load()
		if i >= 0 && old&(1<<i) != 0 {
			return pcTaken
		}
		if int(old>>pcCntShift) >= n {
			return pcFull
		}
		if w.CompareAndSwap(old, old+add) {
			return int(old >> pcCntShift)
		}
	}
}

// pcClaim's refusals.
const (
	pcTaken = -1
	pcFull  = -2
)

// unclaim removes a breakpoint at index i (-1: none) from P_tc, returning
// the old count.
func pcUnclaim(w *atomic.Uint64, i int) int {
	sub := uint64(pcOne)
	if i >= 0 {
		sub |= 1 << i
	}
	return int(w.Add(-sub)+sub) >> pcCntShift
}

func (a *casPercpuAlloc) reserveTask(p *casPool, tp *pcTaskPool, r Request) (Slot, error) {
	if c := r.CPU; c != AnyCPU {
		pc := &tp.cpu[c]
		tp.one.Add(1)
		pcBegin(p, c, c+1)
		defer a.end(p, c, c+1)
		for {
			i := lowestFree(uint32(pc.w.Load()), p.n)
			if i < 0 { // pinned_t(c) >= N already
				tp.one.Add(-1)
				return Slot{}, a.errs.noSlot(r)
			}
			k := pcClaim(&pc.w, i, p.n)
			if k == pcTaken {
				continue // a concurrent reservation of this task took i
			}
			if k == pcFull {
				tp.one.Add(-1)
				return Slot{}, a.errs.noSlot(r)
			}
			if !a.raise(p, c, k) {
				pcMove(p, c, pcUnclaim(&pc.w, i))
				tp.one.Add(-1)
				return Slot{}, a.errs.noSlot(r)
			}
			return NewSlot(r, i, pc.gen[i].Add(1)), nil
		}
	}
	pcBegin(p, 0, len(tp.cpu))
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
			k := pcClaim(&tp.cpu[c].w, i, p.n)
			if k == pcTaken {
				taken = true
				break
			}
			if k == pcFull {
				refused = true
				break
			}
			if !a.raise(p, c, k) {
				pcMove(p, c, pcUnclaim(&tp.cpu[c].w, i))
				refused = true
				break
			}
		}
		if taken || refused {
			for d := c - 1; d >= 0; d-- {
				pcMove(p, d, pcUnclaim(&tp.cpu[d].w, i))
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

// Release implements Allocator: CPU-bound slots inline (releaseCPU), the
// rest by releaseSlow.
func (a *casPercpuAlloc) Release(s Slot) error {
	if done, err := releaseCPU(&a.byKind, &a.errs, s); done {
		return err
	}
	return a.releaseSlow(s)
}

// releaseSlow releases task slots and rejects everything the CPU-bound fast
// path did not take.
func (a *casPercpuAlloc) releaseSlow(s Slot) error {
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
	tp := &v.(*pcTask).pools[a.cfg.poolIndex(r.Kind)]
	if r.CPU != AnyCPU {
		if s.gen&1 == 0 || !tp.cpu[r.CPU].gen[raw].CompareAndSwap(s.gen, s.gen+1) {
			return a.errs.stale(r)
		}
		pcBegin(p, r.CPU, r.CPU+1)
		pcMove(p, r.CPU, pcUnclaim(&tp.cpu[r.CPU].w, raw))
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
	pcBegin(p, 0, len(tp.cpu))
	for c := range tp.cpu {
		pcMove(p, c, pcUnclaim(&tp.cpu[c].w, i))
	}
	a.end(p, 0, len(tp.cpu))
	if raw < 0 {
		tp.ov.And(^uint32(1 << overflowPos(raw)))
	}
	return nil
}

// InUse implements Allocator: a live CPU-bound field or a task count
// bounded above zero on any CPU.
func (a *casPercpuAlloc) InUse() bool {
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

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
// per pool (pcState):
//
//   - per CPU c, the word W_c (cpuWord, shared with cas): the CPU-bound
//     breakpoints, tmax and a version; tmax is an upper bound on
//     pinned_t(c) for every task t. cas-percpu never sets W_c's lowering
//     flag.
//   - per CPU c (pcCPU), a histogram H_c of the tasks' counts on c (bucket
//     k: tasks with k breakpoints on c) and busy_c, which counts the task
//     operations on c started and in flight.
//   - per task and CPU, a word P_tc = {register mask, count} (pcWord):
//     count is pinned_t(c) (tentative holds included), mask the indexes
//     the task uses on c (an all-CPU breakpoint sets its bit in every
//     P_tc).
//
// Invariant A (cpuWord): cp(c) + tmax(c) <= N always holds in W_c.
//
// Invariant B: every change of P_tc (claim, unclaim: CAS or atomic add, so
// one task's changes on c are totally ordered) is followed by exactly one
// histogram move with the same old and new counts, and a move increments
// the new bucket before decrementing the old. Moves of concurrent
// operations of one task can still land out of P order and leave a bucket
// transiently at -1, which would hide another task counted in it; hence D.
//
// Invariant D: a task operation on c is bracketed by begin/end, which count
// it in busy_c from before its P_tc change until after its histogram move.
// A scan of H_c taken while busy_c showed nothing in flight and did not
// change is of a quiescent histogram, whose buckets are then exactly the
// committed pinned_t(c) of the tasks. Only such a scan may lower tmax;
// every operation tries to lower after its end, so the last one out leaves
// tmax exact.
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
// instant, which is exactly what Linux's rules guarantee, so cas-percpu
// never over-admits. Each decision is linearised at its successful CAS on
// W_c (for an all-CPU breakpoint, the last of its per-CPU CASes, with the
// earlier ones tentative holds that are rolled back on refusal).
//
// Because tentative holds are visible, cas-percpu can refuse what some
// serial order would admit: a CPU-bound request that sees a raiser's hold
// that is later rolled back, or a task request that sees a concurrent
// tentative hold of the same task. Refusals made while such holds were in
// flight are counted (SpuriousRefusals); the count is an upper bound. A
// CPU-bound refusal caused only by a tmax not yet lowered after a release
// is not made: the refuser helps lower tmax and retries. Under continuous
// task traffic on a CPU, D can defer lowering; CPU-bound refusals made
// meanwhile see task operations in flight and are counted too.

// pcState is cas-percpu's state of one pool: W_c and its layout (casPool,
// shared with cas), and per CPU the task accounting beside W_c.
type pcState struct {
	casPool
	task []pcCPU
}

// words returns the pool's W_c words and layout, for casStates.
func (s *pcState) words() *casPool { return &s.casPool }

// pcCPU is cas-percpu's task accounting on one CPU of one pool.
type pcCPU struct {
	h    histogram // H_c: count[k-1] is the number of tasks with k breakpoints on c
	busy atomicWord[busyWord]
	_    [56]byte
}

// busyWord is busy_c (invariant D): task operations on c started, in its
// high 32 bits, and in flight, in its low 32 bits. A lowering trusts a
// scan of H_c only if busy_c showed nothing in flight and was the same
// after the scan, so nothing started meanwhile either.
type busyWord uint64

const (
	busyBegin busyWord = 1<<32 | 1 // one more started and in flight
	busyEnd   busyWord = 1         // one fewer in flight (subtracted)
)

func (b busyWord) inFlight() uint32 { return uint32(b) }

// pcWord is cas-percpu's P_tc, one task's word on one CPU in one pool:
// bits 0-15 are the register indexes the task uses on c, bits 16 and up
// its count there, pinned_t(c), tentative holds included. It changes by
// adding and subtracting pcHold, so concurrent changes commute.
type pcWord uint64

const pcCntShift = 16

// packPC builds P_tc from its fields.
func packPC(mask uint32, count int) pcWord { return pcWord(mask) | pcWord(count)<<pcCntShift }

// unpack returns P_tc's fields.
func (w pcWord) unpack() (mask uint32, count int) { return w.mask(), w.count() }

func (w pcWord) mask() uint32 { return uint32(w) & 0xffff }
func (w pcWord) count() int   { return int(w >> pcCntShift) }

// pcHold is the change of P_tc that holds one more breakpoint at index i,
// or, for i < 0 (an overflow position, see NoIndex), without an index.
func pcHold(i int) pcWord {
	if i < 0 {
		return packPC(0, 1)
	}
	return packPC(1<<i, 1)
}

// pcTaskCPU is one task's state on one CPU.
type pcTaskCPU struct {
	w   atomicWord[pcWord] // P_tc
	gen slotGens
}

// pcTaskPool is one task's state in one pool.
type pcTaskPool struct {
	cpu []pcTaskCPU
	allSlots
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
	kinds [numKinds]*pcState // by Kind, as casBase.byKind
	tasks sync.Map           // task id -> *pcTask
}

func newCASPercpu(cfg Config) (Allocator, error) {
	a := new(casPercpuAlloc)
	a.kinds = casStates(&a.casBase, cfg, a, func(p casPool) *pcState {
		return &pcState{casPool: p, task: make([]pcCPU, cfg.CPUs)}
	})
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

// Reserve implements Allocator: CPU-bound requests by casBase, the rest
// by reserveSlow.
func (a *casPercpuAlloc) Reserve(r Request) (Slot, error) {
	if r.Task == NoTask { // tested here, so task requests skip the call
		if s, done, err := a.reserveCPUBound(r); done {
			return s, err
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
	p := a.kinds[r.Kind]
	t := a.task(r.Task)
	t.inflight.Add(1)
	s, err := a.reserveTask(p, &t.pools[a.cfg.poolIndex(r.Kind)], r)
	if err != nil && t.inflight.Load() > 1 {
		a.spurious.Add(1)
	}
	t.inflight.Add(-1)
	return s, err
}

// lowerTmax implements taskBound: a release that has not lowered tmax(c)
// yet is helped when the histogram leaves room.
func (a *casPercpuAlloc) lowerTmax(k Kind, c, cp, t int) (retry, inexact bool) {
	p := a.kinds[k]
	if m := p.task[c].h.max(p.n); m < t && admits(cp, m, p.n) {
		a.lower(p, c)
		return true, false
	}
	return false, false
}

// inFlight implements taskBound: a task operation on c.
func (a *casPercpuAlloc) inFlight(k Kind, c int) bool {
	return a.kinds[k].task[c].busy.Load().inFlight() != 0
}

// begin and end bracket every task operation on CPUs lo..hi-1: the change
// of P_tc and its histogram move. A lowering trusts only a scan that saw
// nothing in flight and nothing started (invariant D).
func (p *pcState) begin(lo, hi int) {
	for c := lo; c < hi; c++ {
		p.task[c].busy.Add(busyBegin)
	}
}

func (a *casPercpuAlloc) end(p *pcState, lo, hi int) {
	for c := lo; c < hi; c++ {
		p.task[c].busy.Sub(busyEnd)
	}
	for c := lo; c < hi; c++ {
		a.lower(p, c)
	}
}

// raise moves a task from k to k+1 breakpoints on c in H_c and commits it
// on W_c (invariant C). The histogram move always happens: on refusal the
// caller undoes the claim with unclaim and move, so every change of P_tc
// has exactly one histogram move with the same old and new counts.
func (p *pcState) raise(c, k int) bool {
	p.task[c].h.add(k, 1)
	st := &p.cpu[c]
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
func (p *pcState) move(c, k int) { p.task[c].h.add(k, -1) }

// lower brings tmax(c) down to the histogram maximum, if that is lower and
// the scan was quiescent (invariant D); otherwise the last operation in
// flight on c lowers it when it ends.
func (a *casPercpuAlloc) lower(p *pcState, c int) {
	st, t := &p.cpu[c], &p.task[c]
	for {
		w := st.w.Load()
		tmax := p.tmax(w)
		if tmax == 0 {
			return
		}
		b := t.busy.Load()
		if b.inFlight() != 0 {
			return
		}
		m := t.h.max(p.n)
		if m >= tmax || t.busy.Load() != b {
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
func pcClaim(w *atomicWord[pcWord], i, n int) int {
	add := pcHold(i)
	for {
		old := w.Load()
		if i >= 0 && old.mask()&(1<<i) != 0 {
			return pcTaken
		}
		if old.count() >= n {
			return pcFull
		}
		if w.CompareAndSwap(old, old+add) {
			return old.count()
		}
	}
}

// pcClaim's refusals.
const (
	pcTaken = -1
	pcFull  = -2
)

// pcUnclaim removes a breakpoint at index i (-1: none) from P_tc, returning
// the old count.
func pcUnclaim(w *atomicWord[pcWord], i int) int {
	sub := pcHold(i)
	return (w.Sub(sub) + sub).count()
}

func (a *casPercpuAlloc) reserveTask(p *pcState, tp *pcTaskPool, r Request) (Slot, error) {
	if c := r.CPU; c != AnyCPU {
		pc := &tp.cpu[c]
		tp.one.Add(1)
		p.begin(c, c+1)
		defer a.end(p, c, c+1)
		for {
			i := lowestFree(pc.w.Load().mask(), p.n)
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
			if !p.raise(c, k) {
				p.move(c, pcUnclaim(&pc.w, i))
				tp.one.Add(-1)
				return Slot{}, a.errs.noSlot(r)
			}
			return NewSlot(r, i, pc.gen.take(i)), nil
		}
	}
	p.begin(0, len(tp.cpu))
	defer a.end(p, 0, len(tp.cpu))
	for tries := 0; ; tries++ {
		var used uint32
		full := false
		for c := range tp.cpu {
			m := tp.cpu[c].w.Load().mask()
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
			if pos = tp.takeOv(); pos < 0 {
				return Slot{}, a.errs.noSlot(r)
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
			if !p.raise(c, k) {
				p.move(c, pcUnclaim(&tp.cpu[c].w, i))
				refused = true
				break
			}
		}
		if taken || refused {
			for d := c - 1; d >= 0; d-- {
				p.move(d, pcUnclaim(&tp.cpu[d].w, i))
			}
			tp.dropOv(pos)
			if taken {
				continue
			}
			return Slot{}, a.errs.noSlot(r)
		}
		return tp.slot(r, i, pos), nil
	}
}

// Release implements Allocator: CPU-bound slots inline (releaseCPU), the
// rest by releaseSlow.
func (a *casPercpuAlloc) Release(s Slot) error {
	if done, err := a.releaseCPU(s); done {
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
	p := a.kinds[r.Kind]
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
		if s.gen&1 == 0 || !tp.cpu[r.CPU].gen.give(raw, s.gen) {
			return a.errs.stale(r)
		}
		p.begin(r.CPU, r.CPU+1)
		p.move(r.CPU, pcUnclaim(&tp.cpu[r.CPU].w, raw))
		a.end(p, r.CPU, r.CPU+1)
		tp.one.Add(-1)
		return nil
	}
	if s.gen&1 == 0 || !tp.give(raw, s.gen) {
		return a.errs.stale(r)
	}
	i := max(raw, -1) // an overflow position holds no index
	p.begin(0, len(tp.cpu))
	for c := range tp.cpu {
		p.move(c, pcUnclaim(&tp.cpu[c].w, i))
	}
	a.end(p, 0, len(tp.cpu))
	if raw < 0 {
		tp.dropOv(overflowPos(raw))
	}
	return nil
}

// InUse implements Allocator: a live CPU-bound field or a task count
// bounded above zero on any CPU (cas-percpu lowers tmax exactly once the
// last task operation on the CPU ends).
func (a *casPercpuAlloc) InUse() bool { return a.cpuHeld(true) }

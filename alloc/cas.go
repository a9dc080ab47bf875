package alloc

func init() { register("cas", newCAS) }

// The cas strategy takes no lock on any Reserve or Release path, and an
// all-CPU task reservation or release costs O(1) atomic operations,
// whatever the number of CPUs and tasks, unless it raises the largest
// all-CPU count any task holds. Its state, per pool (casState):
//
//   - per CPU c, the word W_c (cpuWord, shared with cas-percpu): the
//     CPU-bound breakpoints, tmax, a lowering flag L and a version. tmax
//     is an upper bound on pinned_t(c) for every task t, so a CPU-bound
//     reservation reads and CASes this one word.
//   - per CPU c, H_c (casCPU.h): tasks with one-CPU breakpoints on c, by
//     the value their P_tc stands for.
//   - G = {gmax, pend, npend, flag, version} (globalWord) and counts ge[j]
//     (tasks with at least j all-CPU breakpoints), sharded by task id
//     (casGlobal): the role of Linux's tsk_pinned_all.
//   - per task, T = {g, all-CPU mask, tent} (taskWord) and a count of its
//     one-CPU breakpoints (oneCounts). Per task and CPU, allocated on its
//     first one-CPU breakpoint, P_tc = {one, gseen, mask} (oneWord):
//     one_t(c), and the g it was last synchronised with.
//
// pinned_t(c) = g_t + one_t(c). Every count in ge and H_c stands at or
// above the words it counts (caswords.go), and three invariants bound what
// is committed: A (cpuWord): cp(c) + tmax(c) <= N in every W_c; G
// (globalWord): tmax(c) >= gmax on every CPU; and C.
//
// Invariant C: tmax(c) >= pinned_t(c) for every committed breakpoint of
// every task. For a task without one-CPU breakpoints on c, pinned_t(c) =
// g_t <= gmax <= tmax(c): an all-CPU reservation counts itself in ge[g+1],
// then reads G and needs gmax >= g+1 and no flag (or clears the flag by
// CAS), or raises gmax; only then does its CAS on T commit it. gmax is
// lowered (casGlobal.lower) only by flagging G, scanning ge, and installing
// the scan's maximum expecting the flagged word; a reservation that read G
// before the flag had counted itself before, so the scan sees it; one that
// reads G between sees the flag and clears it, failing the install; and
// its count stays until its CAS on T fails or it is released. For a task
// with one-CPU breakpoints on c, pinned_t(c) = gseen + one once P_tc is
// synchronised, and a reservation commits only after checking W_c with L
// clear and tmax >= that value, raising it by CAS if needed (checked by A),
// after H_c counts it; a lowerCPU that flags W_c later scans H_c later.
// T.g and P_tc are separate words: an all-CPU reservation changes T, then
// reads one and the P_tc words; a one-CPU reservation raises one, changes
// P_tc, then reads T. With sequentially consistent atomics at least one of
// them sees the other, synchronises P_tc and commits the combined value on
// W_c; an all-CPU reservation that finds one > 0 only after its CAS on T
// marks itself tentative and does so before it returns. The same crossing
// makes two reservations of one task that chose the same register index
// see each other and retry.
//
// From A and C: cp(c) + pinned_t(c) <= N for every task and CPU at every
// instant, which is exactly what Linux's rules guarantee, so cas never
// over-admits. A task request's own admission is checked on the same
// words: g + 1 <= N and, through G or the raise, cp(c) + g + 1 <= N on
// every CPU, and cp(c) + gseen + one <= N on CPUs where the task has
// one-CPU breakpoints. A CPU-bound request is admitted by one CAS on W_c.
//
// Releases lower nothing: G and every tmax(c) stay upper bounds, and a
// CPU-bound request that they would refuse lowers them first (gmax from
// ge, tmax(c) from G and H_c) and retries, so in a single goroutine every
// decision is exactly the rules'. That keeps a release O(1) too, and keeps
// gmax from swinging when a task drops its last breakpoint and takes it
// again. Refusals that rest on a release still in flight are linearised
// before it.
//
// Tentative holds are visible, so cas can refuse what a serial order would
// admit. SpuriousRefusals counts the refusals that saw one: a task request
// while another reservation of the same task was in flight (T.tent, an
// uncommitted claim in P_tc or one taken back meanwhile, see oneCounts),
// a CPU-bound request while a raise of gmax or
// a tentative synchronisation on its CPU was in flight, or after a
// lowering lost a race. Not told apart, to keep per-CPU counters off the
// one-CPU reservation's path (they cost it two locked operations): a
// CPU-bound refusal that rests on another task's one-CPU reservation in
// flight on that CPU which is then refused itself (both wanted the CPU's
// last register). In a single goroutine the count is 0.

// casState is cas's state of one pool: W_c and its layout (casPool,
// shared with cas-percpu), G with the all-CPU counts, and per CPU the
// task accounting beside W_c.
type casState struct {
	casPool
	gl   *casGlobal
	task []casCPU
}

// words returns the pool's W_c words and layout, for casStates.
func (s *casState) words() *casPool { return &s.casPool }

type casAlloc struct {
	casBase
	kinds [numKinds]*casState // by Kind, as casBase.byKind
	tasks casTasks
}

func newCAS(cfg Config) (Allocator, error) {
	a := new(casAlloc)
	a.kinds = casStates(&a.casBase, cfg, a, func(p casPool) *casState {
		return &casState{casPool: p, gl: new(casGlobal), task: make([]casCPU, cfg.CPUs)}
	})
	return a, nil
}

// Reserve implements Allocator: CPU-bound requests by casBase, the rest
// by reserveTask.
func (a *casAlloc) Reserve(r Request) (Slot, error) {
	if r.Task == NoTask { // tested here, so task requests skip the call
		if s, done, err := a.reserveCPUBound(r); done {
			return s, err
		}
	}
	return a.reserveTask(r)
}

// lowerTmax implements taskBound: when the CPU-bound breakpoints alone
// leave room, it lowers gmax from ge and tmax(c) from G and H_c.
func (a *casAlloc) lowerTmax(k Kind, c, cp, _ int) (retry, inexact bool) {
	p := a.kinds[k]
	if !admits(cp, 0, p.n) {
		return false, false
	}
	exact := p.gl.lower()
	return a.lowerCPU(p, c), !exact
}

// inFlight implements taskBound: a raise of gmax, or a tentative
// synchronisation on c.
func (a *casAlloc) inFlight(k Kind, c int) bool {
	p := a.kinds[k]
	return p.gl.g.Load().npend() > 0 || p.task[c].syncing.Load() != 0
}

// lowerCPU lowers tmax(c) to the least bound invariants G and C allow:
// gmax (or a raise in progress) and the largest value in H_c. It flags W_c
// by CAS, then reads G and scans H_c, then installs the bound expecting the
// flagged word. A task reservation that checked W_c before the flag had
// counted itself in ge or H_c before that check, so the scan sees it; one
// that checks W_c after sees the flag and clears it by CAS (raiseTmax), and
// the install fails. It reports whether it changed tmax or lost a race
// (worth retrying).
func (a *casAlloc) lowerCPU(p *casState, c int) bool {
	st := &p.cpu[c]
	w := st.w.Load()
	t := p.tmax(w)
	if t == 0 {
		return false
	}
	fw := p.flagged(w)
	if !st.w.CompareAndSwap(w, fw) {
		return true
	}
	b := max(p.gl.g.Load().bound(), p.task[c].h.max(p.n))
	nw := p.unflagged(fw)
	if b < t {
		nw = p.withTmax(nw, b)
	}
	for !st.w.CompareAndSwap(fw, nw) {
		// W_c moved (a CPU-bound slot, a raise): the scan may be stale, so
		// only take the flag off if it is still there. Clearing a flag
		// always changes the word, so it can only make an install fail.
		if fw = st.w.Load(); !p.lowering(fw) {
			break
		}
		nw = p.unflagged(fw)
	}
	return b < t
}

// refuse returns the refusal of r, counting it as spurious if a tentative
// hold may have caused it.
func (a *casAlloc) refuse(r Request, suspect bool) (Slot, error) {
	if suspect {
		a.spurious.Add(1)
	}
	return Slot{}, a.errs.noSlot(r)
}

func (a *casAlloc) reserveTask(r Request) (Slot, error) {
	if !a.cfg.requestOK(r) {
		return Slot{}, a.cfg.ValidateRequest(r)
	}
	p := a.kinds[r.Kind]
	ts := &a.tasks.get(r.Task).pools[a.cfg.poolIndex(r.Kind)]
	if r.CPU == AnyCPU {
		return a.reserveAll(p, ts, r)
	}
	return a.reserveOne(p, ts, r)
}

// reserveAll reserves an all-CPU breakpoint for a task: counted in its
// shard (ge[k+1]) before T shows it and admitted by G, in O(1) when gmax
// is already at least k+1. Without one-CPU breakpoints the CAS on T then
// commits it: the count and G's admission come first and hold until the
// count is taken back, so the hold is never tentative. A task with
// one-CPU breakpoints takes reserveMixed.
func (a *casAlloc) reserveAll(p *casState, ts *casTaskState, r Request) (Slot, error) {
	sh := &p.gl.shard[uint(r.Task)%casShards]
	for {
		tw := ts.w.Load()
		k := tw.g()
		if k >= p.n {
			return a.refuse(r, tw.tent() > 0)
		}
		i := lowestFree(tw.mask(), p.n)
		if i < 0 || ts.one.Load().held() > 0 {
			return a.reserveMixed(p, ts, sh, r)
		}
		sh.ge[k].Add(1)
		if g := p.gl.g.Load(); (g.max() <= k || g.lowering()) && !p.admitAll(k+1) {
			sh.ge[k].Add(-1)
			return a.refuse(r, tw.tent() > 0)
		}
		add := holdAt(i)
		if !ts.w.CompareAndSwap(tw, tw+add) {
			sh.ge[k].Add(-1)
			continue
		}
		if ts.one.Load().held() > 0 {
			// A one-CPU reservation of the task began meanwhile (the
			// crossing of invariant C): settle as reserveMixed does, with
			// this hold tentative from now on.
			ts.w.Add(tentOne)
			switch res, suspect := a.settleAll(p, ts, sh, i, add+tentOne); res {
			case casRetry:
				continue
			case casRefused:
				return a.refuse(r, suspect)
			}
		}
		return NewSlot(r, i, ts.allGen.take(i)), nil
	}
}

// reserveMixed is reserveAll for a task with one-CPU breakpoints: the
// index must be free on every CPU (or the slot gets NoIndex), the hold is
// tentative in T until every CPU with one-CPU breakpoints of the task has
// been synchronised and committed on W_c.
func (a *casAlloc) reserveMixed(p *casState, ts *casTaskState, sh *casShard, r Request) (Slot, error) {
	for {
		tw := ts.w.Load()
		k := tw.g()
		if k >= p.n {
			return a.refuse(r, tw.tent() > 0)
		}
		i, pos := lowestFree(tw.mask()|ts.oneMasks(), p.n), -1
		add := holdOv + tentOne
		if i >= 0 {
			add = holdAt(i) + tentOne
		} else if pos = ts.takeOv(); pos < 0 { // fragmented indexes: see NoIndex
			return a.refuse(r, true)
		}
		sh.ge[k].Add(1)
		if !ts.w.CompareAndSwap(tw, tw+add) {
			sh.ge[k].Add(-1)
			ts.dropOv(pos)
			continue
		}
		res, suspect := casRefused, ts.w.Load().tent() > 1
		if p.admitAll(k + 1) {
			res, suspect = a.settleAll(p, ts, sh, i, add)
		} else {
			a.unreserveAll(ts, sh, add)
			a.syncAll(p, ts, false)
		}
		switch res {
		case casRetry:
			ts.dropOv(pos)
			continue
		case casRefused:
			ts.dropOv(pos)
			return a.refuse(r, suspect)
		}
		return ts.slot(r, i, pos), nil
	}
}

// settleAll's outcomes.
const (
	casDone = iota
	casRetry
	casRefused
)

// settleAll finishes an all-CPU reservation at index i (-1: an overflow
// position) whose tentative T change add is made and admitted by G: it
// steps back if a one-CPU reservation of the task took i meanwhile (it or
// we, or both, see the other), else synchronises the task's CPUs and
// commits, or takes the hold back if a CPU has no room.
func (a *casAlloc) settleAll(p *casState, ts *casTaskState, sh *casShard, i int, add taskWord) (res int, suspect bool) {
	if i >= 0 && ts.oneMasks()&(1<<i) != 0 {
		a.unreserveAll(ts, sh, add)
		return casRetry, false
	}
	if fail := a.syncAll(p, ts, true); fail >= 0 {
		suspect = ts.w.Load().tent() > 1 || p.task[fail].syncing.Load() != 0
		a.unreserveAll(ts, sh, add)
		a.syncAll(p, ts, false)
		return casRefused, suspect
	}
	ts.w.Sub(tentOne) // committed: no longer tentative
	return casDone, false
}

// unreserveAll takes back a tentative all-CPU breakpoint whose T change
// was add. Other reservations of the task may have moved g since, so the
// count taken back is the level the change actually leaves (ge[g_old]),
// not the one the reservation added: the counts follow T's transitions.
func (a *casAlloc) unreserveAll(ts *casTaskState, sh *casShard, add taskWord) {
	k := (ts.w.Sub(add) + add).g()
	sh.ge[k-1].Add(-1)
}

// syncAll brings every P_tc of the task to its current g (syncCPU); with
// raise, it returns the first CPU without room, else -1.
func (a *casAlloc) syncAll(p *casState, ts *casTaskState, raise bool) int {
	cp := ts.cpu.Load()
	if cp == nil {
		return -1
	}
	for c := range *cp {
		pc := &(*cp)[c]
		if pc.w.Load().one() == 0 {
			continue
		}
		if !raise {
			a.syncCPU(p, ts, pc, c, false)
			continue
		}
		t := &p.task[c]
		t.syncing.Add(1)
		ok := a.syncCPU(p, ts, pc, c, true)
		t.syncing.Add(-1)
		if !ok {
			return c
		}
	}
	return -1
}

// syncCPU brings gseen in P_tc to the task's current g and, with raise,
// commits the resulting value on W_c (cp(c) + value <= N, invariant C); it
// reports false if that does not fit. Without raise (releases and
// rollbacks) a value that does not fit is a tentative all-CPU reservation
// that will fail here and roll back, and is left alone.
func (a *casAlloc) syncCPU(p *casState, ts *casTaskState, pc *casOneCPU, c int, raise bool) bool {
	for {
		ow := pc.w.Load()
		if ow.one() == 0 {
			return true
		}
		if g := ts.w.Load().g(); ow.gseen() != g {
			nw := ow.synced(g)
			if nw.val() > p.n {
				return !raise
			}
			p.transition(c, &pc.w, ow, nw)
			continue
		}
		if !raise {
			return true
		}
		return p.raiseTmax(c, ow.val())
	}
}

// reserveOne reserves a one-CPU breakpoint of a task on c: claimed in P_tc
// with gseen = g, then checked against T's mask (an all-CPU reservation of
// the task may have taken the index), synchronised and committed on W_c.
// Its slot generation, taken last, marks the claim committed.
func (a *casAlloc) reserveOne(p *casState, ts *casTaskState, r Request) (Slot, error) {
	c := r.CPU
	cpus := ts.cpu.Load()
	if cpus == nil {
		cpus = ts.newCPUs(a.cfg.CPUs)
	}
	pc := &(*cpus)[c]
	start := ts.one.Add(oneHold).rolled()
	var own uint16 // claims this reservation took back
	for {
		ow := pc.w.Load()
		tw := ts.w.Load()
		g, one := tw.g(), ow.one()
		i := lowestFree(ow.mask()|tw.mask(), p.n)
		if i < 0 || g+one+1 > p.n {
			return a.refuseOne(ts, pc, r, tw.tent() > 0, start+own)
		}
		if !p.transition(c, &pc.w, ow, ow.claimed(i, g)) {
			continue
		}
		tw = ts.w.Load()
		if tw.mask()&(1<<i) != 0 {
			a.rollbackOne(p, ts, pc, c, i)
			own++
			continue
		}
		// Commonly g has not moved and W_c already bounds the value: the
		// claim is then committed (raiseTmax's fast case, inline).
		if w := p.cpu[c].w.Load(); tw.g() == g && p.tmax(w) >= g+one+1 && !p.lowering(w) {
			return NewSlot(r, i, pc.gen.take(i)), nil
		}
		if !a.syncCPU(p, ts, pc, c, true) {
			a.rollbackOne(p, ts, pc, c, i)
			return a.refuseOne(ts, pc, r, ts.w.Load().tent() > 0, start+own+1)
		}
		return NewSlot(r, i, pc.gen.take(i)), nil
	}
}

// rollbackOne takes back reserveOne's claim at index i, counted in
// oneCounts as rolling before the unclaim and as rolled after it.
func (a *casAlloc) rollbackOne(p *casState, ts *casTaskState, pc *casOneCPU, c, i int) {
	ts.one.Add(oneRolling)
	p.unclaim(pc, c, i)
	ts.one.Add(oneRolled - oneRolling)
}

// refuseOne ends a refused one-CPU reservation on pc, counting it as
// spurious if a tentative all-CPU hold, or another one-CPU claim of the
// task, may have caused it. A claim it saw in P_tc is, when it looks
// again: still there and uncommitted (claimsInFlight); or committed, so
// the refusal stands; or taken back. A claim taken back was counted as
// rolling before its unclaim, which came after the reservation's start,
// and is counted as rolled after it: so P_tc, read first, still shows it,
// or the counts, read after, show it rolling, or rolled beyond want (the
// count at the start plus the reservation's own).
func (a *casAlloc) refuseOne(ts *casTaskState, pc *casOneCPU, r Request, tentative bool, want uint16) (Slot, error) {
	others := pc.claimsInFlight()
	if n := ts.one.Sub(oneHold); n.rolling() != 0 || n.rolled() != want {
		others = true
	}
	return a.refuse(r, tentative || others)
}

// Release implements Allocator: CPU-bound slots by casBase, task slots
// of the radix table with a register index inline, the rest by
// releaseTask. A release never lowers a bound: G and W_c keep theirs
// until a CPU-bound refusal needs them lower (reserveCPUSlow).
func (a *casAlloc) Release(s Slot) error {
	r := s.req
	if r.Task == NoTask {
		if done, err := a.releaseCPU(s); done {
			return err
		}
	} else if r.Kind < numKinds && s.gen&1 != 0 && uint(s.index) < MaxSlots && uint(r.CPU+1) <= uint(a.cfg.CPUs) {
		if rec := a.tasks.dense(r.Task); rec != nil {
			ts := &rec.pools[a.cfg.poolIndex(r.Kind)]
			if r.CPU != AnyCPU {
				return a.releaseOne(ts, s)
			}
			// releaseAll for a register index, written out: one call
			// more costs the all-CPU pair 2 cycles of 80 here.
			i := int(s.index) & (MaxSlots - 1)
			if !ts.allGen.give(i, s.gen) {
				return a.errs.stale(r)
			}
			a.dropAll(a.kinds[r.Kind], ts, r.Task, holdAt(i))
			return nil
		}
	}
	return a.releaseTask(s)
}

// releaseAll releases all-CPU slot s, at a register index or an overflow
// position: its generation decides whether it is held (an index beyond
// the pool never had one), then it comes out of T and then out of the
// counts.
func (a *casAlloc) releaseAll(ts *casTaskState, s Slot) error {
	r, raw := s.req, int(s.index)
	if !ts.give(raw, s.gen) {
		return a.errs.stale(r)
	}
	sub := holdOv
	if raw >= 0 {
		sub = holdAt(raw)
	}
	a.dropAll(a.kinds[r.Kind], ts, r.Task, sub)
	if raw < 0 {
		ts.dropOv(overflowPos(raw))
	}
	return nil
}

// dropAll takes a released all-CPU breakpoint (T change sub) of task out
// of T and then out of the counts.
func (a *casAlloc) dropAll(p *casState, ts *casTaskState, task int, sub taskWord) {
	k := (ts.w.Sub(sub) + sub).g()
	p.gl.shard[uint(task)%casShards].ge[k-1].Add(-1)
	if ts.one.Load().held() > 0 {
		a.syncAll(p, ts, false)
	}
}

// releaseOne releases one-CPU slot s: its generation decides whether it is
// held (an index beyond the pool never had one), then it comes out of P_tc
// and H_c, and then out of the task's count.
func (a *casAlloc) releaseOne(ts *casTaskState, s Slot) error {
	r, i := s.req, int(s.index)&(MaxSlots-1)
	cp := ts.cpu.Load()
	if cp == nil || !(*cp)[r.CPU].gen.give(i, s.gen) {
		return a.errs.stale(r)
	}
	a.kinds[r.Kind].unclaim(&(*cp)[r.CPU], r.CPU, i)
	ts.one.Sub(oneHold)
	return nil
}

// releaseTask releases what Release does not take inline (task slots of
// ids above the radix table, all-CPU slots at an overflow position) and
// rejects everything else, which cannot be held.
func (a *casAlloc) releaseTask(s Slot) error {
	if err := a.cfg.checkRelease(s); err != nil {
		return err
	}
	r := s.req
	var rec *casTask
	if !r.IsCPUBound() && s.gen&1 != 0 {
		rec = a.tasks.lookup(r.Task)
	}
	if rec == nil {
		return a.errs.stale(r)
	}
	ts := &rec.pools[a.cfg.poolIndex(r.Kind)]
	if r.CPU == AnyCPU {
		return a.releaseAll(ts, s) // checkRelease: only these have overflow positions
	}
	return a.releaseOne(ts, s)
}

// InUse implements Allocator: a live CPU-bound field, a task counted in
// H_c or in the all-CPU counts (tmax itself may be left high by releases).
func (a *casAlloc) InUse() bool {
	if a.cpuHeld(false) {
		return true
	}
	for k, p := range a.pools {
		if p == nil {
			continue
		}
		st := a.kinds[k]
		for c := range st.task {
			if st.task[c].h.used() {
				return true
			}
		}
		if st.gl.used() {
			return true
		}
	}
	return false
}

package alloc

import "sync"

func init() { register("legacy", newLegacy) }

// legacyEntry is one task breakpoint on the global list (bp_task_head).
type legacyEntry struct {
	task int
	cpu  int32
	pool uint8
	raw  int8
	gen  uint32
}

// legacyCPU is the pre-2022 per-CPU bp_cpuinfo of one pool.
type legacyCPU struct {
	pinned int
	tsk    histogram // nr_task_bp_pinned
	mask   uint32
	gen    gens
}

// legacyAlloc is the design before Elver's 2022 series: one mutex
// (nr_bp_mutex) and a list of every task breakpoint. task_bp_pinned walks
// the whole list for each CPU a task breakpoint covers, both to admit it
// (fetch_bp_busy_slots) and to move the task in the per-CPU histograms
// (toggle_bp_task_slot), so a task reservation costs O(task breakpoints x
// CPUs): the blow-up perf bench breakpoint showed. The model also walks the
// list to find a task's free register indexes and the entry a Release names.
type legacyAlloc struct {
	cfg  Config
	mu   sync.Mutex
	cpu  [numKinds][]legacyCPU
	list []legacyEntry
	gen  uint32 // odd generations for list entries
	errs errTable
}

func newLegacy(cfg Config) (Allocator, error) {
	a := &legacyAlloc{cfg: cfg, gen: 1, errs: newErrTable(cfg)}
	a.cpu[Data] = make([]legacyCPU, cfg.CPUs)
	if cfg.InstSlots > 0 {
		a.cpu[Inst] = make([]legacyCPU, cfg.CPUs)
	}
	return a, nil
}

// taskBPPinned is task_bp_pinned: the task's breakpoints in pool p that run
// on cpu, and the register indexes and overflow positions they hold.
func (a *legacyAlloc) taskBPPinned(task, cpu int, p uint8) (n int, mask, ov uint32) {
	for i := range a.list {
		e := &a.list[i]
		if e.task != task || e.pool != p || (e.cpu >= 0 && cpu >= 0 && int(e.cpu) != cpu) {
			continue
		}
		if cpu >= 0 || e.cpu < 0 {
			n++
		}
		if e.raw >= 0 {
			mask |= 1 << e.raw
		} else {
			ov |= 1 << overflowPos(int(e.raw))
		}
	}
	return n, mask, ov
}

// Reserve implements Allocator.
func (a *legacyAlloc) Reserve(r Request) (Slot, error) {
	if err := a.cfg.validate(r); err != nil {
		return Slot{}, err
	}
	p := uint8(a.cfg.poolIndex(r.Kind))
	n := a.cfg.PoolSize(r.Kind)
	cpus := a.cpu[p]
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.IsCPUBound() {
		c := &cpus[r.CPU]
		if !admits(c.pinned, c.tsk.max(n), n) {
			return Slot{}, a.errs.noSlot(r)
		}
		raw := lowestFree(c.mask, n)
		c.mask |= 1 << raw
		c.pinned++
		return NewSlot(r, raw, c.gen.take(raw)), nil
	}
	lo, hi := r.CPU, r.CPU+1
	if r.CPU == AnyCPU {
		lo, hi = 0, len(cpus)
	}
	for c := lo; c < hi; c++ {
		pinned, _, _ := a.taskBPPinned(r.Task, c, p)
		if !admits(cpus[c].pinned, pinned, n) {
			return Slot{}, a.errs.noSlot(r)
		}
	}
	_, used, ov := a.taskBPPinned(r.Task, r.CPU, p)
	raw := lowestFree(used, n)
	if raw < 0 {
		raw = overflowRaw(lowestFree(ov, MaxSlots)) // see NoIndex
	}
	for c := lo; c < hi; c++ { // toggle_bp_task_slot, before list_add_tail
		pinned, _, _ := a.taskBPPinned(r.Task, c, p)
		cpus[c].tsk.add(pinned, 1)
	}
	a.gen += 2
	a.list = append(a.list, legacyEntry{task: r.Task, cpu: int32(r.CPU), pool: p, raw: int8(raw), gen: a.gen})
	return NewSlot(r, raw, a.gen), nil
}

// Release implements Allocator.
func (a *legacyAlloc) Release(s Slot) error {
	if err := a.cfg.checkRelease(s); err != nil {
		return err
	}
	r := s.req
	p := uint8(a.cfg.poolIndex(r.Kind))
	cpus := a.cpu[p]
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.IsCPUBound() {
		c := &cpus[r.CPU]
		if !c.gen.give(int(s.index), s.gen) {
			return a.errs.stale(r)
		}
		c.mask &^= 1 << s.index
		c.pinned--
		return nil
	}
	at := -1
	for i := range a.list {
		e := &a.list[i]
		if e.gen == s.gen && e.task == r.Task && int(e.cpu) == r.CPU && e.pool == p && int(e.raw) == int(s.index) {
			at = i
			break
		}
	}
	if at < 0 {
		return a.errs.stale(r)
	}
	lo, hi := r.CPU, r.CPU+1
	if r.CPU == AnyCPU {
		lo, hi = 0, len(cpus)
	}
	for c := lo; c < hi; c++ { // toggle_bp_task_slot, before list_del
		pinned, _, _ := a.taskBPPinned(r.Task, c, p)
		cpus[c].tsk.add(pinned, -1)
	}
	last := len(a.list) - 1
	a.list[at] = a.list[last]
	a.list = a.list[:last]
	return nil
}

// InUse implements Allocator.
func (a *legacyAlloc) InUse() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.list) > 0 {
		return true
	}
	for _, cpus := range a.cpu {
		for i := range cpus {
			if cpus[i].pinned > 0 {
				return true
			}
		}
	}
	return false
}

// preload gives each of tasks one all-CPU breakpoint in kind's pool, in
// O(len(tasks) x CPUs) instead of the O(len(tasks)^2 x CPUs) of reserving
// them one by one, so benchmarks can build 65536 live tasks. It reaches the
// same state as Reserve on an allocator whose tasks hold nothing yet
// (TestLegacyPreload checks this).
func (a *legacyAlloc) preload(tasks []int, kind Kind) []Slot {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := uint8(a.cfg.poolIndex(kind))
	slots := make([]Slot, len(tasks))
	for i, t := range tasks {
		a.gen += 2
		a.list = append(a.list, legacyEntry{task: t, cpu: AnyCPU, pool: p, raw: 0, gen: a.gen})
		slots[i] = NewSlot(Request{Task: t, CPU: AnyCPU, Kind: kind}, 0, a.gen)
	}
	for c := range a.cpu[p] {
		a.cpu[p][c].tsk.count[0].Add(int32(len(tasks)))
	}
	return slots
}

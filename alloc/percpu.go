package alloc

import "sync"

func init() { register("percpu", newPerCPU) }

// paddedMutex keeps per-CPU locks on separate cache lines.
type paddedMutex struct {
	sync.Mutex
	_ [56]byte
}

// perCPUAlloc keeps the ledger under per-CPU locks. A CPU-bound reservation
// takes only its CPU's lock and writes only that CPU's state. A task
// reservation takes the task's mutex, then its CPU's lock, or every CPU's
// lock (ascending, so no deadlock) when it touches every CPU: a breakpoint
// on all CPUs, or a task switching between the CPU-independent and the
// per-CPU histograms (toggle_bp_slot cases 2.a and 2.b).
type perCPUAlloc struct {
	cfg   Config
	ls    ledgers
	locks []paddedMutex
	tasks sync.Map // task id -> *taskRec
}

func newPerCPU(cfg Config) (Allocator, error) {
	return &perCPUAlloc{cfg: cfg, ls: newLedgers(cfg, false), locks: make([]paddedMutex, cfg.CPUs)}, nil
}

// span is the locks a task reservation takes: cpu's, or with all every
// CPU's, which lock takes in ascending order so that no two deadlock.
func (a *perCPUAlloc) span(all bool, cpu int) []paddedMutex {
	if all {
		return a.locks
	}
	return a.locks[cpu : cpu+1]
}

func (a *perCPUAlloc) lock(all bool, cpu int) {
	locks := a.span(all, cpu)
	for i := range locks {
		locks[i].Lock()
	}
}

func (a *perCPUAlloc) unlock(all bool, cpu int) {
	locks := a.span(all, cpu)
	for i := range locks {
		locks[i].Unlock()
	}
}

// Reserve implements Allocator.
func (a *perCPUAlloc) Reserve(r Request) (Slot, error) {
	if err := a.cfg.validate(r); err != nil {
		return Slot{}, err
	}
	l := a.ls[a.cfg.poolIndex(r.Kind)]
	if r.IsCPUBound() {
		a.locks[r.CPU].Lock()
		s, err := reserveLocked(a.cfg, l, nil, r)
		a.locks[r.CPU].Unlock()
		return s, err
	}
	rec := taskOf(&a.tasks, r.Task)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	tp := &rec.pools[a.cfg.poolIndex(r.Kind)]
	all := r.CPU == AnyCPU || tp.onCPU == 0
	a.lock(all, r.CPU)
	s, err := reserveLocked(a.cfg, l, tp, r)
	a.unlock(all, r.CPU)
	return s, err
}

// Release implements Allocator.
func (a *perCPUAlloc) Release(s Slot) error {
	l, err := a.ls.forRelease(a.cfg, s)
	if err != nil {
		return err
	}
	r := s.req
	if r.IsCPUBound() {
		a.locks[r.CPU].Lock()
		err := releaseLocked(l, nil, s)
		a.locks[r.CPU].Unlock()
		return err
	}
	rec := loadedTask(&a.tasks, r.Task)
	if rec == nil {
		return l.errs.stale(r)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	tp := &rec.pools[a.cfg.poolIndex(r.Kind)]
	all := r.CPU == AnyCPU || tp.onCPU <= 1
	a.lock(all, r.CPU)
	err = releaseLocked(l, tp, s)
	a.unlock(all, r.CPU)
	return err
}

// InUse implements Allocator.
func (a *perCPUAlloc) InUse() bool {
	a.lock(true, 0)
	defer a.unlock(true, 0)
	return a.ls.used()
}

// loadedTask returns task's record in m, or nil when it has none.
func loadedTask(m *sync.Map, task int) *taskRec {
	v, _ := m.Load(task)
	rec, _ := v.(*taskRec)
	return rec
}

// taskOf finds or creates a task's record; only a task's first
// reservation allocates.
func taskOf(m *sync.Map, task int) *taskRec {
	if v, ok := m.Load(task); ok {
		return v.(*taskRec)
	}
	v, _ := m.LoadOrStore(task, new(taskRec))
	return v.(*taskRec)
}

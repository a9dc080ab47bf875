package alloc

import "sync"

func init() { register("mutex", newMutex) }

// mutexAlloc is the simplest correct strategy: one global lock around the
// kernel's O(1)-per-task histogram accounting (the ledger).
type mutexAlloc struct {
	cfg   Config
	mu    sync.Mutex
	ls    ledgers
	tasks map[int]*taskRec
}

func newMutex(cfg Config) (Allocator, error) {
	return &mutexAlloc{cfg: cfg, ls: newLedgers(cfg, true), tasks: map[int]*taskRec{}}, nil
}

// Reserve implements Allocator.
func (a *mutexAlloc) Reserve(r Request) (Slot, error) {
	if err := a.cfg.validate(r); err != nil {
		return Slot{}, err
	}
	l := a.ls[a.cfg.poolIndex(r.Kind)]
	a.mu.Lock()
	defer a.mu.Unlock()
	var tp *taskPool
	if !r.IsCPUBound() {
		rec := a.tasks[r.Task]
		if rec == nil {
			rec = new(taskRec)
			a.tasks[r.Task] = rec
		}
		tp = &rec.pools[a.cfg.poolIndex(r.Kind)]
	}
	return reserveLocked(a.cfg, l, tp, r)
}

// Release implements Allocator.
func (a *mutexAlloc) Release(s Slot) error {
	if err := a.cfg.checkRelease(s); err != nil {
		return err
	}
	r := s.req
	l := a.ls[a.cfg.poolIndex(r.Kind)]
	a.mu.Lock()
	defer a.mu.Unlock()
	var tp *taskPool
	if !r.IsCPUBound() {
		rec := a.tasks[r.Task]
		if rec == nil {
			return l.errs.stale(r)
		}
		tp = &rec.pools[a.cfg.poolIndex(r.Kind)]
	}
	return releaseLocked(l, tp, s)
}

// InUse implements Allocator.
func (a *mutexAlloc) InUse() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ls.used()
}

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
	tp, _ := a.poolOf(r, true)
	return reserveLocked(a.cfg, l, tp, r)
}

// poolOf returns r's task pool, nil for a CPU-bound r. A task without a
// record gets one when create is set; otherwise ok is false. a.mu is held.
func (a *mutexAlloc) poolOf(r Request, create bool) (tp *taskPool, ok bool) {
	if r.IsCPUBound() {
		return nil, true
	}
	rec := a.tasks[r.Task]
	if rec == nil {
		if !create {
			return nil, false
		}
		rec = new(taskRec)
		a.tasks[r.Task] = rec
	}
	return &rec.pools[a.cfg.poolIndex(r.Kind)], true
}

// Release implements Allocator.
func (a *mutexAlloc) Release(s Slot) error {
	l, err := a.ls.forRelease(a.cfg, s)
	if err != nil {
		return err
	}
	r := s.req
	a.mu.Lock()
	defer a.mu.Unlock()
	tp, ok := a.poolOf(r, false)
	if !ok {
		return l.errs.stale(r)
	}
	return releaseLocked(l, tp, s)
}

// InUse implements Allocator.
func (a *mutexAlloc) InUse() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ls.used()
}

package alloc

import (
	"runtime"
	"sync"
	"sync/atomic"
)

func init() { register("linux", newLinux) }

// paddedCount is one reader counter of percpuRWSem, alone on its cache line.
type paddedCount struct {
	n atomic.Int64
	_ [56]byte
}

// percpuRWSem emulates the kernel's percpu_rw_semaphore (bp_cpuinfo_sem):
// readers touch only their own counter unless a writer is present; a writer
// blocks new readers and waits for the counters to drain. The kernel's
// rcu_sync grace period is replaced by sequentially consistent atomics: a
// reader increments its counter then checks blocked, a writer sets blocked
// then reads the counters, so at least one of them sees the other. Go has
// no CPU id, so a reader's shard is chosen by its task id.
type percpuRWSem struct {
	writer  sync.Mutex
	blocked atomic.Bool
	readers []paddedCount
}

func newPercpuRWSem() *percpuRWSem {
	return &percpuRWSem{readers: make([]paddedCount, 2*runtime.GOMAXPROCS(0))}
}

func (s *percpuRWSem) rLock(key int) *paddedCount {
	r := &s.readers[uint(key)%uint(len(s.readers))]
	for {
		r.n.Add(1)
		if !s.blocked.Load() {
			return r
		}
		// A writer is in: back off and queue behind it (percpu_down_read's
		// slow path), then retry the fast path.
		r.n.Add(-1)
		s.writer.Lock()
		s.writer.Unlock()
	}
}

func (s *percpuRWSem) rUnlock(r *paddedCount) { r.n.Add(-1) }

func (s *percpuRWSem) lock() {
	s.writer.Lock()
	s.blocked.Store(true)
	for i := range s.readers {
		for s.readers[i].n.Load() != 0 {
			runtime.Gosched()
		}
	}
}

func (s *percpuRWSem) unlock() {
	s.blocked.Store(false)
	s.writer.Unlock()
}

// linuxAlloc is a port of the 6.x design (Elver's 2022 series): task
// breakpoints take the task's mutex (perf_event_mutex) and the read side of
// bp_cpuinfo_sem and update the histograms atomically, so different tasks
// reserve in parallel; CPU-bound breakpoints need a stable snapshot of every
// task histogram of their CPU and take the write side. Tasks are found in a
// concurrent table (task_bps_ht).
type linuxAlloc struct {
	cfg   Config
	ls    ledgers
	sem   *percpuRWSem
	tasks sync.Map // task id -> *taskRec
}

func newLinux(cfg Config) (Allocator, error) {
	return &linuxAlloc{cfg: cfg, ls: newLedgers(cfg, true), sem: newPercpuRWSem()}, nil
}

// Reserve implements Allocator.
func (a *linuxAlloc) Reserve(r Request) (Slot, error) {
	if err := a.cfg.validate(r); err != nil {
		return Slot{}, err
	}
	l := a.ls[a.cfg.poolIndex(r.Kind)]
	if r.IsCPUBound() {
		a.sem.lock()
		s, err := reserveLocked(a.cfg, l, nil, r)
		a.sem.unlock()
		return s, err
	}
	rec := taskOf(&a.tasks, r.Task)
	rec.mu.Lock()
	rd := a.sem.rLock(r.Task)
	s, err := reserveLocked(a.cfg, l, &rec.pools[a.cfg.poolIndex(r.Kind)], r)
	a.sem.rUnlock(rd)
	rec.mu.Unlock()
	return s, err
}

// Release implements Allocator.
func (a *linuxAlloc) Release(s Slot) error {
	l, err := a.ls.forRelease(a.cfg, s)
	if err != nil {
		return err
	}
	r := s.req
	if r.IsCPUBound() {
		a.sem.lock()
		err := releaseLocked(l, nil, s)
		a.sem.unlock()
		return err
	}
	rec := loadedTask(&a.tasks, r.Task)
	if rec == nil {
		return l.errs.stale(r)
	}
	rec.mu.Lock()
	rd := a.sem.rLock(r.Task)
	err = releaseLocked(l, &rec.pools[a.cfg.poolIndex(r.Kind)], s)
	a.sem.rUnlock(rd)
	rec.mu.Unlock()
	return err
}

// InUse implements Allocator; like hw_breakpoint_is_used it reads the
// atomic counters without the lock.
func (a *linuxAlloc) InUse() bool { return a.ls.used() }

package alloc

import (
	"errors"
	"math/rand"
	"sync"
	"testing"
)

// newExcl returns an Exclusion over the "linux" strategy on cpus CPUs.
func newExcl(t testing.TB, cpus int) *Exclusion {
	t.Helper()
	inner, err := New("linux", X86(cpus))
	if err != nil {
		t.Fatal(err)
	}
	return NewExclusion(inner)
}

func mustReserve(t *testing.T, e *Exclusion, req Request, o Owner, addr uint64, n int) Slot {
	t.Helper()
	s, err := e.ReserveRange(req, o, addr, n)
	if err != nil {
		t.Fatalf("ReserveRange(%v, %v, %#x, %d): %v", req, o, addr, n, err)
	}
	return s
}

func mustRefuse(t *testing.T, e *Exclusion, req Request, o Owner, addr uint64, n int) {
	t.Helper()
	s, err := e.ReserveRange(req, o, addr, n)
	if err == nil {
		t.Fatalf("ReserveRange(%v, %v, %#x, %d) admitted slot %d, want ErrExcluded", req, o, addr, n, s.Index())
	}
	if !errors.Is(err, ErrExcluded) || !errors.Is(err, ErrNoSlot) {
		t.Fatalf("ReserveRange(%v, %v, %#x, %d): %v, want ErrExcluded and ErrNoSlot", req, o, addr, n, err)
	}
}

var (
	task0 = Request{Task: 0, CPU: AnyCPU}
	task1 = Request{Task: 1, CPU: AnyCPU}
)

func TestExclusionOverlapRefused(t *testing.T) {
	e := newExcl(t, 2)
	mustReserve(t, e, task0, Ptrace, 0x1000, 8)
	// Perf on the same task over the same doubleword: the case the
	// exclusion exists for.
	mustRefuse(t, e, task0, Perf, 0x1004, 4)
	mustRefuse(t, e, Request{Task: 0, CPU: 1}, Perf, 0x1000, 1)
	// And the reverse direction.
	e2 := newExcl(t, 2)
	mustReserve(t, e2, task0, Perf, 0x2000, 4)
	mustRefuse(t, e2, task0, Ptrace, 0x2000, 8)
}

func TestExclusionGranule(t *testing.T) {
	e := newExcl(t, 2)
	mustReserve(t, e, task0, Ptrace, 0x1000, 1)
	// Disjoint bytes in the same doubleword still conflict: powerpc widened
	// both ranges to HW_BREAKPOINT_SIZE before comparing.
	mustRefuse(t, e, task0, Perf, 0x1007, 1)
	// The next doubleword is free.
	mustReserve(t, e, task0, Perf, 0x1008, 8)
}

func TestExclusionSameOwnerAllowed(t *testing.T) {
	e := newExcl(t, 2)
	mustReserve(t, e, task0, Ptrace, 0x1000, 8)
	mustReserve(t, e, task0, Ptrace, 0x1000, 8)
	mustReserve(t, e, task1, Perf, 0x3000, 8)
	mustReserve(t, e, task1, Perf, 0x3000, 8)
	mustReserve(t, e, Request{Task: NoTask, CPU: 0}, Perf, 0x3000, 8)
}

func TestExclusionNonOverlapAllowed(t *testing.T) {
	e := newExcl(t, 2)
	mustReserve(t, e, task0, Ptrace, 0x1000, 8)
	mustReserve(t, e, task0, Perf, 0x1008, 8)
	mustReserve(t, e, task0, Perf, 0x0ff8, 8)
	if got := e.Tracked(); got != 3 {
		t.Fatalf("Tracked = %d, want 3", got)
	}
}

// TestExclusionTargets checks which targets conflict, following
// arch_reserve_bp_slot in arch/powerpc/kernel/hw_breakpoint.c (v6.1).
func TestExclusionTargets(t *testing.T) {
	const a = 0x4000
	cpu0 := Request{Task: NoTask, CPU: 0}
	t.Run("perf task vs ptrace of another task", func(t *testing.T) {
		e := newExcl(t, 2)
		mustReserve(t, e, task0, Ptrace, a, 8)
		mustReserve(t, e, task1, Perf, a, 8) // same_task_bps_check only
	})
	t.Run("perf cpu-bound vs ptrace of any task", func(t *testing.T) {
		e := newExcl(t, 2)
		mustReserve(t, e, task1, Ptrace, a, 8)
		mustRefuse(t, e, cpu0, Perf, a, 8) // all_task_bps_check
		mustRefuse(t, e, Request{Task: NoTask, CPU: 1}, Perf, a, 8)
	})
	t.Run("ptrace vs perf cpu-bound", func(t *testing.T) {
		e := newExcl(t, 2)
		mustReserve(t, e, Request{Task: NoTask, CPU: 1}, Perf, a, 8)
		mustRefuse(t, e, task0, Ptrace, a, 8) // all_cpu_bps_check
	})
	t.Run("ptrace vs perf task-on-cpu of another task", func(t *testing.T) {
		// A perf breakpoint on task 1 and CPU 0 sits in cpu_bps too, so it
		// refuses an overlapping ptrace breakpoint of any task.
		e := newExcl(t, 2)
		mustReserve(t, e, Request{Task: 1, CPU: 0}, Perf, a, 8)
		mustRefuse(t, e, task0, Ptrace, a, 8)
	})
	t.Run("perf task-on-cpu vs ptrace of another task", func(t *testing.T) {
		// The reverse is only checked against the same task.
		e := newExcl(t, 2)
		mustReserve(t, e, task0, Ptrace, a, 8)
		mustReserve(t, e, Request{Task: 1, CPU: 0}, Perf, a, 8)
	})
	t.Run("plain reservations are not tracked", func(t *testing.T) {
		e := newExcl(t, 2)
		s, err := e.Reserve(task0)
		if err != nil {
			t.Fatal(err)
		}
		mustReserve(t, e, task0, Ptrace, a, 8)
		if err := e.Release(s); err != nil {
			t.Fatal(err)
		}
	})
}

func TestExclusionBadInput(t *testing.T) {
	e := newExcl(t, 2)
	for _, c := range []struct {
		req  Request
		o    Owner
		addr uint64
		n    int
	}{
		{Request{Task: NoTask, CPU: 0}, Ptrace, 0x1000, 8}, // ptrace is per task
		{Request{Task: 0, CPU: 1}, Ptrace, 0x1000, 8},      // ... on every CPU
		{task0, Owner(0), 0x1000, 8},
		{task0, Perf, 0x1000, 0},
		{task0, Perf, ^uint64(0) - 2, 8},
		{Request{Task: 0, CPU: 7}, Perf, 0x1000, 8}, // rejected by the inner allocator
	} {
		if _, err := e.ReserveRange(c.req, c.o, c.addr, c.n); !errors.Is(err, ErrInvalid) {
			t.Errorf("ReserveRange(%v, %v, %#x, %d) = %v, want ErrInvalid", c.req, c.o, c.addr, c.n, err)
		}
	}
	if e.InUse() || e.Tracked() != 0 {
		t.Fatal("refused requests left state behind")
	}
}

func TestExclusionReleaseRemoves(t *testing.T) {
	e := newExcl(t, 2)
	p := mustReserve(t, e, task0, Ptrace, 0x1000, 8)
	c := mustReserve(t, e, Request{Task: 1, CPU: 1}, Perf, 0x8000, 8)
	mustRefuse(t, e, task0, Perf, 0x1000, 8)
	if err := e.Release(p); err != nil {
		t.Fatal(err)
	}
	q := mustReserve(t, e, task0, Perf, 0x1000, 8)
	if err := e.Release(p); !errors.Is(err, ErrNotReserved) {
		t.Fatalf("second Release = %v, want ErrNotReserved", err)
	}
	for _, s := range []Slot{q, c} {
		if err := e.Release(s); err != nil {
			t.Fatal(err)
		}
	}
	if e.InUse() || e.Tracked() != 0 {
		t.Fatalf("after releasing everything: InUse = %v, Tracked = %d", e.InUse(), e.Tracked())
	}
	// The kernel's own slot limit still applies underneath.
	for i := 0; i < 4; i++ {
		mustReserve(t, e, task0, Ptrace, 0x1000, 8)
	}
	if _, err := e.ReserveRange(task0, Ptrace, 0x1000, 8); !errors.Is(err, ErrNoSlot) || errors.Is(err, ErrExcluded) {
		t.Fatalf("fifth breakpoint: %v, want ErrNoSlot without ErrExcluded", err)
	}
}

// TestExclusionConcurrent has goroutines reserve and release overlapping
// ptrace and perf breakpoints on a few tasks and CPUs and checks, in a
// shadow set, that no two conflicting breakpoints were ever live at once.
// An entry enters the shadow set after ReserveRange returns and leaves it
// before Release, so any two entries in it were live together.
func TestExclusionConcurrent(t *testing.T) {
	e := newExcl(t, 2)
	type live struct {
		req        Request
		o          Owner
		start, end uint64
	}
	var (
		mu      sync.Mutex
		shadow  = map[Slot]live{}
		bad     []string
		admits  [3]int
		refuses int
	)
	conflict := func(a, b live) bool {
		if a.o == b.o || !(a.start < b.end && b.start < a.end) {
			return false
		}
		p, q := a, b
		if p.o != Ptrace {
			p, q = q, p
		}
		// p is the ptrace one, q the perf one: a task breakpoint on every
		// CPU or a CPU-bound one, the kinds whose conflict does not depend
		// on which came first.
		return q.req.Task == NoTask || q.req.Task == p.req.Task
	}
	const workers, iters = 8, 3000
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			var mine []Slot
			for i := 0; i < iters; i++ {
				if len(mine) > 0 && rng.Intn(2) == 0 {
					k := rng.Intn(len(mine))
					s := mine[k]
					mine = append(mine[:k], mine[k+1:]...)
					mu.Lock()
					delete(shadow, s)
					mu.Unlock()
					if err := e.Release(s); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				o := Owner(1 + rng.Intn(2))
				var req Request
				// Perf task-on-one-CPU breakpoints are left out: whether
				// they conflict with another task's ptrace breakpoint
				// depends on which came first (TestExclusionTargets), which
				// the shadow set cannot tell.
				if o == Ptrace || rng.Intn(2) == 0 {
					req = Request{Task: rng.Intn(3), CPU: AnyCPU}
				} else {
					req = Request{Task: NoTask, CPU: rng.Intn(2)}
				}
				addr := uint64(0x1000 + 4*rng.Intn(6))
				s, err := e.ReserveRange(req, o, addr, 4)
				if err != nil {
					if !errors.Is(err, ErrNoSlot) {
						t.Error(err)
						return
					}
					mu.Lock()
					refuses++
					mu.Unlock()
					continue
				}
				st, en := exclRange(addr, 4)
				l := live{req, o, st, en}
				mu.Lock()
				for os, other := range shadow {
					if conflict(l, other) {
						bad = append(bad, l.o.String()+" "+l.req.String()+" with "+other.o.String()+" "+other.req.String()+" slot "+os.Request().String())
					}
				}
				shadow[s] = l
				admits[o]++
				mu.Unlock()
				mine = append(mine, s)
			}
			for _, s := range mine {
				mu.Lock()
				delete(shadow, s)
				mu.Unlock()
				if err := e.Release(s); err != nil {
					t.Error(err)
				}
			}
		}(int64(w))
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d conflicting pairs were live together, first: %s", len(bad), bad[0])
	}
	if admits[Ptrace] == 0 || admits[Perf] == 0 || refuses == 0 {
		t.Fatalf("workload did not exercise both paths: admits %v, refusals %d", admits, refuses)
	}
	if e.InUse() || e.Tracked() != 0 {
		t.Fatalf("after releasing everything: InUse = %v, Tracked = %d", e.InUse(), e.Tracked())
	}
	t.Logf("admitted ptrace %d, perf %d; refused %d", admits[Ptrace], admits[Perf], refuses)
}

func BenchmarkExclusionReserve(b *testing.B) {
	for _, mode := range []string{"on", "off"} {
		b.Run("mode="+mode, func(b *testing.B) {
			e := newExcl(b, 2)
			b.ReportAllocs()
			req := Request{Task: NoTask, CPU: 0}
			for i := 0; b.Loop(); i++ {
				var s Slot
				var err error
				if mode == "on" {
					s, err = e.ReserveRange(req, Perf, 0x1000, 8)
				} else {
					s, err = e.inner.Reserve(req)
				}
				if err != nil {
					b.Fatal(err)
				}
				if mode == "on" {
					err = e.Release(s)
				} else {
					err = e.inner.Release(s)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

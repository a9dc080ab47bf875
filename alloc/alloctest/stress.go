package alloctest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"bpbench/alloc"
)

// shadow counts live slots from outside an allocator, incremented after a
// successful Reserve and decremented before Release, so every count is at
// most what the allocator really holds at that instant. All counts of one
// CPU and pool live in one word (5 bits each: cpu_pinned, then pinned_t(c)
// of each task), so the value an atomic add returns is a consistent
// snapshot: if it breaks a rule, the allocator held more than the rules
// allow at that instant. Only a real over-admission can trip it.
type shadow struct {
	cfg   alloc.Config
	tasks int
	word  [2][]atomic.Uint64 // per pool, per CPU
	cmask [2][]atomic.Uint32 // per pool, per CPU: CPU-bound indexes
	tmask [2][]atomic.Uint32 // per pool, [task*CPUs+c]: task indexes runnable on c
}

// shadowTasks is the most tasks a shadow word holds.
const shadowTasks = 64/5 - 1

func newShadow(cfg alloc.Config, tasks int) *shadow {
	s := &shadow{cfg: cfg, tasks: tasks}
	for k := range s.word {
		s.word[k] = make([]atomic.Uint64, cfg.CPUs)
		s.cmask[k] = make([]atomic.Uint32, cfg.CPUs)
		s.tmask[k] = make([]atomic.Uint32, tasks*cfg.CPUs)
	}
	return s
}

func (s *shadow) span(r alloc.Request) (int, int) {
	if r.CPU == alloc.AnyCPU {
		return 0, s.cfg.CPUs
	}
	return r.CPU, r.CPU + 1
}

func (s *shadow) mask(r alloc.Request, c int) *atomic.Uint32 {
	p := s.cfg.Pool(r.Kind)
	if r.IsCPUBound() {
		return &s.cmask[p][c]
	}
	return &s.tmask[p][r.Task*s.cfg.CPUs+c]
}

// add records a held slot and reports a rule or index violation.
func (s *shadow) add(sl alloc.Slot) error {
	r := sl.Request()
	p, n := s.cfg.Pool(r.Kind), s.cfg.PoolSize(r.Kind)
	var bit uint32
	if sl.Index() != alloc.NoIndex {
		bit = 1 << sl.Index()
	}
	lo, hi := s.span(r)
	for c := lo; c < hi; c++ {
		w := s.word[p][c].Add(1 << (5 * uint(r.Task+1)))
		cp := int(w & 31)
		for t := range s.tasks {
			if tp := int(w >> (5 * uint(t+1)) & 31); cp+tp > n {
				return fmt.Errorf("after %v was admitted: cpu_pinned %d + task %d's pinned %d > N = %d on CPU %d (%s)",
					r, cp, t, tp, n, c, rule(r))
			}
		}
		if old := s.mask(r, c).Or(bit); old&bit != 0 {
			return fmt.Errorf("%v: index %d already live for its target on CPU %d", r, sl.Index(), c)
		}
	}
	return nil
}

func (s *shadow) remove(sl alloc.Slot) {
	r := sl.Request()
	var bit uint32
	if sl.Index() != alloc.NoIndex {
		bit = 1 << sl.Index()
	}
	lo, hi := s.span(r)
	for c := lo; c < hi; c++ {
		s.mask(r, c).And(^bit)
		s.word[s.cfg.Pool(r.Kind)][c].Add(-(1 << (5 * uint(r.Task+1))))
	}
}

// worker is one stressing goroutine's state.
type worker struct {
	a    alloc.Allocator
	sh   *shadow
	held []alloc.Slot
	err  error
}

// reserve tries r; a panic or a broken rule ends the worker's run.
func (w *worker) reserve(r alloc.Request) bool {
	var s alloc.Slot
	var err error
	if p := catch(func() { s, err = w.a.Reserve(r) }); p != nil {
		w.err = fmt.Errorf("Reserve(%v): %v", r, p)
		return false
	}
	if err != nil {
		if !errors.Is(err, alloc.ErrNoSlot) {
			w.err = fmt.Errorf("Reserve(%v): %v, want nil or ErrNoSlot", r, err)
		}
		return false
	}
	w.held = append(w.held, s)
	if err := w.sh.add(s); err != nil {
		w.err = err
	}
	return true
}

func (w *worker) release(j int) {
	s := w.held[j]
	w.sh.remove(s)
	var err error
	if p := catch(func() { err = w.a.Release(s) }); p != nil {
		err = p
	}
	if err != nil {
		w.err = fmt.Errorf("release of held %v index %d: %v", s.Request(), s.Index(), err)
	}
	w.held = append(w.held[:j], w.held[j+1:]...)
}

func (w *worker) releaseAll() {
	for len(w.held) > 0 && w.err == nil {
		w.release(len(w.held) - 1)
	}
}

func spurious(a alloc.Allocator) uint64 {
	if sr, ok := a.(alloc.SpuriousRefusals); ok {
		return sr.SpuriousRefusals()
	}
	return 0
}

// contest is one barrier round: every worker makes its attempts, nobody
// releases until all are done, so the rules' bound is certain to be
// reached and the refusals beyond it are certain too.
type contest struct {
	name  string
	pre   []alloc.Request // reserved one by one before the round
	reqs  []alloc.Request // drawn from round-robin by the attempts
	bound int             // most slots the rules fit in total, pre included
}

func contests(cfg alloc.Config) []contest {
	n := cfg.Slots
	cpu := alloc.Request{Task: alloc.NoTask, CPU: 0}
	all := alloc.Request{Task: 0, CPU: alloc.AnyCPU}
	one := alloc.Request{Task: 0, CPU: cfg.CPUs - 1}
	other := alloc.Request{Task: 1, CPU: alloc.AnyCPU}
	return []contest{
		{"cpu", nil, []alloc.Request{cpu}, n},
		{"task_all_cpus", nil, []alloc.Request{all}, n},
		{"task_one_cpu", nil, []alloc.Request{one}, n},
		// CPU 0's CPU-bound count and the task's count share one budget.
		{"cpu_vs_task", nil, []alloc.Request{cpu, all}, n},
		{"cpu_vs_task_one_cpu", nil, []alloc.Request{{Task: alloc.NoTask, CPU: cfg.CPUs - 1}, one, all}, n},
		// Two tasks do not compete with each other, only with CPU 0.
		{"cpu_vs_two_tasks", nil, []alloc.Request{cpu, all, other}, 2 * n},
		// A slot held before the round binds the other rule, whatever the
		// order the workers run in.
		{"task_after_cpu", []alloc.Request{cpu}, []alloc.Request{all}, n},
		{"cpu_after_task", []alloc.Request{all}, []alloc.Request{cpu}, n},
		{"task_one_cpu_after_cpu", []alloc.Request{{Task: alloc.NoTask, CPU: cfg.CPUs - 1}}, []alloc.Request{one}, n},
	}
}

// testStress hammers the allocator from many goroutines. Barrier rounds
// (contests) make refusals certain by construction: more attempts than the
// rules can admit, all before any release, then a check of the held state
// against the rules, of the count admitted against the bound, and (for a
// strategy reporting no spurious refusal) that every shape refused is
// still refused. A free-running phase of random reservations and releases
// follows under the shadow check. Without -short and -race the two phases
// perform 10^6 operations per machine; -race runs 2*10^5, -short 5*10^4.
func testStress(t tb, f Constructor) {
	ops := 1_000_000
	switch {
	case testing.Short():
		ops = 50_000
	case raceEnabled:
		ops = 200_000
	}
	const workers, tasks = 8, 6
	for _, m := range []machine{
		{alloc.Config{CPUs: 1, Slots: 1}, 2},
		{alloc.X86(3), tasks},
		{alloc.Config{CPUs: 2, Slots: 3, InstSlots: 2}, tasks},
	} {
		t.Run(m.String(), func(t tb) {
			b := newBed(t, f, m.Config)
			sh := newShadow(m.Config, m.tasks)
			ws := make([]*worker, workers)
			for i := range ws {
				ws[i] = &worker{a: b.a, sh: sh}
			}
			cs := contests(m.Config)
			barrierOps, rounds := 0, 0
			for barrierOps < ops/5 && !t.Failed() {
				c := cs[rounds%len(cs)]
				attempts := 2*c.bound + workers // more than fit, whatever the rule
				barrierOps += attempts
				rounds++
				runContest(t, b, ws, c, attempts)
			}
			free := (ops - barrierOps) / workers
			var wg sync.WaitGroup
			for i, w := range ws {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(i), 7))
					for range free {
						if w.err != nil {
							return
						}
						if len(w.held) > 0 && (len(w.held) > 3 || rng.IntN(2) == 0) {
							w.release(rng.IntN(len(w.held)))
							continue
						}
						r := alloc.Request{Kind: alloc.Kind(rng.IntN(2)), Task: rng.IntN(m.tasks+1) - 1, CPU: rng.IntN(m.CPUs+1) - 1}
						if r.Task == alloc.NoTask && r.CPU == alloc.AnyCPU {
							r.CPU = 0
						}
						w.reserve(r)
					}
					w.releaseAll()
				}()
			}
			wg.Wait()
			for _, w := range ws {
				if w.err != nil {
					t.Errorf("free-running phase: %v", w.err)
				}
			}
			if b.inUse() {
				t.Errorf("InUse() after every goroutine released everything")
			}
			t.Logf("%d barrier rounds (%d attempts), %d free-running ops per worker; spurious refusals reported: %d",
				rounds, barrierOps, free, spurious(b.a))
		})
	}
}

// runContest is one barrier round of c with attempts attempts shared by
// the workers.
func runContest(t tb, b *bed, ws []*worker, c contest, attempts int) {
	t.Helper()
	for _, r := range c.pre {
		s := b.take(r)
		if err := ws[0].sh.add(s); err != nil {
			t.Fatalf("contest %s, before the round: %v", c.name, err)
		}
		ws[0].held = append(ws[0].held, s)
	}
	before := spurious(b.a)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var admitted atomic.Int64
	refused := make([]atomic.Bool, len(c.reqs))
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := i; j < attempts; j += len(ws) {
				k := j % len(c.reqs)
				if w.reserve(c.reqs[k]) {
					admitted.Add(1)
				} else if w.err == nil {
					refused[k].Store(true)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	var held []alloc.Slot
	for _, w := range ws {
		if w.err != nil {
			t.Fatalf("contest %s: %v", c.name, w.err)
		}
		held = append(held, w.held...)
	}
	if v := violation(b.cfg, held); v != "" {
		t.Fatalf("contest %s: over-admission once %d attempts were in: %s", c.name, attempts, v)
	}
	if n := admitted.Load() + int64(len(c.pre)); n > int64(c.bound) {
		t.Fatalf("contest %s: %d held (%d before the round, %d of %d attempts), the rules fit at most %d",
			c.name, n, len(c.pre), n-int64(len(c.pre)), attempts, c.bound)
	}
	if spurious(b.a) == before {
		// No refusal was spurious, so every refused shape was refused by
		// the rules; nothing has been released since, so it still is.
		for k, r := range c.reqs {
			if !refused[k].Load() {
				continue
			}
			if s, err := b.reserve(r); err == nil {
				t.Fatalf("contest %s: %v was refused while it fitted (admitted afterwards, nothing released), and SpuriousRefusals did not count it", c.name, r)
				b.release(s)
			}
		}
	}
	for _, w := range ws {
		w.releaseAll()
		if w.err != nil {
			t.Fatalf("contest %s: %v", c.name, w.err)
		}
	}
	b.ops = b.ops[:0]
}

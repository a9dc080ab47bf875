package alloc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// model is the obviously-correct reference: a list of live breakpoints and
// the formulas of kernel/events/hw_breakpoint.c evaluated by brute force.
type model struct {
	cfg  Config
	live []modelBP
}

type modelBP struct {
	r   Request
	idx int // raw: NoIndex for an all-CPU breakpoint without a register
}

func (m *model) runsOn(r Request, c int) bool { return r.CPU == AnyCPU || r.CPU == c }

// pinned is pinned_t(c) in r's pool; for NoTask it is cpu_pinned[c].
func (m *model) pinned(task, c int, k Kind) int {
	n := 0
	for _, b := range m.live {
		if m.cfg.Pool(b.r.Kind) == m.cfg.Pool(k) && b.r.Task == task && m.runsOn(b.r, c) {
			n++
		}
	}
	return n
}

func (m *model) admit(r Request) bool {
	n := m.cfg.PoolSize(r.Kind)
	for c := 0; c < m.cfg.CPUs; c++ {
		if !m.runsOn(r, c) {
			continue
		}
		cpu := m.pinned(NoTask, c, r.Kind)
		task := 0
		if r.IsCPUBound() { // max over every task that has anything
			for _, b := range m.live {
				if b.r.Task != NoTask {
					task = max(task, m.pinned(b.r.Task, c, r.Kind))
				}
			}
		} else {
			task = m.pinned(r.Task, c, r.Kind)
		}
		if cpu+task+1 > n {
			return false
		}
	}
	return true
}

// index is the lowest register no live breakpoint of the same target that
// can run on a common CPU uses.
func (m *model) index(r Request) int {
	n := m.cfg.PoolSize(r.Kind)
	for i := 0; i < n; i++ {
		free := true
		for _, b := range m.live {
			sameTarget := b.r.Task == r.Task && (r.Task != NoTask || b.r.CPU == r.CPU)
			common := r.CPU == AnyCPU || b.r.CPU == AnyCPU || b.r.CPU == r.CPU
			if m.cfg.Pool(b.r.Kind) == m.cfg.Pool(r.Kind) && sameTarget && common && b.idx == i {
				free = false
			}
		}
		if free {
			return i
		}
	}
	return NoIndex
}

// randomRequest draws targets so that all three kinds of breakpoint, both
// kinds and a few tasks collide often.
func randomRequest(rng *rand.Rand, cfg Config, tasks int) Request {
	r := Request{Kind: Kind(rng.IntN(2))}
	switch rng.IntN(3) {
	case 0:
		r.Task, r.CPU = NoTask, rng.IntN(cfg.CPUs)
	case 1:
		r.Task, r.CPU = rng.IntN(tasks), AnyCPU
	default:
		r.Task, r.CPU = rng.IntN(tasks), rng.IntN(cfg.CPUs)
	}
	return r
}

// TestDifferential runs long random single-goroutine sequences on every
// strategy and the model in lockstep: every reservation must be admitted or
// refused alike and get the same Index.
func TestDifferential(t *testing.T) {
	steps := 20000
	if testing.Short() {
		steps = 3000
	}
	for _, cfg := range []Config{X86(3), {CPUs: 2, Slots: 3, InstSlots: 2}, {CPUs: 4, Slots: 2}} {
		t.Run(fmt.Sprintf("cpus=%d/slots=%d/inst=%d", cfg.CPUs, cfg.Slots, cfg.InstSlots), func(t *testing.T) {
			names := Strategies()
			allocs := make([]Allocator, len(names))
			held := make([][]Slot, len(names))
			for i, s := range names {
				allocs[i], _ = New(s, cfg)
			}
			m := &model{cfg: cfg}
			rng := rand.New(rand.NewPCG(1, uint64(cfg.CPUs)))
			admitted, refused, noIndex := 0, 0, 0
			for step := 0; step < steps; step++ {
				if len(m.live) > 0 && rng.IntN(5) < 2 {
					j := rng.IntN(len(m.live))
					for i, a := range allocs {
						if err := a.Release(held[i][j]); err != nil {
							t.Fatalf("step %d: %s: release %v: %v", step, names[i], m.live[j].r, err)
						}
						held[i] = append(held[i][:j], held[i][j+1:]...)
					}
					m.live = append(m.live[:j], m.live[j+1:]...)
					continue
				}
				r := randomRequest(rng, cfg, 4)
				want, wantIdx := m.admit(r), m.index(r)
				for i, a := range allocs {
					s, err := a.Reserve(r)
					if want != (err == nil) || (err != nil && !errors.Is(err, ErrNoSlot)) {
						t.Fatalf("step %d: %s: %v: err %v, model admits %v (live %v)", step, names[i], r, err, want, m.live)
					}
					if want {
						if s.Index() != wantIdx {
							t.Fatalf("step %d: %s: %v: index %d, model %d (live %v)", step, names[i], r, s.Index(), wantIdx, m.live)
						}
						held[i] = append(held[i], s)
					}
				}
				if want {
					m.live = append(m.live, modelBP{r, wantIdx})
					admitted++
					if wantIdx == NoIndex {
						noIndex++
					}
				} else {
					refused++
				}
			}
			for i, a := range allocs {
				for _, s := range held[i] {
					if err := a.Release(s); err != nil {
						t.Fatalf("%s: final release: %v", names[i], err)
					}
				}
				if a.InUse() {
					t.Errorf("%s: InUse() after releasing everything", names[i])
				}
			}
			t.Logf("admitted %d (NoIndex %d), refused %d", admitted, noIndex, refused)
			if admitted < steps/4 || refused < steps/10 {
				t.Errorf("sequence exercises too little: admitted %d refused %d", admitted, refused)
			}
		})
	}
}

// shadow counts live slots from outside an allocator, incremented after a
// successful Reserve and decremented before Release, so every count is at
// most what the allocator really holds at that instant. All counts of one
// CPU and pool live in one word (5 bits each: cpu_pinned, then pinned_t(c)
// of each task), so the value an atomic add returns is a consistent
// snapshot: if it breaks a rule, the allocator held more than the rules
// allow at that instant.
type shadow struct {
	cfg   Config
	tasks int
	word  [numKinds][]atomic.Uint64 // per CPU
	cmask [numKinds][]atomic.Uint32
	tmask [numKinds][]atomic.Uint32 // [task*CPUs+c]: indexes runnable on c
}

func newShadow(cfg Config, tasks int) *shadow {
	s := &shadow{cfg: cfg, tasks: tasks}
	if (tasks+1)*5 > 64 {
		panic("shadow: too many tasks for one word")
	}
	for k := range s.word {
		s.word[k] = make([]atomic.Uint64, cfg.CPUs)
		s.cmask[k] = make([]atomic.Uint32, cfg.CPUs)
		s.tmask[k] = make([]atomic.Uint32, tasks*cfg.CPUs)
	}
	return s
}

func (s *shadow) span(r Request) (int, int) {
	if r.CPU == AnyCPU {
		return 0, s.cfg.CPUs
	}
	return r.CPU, r.CPU + 1
}

// field is the shift of a request's count in its CPU word.
func field(r Request) uint { return 5 * uint(r.Task+1) }

// check verifies the rules on one snapshot of a CPU's counts.
func (s *shadow) check(w uint64, n int, r Request, c int) error {
	cp := int(w & 31)
	for t := 0; t < s.tasks; t++ {
		if tp := int(w >> (5 * uint(t+1)) & 31); cp+tp > n {
			return fmt.Errorf("after %v: cpu_pinned %d + task %d pinned %d > %d on CPU %d", r, cp, t, tp, n, c)
		}
	}
	return nil
}

// add records a held slot and reports a rule or index violation.
func (s *shadow) add(sl Slot) error {
	r, p, n := sl.Request(), s.cfg.Pool(sl.Request().Kind), s.cfg.PoolSize(sl.Request().Kind)
	var bit uint32
	if sl.Index() != NoIndex {
		bit = 1 << sl.Index()
	}
	lo, hi := s.span(r)
	for c := lo; c < hi; c++ {
		if err := s.check(s.word[p][c].Add(1<<field(r)), n, r, c); err != nil {
			return err
		}
		m := &s.cmask[p][c]
		if !r.IsCPUBound() {
			m = &s.tmask[p][r.Task*s.cfg.CPUs+c]
		}
		if old := m.Or(bit); old&bit != 0 {
			return fmt.Errorf("%v: index %d already live for its target on CPU %d", r, sl.Index(), c)
		}
	}
	return nil
}

func (s *shadow) remove(sl Slot) {
	r, p := sl.Request(), s.cfg.Pool(sl.Request().Kind)
	var bit uint32
	if sl.Index() != NoIndex {
		bit = 1 << sl.Index()
	}
	lo, hi := s.span(r)
	for c := lo; c < hi; c++ {
		m := &s.cmask[p][c]
		if !r.IsCPUBound() {
			m = &s.tmask[p][r.Task*s.cfg.CPUs+c]
		}
		m.And(^bit)
		s.word[p][c].Add(-(1 << field(r)))
	}
}

// TestStress hammers every strategy from many goroutines under the shadow
// check. Without -short and -race it performs 10^6 operations per strategy;
// -race slows these paths about tenfold, so it runs 2*10^5 to keep
// `go test -race ./alloc/...` within a few minutes on 2 cores; -short
// runs 5*10^4.
func TestStress(t *testing.T) {
	ops := 1_000_000
	switch {
	case testing.Short():
		ops = 50_000
	case raceEnabled:
		ops = 200_000
	}
	const workers, tasks = 8, 6
	for _, cfg := range []Config{X86(3), {CPUs: 2, Slots: 3, InstSlots: 2}} {
		forEach(t, cfg, func(t *testing.T, a Allocator) {
			sh := newShadow(cfg, tasks)
			var wg sync.WaitGroup
			var failed atomic.Bool
			var admitted, refused atomic.Int64
			errs := make(chan error, workers)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					var held []Slot
					for i := 0; i < ops/workers && !failed.Load(); i++ {
						if len(held) > 0 && (len(held) > 3 || rng.IntN(2) == 0) {
							j := rng.IntN(len(held))
							sh.remove(held[j])
							if err := a.Release(held[j]); err != nil {
								errs <- fmt.Errorf("release %v: %w", held[j].Request(), err)
								failed.Store(true)
								return
							}
							held = append(held[:j], held[j+1:]...)
							continue
						}
						s, err := a.Reserve(randomRequest(rng, cfg, tasks))
						if err != nil {
							if !errors.Is(err, ErrNoSlot) {
								errs <- err
								failed.Store(true)
								return
							}
							refused.Add(1)
							continue
						}
						admitted.Add(1)
						held = append(held, s)
						if err := sh.add(s); err != nil {
							errs <- err
							failed.Store(true)
							return
						}
					}
					for _, s := range held {
						sh.remove(s)
						if err := a.Release(s); err != nil {
							errs <- err
							failed.Store(true)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if a.InUse() {
				t.Error("InUse() after every goroutine released everything")
			}
			var spurious uint64
			if sr, ok := a.(SpuriousRefusals); ok {
				spurious = sr.SpuriousRefusals()
			}
			t.Logf("%d ops: admitted %d, refused %d (spurious <= %d)", ops, admitted.Load(), refused.Load(), spurious)
			if admitted.Load() < int64(ops/10) || refused.Load() < int64(ops/100) {
				t.Errorf("stress exercised too little: admitted %d refused %d", admitted.Load(), refused.Load())
			}
		})
	}
}

// TestLegacyPreload checks that the benchmark's bulk loader for legacy
// reaches the same state as reserving one by one: the same outcomes and
// indexes for a random sequence afterwards, on top of 50 loaded tasks.
func TestLegacyPreload(t *testing.T) {
	cfg := X86(2)
	loaded, _ := New("legacy", cfg)
	built, _ := New("legacy", cfg)
	ids := make([]int, 50)
	for i := range ids {
		ids[i] = 10 + i
	}
	var slotsBuilt []Slot
	for _, id := range ids {
		s, err := built.Reserve(Request{Task: id, CPU: AnyCPU})
		if err != nil {
			t.Fatal(err)
		}
		slotsBuilt = append(slotsBuilt, s)
	}
	slotsLoaded := loaded.(*legacyAlloc).preload(ids, Data)
	rng := rand.New(rand.NewPCG(3, 3))
	var hl, hb []Slot
	for i := 0; i < 3000; i++ {
		r := randomRequest(rng, cfg, 12)
		r.Task = (r.Task + 8) % 60 // overlap the loaded tasks
		if r.CPU == AnyCPU && r.Task == NoTask {
			continue
		}
		if rng.IntN(3) == 0 && len(hl) > 0 {
			j := rng.IntN(len(hl))
			if e1, e2 := loaded.Release(hl[j]), built.Release(hb[j]); e1 != nil || e2 != nil {
				t.Fatal(e1, e2)
			}
			hl, hb = append(hl[:j], hl[j+1:]...), append(hb[:j], hb[j+1:]...)
			continue
		}
		s1, e1 := loaded.Reserve(r)
		s2, e2 := built.Reserve(r)
		if (e1 == nil) != (e2 == nil) || s1.Index() != s2.Index() {
			t.Fatalf("step %d %v: preloaded %v/%v, built %v/%v", i, r, s1.Index(), e1, s2.Index(), e2)
		}
		if e1 == nil {
			hl, hb = append(hl, s1), append(hb, s2)
		}
	}
	releaseAll(t, loaded, append(hl, slotsLoaded...))
	releaseAll(t, built, append(hb, slotsBuilt...))
}

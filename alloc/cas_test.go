package alloc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// casStrategies are the lock-free strategies these tests are about.
var casStrategies = []string{"cas", "cas-percpu"}

// casConfigs are valid Configs at the edges of what the packing of W_c
// and the task words must hold.
var casConfigs = []Config{
	{CPUs: 1, Slots: 1},
	{CPUs: 2, Slots: MaxSlots},
	{CPUs: 2, Slots: MaxSlots, InstSlots: MaxSlots},
	{CPUs: 5, Slots: 2},
	{CPUs: 3, Slots: 3, InstSlots: 1},
	{CPUs: 256, Slots: 4},
}

// casRequest draws a request of every shape, kind and a few tasks.
func casRequest(rng *rand.Rand, cfg Config, tasks int) Request {
	r := Request{Kind: Kind(rng.IntN(2)), Task: rng.IntN(tasks), CPU: rng.IntN(cfg.CPUs)}
	switch rng.IntN(3) {
	case 0:
		r.Task = NoTask
	case 1:
		r.CPU = AnyCPU
	}
	return r
}

// TestCASFullCPU is the regression test for the crash of issue 9: with
// 16 registers, a task holding 16 one-CPU breakpoints on CPU 0 asked for
// an all-CPU one, and cas moved its histogram entry to a 17th bucket before
// the admission check. Every request that cannot fit must be ErrNoSlot, in
// a shared pool and in separate 16+16 pools.
func TestCASFullCPU(t *testing.T) {
	for _, s := range casStrategies {
		for _, cfg := range []Config{{CPUs: 2, Slots: MaxSlots}, {CPUs: 2, Slots: MaxSlots, InstSlots: MaxSlots}} {
			for _, k := range []Kind{Data, Inst} {
				t.Run(fmt.Sprintf("strategy=%s/inst=%d/%v", s, cfg.InstSlots, k), func(t *testing.T) {
					a, err := New(s, cfg)
					if err != nil {
						t.Fatal(err)
					}
					one := Request{Task: 0, CPU: 0, Kind: k}
					var held []Slot
					for i := 0; i < MaxSlots; i++ {
						sl, err := a.Reserve(one)
						if err != nil {
							t.Fatalf("one-CPU breakpoint %d: %v", i, err)
						}
						held = append(held, sl)
					}
					for _, r := range []Request{
						{Task: 0, CPU: AnyCPU, Kind: k},
						one,
						{Task: NoTask, CPU: 0, Kind: k},
					} {
						if _, err := a.Reserve(r); !errors.Is(err, ErrNoSlot) {
							t.Errorf("%v with CPU 0 full: %v, want ErrNoSlot", r, err)
						}
					}
					// CPU 1 still has room for the task and for CPU-bound ones.
					for _, r := range []Request{{Task: 0, CPU: 1, Kind: k}, {Task: NoTask, CPU: 1, Kind: k}} {
						sl, err := a.Reserve(r)
						if err != nil {
							t.Errorf("%v: %v", r, err)
							continue
						}
						held = append(held, sl)
					}
					if sr := a.(SpuriousRefusals).SpuriousRefusals(); sr != 0 {
						t.Errorf("%d spurious refusals in one goroutine", sr)
					}
					releaseEvery(t, a, held)
				})
			}
		}
	}
}

// releaseEvery releases held and checks that nothing is left in use.
func releaseEvery(t *testing.T, a Allocator, held []Slot) {
	t.Helper()
	for _, sl := range held {
		if err := a.Release(sl); err != nil {
			t.Errorf("release %v: %v", sl.Request(), err)
		}
	}
	if a.InUse() {
		t.Error("InUse() after releasing everything")
	}
}

// TestCASLockstep runs random single-goroutine sequences on cas,
// cas-percpu and mutex (the reference, itself checked against the model)
// for every Config of casConfigs and 40 tasks: the same admissions, the
// same indexes, no panic, no spurious refusal, nothing left in use.
func TestCASLockstep(t *testing.T) {
	steps := 6000
	if testing.Short() {
		steps = 1500
	}
	for _, cfg := range casConfigs {
		t.Run(fmt.Sprintf("cpus=%d/slots=%d/inst=%d", cfg.CPUs, cfg.Slots, cfg.InstSlots), func(t *testing.T) {
			names := append([]string{"mutex"}, casStrategies...)
			as := make([]Allocator, len(names))
			for i, s := range names {
				var err error
				if as[i], err = New(s, cfg); err != nil {
					t.Fatal(err)
				}
			}
			held := make([][]Slot, len(names))
			rng := rand.New(rand.NewPCG(uint64(cfg.CPUs), uint64(cfg.Slots)))
			admitted, refused := 0, 0
			for step := 0; step < steps; step++ {
				if n := len(held[0]); n > 0 && rng.IntN(5) < 2 {
					j := rng.IntN(n)
					for i, a := range as {
						if err := a.Release(held[i][j]); err != nil {
							t.Fatalf("step %d: %s: release %v: %v", step, names[i], held[i][j].Request(), err)
						}
						held[i] = append(held[i][:j], held[i][j+1:]...)
					}
					continue
				}
				r := casRequest(rng, cfg, 40)
				if rng.IntN(4) == 0 {
					r.Task %= 3 // a few tasks that fill up
				}
				want, werr := as[0].Reserve(r)
				if werr != nil && !errors.Is(werr, ErrNoSlot) {
					t.Fatalf("step %d: mutex: %v: %v", step, r, werr)
				}
				for i := 1; i < len(as); i++ {
					got, err := as[i].Reserve(r)
					if (err == nil) != (werr == nil) || (err != nil && !errors.Is(err, ErrNoSlot)) {
						t.Fatalf("step %d: %s: %v: err %v, mutex %v", step, names[i], r, err, werr)
					}
					if err == nil {
						if got.Index() != want.Index() {
							t.Fatalf("step %d: %s: %v: index %d, mutex %d", step, names[i], r, got.Index(), want.Index())
						}
						held[i] = append(held[i], got)
					}
				}
				if werr == nil {
					held[0] = append(held[0], want)
					admitted++
				} else {
					refused++
				}
			}
			for i, a := range as {
				releaseEvery(t, a, held[i])
				if sr, ok := a.(SpuriousRefusals); ok && sr.SpuriousRefusals() != 0 {
					t.Errorf("%s: %d spurious refusals in one goroutine", names[i], sr.SpuriousRefusals())
				}
			}
			if admitted < steps/4 || refused < steps/50 {
				t.Errorf("sequence exercises too little: admitted %d refused %d", admitted, refused)
			}
		})
	}
}

// casShadow counts from outside an allocator the slots it holds: one word
// per pool and CPU with 5-bit fields, cpu_pinned then pinned_t(c) of each
// task, incremented after a successful Reserve and decremented before a
// Release, so each count is at most what the allocator holds and the word
// an atomic add returns is one instant's counts. If it breaks the rules,
// the allocator over-admitted.
type casShadow struct {
	cfg  Config
	word [numKinds][]atomic.Uint64
}

func newCASShadow(cfg Config, tasks int) *casShadow {
	if (tasks+1)*5 > 64 {
		panic("casShadow: too many tasks for one word")
	}
	s := &casShadow{cfg: cfg}
	for k := range s.word {
		s.word[k] = make([]atomic.Uint64, cfg.CPUs)
	}
	return s
}

// change adds d (1 or -1) to sl's counts and checks the rule on each CPU.
func (s *casShadow) change(sl Slot, d int) error {
	r := sl.Request()
	p, n := s.cfg.Pool(r.Kind), s.cfg.PoolSize(r.Kind)
	lo, hi := r.CPU, r.CPU+1
	if r.CPU == AnyCPU {
		lo, hi = 0, s.cfg.CPUs
	}
	delta := uint64(1) << (5 * uint(r.Task+1))
	if d < 0 {
		delta = -delta
	}
	for c := lo; c < hi; c++ {
		w := s.word[p][c].Add(delta)
		cp := int(w & 31)
		for f := uint(5); f < 64; f += 5 {
			if tp := int(w >> f & 31); cp+tp > n {
				return fmt.Errorf("after %v: cpu_pinned %d + task %d pinned %d > %d on CPU %d", r, cp, f/5-1, tp, n, c)
			}
		}
	}
	return nil
}

// TestCASStress runs goroutines on cas and cas-percpu, 256 CPUs among the
// Configs, under the shadow check: over-admission fails whatever the
// interleaving, and no outcome depends on timing. With -race the operation
// count is smaller.
func TestCASStress(t *testing.T) {
	ops := 200_000
	if testing.Short() || raceEnabled {
		ops = 30_000
	}
	const workers, tasks = 6, 5
	for _, s := range casStrategies {
		for _, cfg := range []Config{X86(256), {CPUs: 5, Slots: 2}, {CPUs: 3, Slots: MaxSlots, InstSlots: 2}} {
			t.Run(fmt.Sprintf("strategy=%s/cpus=%d/slots=%d", s, cfg.CPUs, cfg.Slots), func(t *testing.T) {
				a, err := New(s, cfg)
				if err != nil {
					t.Fatal(err)
				}
				sh := newCASShadow(cfg, tasks)
				var wg sync.WaitGroup
				var failed atomic.Bool
				var admitted atomic.Int64
				errs := make(chan error, workers)
				fail := func(err error) {
					errs <- err
					failed.Store(true)
				}
				for w := 0; w < workers; w++ {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(w), 11))
						var held []Slot
						for i := 0; i < ops/workers && !failed.Load(); i++ {
							if len(held) > 0 && (len(held) > 5 || rng.IntN(2) == 0) {
								j := rng.IntN(len(held))
								if err := sh.change(held[j], -1); err != nil {
									fail(err)
									return
								}
								if err := a.Release(held[j]); err != nil {
									fail(fmt.Errorf("release %v: %w", held[j].Request(), err))
									return
								}
								held = append(held[:j], held[j+1:]...)
								continue
							}
							r := casRequest(rng, cfg, tasks)
							if r.CPU != AnyCPU && cfg.CPUs > 8 {
								r.CPU %= 4 // let one-CPU and CPU-bound requests meet
							}
							sl, err := a.Reserve(r)
							if err != nil {
								if !errors.Is(err, ErrNoSlot) {
									fail(err)
									return
								}
								continue
							}
							admitted.Add(1)
							held = append(held, sl)
							if err := sh.change(sl, 1); err != nil {
								fail(err)
								return
							}
						}
						for _, sl := range held {
							sh.change(sl, -1)
							if err := a.Release(sl); err != nil {
								fail(err)
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
				if a.InUse() {
					t.Error("InUse() after every goroutine released everything")
				}
				if admitted.Load() < int64(ops/10) {
					t.Errorf("stress exercised too little: admitted %d", admitted.Load())
				}
			})
		}
	}
}

// TestCASTaskIDs checks tasks on both sides of the radix table's end
// (casDense, where records move to a sync.Map): every shape reserves,
// counts against the same task only, releases once, and a stale release
// is ErrNotReserved.
func TestCASTaskIDs(t *testing.T) {
	for _, id := range []int{0, 15, 16, 1000, casDense - 1, casDense, 1 << 40} {
		a, err := New("cas", X86(2))
		if err != nil {
			t.Fatal(err)
		}
		all := Request{Task: id, CPU: AnyCPU}
		one := Request{Task: id, CPU: 1}
		var held []Slot
		for _, r := range []Request{all, all, one, one} {
			sl, err := a.Reserve(r)
			if err != nil {
				t.Fatalf("task %d: %v: %v", id, r, err)
			}
			held = append(held, sl)
		}
		for _, r := range []Request{all, one, {Task: NoTask, CPU: 1}} {
			if _, err := a.Reserve(r); !errors.Is(err, ErrNoSlot) {
				t.Errorf("task %d: %v with 4 held: %v, want ErrNoSlot", id, r, err)
			}
		}
		if sl, err := a.Reserve(Request{Task: id + 1, CPU: 1}); err != nil {
			t.Errorf("task %d: another task refused: %v", id+1, err)
		} else {
			held = append(held, sl)
		}
		releaseEvery(t, a, held)
		for _, sl := range held {
			if err := a.Release(sl); !errors.Is(err, ErrNotReserved) {
				t.Errorf("task %d: second release of %v: %v", id, sl.Request(), err)
			}
		}
	}
}

// TestCASStaleAfterReuses releases a CPU-bound slot after its index has
// been reused many times, the last reuse still held: the release must be
// ErrNotReserved and leave the holder counted, at 4 registers (8-bit
// fields in W_c: up to 127 reuses, the documented limit) and at 16
// (narrow fields, wide generations beside W_c: 300 reuses).
func TestCASStaleAfterReuses(t *testing.T) {
	for _, s := range casStrategies {
		for _, n := range []int{4, MaxSlots} {
			cfg := Config{CPUs: 1, Slots: n}
			a, err := New(s, cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := Request{Task: NoTask, CPU: 0}
			first, err := a.Reserve(r)
			if err != nil {
				t.Fatal(err)
			}
			cur, reuses := first, 300
			if n <= 6 {
				reuses = 127
			}
			for i := 0; i < reuses; i++ {
				if err := a.Release(cur); err != nil {
					t.Fatalf("%s n=%d: release %d: %v", s, n, i, err)
				}
				if cur, err = a.Reserve(r); err != nil {
					t.Fatalf("%s n=%d: reserve %d: %v", s, n, i, err)
				}
				if err := a.Release(first); !errors.Is(err, ErrNotReserved) {
					t.Fatalf("%s n=%d: stale release after %d reuses: %v, want ErrNotReserved", s, n, i+1, err)
				}
			}
			rest := 0
			for {
				sl, err := a.Reserve(r)
				if err != nil {
					break
				}
				defer a.Release(sl)
				rest++
			}
			if rest != n-1 {
				t.Errorf("%s n=%d: %d more slots fit beside the held one, want %d", s, n, rest, n-1)
			}
		}
	}
}

package alloc

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// perfTask is a task id above 255: the runtime boxes smaller integers
// without allocating, so a smaller id could hide an allocation in a task
// table lookup.
const perfTask = 1000

// fillTarget reserves requests like r until the rules refuse one and
// returns the held slots; the refusal must be ErrNoSlot.
func fillTarget(t *testing.T, a Allocator, r Request) []Slot {
	t.Helper()
	var held []Slot
	for {
		s, err := a.Reserve(r)
		if err != nil {
			if !errors.Is(err, ErrNoSlot) {
				t.Fatalf("filling %v: %v, want ErrNoSlot once full", r, err)
			}
			return held
		}
		held = append(held, s)
		if len(held) > MaxSlots {
			t.Fatalf("filling %v: %d slots admitted, more than any pool holds", r, len(held))
		}
	}
}

// perfTargets are the request shapes whose refusal and stale release must
// not allocate, and the text their errors must contain.
var perfTargets = []struct {
	req  Request
	want string
}{
	{Request{Task: NoTask, CPU: 1, Kind: Data}, "task=none/cpu=1/data"},
	{Request{Task: NoTask, CPU: 0, Kind: Inst}, "task=none/cpu=0/inst"},
	{Request{Task: perfTask, CPU: AnyCPU, Kind: Data}, "task=some/cpu=any/data"},
	{Request{Task: perfTask, CPU: 1, Kind: Inst}, "task=some/cpu=1/inst"},
}

// TestRefusalAllocs checks that a refused Reserve allocates nothing on any
// strategy and any target, in a shared and in a separate instruction pool,
// and that its error still wraps ErrNoSlot and names the target.
func TestRefusalAllocs(t *testing.T) {
	for _, cfg := range []Config{X86(2), {CPUs: 2, Slots: 2, InstSlots: 3}} {
		for _, tg := range perfTargets {
			t.Run(fmt.Sprintf("slots=%d,%d/%v", cfg.Slots, cfg.InstSlots, tg.req), func(t *testing.T) {
				forEach(t, cfg, func(t *testing.T, a Allocator) {
					held := fillTarget(t, a, tg.req)
					if len(held) != cfg.PoolSize(tg.req.Kind) {
						t.Fatalf("%v admitted %d, want the pool size %d", tg.req, len(held), cfg.PoolSize(tg.req.Kind))
					}
					var err error
					allocs := testing.AllocsPerRun(100, func() { _, err = a.Reserve(tg.req) })
					if allocs != 0 {
						t.Errorf("refused Reserve(%v): %v allocs/op, want 0", tg.req, allocs)
					}
					if !errors.Is(err, ErrNoSlot) || errors.Is(err, ErrNotReserved) {
						t.Errorf("refused Reserve(%v) = %v, want ErrNoSlot only", tg.req, err)
					}
					if !strings.Contains(err.Error(), tg.want) || !strings.Contains(err.Error(), ErrNoSlot.Error()) {
						t.Errorf("refusal of %v says %q, want it to name %q and ErrNoSlot", tg.req, err, tg.want)
					}
					releaseAll(t, a, held)
				})
			})
		}
	}
}

// TestStaleReleaseAllocs checks that a double release and a stale release
// (the index reused by a later holder) allocate nothing, wrap
// ErrNotReserved, name the target and leave the later holder's slot held.
func TestStaleReleaseAllocs(t *testing.T) {
	for _, tg := range perfTargets {
		t.Run(tg.req.String(), func(t *testing.T) {
			cfg := Config{CPUs: 2, Slots: 2, InstSlots: 3}
			forEach(t, cfg, func(t *testing.T, a Allocator) {
				s1, err := a.Reserve(tg.req)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.Release(s1); err != nil {
					t.Fatal(err)
				}
				allocs := testing.AllocsPerRun(100, func() { err = a.Release(s1) })
				if allocs != 0 {
					t.Errorf("double Release(%v): %v allocs/op, want 0", tg.req, allocs)
				}
				if !errors.Is(err, ErrNotReserved) || !strings.Contains(err.Error(), tg.want) {
					t.Errorf("double Release(%v) = %v, want ErrNotReserved naming %q", tg.req, err, tg.want)
				}
				s2, err := a.Reserve(tg.req) // takes s1's index
				if err != nil {
					t.Fatal(err)
				}
				allocs = testing.AllocsPerRun(100, func() { err = a.Release(s1) })
				if allocs != 0 {
					t.Errorf("stale Release(%v): %v allocs/op, want 0", tg.req, allocs)
				}
				if !errors.Is(err, ErrNotReserved) {
					t.Errorf("stale Release(%v) = %v, want ErrNotReserved", tg.req, err)
				}
				// s2 must still count: the pool is full after one more.
				rest := fillTarget(t, a, tg.req)
				if got := len(rest) + 1; got != cfg.PoolSize(tg.req.Kind) {
					t.Errorf("%v: %d slots held after the stale releases, want the pool size", tg.req, got)
				}
				releaseAll(t, a, append(rest, s2))
				if err := a.Release(Slot{}); !errors.Is(err, ErrNotReserved) {
					t.Errorf("Release(zero Slot) = %v", err)
				}
				if allocs := testing.AllocsPerRun(100, func() { a.Release(Slot{}) }); allocs != 0 {
					t.Errorf("Release(zero Slot): %v allocs/op, want 0", allocs)
				}
				if a.InUse() {
					t.Error("InUse() after releasing everything")
				}
			})
		})
	}
}

// TestConcurrentDoubleRelease releases copies of one slot from many
// goroutines at once while other goroutines keep re-reserving the index:
// exactly one release of each slot may succeed, the others get
// ErrNotReserved, and no release may free another holder's slot, which
// the final count of held slots would show. Run it under -race.
func TestConcurrentDoubleRelease(t *testing.T) {
	rounds := 2000
	if testing.Short() || raceEnabled {
		rounds = 300
	}
	for _, r := range []Request{{Task: NoTask, CPU: 1}, {Task: 7, CPU: AnyCPU}, {Task: 7, CPU: 0}} {
		t.Run(r.String(), func(t *testing.T) {
			forEach(t, X86(2), func(t *testing.T, a Allocator) {
				for range rounds {
					s, err := a.Reserve(r)
					if err != nil {
						t.Fatal(err)
					}
					var wg sync.WaitGroup
					var mu sync.Mutex
					ok, reuse := 0, []Slot{}
					for range 4 {
						wg.Go(func() {
							err := a.Release(s)
							var n Slot
							if err == nil {
								// Re-reserve at once, so a later stale
								// release of s could hit the new holder.
								if n, err = a.Reserve(r); err != nil {
									t.Error(err)
									return
								}
							} else if !errors.Is(err, ErrNotReserved) {
								t.Errorf("concurrent release of %v: %v", r, err)
								return
							}
							mu.Lock()
							if n.Valid() {
								ok++
								reuse = append(reuse, n)
							}
							mu.Unlock()
						})
					}
					wg.Wait()
					if ok != 1 {
						t.Fatalf("%d of 4 concurrent releases of one slot succeeded, want 1", ok)
					}
					releaseAll(t, a, reuse)
					if a.InUse() {
						t.Fatal("InUse() after the round: a release freed the wrong holder")
					}
				}
			})
		})
	}
}

// TestCASGenerationWrap cycles one CPU-bound index through more
// generations than its field holds: every slot keeps an odd, non-zero
// generation, consecutive holders differ, and each stale predecessor is
// refused.
func TestCASGenerationWrap(t *testing.T) {
	for _, cfg := range []Config{X86(1), {CPUs: 1, Slots: MaxSlots}} {
		a, err := New("cas", cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := a.(*casAlloc).pools[Data]
		r := Request{Task: NoTask, CPU: 0}
		var prev Slot
		for i := 0; i < 3<<p.fb; i++ {
			s, err := a.Reserve(r)
			if err != nil {
				t.Fatalf("%v: reserve %d: %v", p, i, err)
			}
			if s.Index() != 0 || s.Gen()&1 == 0 || s.Gen() == prev.Gen() {
				t.Fatalf("%v: reserve %d: index %d gen %d after gen %d", p, i, s.Index(), s.Gen(), prev.Gen())
			}
			if prev.Valid() && !errors.Is(a.Release(prev), ErrNotReserved) {
				t.Fatalf("%v: reserve %d: stale release of gen %d accepted", p, i, prev.Gen())
			}
			if err := a.Release(s); err != nil {
				t.Fatalf("%v: release %d: %v", p, i, err)
			}
			prev = s
		}
		if a.InUse() {
			t.Errorf("%v: InUse() after the cycles", p)
		}
	}
}

package alloc

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// The rules every strategy shares (the KUnit cases, the rule tables,
// releases, the differential and stress tests) live in
// bpbench/alloc/alloctest and run on every strategy from kit_test.go. This
// file keeps the tests of package internals, and the helpers
// alloc_perf_test.go uses.

// forEach runs fn once per registered strategy on a fresh allocator.
func forEach(t *testing.T, cfg Config, fn func(t *testing.T, a Allocator)) {
	t.Helper()
	for _, s := range Strategies() {
		t.Run("strategy="+s, func(t *testing.T) {
			a, err := New(s, cfg)
			if err != nil {
				t.Fatal(err)
			}
			fn(t, a)
		})
	}
}

// releaseAll releases held and checks that nothing is left in use.
func releaseAll(t *testing.T, a Allocator, held []Slot) {
	t.Helper()
	for _, s := range held {
		if err := a.Release(s); err != nil {
			t.Errorf("release %v: %v", s, err)
		}
	}
	if a.InUse() {
		t.Error("InUse() after releasing everything")
	}
}

// TestValidateMessages checks that Config.Validate and
// Config.ValidateRequest name the field at fault (the kit checks only that
// strategies wrap ErrInvalid).
func TestValidateMessages(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{CPUs: 0, Slots: 4}, "Config.CPUs"},
		{Config{CPUs: MaxCPUs + 1, Slots: 4}, "Config.CPUs"},
		{Config{CPUs: 1, Slots: 0}, "Config.Slots"},
		{Config{CPUs: 1, Slots: MaxSlots + 1}, "Config.Slots"},
		{Config{CPUs: 1, Slots: 4, InstSlots: -1}, "Config.InstSlots"},
		{Config{CPUs: 1, Slots: 4, InstSlots: MaxSlots + 1}, "Config.InstSlots"},
	} {
		if err := c.cfg.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid naming %s", c.cfg, err, c.want)
		}
	}
	for _, c := range []struct {
		r    Request
		want string
	}{
		{Request{Task: 0, CPU: 2}, "CPU = 2"},
		{Request{Task: 0, CPU: -2}, "CPU = -2"},
		{Request{Task: NoTask, CPU: AnyCPU}, "needs a CPU"},
		{Request{Task: -5, CPU: 0}, "Task = -5"},
		{Request{Task: 0, CPU: 0, Kind: 7}, "Kind 7"},
	} {
		if err := X86(2).ValidateRequest(c.r); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateRequest(%+v) = %v, want ErrInvalid naming %q", c.r, err, c.want)
		}
	}
	if _, err := New("nope", X86(1)); !errors.Is(err, ErrUnknown) {
		t.Errorf("New(nope) = %v, want ErrUnknown", err)
	}
}

func TestSpuriousRefusalsExposed(t *testing.T) {
	a, err := New("cas", X86(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(SpuriousRefusals); !ok {
		t.Fatal("cas does not implement SpuriousRefusals")
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
		// Tasks 8..19 overlap the loaded ones; NoTask is CPU-bound.
		r := Request{Task: 8 + rng.IntN(13) - 1, CPU: rng.IntN(cfg.CPUs+1) - 1, Kind: Kind(rng.IntN(2))}
		if r.Task == 7 {
			r.Task = NoTask
		}
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

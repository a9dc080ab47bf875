package alloc

import (
	"errors"
	"strings"
	"testing"
)

// forEach runs fn once per registered strategy on a fresh allocator and
// checks that it ends with every slot released.
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

// kunit mirrors the helpers of kernel/events/hw_breakpoint_test.c
// (register_test_bp, fill_one_bp_slot, fill_bp_slots, TEST_EXPECT_NOSPC,
// unregister_test_bp, test_exit) over an Allocator.
type kunit struct {
	t     *testing.T
	a     Allocator
	n     int
	bps   []Slot
	alive []bool
}

const (
	current = 0 // the kernel test's current task
	other   = 1 // get_other_task()
)

func (k *kunit) req(cpu, task int) Request { return Request{Task: task, CPU: cpu, Kind: Data} }

func (k *kunit) fillOne(cpu, task int) int {
	k.t.Helper()
	s, err := k.a.Reserve(k.req(cpu, task))
	if err != nil {
		k.t.Fatalf("bp %d (%v): %v", len(k.bps), k.req(cpu, task), err)
	}
	k.bps = append(k.bps, s)
	k.alive = append(k.alive, true)
	return len(k.bps) - 1
}

func (k *kunit) fill(cpu, task, skip int) {
	k.t.Helper()
	for i := 0; i < k.n-skip; i++ {
		k.fillOne(cpu, task)
	}
}

func (k *kunit) nospc(cpu, task int) {
	k.t.Helper()
	s, err := k.a.Reserve(k.req(cpu, task))
	if !errors.Is(err, ErrNoSlot) {
		k.t.Errorf("%v: got %v (err %v), want ErrNoSlot", k.req(cpu, task), s, err)
		if err == nil {
			k.a.Release(s)
		}
	}
}

func (k *kunit) unregister(id int) {
	k.t.Helper()
	if err := k.a.Release(k.bps[id]); err != nil {
		k.t.Fatalf("release bp %d: %v", id, err)
	}
	k.alive[id] = false
}

// exit is test_exit plus the suite's hw_breakpoint_is_used() check.
func (k *kunit) exit() {
	k.t.Helper()
	for i, s := range k.bps {
		if k.alive[i] {
			if err := k.a.Release(s); err != nil {
				k.t.Errorf("release bp %d: %v", i, err)
			}
		}
	}
	if k.a.InUse() {
		k.t.Error("InUse() after releasing everything")
	}
}

// TestKUnit runs the nine cases of kernel/events/hw_breakpoint_test.c
// (torvalds/linux) with 2 CPUs and 4 slots, against every strategy.
func TestKUnit(t *testing.T) {
	cases := []struct {
		name string
		run  func(k *kunit)
	}{
		{"one_cpu", func(k *kunit) {
			k.fill(0, NoTask, 0)
			k.nospc(AnyCPU, current)
			k.nospc(0, NoTask)
		}},
		{"many_cpus", func(k *kunit) { // CPUs are independent
			for cpu := 0; cpu < 2; cpu++ {
				k.fill(cpu, NoTask, 0)
				k.nospc(cpu, NoTask)
			}
		}},
		{"one_task_on_all_cpus", func(k *kunit) {
			k.fill(AnyCPU, current, 0)
			k.nospc(AnyCPU, current)
			k.nospc(0, current)
			k.nospc(0, NoTask)
			k.unregister(0) // removing one lets a CPU-bound one in
			k.fillOne(0, NoTask)
		}},
		{"two_tasks_on_all_cpus", func(k *kunit) { // tasks are independent
			k.fill(AnyCPU, current, 0)
			k.fill(AnyCPU, other, 0)
			k.nospc(AnyCPU, current)
			k.nospc(AnyCPU, other)
			k.nospc(0, current)
			k.nospc(0, other)
			k.nospc(0, NoTask)
			k.unregister(0) // the other task still fills every CPU
			k.nospc(0, NoTask)
		}},
		{"one_task_on_one_cpu", func(k *kunit) {
			k.fill(0, current, 0)
			k.nospc(AnyCPU, current)
			k.nospc(0, current)
			k.nospc(0, NoTask)
			k.unregister(0) // CPU-dependent task constraints
			k.fillOne(0, NoTask)
		}},
		{"one_task_mixed", func(k *kunit) {
			k.fillOne(0, current)
			k.fill(AnyCPU, current, 1)
			k.nospc(AnyCPU, current)
			k.nospc(0, current)
			k.nospc(0, NoTask)
			// From CPU-dependent pinned count back to CPU-independent.
			k.unregister(0)
			k.unregister(1)
			k.fillOne(0, NoTask)
			k.fillOne(0, NoTask)
			k.nospc(0, NoTask)
		}},
		{"two_tasks_on_one_cpu", func(k *kunit) {
			k.fill(0, current, 0)
			k.fill(0, other, 0)
			k.nospc(AnyCPU, current)
			k.nospc(AnyCPU, other)
			k.nospc(0, current)
			k.nospc(0, other)
			k.nospc(0, NoTask)
			k.fill(1, NoTask, 0) // another CPU is still free
		}},
		{"two_tasks_on_one_all_cpus", func(k *kunit) {
			k.fill(0, current, 0)
			k.fill(AnyCPU, other, 0)
			k.nospc(AnyCPU, current)
			k.nospc(AnyCPU, other)
			k.nospc(0, current)
			k.nospc(0, other)
			k.nospc(0, NoTask)
			k.nospc(1, NoTask) // the all-CPU task fills CPU 1 too
		}},
		{"task_on_all_and_one_cpu", func(k *kunit) {
			k.fill(AnyCPU, current, 2)
			onCPU := k.fillOne(0, current) // all-CPU only -> mixed
			k.fillOne(AnyCPU, current)
			k.nospc(AnyCPU, current)
			k.nospc(0, current)
			k.nospc(0, NoTask)
			cpuBP := k.fillOne(1, NoTask) // CPU 1 has room left
			k.nospc(1, NoTask)
			k.unregister(onCPU) // back to all-CPU only
			k.nospc(AnyCPU, current)
			k.unregister(cpuBP)
			k.fillOne(AnyCPU, current)
			k.nospc(AnyCPU, current)
			k.nospc(0, current)
			k.nospc(0, NoTask)
			k.nospc(1, NoTask)
		}},
	}
	for _, c := range cases {
		t.Run("case="+c.name, func(t *testing.T) {
			forEach(t, X86(2), func(t *testing.T, a Allocator) {
				k := &kunit{t: t, a: a, n: 4}
				c.run(k)
				k.exit()
			})
		})
	}
}

// TestPools checks the x86 shared pool (HAVE_MIXED_BREAKPOINTS_REGS:
// TYPE_INST == TYPE_DATA) against separate instruction registers.
func TestPools(t *testing.T) {
	inst := Request{Task: 0, CPU: AnyCPU, Kind: Inst}
	data := Request{Task: 0, CPU: AnyCPU, Kind: Data}
	t.Run("pool=shared", func(t *testing.T) {
		forEach(t, X86(2), func(t *testing.T, a Allocator) {
			var held []Slot
			for i := 0; i < 2; i++ {
				for _, r := range []Request{inst, data} {
					s, err := a.Reserve(r)
					if err != nil {
						t.Fatalf("%v: %v", r, err)
					}
					held = append(held, s)
				}
			}
			seen := map[int]bool{}
			for _, s := range held {
				if seen[s.Index()] {
					t.Errorf("index %d given twice in the shared pool", s.Index())
				}
				seen[s.Index()] = true
			}
			for _, r := range []Request{inst, data, {Task: NoTask, CPU: 1, Kind: Inst}} {
				if _, err := a.Reserve(r); !errors.Is(err, ErrNoSlot) {
					t.Errorf("%v with 4 shared slots taken: %v, want ErrNoSlot", r, err)
				}
			}
			releaseAll(t, a, held)
		})
	})
	t.Run("pool=separate", func(t *testing.T) {
		forEach(t, Config{CPUs: 2, Slots: 2, InstSlots: 1}, func(t *testing.T, a Allocator) {
			var held []Slot
			for _, r := range []Request{data, data, inst} {
				s, err := a.Reserve(r)
				if err != nil {
					t.Fatalf("%v: %v", r, err)
				}
				if s.Index() >= 2 || (r.Kind == Inst && s.Index() != 0) {
					t.Errorf("%v: index %d out of its pool", r, s.Index())
				}
				held = append(held, s)
			}
			for _, r := range []Request{data, inst, {Task: NoTask, CPU: 0, Kind: Data}, {Task: NoTask, CPU: 0, Kind: Inst}} {
				if _, err := a.Reserve(r); !errors.Is(err, ErrNoSlot) {
					t.Errorf("%v: %v, want ErrNoSlot", r, err)
				}
			}
			// Another task draws on its own task-side budget in both pools.
			s, err := a.Reserve(Request{Task: 1, CPU: 0, Kind: Inst})
			if err != nil {
				t.Fatalf("other task's inst breakpoint: %v", err)
			}
			releaseAll(t, a, append(held, s))
		})
	})
}

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

func TestInvalid(t *testing.T) {
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
		for _, s := range Strategies() {
			_, err := New(s, c.cfg)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New(%s, %+v) = %v, want ErrInvalid naming %s", s, c.cfg, err, c.want)
			}
		}
	}
	if _, err := New("nope", X86(1)); !errors.Is(err, ErrUnknown) {
		t.Errorf("New(nope) = %v, want ErrUnknown", err)
	}
	forEach(t, X86(2), func(t *testing.T, a Allocator) {
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
			s, err := a.Reserve(c.r)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Reserve(%+v) = %v, %v; want ErrInvalid naming %q", c.r, s, err, c.want)
			}
		}
		if a.InUse() {
			t.Error("InUse() after only invalid requests")
		}
	})
}

// TestRelease checks ErrNotReserved for double releases, stale slots whose
// index has been reused, the zero Slot and forged slots.
func TestRelease(t *testing.T) {
	reqs := []Request{
		{Task: NoTask, CPU: 1},
		{Task: 3, CPU: AnyCPU},
		{Task: 3, CPU: 0},
	}
	forEach(t, X86(2), func(t *testing.T, a Allocator) {
		if err := a.Release(Slot{}); !errors.Is(err, ErrNotReserved) {
			t.Errorf("Release(zero Slot) = %v", err)
		}
		if err := a.Release(NewSlot(Request{Task: 9, CPU: AnyCPU}, 0, 1)); !errors.Is(err, ErrNotReserved) {
			t.Errorf("Release(forged slot of unknown task) = %v", err)
		}
		for _, r := range reqs {
			s1, err := a.Reserve(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Release(s1); err != nil {
				t.Fatalf("first release of %v: %v", r, err)
			}
			if err := a.Release(s1); !errors.Is(err, ErrNotReserved) {
				t.Errorf("double release of %v: %v", r, err)
			}
			s2, err := a.Reserve(r) // reuses s1's index
			if err != nil {
				t.Fatal(err)
			}
			if s2.Index() != s1.Index() || s2.Gen() == s1.Gen() {
				t.Errorf("%v: reuse got index %d gen %d after index %d gen %d", r, s2.Index(), s2.Gen(), s1.Index(), s1.Gen())
			}
			if err := a.Release(s1); !errors.Is(err, ErrNotReserved) {
				t.Errorf("stale release of %v: %v", r, err)
			}
			if err := a.Release(s2); err != nil {
				t.Errorf("release of the reused slot after the stale attempt: %v", err)
			}
		}
		if a.InUse() {
			t.Error("InUse() after releasing everything")
		}
	})
}

// TestFragmentedIndex checks the one corner where admission (exactly the
// kernel's) passes but no register number is free on every CPU: the slot is
// admitted with Index() == NoIndex, counts like any other, and releases.
func TestFragmentedIndex(t *testing.T) {
	forEach(t, Config{CPUs: 2, Slots: 2}, func(t *testing.T, a Allocator) {
		r0 := Request{Task: 0, CPU: 0}
		r1 := Request{Task: 0, CPU: 1}
		s00, _ := a.Reserve(r0)
		s01, _ := a.Reserve(r0)
		s10, err := a.Reserve(r1)
		if err != nil || s00.Index() != 0 || s01.Index() != 1 || s10.Index() != 0 {
			t.Fatalf("setup: indexes %d %d %d, err %v", s00.Index(), s01.Index(), s10.Index(), err)
		}
		if err := a.Release(s00); err != nil { // CPU 0 keeps DR1, CPU 1 keeps DR0
			t.Fatal(err)
		}
		all, err := a.Reserve(Request{Task: 0, CPU: AnyCPU})
		if err != nil {
			t.Fatalf("all-CPU breakpoint with 1 of 2 slots used per CPU: %v (the kernel admits it)", err)
		}
		if all.Index() != NoIndex {
			t.Errorf("fragmented all-CPU breakpoint got index %d, want NoIndex", all.Index())
		}
		// It occupies a slot on both CPUs: nothing more fits for task 0.
		for _, r := range []Request{r0, r1, {Task: 0, CPU: AnyCPU}, {Task: NoTask, CPU: 0}} {
			if _, err := a.Reserve(r); !errors.Is(err, ErrNoSlot) {
				t.Errorf("%v: %v, want ErrNoSlot", r, err)
			}
		}
		releaseAll(t, a, []Slot{all, s01, s10})
		if err := a.Release(all); !errors.Is(err, ErrNotReserved) {
			t.Errorf("double release of a NoIndex slot: %v", err)
		}
	})
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

package alloctest

import (
	"errors"
	"fmt"
	"strings"

	"bpbench/alloc"
)

// bed is one allocator under a rule test: every call is logged and runs
// under catch, so a panic fails the subtest with the Config and the
// operations that led to it.
type bed struct {
	t   tb
	cfg alloc.Config
	a   alloc.Allocator
	ops []string
}

func newBed(t tb, f Constructor, cfg alloc.Config) *bed {
	t.Helper()
	b := &bed{t: t, cfg: cfg}
	var err error
	if p := catch(func() { b.a, err = f(cfg) }); p != nil {
		t.Fatalf("constructor for %+v: %v", cfg, p)
	}
	if err != nil || b.a == nil {
		t.Fatalf("constructor for valid %+v: %v, %v", cfg, b.a, err)
	}
	return b
}

func (b *bed) panicked(p error) {
	b.t.Helper()
	b.t.Fatalf("Config %+v, after\n\t%s\n%v", b.cfg, strings.Join(squeeze(b.ops), "\n\t"), p)
}

// squeeze folds runs of the same call into one line with the first and
// last results: "Reserve(task=0/cpu=0/data) x16: index 0, <nil> .. index 15, <nil>".
func squeeze(ops []string) []string {
	var out []string
	for i := 0; i < len(ops); {
		call, first, _ := strings.Cut(ops[i], " = ")
		j := i + 1
		for j < len(ops) && strings.HasPrefix(ops[j], call+" = ") {
			j++
		}
		if j-i > 2 {
			_, last, _ := strings.Cut(ops[j-1], " = ")
			out = append(out, fmt.Sprintf("%s x%d: %s .. %s", call, j-i, first, last))
		} else {
			out = append(out, ops[i:j]...)
		}
		i = j
	}
	return out
}

func (b *bed) reserve(r alloc.Request) (s alloc.Slot, err error) {
	b.t.Helper()
	b.ops = append(b.ops, fmt.Sprintf("Reserve(%v)", r))
	if p := catch(func() { s, err = b.a.Reserve(r) }); p != nil {
		b.panicked(p)
	}
	b.ops[len(b.ops)-1] += fmt.Sprintf(" = index %d, %v", s.Index(), err)
	return s, err
}

func (b *bed) release(s alloc.Slot) (err error) {
	b.t.Helper()
	b.ops = append(b.ops, fmt.Sprintf("Release(%v index %d gen %d)", s.Request(), s.Index(), s.Gen()))
	if p := catch(func() { err = b.a.Release(s) }); p != nil {
		b.panicked(p)
	}
	b.ops[len(b.ops)-1] += fmt.Sprintf(" = %v", err)
	return err
}

func (b *bed) inUse() (u bool) {
	b.t.Helper()
	if p := catch(func() { u = b.a.InUse() }); p != nil {
		b.panicked(p)
	}
	return u
}

// take reserves r, which the rules admit, and checks what the slot reports.
func (b *bed) take(r alloc.Request) alloc.Slot {
	b.t.Helper()
	s, err := b.reserve(r)
	if err != nil {
		b.t.Fatalf("%v: %v, want it admitted (%s)", r, err, rule(r))
	}
	if !s.Valid() || s.Request() != r {
		b.t.Fatalf("%v admitted as a slot with Gen %d, Request %v", r, s.Gen(), s.Request())
	}
	if i := s.Index(); i != alloc.NoIndex && (i < 0 || i >= b.cfg.PoolSize(r.Kind)) {
		b.t.Fatalf("%v: index %d outside the pool of %d", r, i, b.cfg.PoolSize(r.Kind))
	}
	return s
}

// refuse checks that the rules' refusal of r is ErrNoSlot.
func (b *bed) refuse(r alloc.Request) {
	b.t.Helper()
	s, err := b.reserve(r)
	if err == nil {
		b.t.Errorf("%v admitted, want ErrNoSlot by the %s", r, rule(r))
		b.release(s)
		return
	}
	if !errors.Is(err, alloc.ErrNoSlot) {
		b.t.Errorf("%v: %v, want an error wrapping ErrNoSlot", r, err)
	}
}

// finish releases held and checks that nothing is left (hw_breakpoint_is_used).
func (b *bed) finish(held ...alloc.Slot) {
	b.t.Helper()
	for _, s := range held {
		if err := b.release(s); err != nil {
			b.t.Errorf("release of held %v: %v", s.Request(), err)
		}
	}
	if b.inUse() {
		b.t.Errorf("InUse() after releasing every slot")
	}
}

// forMachines runs fn on every machine keep accepts.
func forMachines(t tb, keep func(machine) bool, fn func(tb, machine)) {
	t.Helper()
	for _, m := range machines {
		if keep == nil || keep(m) {
			t.Run(m.String(), func(t tb) { fn(t, m) })
		}
	}
}

// kunit mirrors the helpers of kernel/events/hw_breakpoint_test.c
// (fill_one_bp_slot, fill_bp_slots, TEST_EXPECT_NOSPC, unregister_test_bp,
// test_exit) on a bed; n is get_test_bp_slots().
type kunit struct {
	*bed
	n     int
	bps   []alloc.Slot
	alive []bool
}

const (
	current = 0 // the kernel test's current task
	other   = 1 // get_other_task()
)

func kreq(cpu, task int) alloc.Request {
	return alloc.Request{Task: task, CPU: cpu, Kind: alloc.Data}
}

func (k *kunit) fillOne(cpu, task int) int {
	k.t.Helper()
	k.bps = append(k.bps, k.take(kreq(cpu, task)))
	k.alive = append(k.alive, true)
	return len(k.bps) - 1
}

func (k *kunit) fill(cpu, task, skip int) {
	k.t.Helper()
	for i := 0; i < k.n-skip; i++ {
		k.fillOne(cpu, task)
	}
}

func (k *kunit) nospc(cpu, task int) { k.t.Helper(); k.refuse(kreq(cpu, task)) }

// cpu0Full checks that CPU 0 takes nothing more: no breakpoint of either
// task, on every CPU or on CPU 0, and no CPU-bound one.
func (k *kunit) cpu0Full() {
	k.t.Helper()
	for _, task := range []int{current, other} {
		k.nospc(alloc.AnyCPU, task)
		k.nospc(0, task)
	}
	k.nospc(0, alloc.NoTask)
}

func (k *kunit) unregister(id int) {
	k.t.Helper()
	if err := k.release(k.bps[id]); err != nil {
		k.t.Fatalf("release bp %d: %v", id, err)
	}
	k.alive[id] = false
}

// exit is test_exit plus the suite's hw_breakpoint_is_used() check.
func (k *kunit) exit() {
	k.t.Helper()
	var held []alloc.Slot
	for i, s := range k.bps {
		if k.alive[i] {
			held = append(held, s)
		}
	}
	k.finish(held...)
}

// kunitCases are the nine cases of kernel/events/hw_breakpoint_test.c
// (torvalds/linux), in its order.
var kunitCases = []struct {
	name string
	run  func(k *kunit)
}{
	{"one_cpu", func(k *kunit) {
		k.fill(0, alloc.NoTask, 0)
		k.nospc(alloc.AnyCPU, current)
		k.nospc(0, alloc.NoTask)
	}},
	{"many_cpus", func(k *kunit) { // CPUs are independent
		for cpu := 0; cpu < 2; cpu++ {
			k.fill(cpu, alloc.NoTask, 0)
			k.nospc(cpu, alloc.NoTask)
		}
	}},
	{"one_task_on_all_cpus", func(k *kunit) {
		k.fill(alloc.AnyCPU, current, 0)
		k.nospc(alloc.AnyCPU, current)
		k.nospc(0, current)
		k.nospc(0, alloc.NoTask)
		k.unregister(0) // removing one lets a CPU-bound one in
		k.fillOne(0, alloc.NoTask)
	}},
	{"two_tasks_on_all_cpus", func(k *kunit) { // tasks are independent
		k.fill(alloc.AnyCPU, current, 0)
		k.fill(alloc.AnyCPU, other, 0)
		k.cpu0Full()
		k.unregister(0) // the other task still fills every CPU
		k.nospc(0, alloc.NoTask)
	}},
	{"one_task_on_one_cpu", func(k *kunit) {
		k.fill(0, current, 0)
		k.nospc(alloc.AnyCPU, current)
		k.nospc(0, current)
		k.nospc(0, alloc.NoTask)
		k.unregister(0) // CPU-dependent task constraints
		k.fillOne(0, alloc.NoTask)
	}},
	{"one_task_mixed", func(k *kunit) {
		k.fillOne(0, current)
		k.fill(alloc.AnyCPU, current, 1)
		k.nospc(alloc.AnyCPU, current)
		k.nospc(0, current)
		k.nospc(0, alloc.NoTask)
		// From CPU-dependent pinned count back to CPU-independent.
		k.unregister(0)
		k.unregister(1)
		k.fillOne(0, alloc.NoTask)
		k.fillOne(0, alloc.NoTask)
		k.nospc(0, alloc.NoTask)
	}},
	{"two_tasks_on_one_cpu", func(k *kunit) {
		k.fill(0, current, 0)
		k.fill(0, other, 0)
		k.cpu0Full()
		k.fill(1, alloc.NoTask, 0) // another CPU is still free
	}},
	{"two_tasks_on_one_all_cpus", func(k *kunit) {
		k.fill(0, current, 0)
		k.fill(alloc.AnyCPU, other, 0)
		k.cpu0Full()
		k.nospc(1, alloc.NoTask) // the all-CPU task fills CPU 1 too
	}},
	{"task_on_all_and_one_cpu", func(k *kunit) {
		k.fill(alloc.AnyCPU, current, 2)
		onCPU := k.fillOne(0, current) // all-CPU only -> mixed
		k.fillOne(alloc.AnyCPU, current)
		k.nospc(alloc.AnyCPU, current)
		k.nospc(0, current)
		k.nospc(0, alloc.NoTask)
		cpuBP := k.fillOne(1, alloc.NoTask) // CPU 1 has room left
		k.nospc(1, alloc.NoTask)
		k.unregister(onCPU) // back to all-CPU only
		k.nospc(alloc.AnyCPU, current)
		k.unregister(cpuBP)
		k.fillOne(alloc.AnyCPU, current)
		k.nospc(alloc.AnyCPU, current)
		k.nospc(0, current)
		k.nospc(0, alloc.NoTask)
		k.nospc(1, alloc.NoTask)
	}},
}

// testKUnit runs the KUnit cases on every machine they fit (two CPUs and
// two data registers at least, as task_on_all_and_one_cpu needs), each
// ending with InUse() false.
func testKUnit(t tb, f Constructor) {
	forMachines(t, func(m machine) bool { return m.CPUs >= 2 && m.Slots >= 2 }, func(t tb, m machine) {
		for _, c := range kunitCases {
			t.Run(c.name, func(t tb) {
				k := &kunit{bed: newBed(t, f, m.Config), n: m.Slots}
				c.run(k)
				k.exit()
			})
		}
	})
}

// testPools checks the x86 shared pool (HAVE_MIXED_BREAKPOINTS_REGS:
// TYPE_INST == TYPE_DATA) against separate instruction registers.
func testPools(t tb, f Constructor) {
	inst := alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Inst}
	data := alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Data}
	t.Run("shared", func(t tb) {
		b := newBed(t, f, alloc.X86(2))
		var held []alloc.Slot
		seen := map[int]bool{}
		for range 2 {
			for _, r := range []alloc.Request{inst, data} {
				s := b.take(r)
				if seen[s.Index()] {
					t.Errorf("index %d given twice in the shared pool", s.Index())
				}
				seen[s.Index()] = true
				held = append(held, s)
			}
		}
		b.refuse(inst)
		b.refuse(data)
		b.refuse(alloc.Request{Task: alloc.NoTask, CPU: 1, Kind: alloc.Inst})
		b.finish(held...)
	})
	t.Run("separate", func(t tb) {
		b := newBed(t, f, alloc.Config{CPUs: 2, Slots: 2, InstSlots: 1})
		var held []alloc.Slot
		for _, r := range []alloc.Request{data, data, inst} {
			held = append(held, b.take(r))
		}
		if i := held[2].Index(); i != 0 {
			t.Errorf("first inst slot got index %d, want 0 in its own pool", i)
		}
		b.refuse(data)
		b.refuse(inst)
		b.refuse(alloc.Request{Task: alloc.NoTask, CPU: 0, Kind: alloc.Data})
		b.refuse(alloc.Request{Task: alloc.NoTask, CPU: 0, Kind: alloc.Inst})
		// Another task draws on its own task-side budget in both pools.
		held = append(held, b.take(alloc.Request{Task: 1, CPU: 0, Kind: alloc.Inst}))
		b.finish(held...)
	})
}

// testInvalid checks that malformed requests and Configs are ErrInvalid,
// never a panic, and leave nothing held.
func testInvalid(t tb, f Constructor) {
	for _, cfg := range []alloc.Config{
		{CPUs: 0, Slots: 4}, {CPUs: alloc.MaxCPUs + 1, Slots: 4}, {CPUs: 1, Slots: 0},
		{CPUs: 1, Slots: alloc.MaxSlots + 1}, {CPUs: 1, Slots: 4, InstSlots: -1},
		{CPUs: 1, Slots: 4, InstSlots: alloc.MaxSlots + 1},
	} {
		var err error
		if p := catch(func() { _, err = f(cfg) }); p != nil {
			t.Errorf("constructor for invalid %+v: %v", cfg, p)
		} else if !errors.Is(err, alloc.ErrInvalid) {
			t.Errorf("constructor for invalid %+v: %v, want ErrInvalid", cfg, err)
		}
	}
	forMachines(t, nil, func(t tb, m machine) {
		b := newBed(t, f, m.Config)
		for _, r := range []alloc.Request{
			{Task: 0, CPU: m.CPUs}, {Task: 0, CPU: -2}, {Task: alloc.NoTask, CPU: alloc.AnyCPU},
			{Task: -5, CPU: 0}, {Task: 0, CPU: 0, Kind: 7}, {Task: alloc.NoTask, CPU: m.CPUs + 1000},
		} {
			if _, err := b.reserve(r); !errors.Is(err, alloc.ErrInvalid) {
				t.Errorf("Reserve(%+v) = %v, want ErrInvalid", r, err)
			}
		}
		for _, s := range []alloc.Slot{
			{}, alloc.NewSlot(alloc.Request{Task: 9, CPU: alloc.AnyCPU}, 0, 1), alloc.NewSlot(alloc.Request{Task: alloc.NoTask, CPU: 0}, 0, 1),
			alloc.NewSlot(alloc.Request{Task: alloc.NoTask, CPU: m.CPUs}, 0, 1), alloc.NewSlot(alloc.Request{Task: 0, CPU: 0}, alloc.MaxSlots, 1),
			alloc.NewSlot(alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: 9}, -7, 3),
		} {
			if err := b.release(s); !errors.Is(err, alloc.ErrNotReserved) {
				t.Errorf("Release(forged %v index %d gen %d) = %v, want ErrNotReserved", s.Request(), s.Index(), s.Gen(), err)
			}
		}
		b.finish()
	})
}

// testRelease checks ErrNotReserved for double releases and for stale
// slots whose index has been reused, which must leave the new holder's
// slot held, on every machine and target shape.
func testRelease(t tb, f Constructor) {
	forMachines(t, nil, func(t tb, m machine) {
		b := newBed(t, f, m.Config)
		last := m.CPUs - 1
		for _, r := range []alloc.Request{
			{Task: alloc.NoTask, CPU: last}, {Task: 3, CPU: alloc.AnyCPU}, {Task: 3, CPU: last},
			{Task: 3, CPU: 0, Kind: alloc.Inst},
		} {
			s1 := b.take(r)
			if err := b.release(s1); err != nil {
				t.Fatalf("first release of %v: %v", r, err)
			}
			if err := b.release(s1); !errors.Is(err, alloc.ErrNotReserved) {
				t.Errorf("double release of %v: %v, want ErrNotReserved", r, err)
			}
			s2 := b.take(r) // lowest free first: s1's index again
			if s2.Index() != s1.Index() || s2.Gen() == s1.Gen() {
				t.Errorf("%v: reuse got index %d gen %d after index %d gen %d, want the same index, another gen",
					r, s2.Index(), s2.Gen(), s1.Index(), s1.Gen())
			}
			if err := b.release(s1); !errors.Is(err, alloc.ErrNotReserved) {
				t.Errorf("stale release of %v: %v, want ErrNotReserved", r, err)
			}
			// s2 still counts: the target takes exactly N-1 more.
			held := []alloc.Slot{s2}
			for range m.PoolSize(r.Kind) - 1 {
				held = append(held, b.take(r))
			}
			b.refuse(r)
			b.finish(held...)
		}
		// Many reuses of one index: no earlier slot may match the holder's,
		// however the generation is stored (a narrow field wraps).
		r := alloc.Request{Task: alloc.NoTask, CPU: last}
		var stale []alloc.Slot
		for range 64 {
			s := b.take(r)
			stale = append(stale, s)
			if err := b.release(s); err != nil {
				t.Fatalf("release of %v: %v", r, err)
			}
		}
		cur := b.take(r)
		for i, s := range stale {
			if err := b.release(s); !errors.Is(err, alloc.ErrNotReserved) {
				t.Fatalf("stale release of %v from %d reuses ago (gen %d, holder's gen %d): %v, want ErrNotReserved",
					r, len(stale)-i, s.Gen(), cur.Gen(), err)
			}
		}
		b.ops = b.ops[:0]
		b.finish(cur)
	})
}

// testFragmented checks the one corner where admission (exactly the
// kernel's) passes but no register number is free on every CPU: the slot
// is admitted with Index() == NoIndex, counts like any other, and releases.
func testFragmented(t tb, f Constructor) {
	forMachines(t, func(m machine) bool { return m.CPUs >= 2 && m.Slots >= 2 }, func(t tb, m machine) {
		b := newBed(t, f, m.Config)
		r0, r1, all := alloc.Request{Task: 0, CPU: 0}, alloc.Request{Task: 0, CPU: 1}, alloc.Request{Task: 0, CPU: alloc.AnyCPU}
		// CPU 0 holds indexes 1..N-1, CPU 1 holds 0..N-2: each CPU has one
		// register free, but not the same one.
		var held []alloc.Slot
		for range m.Slots {
			held = append(held, b.take(r0))
		}
		if err := b.release(held[0]); err != nil {
			t.Fatalf("release: %v", err)
		}
		held = held[1:]
		for range m.Slots - 1 {
			held = append(held, b.take(r1))
		}
		s := b.take(all)
		if s.Index() != alloc.NoIndex {
			t.Errorf("fragmented all-CPU breakpoint got index %d, want NoIndex", s.Index())
		}
		for _, r := range []alloc.Request{r0, r1, all, {Task: alloc.NoTask, CPU: 0}, {Task: alloc.NoTask, CPU: 1}} {
			b.refuse(r)
		}
		b.finish(append(held, s)...)
		if err := b.release(s); !errors.Is(err, alloc.ErrNotReserved) {
			t.Errorf("double release of a NoIndex slot: %v", err)
		}
	})
}

// testRegressions replays sequences that once broke a strategy.
func testRegressions(t tb, f Constructor) {
	// Issue 9: cas indexed past its per-CPU table ("index out of range
	// [16] with length 16") when a task that held 16 one-CPU breakpoints
	// on CPU 0 asked for an all-CPU one at Slots = 16.
	t.Run("issue9_full_task_cpu0_then_all_cpus", func(t tb) {
		b := newBed(t, f, alloc.Config{CPUs: 2, Slots: alloc.MaxSlots})
		var held []alloc.Slot
		for range alloc.MaxSlots {
			held = append(held, b.take(alloc.Request{Task: 0, CPU: 0}))
		}
		b.refuse(alloc.Request{Task: 0, CPU: alloc.AnyCPU})
		b.finish(held...)
	})
	// The same shape on every machine and both pools: a target filled
	// through one shape, then asked through every other.
	forMachines(t, nil, func(t tb, m machine) {
		for _, k := range []alloc.Kind{alloc.Data, alloc.Inst} {
			for _, fill := range []alloc.Request{{Task: 0, CPU: 0, Kind: k}, {Task: 0, CPU: alloc.AnyCPU, Kind: k}, {Task: alloc.NoTask, CPU: 0, Kind: k}} {
				t.Run(fmt.Sprintf("full_%v", fill), func(t tb) {
					b := newBed(t, f, m.Config)
					var held []alloc.Slot
					for range m.PoolSize(k) {
						held = append(held, b.take(fill))
					}
					for _, r := range []alloc.Request{{Task: 0, CPU: alloc.AnyCPU, Kind: k}, {Task: 0, CPU: 0, Kind: k}, {Task: alloc.NoTask, CPU: 0, Kind: k}} {
						b.refuse(r)
					}
					b.finish(held...)
				})
			}
		}
	})
}

package hwregs

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"bpbench/alloc"
)

// dr7LastPolicy writes only changed registers, DR7 always last: a user's
// policy that ignores PlanOrder, so the kernel refuses some of its plans.
type dr7LastPolicy struct{}

func (dr7LastPolicy) Plan(dst []RegWrite, cur, next *Regs) []RegWrite {
	for i := 0; i < NumSlots; i++ {
		if next.DR[i] != cur.DR[i] {
			dst = append(dst, RegWrite{i, next.DR[i]})
		}
	}
	if next.DR7 != cur.DR7 {
		dst = append(dst, RegWrite{RegDR7, uint64(next.DR7)})
	}
	return dst
}

// shortPolicy forgets DR7: its plans do not reach the wanted state.
type shortPolicy struct{}

func (shortPolicy) Plan(dst []RegWrite, cur, next *Regs) []RegWrite {
	for i := 0; i < NumSlots; i++ {
		if next.DR[i] != cur.DR[i] {
			dst = append(dst, RegWrite{i, next.DR[i]})
		}
	}
	return dst
}

var (
	testPolicyOnce sync.Once
	testPolicyErr  error
)

// testPolicies registers the test policies once per test binary (the
// registry is process-wide and refuses a name twice) and returns them.
func testPolicies(t *testing.T) (dr7Last, short WritePolicy) {
	t.Helper()
	testPolicyOnce.Do(func() {
		testPolicyErr = errors.Join(RegisterPolicy("test-dr7-last", dr7LastPolicy{}), RegisterPolicy("test-short", shortPolicy{}),
			RegisterPolicy("test-func", funcPolicy(shortPolicy{}.Plan)))
	})
	if testPolicyErr != nil {
		t.Fatal(testPolicyErr)
	}
	return dr7LastPolicy{}, shortPolicy{}
}

// funcPolicy is a policy of a type that cannot be compared.
type funcPolicy func(dst []RegWrite, cur, next *Regs) []RegWrite

func (f funcPolicy) Plan(dst []RegWrite, cur, next *Regs) []RegWrite { return f(dst, cur, next) }

// TestRegisterPolicy checks the registry: names round-trip, built-ins keep
// their names, bad registrations are refused, and a policy never
// registered (even one that cannot be compared) is named by its type.
func TestRegisterPolicy(t *testing.T) {
	dr7Last, _ := testPolicies(t)
	if got, err := ParsePolicy("test-dr7-last"); err != nil || got != dr7Last {
		t.Fatalf("ParsePolicy(test-dr7-last) = %v, %v; want %v", got, err, dr7Last)
	}
	if got := PolicyName(dr7Last); got != "test-dr7-last" {
		t.Errorf("PolicyName(dr7LastPolicy{}) = %q, want test-dr7-last", got)
	}
	names := PolicyNames()
	if len(names) < 4 || names[0] != "changed" || names[1] != "all" || !slices.Contains(names, "test-dr7-last") {
		t.Errorf("PolicyNames() = %q", names)
	}
	for _, c := range []struct {
		name string
		wp   WritePolicy
	}{{"changed", dr7LastPolicy{}}, {"test-dr7-last", dr7LastPolicy{}}, {"", dr7LastPolicy{}}, {"test-nil", nil}} {
		if err := RegisterPolicy(c.name, c.wp); !errors.Is(err, alloc.ErrInvalid) {
			t.Errorf("RegisterPolicy(%q, %v) = %v, want ErrInvalid", c.name, c.wp, err)
		}
	}
	if _, err := ParsePolicy("test-unknown"); !errors.Is(err, alloc.ErrInvalid) {
		t.Errorf("ParsePolicy(test-unknown) = %v, want ErrInvalid", err)
	}
	if PolicyName(WriteChanged) != "changed" || PolicyName(WriteAll) != "all" || fmt.Sprint(WriteChanged, WriteAll) != "changed all" {
		t.Errorf("built-ins renamed: %v, %v", PolicyName(WriteChanged), PolicyName(WriteAll))
	}
	// A registered funcPolicy is there to compare against: looking up
	// another by value would panic.
	unnamed := funcPolicy(func(dst []RegWrite, cur, next *Regs) []RegWrite { return dst })
	if got := PolicyName(unnamed); got != "hwregs.funcPolicy" {
		t.Errorf("PolicyName(unregistered funcPolicy) = %q, want its type", got)
	}
}

// TestBuiltinPlans checks the built-in plans write exactly what the
// policies promise: changed registers only, or all six, and DR7 first only
// when the kernel would refuse the new address under the old DR7.
func TestBuiltinPlans(t *testing.T) {
	on8 := DR7(0).WithSlot(0, Attr{Addr: 0x1000, Len: 8, Type: Write})
	cur := Regs{DR: [NumSlots]uint64{0x1000}, DR7: on8}
	move := cur
	move.DR[0] = 0x2000
	shrink := Regs{DR: [NumSlots]uint64{0x1003}, DR7: DR7(0).WithSlot(0, Attr{Addr: 0x1003, Len: 1, Type: Write})}
	for _, c := range []struct {
		name string
		wp   WritePolicy
		next Regs
		want []RegWrite
	}{
		{"changed/move", WriteChanged, move, []RegWrite{{RegDR0, 0x2000}}},
		{"changed/same", WriteChanged, cur, nil},
		{"changed/shrink", WriteChanged, shrink, []RegWrite{{RegDR7, uint64(shrink.DR7)}, {RegDR0, 0x1003}}},
		{"all/move", WriteAll, move, []RegWrite{{RegDR0, 0x2000}, {RegDR1, 0}, {RegDR2, 0}, {RegDR3, 0}, {RegDR6, 0}, {RegDR7, uint64(on8)}}},
		{"all/shrink", WriteAll, shrink, []RegWrite{{RegDR7, uint64(shrink.DR7)}, {RegDR0, 0x1003}, {RegDR1, 0}, {RegDR2, 0}, {RegDR3, 0}, {RegDR6, 0}}},
	} {
		if got := c.wp.Plan(nil, &cur, &c.next); !slices.Equal(got, c.want) {
			t.Errorf("%s: plan %v, want %v", c.name, got, c.want)
		}
	}
}

// TestWriterCustomPolicy runs a user-defined policy through the Writer on
// Sim: its writes are the ones made, a plan the kernel refuses or a failed
// write is rolled back, and a plan that misses the wanted state fails with
// ErrPlan, rolled back too.
func TestWriterCustomPolicy(t *testing.T) {
	dr7Last, short := testPolicies(t)
	sim := NewSim()
	w := NewWriter(newAlloc(t, "mutex", alloc.X86(2)), sim, dr7Last)
	tg := TargetOf(taskReq)
	a8 := Attr{Addr: 0x1000, Len: 8, Type: Write}
	bp := mustRegister(t, w, taskReq, a8)
	checkBP(t, sim, bp)
	n0 := sim.Writes()
	moved := Attr{Addr: 0x2000, Len: 8, Type: Write}
	if err := w.Modify(&bp, moved); err != nil {
		t.Fatal(err)
	}
	if n := sim.Writes() - n0; n != 1 {
		t.Errorf("modify under dr7-last: %d writes, want 1 (DR0)", n)
	}
	checkBP(t, sim, bp)

	// Shrinking to 1 byte at an unaligned address needs DR7 first; DR0
	// first is refused under the old 8-byte length, and nothing changes.
	before := regs(t, sim, tg)
	if err := w.Modify(&bp, Attr{Addr: 0x2003, Len: 1, Type: Write}); !errors.Is(err, alloc.ErrInvalid) {
		t.Fatalf("unaligned shrink under dr7-last = %v, want the kernel's refusal (ErrInvalid)", err)
	}
	if got := regs(t, sim, tg); got != before || bp.Attr != moved {
		t.Fatalf("after the refused plan: registers %#x, bp %v; want %#x, %v", got, bp.Attr, before, moved)
	}
	checkMirror(t, w, tg)

	// A failure at the plan's last write (DR7) undoes its first (DR0).
	sim.InjectFaults(1, 1)
	if err := w.Modify(&bp, Attr{Addr: 0x3000, Len: 4, Type: ReadWrite}); !errors.Is(err, ErrInjected) {
		t.Fatalf("modify with DR7 failing = %v, want ErrInjected", err)
	}
	if got := regs(t, sim, tg); got != before || bp.Attr != moved {
		t.Fatalf("after the rollback: registers %#x, bp %v; want %#x, %v", got, bp.Attr, before, moved)
	}
	checkMirror(t, w, tg)
	if err := w.Unregister(bp); err != nil {
		t.Fatal(err)
	}

	ws := NewWriter(newAlloc(t, "mutex", alloc.X86(2)), NewSim(), short)
	if _, err := ws.Register(taskReq, a8); !errors.Is(err, ErrPlan) {
		t.Fatalf("Register under a plan without DR7 = %v, want ErrPlan", err)
	}
	if got := regs(t, ws.Backend(), tg); got != [5]uint64{} {
		t.Fatalf("after ErrPlan: registers %#x, want all zero", got)
	}
	checkMirror(t, ws, tg)
	if ws.Allocator().InUse() {
		t.Fatal("slot still reserved after ErrPlan")
	}
}

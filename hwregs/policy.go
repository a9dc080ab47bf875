package hwregs

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"bpbench/alloc"
)

// Regs is the part of one target's register file a policy plans over:
// the four address registers and DR7 (DR6 is not mirrored; a plan may
// still write it).
type Regs struct {
	DR  [NumSlots]uint64
	DR7 DR7
}

// RegWrite is one register write of a plan: Reg is RegDR0..RegDR3,
// RegDR6 or RegDR7.
type RegWrite struct {
	Reg int
	Val uint64
}

// WritePolicy decides the writes that take a target from the registers the
// Writer mirrors to the next state: the seam GDB's write-changed and
// Delve's write-all are two instances of.
//
// Plan appends the writes to dst in the order they are to be made and
// returns it; it must neither change cur and next nor keep them. The
// Writer makes the writes one by one and stops at the first the backend
// refuses; the plan must leave DR0-DR3 and DR7 equal to next, or the
// Writer fails the change with ErrPlan. After a refusal or ErrPlan the
// Writer restores cur with the fewest writes (WriteChanged's plan), so a
// policy cannot break the Writer's rollback, and the Writer's mirror
// always tracks what was really written. Every intermediate state must be
// one the kernel accepts (see PlanOrder). dst has room for 12 writes
// (WriteAll plans 6), so a plan of at most 12 does not allocate. Plan is
// called with the target's mirror locked and must not call the Writer.
type WritePolicy interface {
	Plan(dst []RegWrite, cur, next *Regs) []RegWrite
}

// ErrPlan is wrapped by the error of a change whose policy's plan did not
// reach the state it was asked for.
var ErrPlan = errors.New("register-writing policy's plan does not reach the wanted state")

// planCap is the scratch each mirror keeps for plans: twice WriteAll's six
// writes, room for a custom plan that writes some registers twice.
const planCap = 12

// The built-in policies, registered as "changed" and "all".
var (
	// WriteChanged writes only the DR0-DR3 and DR7 values that differ from
	// the Writer's mirror of the target's registers, as GDB does
	// (gdb/nat/x86-dregs.c).
	WriteChanged WritePolicy = changedPolicy{}
	// WriteAll writes DR0-DR3, DR6 and DR7 on every change, as Delve does
	// (pkg/proc/amd64util/debugregs.go): six writes per state. Unregister
	// under WriteAll also zeroes the breakpoint's address register.
	WriteAll WritePolicy = allPolicy{}
)

// Policies lists the built-in policies, for benchmarks and tests that sweep
// them; PolicyNames lists registered ones too.
var Policies = []WritePolicy{WriteChanged, WriteAll}

// changedPolicy is WriteChanged.
type changedPolicy struct{}

func (changedPolicy) Plan(dst []RegWrite, cur, next *Regs) []RegWrite {
	return planWrites(dst, cur, next, false)
}

// String returns "changed", so that the policy prints as its name.
func (changedPolicy) String() string { return "changed" }

// allPolicy is WriteAll.
type allPolicy struct{}

func (allPolicy) Plan(dst []RegWrite, cur, next *Regs) []RegWrite {
	return planWrites(dst, cur, next, true)
}

// String returns "all", so that the policy prints as its name.
func (allPolicy) String() string { return "all" }

// PlanOrder reports whether DR7 must be written before the address
// registers to move from cur to next: true when some new address would be
// refused under the current DR7 (a slot shrinking from 8 bytes to 1 at an
// address that is not 8-aligned). Writing DR7 first is then always
// accepted, because the old address is aligned to the shorter length.
// Otherwise address registers go first and DR7 last, so that no slot is
// enabled with an address it does not have yet. Custom policies use it to
// order their writes the way the kernel needs.
func PlanOrder(cur, next *Regs) (dr7First bool) {
	for i := 0; i < NumSlots; i++ {
		if a := next.DR[i]; a != cur.DR[i] && mustLead(cur.DR7, i, a) {
			return true
		}
	}
	return false
}

// mustLead reports whether slot i's new address a would be refused under
// DR7 d, so that DR7 must change first. The alignment test skips
// kernelAccepts for every aligned address (see slotLen).
func mustLead(d DR7, i int, a uint64) bool {
	return a&(slotLen(d, i)-1) != 0 && kernelAccepts(d, i, a) != nil
}

// planWrites is the built-in plan: every register and DR6 = 0 if all is
// set, otherwise those that differ from cur, ordered as PlanOrder says. It
// decides the order in the same pass that emits the address registers.
func planWrites(dst []RegWrite, cur, next *Regs, all bool) []RegWrite {
	start, dr7First := len(dst), false
	for i := 0; i < NumSlots; i++ {
		a := next.DR[i]
		if a != cur.DR[i] {
			dr7First = dr7First || mustLead(cur.DR7, i, a)
		} else if !all {
			continue
		}
		dst = append(dst, RegWrite{i, a})
	}
	if all {
		// The Writer does not mirror DR6: nothing it programs depends on it.
		dst = append(dst, RegWrite{RegDR6, 0})
	}
	if !all && next.DR7 == cur.DR7 {
		return dst
	}
	dr7 := RegWrite{RegDR7, uint64(next.DR7)}
	dst = append(dst, dr7)
	if dr7First {
		copy(dst[start+1:], dst[start:len(dst)-1])
		dst[start] = dr7
	}
	return dst
}

type namedPolicy struct {
	name string
	wp   WritePolicy
}

var (
	policyMu sync.RWMutex
	// policyReg holds the registered policies in registration order;
	// entries are never removed.
	policyReg = []namedPolicy{{"changed", WriteChanged}, {"all", WriteAll}}
)

// RegisterPolicy makes wp available as the policy name, for ParsePolicy,
// PolicyNames and PolicyName (NewWriter takes any WritePolicy, registered
// or not). An empty or taken name or a nil wp is an error wrapping
// alloc.ErrInvalid.
func RegisterPolicy(name string, wp WritePolicy) error {
	if name == "" || wp == nil {
		return fmt.Errorf("%w: RegisterPolicy(%q, %v): want a name and a non-nil policy", alloc.ErrInvalid, name, wp)
	}
	policyMu.Lock()
	defer policyMu.Unlock()
	for _, np := range policyReg {
		if np.name == name {
			return fmt.Errorf("%w: RegisterPolicy: policy %q already registered", alloc.ErrInvalid, name)
		}
	}
	policyReg = append(policyReg, namedPolicy{name, wp})
	return nil
}

// PolicyNames returns the names of every registered policy, built-ins
// first, in registration order.
func PolicyNames() []string {
	policyMu.RLock()
	defer policyMu.RUnlock()
	names := make([]string, len(policyReg))
	for i, np := range policyReg {
		names[i] = np.name
	}
	return names
}

// ParsePolicy returns the policy named s ("changed", "all" or a registered
// name); any other name is an error wrapping alloc.ErrInvalid.
func ParsePolicy(s string) (WritePolicy, error) {
	policyMu.RLock()
	defer policyMu.RUnlock()
	names := make([]string, len(policyReg))
	for i, np := range policyReg {
		if np.name == s {
			return np.wp, nil
		}
		names[i] = fmt.Sprintf("%q", np.name)
	}
	return nil, fmt.Errorf("%w: policy %q: unknown (want %s)", alloc.ErrInvalid, s, strings.Join(names, " or "))
}

// PolicyName returns the name wp is registered under ("changed" for
// WriteChanged, "all" for WriteAll), the name results and benchmarks give
// it, or its Go type for a policy never registered.
func PolicyName(wp WritePolicy) string {
	// Only a comparable policy can be found by value: comparing two
	// interfaces holding the same uncomparable type would panic.
	if wp != nil && reflect.TypeOf(wp).Comparable() {
		policyMu.RLock()
		defer policyMu.RUnlock()
		for _, np := range policyReg {
			if np.wp == wp {
				return np.name
			}
		}
	}
	return fmt.Sprintf("%T", wp)
}

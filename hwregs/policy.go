package hwregs

import (
	"fmt"

	"bpbench/alloc"
)

// Policy says which debug registers the Writer writes when a breakpoint
// changes.
type Policy uint8

const (
	// WriteChanged writes only the DR0-DR3 and DR7 values that differ from
	// the Writer's mirror of the target's registers, as GDB does
	// (gdb/nat/x86-dregs.c).
	WriteChanged Policy = iota
	// WriteAll writes DR0-DR3, DR6 and DR7 on every change, as Delve does
	// (pkg/proc/amd64util/debugregs.go): six writes per state.
	WriteAll
	numPolicies
)

// Policies lists every policy, for benchmarks and tests that sweep them.
var Policies = []Policy{WriteChanged, WriteAll}

// String returns "changed" or "all", the names ParsePolicy accepts.
func (p Policy) String() string {
	switch p {
	case WriteChanged:
		return "changed"
	case WriteAll:
		return "all"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy returns the policy named s ("changed" or "all"); any other
// name is an error wrapping alloc.ErrInvalid.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range Policies {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: policy %q: unknown (want \"changed\" or \"all\")", alloc.ErrInvalid, s)
}

// valid reports whether p is one of the defined policies.
func (p Policy) valid() bool { return p < numPolicies }

// Package hwregs puts breakpoints into x86 debug registers: the DR6/DR7
// codec, attribute validation, the shared Writer, and backends (simulated
// registers, a real ptrace tracee, perf_event_open).
package hwregs

import (
	"errors"
	"fmt"

	"bpbench/alloc"
	"bpbench/internal/enum"
	"bpbench/internal/support"
)

// Type is the access a breakpoint traps on.
type Type uint8

const (
	// Exec traps when the instruction at Addr is executed.
	Exec Type = iota + 1
	// Write traps on writes to [Addr, Addr+Len).
	Write
	// ReadWrite traps on reads or writes of [Addr, Addr+Len).
	ReadWrite
	// Read is a read-only watchpoint, which x86 does not have; it exists so
	// callers get a clear ErrUnsupported rather than a silent ReadWrite.
	Read
)

// typeNames are the names of the Type values, for String.
var typeNames = [...]string{Exec: "exec", Write: "write", ReadWrite: "rw", Read: "read"}

// String returns "exec", "write", "rw" or "read".
func (t Type) String() string { return enum.Name("Type", typeNames[:], t) }

// Kind returns the alloc pool the type draws from.
func (t Type) Kind() alloc.Kind {
	if t == Exec {
		return alloc.Inst
	}
	return alloc.Data
}

// MaxUserAddr is the first address above x86-64 user space (TASK_SIZE_MAX
// with 4-level paging: 1<<47 minus one page). The kernel refuses breakpoints
// at or above it for user tasks.
const MaxUserAddr = 1<<47 - 4096

// Sentinel errors of this package; test with errors.Is. Attribute errors
// also wrap alloc.ErrInvalid.
var (
	// ErrUnsupported: the hardware cannot do what was asked (read-only watch).
	ErrUnsupported = support.New("not supported by x86 debug registers")
	// ErrBadAddr: the address is unaligned or outside user space.
	ErrBadAddr = errors.New("bad breakpoint address")
	// ErrBadLen: the length is not 1, 2, 4 or 8 (or not 1 for exec).
	ErrBadLen = errors.New("bad breakpoint length")
)

// Attr describes one breakpoint.
type Attr struct {
	Addr uint64
	Len  int // 1, 2, 4 or 8 bytes; 1 for Exec
	Type Type
}

// String formats the attribute, e.g. "write 8@0x4c2f40".
func (a Attr) String() string { return fmt.Sprintf("%v %d@%#x", a.Type, a.Len, a.Addr) }

// Validate reports an attribute the hardware cannot program. Errors wrap
// alloc.ErrInvalid and one of ErrUnsupported, ErrBadAddr, ErrBadLen, and
// name the bad field.
func (a Attr) Validate() error {
	// Every Modify validates, so the accepting case is a few inlined
	// comparisons; working out what is wrong is left to invalid.
	if a.ok() {
		return nil
	}
	return a.invalid()
}

// ok reports whether Validate accepts a. Len-1 < 8 with no bit in common
// with Len rules out 0, negative lengths and 3, 5, 6, 7; Addr is below
// MaxUserAddr before Addr+Len is formed, so the sum cannot wrap.
func (a Attr) ok() bool {
	n := uint64(a.Len)
	switch a.Type {
	case Exec:
		if n != 1 {
			return false
		}
	case Write, ReadWrite:
		if n-1 >= 8 || n&(n-1) != 0 || a.Addr&(n-1) != 0 {
			return false
		}
	default:
		return false
	}
	return a.Addr < MaxUserAddr && a.Addr+n <= MaxUserAddr
}

// invalid returns Validate's error for an attribute ok refuses.
func (a Attr) invalid() error {
	switch a.Type {
	case Exec, Write, ReadWrite:
	case Read:
		return fmt.Errorf("%w: Attr.Type = read: %w (x86 has no read-only watchpoint; use ReadWrite)", alloc.ErrInvalid, ErrUnsupported)
	default:
		return fmt.Errorf("%w: Attr.Type = %d: unknown type (want Exec, Write or ReadWrite)", alloc.ErrInvalid, uint8(a.Type))
	}
	if a.Type == Exec {
		if a.Len != 1 {
			return fmt.Errorf("%w: Attr.Len = %d: %w (exec breakpoints use length 1)", alloc.ErrInvalid, a.Len, ErrBadLen)
		}
	} else {
		switch a.Len {
		case 1, 2, 4, 8:
		default:
			return fmt.Errorf("%w: Attr.Len = %d: %w (want 1, 2, 4 or 8)", alloc.ErrInvalid, a.Len, ErrBadLen)
		}
		if a.Addr%uint64(a.Len) != 0 {
			return fmt.Errorf("%w: Attr.Addr = %#x: %w (not aligned to Len %d)", alloc.ErrInvalid, a.Addr, ErrBadAddr, a.Len)
		}
	}
	if a.Addr >= MaxUserAddr || a.Addr+uint64(a.Len) > MaxUserAddr {
		return fmt.Errorf("%w: Attr.Addr = %#x: %w (not a user-space address, limit %#x)", alloc.ErrInvalid, a.Addr, ErrBadAddr, uint64(MaxUserAddr))
	}
	// Unreachable while ok and the checks above agree; TestAttrFastCheck
	// holds them to that, and refusing is the safe answer if they drift.
	return fmt.Errorf("%w: %v: %w", alloc.ErrInvalid, a, errFastCheck)
}

// errFastCheck marks a refusal by Attr.ok that invalid cannot explain.
var errFastCheck = errors.New("refused by the fast check only")

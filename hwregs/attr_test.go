package hwregs

import (
	"errors"
	"strings"
	"testing"

	"bpbench/alloc"
)

// TestAttrValidate checks each refusal's sentinel and that the message
// names the bad field, and that valid attributes pass.
func TestAttrValidate(t *testing.T) {
	for _, tc := range []struct {
		a     Attr
		want  error // nil: valid
		field string
	}{
		{Attr{Addr: 0x1000, Len: 1, Type: Exec}, nil, ""},
		{Attr{Addr: 0x1003, Len: 1, Type: Exec}, nil, ""}, // instructions need no alignment
		{Attr{Addr: 0x1000, Len: 8, Type: Write}, nil, ""},
		{Attr{Addr: 0x1006, Len: 2, Type: ReadWrite}, nil, ""},
		{Attr{Addr: MaxUserAddr - 8, Len: 8, Type: Write}, nil, ""},
		{Attr{Addr: 0, Len: 4, Type: Write}, nil, ""},

		{Attr{Addr: 0x1000, Len: 4, Type: Read}, ErrUnsupported, "Attr.Type"},
		{Attr{Addr: 0x1000, Len: 4, Type: 0}, nil, "Attr.Type"},
		{Attr{Addr: 0x1000, Len: 4, Type: 9}, nil, "Attr.Type"},
		{Attr{Addr: 0x1000, Len: 3, Type: Write}, ErrBadLen, "Attr.Len"},
		{Attr{Addr: 0x1000, Len: 0, Type: ReadWrite}, ErrBadLen, "Attr.Len"},
		{Attr{Addr: 0x1000, Len: -8, Type: Write}, ErrBadLen, "Attr.Len"},
		{Attr{Addr: 0x1000, Len: 16, Type: Write}, ErrBadLen, "Attr.Len"},
		{Attr{Addr: 0x1000, Len: 8, Type: Exec}, ErrBadLen, "Attr.Len"},
		{Attr{Addr: 0x1004, Len: 8, Type: Write}, ErrBadAddr, "Attr.Addr"},
		{Attr{Addr: 0x1001, Len: 2, Type: ReadWrite}, ErrBadAddr, "Attr.Addr"},
		{Attr{Addr: MaxUserAddr, Len: 1, Type: Write}, ErrBadAddr, "Attr.Addr"},
		{Attr{Addr: MaxUserAddr, Len: 1, Type: Exec}, ErrBadAddr, "Attr.Addr"},
		{Attr{Addr: 0xffffffff81000000, Len: 8, Type: Write}, ErrBadAddr, "Attr.Addr"},
		{Attr{Addr: ^uint64(0), Len: 1, Type: Write}, ErrBadAddr, "Attr.Addr"}, // bp-modify.c's DR0 = -1
		{Attr{Addr: ^uint64(7), Len: 8, Type: Write}, ErrBadAddr, "Attr.Addr"}, // Addr+Len wraps to 0
	} {
		err := tc.a.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%v: Validate = %v, want nil", tc.a, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%v: Validate = nil, want an error naming %s", tc.a, tc.field)
			continue
		}
		if !errors.Is(err, alloc.ErrInvalid) {
			t.Errorf("%v: %v does not wrap alloc.ErrInvalid", tc.a, err)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%v: %v does not wrap %v", tc.a, err, tc.want)
		}
		if !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%v: %q does not name %s", tc.a, err, tc.field)
		}
	}
}

// TestTypeKind checks the pool each type draws from and the names.
func TestTypeKind(t *testing.T) {
	for ty, k := range map[Type]alloc.Kind{Exec: alloc.Inst, Write: alloc.Data, ReadWrite: alloc.Data, Read: alloc.Data} {
		if ty.Kind() != k {
			t.Errorf("%v.Kind() = %v, want %v", ty, ty.Kind(), k)
		}
	}
	if s := (Attr{Addr: 0x4c2f40, Len: 8, Type: Write}).String(); s != "write 8@0x4c2f40" {
		t.Errorf("Attr.String = %q", s)
	}
}

// TestParsePolicy round-trips the policy names and refuses others.
func TestParsePolicy(t *testing.T) {
	for _, p := range Policies {
		got, err := ParsePolicy(PolicyName(p))
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", PolicyName(p), got, err)
		}
	}
	if _, err := ParsePolicy("lazy"); !errors.Is(err, alloc.ErrInvalid) || !strings.Contains(err.Error(), "lazy") {
		t.Errorf("ParsePolicy(lazy) = %v, want ErrInvalid naming it", err)
	}
}

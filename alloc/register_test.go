package alloc_test

import (
	"errors"
	"slices"
	"testing"

	"bpbench/alloc"
)

func TestRegister(t *testing.T) {
	mk := func(c alloc.Config) (alloc.Allocator, error) { return alloc.New("mutex", c) }
	if err := alloc.Register("test-register", mk); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if !slices.Contains(alloc.Strategies(), "test-register") {
		t.Errorf("Strategies() = %v, missing test-register", alloc.Strategies())
	}
	if _, err := alloc.New("test-register", alloc.X86(2)); err != nil {
		t.Errorf("New(test-register): %v", err)
	}
	if _, err := alloc.New("test-register", alloc.Config{}); !errors.Is(err, alloc.ErrInvalid) {
		t.Errorf("New validates the Config before the constructor: %v", err)
	}
	for _, c := range []struct {
		name string
		f    func(alloc.Config) (alloc.Allocator, error)
		want error
	}{
		{"test-register", mk, alloc.ErrDuplicate},
		{"mutex", mk, alloc.ErrDuplicate},
		{"", mk, alloc.ErrBadName},
		{"a/b", mk, alloc.ErrBadName},
		{"a b", mk, alloc.ErrBadName},
		{"x=1", mk, alloc.ErrBadName},
		{"test-nil", nil, alloc.ErrInvalid},
	} {
		if err := alloc.Register(c.name, c.f); !errors.Is(err, c.want) {
			t.Errorf("Register(%q) = %v, want %v", c.name, err, c.want)
		}
	}
	if slices.Contains(alloc.Strategies(), "test-nil") {
		t.Error("a refused registration is listed")
	}
}

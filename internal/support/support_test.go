package support

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMissing(t *testing.T) {
	errA, errB := New("no A here"), New("no B here")
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{unix.ENOSPC, false},
		{fmt.Errorf("open: %w", unix.EINVAL), false},
		{errA, true},
		{fmt.Errorf("probe: %w: %w", errA, unix.ENOENT), true},
		{fmt.Errorf("seize: %w", unix.EPERM), true},
		{fmt.Errorf("open: %w", unix.EACCES), true},
		{unix.ENOSYS, true},
		{errors.Join(errors.New("x"), fmt.Errorf("y: %w", errB)), true},
	} {
		if got := Missing(c.err); got != c.want {
			t.Errorf("Missing(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	// Sentinels stay apart from each other and keep their own text.
	if errors.Is(errA, errB) || errors.Is(fmt.Errorf("w: %w", errA), errB) || !errors.Is(fmt.Errorf("w: %w", errA), errA) {
		t.Error("two sentinels made with New match each other, or a wrapped one does not match itself")
	}
	if errA.Error() != "no A here" {
		t.Errorf("text %q", errA.Error())
	}
}

package testenv

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"bpbench/internal/kernlock"
	"bpbench/internal/support"
)

// recordTB is a testing.TB that records a skip instead of ending the test.
type recordTB struct {
	testing.TB
	skipped string
}

func (r *recordTB) Helper() {}

func (r *recordTB) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }

func TestSkipIfUnsupported(t *testing.T) {
	noPMU := support.New("no breakpoint PMU")
	for _, c := range []struct {
		err  error
		skip bool
	}{
		{nil, false},
		{errors.New("tracee exited"), false},
		{fmt.Errorf("open: %w", noPMU), true},
		{fmt.Errorf("seize: %w", unix.EPERM), true},
	} {
		r := &recordTB{TB: t}
		SkipIfUnsupported(r, c.err)
		if skipped := r.skipped != ""; skipped != c.skip || c.skip && !strings.Contains(r.skipped, c.err.Error()) {
			t.Errorf("SkipIfUnsupported(%v): skipped %q, want a skip: %v (giving the error as the reason)", c.err, r.skipped, c.skip)
		}
	}
}

// TestLockDebugRegs checks that the lock is held for the length of the
// test that takes it, and released when that test ends.
func TestLockDebugRegs(t *testing.T) {
	t.Run("holder", func(t *testing.T) {
		LockDebugRegs(t)
		// flock is per open file: a second open of the lock file in this
		// process conflicts with the held lock like another process would.
		f, err := os.Open(kernlock.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
			t.Errorf("flock while the test holds the lock: %v, want EWOULDBLOCK", err)
		}
	})
	// Released at the end of the subtest: taking it again does not block
	// for ever (other test processes may hold it for a while).
	l, err := kernlock.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
}

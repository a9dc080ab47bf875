// Package kernlock serialises use of the machine's debug registers across
// processes. Debug registers are one machine-wide resource and `go test ./...`
// runs packages in parallel: tests that count slots or create CPU-bound
// breakpoints take this lock so they do not steal slots from each other.
package kernlock

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Path is the lock file shared by every bpbench process on the machine.
var Path = filepath.Join(os.TempDir(), "bpbench-debugregs.lock")

// Lock is a held machine-wide lock.
type Lock struct{ f *os.File }

// Acquire blocks until this process holds the machine-wide debug-register
// lock. Release it with Unlock.
func Acquire() (*Lock, error) {
	f, err := os.OpenFile(Path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("kernlock: open %s: %w", Path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("kernlock: flock %s: %w", Path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. Closing the file releases the flock too, so a
// crashed process never leaves the lock held.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// For takes the lock for the rest of test or benchmark tb.
func For(tb testing.TB) {
	tb.Helper()
	l, err := Acquire()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Unlock() })
}

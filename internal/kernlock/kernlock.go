// Package kernlock serialises use of the machine's debug registers across
// processes. Debug registers are one machine-wide resource and `go test ./...`
// runs packages in parallel: tests that count slots or create CPU-bound
// breakpoints take this lock so they do not steal slots from each other.
package kernlock

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

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
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		if w := Notify.Load(); w != nil {
			fmt.Fprintf(*w, "waiting for the debug-register lock held by %s\n", Holder())
		}
		start := time.Now()
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if err != unix.EINTR {
				break
			}
		}
		waited.Add(int64(time.Since(start)))
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

// Notify, when set, receives one line each time Acquire has to wait for
// another holder. The CLI points it at its log.
var Notify atomic.Pointer[io.Writer]

var waited atomic.Int64

// Waited returns the total time this process has spent waiting in Acquire
// for other holders of the lock; callers take differences around a piece
// of work to see how long it waited.
func Waited() time.Duration { return time.Duration(waited.Load()) }

// Holder describes the process holding the lock, "PID N (command)", from
// /proc/locks, or "another process" when it cannot tell.
func Holder() string {
	fi, err := os.Stat(Path)
	if err != nil {
		return "another process"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "another process"
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return "another process"
	}
	defer locks.Close()
	// Lines look like "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF";
	// the device is major:minor in hex and the last field of the triple is
	// the inode.
	suffix := ":" + strconv.FormatUint(st.Ino, 10)
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" || !strings.HasSuffix(f[5], suffix) {
			continue
		}
		pid := f[4]
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		if c := strings.TrimSpace(string(comm)); c != "" {
			return fmt.Sprintf("PID %s (%s)", pid, c)
		}
		return "PID " + pid
	}
	return "another process"
}

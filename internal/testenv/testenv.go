// Package testenv holds what the tests share about the machine they run
// on: the one helper that skips a test this machine cannot run, the
// machine-wide debug-register lock held for the length of a test, and the
// TestMain of packages whose tests start helper processes. Only _test.go
// files import it: it imports package testing, which no bpbench binary
// links.
package testenv

import (
	"os"
	"testing"

	"bpbench/internal/child"
	"bpbench/internal/kernlock"
	"bpbench/internal/support"
)

// SkipIfUnsupported skips tb, giving err as the reason, when err says this
// machine lacks a permission, a kernel or hardware feature or a tool
// (support.Missing). Any other error, and nil, is left to the caller, in
// the manner of cilium/ebpf's testutils.SkipIfNotSupported:
//
//	p, err := hwregs.StartPtrace(opts)
//	testenv.SkipIfUnsupported(t, err)
//	if err != nil {
//		t.Fatal(err)
//	}
func SkipIfUnsupported(tb testing.TB, err error) {
	tb.Helper()
	if support.Missing(err) {
		tb.Skipf("cannot run on this machine: %v", err)
	}
}

// LockDebugRegs takes the machine-wide debug-register lock (kernlock) for
// the rest of tb: tests that count debug-register slots or create CPU-bound
// breakpoints hold it, so that test binaries running in parallel do not
// steal slots from each other. Code under test that takes the lock itself
// must not run under it (flock does not nest within a process).
func LockDebugRegs(tb testing.TB) {
	tb.Helper()
	l, err := kernlock.Acquire()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Unlock() })
}

// Main is the TestMain of a test package whose tests start copies of the
// test binary (a ptrace tracee, a kernel workload, a helper of the test's
// own): it serves the child modes (child.Main) before anything else, as
// cli.Main does in a bpbench binary, then runs the tests. A test file with
// modes of its own adds them (child.Add) from its init.
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	child.Main()
	os.Exit(m.Run())
}

// SkipUnderRace skips a test that counts allocations when the race
// detector is on: its own allocations make the counts of a loop differ by
// one now and then. The test runs without -race (go test ./...).
func SkipUnderRace(tb testing.TB) {
	tb.Helper()
	if RaceEnabled {
		tb.Skip("the race detector allocates on its own; allocation counts are checked without -race")
	}
}

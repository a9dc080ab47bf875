package hwregs

import (
	"os"
	"testing"

	"bpbench/internal/child"
)

// TestMain serves the child modes this package's tests start copies of the
// test binary in: the tracee (package tracee) and the tracer helper of
// TestPtraceSignalKillsTracee.
func TestMain(m *testing.M) {
	child.Add(ptHelperMode, ptHelperMain)
	child.Main()
	os.Exit(m.Run())
}

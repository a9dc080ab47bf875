package hwregs

import (
	"testing"

	"bpbench/internal/testenv"
)

// TestMain serves the child modes this package's tests start copies of the
// test binary in: the tracee (package tracee) and the tracer helper of
// TestPtraceSignalKillsTracee.
func TestMain(m *testing.M) { testenv.Main(m) }

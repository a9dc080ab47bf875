package bench

import (
	"testing"

	"bpbench/internal/testenv"
)

// TestMain serves the child modes this package's tests start copies of the
// test binary in: the tracee (package tracee), the kernel experiment's
// workloads, and the parent of TestChildrenDieWithParent.
func TestMain(m *testing.M) { testenv.Main(m) }

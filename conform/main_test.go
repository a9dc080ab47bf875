package conform

import (
	"testing"

	"bpbench/internal/testenv"
)

// TestMain serves the tracee (package tracee) that the kernel facts probe
// starts as a copy of the test binary.
func TestMain(m *testing.M) { testenv.Main(m) }

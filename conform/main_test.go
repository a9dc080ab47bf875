package conform

import (
	"os"
	"testing"

	"bpbench/internal/child"
)

// TestMain serves the tracee (package tracee) that the kernel facts probe
// starts as a copy of the test binary.
func TestMain(m *testing.M) {
	child.Main()
	os.Exit(m.Run())
}

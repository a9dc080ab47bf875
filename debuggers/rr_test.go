package debuggers

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestRRUsable checks that the rr verdict says why: rr missing, or, when
// no hardware counter opens here, that reason with the errno.
func TestRRUsable(t *testing.T) {
	err := RRUsable(context.Background())
	if !errors.Is(err, ErrSkip) {
		t.Fatalf("RRUsable: %v, want an error wrapping ErrSkip (sessions do not drive rr)", err)
	}
	if _, lerr := exec.LookPath("rr"); lerr != nil {
		if !strings.Contains(err.Error(), "not installed") {
			t.Errorf("rr missing, verdict %q", err)
		}
		return
	}
	if herr := hardwareCounter(); herr != nil && !strings.Contains(err.Error(), "perf_event_open(PERF_TYPE_HARDWARE") {
		t.Errorf("no hardware counter (%v), verdict %q does not say so", herr, err)
	}
}

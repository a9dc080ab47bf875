package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bpbench/cli"
	"bpbench/internal/child"
	"bpbench/internal/testenv"
)

// TestMain serves the helper processes a run starts as copies of this
// test binary (the kernel check's tracee), as cli.Main does for the
// binary itself: a test package that calls cli.Main needs it.
func TestMain(m *testing.M) { testenv.Main(m) }

// TestRunOnOwnStrategy runs a short suite through cli.Main on the example
// strategy alone, as a user's own main would: its results must be named
// after it, and the report must cover it.
func TestRunOnOwnStrategy(t *testing.T) {
	out := filepath.Join(t.TempDir(), "res")
	if code := cli.Main([]string{"run", "--experiments", "scaling", "--strategies", "example-global", "--out", out}); code != 0 {
		t.Fatalf("bpbench run exited %d", code)
	}
	js, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), "strategy=example-global") {
		t.Error("results.json has no case of strategy example-global")
	}
	if strings.Contains(string(js), "strategy=mutex") {
		t.Error("results.json has cases of a strategy not asked for")
	}
	if strings.Contains(string(js), child.ErrNoHook.Error()) {
		t.Error("the run's kernel check could not start its tracee: no child.Main hook")
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "example-global") {
		t.Error("report.md does not mention example-global")
	}
}

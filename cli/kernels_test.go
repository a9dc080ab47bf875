package cli

import (
	"bpbench/runfile"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestKernelsUsageErrors checks that bad kernels command lines exit 2
// with a message naming the problem, and write nothing.
func TestKernelsUsageErrors(t *testing.T) {
	dir := t.TempDir()
	taken := filepath.Join(dir, "taken")
	os.Mkdir(taken, 0o755)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--kernels", "debian:4.19"}, "no Debian suite ships"},
		{[]string{"--kernels", filepath.Join(dir, "no-such-bzImage")}, "want debian:VERSION, host, or a kernel image file"},
		{[]string{"--kernels", ","}, "names no kernel"},
		{[]string{"--cpus", "0"}, "not a vCPU count"},
		{[]string{"--cpus", "two"}, "not a vCPU count"},
		{[]string{"--accel", "hvf"}, "want auto, kvm or tcg"},
		{[]string{"--arch", "riscv64"}, "unknown architecture"},
		{[]string{"--arch", "amd64,riscv64"}, "unknown architecture"},
		{[]string{"--arch", ","}, "names no architecture"},
		{[]string{"--arch", foreignArch(), "--accel", "kvm"}, "KVM runs only guests of the host's architecture"},
		{[]string{"--count", "0"}, "need a repetition count"},
		{[]string{"--experiments", "nope"}, "unknown experiment"},
		{[]string{"--out", taken}, "already exists"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		code, _, stderr := invoke(t, context.Background(), append([]string{"kernels"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("kernels %v: exit %d, stderr %q; want exit 2 with %q", c.args, code, stderr, c.want)
		}
	}
	if ents := dirEntries(t, dir); len(ents) != 1 {
		t.Errorf("usage errors wrote %v", ents)
	}
}

// TestKernelsHost runs the kernels command on the running kernel alone
// (no VM) with conform and a model experiment, and checks the output tree: the cell's
// normal results directory with its cell.json, and the cross-kernel
// kernels.json and report.md.
func TestKernelsHost(t *testing.T) {
	out := filepath.Join(t.TempDir(), "k")
	code, stdout, stderr := invoke(t, context.Background(), "kernels", "--kernels", "host", "--experiments", "exclusion", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	cell := filepath.Join(out, "host-cpus"+itoa(runtime.NumCPU()))
	for _, f := range []string{"results.json", "bench.txt", "report.md", "cell.json"} {
		if _, err := os.Stat(filepath.Join(cell, f)); err != nil {
			t.Error(err)
		}
	}
	r, err := runfile.Load(cell)
	if err != nil {
		t.Fatal(err)
	}
	if r.Conformance == nil || r.Conformance.Opens == 0 {
		t.Errorf("the host cell recorded no conformance check: %+v", r.Conformance)
	}
	var m struct {
		Cells []struct {
			Name, Accel, Error string
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "kernels.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != 1 || m.Cells[0].Accel != "none" || m.Cells[0].Error != "" {
		t.Errorf("kernels.json cells = %+v, want one host cell without error", m.Cells)
	}
	rep, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rep), "## Conformance") || !strings.Contains(string(rep), "host-cpus") {
		t.Errorf("report.md lacks the conformance section or the cell:\n%s", rep)
	}
	// The cell's results are a normal results directory: compare reads it.
	if code, _, stderr := invoke(t, context.Background(), "compare", cell, cell); code != 0 {
		t.Errorf("compare on a cell: exit %d: %s", code, stderr)
	}
}

// foreignArch is a guest architecture other than the host's.
func foreignArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

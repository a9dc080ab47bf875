package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestingLinked checks that bpbench, and a user's bpbench built on
// cli.Main, do not link package testing: test helpers live in
// internal/testenv, which only _test.go files import. A failure names the
// packages that import testing.
func TestNoTestingLinked(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list the binary's packages: %v", err)
	}
	for _, pkg := range []string{"bpbench/cmd/bpbench", "bpbench/examples/mystrategy/cmd/mybpbench"} {
		out, err := exec.Command(gotool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		var importers []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			for _, imp := range f[1:] {
				if imp == "testing" {
					importers = append(importers, f[0])
				}
			}
		}
		if len(importers) > 0 {
			t.Errorf("%s links package testing, imported by %s", pkg, strings.Join(importers, ", "))
		}
	}
}

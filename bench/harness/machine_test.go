package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCommitDirty checks the git fallback of commit (test binaries carry
// no VCS stamp): no checkout gives no commit; a clean checkout its HEAD;
// a changed tracked file makes it dirty.
func TestCommitDirty(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skipf("git not installed: %v", err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(dir))
	if rev, dirty := commit(); rev != "" || dirty {
		t.Errorf("outside a checkout: commit %q dirty %v, want none", rev, dirty)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("init", "-q")
	os.WriteFile("f", []byte("a"), 0o644)
	run("add", "f")
	run("commit", "-qm", "x")
	head := run("rev-parse", "HEAD")
	head = head[:len(head)-1]
	if rev, dirty := commit(); rev != head || dirty {
		t.Errorf("clean checkout: commit %q dirty %v, want %s clean", rev, dirty, head)
	}
	os.WriteFile("untracked", []byte("u"), 0o644)
	if _, dirty := commit(); dirty {
		t.Error("an untracked file made the tree dirty")
	}
	os.WriteFile("f", []byte("b"), 0o644)
	if rev, dirty := commit(); rev != head || !dirty {
		t.Errorf("changed file: commit %q dirty %v, want %s dirty", rev, dirty, head)
	}
}

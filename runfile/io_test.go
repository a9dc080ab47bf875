package runfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestResultsGzipped: a run whose results.json passes the threshold is
// stored as results.json.gz, and every reader takes it like the plain file.
func TestResultsGzipped(t *testing.T) {
	run, err := Load(filepath.Join("..", "internal", "fixtures", "testdata", "new"))
	if err != nil {
		t.Fatal(err)
	}
	old := gzipThreshold
	gzipThreshold = 0
	defer func() { gzipThreshold = old }()
	dir := t.TempDir()
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ResultsFile)); !os.IsNotExist(err) {
		t.Errorf("results.json written beside the gzipped one: %v", err)
	}
	if !HaveResults(dir) {
		t.Fatal("no results.json.gz written")
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(run.Results) || back.Machine.Host != run.Machine.Host {
		t.Errorf("read back %d results of host %q, wrote %d of %q", len(back.Results), back.Machine.Host, len(run.Results), run.Machine.Host)
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("an empty directory loaded")
	}
}

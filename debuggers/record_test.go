package debuggers

import (
	"bpbench/internal/testenv"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var record = flag.Bool("record", false, "re-record the strace fixtures in testdata/ from real GDB and Delve sessions")

// fixtures are the recorded sessions the parser and accounting tests read:
// real strace output of GDB (C target, 2 threads) and Delve (Go target, 1
// worker thread besides the runtime's), one warm-up and one measured
// repetition each. FILE.tasks lists the target's threads at attach.
var fixtures = []struct {
	file     string
	debugger string
	threads  int
}{
	{"gdb-threads2.strace", GDB, 2},
	{"dlv-threads1.strace", Delve, 1},
}

// TestRecordFixtures re-records testdata/ with -record.
func TestRecordFixtures(t *testing.T) {
	if !*record {
		t.Skip("fixtures are re-recorded only with -record")
	}
	testenv.LockDebugRegs(t)
	for _, f := range fixtures {
		s, err := Run(context.Background(), Config{Debugger: f.debugger, Threads: f.threads, Reps: 1, Trace: true,
			KeepTrace: filepath.Join("testdata", f.file)}, Hooks{})
		if err != nil {
			t.Fatalf("%s: %v", f.file, err)
		}
		var tids strings.Builder
		for _, tid := range s.Tasks {
			fmt.Fprintln(&tids, tid)
		}
		if err := os.WriteFile(filepath.Join("testdata", f.file+".tasks"), []byte(tids.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s, target threads %v", f.file, s.Version, s.Tasks)
	}
}

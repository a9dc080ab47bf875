package kernlock

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestWaitIsReported holds the lock from a child process and checks that
// Acquire names the holder and counts its wait.
func TestWaitIsReported(t *testing.T) {
	old := Path
	Path = t.TempDir() + "/lock"
	defer func() { Path = old }()
	cmd := exec.Command("flock", Path, "sh", "-c", "echo held; read x")
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Skip("flock(1) not available:", err)
	}
	defer cmd.Wait()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(out, buf); err != nil {
		t.Fatal(err)
	}
	// The holder lets go only once Acquire has said it waits, so the wait
	// is certain whatever the scheduler does.
	log := &releaseOnWrite{release: func() { stdin.Close() }}
	var w io.Writer = log
	Notify.Store(&w)
	defer Notify.Store(nil)
	before := Waited()
	l, err := Acquire()
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	if !strings.Contains(log.String(), "waiting for the debug-register lock held by PID") {
		t.Errorf("Acquire said %q", log.String())
	}
	if Waited() <= before {
		t.Errorf("Waited() did not grow")
	}
	_ = os.Remove(Path)
}

type releaseOnWrite struct {
	bytes.Buffer
	release func()
}

func (r *releaseOnWrite) Write(p []byte) (int, error) {
	n, err := r.Buffer.Write(p)
	r.release()
	return n, err
}

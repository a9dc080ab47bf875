package child

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain adds the modes the tests start and hooks them, as every test
// package that starts copies of its binary does.
func TestMain(m *testing.M) {
	if os.Getenv("CHILD_TEST_NO_HOOK") != "" {
		// A test binary that forgot the hook: TestNoHook runs in it.
		os.Exit(m.Run())
	}
	Add("child-test-echo", func() int {
		// The mode sees its own environment but no longer EnvVar, and runs
		// on the main thread.
		os.Stdout.WriteString("echo " + os.Getenv("CHILD_TEST_WORD") + " " + os.Getenv(EnvVar) + "|main=" + strconv.FormatBool(unix.Gettid() == os.Getpid()) + "\n")
		return 3
	})
	Main()
	os.Exit(m.Run())
}

// run starts a copy of the test binary with argv and env added to its
// environment, and returns its output and exit status.
func run(t *testing.T, path string, argv []string, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := &exec.Cmd{Path: path, Args: argv, Env: append(os.Environ(), env...)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// TestModeRuns starts a copy in a mode: it runs the mode, not the tests,
// with the caller's environment, and exits with the mode's status.
func TestModeRuns(t *testing.T) {
	path, argv, err := Self("child-test-echo")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, path, argv, Env("child-test-echo"), "CHILD_TEST_WORD=hello")
	if want := "echo hello |main=true\n"; code != 3 || out != want {
		t.Errorf("child: exit %d, stdout %q, stderr %q; want exit 3 and %q", code, out, errOut, want)
	}
}

// TestUnknownMode: a copy asked for a mode it lacks says so and exits 2.
func TestUnknownMode(t *testing.T) {
	path, argv, err := Self("child-test-echo")
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, path, argv, Env("child-test-nosuch"))
	if code != 2 || !strings.Contains(errOut, `"child-test-nosuch": no such child mode`) || !strings.Contains(errOut, "child-test-echo") {
		t.Errorf("exit %d, stderr %q; want 2 and a message naming the mode and the known ones", code, errOut)
	}
}

// TestNoModeRunsNoTests: without the mode's variable, a copy started with
// Self's arguments is the test binary itself and runs no test.
func TestNoModeRunsNoTests(t *testing.T) {
	path, argv, err := Self("child-test-echo")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, path, argv)
	if code != 0 || out != "PASS\n" || !strings.Contains(errOut, "no tests to run") {
		t.Errorf("exit %d, stdout %q, stderr %q; want a run of no test", code, out, errOut)
	}
}

// TestSelfRefuses: Self refuses a mode nobody added, and any mode in a
// process that never called Main.
func TestSelfRefuses(t *testing.T) {
	if _, _, err := Self("child-test-nosuch"); err == nil || !strings.Contains(err.Error(), "child-test-nosuch") {
		t.Errorf("Self(unknown) = %v, want an error naming it", err)
	}
	hooked.Store(false)
	defer hooked.Store(true)
	if _, _, err := Self("child-test-echo"); !errors.Is(err, ErrNoHook) {
		t.Errorf("Self before Main = %v, want ErrNoHook", err)
	}
}

// TestNoHook is TestMainOffMainThread's copy of the test binary, one whose
// TestMain does not call Main; it skips elsewhere.
func TestNoHook(t *testing.T) {
	if os.Getenv("CHILD_TEST_NO_HOOK") == "" {
		t.Skip("runs in TestMainOffMainThread's child")
	}
	Add("child-test-late", func() int { return 0 })
	// A call from a test's goroutine (as cli.Main in a test makes it) is
	// not a call from main or TestMain.
	Main()
	if _, _, err := Self("child-test-late"); !errors.Is(err, ErrNoHook) {
		t.Errorf("Self after Main from a test = %v, want ErrNoHook", err)
	}
}

// TestMainOffMainThread: in a binary whose TestMain never calls Main, a
// call from a test does not count as the hook.
func TestMainOffMainThread(t *testing.T) {
	path, _, err := Self("child-test-echo")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, path, []string{path, "-test.run=^TestNoHook$", "-test.v"}, "CHILD_TEST_NO_HOOK=1")
	if code != 0 || !strings.Contains(out, "--- PASS: TestNoHook") {
		t.Errorf("exit %d, stdout %q, stderr %q; want TestNoHook to pass", code, out, errOut)
	}
}

// TestAddRefuses: empty names, nil functions and taken names panic.
func TestAddRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		run  func() int
	}{{"", func() int { return 0 }}, {"child-test-nil", nil}, {"child-test-echo", func() int { return 0 }}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%q, %v) did not panic", c.name, c.run != nil)
				}
			}()
			Add(c.name, c.run)
		}()
	}
	if got := known(); got != "child-test-echo" {
		t.Errorf("modes %q, want only child-test-echo", got)
	}
}

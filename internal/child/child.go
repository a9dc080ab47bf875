// Package child runs a binary as a helper process of itself. Some
// measurements need a process of their own: a tracee to debug through
// ptrace, a workload whose threads all inherit breakpoints, a guest's
// init. The simplest program to run there is a copy of the binary already
// running, re-executed in a child mode: there is no second binary to
// build, find or keep in step.
//
// A package that needs a child mode adds it with Add from its init. A copy
// of the binary started with Env(mode) in its environment runs that mode,
// but only where the binary calls Main: nothing runs on import, so no
// package takes over a binary by being linked into it. Main is called
// first thing in main (cli.Main does it, so every binary built on cli.Main
// does) and in the TestMain of every test package whose tests start copies
// of their own test binary (internal/testenv.Main calls it):
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// The environment, not the arguments, selects the mode, so that a mode can
// also be chosen where the arguments are not ours to pick: a Linux kernel
// passes the unknown key=value words of its command line to init as its
// environment, so "BPBENCH_CHILD=guest-init" on a guest's command line runs
// the mode guest-init as PID 1.
package child

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// EnvVar is the environment variable whose value names the child mode a
// copy of the binary runs.
const EnvVar = "BPBENCH_CHILD"

// ErrNoHook is wrapped by Self's error when this process never called
// Main from main or TestMain: a copy of it would not run the mode.
var ErrNoHook = errors.New("the binary does not call child.Main at its start (main or TestMain)")

// init keeps the main goroutine on the main thread until Main decides:
// called first thing in main, Main then runs a mode on the process's main
// thread, where it would have run from an init function (the tracee keeps
// its worker threads off the thread-group leader that way), and in a
// process that is not a child it lets the goroutine go.
func init() { runtime.LockOSThread() }

var (
	mu     sync.Mutex
	modes  = map[string]func() int{}
	hooked atomic.Bool
)

// Add makes run the child mode name. run does the child's work and returns
// its exit status; a mode that must never exit (a guest's PID 1, which
// powers the machine off instead) does not return. Add is meant for init
// functions: an empty or taken name or a nil run is a programming error and
// panics.
func Add(name string, run func() int) {
	if name == "" || run == nil {
		panic(fmt.Sprintf("child.Add(%q, %p): want a name and a function", name, run))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := modes[name]; dup {
		panic("child.Add: mode " + name + " added twice")
	}
	modes[name] = run
}

// Main runs the child mode EnvVar names and exits with its status; in a
// process started without EnvVar it returns at once. Called first thing in
// main, it runs the mode on the process's main thread. It unsets EnvVar
// before the mode runs, so that the processes a mode starts are not copies
// of it. An unknown mode exits with status 2 and a message naming the
// known ones.
func Main() {
	// Only a call on the main thread, which init reserves for the main
	// goroutine, is a call from main or TestMain: a copy of the binary
	// makes it too. A call from elsewhere (a test that calls cli.Main)
	// does not count.
	if unix.Gettid() == os.Getpid() {
		hooked.Store(true)
	}
	name, ok := os.LookupEnv(EnvVar)
	if !ok {
		runtime.UnlockOSThread() // init's lock, if this is the main goroutine
		return
	}
	os.Unsetenv(EnvVar)
	mu.Lock()
	run := modes[name]
	mu.Unlock()
	if run == nil {
		fmt.Fprintf(os.Stderr, "%s=%q: no such child mode in this binary (have %s)\n", EnvVar, name, known())
		os.Exit(2)
	}
	os.Exit(run())
}

// known lists the modes added, sorted, for error messages.
func known() string {
	mu.Lock()
	defer mu.Unlock()
	return strings.Join(slices.Sorted(maps.Keys(modes)), ", ")
}

// Env returns the environment entry that makes a copy of the binary run
// mode, EnvVar=mode.
func Env(mode string) string { return EnvVar + "=" + mode }

// Self returns the path of this binary and the argument list to start a
// copy of it with in mode (with Env(mode) in its environment). It fails,
// wrapping ErrNoHook, when this process never called Main from main or
// TestMain (a call from a test's goroutine, through cli.Main say, does not
// count), since a copy would run the program instead of the mode (in a
// test binary, every test); and when no mode of that name was added.
//
// The argument list is the path and -test.run=^$: a program that calls
// Main never reads it, because the mode runs first, and a test binary that
// slips past the check above runs no test and exits, instead of running
// every test again in the child.
func Self(mode string) (path string, argv []string, err error) {
	if !hooked.Load() {
		return "", nil, fmt.Errorf("child: cannot start mode %s: %w", mode, ErrNoHook)
	}
	mu.Lock()
	_, ok := modes[mode]
	mu.Unlock()
	if !ok {
		return "", nil, fmt.Errorf("child: no mode %q in this binary (have %s)", mode, known())
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("child: finding this binary: %w", err)
	}
	return exe, []string{exe, "-test.run=^$"}, nil
}

package debuggers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// straceRun is strace attached to a debugger, writing its trace to a file.
type straceRun struct {
	c    *child
	path string
}

// startStrace attaches strace to process pid and returns once it traces
// it. With follow (-f) it traces every thread of pid and the threads and
// children they create; without, only the thread pid. markSyscall is the
// system call (besides ptrace) the debugger marks actions with.
//
// GDB must be traced without -f: it forks a child at start-up to probe
// ptrace features (linux_check_ptrace_features), and strace following it
// hangs both. Its ptrace calls all come from its main thread. Delve needs
// -f: it makes its ptrace calls from a thread of its own.
func startStrace(ctx context.Context, pid int, follow bool, markSyscall, path string) (*straceRun, error) {
	bin, err := exec.LookPath("strace")
	if err != nil {
		return nil, fmt.Errorf("%w: strace is not installed (apt-get install strace)", ErrSkip)
	}
	args := []string{"-o", path, "-ttt", "-qq", "-e", "signal=none", "-s", "256",
		"-e", "raw=ptrace", "-e", "trace=ptrace," + markSyscall}
	if follow {
		args = append(args, "-f")
	}
	args = append(args, "-p", strconv.Itoa(pid))
	c, err := startChild(exec.Command(bin, args...))
	if err != nil {
		return nil, err
	}
	s := &straceRun{c: c, path: path}
	// strace has attached when the threads name it as their tracer.
	deadline := time.Now().Add(20 * time.Second)
	for {
		done, err := s.attached(pid, follow)
		if err != nil {
			s.c.kill()
			return nil, err
		}
		if done {
			return s, nil
		}
		if c.exited() {
			return nil, fmt.Errorf("%w: strace exited before it attached: %v (stderr: %s)", ErrSession, c.err, c.stderrText())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.c.kill()
			return nil, fmt.Errorf("%w: strace did not attach to %d within 20 s (stderr: %s)", ErrSession, pid, c.stderrText())
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *straceRun) attached(pid int, follow bool) (bool, error) {
	tids := []int{pid}
	if follow {
		var err error
		if tids, err = tasks(pid); err != nil {
			return false, fmt.Errorf("%w: the debugger is gone: %w", ErrSession, err)
		}
	}
	for _, tid := range tids {
		tr, err := tracerOf(pid, tid)
		if err != nil {
			if follow && !Alive(pid) {
				return false, fmt.Errorf("%w: the debugger is gone: %w", ErrSession, err)
			}
			if !follow {
				return false, fmt.Errorf("%w: the debugger is gone: %w", ErrSession, err)
			}
			continue // a thread that just exited
		}
		if tr != s.c.Pid() {
			return false, nil
		}
	}
	return true, nil
}

// finish waits for strace to end once its tracees have gone (the caller
// killed the debugger), killing it after a grace period, and returns the
// trace file's path. strace writes its output file as it goes and flushes
// it when its last tracee exits.
func (s *straceRun) finish() (string, error) {
	select {
	case <-s.c.waited:
	case <-time.After(10 * time.Second):
		s.c.kill()
		return "", fmt.Errorf("%w: strace did not end within 10 s of the debugger's exit", ErrSession)
	}
	if _, err := os.Stat(s.path); err != nil {
		return "", fmt.Errorf("%w: no trace: %w (strace stderr: %s)", ErrSession, err, s.c.stderrText())
	}
	return s.path, nil
}

package debuggers

import (
	"bpbench/internal/support"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrSkip is wrapped by errors saying a debugger or tool cannot be had on
// this machine; the message says why.
var ErrSkip = support.New("not available here")

// ErrSession is wrapped by errors of a debugger session that went wrong:
// the debugger refused a command, stopped for another reason, or did not
// answer in time.
var ErrSession = errors.New("debugger session failed")

// child is a process this package started: in a process group of its own,
// killed with SIGKILL if this process dies (Pdeathsig), and killed and
// reaped by kill on every exit path.
type child struct {
	cmd    *exec.Cmd
	stderr *limitedBuffer
	waited chan struct{}
	err    error // Wait's error, once waited is closed
	once   sync.Once
}

// startChild starts cmd as a child (see child). Its standard error is kept
// (the last 64 KiB) for error messages unless cmd.Stderr is set.
func startChild(cmd *exec.Cmd) (*child, error) {
	c := &child{cmd: cmd, waited: make(chan struct{})}
	if cmd.Stderr == nil {
		c.stderr = &limitedBuffer{max: 64 << 10}
		cmd.Stderr = c.stderr
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// Pdeathsig fires when the thread that forked exits, not the process:
	// lock it for the fork and unlock it afterwards, so it goes back to
	// the runtime's pool and lives as long as the process.
	runtime.LockOSThread()
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("debuggers: start %s: %w", filepath.Base(cmd.Path), err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.waited)
	}()
	return c, nil
}

// startReading starts cmd as startChild does, with its standard output
// read line by line; what names the program in an error.
func startReading(cmd *exec.Cmd, what string) (*child, *lineReader, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("debuggers: %s: %w", what, err)
	}
	c, err := startChild(cmd)
	if err != nil {
		return nil, nil, err
	}
	return c, newLineReader(out), nil
}

// Pid returns the child's process id.
func (c *child) Pid() int { return c.cmd.Process.Pid }

// signal sends SIGKILL to the child's process group without waiting: a
// traced child is reaped only after its tracer has seen it die, so a
// target is signalled first, its debugger killed, and then the target
// reaped.
func (c *child) signal() {
	select {
	case <-c.waited:
	default:
		// The group holds the child and anything it forked that kept
		// the group (GDB's ptrace probe, a shell).
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		c.cmd.Process.Kill()
	}
}

// kill sends SIGKILL to the child's process group and reaps the child. It
// is safe to call more than once and after the child exited.
func (c *child) kill() {
	c.once.Do(func() {
		c.signal()
		<-c.waited
	})
}

// exited reports whether the child has been reaped.
func (c *child) exited() bool {
	select {
	case <-c.waited:
		return true
	default:
		return false
	}
}

// stderrText returns the end of what the child wrote to standard error.
func (c *child) stderrText() string {
	if c.stderr == nil {
		return ""
	}
	return strings.TrimSpace(c.stderr.String())
}

// limitedBuffer keeps the last max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// lineReader delivers the lines a child prints on a pipe, so that reading
// them can be bounded in time.
type lineReader struct {
	lines chan string
	done  chan struct{}
	stop  chan struct{}
	once  sync.Once
	err   error
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 256), done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		defer close(lr.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for sc.Scan() {
			select {
			case lr.lines <- sc.Text():
			case <-lr.stop:
				// Nobody reads any more: keep draining the pipe so the
				// writer never blocks on it, until it closes.
				for sc.Scan() {
				}
				return
			}
		}
		lr.err = sc.Err()
	}()
	return lr
}

// close says nobody will read any more lines.
func (lr *lineReader) close() { lr.once.Do(func() { close(lr.stop) }) }

// next returns the next line, or an error when ctx ends or the pipe
// closes first.
func (lr *lineReader) next(ctx context.Context) (string, error) {
	select {
	case l := <-lr.lines:
		return l, nil
	default:
	}
	select {
	case l := <-lr.lines:
		return l, nil
	case <-lr.done:
		// Lines sent before the end are still buffered.
		select {
		case l := <-lr.lines:
			return l, nil
		default:
		}
		if lr.err != nil {
			return "", fmt.Errorf("%w: reading output: %w", ErrSession, lr.err)
		}
		return "", fmt.Errorf("%w: the process closed its output", ErrSession)
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %w", ErrSession, ctx.Err())
	}
}

// taskState returns the state letter of thread tid of process pid
// (/proc/PID/task/TID/stat: "R", "S", "t" for a tracing stop...).
func taskState(pid, tid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return "", fmt.Errorf("debuggers: unreadable /proc/%d/task/%d/stat", pid, tid)
	}
	return string(b[i+2]), nil
}

// waitRunning waits until thread tid of pid has left its tracing stop: the
// debugger has resumed it.
func waitRunning(ctx context.Context, pid, tid int) error {
	for {
		st, err := taskState(pid, tid)
		if err != nil {
			return fmt.Errorf("%w: target thread %d: %w", ErrSession, tid, err)
		}
		if st != "t" && st != "T" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for the debugger to resume the target: %w", ErrSession, ctx.Err())
		case <-time.After(100 * time.Microsecond):
		}
	}
}

// tasks returns the thread ids of process pid.
func tasks(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// tracerOf returns the TracerPid of thread tid of process pid.
func tracerOf(pid, tid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("debuggers: no TracerPid in /proc/%d/task/%d/status", pid, tid)
}

// Alive reports whether a process with this id exists (a zombie
// included): what a test checks after a session to see nothing leaked.
func Alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

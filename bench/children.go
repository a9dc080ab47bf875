package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"bpbench/hwregs"
	"bpbench/internal/child"
)

// The processes the experiments start: perf (run to its end, its output
// parsed) and the kernel experiment's workload, a copy of this binary in a
// child mode (kernel_child.go is its side). Every one is started with a
// parent-death signal and reaped on every path.

// startChild starts cmd with a parent-death signal (SIGKILL), so that the
// child dies with this process even when it is killed. The signal fires
// when the OS thread that started the child exits, not the process: the
// goroutine is locked to its thread around Start and unlocked (the thread
// lives on in the runtime's pool) afterwards; a caller that ends its
// locked thread after starting a child would kill the child.
func startChild(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// outputOf runs cmd, started by startChild, to its end and returns its
// standard output; every path reaps it (exec.CommandContext kills it on
// cancellation, Wait reaps it). A failure carries its standard error.
func outputOf(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := startChild(cmd); err != nil {
		return "", err
	}
	if err := cmd.Wait(); err != nil {
		return stdout.String(), fmt.Errorf("%w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

var perfUsecsRE = regexp.MustCompile(`(?m)^\s*([0-9.]+)\s+usecs/op\s*$`)

// parsePerfUsecs extracts the usecs/op line of perf bench breakpoint output.
func parsePerfUsecs(out string) (float64, error) {
	if strings.Contains(out, "Skipping") {
		return 0, Skipf("perf bench: %s", strings.TrimSpace(out))
	}
	m := perfUsecsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("bench: no usecs/op in perf bench output %q", out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// perfRun is one run of perf bench: its usecs/op and the context
// switches of its process over its whole life (every thread's, exited
// ones included: its rusage at exit).
type perfRun struct {
	Usecs    float64
	Switches switches
}

// runPerfBench runs `perf bench -r repeat breakpoint <args>`; ok is false
// when perf is not installed.
func runPerfBench(ctx context.Context, repeat int, args ...string) (r perfRun, ok bool, err error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return r, false, nil
	}
	full := append([]string{"bench", "-r", strconv.Itoa(repeat), "breakpoint"}, args...)
	cmd := exec.CommandContext(ctx, perf, full...)
	out, err := outputOf(cmd)
	if err != nil {
		return r, true, fmt.Errorf("bench: perf %s: %w", strings.Join(full, " "), err)
	}
	r.Switches = rusageSwitches(cmd.ProcessState)
	r.Usecs, err = parsePerfUsecs(out)
	return r, true, err
}

func perfVersion() string {
	out, err := outputOf(exec.Command("perf", "--version"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// kernelChild is a re-executed copy of this binary running a workload with
// inherited breakpoints that this process holds.
type kernelChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
	events []*hwregs.PerfEvent
	done   bool
}

// startKernelChild starts the child stopped at exec, opens nbp inheritable
// read/write breakpoints on its only thread (one byte each of
// kernelWatched, as perf bench's breakpoint_setup), and lets it run.
func startKernelChild(ctx context.Context, mode string, args []int, nbp int) (c *kernelChild, err error) {
	if err := perfSupported(); err != nil {
		return nil, err
	}
	exe, argv, err := child.Self("kernel-" + mode)
	if err != nil {
		return nil, fmt.Errorf("bench: kernel child: %w", err)
	}
	sargs := make([]string, len(args))
	for i, a := range args {
		sargs[i] = strconv.Itoa(a)
	}
	c = &kernelChild{cmd: exec.CommandContext(ctx, exe, argv[1:]...)}
	c.cmd.Env = append(os.Environ(), child.Env("kernel-"+mode), kernelArgsEnv+"="+strings.Join(sargs, " "))
	c.cmd.Stderr = &c.stderr
	// The tracer is the thread that forks, and only it may detach.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true, Pdeathsig: syscall.SIGKILL}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("bench: kernel child: %w", err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: kernel child: %w", err)
	}
	c.out = bufio.NewReader(stdout)
	// Pdeathsig fires when the thread that started the child exits, not
	// the process: this thread stays locked for the whole function (ptrace
	// needs that too) and is unlocked, not ended, afterwards, so the
	// signal comes only when this process dies.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start kernel child: %w", err)
	}
	defer func() {
		if err != nil {
			c.kill()
		}
	}()
	pid := c.cmd.Process.Pid
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return c, fmt.Errorf("bench: wait for kernel child at exec: %w", err)
	}
	if !ws.Stopped() {
		return c, fmt.Errorf("bench: kernel child not stopped at exec (status %#x)", uint32(ws))
	}
	for i := 0; i < nbp; i++ {
		a := hwregs.Attr{Addr: kernelWatchAddr() + uint64(i), Len: 1, Type: hwregs.ReadWrite}
		e, err := hwregs.OpenPerf(a, pid, -1, hwregs.PerfInherit())
		if err != nil {
			return c, fmt.Errorf("bench: breakpoint %d on kernel child: %w", i, err)
		}
		c.events = append(c.events, e)
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return c, fmt.Errorf("bench: detach kernel child: %w", err)
	}
	return c, nil
}

func (c *kernelChild) readLine() (string, error) {
	line, err := c.out.ReadString('\n')
	if err != nil {
		c.kill()
		return "", fmt.Errorf("bench: kernel child exited early: %w (stderr: %s)", err, strings.TrimSpace(c.stderr.String()))
	}
	return strings.TrimSpace(line), nil
}

// wait tells the child to finish (EOF on its stdin) and reaps it; the
// breakpoints stay open so their counts can be read.
func (c *kernelChild) wait() error {
	c.stdin.Close()
	io.Copy(io.Discard, c.out)
	err := c.cmd.Wait()
	c.done = true
	if err != nil {
		return fmt.Errorf("bench: kernel child: %w (stderr: %s)", err, strings.TrimSpace(c.stderr.String()))
	}
	return nil
}

// kill ends and reaps the child if it is still there and closes the
// breakpoints; it is safe to call more than once.
func (c *kernelChild) kill() {
	if !c.done {
		c.done = true
		c.cmd.Process.Kill()
		c.stdin.Close()
		c.cmd.Wait()
	}
	for _, e := range c.events {
		e.Close()
	}
}

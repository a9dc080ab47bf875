package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

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

// runPerfBench runs `perf bench -r repeat breakpoint <args>` and returns its
// usecs/op; ok is false when perf is not installed.
func runPerfBench(ctx context.Context, repeat int, args ...string) (usecs float64, ok bool, err error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return 0, false, nil
	}
	full := append([]string{"bench", "-r", strconv.Itoa(repeat), "breakpoint"}, args...)
	out, err := outputOf(exec.CommandContext(ctx, perf, full...))
	if err != nil {
		return 0, true, fmt.Errorf("bench: perf %s: %w", strings.Join(full, " "), err)
	}
	u, err := parsePerfUsecs(out)
	return u, true, err
}

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

func perfVersion() string {
	out, err := outputOf(exec.Command("perf", "--version"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

package debuggers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RRUsable says whether rr can record on this machine, and why not: rr
// keeps watchpoints too (it skips unchanged register sets and applies
// them lazily at resume, the fix for rr#3463), but it records and replays
// by counting retired conditional branches, so it needs the CPU's
// hardware performance counters. Where perf_event_open cannot open a
// hardware counter (a VM whose hypervisor does not expose the PMU), rr
// cannot run at all. The error wraps ErrSkip with the reason: rr missing,
// no hardware counter (with the errno), or rr's own refusal. When rr can
// record, it still wraps ErrSkip: sessions do not drive rr yet.
func RRUsable(ctx context.Context) error {
	// The counters decide whether rr could run here at all, installed or
	// not, so they are checked first.
	if err := hardwareCounter(); err != nil {
		return fmt.Errorf("%w: rr cannot record here: it counts retired conditional branches with the CPU's performance counters, and perf_event_open(PERF_TYPE_HARDWARE, instructions) fails with %v (a VM whose hypervisor does not expose the PMU; `perf stat -e instructions true` says <not supported>)", ErrSkip, err)
	}
	bin, err := exec.LookPath("rr")
	if err != nil {
		return fmt.Errorf("%w: rr is not installed (Debian: apt-get install rr)", ErrSkip)
	}
	ver := toolVersion(ctx, bin)
	dir, err := os.MkdirTemp("", "bpbench-rr-")
	if err != nil {
		return fmt.Errorf("debuggers: %w", err)
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, bin, "record", "-n", "true")
	cmd.Env = append(os.Environ(), "_RR_TRACE_DIR="+dir)
	if _, err := output(ctx, cmd); err != nil {
		line, _, _ := strings.Cut(err.Error(), "\n")
		return fmt.Errorf("%w: %s cannot record here: `rr record true` failed: %s", ErrSkip, ver, line)
	}
	return fmt.Errorf("%w: %s records here, but the debuggers experiment does not drive rr yet", ErrSkip, ver)
}

// hardwareCounter opens and closes a hardware instruction counter on this
// thread.
func hardwareCounter() error {
	a := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_HARDWARE,
		Config: unix.PERF_COUNT_HW_INSTRUCTIONS,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Bits:   unix.PerfBitDisabled | unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv,
	}
	fd, err := unix.PerfEventOpen(&a, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if errno, ok := err.(unix.Errno); ok {
		return fmt.Errorf("%s (%w)", unix.ErrnoName(errno), errno)
	}
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

package kernels

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"bpbench/kernels/frame"
	"bpbench/runfile"
)

// Frame names on the results line.
const (
	frameResults = "results.json.gz"
	frameGuest   = "guest.json"
	frameError   = "error"
	frameProbe   = "probe"
)

// guestEnvFile holds the guest's environment (PATH, LD_LIBRARY_PATH for
// perf's libraries), one NAME=value a line, written into the initramfs.
const guestEnvFile = "/etc/bpbench/env"

// GuestInfo is what the guest says about itself besides the results
// (runfile.GuestInfo).
type GuestInfo = runfile.GuestInfo

// GuestMain is the guest's init. It takes over only in a bpbench guest:
// process 1 with a job in its environment (BPBENCH_JOB, from the kernel
// command line); anywhere else it returns handled = false at once. It
// mounts what the experiments need, raises the open-file limit, runs the
// job with run, sends the results on the results line and powers the
// machine off; it never returns in a guest unless power-off fails.
func GuestMain(run Runner) (handled bool, code int) {
	if os.Getpid() != 1 {
		return false, 0
	}
	enc := os.Getenv(jobEnv)
	if enc == "" {
		return false, 0
	}
	code = guest(enc, run)
	unix.Sync()
	// Power-off ends the machine and QEMU with it (-no-reboot).
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintf(os.Stderr, "bpbench-guest: power off: %v\n", err)
	}
	return true, code
}

func guestf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bpbench-guest: "+format+"\n", args...)
}

func guest(enc string, run Runner) int {
	info := GuestInfo{}
	if err := mountAll(); err != nil {
		guestf("%v", err)
		return 1
	}
	info.UptimeStart = uptime()
	loadEnv()
	info.NoFile = raiseNoFile()
	// The kernel sizes threads-max from memory (about 16k threads in
	// 2 GB); kernel-tasks --full holds 16384 breakpoints on as many
	// threads. This is the guest's own kernel: raise it.
	os.WriteFile("/proc/sys/kernel/threads-max", []byte("131072"), 0)
	info.Kernel = kernelRelease()
	info.CPUs = onlineCPUs()
	job, err := decodeJob(enc)
	if err != nil {
		guestf("%v", err)
		return 1
	}
	if job.ResultsDev == "" {
		quietConsole()
	}
	out, err := openResults(job.ResultsDev)
	if err != nil {
		guestf("%v", err)
		return 1
	}
	defer out.Close()
	guestf("up at %.2fs: kernel %s, %d CPUs, job %s", info.UptimeStart, info.Kernel, info.CPUs, job.Mode)
	send := func(name string, data []byte) {
		if err := frame.Write(out, name, data); err != nil {
			guestf("sending %s: %v", name, err)
		}
	}
	switch job.Mode {
	case ModeProbe:
		info.UptimeEnd = uptime()
		b, _ := json.Marshal(info)
		send(frameProbe, b)
		drain(out)
		return 0
	case ModeHang:
		guestf("hanging on purpose (job mode %q)", job.Mode)
		// Not select{}: with no other goroutine the runtime would call
		// that a deadlock and exit, and the kernel would panic.
		for {
			time.Sleep(time.Hour)
		}
	case ModeRun:
	default:
		send(frameError, []byte(fmt.Sprintf("unknown job mode %q", job.Mode)))
		drain(out)
		return 2
	}
	// The console is a terminal, but no one watches it redraw a progress
	// bar: hide that, so the runner logs one line per case.
	r, err := runRecovered(run, job)
	info.UptimeEnd = uptime()
	b, _ := json.Marshal(info)
	send(frameGuest, b)
	if err != nil {
		send(frameError, []byte(err.Error()))
		drain(out)
		return 1
	}
	js, err := json.Marshal(r)
	if err != nil {
		send(frameError, []byte("encoding results: "+err.Error()))
		drain(out)
		return 1
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(js)
	zw.Close()
	send(frameResults, z.Bytes())
	drain(out)
	guestf("results sent (%d bytes of JSON) at %.2fs", len(js), info.UptimeEnd)
	return 0
}

// mountAll mounts the pseudo file systems: /proc (the experiments read
// it and re-execute /proc/self/exe), /sys, /dev (devtmpfs: the serial
// lines' nodes) and a tmpfs on /tmp (the debug-register lock file).
func mountAll() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s on %s: %w", m.fs, m.dst, err)
		}
	}
	return nil
}

// quietConsole keeps the kernel's own messages off a console that
// carries the results (a board with one UART, arm64's virt): a console
// log level of 1 lets only KERN_EMERG through, a panic's included. The
// frames survive a message between their lines anyway (package frame);
// this keeps one from landing inside a line, which would cost the cell.
func quietConsole() {
	if err := os.WriteFile("/proc/sys/kernel/printk", []byte("1"), 0); err != nil {
		guestf("quieting the console: %v", err)
	}
}

// loadEnv sets the variables of guestEnvFile.
func loadEnv() {
	b, err := os.ReadFile(guestEnvFile)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			os.Setenv(k, v)
		}
	}
}

// raiseNoFile lifts RLIMIT_NOFILE to the kernel's ceiling (fs.nr_open):
// the kernel starts init at 1024/4096, and an experiment that holds
// thousands of breakpoints needs an fd for each (EMFILE at about 4092).
// Children inherit the limit.
func raiseNoFile() uint64 {
	n := uint64(1 << 20)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			n = v
		}
	}
	lim := unix.Rlimit{Cur: n, Max: n}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		guestf("raising RLIMIT_NOFILE to %d: %v", n, err)
		unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}

// openResults opens the results line in raw mode (no CR inserted, no
// echo), or the console when dev is "".
func openResults(dev string) (*os.File, error) {
	path := "/dev/console"
	if dev != "" {
		path = "/dev/" + dev
	}
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the results line: %w", err)
	}
	if dev != "" {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			t.Oflag &^= unix.OPOST
			t.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
			t.Cflag = t.Cflag&^unix.CBAUD | unix.B115200
			unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
		}
	}
	return f, nil
}

// drain waits until the line has sent everything written to it
// (tcdrain): power-off would otherwise cut the tail of the results.
func drain(f *os.File) {
	unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1)
	f.Sync()
}

func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 0
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, ok := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		if !ok {
			n++
			continue
		}
		z, _ := strconv.Atoi(hi)
		n += z - a + 1
	}
	return n
}

// plainWriter hides that its writer is a terminal.
type plainWriter struct{ w *os.File }

func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

// runRecovered runs the job and turns a panic into an error: init must
// send it home rather than exit, which the kernel answers with a panic of
// its own that would hide the cause.
func runRecovered(run Runner, job Job) (r *runfile.Run, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bpbench panicked in the guest: %v\n%s", p, debug.Stack())
		}
	}()
	return run(context.Background(), job, plainWriter{os.Stderr})
}

// Package qemu boots a kernel with an initramfs under QEMU and hands back
// what its two serial lines carried: the console, and a second line for
// results. Nothing is written to disk: the initramfs is passed as an
// in-memory file (memfd) and both lines come back through pipes, so a
// killed bpbench leaves no temporary files behind, and QEMU, started with
// a parent-death signal, dies with it.
package qemu

import (
	"bpbench/internal/support"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Errors a boot returns; each is wrapped with the last console lines.
var (
	// ErrTimeout: the guest was still running when its time ran out.
	ErrTimeout = errors.New("guest did not finish in time")
	// ErrQEMU: QEMU refused to start or exited with an error (a file
	// that is not a kernel, a bad option).
	ErrQEMU = errors.New("QEMU failed")
	// ErrNoQEMU: the QEMU binary for the architecture is not installed.
	ErrNoQEMU = support.New("QEMU is not installed")
)

// Arch is what differs between guest architectures.
type Arch struct {
	// Name is the Go and Debian name ("amd64", "arm64").
	Name string
	// Binary is the QEMU system emulator, Machine its board and CPU the
	// CPU model (max: every feature TCG emulates, debug registers
	// included).
	Binary, Machine, CPU string
	// Console and Results are the guest's names of the first and second
	// serial lines.
	Console, Results string
	// ELF is the machine guest binaries must be built for.
	ELF elf.Machine
	// Package names the Debian QEMU package, for error messages.
	Package string
}

// Arches are the architectures bpbench can boot.
var Arches = map[string]Arch{
	"amd64": {Name: "amd64", Binary: "qemu-system-x86_64", Machine: "pc", CPU: "max",
		Console: "ttyS0", Results: "ttyS1", ELF: elf.EM_X86_64, Package: "qemu-system-x86"},
	// The virt board has one PL011 in QEMU 7.2: results travel on the
	// console (Results ""), framed so that the kernel's own lines around
	// them do no harm. GICv2 stops at 8 CPUs: gic-version=max lifts it.
	"arm64": {Name: "arm64", Binary: "qemu-system-aarch64", Machine: "virt,gic-version=max", CPU: "max",
		Console: "ttyAMA0", Results: "", ELF: elf.EM_AARCH64, Package: "qemu-system-arm"},
}

// ArchOf returns the named architecture.
func ArchOf(name string) (Arch, error) {
	a, ok := Arches[name]
	if !ok {
		return Arch{}, fmt.Errorf("qemu: unknown architecture %q (have amd64, arm64)", name)
	}
	return a, nil
}

// Config is one boot.
type Config struct {
	Arch Arch
	// Kernel is the image's path; Initrd the initramfs, read from its
	// start (an in-memory file is fine: QEMU opens it by /proc/self/fd).
	Kernel string
	Initrd *os.File
	CPUs   int
	// MemoryMB defaults to 2048.
	MemoryMB int
	// Accel is "tcg" or "kvm".
	Accel string
	// Append is added to the kernel command line after the console and
	// panic settings.
	Append []string
	// Timeout bounds the whole boot, QEMU's start to its exit.
	Timeout time.Duration
	// Console, when set, receives the console as it arrives.
	Console io.Writer
}

// Boot is what a finished guest left.
type Boot struct {
	// Console is everything the guest wrote to its console; Results
	// everything on the second line.
	Console, Results []byte
	// Wall is QEMU's start to its exit.
	Wall time.Duration
	// Args is the QEMU command line that ran.
	Args []string
}

// Binary returns the path of the architecture's QEMU, or ErrNoQEMU.
func Binary(a Arch) (string, error) {
	p, err := exec.LookPath(a.Binary)
	if err != nil {
		return "", fmt.Errorf("%w: %s (Debian package %s): %v", ErrNoQEMU, a.Binary, a.Package, err)
	}
	return p, nil
}

// args builds QEMU's command line. The initrd is fd 3 and the two serial
// lines fds 4 (console) and 5 (results) in QEMU.
func (c *Config) args() []string {
	accel := "tcg,thread=multi"
	if c.Accel == "kvm" {
		accel = "kvm"
	}
	mem := c.MemoryMB
	if mem == 0 {
		mem = 2048
	}
	// cryptomgr.notests skips the crypto self-tests, which nothing here
	// relies on and which cost seconds under emulation (2.3 s of an
	// arm64 6.1 boot under TCG, measured).
	cmdline := append([]string{"console=" + c.Arch.Console, "quiet", "panic=-1", "cryptomgr.notests"}, c.Append...)
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-machine", c.Arch.Machine, "-accel", accel, "-cpu", c.Arch.CPU,
		"-smp", strconv.Itoa(c.CPUs), "-m", strconv.Itoa(mem),
		"-kernel", c.Kernel, "-initrd", "/proc/self/fd/3",
		"-append", strings.Join(cmdline, " "),
		"-serial", "file:/proc/self/fd/4",
	}
	if c.Arch.Results != "" {
		a = append(a, "-serial", "file:/proc/self/fd/5")
	}
	return a
}

// Run boots c and waits for the guest to power off (QEMU exits with
// -no-reboot on a power-off, a reboot and a panic with panic=-1 alike;
// the caller tells them apart by what came back). QEMU is killed and
// reaped on every path: timeout, cancellation, or this process's death
// (its parent-death signal).
func Run(ctx context.Context, c Config) (*Boot, error) {
	bin, err := Binary(c.Arch)
	if err != nil {
		return nil, err
	}
	if c.CPUs < 1 {
		return nil, fmt.Errorf("qemu: %d CPUs", c.CPUs)
	}
	if c.Initrd == nil {
		return nil, errors.New("qemu: no initramfs")
	}
	if _, err := os.Stat(c.Kernel); err != nil {
		return nil, fmt.Errorf("qemu: kernel image: %w", err)
	}
	conR, conW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	defer conR.Close()
	resR, resW, err := os.Pipe()
	if err != nil {
		conW.Close()
		return nil, fmt.Errorf("qemu: %w", err)
	}
	defer resR.Close()

	rctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	b := &Boot{Args: c.args()}
	cmd := exec.CommandContext(rctx, bin, b.Args...)
	cmd.ExtraFiles = []*os.File{c.Initrd, conW, resW}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second

	var console lockedBuffer
	var results bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		var w io.Writer = &console
		if c.Console != nil {
			w = io.MultiWriter(&console, c.Console)
		}
		io.Copy(w, conR)
	}()
	go func() { defer wg.Done(); io.Copy(&results, resR) }()

	start := time.Now()
	err = startLocked(cmd)
	// The child has its own copies; ours must go so the readers see EOF
	// when QEMU exits.
	conW.Close()
	resW.Close()
	if err != nil {
		conR.Close()
		resR.Close()
		wg.Wait()
		return nil, fmt.Errorf("%w: starting %s: %v", ErrQEMU, bin, err)
	}
	werr := cmd.Wait()
	b.Wall = time.Since(start)
	// QEMU is gone: its pipe ends are closed, so the copies end.
	wg.Wait()
	b.Console = console.Bytes()
	b.Results = results.Bytes()
	switch {
	case ctx.Err() != nil:
		return b, ctx.Err()
	case rctx.Err() != nil:
		return b, fmt.Errorf("%w: still running after %v, killed; console ends:\n%s", ErrTimeout, c.Timeout, Tail(b.Console, 15))
	case werr != nil:
		return b, fmt.Errorf("%w: %v: %s; console ends:\n%s", ErrQEMU, werr, strings.TrimSpace(stderr.String()), Tail(b.Console, 15))
	}
	return b, nil
}

// Tail returns the last n non-empty lines of a console log, with carriage
// returns removed, or "(nothing)" for an empty log.
func Tail(log []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(log), "\r", ""), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "  (nothing)"
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// MemFile returns an in-memory file named name holding what write
// writes, positioned at its start: an initramfs that never touches the
// disk and vanishes with the last process holding it.
func MemFile(name string, write func(io.Writer) error) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("qemu: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if err := write(f); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("qemu: %w", err)
	}
	return f, nil
}

// startLocked starts cmd from a locked OS thread: the parent-death
// signal fires when the starting thread exits, and a locked thread that
// is unlocked afterwards lives on in the runtime's pool, so the signal
// comes only with this process's death.
func startLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// lockedBuffer is a bytes.Buffer safe for one writer and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// KVMUsable says why KVM cannot be tried here, or "" when /dev/kvm can
// be opened.
func KVMUsable() string {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "no usable /dev/kvm: " + err.Error()
	}
	f.Close()
	return ""
}

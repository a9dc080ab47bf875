package qemu

import (
	"bpbench/internal/testenv"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArgs checks the command line carries what the guest relies on:
// the accelerator, the CPU count, the initramfs and both serial lines
// through the inherited fds, and the console and panic settings before
// the caller's parameters; and that arm64, with one UART, gets one line.
func TestArgs(t *testing.T) {
	c := Config{Arch: Arches["amd64"], Kernel: "/k", CPUs: 8, Accel: "tcg", Append: []string{"BPBENCH_JOB=x"}}
	a := strings.Join(c.args(), " ")
	for _, want := range []string{
		"-accel tcg,thread=multi", "-cpu max", "-smp 8", "-m 2048", "-machine pc", "-no-reboot", "-nodefaults",
		"-kernel /k", "-initrd /proc/self/fd/3",
		"-append console=ttyS0 quiet panic=-1 cryptomgr.notests BPBENCH_JOB=x",
		"-serial file:/proc/self/fd/4 -serial file:/proc/self/fd/5",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("amd64 args lack %q: %s", want, a)
		}
	}
	c.Accel = "kvm"
	if a := strings.Join(c.args(), " "); !strings.Contains(a, "-accel kvm ") {
		t.Errorf("kvm args: %s", a)
	}
	arm := Config{Arch: Arches["arm64"], Kernel: "/k", CPUs: 16, Accel: "tcg"}
	a = strings.Join(arm.args(), " ")
	if !strings.Contains(a, "console=ttyAMA0") || !strings.Contains(a, "-machine virt,gic-version=max") || strings.Contains(a, "/proc/self/fd/5") {
		t.Errorf("arm64 args: %s", a)
	}
	if _, err := ArchOf("riscv64"); err == nil {
		t.Error("ArchOf accepted riscv64")
	}
}

func TestTail(t *testing.T) {
	log := []byte("one\r\n\r\ntwo\r\nthree\n\n")
	if got := Tail(log, 2); got != "  two\n  three" {
		t.Errorf("Tail = %q", got)
	}
	if got := Tail(nil, 3); got != "  (nothing)" {
		t.Errorf("Tail(nil) = %q", got)
	}
}

// TestRunRefusesBadConfig checks Run's own checks, before any QEMU.
func TestRunRefusesBadConfig(t *testing.T) {
	_, err := Binary(Arches["amd64"])
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(t.TempDir(), "k")
	os.WriteFile(k, []byte("x"), 0o644)
	ctx := context.Background()
	if _, err := Run(ctx, Config{Arch: Arches["amd64"], Kernel: k, CPUs: 0, Timeout: time.Second}); err == nil {
		t.Error("Run accepted 0 CPUs")
	}
	if _, err := Run(ctx, Config{Arch: Arches["amd64"], Kernel: k, CPUs: 1, Timeout: time.Second}); err == nil {
		t.Error("Run accepted no initramfs")
	}
	f, _ := MemFile("t", func(w io.Writer) error { return nil })
	defer f.Close()
	if _, err := Run(ctx, Config{Arch: Arches["amd64"], Kernel: k + ".missing", Initrd: f, CPUs: 1, Timeout: time.Second}); err == nil || errors.Is(err, ErrQEMU) {
		t.Errorf("a missing kernel: err = %v, want a refusal before QEMU", err)
	}
}

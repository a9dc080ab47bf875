package kernels

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bpbench/kernels/debian"
	"bpbench/kernels/qemu"
	"bpbench/runfile"
)

// The tests here boot real kernels under QEMU's TCG (nested KVM stalls
// on the project's machines). They need qemu-system-x86, apt (for the
// Debian kernel, cached after the first run in ~/.cache/bpbench) and go
// (to build the static guest binary); they skip, saying which is
// missing, only where one cannot be had.

var amd64 = qemu.Arches["amd64"]

// fixture is what every boot test shares: a Debian kernel, the guest
// initramfs and the cache.
var fixture struct {
	once  sync.Once
	k     *debian.Kernel
	im    *Image
	cache string
	skip  string
	err   error
}

func setup(t *testing.T) (*debian.Kernel, *Image, string) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("boots amd64 guests; this is %s", runtime.GOARCH)
	}
	fixture.once.Do(func() {
		if _, err := qemu.Binary(amd64); err != nil {
			fixture.skip = err.Error()
			return
		}
		if _, err := exec.LookPath("apt-get"); err != nil {
			fixture.skip = "no apt-get to fetch a Debian kernel: " + err.Error()
			return
		}
		if _, err := exec.LookPath("go"); err != nil {
			fixture.skip = "no go to build the guest's bpbench: " + err.Error()
			return
		}
		c, err := DefaultCache()
		if err != nil {
			fixture.err = err
			return
		}
		fixture.cache = c
		ctx := context.Background()
		if fixture.k, err = (&debian.Fetcher{Cache: filepath.Join(c, "kernels")}).Fetch(ctx, "6.1"); err != nil {
			fixture.err = err
			return
		}
		bin, err := GuestBinary(ctx, amd64, filepath.Join(c, "guest"), nil)
		if err != nil {
			fixture.err = err
			return
		}
		fixture.im, fixture.err = BuildImage(amd64, bin, false)
	})
	if fixture.skip != "" {
		t.Skip(fixture.skip)
	}
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.k, fixture.im, fixture.cache
}

// ourQEMUs lists the QEMU processes that are children of this process.
func ourQEMUs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		comm := s[strings.IndexByte(s, '(')+1 : i]
		if len(f) > 1 && f[1] == me && strings.HasPrefix(comm, "qemu-system") {
			out = append(out, e.Name()+" "+comm)
		}
	}
	return out
}

func noQEMULeft(t *testing.T) {
	t.Helper()
	if left := ourQEMUs(t); len(left) > 0 {
		t.Errorf("QEMU still running after the call returned: %v", left)
	}
}

// writeJSON is the test's results writer (the CLI's writes the full
// results directory).
func writeJSON(dir string, run *runfile.Run) error {
	b, err := json.Marshal(run)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644)
}

func noRunner(context.Context, Job, io.Writer) (*runfile.Run, error) {
	return nil, errors.New("the boot tests run no host cell")
}

// TestConformInDebianKernel boots Debian's 6.1 cloud kernel at 2 vCPUs
// with conform alone, and checks that the results came back whole: the
// model agreed with the kernel, and the kernel facts are x86's (4 slots a
// thread, one pool for instruction and data breakpoints).
func TestConformInDebianKernel(t *testing.T) {
	dk, im, cache := setup(t)
	cfg := &Config{Arch: amd64, Out: t.TempDir(), Run: noRunner, Write: writeJSON, Cache: cache}
	k := &resolved{spec: Spec{Kind: "debian", Version: "6.1", Label: "debian-6.1"}, image: dk.Image, pkg: dk.Package, pkgVersion: dk.PackageVersion}
	c, err := vmCell(context.Background(), cfg, k, 2, im, "tcg", "test", 3*time.Minute)
	noQEMULeft(t)
	if err != nil {
		t.Fatal(err)
	}
	if !c.OK() {
		t.Fatalf("cell failed: %s", c.Error)
	}
	r := c.Run.Conformance
	if !r.Agrees() {
		t.Errorf("conform inside 6.1: %s", r.Summary())
	}
	if r.Opens < 1000 || r.CPUs != 2 {
		t.Errorf("conform ran %d opens on %d CPUs, want >= 1000 on 2", r.Opens, r.CPUs)
	}
	facts := map[string]string{}
	for _, f := range r.Facts {
		facts[f.Name] = f.Value
	}
	if facts["slots-per-thread"] != "4" || facts["inst-data-one-pool"] != "yes" {
		t.Errorf("facts %v, want 4 slots per thread in one pool", facts)
	}
	if !strings.HasPrefix(c.Release, "6.1.") || c.Guest == nil || c.Guest.CPUs != 2 {
		t.Errorf("guest said release %q, info %+v", c.Release, c.Guest)
	}
	if c.Guest.NoFile < 65536 {
		t.Errorf("init raised RLIMIT_NOFILE only to %d", c.Guest.NoFile)
	}
	if err := writeCell(cfg, c); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "console.log", "cell.json"} {
		if _, err := os.Stat(filepath.Join(cfg.Out, "debian-6.1-cpus2", f)); err != nil {
			t.Error(err)
		}
	}
}

// TestGarbageKernel gives a file that is not a kernel: refused before
// QEMU runs, with a message that says so; and a file that passes that
// check (a bzImage header on garbage): QEMU or the boot fails within the
// timeout, and no QEMU is left.
func TestGarbageKernel(t *testing.T) {
	_, im, _ := setup(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	os.WriteFile(garbage, b, 0o644)
	err := CheckImage(garbage, amd64)
	if !errors.Is(err, ErrNotKernel) || !strings.Contains(err.Error(), "boot header") {
		t.Errorf("CheckImage(garbage) = %v, want ErrNotKernel naming the boot header", err)
	}
	k := resolve(context.Background(), &Config{Arch: amd64}, Spec{Kind: "path", Path: garbage, Label: "garbage"})
	if !errors.Is(k.err, ErrNotKernel) {
		t.Errorf("resolve(garbage) = %v, want ErrNotKernel", k.err)
	}

	copy(b[0x202:], "HdrS")
	fake := filepath.Join(dir, "fake-bzImage")
	os.WriteFile(fake, b, 0o644)
	if err := CheckImage(fake, amd64); err != nil {
		t.Fatalf("CheckImage(fake) = %v, want it to pass the header check", err)
	}
	enc, _ := encodeJob(Job{Mode: ModeRun, ResultsDev: amd64.Results})
	timeout := 30 * time.Second
	boot, err := qemu.Run(context.Background(), qemu.Config{Arch: amd64, Kernel: fake, Initrd: im.File, CPUs: 1, Accel: "tcg", Append: enc, Timeout: timeout})
	noQEMULeft(t)
	if !errors.Is(err, qemu.ErrQEMU) && !errors.Is(err, qemu.ErrTimeout) {
		t.Fatalf("booting a fake bzImage: err = %v, want ErrQEMU or ErrTimeout", err)
	}
	if boot != nil && boot.Wall > timeout+10*time.Second {
		t.Errorf("the failed boot took %v, past its %v timeout", boot.Wall, timeout)
	}
	t.Logf("fake bzImage: %v", err)
}

// TestHangingInit boots a real kernel whose init never finishes: the
// boot ends at its timeout with ErrTimeout, the console's last lines
// (init's own) in the error, and QEMU is gone.
func TestHangingInit(t *testing.T) {
	dk, im, _ := setup(t)
	enc, _ := encodeJob(Job{Mode: ModeHang, ResultsDev: amd64.Results})
	timeout := 25 * time.Second
	_, err := qemu.Run(context.Background(), qemu.Config{Arch: amd64, Kernel: dk.Image, Initrd: im.File, CPUs: 1, Accel: "tcg", Append: enc, Timeout: timeout})
	noQEMULeft(t)
	if !errors.Is(err, qemu.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "hanging on purpose") {
		t.Errorf("the error does not end with init's own console lines: %v", err)
	}
}

// TestCancelKillsQEMU cancels a boot midway (as Ctrl-C does): Run
// returns the context's error and QEMU is killed and reaped.
func TestCancelKillsQEMU(t *testing.T) {
	dk, im, _ := setup(t)
	enc, _ := encodeJob(Job{Mode: ModeHang, ResultsDev: amd64.Results})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := qemu.Run(ctx, qemu.Config{Arch: amd64, Kernel: dk.Image, Initrd: im.File, CPUs: 1, Accel: "tcg", Append: enc, Timeout: 5 * time.Minute})
		done <- err
	}()
	for len(ourQEMUs(t)) == 0 {
		select {
		case err := <-done:
			t.Fatalf("Run returned before QEMU was seen: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	noQEMULeft(t)
}

// hangChildEnv makes the test binary a process that boots a hanging
// guest and waits: the bpbench that TestKilledParentKillsQEMU kills.
const hangChildEnv = "BPBENCH_KERNELS_TEST_HANG"

func TestMain(m *testing.M) {
	if os.Getenv(hangChildEnv) != "" {
		os.Exit(hangChild())
	}
	os.Exit(m.Run())
}

func hangChild() int {
	c, err := DefaultCache()
	if err != nil {
		return 1
	}
	k, err := (&debian.Fetcher{Cache: filepath.Join(c, "kernels")}).Fetch(context.Background(), "6.1")
	if err != nil {
		return 1
	}
	bin, err := GuestBinary(context.Background(), amd64, filepath.Join(c, "guest"), nil)
	if err != nil {
		return 1
	}
	im, err := BuildImage(amd64, bin, false)
	if err != nil {
		return 1
	}
	enc, _ := encodeJob(Job{Mode: ModeHang, ResultsDev: amd64.Results})
	qemu.Run(context.Background(), qemu.Config{Arch: amd64, Kernel: k.Image, Initrd: im.File, CPUs: 1, Accel: "tcg", Append: enc, Timeout: 5 * time.Minute})
	return 0
}

// qemuChildren lists the QEMU processes whose parent is pid.
func qemuChildren(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && strings.HasPrefix(s[strings.IndexByte(s, '(')+1:i], "qemu-system") {
			n, _ := strconv.Atoi(e.Name())
			out = append(out, n)
		}
	}
	return out
}

// TestKilledParentKillsQEMU kills, with SIGKILL (no handler runs), a
// process that is booting a guest: its QEMU dies with it, through the
// parent-death signal.
func TestKilledParentKillsQEMU(t *testing.T) {
	setup(t) // the child reuses the cached kernel and guest binary
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), hangChildEnv+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	var q []int
	for len(q) == 0 {
		select {
		case <-exited:
			t.Fatal("the child exited before starting QEMU")
		case <-time.After(100 * time.Millisecond):
		}
		q = qemuChildren(t, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	<-exited
	// QEMU is reparented and killed by the signal; wait for it to go
	// (its new parent reaps it), checking the condition, not a time.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(q[0])))
		stat, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(q[0]), "stat"))
		if errors.Is(err, os.ErrNotExist) || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU %d still alive 30s after its parent was killed", q[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

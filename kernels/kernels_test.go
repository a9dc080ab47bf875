package kernels

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bpbench/conform"
	"bpbench/kernels/debian"
	"bpbench/kernels/qemu"
	"bpbench/runfile"
)

// The tests here boot real kernels under QEMU's TCG (nested KVM stalls
// on the project's machines): Debian's 6.1 cloud kernel for amd64 and for
// arm64. They need qemu-system-x86 and qemu-system-arm, apt (for the
// Debian kernels, cached after the first run in ~/.cache/bpbench) and go
// (to build the static guest binaries, cross-built for arm64); they skip,
// saying which is missing, only where one cannot be had.

var (
	amd64 = qemu.Arches["amd64"]
	arm64 = qemu.Arches["arm64"]
)

// guestFixture is what every boot test of one architecture shares: a
// Debian kernel, the guest initramfs and the cache.
type guestFixture struct {
	once  sync.Once
	k     *debian.Kernel
	im    *Image
	cache string
	skip  string
	err   error
}

var fixtures = map[string]*guestFixture{"amd64": {}, "arm64": {}}

// setup returns arch's fixture, making it on first use.
func setup(t *testing.T, arch qemu.Arch) (*debian.Kernel, *Image, string) {
	t.Helper()
	f := fixtures[arch.Name]
	f.once.Do(func() {
		if _, err := qemu.Binary(arch); err != nil {
			f.skip = err.Error()
			return
		}
		if _, err := exec.LookPath("apt-get"); err != nil {
			f.skip = "no apt-get to fetch a Debian kernel: " + err.Error()
			return
		}
		if _, err := exec.LookPath("go"); err != nil {
			f.skip = "no go to build the guest's bpbench: " + err.Error()
			return
		}
		c, err := DefaultCache()
		if err != nil {
			f.err = err
			return
		}
		f.cache = c
		ctx := context.Background()
		if f.k, err = (&debian.Fetcher{Cache: filepath.Join(c, "kernels"), Arch: arch.Name}).Fetch(ctx, "6.1"); err != nil {
			f.err = err
			return
		}
		bin, err := GuestBinary(ctx, arch, filepath.Join(c, "guest"), nil)
		if err != nil {
			f.err = err
			return
		}
		f.im, f.err = BuildImage(arch, bin, false)
	})
	if f.skip != "" {
		t.Skip(f.skip)
	}
	if f.err != nil {
		t.Fatal(f.err)
	}
	return f.k, f.im, f.cache
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

// conformCell boots Debian's 6.1 cloud kernel for arch at 2 vCPUs under
// TCG with job (conform alone) and returns the cell, which must have
// produced results, and QEMU gone.
func conformCell(t *testing.T, arch qemu.Arch, job Job) (*Config, *Cell) {
	t.Helper()
	dk, im, cache := setup(t, arch)
	spec, err := ParseSpecs([]string{"debian:6.1"}, []string{arch.Name})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Out: t.TempDir(), Run: noRunner, Write: writeJSON, Cache: cache, Job: job}
	k := &resolved{spec: spec[0], arch: arch, image: dk.Image, pkg: dk.Package, pkgVersion: dk.PackageVersion}
	c, err := vmCell(context.Background(), cfg, k, 2, &guestOf{im: im, accel: "tcg", why: "test"}, 3*time.Minute)
	noQEMULeft(t)
	if err != nil {
		t.Fatal(err)
	}
	if !c.OK() {
		t.Fatalf("cell failed: %s", c.Error)
	}
	return cfg, c
}

// TestConformInDebianKernel boots Debian's 6.1 cloud kernel at 2 vCPUs
// with conform alone, and checks that the results came back whole: the
// model agreed with the kernel, and the kernel facts are x86's (4 slots a
// thread, one pool for instruction and data breakpoints).
func TestConformInDebianKernel(t *testing.T) {
	cfg, c := conformCell(t, amd64, Job{})
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

// updateFixtures, when set in the environment, makes
// TestConformInArm64DebianKernel write the kernel's side of its lockstep
// sequence to conform/testdata, the fixture conform's replay test holds
// the model to.
const updateFixtures = "BPBENCH_UPDATE_FIXTURES"

// arm64Fixture is that fixture.
const arm64Fixture = "../conform/testdata/arm64-debian-6.1-cpus2.json"

// TestConformInArm64DebianKernel boots Debian's 6.1 arm64 cloud kernel
// on QEMU's virt board at 2 vCPUs with conform alone. The results come
// back on the console, the board's only UART, between the kernel's own
// lines; the model, configured with the pools the kernel was probed to
// have, agrees with it op by op; and the pools are QEMU's max CPU's:
// 6 instruction breakpoints and 4 data watchpoints a thread, separate
// (its ID_AA64DFR0_EL1 says BRPs 6, WRPs 4).
func TestConformInArm64DebianKernel(t *testing.T) {
	_, c := conformCell(t, arm64, Job{ConformTrace: true})
	if !strings.Contains(string(c.Console), "BPBENCH-FRAME name=results.json.gz") || !strings.Contains(string(c.Console), "bpbench-guest: up") {
		t.Errorf("the results did not travel on the console with the guest's own lines:\n%s", qemu.Tail(c.Console, 10))
	}
	r := c.Run.Conformance
	t.Logf("%s; pools %s; boot %.1fs, job %.1fs, cell %v", r.Summary(), r.Pools(), c.Guest.UptimeStart, c.Guest.UptimeEnd-c.Guest.UptimeStart, c.Wall)
	if !r.Agrees() {
		t.Errorf("conform inside arm64 6.1: %s", r.Summary())
	}
	if r.Arch != "arm64" || r.CPUs != 2 || r.Opens < 500 {
		t.Errorf("conform ran %d opens on %d %s CPUs, want >= 500 on 2 arm64", r.Opens, r.CPUs, r.Arch)
	}
	if r.Slots != 4 || r.InstSlots != 6 {
		t.Errorf("model configured with %d data and %d instruction slots, want QEMU max's 4 and 6 in separate pools", r.Slots, r.InstSlots)
	}
	if r.Inst == 0 || r.InstRefused == 0 || r.InstRefused == r.Inst {
		t.Errorf("the sequence did not cross the instruction pool's boundary: %d instruction opens, %d refused", r.Inst, r.InstRefused)
	}
	facts := map[string]conform.Fact{}
	for _, f := range r.Facts {
		facts[f.Name] = f
	}
	if facts["inst-data-one-pool"].Value != "no" || facts["slots-per-thread"].Value != "4" || facts["inst-slots-per-thread"].Value != "6" {
		t.Errorf("facts %+v, want 6 instruction and 4 data slots in separate pools", facts)
	}
	if f := facts["ptrace-dr-write-reserves"]; f.Skipped == "" || !strings.Contains(f.Skipped, "x86 only") {
		t.Errorf("the x86 ptrace fact on arm64: %+v, want skipped as x86 only", f)
	}
	if !strings.HasPrefix(c.Release, "6.1.") || !strings.HasSuffix(c.Release, "arm64") || c.Arch != "arm64" {
		t.Errorf("guest said release %q on %s", c.Release, c.Arch)
	}
	if len(r.Trace) != r.Opens+r.Closes {
		t.Errorf("trace has %d lines for %d opens and %d closes", len(r.Trace), r.Opens, r.Closes)
	}
	if os.Getenv(updateFixtures) != "" {
		b, err := json.MarshalIndent(r, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(arm64Fixture, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", arm64Fixture)
	}
}

// TestGarbageKernel gives a file that is not a kernel: refused before
// QEMU runs, with a message that says so; and a file that passes that
// check (a bzImage header on garbage): QEMU or the boot fails within the
// timeout, and no QEMU is left.
func TestGarbageKernel(t *testing.T) {
	_, im, _ := setup(t, amd64)
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
	k := resolve(context.Background(), &Config{}, Spec{Kind: "path", Path: garbage, Arch: "amd64", Label: "garbage"})
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
	dk, im, _ := setup(t, amd64)
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
	dk, im, _ := setup(t, amd64)
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
	setup(t, amd64) // the child reuses the cached kernel and guest binary
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

package kernels

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"bpbench/kernels/initramfs"
	"bpbench/kernels/qemu"
)

// guestMainPackage is built for the guest when the running executable
// cannot be its init (dynamically linked, or another architecture).
const guestMainPackage = "bpbench/cmd/bpbench"

// GuestBinary returns a static bpbench executable for arch: the running
// one when it is static and built for arch (a user's own main with their
// strategy registered then runs in the guest too), otherwise the main
// package built with CGO_ENABLED=0 GOARCH=arch from the source this
// binary was built from (found through its own file paths), or, for a
// binary built with -trimpath, from the module in the working directory
// when that is the same module; kept in the cache (the go build cache
// makes a rebuild quick).
func GuestBinary(ctx context.Context, arch qemu.Arch, cache string, log io.Writer) (string, error) {
	exe, err := os.Executable()
	if err == nil {
		if err = initramfs.CheckStatic(exe, arch.ELF); err == nil {
			return exe, nil
		}
	}
	why := err
	pkg := guestMainPackage
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Path != "" && !strings.HasSuffix(bi.Path, ".test") && bi.Path != "command-line-arguments" {
		pkg = bi.Path
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("kernels: the guest needs a static %s bpbench (%v) and there is no go to build one: %w", arch.Name, why, err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("kernels: %w", err)
	}
	dst := filepath.Join(cache, "bpbench-"+arch.Name)
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	defer os.Remove(tmp)
	if log != nil {
		fmt.Fprintf(log, "building the guest's bpbench: CGO_ENABLED=0 GOARCH=%s go build %s (%v)\n", arch.Name, pkg, why)
	}
	// Stripped: a smaller initramfs unpacks faster under emulation.
	dir, err := sourceDir()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+arch.Name, "GOOS=linux")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := startLocked(cmd); err != nil {
		return "", fmt.Errorf("kernels: go build: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("kernels: building the guest's bpbench (%s): %w: %s", pkg, err, strings.TrimSpace(out.String()))
	}
	if err := initramfs.CheckStatic(tmp, arch.ELF); err != nil {
		return "", fmt.Errorf("kernels: the built guest binary: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("kernels: %w", err)
	}
	return dst, nil
}

// findPerf returns the host's perf executable for arch, or "" and why
// not. Debian's /usr/bin/perf is either the binary itself or a wrapper
// script that runs perf_<version> for the running kernel; the binary is
// what the guest needs (the newest when there are several).
func findPerf(arch qemu.Arch) (string, string) {
	p, err := exec.LookPath("perf")
	if err != nil {
		return "", "perf is not installed on the host"
	}
	if f, err := elf.Open(p); err == nil {
		m := f.Machine
		f.Close()
		if m != arch.ELF {
			return "", fmt.Sprintf("the host's perf is for %v, the guest is %s", m, arch.Name)
		}
		return p, ""
	}
	cands, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "perf_*"))
	sort.Sort(sort.Reverse(sort.StringSlice(cands)))
	for _, c := range cands {
		if f, err := elf.Open(c); err == nil {
			m := f.Machine
			f.Close()
			if m == arch.ELF {
				return c, ""
			}
		}
	}
	return "", fmt.Sprintf("%s is a wrapper and no perf_* binary for %s sits beside it", p, arch.Name)
}

// Image is a guest initramfs in memory.
type Image struct {
	File *os.File
	// Size is its compressed size in bytes.
	Size int64
	// Perf says whether perf is inside, and PerfNote why not.
	Perf     bool
	PerfNote string
}

// Close releases the in-memory file.
func (im *Image) Close() error {
	if im == nil || im.File == nil {
		return nil
	}
	return im.File.Close()
}

// BuildImage builds the guest's initramfs in memory: bin as /bpbench
// (and /init, a symlink to it), the guest environment file, and, when
// withPerf, the host's perf with its libraries as /usr/bin/perf.
func BuildImage(arch qemu.Arch, bin string, withPerf bool) (*Image, error) {
	b := initramfs.New()
	defer b.Close()
	if err := b.HostFile("bpbench", bin, 0o755); err != nil {
		return nil, err
	}
	if err := b.Symlink("init", "/bpbench"); err != nil {
		return nil, err
	}
	im := &Image{}
	env := []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root"}
	if withPerf {
		perf, why := findPerf(arch)
		if perf == "" {
			im.PerfNote = why
		} else {
			dirs, err := b.Program("usr/bin/perf", perf, arch.ELF)
			if err != nil {
				im.PerfNote = fmt.Sprintf("perf left out: %v", err)
			} else {
				im.Perf = true
				env = append(env, "LD_LIBRARY_PATH="+strings.Join(dirs, ":"))
			}
		}
	} else {
		im.PerfNote = "not needed by the selected experiments"
	}
	if err := b.File(guestEnvFile, []byte(strings.Join(env, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	f, err := qemu.MemFile("bpbench-initramfs", func(w io.Writer) error {
		n, err := b.WriteTo(w)
		im.Size = n
		return err
	})
	if err != nil {
		return nil, err
	}
	im.File = f
	return im, nil
}

// CheckImage refuses a file that cannot be a kernel for arch before
// QEMU is asked to boot it: an x86 bzImage carries "HdrS" at 0x202; an
// arm64 Image carries "ARM\x64" at 0x38, and Debian ships it gzip
// compressed (QEMU unpacks that itself).
func CheckImage(path string, arch qemu.Arch) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotKernel, err)
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	n, _ := io.ReadFull(f, hdr)
	hdr = hdr[:n]
	switch arch.Name {
	case "amd64":
		if len(hdr) >= 0x206 && string(hdr[0x202:0x206]) == "HdrS" {
			return nil
		}
		return fmt.Errorf("%w: %s has no x86 boot header (\"HdrS\" at 0x202): give a bzImage or vmlinuz, not vmlinux or another file", ErrNotKernel, path)
	case "arm64":
		if len(hdr) >= 0x3c && string(hdr[0x38:0x3c]) == "ARM\x64" {
			return nil
		}
		if len(hdr) >= 2 && hdr[0] == 0x1f && hdr[1] == 0x8b {
			return nil
		}
		return fmt.Errorf("%w: %s is neither an arm64 Image (\"ARM\\x64\" at 0x38) nor gzip compressed", ErrNotKernel, path)
	}
	return nil
}

// ErrNotKernel is returned for a kernel image that cannot be booted.
var ErrNotKernel = errors.New("not a kernel image")

func startLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// sourceDir is the directory the guest's bpbench is built in: the module
// root of the source this binary was built from, which its own file paths
// name unless it was built with -trimpath; otherwise the working
// directory, if it holds the same module (building another checkout would
// put other code in the guest than the one measuring on the host).
func sourceDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if ok && filepath.IsAbs(file) {
		root := filepath.Dir(filepath.Dir(file)) // kernels/image.go -> the module root
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			return root, nil
		}
	}
	want := "bpbench"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != "" {
		want = bi.Main.Path
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("kernels: %w", err)
	}
	out, err := exec.Command("go", "list", "-m").Output()
	if err != nil || strings.TrimSpace(string(out)) != want {
		return "", fmt.Errorf("kernels: this bpbench was built without its source paths (-trimpath) and %s is not module %s: build the guest's bpbench from that module's checkout (run bpbench kernels there)", wd, want)
	}
	return wd, nil
}

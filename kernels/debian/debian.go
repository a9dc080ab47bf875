// Package debian fetches Debian's cloud kernels for bpbench's real-kernel
// cells: `apt-get download` of linux-image-*-cloud-ARCH from the archive
// the system's own apt sources name, with a private apt state directory
// (the system's apt configuration, lists and cache are never touched, no
// package is installed), and only the kernel image kept, in a cache.
package debian

import (
	"archive/tar"
	"bpbench/internal/support"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNoApt is returned when the tools a fetch needs (apt-get, apt-cache,
// dpkg-deb) are not installed: not a Debian-like system.
var ErrNoApt = support.New("Debian kernels need apt-get, apt-cache and dpkg-deb")

// ErrUnknownVersion is returned for a kernel version no suite ships.
var ErrUnknownVersion = errors.New("no Debian suite for this kernel version")

// Suites maps the kernel versions bpbench knows to the Debian suite that
// ships them: bullseye's 5.10 has the pre-2022 breakpoint accounting,
// bookworm's 6.1 and trixie's 6.12 the rework.
var Suites = map[string]string{"5.10": "bullseye", "6.1": "bookworm", "6.12": "trixie"}

// Versions returns the versions of Suites, sorted.
func Versions() []string {
	var vs []string
	for v := range Suites {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return vs
}

// Kernel is a fetched kernel image.
type Kernel struct {
	// Version is the requested version ("5.10") and Suite its suite.
	Version string `json:"version"`
	Suite   string `json:"suite"`
	Arch    string `json:"arch"`
	// Package and PackageVersion name the package the image came from
	// ("linux-image-5.10.0-32-cloud-amd64", "5.10.223-1").
	Package        string `json:"package"`
	PackageVersion string `json:"package_version"`
	// Image is the kernel image's path in the cache.
	Image string `json:"image"`
}

// Fetcher fetches kernels into a cache.
type Fetcher struct {
	// Cache is the cache directory (default: DefaultCache()).
	Cache string
	// Arch is the Debian architecture ("amd64", "arm64"; default: the
	// running one).
	Arch string
	// AptEtc is where the system's apt sources are read (default
	// /etc/apt).
	AptEtc string
	// Log receives one line per step that touches the network.
	Log io.Writer
}

// DefaultCache is $XDG_CACHE_HOME/bpbench/kernels, or
// ~/.cache/bpbench/kernels.
func DefaultCache() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("debian: no cache directory: %w", err)
	}
	return filepath.Join(d, "bpbench", "kernels"), nil
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.Log != nil {
		fmt.Fprintf(f.Log, format+"\n", args...)
	}
}

// Fetch returns the cloud kernel of Debian's suite for version, from the
// cache or, the first time, downloaded. Concurrent fetches of one suite
// (two bpbench processes) wait for each other.
func (f *Fetcher) Fetch(ctx context.Context, version string) (*Kernel, error) {
	suite, ok := Suites[version]
	if !ok {
		return nil, fmt.Errorf("%w: %q (have %s)", ErrUnknownVersion, version, strings.Join(Versions(), ", "))
	}
	arch := f.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	cache := f.Cache
	if cache == "" {
		var err error
		if cache, err = DefaultCache(); err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(cache, suite+"-"+arch)
	if k, err := readMeta(dir); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("debian: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if k, err := readMeta(dir); err == nil { // fetched while we waited
		return k, nil
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w (%s: %v); give a kernel image by path instead", ErrNoApt, tool, err)
		}
	}
	etc := f.AptEtc
	if etc == "" {
		etc = "/etc/apt"
	}
	sources, err := ReadSources(etc)
	if err != nil {
		return nil, err
	}
	mirror, err := Mirror(sources)
	if err != nil {
		return nil, err
	}
	apt, err := newPrivateApt(ctx, dir, mirror, suite, arch)
	if err != nil {
		return nil, err
	}
	f.logf("debian %s: apt-get update (%s %s, private state in %s)", version, mirror.URI, suite, dir)
	if _, err := apt.run(ctx, "apt-get", "update"); err != nil {
		return nil, err
	}
	meta := "linux-image-cloud-" + arch
	show, err := apt.run(ctx, "apt-cache", "show", meta)
	if err != nil {
		return nil, err
	}
	pkg, err := versionedPackage(show, arch)
	if err != nil {
		return nil, fmt.Errorf("debian: %s in %s: %w", meta, suite, err)
	}
	pv, err := apt.run(ctx, "apt-cache", "show", "--no-all-versions", pkg)
	if err != nil {
		return nil, err
	}
	pkgVersion := field(pv, "Version")
	f.logf("debian %s: apt-get download %s %s", version, pkg, pkgVersion)
	if _, err := apt.run(ctx, "apt-get", "download", pkg); err != nil {
		return nil, err
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("debian: apt-get download %s left %d .deb files in %s, want 1", pkg, len(debs), dir)
	}
	defer os.Remove(debs[0])
	img, err := extractImage(ctx, debs[0], dir)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Version: version, Suite: suite, Arch: arch, Package: pkg, PackageVersion: pkgVersion, Image: img}
	if err := writeMeta(dir, k); err != nil {
		return nil, err
	}
	return k, nil
}

// versionedPackage finds, in `apt-cache show linux-image-cloud-ARCH`,
// the versioned image package the metapackage depends on.
func versionedPackage(show, arch string) (string, error) {
	dep := field(show, "Depends")
	for _, alt := range strings.FieldsFunc(dep, func(r rune) bool { return r == ',' || r == '|' }) {
		name := strings.Fields(strings.TrimSpace(alt))
		if len(name) > 0 && strings.HasPrefix(name[0], "linux-image-") && strings.Contains(name[0], "cloud-"+arch) {
			return name[0], nil
		}
	}
	return "", fmt.Errorf("no linux-image-*-cloud-%s in its Depends %q", arch, dep)
}

// field returns the first value of a deb822 field in apt-cache output.
func field(stanzas, name string) string {
	sc := scanLines(stanzas)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// extractImage streams the package's file system tree out of dpkg-deb
// and keeps only /boot/vmlinuz-*, written into dir atomically.
func extractImage(ctx context.Context, deb, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("debian: %w", err)
	}
	if err := startLocked(cmd); err != nil {
		return "", fmt.Errorf("debian: dpkg-deb: %w", err)
	}
	img, xerr := func() (string, error) {
		tr := tar.NewReader(out)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return "", fmt.Errorf("debian: %s holds no boot/vmlinuz-*", deb)
			}
			if err != nil {
				return "", fmt.Errorf("debian: reading %s: %w", deb, err)
			}
			name := strings.TrimPrefix(h.Name, "./")
			if h.Typeflag != tar.TypeReg || !strings.HasPrefix(name, "boot/vmlinuz-") {
				continue
			}
			dst := filepath.Join(dir, filepath.Base(name))
			return dst, writeAtomic(dst, tr)
		}
	}()
	io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if xerr != nil {
		return "", xerr
	}
	if werr != nil {
		return "", fmt.Errorf("debian: dpkg-deb --fsys-tarfile %s: %w (%s)", deb, werr, strings.TrimSpace(stderr.String()))
	}
	return img, nil
}

// writeAtomic writes r to path through a temporary file and a rename.
func writeAtomic(path string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("debian: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("debian: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("debian: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("debian: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("debian: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("debian: %w", err)
	}
	return nil
}

const metaFile = "kernel.json"

func readMeta(dir string) (*Kernel, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var k Kernel
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, err
	}
	if _, err := os.Stat(k.Image); err != nil {
		return nil, err
	}
	return &k, nil
}

func writeMeta(dir string, k *Kernel) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, metaFile), bytes.NewReader(append(b, '\n')))
}

// lockDir takes an exclusive flock on dir/.lock; the returned function
// releases it (and so does the process's death).
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("debian: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("debian: locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// startLocked starts cmd from a locked OS thread, so that its
// parent-death signal (which fires when the starting thread exits) comes
// only when this process dies.
func startLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

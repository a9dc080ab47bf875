package debian

import (
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadSources reads both formats as apt does: disabled entries and
// files apt ignores are left out; the mirror is the first plain release
// source with main, never a -security or -updates suite.
func TestReadSources(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, filepath.Join(etc, "sources.list"), `
# a comment
deb [arch=amd64 signed-by=/k/one.gpg] http://mirror.example/debian-security bookworm-security main
deb-src http://mirror.example/debian bookworm main
`)
	writeFile(t, filepath.Join(etc, "sources.list.d", "other.list.disabled"), "deb http://ignored.example/debian bookworm main\n")
	writeFile(t, filepath.Join(etc, "sources.list.d", "debian.sources"), `Types: deb
URIs: http://off.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb deb-src
# a comment inside
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBF
 -----END PGP PUBLIC KEY BLOCK-----
`)
	ss, err := ReadSources(etc)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 3 {
		t.Fatalf("read %d sources, want 3: %+v", len(ss), ss)
	}
	for _, s := range ss {
		if strings.Contains(s.URI, "ignored") || strings.Contains(s.URI, "off.example") {
			t.Errorf("read %s, which apt ignores", s.URI)
		}
	}
	if ss[0].SignedBy != "/k/one.gpg" {
		t.Errorf("one-line signed-by = %q", ss[0].SignedBy)
	}
	m, err := Mirror(ss)
	if err != nil {
		t.Fatal(err)
	}
	if m.URI != "http://mirror.example/debian" || !strings.Contains(m.SignedBy, "BEGIN PGP") || !strings.Contains(m.SignedBy, "\n\nmQINBF") {
		t.Errorf("mirror = %+v", m)
	}
	if _, err := Mirror(ss[:2]); !errors.Is(err, ErrNoMirror) {
		t.Errorf("Mirror without a release source: err = %v, want ErrNoMirror", err)
	}
}

func TestVersionedPackage(t *testing.T) {
	show := "Package: linux-image-cloud-amd64\nVersion: 5.10.223-1\nDepends: linux-image-5.10.0-32-cloud-amd64 (= 5.10.223-1)\n"
	if p, err := versionedPackage(show, "amd64"); err != nil || p != "linux-image-5.10.0-32-cloud-amd64" {
		t.Errorf("versionedPackage = %q, %v", p, err)
	}
	if _, err := versionedPackage("Depends: libc6\n", "amd64"); err == nil {
		t.Error("versionedPackage found a kernel in libc6")
	}
}

func TestUnknownVersion(t *testing.T) {
	f := &Fetcher{Cache: t.TempDir()}
	if _, err := f.Fetch(context.Background(), "4.19"); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("Fetch(4.19): err = %v, want ErrUnknownVersion", err)
	}
}

// TestNoApt runs a fetch with no apt tools on PATH: a clear error that
// says to give an image by path.
func TestNoApt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f := &Fetcher{Cache: t.TempDir()}
	_, err := f.Fetch(context.Background(), "6.1")
	if !errors.Is(err, ErrNoApt) || !strings.Contains(err.Error(), "by path") {
		t.Errorf("err = %v, want ErrNoApt saying to give a path", err)
	}
}

// TestFetch fetches the real 6.1 cloud kernel (from the cache after the
// first run) and checks it is an x86 boot image: a bzImage header.
func TestFetch(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("checks an amd64 bzImage")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skipf("no apt-get: %v", err)
	}
	k, err := (&Fetcher{}).Fetch(context.Background(), "6.1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(k.Image)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 0x210 || string(b[0x202:0x206]) != "HdrS" {
		t.Errorf("%s has no bzImage header", k.Image)
	}
	if _, err := elf.Open(k.Image); err == nil {
		t.Errorf("%s is an ELF file, want a compressed boot image", k.Image)
	}
	if k.Suite != "bookworm" || !strings.HasPrefix(k.PackageVersion, "6.1.") || !strings.Contains(k.Package, "cloud-amd64") {
		t.Errorf("kernel = %+v", k)
	}
}

package initramfs

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func hostMachine(t *testing.T) elf.Machine {
	switch runtime.GOARCH {
	case "amd64":
		return elf.EM_X86_64
	case "arm64":
		return elf.EM_AARCH64
	}
	t.Skipf("no ELF machine known for %s", runtime.GOARCH)
	return 0
}

func roundTrip(t *testing.T, b *Builder) map[string]Entry {
	t.Helper()
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	entries, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	pos := map[string]int{}
	for i, e := range entries {
		if _, dup := got[e.Name]; dup {
			t.Errorf("%s appears twice", e.Name)
		}
		got[e.Name] = e
		pos[e.Name] = i
	}
	// The kernel makes no missing parent: each parent must come first.
	for name, i := range pos {
		if d := filepath.Dir(name); d != "." {
			if j, ok := pos[d]; !ok || j > i {
				t.Errorf("%s at %d: parent %s at %d (missing or after it)", name, i, d, j)
			}
		}
	}
	return got
}

// TestRoundTrip writes an archive with every kind of entry and reads it
// back: names, modes, contents, symlink targets and the console device.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "payload")
	hostData := bytes.Repeat([]byte("bpbench "), 10_000)
	if err := os.WriteFile(host, hostData, 0o600); err != nil {
		t.Fatal(err)
	}
	b := New()
	defer b.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.File("/etc/job.json", []byte(`{"x":1}`), 0o640))
	must(b.HostFile("usr/bin/payload", host, 0o755))
	must(b.Symlink("init", "/usr/bin/payload"))
	must(b.Dir("var/empty", 0o700))
	must(b.Dir("etc", 0o755)) // a directory twice is fine
	if err := b.File("init", nil, 0o644); !errors.Is(err, ErrExists) {
		t.Errorf("adding init twice: err = %v, want ErrExists", err)
	}
	got := roundTrip(t, b)
	want := map[string]struct {
		mode os.FileMode
		data string
	}{
		"etc/job.json":    {0o640, `{"x":1}`},
		"usr/bin/payload": {0o755, string(hostData)},
		"init":            {os.ModeSymlink | 0o777, "/usr/bin/payload"},
		"var/empty":       {os.ModeDir | 0o700, ""},
		"usr":             {os.ModeDir | 0o755, ""},
		"usr/bin":         {os.ModeDir | 0o755, ""},
		"proc":            {os.ModeDir | 0o755, ""},
		"tmp":             {os.ModeDir | 0o755, ""},
	}
	for name, w := range want {
		e, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if e.Mode != w.mode {
			t.Errorf("%s: mode %v, want %v", name, e.Mode, w.mode)
		}
		if string(e.Data) != w.data {
			t.Errorf("%s: %d bytes of contents, want %d", name, len(e.Data), len(w.data))
		}
	}
	c := got["dev/console"]
	if c.Mode&os.ModeCharDevice == 0 || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console: mode %v dev %d:%d, want a character device 5:1", c.Mode, c.Rmajor, c.Rminor)
	}
	// The streamed host file is read again for a second archive.
	again := roundTrip(t, b)
	if !bytes.Equal(again["usr/bin/payload"].Data, hostData) {
		t.Error("second archive lost the streamed file's contents")
	}
}

// TestProgramBringsLibraries adds a dynamically linked host program and
// checks that its interpreter and every library ldd would load are in
// the archive with the host's contents.
func TestProgramBringsLibraries(t *testing.T) {
	m := hostMachine(t)
	sh := "/bin/sh"
	interp, libs, err := Needs(sh, m)
	if err != nil {
		t.Skipf("%s: %v", sh, err)
	}
	if interp == "" || len(libs) == 0 {
		t.Skipf("%s is statically linked here", sh)
	}
	b := New()
	defer b.Close()
	dirs, err := b.Program("bin/sh", sh, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Error("no library directories returned")
	}
	got := roundTrip(t, b)
	for _, p := range append([]string{interp}, libs...) {
		e, ok := got[strings.TrimPrefix(p, "/")]
		if !ok {
			t.Errorf("%s missing from the archive", p)
			continue
		}
		host, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e.Data, host) {
			t.Errorf("%s: contents differ from the host's", p)
		}
	}
	var libc bool
	for _, l := range libs {
		libc = libc || strings.Contains(filepath.Base(l), "libc.so")
	}
	if !libc {
		t.Errorf("libc not among %s's libraries %v", sh, libs)
	}
}

func TestCheckStatic(t *testing.T) {
	m := hostMachine(t)
	if err := CheckStatic("/bin/sh", m); !errors.Is(err, ErrNotStatic) {
		t.Errorf("CheckStatic(/bin/sh) = %v, want ErrNotStatic", err)
	}
	other := elf.EM_AARCH64
	if m == elf.EM_AARCH64 {
		other = elf.EM_X86_64
	}
	if err := CheckStatic("/bin/sh", other); !errors.Is(err, ErrWrongArch) {
		t.Errorf("CheckStatic(/bin/sh, %v) = %v, want ErrWrongArch", other, err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage")
	os.WriteFile(garbage, []byte("not an ELF file at all"), 0o755)
	if err := CheckStatic(garbage, m); err == nil {
		t.Error("CheckStatic accepted a file that is not ELF")
	}
}

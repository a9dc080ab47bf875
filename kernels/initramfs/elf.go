package initramfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotStatic is returned by CheckStatic for an executable that needs a
// dynamic loader.
var ErrNotStatic = errors.New("not a static executable")

// ErrWrongArch is returned for an ELF file built for another machine.
var ErrWrongArch = errors.New("ELF file for another machine")

// CheckStatic reports whether path is an ELF executable for machine m
// that needs no dynamic loader (no PT_INTERP): one that can be a guest's
// /init on its own.
func CheckStatic(path string, m elf.Machine) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("initramfs: %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != m {
		return fmt.Errorf("%w: %s is %v, want %v", ErrWrongArch, path, f.Machine, m)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: %s is dynamically linked", ErrNotStatic, path)
		}
	}
	return nil
}

// Program adds the ELF executable src as name, and with it its
// interpreter and every shared library it needs, transitively, each at
// the path the host's loader found it under (symbolic links resolved to
// their files). The guest has no ld.so.cache, so the directories the
// libraries came from are returned: the guest's LD_LIBRARY_PATH.
func (b *Builder) Program(name, src string, m elf.Machine) (libDirs []string, err error) {
	interp, libs, err := Needs(src, m)
	if err != nil {
		return nil, err
	}
	if err := b.HostFile(name, src, 0o755); err != nil {
		return nil, err
	}
	if interp != "" && !b.Has(interp) {
		if err := b.HostFile(interp, interp, 0o755); err != nil {
			return nil, err
		}
	}
	dirs := map[string]bool{}
	for _, l := range libs {
		dirs[path.Dir(l)] = true
		if b.Has(l) {
			continue
		}
		if err := b.HostFile(l, l, 0o755); err != nil {
			return nil, err
		}
	}
	for d := range dirs {
		libDirs = append(libDirs, d)
	}
	sort.Strings(libDirs)
	return libDirs, nil
}

// Needs returns the ELF interpreter of the executable src and the host
// paths of every shared library it needs, transitively (DT_NEEDED), found
// as ld.so searches: the object's DT_RPATH and DT_RUNPATH ($ORIGIN
// expanded), the directories of /etc/ld.so.conf, then the default ones;
// a candidate built for another machine is passed over, as the loader
// does.
func Needs(src string, m elf.Machine) (interp string, libs []string, err error) {
	f, err := elf.Open(src)
	if err != nil {
		return "", nil, fmt.Errorf("initramfs: %s: %w", src, err)
	}
	defer f.Close()
	if f.Machine != m {
		return "", nil, fmt.Errorf("%w: %s is %v, want %v", ErrWrongArch, src, f.Machine, m)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", nil, fmt.Errorf("initramfs: %s: reading PT_INTERP: %w", src, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	sys := searchDirs(m)
	seen := map[string]bool{}
	var walk func(obj string, ef *elf.File) error
	walk = func(obj string, ef *elf.File) error {
		needed, err := ef.DynString(elf.DT_NEEDED)
		if err != nil {
			return fmt.Errorf("initramfs: %s: %w", obj, err)
		}
		var own []string
		for _, tag := range []elf.DynTag{elf.DT_RPATH, elf.DT_RUNPATH} {
			vs, _ := ef.DynString(tag)
			for _, v := range vs {
				for _, d := range strings.Split(v, ":") {
					own = append(own, strings.ReplaceAll(d, "$ORIGIN", path.Dir(obj)))
				}
			}
		}
		for _, n := range needed {
			if seen[n] {
				continue
			}
			seen[n] = true
			p, lf, err := findLib(n, append(own, sys...), ef)
			if err != nil {
				return fmt.Errorf("initramfs: %s needs %s: %w", obj, n, err)
			}
			libs = append(libs, p)
			err = walk(p, lf)
			lf.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(src, f); err != nil {
		return "", nil, err
	}
	return interp, libs, nil
}

// findLib returns the first file named name in dirs that is an ELF
// shared object of the same machine and class as the object that needs
// it, and that file opened.
func findLib(name string, dirs []string, by *elf.File) (string, *elf.File, error) {
	cands := []string{name}
	if !strings.Contains(name, "/") {
		cands = cands[:0]
		for _, d := range dirs {
			cands = append(cands, filepath.Join(d, name))
		}
	}
	for _, c := range cands {
		lf, err := elf.Open(c)
		if err != nil {
			continue
		}
		if lf.Machine == by.Machine && lf.Class == by.Class {
			return c, lf, nil
		}
		lf.Close()
	}
	return "", nil, fmt.Errorf("not found in %s", strings.Join(dirs, ":"))
}

// multiarch is Debian's library directory name for each machine.
var multiarch = map[elf.Machine]string{
	elf.EM_X86_64:  "x86_64-linux-gnu",
	elf.EM_AARCH64: "aarch64-linux-gnu",
}

// searchDirs is the loader's search path after an object's own: the
// directories of /etc/ld.so.conf (with its include globs) and the
// defaults.
func searchDirs(m elf.Machine) []string {
	var dirs []string
	readLdConf("/etc/ld.so.conf", &dirs, 0)
	if t, ok := multiarch[m]; ok {
		dirs = append(dirs, "/lib/"+t, "/usr/lib/"+t)
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

// readLdConf appends the directories an ld.so.conf file names, following
// its include lines (depth-bounded against include loops).
func readLdConf(file string, dirs *[]string, depth int) {
	if depth > 8 {
		return
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "include "):
			pat := strings.TrimSpace(strings.TrimPrefix(line, "include "))
			if !filepath.IsAbs(pat) {
				pat = filepath.Join(filepath.Dir(file), pat)
			}
			matches, _ := filepath.Glob(pat)
			sort.Strings(matches)
			for _, mf := range matches {
				readLdConf(mf, dirs, depth+1)
			}
		default:
			*dirs = append(*dirs, line)
		}
	}
}

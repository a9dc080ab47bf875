package kernels

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"bpbench/kernels/debian"
	"bpbench/kernels/qemu"
	"bpbench/runfile"
)

// ErrBadSpec is wrapped by errors about a --kernels entry.
var ErrBadSpec = errors.New("bad kernel")

// Spec is one entry of --kernels for one architecture (runfile.KernelSpec).
type Spec = runfile.KernelSpec

var labelUnsafe = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)

// ParseSpecs parses --kernels entries for each of arches (--arch, in
// order: the cells of one architecture run together): a Debian kernel or
// an image file becomes one spec per architecture, labelled with the
// architecture unless it is amd64 (debian-6.1, debian-6.1-arm64); host is
// the running kernel, once, on its own architecture. Labels are unique
// (a second file with the same name gets -2).
func ParseSpecs(items, arches []string) ([]Spec, error) {
	if len(arches) == 0 {
		return nil, fmt.Errorf("%w: no architecture", ErrBadSpec)
	}
	for _, a := range arches {
		if _, err := qemu.ArchOf(a); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadSpec, err)
		}
	}
	var out []Spec
	seen := map[string]int{}
	host := false
	for _, arch := range arches {
		for _, it := range items {
			var s Spec
			switch {
			case it == "host":
				if host {
					continue
				}
				host = true
				s = Spec{Kind: "host", Arch: runtime.GOARCH, Label: "host"}
			case strings.HasPrefix(it, "debian:"):
				v := strings.TrimPrefix(it, "debian:")
				if _, ok := debian.Suites[v]; !ok {
					return nil, fmt.Errorf("%w %q: no Debian suite ships %q (have debian:%s)", ErrBadSpec, it, v, strings.Join(debian.Versions(), ", debian:"))
				}
				s = Spec{Kind: "debian", Version: v, Arch: arch, Label: archLabel("debian-"+v, arch)}
			default:
				fi, err := os.Stat(it)
				if err != nil {
					return nil, fmt.Errorf("%w %q: want debian:VERSION, host, or a kernel image file: %v", ErrBadSpec, it, err)
				}
				if !fi.Mode().IsRegular() {
					return nil, fmt.Errorf("%w %q: not a regular file", ErrBadSpec, it)
				}
				label := labelUnsafe.ReplaceAllString(filepath.Base(it), "_")
				s = Spec{Kind: "path", Path: it, Arch: arch, Label: archLabel(label, arch)}
			}
			seen[s.Label]++
			if n := seen[s.Label]; n > 1 {
				if s.Kind != "path" {
					continue // the same kernel named twice runs once
				}
				s.Label = fmt.Sprintf("%s-%d", s.Label, n)
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the list names no kernel", ErrBadSpec)
	}
	return out, nil
}

// archLabel names a kernel's cells on arch: amd64's keep their plain
// names (the default architecture, and the results from before there
// were others), any other carries it ("debian-6.1-arm64").
func archLabel(label, arch string) string {
	if arch == "amd64" {
		return label
	}
	return label + "-" + arch
}

package kernels

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"bpbench/kernels/debian"
	"bpbench/runfile"
)

// ErrBadSpec is wrapped by errors about a --kernels entry.
var ErrBadSpec = errors.New("bad kernel")

// Spec is one entry of --kernels for one architecture (runfile.KernelSpec).
type Spec = runfile.KernelSpec

var labelUnsafe = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)

// ParseSpecs parses --kernels entries; labels are unique (a second file
// with the same name gets -2).
func ParseSpecs(items []string) ([]Spec, error) {
	var out []Spec
	seen := map[string]int{}
	for _, it := range items {
		var s Spec
		switch {
		case it == "host":
			s = Spec{Kind: "host", Label: "host"}
		case strings.HasPrefix(it, "debian:"):
			v := strings.TrimPrefix(it, "debian:")
			if _, ok := debian.Suites[v]; !ok {
				return nil, fmt.Errorf("%w %q: no Debian suite ships %q (have debian:%s)", ErrBadSpec, it, v, strings.Join(debian.Versions(), ", debian:"))
			}
			s = Spec{Kind: "debian", Version: v, Label: "debian-" + v}
		default:
			fi, err := os.Stat(it)
			if err != nil {
				return nil, fmt.Errorf("%w %q: want debian:VERSION, host, or a kernel image file: %v", ErrBadSpec, it, err)
			}
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%w %q: not a regular file", ErrBadSpec, it)
			}
			label := labelUnsafe.ReplaceAllString(filepath.Base(it), "_")
			s = Spec{Kind: "path", Path: it, Label: label}
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
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the list names no kernel", ErrBadSpec)
	}
	return out, nil
}

package kernels

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestParseSpecsArches: a Debian kernel or an image runs once per
// architecture, labelled with it unless it is amd64; the host runs once,
// on its own; the cells of one architecture come together.
func TestParseSpecsArches(t *testing.T) {
	img := filepath.Join(t.TempDir(), "Image")
	os.WriteFile(img, []byte("x"), 0o644)
	specs, err := ParseSpecs([]string{"debian:6.1", "host", img, "debian:6.1"}, []string{"amd64", "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range specs {
		got = append(got, s.Label+"/"+s.Arch)
	}
	want := []string{"debian-6.1/amd64", "host/" + runtime.GOARCH, "Image/amd64", "debian-6.1-arm64/arm64", "Image-arm64/arm64"}
	if len(got) != len(want) {
		t.Fatalf("specs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("spec %d = %s, want %s (all: %v)", i, got[i], want[i], got)
		}
	}
	if _, err := ParseSpecs([]string{"debian:6.1"}, []string{"riscv64"}); !errors.Is(err, ErrBadSpec) {
		t.Errorf("an unknown architecture: err = %v, want ErrBadSpec", err)
	}
	if _, err := ParseSpecs([]string{"debian:6.1"}, nil); !errors.Is(err, ErrBadSpec) {
		t.Errorf("no architecture: err = %v, want ErrBadSpec", err)
	}
}

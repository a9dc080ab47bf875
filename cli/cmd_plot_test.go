package cli

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bpbench/charts"
)

func TestPlotFixture(t *testing.T) {
	dir := fixtureDir(t, "old")
	out := filepath.Join(t.TempDir(), "plots")
	code, stdout, stderr := invoke(t, context.Background(), "plot", dir, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The fixture's Race cases run on the sim and perf backends: one steal
	// chart each, and none under the old single name.
	var stems []string
	for _, stem := range charts.Stems() {
		if slices.Contains(optionalStems, stem) {
			if !strings.Contains(stdout, "plot "+stem+": omitted: ") {
				t.Errorf("%s: not drawn, yet no reason given: %s", stem, stdout)
			}
			continue
		}
		if strings.Contains(stdout, "plot "+stem+": omitted") {
			t.Errorf("the fixture has data for %s, yet: %s", stem, stdout)
		}
		if stem != "race-steals" {
			stems = append(stems, stem)
		}
	}
	stems = append(stems, charts.RaceStealsStem("sim", "other"), charts.RaceStealsStem("perf", "other"))
	for _, stem := range stems {
		for _, ext := range []string{"png", "svg"} {
			path := filepath.Join(out, stem+"."+ext)
			b, err := os.ReadFile(path)
			if err != nil || len(b) < 1000 {
				t.Errorf("%s: %d bytes, %v", path, len(b), err)
				continue
			}
			if ext == "png" {
				cfg, err := png.DecodeConfig(bytes.NewReader(b))
				if err != nil || cfg.Width < 600 {
					t.Errorf("%s: not a readable PNG (%v, %dx%d)", path, err, cfg.Width, cfg.Height)
				}
			}
		}
	}
	if names := dirEntries(t, out); len(names) != 2*len(stems) {
		t.Errorf("plots dir holds %v, want exactly the PNG and SVG of %v", names, stems)
	}
}

// optionalStems are the charts the old fixture has no data for: CPU
// counts and context switches came later.
var optionalStems = []string{"tasks-cpus", "switch-cost", "switch-model-writes", "switch-model-lost", "debuggers-writes"}

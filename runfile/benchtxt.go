package runfile

import (
	"bpbench/bench"
	"bpbench/internal/present"
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// BenchConfig returns the configuration lines of bench.txt, in the order
// benchstat prints them.
func BenchConfig(r *Run) []benchfmt.Config {
	m := r.Machine
	slots := "unknown"
	if m.Slots > 0 {
		slots = strconv.Itoa(m.Slots)
	}
	dirty := "unknown" // without a commit there is no tree to call clean
	if m.Commit != "" {
		dirty = strconv.FormatBool(m.Dirty)
	}
	kv := [][2]string{
		{"goos", m.GOOS},
		{"goarch", m.GOARCH},
		{"cpu", m.CPUModel},
		{"kernel", m.Kernel},
		{"gomaxprocs", strconv.Itoa(m.GOMAXPROCS)},
		{"pinned-cpu", strconv.Itoa(m.PinnedCPU)},
		{"slots", slots},
		{"commit", m.Commit},
		{"dirty", dirty},
		{"mode", r.Mode},
	}
	var cfg []benchfmt.Config
	for _, p := range kv {
		v := p[1]
		if v == "" {
			v = "unknown"
		}
		cfg = append(cfg, benchfmt.Config{Key: p[0], Value: []byte(v), File: true})
	}
	return cfg
}

// WriteBench writes r's results in the Go benchmark format, one line per
// result (so per repetition), with ns/op first and the metrics sorted by
// unit so that lines of one case line up.
func WriteBench(w io.Writer, r *Run) error {
	bw := benchfmt.NewWriter(w)
	cfg := BenchConfig(r)
	suffix := ""
	if r.Machine.GOMAXPROCS > 1 {
		suffix = "-" + strconv.Itoa(r.Machine.GOMAXPROCS)
	}
	for _, res := range r.Results {
		iters := res.Iterations
		if iters < 1 {
			iters = 1
		}
		rec := &benchfmt.Result{
			Config: cfg,
			Name:   benchfmt.Name(BenchName(res.Name) + suffix),
			Iters:  int(iters),
			// Six significant digits are far below any run's noise and
			// keep a full run's bench.txt small.
			Values: []benchfmt.Value{{Value: present.RoundSig(res.NsPerOp, benchDigits), Unit: bench.UnitNsPerOp}},
		}
		for _, unit := range slices.Sorted(maps.Keys(res.Metrics)) {
			v := res.Metrics[unit]
			if math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(unit, " \t") {
				continue
			}
			rec.Values = append(rec.Values, benchfmt.Value{Value: present.RoundSig(v, benchDigits), Unit: unit})
		}
		if err := bw.Write(rec); err != nil {
			return fmt.Errorf("writing %s: %w", BenchFile, err)
		}
	}
	return nil
}

// BenchName turns a result name into a benchmark name (benchfmt.Writer
// adds the "Benchmark" prefix): spaces are not allowed in benchmark names.
func BenchName(name string) string {
	return strings.ReplaceAll(name, " ", "_")
}

// ReadBenchFile parses a bench.txt fully, so a syntax error is reported
// before anything is printed.
func ReadBenchFile(path string) ([]*benchfmt.Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rd := benchfmt.NewReader(bytes.NewReader(b), path)
	var out []*benchfmt.Result
	for rd.Scan() {
		switch rec := rd.Result().(type) {
		case *benchfmt.SyntaxError:
			return nil, rec
		case *benchfmt.Result:
			out = append(out, rec.Clone())
		}
	}
	return out, rd.Err()
}

// benchDigits is the number of significant digits bench.txt keeps.
const benchDigits = 6

package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"

	"bpbench/bench"
)

// File names inside a results directory.
const (
	resultsFile = "results.json"
	// resultsGz is results.json gzipped, written instead of it when the
	// JSON passes gzipThreshold (a full run), so that a reference run
	// stays a few megabytes; every command reads either.
	resultsGz  = resultsFile + ".gz"
	benchFile  = "bench.txt"
	reportFile = "report.md"
	plotsDir   = "plots"
)

// loadRun reads DIR/results.json. A missing or malformed file is a usage
// error: the user named the wrong directory.
func loadRun(dir string) (*bench.Run, error) {
	b, err := readResultsFile(dir)
	if errors.Is(err, os.ErrNotExist) {
		if st, serr := os.Stat(dir); serr == nil && st.IsDir() {
			return nil, notResultsf("%s holds no %s (want a directory written by `bpbench run`)", dir, resultsFile)
		}
	}
	if err != nil {
		return nil, notResultsf("cannot read results directory %q: %v (want a directory written by `bpbench run`, holding %s)", dir, unwrapPath(err), resultsFile)
	}
	var r bench.Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, notResultsf("cannot parse %s: %v (want the bench.Run JSON written by `bpbench run`)", filepath.Join(dir, resultsFile), err)
	}
	// A report of a run that says nothing of where and how it ran would
	// look complete and mean nothing.
	var missing []string
	if r.Machine.GOOS == "" || r.Machine.GOARCH == "" {
		missing = append(missing, "machine")
	}
	if r.Mode == "" {
		missing = append(missing, "mode")
	}
	if r.Started.IsZero() {
		missing = append(missing, "started")
	}
	if len(missing) > 0 {
		return nil, notResultsf("%s records no %s (want the results of a `bpbench run`, which records its machine and configuration)", filepath.Join(dir, resultsFile), strings.Join(missing, ", "))
	}
	return &r, nil
}

// unwrapPath drops the path from an *os.PathError, which the message
// already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers see the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// marshalRun encodes results.json: r in compact form (see compactRun)
// plus the summaries, per case, of every unit's median and interval.
func marshalRun(r *bench.Run) ([]byte, error) {
	c := compactRun(r)
	b, err := json.Marshal(runFile{Run: c, Summaries: fileSummaries(c)})
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", resultsFile, err)
	}
	return append(b, '\n'), nil
}

// benchConfig returns the configuration lines of bench.txt, in the order
// benchstat prints them.
func benchConfig(r *bench.Run) []benchfmt.Config {
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

// writeBench writes r's results in the Go benchmark format, one line per
// result (so per repetition), with ns/op first and the metrics sorted by
// unit so that lines of one case line up.
func writeBench(w io.Writer, r *bench.Run) error {
	bw := benchfmt.NewWriter(w)
	cfg := benchConfig(r)
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
			Name:   benchfmt.Name(benchName(res.Name) + suffix),
			Iters:  int(iters),
			// Six significant digits are far below any run's noise and
			// keep a full run's bench.txt small.
			Values: []benchfmt.Value{{Value: roundSig(res.NsPerOp, benchDigits), Unit: "ns/op"}},
		}
		for _, unit := range sortedKeys(res.Metrics) {
			v := res.Metrics[unit]
			if math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(unit, " \t") {
				continue
			}
			rec.Values = append(rec.Values, benchfmt.Value{Value: roundSig(v, benchDigits), Unit: unit})
		}
		if err := bw.Write(rec); err != nil {
			return fmt.Errorf("writing %s: %w", benchFile, err)
		}
	}
	return nil
}

// benchName turns a result name into a benchmark name (benchfmt.Writer
// adds the "Benchmark" prefix): spaces are not allowed in benchmark names.
func benchName(name string) string {
	return strings.ReplaceAll(name, " ", "_")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readBenchFile parses a bench.txt fully, so a syntax error is reported
// before anything is printed.
func readBenchFile(path string) ([]*benchfmt.Result, error) {
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

// gzipThreshold is the size above which results.json is written gzipped.
var gzipThreshold = 2 << 20

// haveResults reports whether dir holds results.json or results.json.gz.
func haveResults(dir string) bool {
	for _, n := range []string{resultsFile, resultsGz} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// readResultsFile reads DIR/results.json, or DIR/results.json.gz
// decompressed when only that exists.
func readResultsFile(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, resultsFile))
	if !errors.Is(err, os.ErrNotExist) {
		return b, err
	}
	f, gerr := os.Open(filepath.Join(dir, resultsGz))
	if gerr != nil {
		return nil, err // say results.json is missing
	}
	defer f.Close()
	zr, gerr := gzip.NewReader(f)
	if gerr != nil {
		return nil, fmt.Errorf("%s: %w", resultsGz, gerr)
	}
	defer zr.Close()
	b, gerr = io.ReadAll(zr)
	if gerr != nil {
		return nil, fmt.Errorf("%s: %w", resultsGz, gerr)
	}
	return b, nil
}

// encodeResultsFile returns the name and bytes results.json is stored
// as: the JSON itself, or gzipped past gzipThreshold.
func encodeResultsFile(js []byte) (string, []byte, error) {
	if len(js) <= gzipThreshold {
		return resultsFile, js, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return "", nil, err
	}
	if _, err := zw.Write(js); err != nil {
		return "", nil, err
	}
	if err := zw.Close(); err != nil {
		return "", nil, err
	}
	return resultsGz, buf.Bytes(), nil
}

// errNotResults is wrapped by the errors of a directory or file that is
// not the results of a `bpbench run`: the caller named the wrong thing,
// which the command line treats as a usage error.
var errNotResults = errors.New("not bpbench results")

// notResultsError is an error wrapping errNotResults whose message is
// only its own text.
type notResultsError struct{ msg string }

func (e *notResultsError) Error() string { return e.msg }
func (e *notResultsError) Unwrap() error { return errNotResults }

// notResultsf returns a notResultsError with a formatted message.
func notResultsf(format string, args ...any) error {
	return &notResultsError{msg: fmt.Sprintf(format, args...)}
}

// fullCount is --full's default --count: Mann-Whitney U needs at least 4
// values a side before any difference can reach p < 0.05, and 5 gives
// the median's order-statistic interval 94% coverage.
const fullCount = 5

// writeRunFiles writes run's results.json (gzipped past gzipThreshold)
// and bench.txt into dir, each atomically.
func writeRunFiles(dir string, run *bench.Run) error {
	js, err := marshalRun(run)
	if err != nil {
		return err
	}
	name, data, err := encodeResultsFile(js)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, name), data); err != nil {
		return err
	}
	var bt strings.Builder
	if err := writeBench(&bt, run); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, benchFile), []byte(bt.String()))
}

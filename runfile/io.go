package runfile

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// File names inside a results directory.
const (
	ResultsFile = "results.json"
	// resultsGz is results.json gzipped, written instead of it when the
	// JSON passes gzipThreshold (a full run), so that a reference run
	// stays a few megabytes; every command reads either.
	resultsGz  = ResultsFile + ".gz"
	BenchFile  = "bench.txt"
	ReportFile = "report.md"
	PlotsDir   = "plots"
)

// Load reads DIR/results.json. A missing or malformed file is a usage
// error: the user named the wrong directory.
func Load(dir string) (*Run, error) {
	b, err := readResultsFile(dir)
	if errors.Is(err, os.ErrNotExist) {
		if st, serr := os.Stat(dir); serr == nil && st.IsDir() {
			return nil, NotResultsf("%s holds no %s (want a directory written by `bpbench run`)", dir, ResultsFile)
		}
	}
	if err != nil {
		return nil, NotResultsf("cannot read results directory %q: %v (want a directory written by `bpbench run`, holding %s)", dir, UnwrapPath(err), ResultsFile)
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, NotResultsf("cannot parse %s: %v (want the Run JSON written by `bpbench run`)", filepath.Join(dir, ResultsFile), err)
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
		return nil, NotResultsf("%s records no %s (want the results of a `bpbench run`, which records its machine and configuration)", filepath.Join(dir, ResultsFile), strings.Join(missing, ", "))
	}
	return &r, nil
}

// UnwrapPath drops the path from an *os.PathError, which the message
// already names.
func UnwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers see the old file or the new one.
func WriteFileAtomic(path string, data []byte) error {
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

// Marshal encodes results.json: r in compact form (see compactRun)
// plus the summaries, per case, of every unit's median and interval.
func Marshal(r *Run) ([]byte, error) {
	c := compactRun(r)
	b, err := json.Marshal(RunFile{Run: c, Summaries: fileSummaries(c)})
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", ResultsFile, err)
	}
	return append(b, '\n'), nil
}

// gzipThreshold is the size above which results.json is written gzipped.
var gzipThreshold = 2 << 20

// HaveResults reports whether dir holds results.json or results.json.gz.
func HaveResults(dir string) bool {
	for _, n := range []string{ResultsFile, resultsGz} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// readResultsFile reads DIR/results.json, or DIR/results.json.gz
// decompressed when only that exists.
func readResultsFile(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, ResultsFile))
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
		return ResultsFile, js, nil
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

// ErrNotResults is wrapped by the errors of a directory or file that is
// not the results of a `bpbench run`: the caller named the wrong thing,
// which the command line treats as a usage error.
var ErrNotResults = errors.New("not bpbench results")

// notResultsError is an error wrapping errNotResults whose message is
// only its own text.
type notResultsError struct{ msg string }

func (e *notResultsError) Error() string { return e.msg }
func (e *notResultsError) Unwrap() error { return ErrNotResults }

// NotResultsf returns a notResultsError with a formatted message.
func NotResultsf(format string, args ...any) error {
	return &notResultsError{msg: fmt.Sprintf(format, args...)}
}

// FullCount is --full's default --count: Mann-Whitney U needs at least 4
// values a side before any difference can reach p < 0.05, and 5 gives
// the median's order-statistic interval 94% coverage.
const FullCount = 5

// Write writes run's results.json (gzipped past gzipThreshold)
// and bench.txt into dir, each atomically.
func Write(dir string, run *Run) error {
	js, err := Marshal(run)
	if err != nil {
		return err
	}
	name, data, err := encodeResultsFile(js)
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(dir, name), data); err != nil {
		return err
	}
	var bt strings.Builder
	if err := WriteBench(&bt, run); err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, BenchFile), []byte(bt.String()))
}

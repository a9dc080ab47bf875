package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
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

// parseFlags parses args with fs, allowing flags after positional
// arguments ("plot DIR --out x"), and returns the positional ones. Errors
// are usage errors that name the bad flag and list the accepted ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, flag.ErrHelp
			}
			return nil, usagef("%s: %v (accepted flags: %s)", fs.Name(), err, flagNames(fs))
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseCommand parses a subcommand's arguments as parseFlags does; on -h
// or --help it prints the usage to stdout and returns help = true, which
// the subcommand answers by returning err (nil) at once.
func parseCommand(fs *flag.FlagSet, args []string, stdout io.Writer) (pos []string, help bool, err error) {
	pos, err = parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, commandUsage(fs))
		return nil, true, nil
	}
	return pos, false, err
}

// commandUsage is a command's --help: its synopsis, what it does, and
// every flag with its default.
func commandUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	c := lookupCommand(fs.Name())
	if c == nil {
		c = &command{name: fs.Name()}
	}
	fmt.Fprintf(&b, "Usage: %s\n", c.synopsis())
	if c.summary != "" {
		fmt.Fprintf(&b, "\n%s\n", c.summary)
	}
	if c.more != "" {
		fmt.Fprintf(&b, "%s\n", c.more)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		b.WriteString("\nNo flags.\n")
		return b.String()
	}
	b.WriteString("\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg, text := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(&b, "  --%s%s\n        %s", f.Name, arg, text)
		bf, isBool := f.Value.(interface{ IsBoolFlag() bool })
		switch {
		case strings.Contains(text, "default"):
		case isBool && bf.IsBoolFlag() && f.DefValue == "false":
			b.WriteString(" (default off)")
		default:
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	return b.String()
}

// loadRunArg loads the run of the one results directory a subcommand
// takes; cmd and synopsis name the subcommand in the usage error.
func loadRunArg(pos []string, cmd, synopsis string) (*bench.Run, error) {
	if len(pos) != 1 {
		return nil, usagef("%s: want exactly one results directory, got %d arguments (usage: %s)", cmd, len(pos), synopsis)
	}
	return loadRun(pos[0])
}

func flagNames(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// loadRun reads DIR/results.json. A missing or malformed file is a usage
// error: the user named the wrong directory.
func loadRun(dir string) (*bench.Run, error) {
	b, err := readResultsFile(dir)
	if errors.Is(err, os.ErrNotExist) {
		if st, serr := os.Stat(dir); serr == nil && st.IsDir() {
			return nil, usagef("%s holds no %s (want a directory written by `bpbench run`)", dir, resultsFile)
		}
	}
	if err != nil {
		return nil, usagef("cannot read results directory %q: %v (want a directory written by `bpbench run`, holding %s)", dir, unwrapPath(err), resultsFile)
	}
	var r bench.Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, usagef("cannot parse %s: %v (want the bench.Run JSON written by `bpbench run`)", filepath.Join(dir, resultsFile), err)
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
		return nil, usagef("%s records no %s (want the results of a `bpbench run`, which records its machine and configuration)", filepath.Join(dir, resultsFile), strings.Join(missing, ", "))
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

// caseSummary is one case of a run with its repetitions folded together:
// the median of every figure, the latency and window histograms with the
// most samples.
type caseSummary struct {
	Experiment string
	Name       string
	Params     map[string]string // key=value parts of Name, then Result.Params
	Reps       int
	Iterations int64 // summed over repetitions
	NsPerOp    float64
	// NsMin and NsMax are the extremes of NsPerOp over the repetitions:
	// the run-to-run spread that update-cost draws as whiskers.
	NsMin, NsMax float64
	Metrics      map[string]float64
	// CI holds, per unit ("ns/op" and every metric), the median and its
	// interval: over runs when the case ran more than once, else over
	// the run's batches (bench.Result.Batches), else a single value.
	CI      map[string]Interval
	Latency *bench.Histogram
	Window  *bench.Histogram
}

// Family returns the first element of the name ("Update", "Race", ...).
func (c *caseSummary) Family() string {
	f, _, _ := strings.Cut(c.Name, "/")
	return f
}

// Metric returns a metric, and whether the case reported it.
func (c *caseSummary) Metric(unit string) (float64, bool) {
	v, ok := c.Metrics[unit]
	return v, ok
}

// nameParams parses the key=value elements of a benchmark name.
func nameParams(name string) map[string]string {
	p := map[string]string{}
	for _, part := range strings.Split(name, "/")[1:] {
		if k, v, ok := strings.Cut(part, "="); ok {
			p[k] = v
		}
	}
	return p
}

// summarize folds repetitions of the same case, keeping first-seen order.
func summarize(r *bench.Run) []*caseSummary {
	byName := map[string][]bench.Result{}
	var order []string
	for _, res := range r.Results {
		if _, ok := byName[res.Name]; !ok {
			order = append(order, res.Name)
		}
		byName[res.Name] = append(byName[res.Name], res)
	}
	out := make([]*caseSummary, 0, len(order))
	for _, name := range order {
		reps := byName[name]
		cs := &caseSummary{Experiment: reps[0].Experiment, Name: name, Reps: len(reps), Metrics: map[string]float64{}}
		cs.Params = map[string]string{}
		for k, v := range reps[0].Params {
			cs.Params[k] = v
		}
		for k, v := range nameParams(name) {
			cs.Params[k] = v
		}
		var ns []float64
		units := map[string][]float64{}
		for _, res := range reps {
			cs.Iterations += res.Iterations
			ns = append(ns, res.NsPerOp)
			for u, v := range res.Metrics {
				units[u] = append(units[u], v)
			}
			if h := res.Latency; h != nil && (cs.Latency == nil || h.Count > cs.Latency.Count) {
				cs.Latency = h
			}
			if h := res.Window; h != nil && (cs.Window == nil || h.Count > cs.Window.Count) {
				cs.Window = h
			}
		}
		cs.NsPerOp = median(ns)
		cs.NsMin, cs.NsMax = slices.Min(ns), slices.Max(ns)
		for u, vs := range units {
			cs.Metrics[u] = median(vs)
		}
		units["ns/op"] = ns
		cs.CI = map[string]Interval{}
		for u, vs := range units {
			switch b := reps[0].Batches[u]; {
			case len(vs) > 1:
				cs.CI[u] = medianInterval(vs, "runs")
			case len(b) > 1:
				cs.CI[u] = medianInterval(b, "batches")
			default:
				cs.CI[u] = medianInterval(vs, "runs")
			}
		}
		out = append(out, cs)
	}
	return out
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// family returns the summaries whose name starts with fam + "/".
func family(all []*caseSummary, fam string) []*caseSummary {
	var out []*caseSummary
	for _, c := range all {
		if c.Family() == fam {
			out = append(out, c)
		}
	}
	return out
}

// fmtNs formats a duration in nanoseconds with a readable unit.
func fmtNs(ns float64) string {
	switch {
	case ns >= 1e9:
		return trimFloat(ns/1e9) + " s"
	case ns >= 1e6:
		return trimFloat(ns/1e6) + " ms"
	case ns >= 1e3:
		return trimFloat(ns/1e3) + " µs"
	}
	return trimFloat(ns) + " ns"
}

// trimFloat prints 3 significant digits without exponent.
func trimFloat(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// ratio formats a/b as "3.4×", or "n/a" when b is zero.
// cheaper says how much cheaper the cost ours is than theirs ("2.03×
// cheaper"), or, when it is not, how much dearer ("1.07× more expensive"),
// so a report never calls a 0.93 ratio "cheaper".
func cheaper(theirs, ours float64) string {
	if ours == 0 || theirs == 0 || math.IsNaN(theirs/ours) {
		return "n/a cheaper"
	}
	if theirs >= ours {
		return trimFloat(theirs/ours) + "× cheaper"
	}
	return trimFloat(ours/theirs) + "× more expensive"
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "n/a"
	}
	return trimFloat(a/b) + "×"
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

// unitIn returns the first of units that some case in cs reports, so that
// readers follow a renamed metric (Apply's ns/thread became
// ns/change-thread) and still read older result files; "" if none.
func unitIn(cs []*caseSummary, units ...string) string {
	for _, u := range units {
		for _, c := range cs {
			if _, ok := c.Metrics[u]; ok {
				return u
			}
		}
	}
	return ""
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

package harness

// Machine records where a run happened. Every result file carries one.
type Machine struct {
	Host       string `json:"host"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPUModel   string `json:"cpu"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go_version"`
	Commit     string `json:"commit,omitempty"`
	// Dirty says the working tree had uncommitted changes to tracked
	// files when the binary was built (or, without build VCS stamps,
	// when the run started).
	Dirty bool `json:"dirty"`
	// Slots is the number of breakpoints one thread could hold when the
	// run started (probed with perf_event_open; 0 when unknown).
	Slots int `json:"slots,omitempty"`
	// PinnedCPU is the CPU tracer threads were pinned to (Options.PinCPU).
	PinnedCPU int `json:"pinned_cpu"`
}

// Histogram summarises a latency distribution in nanoseconds.
type Histogram struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min_ns"`
	Mean  float64 `json:"mean_ns"`
	P50   float64 `json:"p50_ns"`
	P90   float64 `json:"p90_ns"`
	P99   float64 `json:"p99_ns"`
	P999  float64 `json:"p999_ns"`
	Max   float64 `json:"max_ns"`
	// CDF holds (upper bound ns, cumulative fraction) points for plots.
	CDF []CDFPoint `json:"cdf,omitempty"`
}

// CDFPoint is one point of a cumulative distribution.
type CDFPoint struct {
	NS       float64 `json:"ns"`
	Fraction float64 `json:"fraction"`
}

// Timer is the part of *testing.B a case uses to keep setup out of timing.
type Timer interface {
	ResetTimer()
	StartTimer()
	StopTimer()
}

// NopTimer is the Timer of runs outside `go test`.
var NopTimer Timer = nopTimer{}

type nopTimer struct{}

func (nopTimer) ResetTimer() {}
func (nopTimer) StartTimer() {}
func (nopTimer) StopTimer()  {}

package runfile

import (
	"time"

	"bpbench/bench"
	"bpbench/conform"
)

// Skip records a case that could not run and why.
type Skip struct {
	Experiment string `json:"experiment"`
	Name       string `json:"name"`
	Reason     string `json:"reason"`
}

// Run is everything one `bpbench run` produced; it is results.json.
type Run struct {
	Machine  bench.Machine  `json:"machine"`
	Mode     string         `json:"mode"` // "quick" or "full"
	Started  time.Time      `json:"started"`
	Duration time.Duration  `json:"duration_ns"`
	Results  []bench.Result `json:"results"`
	Skipped  []Skip         `json:"skipped,omitempty"`
	// Failed lists cases that returned an error other than a skip.
	Failed []Failure `json:"failed,omitempty"`
	// Conformance is the model checked in lockstep against the live
	// kernel at the start of the run (conform.Run, quick form), with the
	// kernel facts the model assumes; Note says why when it could not run.
	Conformance *conform.Report `json:"conformance,omitempty"`
}

// Failure records a case that failed and its error.
type Failure struct {
	Experiment string `json:"experiment"`
	Name       string `json:"name"`
	Error      string `json:"error"`
}

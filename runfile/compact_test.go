package runfile

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"bpbench/bench"
	"bpbench/internal/present"
)

// TestResultsFileCompact: results.json keeps a bounded number of rounded
// CDF points, on the repetition the plots draw only, and carries every
// case's intervals; compacting twice changes nothing.
func TestResultsFileCompact(t *testing.T) {
	var cdf []bench.CDFPoint
	for i := 1; i <= 1000; i++ {
		cdf = append(cdf, bench.CDFPoint{NS: 10 * math.Pow(1.01, float64(i)), Fraction: 1 - math.Pow(0.99, float64(i))})
	}
	hist := func(count uint64) *bench.Histogram {
		return &bench.Histogram{Count: count, P50: 12.345678901, CDF: cdf}
	}
	run := &Run{Machine: bench.Machine{GOOS: "linux", GOARCH: "amd64"}, Mode: "full", Started: time.Unix(1e9, 0).UTC()}
	for i, count := range []uint64{10, 30, 30, 20, 5} {
		run.Results = append(run.Results, bench.Result{Name: "Update/op=modify", Iterations: 10, NsPerOp: 10 + float64(i), Latency: hist(count),
			Batches: map[string][]float64{"ns/op": {1.23456789, 2, 3, 4}}})
	}
	js, err := Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Run
		Summaries []fileSummary `json:"summaries"`
	}
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	for i, r := range back.Results {
		n := len(r.Latency.CDF)
		switch {
		case i == 1 && (n == 0 || n > maxCDFPoints):
			t.Errorf("plotted repetition keeps %d CDF points, want 1..%d", n, maxCDFPoints)
		case i != 1 && n != 0:
			t.Errorf("repetition %d keeps %d CDF points no plot draws", i, n)
		}
		if r.Latency.P50 != 12.345678901 || r.Latency.Count != run.Results[i].Latency.Count {
			t.Errorf("histogram summary changed: %+v", r.Latency)
		}
		if r.Batches != nil {
			t.Errorf("5 runs of a case, yet its batches are kept: %v", r.Batches)
		}
	}
	c := back.Results[1].Latency.CDF
	if c[0].NS != 10.1 || c[len(c)-1].Fraction != present.RoundSig(cdf[len(cdf)-1].Fraction, cdfDigits+2) {
		t.Errorf("thinned CDF lost its ends: %v ... %v", c[0], c[len(c)-1])
	}
	var p99 bool
	for _, p := range c {
		p99 = p99 || (p.Fraction >= 0.99 && p.Fraction < 0.9901)
	}
	if !p99 {
		t.Errorf("thinned CDF lost the p99 point: %v", c)
	}
	if len(back.Summaries) != 1 || back.Summaries[0].Reps != 5 || back.Summaries[0].CI["ns/op"].N != 5 || back.Summaries[0].CI["ns/op"].Median != 12 {
		t.Errorf("summaries %+v", back.Summaries)
	}
	again, err := Marshal(&back.Run)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, again) {
		t.Error("results.json changes when written again")
	}
	// A case run once keeps its batches, rounded.
	one := &Run{Machine: run.Machine, Mode: "quick", Started: run.Started, Results: run.Results[:1]}
	if b := compactRun(one).Results[0].Batches["ns/op"]; len(b) != 4 || b[0] != 1.2346 {
		t.Errorf("batches of a single run %v, want all 4 at 5 significant digits", b)
	}
	if full, _ := json.Marshal(run); len(js) > len(full)/5 {
		t.Errorf("results.json %d bytes, uncompacted %d: not compact", len(js), len(full))
	}
}

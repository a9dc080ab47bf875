package bench

import (
	"context"
	"strings"
	"testing"

	"bpbench/internal/testenv"
)

// runCases runs each case as a sub-benchmark named after the part of its
// name below prefix ("Update/backend=sim/op=modify" under "Update" runs as
// b.Run("backend=sim/op=modify")), with b.N operations, and reports the
// case's metrics. Cases that cannot run here skip with their reason.
func runCases(b *testing.B, prefix string, cases []Case) {
	b.Helper()
	for _, c := range cases {
		name := strings.TrimPrefix(strings.TrimPrefix(c.Name, prefix), "/")
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			res, err := c.Run(context.Background(), int64(b.N), b)
			testenv.SkipIfUnsupported(b, err)
			if err != nil {
				b.Fatal(err)
			}
			for unit, v := range res.Metrics {
				b.ReportMetric(v, unit)
			}
			// The case's own ns/op replaces go test's: the timer also
			// runs over the sampled operations (TimeLoop leaves the
			// sampler's cost out of ns/op) and, for the kernel cases,
			// over one run where the case reports the median of several.
			if res.NsPerOp > 0 {
				b.ReportMetric(res.NsPerOp, "ns/op")
			}
		})
	}
}

// lookup returns the named experiment, failing tb if it does not exist.
func lookup(tb testing.TB, name string) Experiment {
	tb.Helper()
	e, err := Lookup(name)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// casesOf returns the named experiment's cases for opts, failing tb if it
// does not exist or refuses opts.
func casesOf(tb testing.TB, name string, opts Options) []Case {
	tb.Helper()
	cs, err := lookup(tb, name).Cases(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

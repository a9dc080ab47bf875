package hwregs

import "testing"

// benchUpdatePerf runs BenchmarkUpdate's backend=perf cases.
// Placeholder until the perf backend lands.
func benchUpdatePerf(b *testing.B) { b.Skip("perf backend not implemented yet") }

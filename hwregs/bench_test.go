package hwregs

import "testing"

// BenchmarkUpdate compares ways of changing a held breakpoint on each
// backend: BenchmarkUpdate/backend=sim/strategy=S/op=..., backend=ptrace/op=...,
// backend=perf/op=...
func BenchmarkUpdate(b *testing.B) {
	b.Run("backend=sim", benchUpdateSim)
	b.Run("backend=ptrace", benchUpdatePtrace)
	b.Run("backend=perf", benchUpdatePerf)
}

// benchUpdateSim runs the backend=sim cases. Placeholder until the Writer lands.
func benchUpdateSim(b *testing.B) { b.Skip("sim backend not implemented yet") }

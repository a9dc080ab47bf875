package hwregs

import "testing"

// benchUpdatePtrace runs BenchmarkUpdate's backend=ptrace cases.
// Placeholder until the ptrace backend lands.
func benchUpdatePtrace(b *testing.B) { b.Skip("ptrace backend not implemented yet") }

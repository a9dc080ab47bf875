//go:build !amd64 && !arm64

package harness

import "time"

// epoch is the origin of Now's readings.
var epoch = time.Now()

// Now reads the monotonic clock in nanoseconds where bpbench has no cycle
// counter to read.
func Now() Ticks { return Ticks(time.Since(epoch)) }

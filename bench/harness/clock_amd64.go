package harness

import "github.com/loov/hrtime"

// Now reads the time-stamp counter (RDTSC).
func Now() Ticks { return hrtime.TSC() }

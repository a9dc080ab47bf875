// Package harness is what bench's experiments are measured with, kept apart
// from the experiments themselves: the TSC clock and latency Recorder (with
// Lap and TimeOps, the one timed loop), the competitor Pacer, the pinned
// worker runner, the Scenario every case is described by, and the Machine a
// run happened on. Nothing here knows about breakpoints.
package harness

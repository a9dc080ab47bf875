// Package harness is what bench's experiments are measured with, kept apart
// from the experiments themselves: the TSC clock and latency Recorder; the
// timed loops (TimeLoop and Worker.Loop time half of each chunk of ops in
// bulk for ns/op and within-run batches, and sample the other half one by
// one with the sampler's measured tare taken out; TimeOps samples every op);
// the competitor Pacer; the pinned worker runner; the Scenario every case
// is described by; the Machine a run happened on and the Noise recorded
// around each case. Nothing here knows about breakpoints.
package harness

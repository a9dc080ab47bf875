// Package runfile is the schema of a results directory and its I/O: what
// one `bpbench run` produced (Run, with its Results, Skips and Failures),
// results.json (gzipped past a size, compacted so a reference run can be
// committed), bench.txt in the Go benchmark format that benchstat reads,
// and the per-case summaries (Case: repetitions folded, every unit's
// median with its 95% interval) that the report, the plots and compare
// read. Files are written atomically.
//
// The package is named runfile, not results, because results/ is the
// directory the runs themselves are kept in.
package runfile

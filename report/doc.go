// Package report turns a run into report.md and compares two runs
// (compare.go) as benchstat does.
//
// report.md answers first: failed cases and strategies that broke the
// admission rules, then a table with one row per design question (each
// section adds its rows through reportWriter.verdict while it writes its
// detail, so a section for a new question brings its answer along), the
// machine and the run's standard interval (named once; only figures from
// another source say where theirs comes from), and the detail, one file
// per experiment's section. A comparison is stated only where the
// intervals separate. format.go and verdict.go hold how figures and
// comparisons are worded; noise.go decides which runs were loaded.
package report

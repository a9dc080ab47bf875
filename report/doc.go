// Package report turns a run into report.md, which answers each design
// question with the measured figures, their intervals and a verdict only
// where the intervals separate, and compares two runs (compare.go) as
// benchstat does. One file per experiment's section; format.go and
// verdict.go hold how figures and comparisons are worded.
package report

// Package stats holds the few statistics every verdict rests on: the
// median, the distribution-free (order-statistic) interval of the median
// with its exact coverage, the Wilson interval of a proportion, and how
// many values two overlapping intervals would need to separate.
package stats

package stats

import "slices"

// Median returns the median of vs (the mean of the middle two for an even
// count, 0 for none); vs is not reordered.
func Median(vs []float64) float64 {
	n := len(vs)
	if n == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Package present holds the wording that report and charts share: numbers
// with readable units and significant digits, and the labels of backends,
// placements and interval sources.
package present

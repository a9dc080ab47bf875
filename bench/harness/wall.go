package harness

import (
	"time"
)

// wallBatches cuts the shared wall-clock interval of a RunWorkers call
// (from begin, elapsed long) into up to MaxBatches equal slices and
// returns, per slice, the operations all workers completed in it per
// second, divided by netOf (1 minus the sampler's share of the CPUs) to
// be on the scale of WallOpsPerSec. A worker's completed operations at a
// time come from its loop's log: where it stood at each logged chunk end,
// linear in between, nothing before its start and all of them after its
// end. No goroutine watches the workers, so nothing but their own chunk
// ends is added to the measured interval. Nil with fewer than two slices.
func wallBatches(ws []*Worker, begin Ticks, elapsed time.Duration, netOf float64) []float64 {
	var points [][]wallPoint
	for _, w := range ws {
		if w.Done == 0 {
			continue
		}
		points = append(points, w.loop.log.wallPoints(begin))
	}
	return cutWall(points, elapsed, netOf)
}

// wallPoint is where one loop stood: ops done at a time since the start.
type wallPoint struct {
	at  float64 // ns
	ops float64
}

// wallPoints returns the log's chunk ends as wall points from begin,
// starting with (0, 0).
func (b *batchLog) wallPoints(begin Ticks) []wallPoint {
	pts := make([]wallPoint, 0, b.n+1)
	pts = append(pts, wallPoint{})
	for i := 0; i < b.n; i++ {
		if b.upto[i] == 0 {
			continue
		}
		pts = append(pts, wallPoint{at: TicksToNs(b.end[i] - begin), ops: float64(b.upto[i])})
	}
	return pts
}

// opsAt is a loop's completed operations at time t (ns), linear between
// its points.
func opsAt(pts []wallPoint, t float64) float64 {
	if t <= pts[0].at {
		return pts[0].ops
	}
	for i := 1; i < len(pts); i++ {
		if t <= pts[i].at {
			a, b := pts[i-1], pts[i]
			if b.at <= a.at {
				return b.ops
			}
			return a.ops + (b.ops-a.ops)*(t-a.at)/(b.at-a.at)
		}
	}
	return pts[len(pts)-1].ops
}

// cutWall is wallBatches over the loops' points: the slices are as many
// as the finest log allows at two chunk ends a slice (a loop that barely
// ran, starved by the scheduler, is interpolated between its few points;
// it completed few operations either way).
func cutWall(loops [][]wallPoint, elapsed time.Duration, netOf float64) []float64 {
	if len(loops) == 0 || netOf <= 0 || elapsed <= 0 {
		return nil
	}
	nb := 0
	for _, pts := range loops {
		nb = max(nb, (len(pts)-1)/2)
	}
	nb = min(nb, MaxBatches)
	if nb < 2 {
		return nil
	}
	T := float64(elapsed.Nanoseconds())
	out := make([]float64, nb)
	prev := 0.0
	for k := 1; k <= nb; k++ {
		t := T * float64(k) / float64(nb)
		var ops float64
		for _, pts := range loops {
			ops += opsAt(pts, t)
		}
		out[k-1] = (ops - prev) / (T / float64(nb)) * 1e9 / netOf
		prev = ops
	}
	return out
}

package bench

import (
	"math"
	"strconv"
	"time"

	"bpbench/bench/harness"
)

// raceStats is what one race run counted; every backend fills it and
// its result method turns it into a Result.
type raceStats struct {
	changes int64             // holder changes completed
	elapsed time.Duration     // wall time of the holder's loop
	lost    int64             // re-registrations refused (ENOSPC / ErrNoSlot)
	moved   int64             // re-registrations that got another register
	latency *harness.Recorder // time per change, recovery included
	window  *harness.Recorder // release -> successful reserve, retries included
	unarmed *harness.Recorder // disarming write -> last arming write, re-register only
	recover *harness.Recorder // first refusal -> successful reserve

	exposure *harness.Recorder // release -> the holder's first reservation after it returns

	compAttempts uint64        // competitor reservations tried
	compWins     uint64        // competitor reservations admitted
	compElapsed  time.Duration // how long the competitors ran
	compHeld     time.Duration // how long they spent in admitted attempts, summed
	compOnCPU    time.Duration // how long their threads ran, summed
	hasOnCPU     bool          // compOnCPU was measured
	compCPU      int           // CPU the competitors are pinned to, -1 for none

	batches []raceBatch // adaptive runs: one per chunk of changes

	spurious    uint64 // alloc.SpuriousRefusals over the run
	hasSpurious bool
}

func newRaceStats() *raceStats {
	return &raceStats{latency: harness.NewRecorder(), window: harness.NewRecorder(), unarmed: harness.NewRecorder(),
		recover: harness.NewRecorder(), exposure: harness.NewRecorder(), compCPU: -1}
}

// steals is the number of changes that lost their slot or register.
func (st *raceStats) steals() int64 { return st.lost + st.moved }

// result fills a Result from the counts; extra adds backend-specific
// Params.
func (st *raceStats) result(s raceSpec, opts Options, cpus int, extra map[string]string) Result {
	cc := "none"
	if st.compCPU >= 0 {
		cc = strconv.Itoa(st.compCPU)
	}
	p := commonParams(s.scenario(opts, cpus, st.changes),
		"mode", s.mode, "competitors", strconv.Itoa(s.competitors), "rate", s.label(),
		"place", s.place, "competitor_cpu", cc, "predictor", "paced")
	for k, v := range extra {
		p[k] = v
	}
	res := Result{
		Experiment: "race",
		Name:       s.name(),
		Params:     p,
		Iterations: st.changes,
		Metrics:    map[string]float64{},
		Latency:    st.latency.Summary(),
		Window:     st.window.Summary(),
	}
	n := float64(max(st.changes, 1))
	res.NsPerOp = float64(st.elapsed.Nanoseconds()) / n
	m := res.Metrics
	m[MetricChanges] = float64(st.changes)
	m[MetricSteals] = float64(st.steals()) / n
	m[MetricStealsLo], m[MetricStealsHi], m["steals-dispersion"] = st.stealInterval()
	m[MetricLost] = float64(st.lost) / n
	m[MetricMoved] = float64(st.moved) / n
	m[MetricCompWins] = float64(st.compWins) / n
	// The achieved rate per competitor is that of its refused attempts
	// over the time it was not in an admitted one: a window opens with
	// the holder owning every slot, so this is the rate at which attempts
	// arrive in it; after a steal an unlimited competitor spends most of
	// its time holding the slot it keeps re-taking, which would otherwise
	// count as a low rate. Every attempt targets the holder's CPU; without
	// competitors the rate is 0. competitor-attempts/s counts every
	// attempt over the whole time.
	//
	// A competitor attempts only while its thread runs: on a loaded
	// machine other processes take its CPU for whole time slices. The
	// prediction therefore uses the fraction of the time its thread ran
	// (competitor-oncpu, from its thread's CPU time) and its
	// rate while running; the two agree with rate-achieved/s wherever a
	// window is short against the attempt interval.
	rate, rateOn, onCPU := 0.0, 0.0, 1.0
	if s.competitors > 0 && st.compElapsed > 0 {
		k := float64(s.competitors)
		m[MetricCompAttempts] = float64(st.compAttempts) / k / st.compElapsed.Seconds()
		refused := float64(st.compAttempts - st.compWins)
		if free := k*st.compElapsed.Seconds() - st.compHeld.Seconds(); free > 0 {
			rate, rateOn = refused/free, refused/free
		}
		if st.hasOnCPU {
			onCPU = math.Min(1, st.compOnCPU.Seconds()/(k*st.compElapsed.Seconds()))
			m["competitor-oncpu"] = onCPU
			if run := st.compOnCPU.Seconds() - st.compHeld.Seconds(); run > 0 {
				rateOn = refused / run
			}
		}
	}
	m[MetricRateAchieved] = rate
	m[MetricStealsPredicted] = 0
	if h := st.exposure.Summary(); h != nil {
		m[MetricStealsPredicted] = predictSteals(h.CDF, rateOn, onCPU, s.competitors)
	}
	m["exposure-ns/p50"], m["exposure-ns/p99"] = st.exposure.Quantile(0.5), st.exposure.Quantile(0.99)
	if len(st.batches) > 1 {
		res.Batches = map[string][]float64{}
		for _, b := range st.batches {
			bn := float64(max(b.changes, 1))
			res.Batches[MetricSteals] = append(res.Batches[MetricSteals], float64(b.steals)/bn)
			res.Batches[UnitNsPerOp] = append(res.Batches[UnitNsPerOp], float64(b.elapsed.Nanoseconds())/bn)
		}
	}
	if res.Latency != nil {
		m[MetricP50] = res.Latency.P50
		m[MetricP99] = res.Latency.P99
	}
	// Modify never releases the slot, so its window is empty by
	// construction; report it as 0 so every case has the same metrics.
	m[MetricWindowP50], m[MetricWindowP99] = 0, 0
	if res.Window != nil {
		m[MetricWindowP50], m[MetricWindowP99] = res.Window.P50, res.Window.P99
	}
	// Likewise modify never disarms the slot (see the experiment's doc).
	m[MetricUnarmedP50], m[MetricUnarmedP99] = 0, 0
	if st.unarmed.Count() > 0 {
		m[MetricUnarmedP50], m[MetricUnarmedP99] = st.unarmed.Quantile(0.5), st.unarmed.Quantile(0.99)
	}
	m["recover-ns/p50"], m["recover-ns/p99"] = 0, 0
	if st.recover.Count() > 0 {
		m["recover-ns/p50"], m["recover-ns/p99"] = st.recover.Quantile(0.5), st.recover.Quantile(0.99)
	}
	if st.hasSpurious {
		m[MetricSpurious] = float64(st.spurious)
	}
	return res
}

// stopCompetitors halts c, waits for its competitors and adds what they
// did to st.
func stopCompetitors(c *harness.Competitors, st *raceStats) error {
	cs, err := c.Stop()
	if cs.CPU >= 0 {
		st.compCPU = cs.CPU
	}
	st.compElapsed += cs.Elapsed
	st.compAttempts += cs.Attempts
	st.compWins += cs.Wins
	st.compHeld += cs.Held
	st.compOnCPU += cs.OnCPU
	st.hasOnCPU = cs.HasOnCPU
	return err
}

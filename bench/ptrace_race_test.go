package bench

import (
	"context"
	"testing"

	"bpbench/internal/testenv"
)

// ptraceRaceRun runs one ptrace-race case and checks what every race
// Result must have (checkRaceResult), under the experiment's own name.
func ptraceRaceRun(t *testing.T, s raceSpec, n int64, hooks raceHooks) Result {
	t.Helper()
	res, err := runRacePtrace(context.Background(), s, Options{}, n, NopTimer, hooks)
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if res.Experiment != "ptrace-race" {
		t.Fatalf("%s: experiment %q, want ptrace-race", res.Name, res.Experiment)
	}
	c := res
	c.Experiment = "race" // the rest of the Result is the race experiment's
	checkRaceResult(t, s, c, n)
	if res.Params["registers"] != "ptrace" || res.Params[ParamBackend] != "ptrace" {
		t.Errorf("%s: params %v, want backend and registers ptrace", res.Name, res.Params)
	}
	return res
}

// TestPtraceRaceModifyNeverSteals: with real pokes in every change,
// modify keeps the slot against an unlimited competitor, on every
// strategy, and the competitor is never admitted (no over-admission).
func TestPtraceRaceModifyNeverSteals(t *testing.T) {
	testenv.LockDebugRegs(t)
	for _, st := range strategies(t) {
		s := raceSpec{backend: "ptrace", strategy: st, mode: raceModify, raceRate: raceRate{competitors: 1, place: testPlaces()[len(testPlaces())-1]}}
		res := ptraceRaceRun(t, s, 500, raceHooks{})
		checkModifyKept(t, res, "competitor", t.Errorf)
	}
}

// TestPtraceRaceReregisterSteals: re-registering through real pokes never
// loses the slot without competitors, and loses it exactly when a
// competitor reserves inside the window (every 10th one here), recovering
// every time with all four breakpoints kept.
func TestPtraceRaceReregisterSteals(t *testing.T) {
	testenv.LockDebugRegs(t)
	const n, every = 500, 10
	for _, st := range strategies(t) {
		quiet := ptraceRaceRun(t, raceSpec{backend: "ptrace", strategy: st, mode: raceReregister, raceRate: raceRate{place: placeNone}}, 300, raceHooks{})
		if quiet.Metrics[MetricSteals] != 0 {
			t.Errorf("%s: steals/op = %g without competitors", quiet.Name, quiet.Metrics[MetricSteals])
		}
		s := raceSpec{backend: "ptrace", strategy: st, mode: raceReregister, raceRate: raceRate{place: placeNone}}
		res := ptraceRaceRun(t, s, n, raceHooks{stealEvery: every})
		if got, want := res.Metrics[MetricLost], 1.0/every; got != want {
			t.Errorf("%s with a steal in every %dth window: lost/op = %g, want %g", res.Name, every, got, want)
		}
		if rec := res.Metrics["recover-ns/p50"]; rec <= 0 {
			t.Errorf("%s: recover-ns/p50 = %g after steals", res.Name, rec)
		}
		// checkRaceResult has checked unarmed >= window > 0; the pokes
		// (DR7 off, DR[i], DR7 on) are outside the window and inside the
		// unarmed time.
		t.Logf("%s: unarmed p50 %.0f ns p99 %.0f ns, window p50 %.0f ns p99 %.0f ns", quiet.Name,
			quiet.Metrics[MetricUnarmedP50], quiet.Metrics[MetricUnarmedP99], quiet.Metrics[MetricWindowP50], quiet.Metrics[MetricWindowP99])
	}
}

// TestPtraceRaceCompetitor: an unlimited real competitor against
// re-registration through ptrace; it logs the measured steal rate (which
// depends on scheduling, so it is measured, not asserted).
func TestPtraceRaceCompetitor(t *testing.T) {
	testenv.LockDebugRegs(t)
	s := raceSpec{backend: "ptrace", strategy: strategies(t)[0], mode: raceReregister, raceRate: raceRate{competitors: 1, place: testPlaces()[len(testPlaces())-1]}}
	res := ptraceRaceRun(t, s, 2000, raceHooks{})
	if res.Metrics[MetricCompAttempts] <= 0 {
		t.Errorf("%s: the competitor never ran", res.Name)
	}
	t.Logf("%s: steals/op %.4f window p50 %.0f ns, unarmed p50 %.0f ns, change p50 %.0f ns", res.Name, res.Metrics[MetricSteals], res.Metrics[MetricWindowP50], res.Metrics[MetricUnarmedP50], res.Metrics[MetricP50])
}

package harness

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
)

// TestCompetitors checks that the pool counts every attempt and win of
// every competitor, reports where they ran, and returns a competitor's
// error.
func TestCompetitors(t *testing.T) {
	// Each competitor spins on a P of its own; leave one for the test.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	var tries, wins, teardowns atomic.Uint64
	setup := func() (func() (bool, error), func(), error) {
		attempt := func() (bool, error) {
			won := tries.Add(1)%2 == 0
			if won {
				wins.Add(1)
			}
			return won, nil
		}
		return attempt, func() { teardowns.Add(1) }, nil
	}
	c := StartCompetitors(context.Background(), CompetitorSpec{Count: 2, Rate: 0, CPU: 0, Setup: setup})
	st, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.Attempts < 2 || st.Attempts != tries.Load() || st.Wins != wins.Load() {
		t.Errorf("Attempts %d, Wins %d; the competitors made %d and won %d (at least one each)", st.Attempts, st.Wins, tries.Load(), wins.Load())
	}
	if st.CPU != 0 || !st.HasOnCPU || st.OnCPU <= 0 || st.Elapsed <= 0 {
		t.Errorf("CPU %d, HasOnCPU %v, OnCPU %v, Elapsed %v; want CPU 0 and both times measured", st.CPU, st.HasOnCPU, st.OnCPU, st.Elapsed)
	}
	if teardowns.Load() != 2 {
		t.Errorf("%d teardowns, want 2", teardowns.Load())
	}

	none, err := StartCompetitors(context.Background(), CompetitorSpec{CPU: 0, Setup: setup}).Stop()
	if err != nil || none.CPU != -1 || none.Attempts != 0 || none.HasOnCPU {
		t.Errorf("no competitors: %+v, %v; want CPU -1 and nothing counted", none, err)
	}

	boom := errors.New("boom")
	_, err = StartCompetitors(context.Background(), CompetitorSpec{Count: 1, CPU: -1, Setup: func() (func() (bool, error), func(), error) {
		return func() (bool, error) { return false, boom }, func() {}, nil
	}}).Stop()
	if !errors.Is(err, boom) {
		t.Errorf("a failing attempt: Stop returned %v, want it wrapped", err)
	}
}

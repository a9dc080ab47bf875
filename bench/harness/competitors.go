package harness

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"bpbench/internal/cpupin"
)

// CompetitorSetup runs on each competitor's goroutine, once its thread is
// pinned, and returns its attempt function (which reports whether the
// attempt won what it competes for; it lets go of it before returning) and
// a teardown run when the competitor stops.
type CompetitorSetup = func() (attempt func() (bool, error), teardown func(), err error)

// CompetitorSpec says how many competitors StartCompetitors starts, where
// their threads run and how fast they attempt.
type CompetitorSpec struct {
	// Count is the number of competitors, each a goroutine locked to its
	// own thread; 0 starts none.
	Count int
	// Rate is each competitor's attempts per second, paced by a thread
	// Pacer; 0 is as fast as it can go.
	Rate float64
	// CPU is the CPU every competitor's thread is pinned to, or -1 to
	// leave them unpinned.
	CPU int
	// Setup builds each competitor's attempt function.
	Setup CompetitorSetup
}

// CompetitorStats is what a pool of competitors did, summed over them.
type CompetitorStats struct {
	Attempts uint64        // attempts made
	Wins     uint64        // attempts that won
	Elapsed  time.Duration // from StartCompetitors to the end of Stop
	Held     time.Duration // time spent in winning attempts
	OnCPU    time.Duration // time their threads ran (ThreadRunTime)
	HasOnCPU bool          // OnCPU was measured for every competitor
	CPU      int           // the CPU they were pinned to; -1 without competitors or pin
}

// Competitors is a running pool of pinned, paced competitors: the
// neighbours RunWorkers' workers have in experiments where something else
// keeps trying to take what the measured thread holds.
type Competitors struct {
	g        *errgroup.Group
	halt     atomic.Bool
	begin    time.Time
	cpu      int
	attempts []atomic.Uint64 // per competitor, written once at the end
	wins     []atomic.Uint64
	held     []atomic.Int64 // ticks spent in winning attempts
	onCPU    []atomic.Int64 // ns each competitor's thread ran (ThreadRunTime)
	// noRunTime is set when a thread's run time could not be read.
	noRunTime atomic.Bool
}

// StartCompetitors starts spec.Count goroutines, each locked to its thread
// and pinned to spec.CPU, paced by a thread Pacer (the caller gives them Ps
// of their own: with fewer, the Go scheduler, not the kernel, decides who
// runs). It returns once each competitor has made one attempt (or
// failed), so that a quick measurement is not over before the scheduler
// ran them.
func StartCompetitors(ctx context.Context, spec CompetitorSpec) *Competitors {
	c := &Competitors{
		cpu:      spec.CPU,
		attempts: make([]atomic.Uint64, spec.Count),
		wins:     make([]atomic.Uint64, spec.Count),
		held:     make([]atomic.Int64, spec.Count),
		onCPU:    make([]atomic.Int64, spec.Count),
	}
	c.g, ctx = errgroup.WithContext(ctx)
	c.begin = time.Now()
	var ready sync.WaitGroup
	ready.Add(spec.Count)
	for k := 0; k < spec.Count; k++ {
		c.g.Go(func() error {
			first := true
			defer func() {
				if first {
					ready.Done()
				}
			}()
			if spec.CPU >= 0 {
				unpin, err := cpupin.Pin(spec.CPU)
				if err != nil {
					return fmt.Errorf("competitor %d: %w", k, err)
				}
				defer unpin()
			}
			attempt, teardown, err := spec.Setup()
			if err != nil {
				return fmt.Errorf("competitor %d: %w", k, err)
			}
			defer teardown()
			if run0, ok := ThreadRunTime(); ok {
				defer func() {
					if run1, ok := ThreadRunTime(); ok {
						c.onCPU[k].Store(int64(run1 - run0))
					}
				}()
			} else {
				c.noRunTime.Store(true)
			}
			pace, err := NewThreadPacer(spec.Rate)
			if err != nil {
				return err
			}
			var tried, won uint64
			var held Ticks
			defer func() { c.attempts[k].Store(tried); c.wins[k].Store(won); c.held[k].Store(int64(held)) }()
			for !c.halt.Load() {
				if tried == 1 && first {
					first = false
					ready.Done()
				}
				if tried&255 == 0 && ctx.Err() != nil {
					return nil
				}
				pace.Wait()
				t0 := Now()
				ok, err := attempt()
				if err != nil {
					return fmt.Errorf("competitor %d: %w", k, err)
				}
				tried++
				if ok {
					won++
					held += Now() - t0
				}
			}
			return nil
		})
	}
	ready.Wait()
	return c
}

// Stop halts the competitors, waits for them and returns what they did,
// with the first error one of them returned.
func (c *Competitors) Stop() (CompetitorStats, error) {
	c.halt.Store(true)
	st := CompetitorStats{CPU: -1}
	if len(c.attempts) > 0 {
		st.CPU = c.cpu
	}
	err := c.g.Wait()
	st.Elapsed = time.Since(c.begin)
	for k := range c.attempts {
		st.Attempts += c.attempts[k].Load()
		st.Wins += c.wins[k].Load()
		st.Held += time.Duration(TicksToNs(Ticks(c.held[k].Load())))
		st.OnCPU += time.Duration(c.onCPU[k].Load())
	}
	st.HasOnCPU = len(c.attempts) > 0 && !c.noRunTime.Load()
	return st, err
}

// ThreadRunTime returns how long the calling thread has run on a CPU
// (CLOCK_THREAD_CPUTIME_ID, which the kernel brings up to date when read,
// unlike /proc's schedstat), and whether it could be read. The caller is
// locked to its thread.
func ThreadRunTime() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

package alloctest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"bpbench/alloc"
)

// testConcurrentRelease releases copies of one slot from several
// goroutines at once, each winner re-reserving the index at once: exactly
// one release of each slot may succeed, the others must be ErrNotReserved,
// and none may free the new holder's slot, which the count of what fits
// afterwards would show.
func testConcurrentRelease(t tb, f Constructor) {
	rounds := 1000
	if testing.Short() || raceEnabled {
		rounds = 200
	}
	cfg := alloc.X86(2)
	for _, r := range []alloc.Request{{Task: alloc.NoTask, CPU: 1}, {Task: 7, CPU: alloc.AnyCPU}, {Task: 7, CPU: 0}} {
		t.Run(r.String(), func(t tb) {
			b := newBed(t, f, cfg)
			for round := range rounds {
				s := b.take(r)
				var wg sync.WaitGroup
				var wins atomic.Int32
				again := make([]alloc.Slot, 4)
				errs := make([]error, 4)
				for g := range again {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var err error
						if p := catch(func() { err = b.a.Release(s) }); p != nil {
							errs[g] = p
							return
						}
						switch {
						case err == nil:
							wins.Add(1)
							if p := catch(func() { again[g], err = b.a.Reserve(r) }); p != nil || err != nil {
								errs[g] = fmt.Errorf("re-reserve after a winning release: %v %v", err, p)
							}
						case !errors.Is(err, alloc.ErrNotReserved):
							errs[g] = fmt.Errorf("losing concurrent release: %v, want ErrNotReserved", err)
						}
					}()
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						t.Fatalf("round %d, %v: %v", round, r, err)
					}
				}
				if n := wins.Load(); n != 1 {
					t.Fatalf("round %d: %d of 4 concurrent releases of one %v slot succeeded, want 1", round, n, r)
				}
				var held []alloc.Slot
				for _, s := range again {
					if s.Valid() {
						held = append(held, s)
					}
				}
				for range cfg.Slots - 1 {
					held = append(held, b.take(r))
				}
				b.refuse(r)
				b.finish(held...)
				b.ops = b.ops[:0]
			}
		})
	}
}

// testAllCPUIndex checks that a task holding only all-CPU breakpoints
// always gets a real register index, never NoIndex, while several
// goroutines reserve and release for it at once and CPU-bound competitors
// make its reservations fail half-way: NoIndex is only for indexes
// fragmented by one-CPU breakpoints. (cas once fell into that path on
// transient masks.)
func testAllCPUIndex(t tb, f Constructor) {
	rounds := 2000
	if testing.Short() || raceEnabled {
		rounds = 400
	}
	cfg := alloc.X86(2)
	b := newBed(t, f, cfg)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := alloc.Request{Task: 7, CPU: alloc.AnyCPU}
			if g >= 6 {
				r = alloc.Request{Task: alloc.NoTask, CPU: g - 6}
			}
			for range rounds {
				var s alloc.Slot
				var err error
				if p := catch(func() { s, err = b.a.Reserve(r) }); p != nil {
					errs <- p
					return
				}
				if errors.Is(err, alloc.ErrNoSlot) {
					continue
				}
				if err == nil && r.Task != alloc.NoTask && (s.Index() < 0 || s.Index() >= cfg.Slots) {
					err = fmt.Errorf("all-CPU slot of a task without one-CPU breakpoints got index %d", s.Index())
				}
				if err == nil {
					if p := catch(func() { err = b.a.Release(s) }); p != nil {
						err = p
					}
				}
				if err != nil {
					errs <- fmt.Errorf("%v: %v", r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("%v", err)
	}
	if b.inUse() {
		t.Errorf("InUse() after every goroutine released everything")
	}
}

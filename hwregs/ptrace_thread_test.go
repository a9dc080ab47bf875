package hwregs

import (
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPtraceDoFromManyGoroutines hands Dos over from several goroutines at
// once: each runs on the tracer thread, one at a time, and what one Do
// writes is seen by the next (the race detector checks the hand-off's
// ordering).
func TestPtraceDoFromManyGoroutines(t *testing.T) {
	p := ptStart(t, 1)
	const goroutines, each = 4, 500
	count := 0 // touched only on the tracer thread
	var wrong int
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := p.Do(func() {
					count++
					if unix.Gettid() != p.tracerTid {
						wrong++
					}
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ptDo(t, p, func() error {
		if count != goroutines*each || wrong != 0 {
			t.Errorf("%d Dos ran (%d off the tracer thread), want %d on it", count, wrong, goroutines*each)
		}
		return nil
	})
}

// TestPtraceDoAllocs checks that handing a Do over does not allocate, so
// that one Do per op keeps a loop at 0 allocs/op.
func TestPtraceDoAllocs(t *testing.T) {
	p := ptStart(t, 1)
	n := 0
	f := func() { n++ }
	if allocs := testing.AllocsPerRun(1000, func() {
		if err := p.Do(f); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("Do from another goroutine: %v allocs/op, want 0", allocs)
	}
}

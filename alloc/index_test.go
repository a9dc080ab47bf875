package alloc

import (
	"errors"
	"runtime"
	"sync"
	"testing"
)

// TestConcurrentAllCPUIndex checks that a task holding only all-CPU
// breakpoints always gets a real register index, never NoIndex, even while
// several goroutines reserve and release for it at once: NoIndex is only
// for indexes fragmented by one-CPU breakpoints, and a writer cannot
// program it. (cas once fell into that path on transient masks.)
func TestConcurrentAllCPUIndex(t *testing.T) {
	for _, s := range Strategies() {
		t.Run("strategy="+s, func(t *testing.T) {
			a, err := New(s, X86(2))
			if err != nil {
				t.Fatal(err)
			}
			const goroutines, rounds = 6, 2000
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := 0; r < rounds && !t.Failed(); r++ {
						sl, err := a.Reserve(Request{Task: 7, CPU: AnyCPU, Kind: Data})
						if errors.Is(err, ErrNoSlot) {
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						if i := sl.Index(); i < 0 || i >= 4 {
							t.Errorf("all-CPU slot got index %d", i)
						}
						if err := a.Release(sl); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			// CPU-bound competitors make the task's all-CPU reservations fail
			// half-way and roll back, the transient state that matters.
			stop := make(chan struct{})
			var cwg sync.WaitGroup
			for c := 0; c < 2; c++ {
				cwg.Add(1)
				go func() {
					defer cwg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if sl, err := a.Reserve(Request{Task: NoTask, CPU: c, Kind: Data}); err == nil {
							a.Release(sl)
						}
						runtime.Gosched() // a tight loop starves percpu's lock waiters

					}
				}()
			}
			wg.Wait()
			close(stop)
			cwg.Wait()
			if a.InUse() {
				t.Fatal("slots still held at the end")
			}
		})
	}
}

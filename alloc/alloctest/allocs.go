package alloctest

import (
	"errors"
	"testing"

	"bpbench/alloc"
)

// bigTask is a task id above 255: the runtime boxes smaller integers
// without allocating, so a smaller id could hide an allocation in a task
// table lookup.
const bigTask = 1000

// testAllocs checks that the paths an aggressive competitor drives hot
// allocate nothing: a refused Reserve, a double Release, a stale Release
// (the index reused by a later holder) and the release of the zero Slot,
// for every target shape, in a shared and in a separate instruction pool.
func testAllocs(t tb, f Constructor) {
	for _, cfg := range []alloc.Config{alloc.X86(2), {CPUs: 2, Slots: 2, InstSlots: 3}} {
		for _, r := range []alloc.Request{
			{Task: alloc.NoTask, CPU: 1, Kind: alloc.Data},
			{Task: alloc.NoTask, CPU: 0, Kind: alloc.Inst},
			{Task: bigTask, CPU: alloc.AnyCPU, Kind: alloc.Data},
			{Task: bigTask, CPU: 1, Kind: alloc.Inst},
		} {
			t.Run(machine{cfg, 1}.String()+"/"+r.String(), func(t tb) {
				b := newBed(t, f, cfg)
				first := b.take(r)
				if err := b.release(first); err != nil {
					t.Fatalf("release: %v", err)
				}
				var err error
				perOp := func(what string, fn func()) {
					t.Helper()
					if n := testing.AllocsPerRun(50, fn); n != 0 {
						t.Errorf("%s of %v: %v allocs/op, want 0", what, r, n)
					}
				}
				perOp("double Release", func() { err = b.a.Release(first) })
				if !errors.Is(err, alloc.ErrNotReserved) {
					t.Errorf("double Release of %v = %v, want ErrNotReserved", r, err)
				}
				held := []alloc.Slot{b.take(r)} // reuses first's index
				perOp("stale Release", func() { err = b.a.Release(first) })
				if !errors.Is(err, alloc.ErrNotReserved) {
					t.Errorf("stale Release of %v = %v, want ErrNotReserved", r, err)
				}
				for range cfg.PoolSize(r.Kind) - 1 {
					held = append(held, b.take(r))
				}
				perOp("refused Reserve", func() { _, err = b.a.Reserve(r) })
				if !errors.Is(err, alloc.ErrNoSlot) {
					t.Errorf("Reserve of %v with its pool full = %v, want ErrNoSlot", r, err)
				}
				perOp("Release of the zero Slot", func() { err = b.a.Release(alloc.Slot{}) })
				if !errors.Is(err, alloc.ErrNotReserved) {
					t.Errorf("Release(zero Slot) = %v, want ErrNotReserved", err)
				}
				b.finish(held...)
			})
		}
	}
}

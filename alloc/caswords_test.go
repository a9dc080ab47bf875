package alloc

import "testing"

// TestCASWordPacking checks that the packed words of cas and cas-percpu
// hold every field at the limits a pool of MaxSlots registers reaches,
// and that each transition changes its own fields and nothing else: the
// words are changed by deltas and CASes that assume exactly that.
func TestCASWordPacking(t *testing.T) {
	const full = 1<<MaxSlots - 1
	for _, g := range []int{0, 1, MaxSlots} {
		for _, mask := range []uint32{0, 1, 0x8000, full} {
			for _, tent := range []int{0, 1, MaxSlots, 1<<31 - 1} {
				w := packTask(g, mask, tent)
				if gg, mm, tt := w.unpack(); gg != g || mm != mask || tt != tent {
					t.Fatalf("T(%d, %#x, %d) unpacks to (%d, %#x, %d)", g, mask, tent, gg, mm, tt)
				}
				if g < MaxSlots && tent < MaxSlots {
					for _, i := range []int{0, MaxSlots - 1} {
						if mask&(1<<i) != 0 {
							continue
						}
						if got, want := w+holdAt(i), packTask(g+1, mask|1<<i, tent); got != want {
							t.Errorf("T(%d, %#x, %d) + holdAt(%d) = %#x, want %#x", g, mask, tent, i, got, want)
						}
					}
					if got, want := w+holdOv+tentOne, packTask(g+1, mask, tent+1); got != want {
						t.Errorf("T(%d, %#x, %d) + holdOv + tentOne = %#x, want %#x", g, mask, tent, got, want)
					}
				}
			}
		}
	}

	for _, one := range []int{0, 1, MaxSlots - 1} {
		for _, gseen := range []int{0, 1, MaxSlots} {
			for _, mask := range []uint32{0, 0x7fff} {
				w := packOne(one, gseen, mask)
				if o, gs, m := w.unpack(); o != one || gs != gseen || m != mask {
					t.Fatalf("P_tc(%d, %d, %#x) unpacks to (%d, %d, %#x)", one, gseen, mask, o, gs, m)
				}
				c := w.claimed(MaxSlots-1, MaxSlots)
				if o, gs, m := c.unpack(); o != one+1 || gs != MaxSlots || m != mask|1<<(MaxSlots-1) {
					t.Errorf("P_tc(%d, %d, %#x) claimed at %d: (%d, %d, %#x)", one, gseen, mask, MaxSlots-1, o, gs, m)
				}
				if back := c.unclaimed(MaxSlots - 1); back != w.synced(MaxSlots) {
					t.Errorf("P_tc(%d, %d, %#x): claim then unclaim = %#x, want %#x", one, gseen, mask, back, w.synced(MaxSlots))
				}
				if want := gseen + one; one > 0 && w.val() != want || one == 0 && w.val() != 0 {
					t.Errorf("P_tc(%d, %d, %#x).val() = %d", one, gseen, mask, w.val())
				}
			}
		}
	}

	top := uint64(1)<<(64-gVerShift) - 1
	for _, gmax := range []int{0, MaxSlots} {
		for _, pend := range []int{0, MaxSlots} {
			for _, npend := range []int{0, 1, 0xffff} {
				for _, flag := range []bool{false, true} {
					for _, ver := range []uint64{0, top} {
						g := packGlobal(gmax, pend, npend, flag, ver)
						if m, p, n, f, v := g.unpack(); m != gmax || p != pend || n != npend || f != flag || v != ver {
							t.Fatalf("G(%d, %d, %d, %v, %d) unpacks to (%d, %d, %d, %v, %d)", gmax, pend, npend, flag, ver, m, p, n, f, v)
						}
						next := (ver + 1) & top // the version wraps off the top
						if got, want := g.withFlag(true), packGlobal(gmax, pend, npend, true, next); got != want {
							t.Errorf("G(%d, %d, %d, %v, %d).withFlag(true) = %#x, want %#x", gmax, pend, npend, flag, ver, got, want)
						}
						if npend > 0 {
							wantPend := pend
							if npend == 1 {
								wantPend = 0
							}
							if got, want := g.raised(MaxSlots, true), packGlobal(MaxSlots, wantPend, npend-1, flag, next); got != want {
								t.Errorf("G(%d, %d, %d, %v, %d).raised(%d) = %#x, want %#x", gmax, pend, npend, flag, ver, MaxSlots, got, want)
							}
						}
					}
				}
			}
		}
	}

	for _, mask := range []uint32{0, full} {
		for _, count := range []int{0, 1, MaxSlots} {
			w := packPC(mask, count)
			if m, c := w.unpack(); m != mask || c != count {
				t.Fatalf("cas-percpu P_tc(%#x, %d) unpacks to (%#x, %d)", mask, count, m, c)
			}
		}
	}
}

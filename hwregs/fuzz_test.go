package hwregs

import (
	"errors"
	"testing"

	"bpbench/alloc"
)

// attrOfSlot returns the attribute a decoded slot describes at addr, and
// whether it is one user space can program (not I/O, exec with LEN 00).
func attrOfSlot(c SlotCtl, addr uint64) (Attr, bool) {
	if c.Type == 0 || (c.Type == Exec && c.Len != 1) {
		return Attr{}, false
	}
	return Attr{Addr: addr, Len: c.Len, Type: c.Type}, true
}

// FuzzDR7 decodes arbitrary DR7 words and checks that re-encoding any
// enabled user slot is stable: it decodes to the same type and length, is
// idempotent, and leaves every other slot's bits alone.
func FuzzDR7(f *testing.F) {
	for _, v := range []uint64{0, ^uint64(0), 0x00000401, 0x000d0001, 0x00090002, 0xffff00ff, 0x20000055} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v uint64) {
		d := DR7(v)
		_ = d.String()
		for i := 0; i < NumSlots; i++ {
			c := d.Slot(i)
			if c.Enabled() != d.Enabled(i) {
				t.Fatalf("DR7(%#x): Slot(%d).Enabled and Enabled(%d) disagree", v, i, i)
			}
			switch c.Len {
			case 1, 2, 4, 8:
			default:
				t.Fatalf("DR7(%#x).Slot(%d).Len = %d", v, i, c.Len)
			}
			a, ok := attrOfSlot(c, 0)
			if !c.Enabled() || !ok {
				continue
			}
			e := d.WithSlot(i, a)
			if got := e.Slot(i); got.Type != c.Type || got.Len != c.Len || !got.Local || got.Global {
				t.Fatalf("DR7(%#x): re-encoding slot %d as %v decodes as %+v", v, i, a, got)
			}
			if e.WithSlot(i, a) != e {
				t.Fatalf("DR7(%#x): re-encoding slot %d is not idempotent", v, i)
			}
			if e&^slotBits(i) != d&^slotBits(i) {
				t.Fatalf("DR7(%#x): re-encoding slot %d changed other bits: %#x", v, i, uint64(e))
			}
		}
	})
}

// FuzzDR6 decodes arbitrary DR6 words: the decoders agree with each other
// and with the raw bits.
func FuzzDR6(f *testing.F) {
	for _, v := range []uint64{0, 0xffff0ff0, 0xffff4ff1, 0x4000, 0xf, ^uint64(0)} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v uint64) {
		d := DR6(v)
		first := d.FirstFired()
		if uint64(d.FiredMask()) != v&0xf {
			t.Fatalf("DR6(%#x).FiredMask = %#x", v, d.FiredMask())
		}
		for i := 0; i < NumSlots; i++ {
			if d.Fired(i) != (v&(1<<i) != 0) {
				t.Fatalf("DR6(%#x).Fired(%d) wrong", v, i)
			}
			if d.Fired(i) && (first < 0 || first > i) {
				t.Fatalf("DR6(%#x).FirstFired = %d, but slot %d fired", v, first, i)
			}
		}
		if (first == -1) != (v&0xf == 0) {
			t.Fatalf("DR6(%#x).FirstFired = %d", v, first)
		}
		if d.SingleStep() != (v&(1<<14) != 0) {
			t.Fatalf("DR6(%#x).SingleStep wrong", v)
		}
	})
}

// FuzzAttr validates arbitrary attributes without panicking; valid ones
// encode into every slot and decode back losslessly, and a refusal always
// wraps alloc.ErrInvalid.
func FuzzAttr(f *testing.F) {
	f.Add(uint64(0x1000), 8, uint8(Write))
	f.Add(uint64(0x1001), 1, uint8(Exec))
	f.Add(^uint64(0), 1, uint8(ReadWrite))
	f.Add(uint64(MaxUserAddr-4), 4, uint8(Write))
	f.Add(uint64(0x1000), 3, uint8(Read))
	f.Add(uint64(0x1000), -1, uint8(0))
	f.Fuzz(func(t *testing.T, addr uint64, n int, ty uint8) {
		a := Attr{Addr: addr, Len: n, Type: Type(ty)}
		_ = a.String()
		err := a.Validate()
		if err != nil {
			if !errors.Is(err, alloc.ErrInvalid) {
				t.Fatalf("%v: %v does not wrap alloc.ErrInvalid", a, err)
			}
			return
		}
		if a.Addr >= MaxUserAddr || a.Addr+uint64(a.Len) > MaxUserAddr || (a.Type != Exec && a.Addr%uint64(a.Len) != 0) {
			t.Fatalf("%v accepted but outside user space or unaligned", a)
		}
		for i := 0; i < NumSlots; i++ {
			d := DR7(0).WithSlot(i, a)
			got, ok := attrOfSlot(d.Slot(i), a.Addr)
			if !ok || got != a {
				t.Fatalf("%v in slot %d decodes as %v (ok %v)", a, i, got, ok)
			}
			if err := kernelAccepts(d, i, a.Addr); err != nil {
				t.Fatalf("%v in slot %d refused by the kernel model: %v", a, i, err)
			}
		}
	})
}

package hwregs

import (
	"math/bits"
	"testing"
)

// allTypes and allLens enumerate every encodable (Type, Len) pair.
var (
	allTypes = []Type{Exec, Write, ReadWrite}
	allLens  = []int{1, 2, 4, 8}
)

// encodable returns every valid (Type, Len) combination: exec has only length 1.
func encodable() []Attr {
	var out []Attr
	for _, ty := range allTypes {
		for _, n := range allLens {
			if ty == Exec && n != 1 {
				continue
			}
			out = append(out, Attr{Addr: 0x1000, Len: n, Type: ty})
		}
	}
	return out
}

// slotBits returns the DR7 bits that belong to slot i: L_i, G_i, RW_i, LEN_i.
func slotBits(i int) DR7 { return DR7(3)<<(2*i) | DR7(0xf)<<(16+4*i) }

// TestDR7EncodingMatchesSDM checks concrete bit patterns against the Intel SDM
// (vol. 3, 18.2.4) as summarised in /work/shared/anchors.md: L_i = bit 2i,
// RW_i at 16+4i (01 write, 11 rw, 00 exec), LEN_i at 18+4i (00=1, 01=2,
// 11=4, 10=8).
func TestDR7EncodingMatchesSDM(t *testing.T) {
	for _, tc := range []struct {
		slot int
		a    Attr
		want DR7
	}{
		{0, Attr{Len: 1, Type: Exec}, 0x1},
		{0, Attr{Len: 1, Type: Write}, 1 | 0b01<<16},
		{0, Attr{Len: 2, Type: Write}, 1 | 0b01<<16 | 0b01<<18},
		{0, Attr{Len: 4, Type: Write}, 1 | 0b01<<16 | 0b11<<18},
		{0, Attr{Len: 8, Type: Write}, 1 | 0b01<<16 | 0b10<<18},
		{1, Attr{Len: 4, Type: ReadWrite}, 1<<2 | 0b11<<20 | 0b11<<22},
		{2, Attr{Len: 8, Type: ReadWrite}, 1<<4 | 0b11<<24 | 0b10<<26},
		{3, Attr{Len: 1, Type: Exec}, 1 << 6},
		{3, Attr{Len: 2, Type: Write}, 1<<6 | 0b01<<28 | 0b01<<30},
	} {
		if got := DR7(0).WithSlot(tc.slot, tc.a); got != tc.want {
			t.Errorf("WithSlot(%d, %v) = %#x, want %#x", tc.slot, tc.a, uint64(got), uint64(tc.want))
		}
	}
	// RW0 = 01 and LEN0 = 11 is a 4-byte write watch; LEN0 = 10 is 8 bytes.
	if c := DR7(0x000d0001).Slot(0); c != (SlotCtl{Local: true, Type: Write, Len: 4}) {
		t.Errorf("DR7(0xd0001).Slot(0) = %+v, want local write/4", c)
	}
	if c := DR7(0x00090002).Slot(0); c != (SlotCtl{Global: true, Type: Write, Len: 8}) {
		t.Errorf("DR7(0x90002).Slot(0) = %+v, want global write/8", c)
	}
	if c := DR7(0b10 << 16).Slot(0); c.Type != 0 || c.Enabled() {
		t.Errorf("I/O encoding decoded as %+v, want Type 0, disabled", c)
	}
}

// TestDR7RoundTrip programs every slot with every type and length over
// arbitrary other contents and checks that the slot decodes to what was
// written, that no other bit changed, and that WithoutSlot clears exactly
// that slot.
func TestDR7RoundTrip(t *testing.T) {
	backgrounds := []DR7{0, ^DR7(0), 0x00000700, 0xdeadbeefcafef00d, DR7(0).WithSlot(0, Attr{Len: 8, Type: ReadWrite}).WithSlot(3, Attr{Len: 1, Type: Exec})}
	for _, bg := range backgrounds {
		for i := 0; i < NumSlots; i++ {
			for _, a := range encodable() {
				d := bg.WithSlot(i, a)
				if got, want := d.Slot(i), (SlotCtl{Local: true, Type: a.Type, Len: a.Len}); got != want {
					t.Fatalf("bg %#x: WithSlot(%d, %v).Slot = %+v, want %+v", uint64(bg), i, a, got, want)
				}
				if !d.Enabled(i) {
					t.Fatalf("bg %#x: slot %d not enabled after WithSlot", uint64(bg), i)
				}
				if d&^slotBits(i) != bg&^slotBits(i) {
					t.Fatalf("bg %#x: WithSlot(%d, %v) = %#x changed bits outside slot %d", uint64(bg), i, a, uint64(d), i)
				}
				for j := 0; j < NumSlots; j++ {
					if j != i && d.Slot(j) != bg.Slot(j) {
						t.Fatalf("bg %#x: WithSlot(%d) changed slot %d", uint64(bg), i, j)
					}
				}
				if d.WithSlot(i, a) != d {
					t.Fatalf("bg %#x: WithSlot(%d, %v) is not idempotent", uint64(bg), i, a)
				}
				c := d.WithoutSlot(i)
				if c&slotBits(i) != 0 || c.Enabled(i) {
					t.Fatalf("bg %#x: WithoutSlot(%d) left %#x", uint64(bg), i, uint64(c&slotBits(i)))
				}
				if c != bg&^slotBits(i) {
					t.Fatalf("bg %#x: WithoutSlot(%d) = %#x, want %#x", uint64(bg), i, uint64(c), uint64(bg&^slotBits(i)))
				}
			}
		}
	}
}

// TestDR7String lists enabled slots only.
func TestDR7String(t *testing.T) {
	d := DR7(0).WithSlot(0, Attr{Len: 8, Type: Write}).WithSlot(2, Attr{Len: 1, Type: Exec})
	if got, want := d.String(), "DR7{0:write/8 2:exec/1}"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got := DR7(0).String(); got != "DR7{}" {
		t.Errorf("String of 0 = %q", got)
	}
}

// TestDR6Decode checks B0-B3 and BS for every status word built from them.
func TestDR6Decode(t *testing.T) {
	for mask := 0; mask < 16; mask++ {
		for _, bs := range []bool{false, true} {
			// Reserved bits read as 1 on hardware (0xffff0ff0); they must not
			// be mistaken for slot bits.
			d := DR6(0xffff0ff0) | DR6(mask)
			if bs {
				d |= DR6SingleStep
			}
			if d.FiredMask() != uint8(mask) {
				t.Errorf("DR6(%#x).FiredMask = %#x, want %#x", uint64(d), d.FiredMask(), mask)
			}
			for i := 0; i < NumSlots; i++ {
				if d.Fired(i) != (mask&(1<<i) != 0) {
					t.Errorf("DR6(%#x).Fired(%d) = %v", uint64(d), i, d.Fired(i))
				}
			}
			want := -1
			if mask != 0 {
				want = bits.TrailingZeros(uint(mask))
			}
			if d.FirstFired() != want {
				t.Errorf("DR6(%#x).FirstFired = %d, want %d", uint64(d), d.FirstFired(), want)
			}
			if d.SingleStep() != bs {
				t.Errorf("DR6(%#x).SingleStep = %v, want %v", uint64(d), d.SingleStep(), bs)
			}
		}
	}
}

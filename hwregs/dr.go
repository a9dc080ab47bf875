package hwregs

import "fmt"

// NumSlots is the number of address registers (DR0-DR3) on x86.
const NumSlots = 4

// Register numbers as the kernel's u_debugreg indexes them. DR4 and DR5 do
// not exist for user space (ptrace returns EIO).
const (
	RegDR0 = 0
	RegDR1 = 1
	RegDR2 = 2
	RegDR3 = 3
	RegDR6 = 6
	RegDR7 = 7
)

// DR7 field encodings (Intel SDM vol. 3, 18.2.4).
const (
	rwExec      = 0b00
	rwWrite     = 0b01
	rwIO        = 0b10 // I/O breakpoints, not for user space
	rwReadWrite = 0b11

	len1 = 0b00
	len2 = 0b01
	len8 = 0b10 // 8 bytes is 0b10, not 0b11
	len4 = 0b11
)

// DR7 is the debug control register.
type DR7 uint64

// SlotCtl is DR7's view of one slot.
type SlotCtl struct {
	Local, Global bool
	Type          Type // decoded from RW; 0 for the I/O encoding
	Len           int  // 1, 2, 4 or 8
}

// Enabled reports whether the slot is enabled locally or globally.
func (c SlotCtl) Enabled() bool { return c.Local || c.Global }

func checkSlot(i int) {
	if i < 0 || i >= NumSlots {
		// A programming error in this package's callers: slots come from
		// alloc, whose indexes are < pool size <= NumSlots for x86 pools.
		panic(fmt.Sprintf("hwregs: debug register slot %d out of range [0,%d)", i, NumSlots))
	}
}

// Slot decodes slot i (0-3).
func (d DR7) Slot(i int) SlotCtl {
	checkSlot(i)
	c := SlotCtl{Local: d&(1<<(2*i)) != 0, Global: d&(1<<(2*i+1)) != 0}
	switch (d >> (16 + 4*i)) & 3 {
	case rwExec:
		c.Type = Exec
	case rwWrite:
		c.Type = Write
	case rwReadWrite:
		c.Type = ReadWrite
	}
	switch (d >> (18 + 4*i)) & 3 {
	case len1:
		c.Len = 1
	case len2:
		c.Len = 2
	case len4:
		c.Len = 4
	case len8:
		c.Len = 8
	}
	return c
}

// WithSlot returns d with slot i locally enabled for a (which must be
// valid: see Attr.Validate) and its global bit clear, as Linux programs
// user breakpoints.
func (d DR7) WithSlot(i int, a Attr) DR7 {
	checkSlot(i)
	var rw, ln uint64
	switch a.Type {
	case Exec:
		rw = rwExec
	case Write:
		rw = rwWrite
	case ReadWrite:
		rw = rwReadWrite
	}
	switch a.Len {
	case 1:
		ln = len1
	case 2:
		ln = len2
	case 4:
		ln = len4
	case 8:
		ln = len8
	}
	if a.Type == Exec {
		ln = len1
	}
	d = d.WithoutSlot(i)
	d |= DR7(1) << (2 * i)
	d |= DR7(rw<<(16+4*i) | ln<<(18+4*i))
	return d
}

// WithoutSlot returns d with slot i disabled and its RW/LEN fields cleared.
func (d DR7) WithoutSlot(i int) DR7 {
	checkSlot(i)
	return d &^ (DR7(3)<<(2*i) | DR7(0xf)<<(16+4*i))
}

// Enabled reports whether slot i is enabled (locally or globally).
func (d DR7) Enabled(i int) bool { return d.Slot(i).Enabled() }

// String lists the enabled slots, e.g. "DR7{0:write/8 2:exec/1}".
func (d DR7) String() string {
	s := "DR7{"
	sep := ""
	for i := 0; i < NumSlots; i++ {
		if c := d.Slot(i); c.Enabled() {
			s += fmt.Sprintf("%s%d:%v/%d", sep, i, c.Type, c.Len)
			sep = " "
		}
	}
	return s + "}"
}

// DR6 is the debug status register.
type DR6 uint64

// DR6 bits.
const (
	DR6SingleStep DR6 = 1 << 14 // BS
	dr6Slots      DR6 = 0xf     // B0-B3
)

// Fired reports whether slot i's condition was met (B_i).
func (d DR6) Fired(i int) bool { checkSlot(i); return d&(1<<i) != 0 }

// FiredMask returns B0-B3 as a 4-bit mask.
func (d DR6) FiredMask() uint8 { return uint8(d & dr6Slots) }

// FirstFired returns the lowest slot that fired, or -1.
func (d DR6) FirstFired() int {
	for i := 0; i < NumSlots; i++ {
		if d&(1<<i) != 0 {
			return i
		}
	}
	return -1
}

// SingleStep reports the BS bit.
func (d DR6) SingleStep() bool { return d&DR6SingleStep != 0 }

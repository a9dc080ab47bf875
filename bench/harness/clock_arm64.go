package harness

// Now reads the virtual counter of arm64's generic timer (CNTVCT_EL0),
// which ticks at a constant rate on every CPU (CNTFRQ_EL0: 62.5 MHz on
// QEMU's virt board, 24 MHz to 1 GHz on hardware); calibrate converts it
// to nanoseconds as it does the x86 TSC. hrtime's TSC reads 0 off amd64.
func Now() Ticks { return Ticks(cntvct()) }

// cntvct is in clock_arm64.s: ISB, then MRS CNTVCT_EL0, as the kernel's
// arch_counter_get_cntvct orders the read after earlier instructions.
func cntvct() uint64

package conform

import (
	"encoding/json"
	"os"
	"testing"

	"bpbench/alloc"
)

// arm64Fixture is the kernel's side of a lockstep sequence recorded on a
// real arm64 kernel: Debian's 6.1.176 cloud kernel on QEMU's virt board,
// max CPU, 2 vCPUs, under TCG (kernels' TestConformInArm64DebianKernel
// with BPBENCH_UPDATE_FIXTURES=1 writes it again).
const arm64Fixture = "testdata/arm64-debian-6.1-cpus2.json"

func loadFixture(t *testing.T, path string) *Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// TestReplayArm64Kernel holds every strategy, configured with separate
// pools as the arm64 kernel was probed to have them (6 instruction
// breakpoints, 4 data watchpoints), to that kernel's answers: each
// refuses and admits exactly as the kernel did, op by op. Configured as
// x86's one shared pool of 4, the same model refuses instruction
// breakpoints the kernel admitted: the separate pools are what agree.
func TestReplayArm64Kernel(t *testing.T) {
	r := loadFixture(t, arm64Fixture)
	if r.Arch != "arm64" || r.Slots != 4 || r.InstSlots != 6 || len(r.Trace) != r.Opens+r.Closes {
		t.Fatalf("fixture: %s, %d data and %d instruction slots, %d trace lines for %d opens and %d closes", r.Arch, r.Slots, r.InstSlots, len(r.Trace), r.Opens, r.Closes)
	}
	if r.InstRefused == 0 || r.InstRefused == r.Inst {
		t.Fatalf("fixture never crossed the instruction pool's boundary: %d of %d instruction opens refused", r.InstRefused, r.Inst)
	}
	cfg := r.Pools().Config(r.CPUs)
	if cfg != (alloc.Config{CPUs: 2, Slots: 4, InstSlots: 6}) {
		t.Fatalf("the probed pools configure %+v", cfg)
	}
	ag, err := Replay(r.Trace, cfg, builtins(), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ag {
		if a.Diverged != 0 || a.Agreed != r.Opens {
			t.Errorf("%s with separate pools: agreed %d of %d opens, diverged %d; first: %+v", a.Strategy, a.Agreed, r.Opens, a.Diverged, a.Divergences)
		}
	}
	shared, err := Replay(r.Trace, alloc.X86(r.CPUs), []string{"linux"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if shared[0].Diverged == 0 {
		t.Error("x86's shared pool of 4 agreed with the arm64 kernel too: the fixture does not tell the pools apart")
	}
	t.Logf("separate pools: %d opens agreed by %d strategies; x86's shared pool diverges on %d", r.Opens, len(ag), shared[0].Diverged)
}

package hwregs

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loov/hrtime"

	"bpbench/alloc"
	"bpbench/internal/cpupin"
)

// vscCPU is the CPU both sides of BenchmarkVsC run on: the Go tracer thread
// (or the perf event's thread) and the C program with its tracee, as in
// shared/anchors.md's raw C figures.
const vscCPU = 0

// vscMinOps is the fewest ops the C loop times, so that b.N's first
// rounds (1, 100) still give it a stable mean.
const vscMinOps = 20_000

// BenchmarkVsC measures the Writer (ptrace) and PerfEvent (perf) modify as
// a user calls them against a C program making the same system calls in a
// loop (testdata/vsc/*.c, built with the system's C compiler), in the same
// run and under the same pinning; x-c is the Go ns/op over
// the C one (medians of vscChunks pieces each) and x-c-p50 the ratio of
// their per-op medians (see vscRun).
//
//   - backend=ptrace/call=inside: Writer.Modify in a loop inside one
//     Ptrace.Do, on the tracer thread.
//   - backend=ptrace/call=hop: one Ptrace.Do per Writer.Modify from the
//     benchmark's goroutine, which is not the tracer thread: what a caller
//     pays for each op it hands over.
//   - backend=perf: PerfEvent.Modify on the benchmark's own thread.
//
// It skips, saying why, without a C compiler or the kernel features.
func BenchmarkVsC(b *testing.B) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		if cc, err = exec.LookPath("gcc"); err != nil {
			b.Skip("no C compiler (cc or gcc) to build the C floor")
		}
	}
	dir := b.TempDir()
	build := func(name string) string {
		out := filepath.Join(dir, name)
		if msg, err := exec.Command(cc, "-O2", "-o", out, filepath.Join("testdata", "vsc", name+".c")).CombinedOutput(); err != nil {
			b.Fatalf("building %s: %v\n%s", name, err, msg)
		}
		return out
	}
	b.Run("backend=ptrace", func(b *testing.B) {
		prog := build("ptrace_poke")
		p := ptStart(b, 1)
		b.Run("call=inside/op=modify", func(b *testing.B) { vscPtrace(b, p, prog, false) })
		b.Run("call=hop/op=modify", func(b *testing.B) { vscPtrace(b, p, prog, true) })
	})
	b.Run("backend=perf/op=modify", func(b *testing.B) {
		skipUnlessPerf(b)
		vscPerf(b, build("perf_modify"))
	})
}

// vscChunks is how many pieces the Go loop and the C loop are cut into, so
// that a burst of load from elsewhere on the machine spoils one piece, not
// the figure: x-c compares their medians.
const vscChunks = 5

// vscPtrace times b.N Writer.Modify calls on a breakpoint alternating
// between two variables of the tracee, inside one Do per piece or one Do
// each.
func vscPtrace(b *testing.B, p *Ptrace, prog string, hop bool) {
	h := p.Hello()
	attrs := [2]Attr{{Addr: h.VarAddr(0, 0), Len: 8, Type: Write}, {Addr: h.VarAddr(0, 1), Len: 8, Type: Write}}
	a, err := alloc.New(ptBenchStrategy, alloc.X86(1))
	if err != nil {
		b.Fatal(err)
	}
	w := NewWriter(a, p, WriteChanged)
	var (
		bp   Breakpoint
		next Attr
		merr error
		k    int
	)
	ptDo(b, p, func() error {
		if err := ptReset(p); err != nil {
			return err
		}
		bp, err = w.Register(alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Data}, attrs[0])
		return err
	})
	modify := func() {
		k++
		next = attrs[k&1]
		merr = w.Modify(&bp, next)
	}
	vscRun(b, prog, func(lat []hrtime.Count) {
		if hop {
			for i := 0; i < len(lat) && merr == nil; i++ {
				t0 := hrtime.TSC()
				err := p.Do(modify)
				lat[i] = hrtime.TSC() - t0
				if err != nil {
					b.Fatal(err)
				}
			}
		} else {
			ptDo(b, p, func() error {
				for i := 0; i < len(lat) && merr == nil; i++ {
					t0 := hrtime.TSC()
					modify()
					lat[i] = hrtime.TSC() - t0
				}
				return nil
			})
		}
		if merr != nil {
			b.Fatal(merr)
		}
	})
	ptDo(b, p, func() error { return w.Unregister(bp) })
}

// vscPerf times b.N PerfEvent.Modify calls on a breakpoint of the
// benchmark's thread, pinned, alternating between two variables.
func vscPerf(b *testing.B, prog string) {
	unpin, err := cpupin.Pin(vscCPU)
	if err != nil {
		b.Fatal(err)
	}
	defer unpin()
	attrs := [2]Attr{perfWatch(0, Write), perfWatch(1, Write)}
	e := perfBenchOpen(b, attrs[0])
	k := 0
	vscRun(b, prog, func(lat []hrtime.Count) {
		for i := range lat {
			k++
			t0 := hrtime.TSC()
			err := e.Modify(attrs[k&1])
			lat[i] = hrtime.TSC() - t0
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	e.Close()
}

// vscRun times goLoop over b.N ops in vscChunks pieces, each op timed on
// its own, then runs the C loop as many times with as many ops each (at
// least vscMinOps), which times its ops the same way (rdtsc), and reports:
// c-ns/op, the C loop's median mean; x-c, the ratio of the medians of the
// pieces' means; x-c-best, that of the fastest pieces; p50-ns and
// c-p50-ns, the per-op medians (of the C runs' medians), and x-c-p50,
// their ratio: the figure least disturbed by other load on the machine.
// Only the Go pieces count in ns/op. The two sides are not interleaved:
// here a Go piece right after a C run was about 100 ns/op slower, for the
// whole piece, than one after a pause of the same length (cause unknown),
// which would bias x-c.
func vscRun(b *testing.B, prog string, goLoop func(lat []hrtime.Count)) {
	var goNs, cNs, cP50 [vscChunks]float64
	var ns [vscChunks]int
	lat := make([]hrtime.Count, max(b.N, vscChunks))
	b.ReportAllocs()
	b.ResetTimer()
	done := 0
	for c := range goNs {
		// With b.N < vscChunks every piece still runs one op, so that the
		// medians exist.
		n := max((b.N-done)/(vscChunks-c), 1)
		t0 := time.Now()
		goLoop(lat[done : done+n])
		goNs[c] = float64(time.Since(t0).Nanoseconds()) / float64(n)
		ns[c] = n
		done += n
	}
	b.StopTimer()
	for c, n := range ns {
		cNs[c], cP50[c] = vscC(b, prog, max(n, vscMinOps))
	}
	if testing.Verbose() {
		b.Logf("go ns/op %.0f, c ns/op %.0f", goNs, cNs)
	}
	slices.Sort(goNs[:])
	slices.Sort(cNs[:])
	slices.Sort(cP50[:])
	slices.Sort(lat[:done])
	p50 := float64(lat[done/2].ApproxDuration().Nanoseconds())
	cp50 := float64(hrtime.Count(cP50[vscChunks/2]).ApproxDuration().Nanoseconds())
	b.ReportMetric(cNs[vscChunks/2], "c-ns/op")
	b.ReportMetric(goNs[vscChunks/2]/cNs[vscChunks/2], "x-c")
	b.ReportMetric(goNs[0]/cNs[0], "x-c-best")
	b.ReportMetric(p50, "p50-ns")
	b.ReportMetric(cp50, "c-p50-ns")
	b.ReportMetric(float64(lat[done/2])/cP50[vscChunks/2], "x-c-p50")
}

// vscC runs the C loop for n ops and returns its mean ns/op and its median
// per-op latency in TSC ticks.
func vscC(b *testing.B, prog string, n int) (mean, p50Ticks float64) {
	out, err := exec.CommandContext(context.Background(), prog, strconv.Itoa(n), strconv.Itoa(vscCPU)).CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v\n%s", filepath.Base(prog), err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 4 || f[0] != "ns/op" || f[2] != "p50-ticks" {
		b.Fatalf("%s printed %q, want \"ns/op <mean> p50-ticks <median>\"", filepath.Base(prog), out)
	}
	mean, err = strconv.ParseFloat(f[1], 64)
	if err == nil {
		p50Ticks, err = strconv.ParseFloat(f[3], 64)
	}
	if err != nil || mean <= 0 || p50Ticks <= 0 {
		b.Fatalf("%s printed %q: %v", filepath.Base(prog), out, err)
	}
	return mean, p50Ticks
}

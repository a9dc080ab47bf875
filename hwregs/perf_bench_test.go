package hwregs

import (
	"testing"
	"unsafe"

	"github.com/loov/hrtime"
	"golang.org/x/sys/unix"

	"bpbench/internal/cpupin"
)

// perfBenchCPU is the CPU the tracer thread of perf benchmarks runs on.
const perfBenchCPU = 0

// benchUpdatePerf runs BenchmarkUpdate's backend=perf cases: the bare
// syscalls (op=raw-*) and the same operations through PerfEvent, so
// PerfEvent's overhead is a ratio within one run. Each op alternates the
// breakpoint between two variables so the kernel really changes it.
func benchUpdatePerf(b *testing.B) {
	skipUnlessPerf(b)
	attrs := [2]Attr{perfWatch(0, Write), perfWatch(1, Write)}
	raw := [2]unix.PerfEventAttr{PerfAttr(attrs[0]), PerfAttr(attrs[1])}

	b.Run("op=raw-modify", func(b *testing.B) {
		perfRawLoop(b, &raw, func(fd int, attr *unix.PerfEventAttr) unix.Errno {
			return perfRawIoctl(fd, unix.PERF_EVENT_IOC_MODIFY_ATTRIBUTES, unsafe.Pointer(attr))
		})
	})
	b.Run("op=raw-reopen", func(b *testing.B) {
		perfBench(b, func(b *testing.B, lat []hrtime.Count) {
			fd := perfRawOpen(b, &raw[0])
			defer func() { unix.Close(fd) }()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := hrtime.TSC()
				unix.Close(fd)
				r1, _, errno := unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&raw[(i+1)&1])), 0, ^uintptr(0), ^uintptr(0), unix.PERF_FLAG_FD_CLOEXEC, 0)
				lat[i] = hrtime.TSC() - t0
				if errno != 0 {
					b.Fatal(errno)
				}
				fd = int(r1)
			}
		})
	})
	b.Run("op=raw-disable-enable", func(b *testing.B) {
		perfRawLoop(b, &raw, func(fd int, attr *unix.PerfEventAttr) unix.Errno {
			// Modifying a disabled event: the attr's disabled bit
			// keeps it off until the explicit enable.
			raw := *attr
			raw.Bits |= unix.PerfBitDisabled
			errno := perfRawIoctl(fd, unix.PERF_EVENT_IOC_DISABLE, nil)
			if errno == 0 {
				errno = perfRawIoctl(fd, unix.PERF_EVENT_IOC_MODIFY_ATTRIBUTES, unsafe.Pointer(&raw))
			}
			if errno == 0 {
				errno = perfRawIoctl(fd, unix.PERF_EVENT_IOC_ENABLE, nil)
			}
			return errno
		})
	})
	b.Run("op=modify", func(b *testing.B) {
		perfEventLoop(b, attrs, (*PerfEvent).Modify)
	})
	b.Run("op=disable-enable", func(b *testing.B) {
		perfEventLoop(b, attrs, func(e *PerfEvent, a Attr) error {
			err := e.Disable()
			if err == nil {
				err = e.Modify(a)
			}
			if err == nil {
				err = e.Enable()
			}
			return err
		})
	})
	b.Run("op=reregister", func(b *testing.B) {
		perfEventLoop(b, attrs, (*PerfEvent).Reregister)
	})
}

// perfRawLoop times op on one raw breakpoint fd opened with raw[0], op i
// switching it to raw[(i+1)&1].
func perfRawLoop(b *testing.B, raw *[2]unix.PerfEventAttr, op func(fd int, attr *unix.PerfEventAttr) unix.Errno) {
	perfBench(b, func(b *testing.B, lat []hrtime.Count) {
		fd := perfRawOpen(b, &raw[0])
		defer unix.Close(fd)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := hrtime.TSC()
			errno := op(fd, &raw[(i+1)&1])
			lat[i] = hrtime.TSC() - t0
			if errno != 0 {
				b.Fatal(errno)
			}
		}
	})
}

// perfEventLoop times op on one PerfEvent opened with attrs[0], op i
// switching it to attrs[(i+1)&1].
func perfEventLoop(b *testing.B, attrs [2]Attr, op func(e *PerfEvent, a Attr) error) {
	perfBench(b, func(b *testing.B, lat []hrtime.Count) {
		e := perfBenchOpen(b, attrs[0])
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := hrtime.TSC()
			err := op(e, attrs[(i+1)&1])
			lat[i] = hrtime.TSC() - t0
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// perfBench pins the benchmark's thread to perfBenchCPU (the events are
// opened for the calling thread, pid 0), runs body with one latency slot
// per op, and reports p50-ns and p99-ns.
func perfBench(b *testing.B, body func(b *testing.B, lat []hrtime.Count)) {
	unpin, err := cpupin.Pin(perfBenchCPU)
	if err != nil {
		b.Fatal(err)
	}
	defer unpin()
	lat := make([]hrtime.Count, b.N)
	b.ReportAllocs()
	body(b, lat)
	b.StopTimer()
	ptReportLatency(b, lat)
}

func perfRawOpen(b *testing.B, attr *unix.PerfEventAttr) int {
	fd, err := unix.PerfEventOpen(attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	return fd
}

func perfRawIoctl(fd int, req uint, arg unsafe.Pointer) unix.Errno {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	return errno
}

func perfBenchOpen(b *testing.B, a Attr) *PerfEvent {
	e, err := OpenPerf(a, 0, -1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

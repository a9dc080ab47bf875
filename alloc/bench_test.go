package alloc

import (
	"fmt"
	"runtime"
	"sort"
	"sync/atomic"
	"testing"
	"time"
)

// benchConfig is the simulated machine of every alloc benchmark: x86
// registers on 4 CPUs, fixed so figures compare across hosts.
var benchConfig = X86(4)

// benchTargets are the request shapes of BenchmarkReserveRelease.
var benchTargets = []struct {
	name string
	req  Request
}{
	{"cpu", Request{Task: NoTask, CPU: 1}},
	{"task", Request{Task: 1, CPU: AnyCPU}},
	{"taskcpu", Request{Task: 1, CPU: 1}},
}

func newBench(b *testing.B, s string) Allocator {
	b.Helper()
	a, err := New(s, benchConfig)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// reserveRelease is the measured pair; it fails the benchmark rather than
// silently measuring refusals.
func reserveRelease(b *testing.B, a Allocator, r Request) {
	s, err := a.Reserve(r)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Release(s); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReserveRelease measures one Reserve+Release pair per op, single
// goroutine, and with parallel=true one pair per op from GOMAXPROCS
// goroutines (b.RunParallel), each on its own task or CPU where the target
// allows it.
func BenchmarkReserveRelease(b *testing.B) {
	for _, s := range Strategies() {
		for _, tg := range benchTargets {
			b.Run(fmt.Sprintf("strategy=%s/target=%s", s, tg.name), func(b *testing.B) {
				a := newBench(b, s)
				reserveRelease(b, a, tg.req) // creates the task record outside the loop
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					reserveRelease(b, a, tg.req)
				}
			})
			b.Run(fmt.Sprintf("strategy=%s/target=%s/parallel=true", s, tg.name), func(b *testing.B) {
				a := newBench(b, s)
				var next atomic.Int64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					r := tg.req
					id := int(next.Add(1))
					if r.IsCPUBound() {
						r.CPU = id % benchConfig.CPUs
					} else {
						r.Task = id
						if r.CPU != AnyCPU {
							r.CPU = id % benchConfig.CPUs
						}
					}
					for pb.Next() {
						reserveRelease(b, a, r)
					}
				})
			})
		}
	}
}

// casWord is the floor's word, alone on its cache line.
var casWord struct {
	_ [64]byte
	w atomic.Uint64
	_ [56]byte
}

// floorPair is one uncontended CompareAndSwap that takes a free bit and
// one atomic clear of it; the compiler turns the clear into LOCK ANDQ.
func floorPair() {
	w := casWord.w.Load()
	bit := ^w & -^w
	if casWord.w.CompareAndSwap(w, w|bit) {
		casWord.w.And(^bit)
	}
}

// BenchmarkFloor/op=cas-pair is the physical floor the cas strategy is
// compared with in the same run: floorPair per op.
func BenchmarkFloor(b *testing.B) {
	b.Run("op=cas-pair", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			floorPair()
		}
	})
}

// ratioChunk is the number of pairs timed together in BenchmarkFloorRatio:
// enough that two clock reads are noise, few enough that floor and
// strategy chunks alternate many times a second.
const ratioChunk = 4096

// BenchmarkFloorRatio measures a strategy's CPU-bound Reserve+Release and
// the floor in alternating chunks of one run, so that the other load of a
// shared machine hits both alike. ns/op is the strategy's pair; floor-ns is
// the floor's; x-floor is the ratio of their median chunk times, the figure
// the cas target (<= 2.0x) is about.
func BenchmarkFloorRatio(b *testing.B) {
	for _, s := range Strategies() {
		b.Run("strategy="+s+"/target=cpu", func(b *testing.B) {
			a := newBench(b, s)
			r := benchTargets[0].req
			b.ReportAllocs()
			var strat, floor []time.Duration
			var total time.Duration
			for n := 0; n < b.N; n += ratioChunk {
				t0 := time.Now()
				for range ratioChunk {
					floorPair()
				}
				t1 := time.Now()
				for range ratioChunk {
					reserveRelease(b, a, r)
				}
				t2 := time.Now()
				floor = append(floor, t1.Sub(t0))
				strat = append(strat, t2.Sub(t1))
				total += t2.Sub(t1)
			}
			b.StopTimer()
			pairs := float64(len(strat) * ratioChunk)
			// b.N pairs were asked for, more were run: report per pair.
			b.ReportMetric(float64(total.Nanoseconds())/pairs, "ns/op")
			ms, mf := median(strat), median(floor)
			b.ReportMetric(float64(mf.Nanoseconds())/ratioChunk, "floor-ns")
			b.ReportMetric(float64(ms)/float64(mf), "x-floor")
		})
	}
}

// median sorts d and returns its middle element.
func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// benchTaskCounts are the live-task populations of BenchmarkTasks.
var benchTaskCounts = []int{16, 64, 256, 1024, 4096, 16384, 65536}

// BenchmarkTasks measures Reserve+Release with N live tasks each already
// holding one all-CPU breakpoint: op=task for one more all-CPU breakpoint
// of one of them, op=cpu for a CPU-bound one. It reports the median and
// p99 of per-pair latency sampled with time.Now around every 64th pair
// (sampling keeps the clock out of most iterations).
func BenchmarkTasks(b *testing.B) {
	for _, s := range Strategies() {
		for _, n := range benchTaskCounts {
			var a Allocator
			var held []Slot
			setup := func(b *testing.B) {
				if a != nil {
					return
				}
				a = newBench(b, s)
				ids := make([]int, n)
				for i := range ids {
					ids[i] = i
				}
				if l, ok := a.(*legacyAlloc); ok {
					held = l.preload(ids, Data) // see preload: O(n) instead of O(n^2)
					return
				}
				for _, id := range ids {
					sl, err := a.Reserve(Request{Task: id, CPU: AnyCPU})
					if err != nil {
						b.Fatal(err)
					}
					held = append(held, sl)
				}
			}
			for _, op := range []struct {
				name string
				req  Request
			}{
				{"task", Request{Task: n / 2, CPU: AnyCPU}},
				{"cpu", Request{Task: NoTask, CPU: 2}},
			} {
				b.Run(fmt.Sprintf("strategy=%s/tasks=%d/op=%s", s, n, op.name), func(b *testing.B) {
					setup(b)
					b.ReportAllocs()
					lat := make([]time.Duration, 0, 1024)
					b.ResetTimer()
					i := 0
					for b.Loop() {
						if i&63 == 0 && len(lat) < cap(lat) {
							t0 := time.Now()
							reserveRelease(b, a, op.req)
							lat = append(lat, time.Since(t0))
						} else {
							reserveRelease(b, a, op.req)
						}
						i++
					}
					b.StopTimer()
					reportPercentiles(b, lat)
				})
			}
			if a != nil {
				for _, sl := range held {
					if err := a.Release(sl); err != nil {
						b.Fatal(err)
					}
				}
				if a.InUse() {
					b.Fatal("InUse() after releasing the task population")
				}
			}
			runtime.GC()
		}
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

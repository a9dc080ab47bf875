// vsc.h: what the C floors of BenchmarkVsC share: their arguments
// (N ops, CPU to pin to or -1), pinning and the clock.
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile uint64_t vars[2] __attribute__((aligned(64)));

static void pin(int cpu) {
	if (cpu < 0)
		return;
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof s, &s) != 0) {
		perror("sched_setaffinity");
		exit(2);
	}
}

static uint64_t now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// rdtsc reads the time-stamp counter, as the Go side's hrtime.TSC does, so
// that both sides' per-op latencies are in the same ticks.
static inline uint64_t rdtsc(void) {
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static int cmpu64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

// report prints the mean over the timed loop (t0..t1 in ns) and the median
// per-op latency in ticks: "ns/op <mean> p50-ticks <median>".
static void report(uint64_t t0, uint64_t t1, uint64_t *lat, long n) {
	qsort(lat, n, sizeof lat[0], cmpu64);
	printf("ns/op %.1f p50-ticks %llu\n", (double)(t1 - t0) / (double)n, (unsigned long long)lat[n / 2]);
}

// args parses "N CPU" and pins the caller to CPU.
static long args(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s N CPU\n", argv[0]);
		exit(2);
	}
	pin(atoi(argv[2]));
	return atol(argv[1]);
}

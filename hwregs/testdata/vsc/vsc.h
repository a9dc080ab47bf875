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

// args parses "N CPU" and pins the caller to CPU.
static long args(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s N CPU\n", argv[0]);
		exit(2);
	}
	pin(atoi(argv[2]));
	return atol(argv[1]);
}

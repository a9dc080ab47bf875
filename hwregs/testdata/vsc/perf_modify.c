// perf_modify: the C floor of BenchmarkVsC/backend=perf/op=modify.
//
// The calling thread, pinned to CPU cpu, opens a write breakpoint of 8
// bytes on itself (perf_event_open pid 0, cpu -1, exclude_kernel and
// exclude_hv, as hwregs.OpenPerf does) and moves it between two variables
// with one PERF_EVENT_IOC_MODIFY_ATTRIBUTES per op, n ops.
// Usage: perf_modify N CPU (CPU -1: unpinned). Prints "ns/op <mean> p50-ticks <median>"
// (each op timed with rdtsc, as the Go side times its ops).
#include "vsc.h"

#include <errno.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	long n = args(argc, argv);
	struct perf_event_attr attr[2];
	for (int k = 0; k < 2; k++) {
		memset(&attr[k], 0, sizeof attr[k]);
		attr[k].type = PERF_TYPE_BREAKPOINT;
		attr[k].size = sizeof attr[k];
		attr[k].bp_type = HW_BREAKPOINT_W;
		attr[k].bp_addr = (uint64_t)&vars[k];
		attr[k].bp_len = HW_BREAKPOINT_LEN_8;
		attr[k].exclude_kernel = 1;
		attr[k].exclude_hv = 1;
	}
	int fd = syscall(SYS_perf_event_open, &attr[0], 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "perf_event_open: %s\n", strerror(errno));
		return 1;
	}
	for (long i = 0; i < n / 10 + 1; i++) // warm up
		if (ioctl(fd, PERF_EVENT_IOC_MODIFY_ATTRIBUTES, &attr[(i + 1) & 1]) != 0)
			goto fail;
	uint64_t *lat = malloc(n * sizeof *lat);
	uint64_t t0 = now();
	for (long i = 0; i < n; i++) {
		uint64_t c0 = rdtsc();
		if (ioctl(fd, PERF_EVENT_IOC_MODIFY_ATTRIBUTES, &attr[(i + 1) & 1]) != 0)
			goto fail;
		lat[i] = rdtsc() - c0;
	}
	uint64_t t1 = now();
	close(fd);
	report(t0, t1, lat, n);
	return 0;
fail:
	fprintf(stderr, "PERF_EVENT_IOC_MODIFY_ATTRIBUTES: %s\n", strerror(errno));
	return 1;
}

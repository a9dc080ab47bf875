// ptrace_poke: the C floor of BenchmarkVsC/backend=ptrace/op=modify.
//
// A forked child stops itself under PTRACE_TRACEME; the tracer, pinned to
// CPU cpu with the child, enables a write breakpoint of 8 bytes in slot 0
// and then moves it between two variables with one PTRACE_POKEUSER of DR0
// per op, n ops, as the Writer's Modify does under policy "changed".
// Usage: ptrace_poke N CPU (CPU -1: unpinned). Prints "ns/op <mean> p50-ticks <median>"
// (each op timed with rdtsc, as the Go side times its ops).
#include "vsc.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void poke(pid_t pid, int reg, uint64_t val) {
	if (ptrace(PTRACE_POKEUSER, pid, (void *)(offsetof(struct user, u_debugreg) + 8 * reg), (void *)val) != 0) {
		fprintf(stderr, "POKEUSER DR%d = %#llx: %s\n", reg, (unsigned long long)val, strerror(errno));
		kill(pid, SIGKILL);
		exit(1);
	}
}

int main(int argc, char **argv) {
	long n = args(argc, argv); // the child inherits the pinning
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
			_exit(3);
		raise(SIGSTOP);
		for (;;)
			pause();
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
		fprintf(stderr, "child did not stop\n");
		kill(pid, SIGKILL);
		return 1;
	}
	uint64_t addr[2] = {(uint64_t)&vars[0], (uint64_t)&vars[1]};
	uint64_t dr7 = 1 | (1u << 16) | (2u << 18); // L0, RW0 = write, LEN0 = 8 bytes
	poke(pid, 0, addr[0]);
	poke(pid, 7, dr7);
	for (long i = 0; i < n / 10 + 1; i++) // warm up
		poke(pid, 0, addr[(i + 1) & 1]);
	uint64_t *lat = malloc(n * sizeof *lat);
	uint64_t t0 = now();
	for (long i = 0; i < n; i++) {
		uint64_t c0 = rdtsc();
		poke(pid, 0, addr[(i + 1) & 1]);
		lat[i] = rdtsc() - c0;
	}
	uint64_t t1 = now();
	poke(pid, 7, 0);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	report(t0, t1, lat, n);
	return 0;
}

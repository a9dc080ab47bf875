/*
 * The C target of the debuggers experiment, for GDB: T threads. The main
 * thread, once the debugger sets `release`, keeps writing the eight
 * watched variables with a rising count, so that any write watchpoint on
 * them is hit at once, by one thread, and GDB, which stops only when the
 * value changes, always sees a change. Until then it sleeps, so the target
 * costs nothing while the debugger attaches. The T-1 other threads block
 * for ever, as the idle threads of a real program do: the debugger still
 * programs, resumes and stops each of them. It prints "ready" when all
 * threads run and is killed by its parent.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* 8 bytes each, so a watchpoint of length 8 covers one exactly. */
volatile long watch0, watch1, watch2, watch3, watch4, watch5, watch6, watch7;
volatile int release;
static volatile int started;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *idle(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	started++;
	pthread_mutex_unlock(&mu);
	for (;;)
		pause();
	return NULL;
}

static void write_forever(void)
{
	long n = 0;
	while (!release)
		usleep(1000);
	for (;;) {
		n++;
		watch0 = n; watch1 = n; watch2 = n; watch3 = n;
		watch4 = n; watch5 = n; watch6 = n; watch7 = n;
	}
}

int main(int argc, char **argv)
{
	char *end;
	long t;
	pthread_t th;

	if (argc != 2 || (t = strtol(argv[1], &end, 10)) < 1 || *end != '\0' || t > 100000) {
		fprintf(stderr, "usage: %s THREADS (1..100000)\n", argv[0]);
		return 2;
	}
	for (long i = 1; i < t; i++) {
		if (pthread_create(&th, NULL, idle, NULL) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	for (;;) {
		pthread_mutex_lock(&mu);
		int s = started;
		pthread_mutex_unlock(&mu);
		if (s == t - 1)
			break;
		usleep(1000);
	}
	printf("ready\n");
	fflush(stdout);
	write_forever();
	return 0;
}

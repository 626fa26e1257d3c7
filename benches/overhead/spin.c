// Fixed CPU-bound workload for the collector overhead benchmark (benches/benches/ebpf_overhead.rs):
// `spin <threads> <iterations>` runs <iterations> rounds of a 64-bit LCG on each of <threads>
// threads and exits. The work is fixed, so its wall time shows what other processes (a
// profiler) take from it. Built with clang -O2 -fno-omit-frame-pointer.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned long iterations;
static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long mix(unsigned long x)
{
	for (int i = 0; i < 1000; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	return x;
}

static void *work(void *arg)
{
	unsigned long x = (unsigned long)arg;
	for (unsigned long i = 0; i < iterations; i++)
		x = mix(x);
	sink = x;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: spin <threads> <iterations>\n");
		return 2;
	}
	int threads = atoi(argv[1]);
	iterations = strtoul(argv[2], NULL, 10);
	pthread_t t[256];
	if (threads < 1 || threads > 256)
		return 2;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, work, (void *)(unsigned long)(i + 1));
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	return 0;
}

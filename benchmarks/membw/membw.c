// membw: what this machine's cores can stream from DRAM, the bound on batch-1 decoding.
//
// Reads a 1 GiB buffer of floats (summing it, so nothing is optimised away) with 1 or more
// OpenMP threads, each walking S interleaved streams with a software prefetch, on 4 KiB pages
// or on transparent huge pages. This is the ceiling tensorops' GEMV is compared with.
//
//   gcc -O3 -mavx2 -fopenmp benchmarks/membw/membw.c -o /tmp/membw
//   OMP_NUM_THREADS=2 /tmp/membw            # all configurations, best and mean of 8 passes
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static void run(float *a, size_t n, int streams, int pf, const char *pages) {
	double best = 0, sum = 0;
	const int passes = 8;
	for (int rep = 0; rep < passes; rep++) {
		double t0 = now();
		float tot = 0;
#pragma omp parallel reduction(+ : tot)
		{
			int T = omp_get_num_threads(), id = omp_get_thread_num();
			size_t per = n / T, seg = per / streams;
			float *base = a + per * id;
			__m256 acc[8];
			for (int s = 0; s < 8; s++) acc[s] = _mm256_setzero_ps();
			for (size_t i = 0; i < seg; i += 16) {
				for (int s = 0; s < streams; s++) {
					float *p = base + s * seg + i;
					if (pf) _mm_prefetch((const char *)p + pf, _MM_HINT_T0);
					acc[s] = _mm256_add_ps(acc[s], _mm256_add_ps(_mm256_load_ps(p), _mm256_load_ps(p + 8)));
				}
			}
			float v[8];
			for (int s = 0; s < streams; s++) {
				_mm256_storeu_ps(v, acc[s]);
				for (int j = 0; j < 8; j++) tot += v[j];
			}
		}
		double g = n * 4 / (now() - t0) / 1e9;
		if (tot != (float)tot) puts("");
		best = g > best ? g : best;
		sum += g;
	}
	printf("threads %d  %-10s streams %d  prefetch %4d B  best %5.1f GB/s  mean %5.1f GB/s\n",
	       omp_get_max_threads(), pages, streams, pf, best, sum / passes);
}

int main(void) {
	const size_t n = (size_t)1 << 28, bytes = n * 4, huge = 2 << 20;
	for (int hp = 0; hp < 2; hp++) {
		char *raw = mmap(0, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (raw == MAP_FAILED) return 1;
		float *a = (float *)(((size_t)raw + huge - 1) & ~(huge - 1));
		if (hp) madvise(a, bytes, MADV_HUGEPAGE);
#pragma omp parallel for
		for (size_t i = 0; i < n; i++) a[i] = 1.0f;
		const int cfg[][2] = {{1, 0}, {1, 2048}, {4, 0}, {4, 2048}};
		for (int c = 0; c < 4; c++) run(a, n, cfg[c][0], cfg[c][1], hp ? "huge" : "4k-pages");
		munmap(raw, bytes + huge);
	}
	return 0;
}

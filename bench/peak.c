/* bench/peak: this machine's fp32 multiply-add peak, the ceiling any fp32
 * convolution (fd's, oneDNN's, PyTorch's) runs under, or its bf16 one.
 * Each of T OpenMP threads runs 12 independent chains of 512-bit (AVX-512)
 * or 256-bit (AVX2) fused multiply-adds, enough to cover the FMA units'
 * latency, for a fixed count; the best of REPS timed runs is printed as
 * GFLOP/s (2 flops per lane per FMA). The chains converge to a fixed
 * point, so the values stay finite, and their sum is printed so the loop
 * cannot be dropped. bf16: the same chains of AVX512-BF16's VDPBF16PS
 * (each fp32 lane adds the products of two bf16 pairs: 4 flops per lane),
 * the instruction of oneDNN's avx512_core_bf16 kernels (and autocast's on
 * a CPU without AMX); the sums grow by 2e-6 a step and stay finite.
 *
 *   build/bench/peak [THREADS [REPS [fp32|bf16|copy]]]  (default 2 threads, 5 runs, fp32)
 *
 * Output, one line: threads, vector width in bits, GFLOP/s, GFLOP/s per
 * thread, the checksum, and the precision. bench/results/tuned.md "fp32
 * ceiling" and "The ceiling of the goals left on the Zen 4 EPYC" use it to
 * put fd's and PyTorch's rates against the machine. Exit status 1 (and a
 * message) where the CPU lacks what the precision needs.
 *
 * copy: the memory ceiling of a pass that reads one array and writes
 * another (the BN + ReLU + pool op's passes, a reorder): T threads each
 * copy their share of 128 Mi bf16-sized values (256 MiB read, 256 MiB
 * written, both beyond any cache) adding 1; prints GB/s moved (bytes read
 * plus bytes written over the time), the best of REPS, in the same line
 * with "precision copy". */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHAINS = 12 };
#define ITERS 50000000L

__attribute__((target("avx512f"))) static double run512(void)
{
	__m512 a[CHAINS];
	for (int i = 0; i < CHAINS; i++)
		a[i] = _mm512_set1_ps(1.0f + (float)i * 1e-3f);
	const __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
	for (long it = 0; it < ITERS; it++)
#pragma GCC unroll 12
		for (int i = 0; i < CHAINS; i++) /* unrolled: the chains stay in registers */
			a[i] = _mm512_fmadd_ps(a[i], b, c);
	double s = 0;
	for (int i = 0; i < CHAINS; i++)
		s += _mm512_reduce_add_ps(a[i]);
	return s;
}

__attribute__((target("avx2,fma"))) static double run256(void)
{
	__m256 a[CHAINS];
	for (int i = 0; i < CHAINS; i++)
		a[i] = _mm256_set1_ps(1.0f + (float)i * 1e-3f);
	const __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
	for (long it = 0; it < ITERS; it++)
#pragma GCC unroll 12
		for (int i = 0; i < CHAINS; i++)
			a[i] = _mm256_fmadd_ps(a[i], b, c);
	float v[8];
	double s = 0;
	for (int i = 0; i < CHAINS; i++) {
		_mm256_storeu_ps(v, a[i]);
		for (int k = 0; k < 8; k++)
			s += v[k];
	}
	return s;
}

__attribute__((target("avx512f,avx512bf16"))) static double run512bf16(void)
{
	__m512 a[CHAINS];
	for (int i = 0; i < CHAINS; i++)
		a[i] = _mm512_set1_ps((float)i * 1e-3f);
	const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
	for (long it = 0; it < ITERS; it++)
#pragma GCC unroll 12
		for (int i = 0; i < CHAINS; i++)
			a[i] = _mm512_dpbf16_ps(a[i], b, b);
	double s = 0;
	for (int i = 0; i < CHAINS; i++)
		s += _mm512_reduce_add_ps(a[i]);
	return s;
}

/* the copy mode: GB/s read + written, the best of reps */
static double copy_rate(int threads, int reps, double *check)
{
	const size_t n = (size_t)128 << 20;
	unsigned short *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
	if (!a || !b) {
		fprintf(stderr, "peak: copy: out of memory\n");
		exit(1);
	}
#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		a[i] = (unsigned short)i, b[i] = 0; /* the pages touched before timing */
	double best = 0;
	for (int r = 0; r < reps; r++) {
		double t0 = omp_get_wtime();
#pragma omp parallel for num_threads(threads) schedule(static)
		for (size_t i = 0; i < n; i++)
			b[i] = (unsigned short)(a[i] + 1);
		double t = omp_get_wtime() - t0, gb = 2.0 * n * sizeof *a / t / 1e9;
		if (gb > best)
			best = gb;
	}
	*check = (double)b[n / 3] + b[n - 1];
	free(a), free(b);
	return best;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 5;
	const char *prec = argc > 3 ? argv[3] : "fp32";
	int bf16 = !strcmp(prec, "bf16"), copy = !strcmp(prec, "copy");
	if (threads < 1 || reps < 1 || argc > 4 || (!bf16 && !copy && strcmp(prec, "fp32"))) {
		fprintf(stderr, "usage: peak [THREADS [REPS [fp32|bf16|copy]]]\n");
		return 2;
	}
	if (copy) {
		double check, gb = copy_rate(threads, reps, &check);
		printf("threads %d\tgbytes_per_s %.1f\tper_thread %.1f\tchecksum %.6g\tprecision copy\n", threads, gb,
		       gb / threads, check);
		return 0;
	}
	__builtin_cpu_init();
	int w512 = __builtin_cpu_supports("avx512f"), w256 = __builtin_cpu_supports("avx2");
	if (bf16 && !(w512 && __builtin_cpu_supports("avx512bf16"))) {
		fprintf(stderr, "peak: bf16 needs AVX512-BF16, which this CPU lacks\n");
		return 1;
	}
	if (!w512 && !w256) {
		fprintf(stderr, "peak: neither AVX-512 nor AVX2 on this CPU\n");
		return 1;
	}
	int lanes = w512 ? 16 : 8, flops = bf16 ? 4 : 2;
	double best = 0, sum = 0;
	for (int r = 0; r < reps; r++) {
		double t0 = omp_get_wtime(), s = 0;
#pragma omp parallel num_threads(threads) reduction(+ : s)
		s += bf16 ? run512bf16() : w512 ? run512() : run256();
		double t = omp_get_wtime() - t0;
		double gf = (double)threads * ITERS * CHAINS * lanes * flops / t / 1e9;
		if (gf > best)
			best = gf;
		sum = s;
	}
	printf("threads %d\twidth %d\tgflops %.1f\tper_thread %.1f\tchecksum %.6g\tprecision %s\n", threads,
	       lanes * 32, best, best / threads, sum, prec);
	return 0;
}

/* fma6x16: the step and the store of fd's 6 x 16 fp32 register kernels
 * (wino.c's product, dconv.c's direct forward): twelve 8-float sums
 * a00..a51 (row r's 16 columns in ar0, ar1) in AVX2 registers. Macros, so
 * each kernel keeps its own loop, addressing and target attribute (the
 * code generated is the kernels' own). Internal to lib/nn; include after
 * <immintrin.h>, in a function compiled for avx2 and fma. */
#ifndef FD_FMA6X16_H
#define FD_FMA6X16_H

/* The twelve sums, zero */
#define FMA6X16_ZERO()                                                                                    \
	__m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;          \
	__m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00

/* One step: v's 16 floats (two loads) times each of the six floats at
 * p0..p5 (a broadcast each), added into the sums by fused multiply-adds */
#define FMA6X16_STEP(v, p0, p1, p2, p3, p4, p5)                                                           \
	do {                                                                                              \
		__m256 b0_ = _mm256_loadu_ps(v), b1_ = _mm256_loadu_ps((v) + 8), a_;                      \
		a_ = _mm256_broadcast_ss(p0);                                                             \
		a00 = _mm256_fmadd_ps(a_, b0_, a00), a01 = _mm256_fmadd_ps(a_, b1_, a01);                 \
		a_ = _mm256_broadcast_ss(p1);                                                             \
		a10 = _mm256_fmadd_ps(a_, b0_, a10), a11 = _mm256_fmadd_ps(a_, b1_, a11);                 \
		a_ = _mm256_broadcast_ss(p2);                                                             \
		a20 = _mm256_fmadd_ps(a_, b0_, a20), a21 = _mm256_fmadd_ps(a_, b1_, a21);                 \
		a_ = _mm256_broadcast_ss(p3);                                                             \
		a30 = _mm256_fmadd_ps(a_, b0_, a30), a31 = _mm256_fmadd_ps(a_, b1_, a31);                 \
		a_ = _mm256_broadcast_ss(p4);                                                             \
		a40 = _mm256_fmadd_ps(a_, b0_, a40), a41 = _mm256_fmadd_ps(a_, b1_, a41);                 \
		a_ = _mm256_broadcast_ss(p5);                                                             \
		a50 = _mm256_fmadd_ps(a_, b0_, a50), a51 = _mm256_fmadd_ps(a_, b1_, a51);                 \
	} while (0)

/* m[6][16] = the sums */
#define FMA6X16_STORE(m)                                                                                  \
	do {                                                                                              \
		_mm256_storeu_ps(m, a00), _mm256_storeu_ps((m) + 8, a01);                                 \
		_mm256_storeu_ps((m) + 16, a10), _mm256_storeu_ps((m) + 24, a11);                         \
		_mm256_storeu_ps((m) + 32, a20), _mm256_storeu_ps((m) + 40, a21);                         \
		_mm256_storeu_ps((m) + 48, a30), _mm256_storeu_ps((m) + 56, a31);                         \
		_mm256_storeu_ps((m) + 64, a40), _mm256_storeu_ps((m) + 72, a41);                         \
		_mm256_storeu_ps((m) + 80, a50), _mm256_storeu_ps((m) + 88, a51);                         \
	} while (0)

#endif

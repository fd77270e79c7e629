/* fd_vmath: single-precision exp and erf as branch-free inline C, so the
 * elementwise loops that call them (lib/nn/act.c) vectorise: libm's expf/erff
 * are out-of-line scalar calls that keep GCC from vectorising the loop.
 * Only IEEE basic operations (+ - * /, comparisons, integer bit moves; no
 * FMA, no libm): every vector width (SSE2, AVX2, AVX-512 clones of
 * core/fd_vec.h) gives the same bits. The polynomials are minimax fits made
 * for this file (doc/nn-kernels.md "Transcendentals": the method, the
 * accuracy measured over every float). */
#ifndef FD_VMATH_H
#define FD_VMATH_H

#include <stdint.h>
#include <string.h>

static inline uint32_t fd_vm_bits(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	return u;
}

static inline float fd_vm_float(uint32_t u)
{
	float x;
	memcpy(&x, &u, sizeof x);
	return x;
}

/* c ? a : b as a bit mask, never a branch: with GCC's default
 * -ftrapping-math a `?:` on floats lets it specialise the arithmetic after it
 * per arm and then refuse to vectorise the loop ("control flow in loop") */
static inline float fd_vm_sel(int c, float a, float b)
{
	uint32_t m = -(uint32_t)(c != 0);
	return fd_vm_float((fd_vm_bits(a) & m) | (fd_vm_bits(b) & ~m));
}

/* e^x for every float x, as libm's expf: results within 2 ulp (subnormal
 * results within 1 subnormal step), +inf above ~88.72 (and for +inf), +0 below
 * ~-103.97 (and for -inf), NaN for NaN. x = n ln2 + r with |r| <= ln2/2
 * (Cody-Waite: ln2 split in a 9-bit head, exact for |n| <= 150, and a tail),
 * e^r = 1 + r + r^2 P(r), then 2^n applied as two factors 2^(n/2) so a
 * subnormal result is rounded once. */
static inline float fd_vm_expf(float x)
{
	/* comparisons, not fminf/fmaxf: a NaN passes through (and no libm call) */
	x = fd_vm_sel(x < -104.0f, -104.0f, x); /* e^-104 < 2^-150: rounds to +0 */
	x = fd_vm_sel(x > 89.0f, 89.0f, x);     /* e^89 > FLT_MAX: rounds to +inf */
	/* adding 1.5*2^23 rounds x/ln2 to an integer held in t's low bits */
	float t = x * 1.44269504f + 12582912.0f;
	float n = t - 12582912.0f;
	int32_t k = (int32_t)(fd_vm_bits(t) - 0x4b400000u); /* n as an integer, -150 .. 128 */
	float r = x - n * 0.693359375f;
	r = r - n * -2.12194440e-4f;
	float p = 1.38145976e-3f;
	p = p * r + 8.36871006e-3f;
	p = p * r + 4.16683890e-2f;
	p = p * r + 1.66665211e-1f;
	p = p * r + 4.99999940e-1f;
	float e = 1.0f + (r + r * r * p);
	int32_t k1 = k >> 1, k2 = k - k1; /* each in -75 .. 64: 2^k1, 2^k2 normal */
	return e * fd_vm_float((uint32_t)(k1 + 127) << 23) * fd_vm_float((uint32_t)(k2 + 127) << 23);
}

/* erf(x) for every float x, as libm's erff: within 2 ulp, +-1 for +-inf,
 * NaN for NaN, erf(-x) = -erf(x). |x| <= 0.875: x + x Q(x^2); above,
 * 1 - e^P(|x|) with P ~ log erfc on [0.875, 4] (erf rounds to 1 from 3.92 on,
 * so |x| is clamped to 4 and the polynomial never extrapolates). Both are
 * computed and one is chosen, so the loop has no branch. */
static inline float fd_vm_erff(float x)
{
	float a = __builtin_fabsf(x);
	float s = x * x;
	float q = -6.20325562e-4f;
	q = q * s + 5.03218127e-3f;
	q = q * s + -2.67914627e-2f;
	q = q * s + 1.12824552e-1f;
	q = q * s + -3.76125515e-1f;
	q = q * s + 1.28379151e-1f;
	float small = x + x * q;
	float t = fd_vm_sel(a > 4.0f, 4.0f, a); /* keeps a NaN */
	float p = 1.99901697e-4f;
	p = p * t + -3.08199902e-3f;
	p = p * t + 2.23810412e-2f;
	p = p * t + -1.04250222e-1f;
	p = p * t + -6.36820614e-1f;
	p = p * t + -1.12788940e+0f;
	p = p * t + -1.44207661e-4f;
	float big = __builtin_copysignf(1.0f - fd_vm_expf(p), x);
	return fd_vm_sel(a <= 0.875f, small, big);
}

#endif

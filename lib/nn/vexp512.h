/* vexp512: e^a on 16 float lanes in AVX-512 intrinsics, for the kernels
 * that apply an exponential in registers (mbfront.c's SiLU, act.c's bf16
 * GELU). fd_vm_expf's reduction (n = round(a / ln 2), ln 2 in two parts)
 * and polynomial, with fused multiply-adds, so within a few ulp of
 * fd_vm_expf, not its bits; 2^n applied by vscalefps (+inf or +0 beyond
 * the float range, NaN kept). Internal to lib/nn; include it where
 * x86-64 intrinsics are compiled (the callers' target attributes include
 * avx512f). */
#ifndef FD_VEXP512_H
#define FD_VEXP512_H

#include <immintrin.h>

__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) __m512 fd_v512_exp(__m512 a)
{
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(1.44269504f)),
					_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), a);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.38145976e-3f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.36871006e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.16683890e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.66665211e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.99999940e-1f));
	__m512 e = _mm512_add_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r));
	return _mm512_scalef_ps(e, n);
}

#endif

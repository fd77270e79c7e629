/* act_inline: the formulas of the activations that other kernels fuse
 * (batchnorm2d's train-mode BN + activation), shared with act.c's loops so
 * a fused kernel gives the bits of the separate op. Inline, branch-free
 * (fd_vm_sel, fd_vm_expf): the loops that call them vectorise. Internal to
 * lib/nn. */
#ifndef FD_ACT_INLINE_H
#define FD_ACT_INLINE_H

#include <stdint.h>

#include "core/fd_vmath.h"
#include "nn/fd_backend.h"

#define FD_AI inline __attribute__((always_inline))

/* y rounded to bf16 bit for bit as fd_dnnl_to_bf16 (vcvtne2ps2bf16) does
 * it: nearest even, a NaN made quiet, a subnormal flushed to a zero of its
 * sign. Integer operations only, so a loop that calls it vectorises at the
 * loop's own width (t_nn_bf16out compares it with fd_dnnl_to_bf16 around
 * every rounding boundary of every exponent). */
static FD_AI uint16_t fd_ai_bf16(float y)
{
	uint32_t u;
	__builtin_memcpy(&u, &y, sizeof u);
	uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
	r = (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r;
	r = (u & 0x7f800000u) == 0 ? (u >> 16) & 0x8000u : r;
	return (uint16_t)r;
}

/* a bf16 value widened to a float (exact: the bits shifted up) */
static FD_AI float fd_ai_f32(uint16_t b)
{
	uint32_t u = (uint32_t)b << 16;
	float f;
	__builtin_memcpy(&f, &u, sizeof f);
	return f;
}

/* logistic sigmoid */
static FD_AI float fd_ai_sigm(float x)
{
	return 1.0f / (1.0f + fd_vm_expf(-x));
}

/* clamp to [0, 6] with comparisons: a NaN gives NaN, as PyTorch's kernels */
static FD_AI float fd_ai_clamp06(float t)
{
	t = t < 0.0f ? 0.0f : t;
	return t > 6.0f ? 6.0f : t;
}

/* f(x) for k = relu, hardswish, silu; x itself for any other k (callers
 * pass -1 for "no activation"). Call with k a constant. */
static FD_AI float fd_ai_fwd(int k, float x)
{
	switch (k) {
	case FD_ACT_RELU:
		return x > 0 ? x : 0.0f;
	case FD_ACT_HARDSWISH:
		return x * fd_ai_clamp06(x + 3.0f) / 6.0f;
	case FD_ACT_SILU: /* one rounding fewer than x * sigm(x) */
		return x / (1.0f + fd_vm_expf(-x));
	default:
		return x;
	}
}

/* f'(x) dy for the same k (dy for any other k): relu 0 at x = 0, hardswish
 * x/3 + 1/2 on the closed [-3, 3] (torch's choices, see act.h). */
static FD_AI float fd_ai_grad(int k, float x, float dy)
{
	switch (k) {
	case FD_ACT_RELU:
		return fd_vm_sel(x > 0, dy, 0.0f);
	case FD_ACT_HARDSWISH:
		return fd_vm_sel(x < -3.0f, 0.0f, fd_vm_sel(x <= 3.0f, dy * (x / 3.0f + 0.5f), dy));
	case FD_ACT_SILU: {
		float s = fd_ai_sigm(x);
		return dy * s * (1.0f + x * (1.0f - s));
	}
	default:
		return dy;
	}
}

#endif

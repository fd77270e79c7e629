/* act: elementwise activations and PReLU. The CPU kernels are the plain loops
 * themselves (one pass, OpenMP over elements); exp and erf are core/fd_vmath.h's
 * inline versions, so the loops vectorise (libm's are scalar calls). */
#include "nn/act.h"
#include "nn/layout.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/fd_vec.h"
#include "core/fd_vmath.h"
#include "nn/act_inline.h"

static const char *const act_names[FD_ACT_COUNT] = {
	"relu", "hardswish", "hardsigmoid", "silu", "sigmoid", "gelu",
};

const char *fd_act_name(enum fd_act k)
{
	return (unsigned)k < FD_ACT_COUNT ? act_names[k] : "unknown";
}

/* Phi(x) = P(N(0,1) <= x), GELU's gate */
static inline float gauss_cdf(float x)
{
	return 0.5f * (1.0f + fd_vm_erff(x * (float)M_SQRT1_2));
}

/* phi(x) = exp(-x^2 / 2) / sqrt(2 pi), the normal density */
static inline float gauss_pdf(float x)
{
	const float k_beta = (float)(0.5 * M_2_SQRTPI * M_SQRT1_2); /* 1/sqrt(2 pi) */
	return fd_vm_expf(-0.5f * x * x) * k_beta;
}

/* GELU'(x) = Phi(x) + x phi(x), given cdf = Phi(x): the one expression of
 * both GELU backwards (from x, or from this value saved by the taped
 * forward), so they agree bit for bit (ISO C mode: no contraction into a
 * multiply-add either way) */
static inline float gelu_grad(float x, float cdf)
{
	return cdf + x * gauss_pdf(x);
}

/* The backward of a GELU whose forward saved GELU'(x) over its input
 * (fd_act_ in training): a kind of its own for the chunk kernels, whose x
 * then holds g = GELU'(x) and dx = dy * g. Never a public enum fd_act. */
#define ACT_GELU_SAVED FD_ACT_COUNT
/* The same with x in bf16 (FD_T_BF16, a convolution's output under
 * c->bf16_y): x then holds GELU'(x) rounded to bf16 (gelu_save_chunk_b) */
#define ACT_GELU_SAVED_BF16 (FD_ACT_COUNT + 1)

/* The kernels work on chunks of CHUNK elements: OpenMP hands out chunks, and
 * each chunk runs in a function with an AVX2 clone (core/fd_vec.h). The
 * formulas of relu, hardswish and silu are nn/act_inline.h's (shared with
 * batchnorm2d's fused BN + activation). Clamps are written as comparisons,
 * not fminf/fmaxf (which GCC calls out of line without -ffast-math): a NaN
 * input gives NaN, as PyTorch's vectorised kernels do. */
#define CHUNK 16384

FD_VEC_CLONES
static void fwd_chunk(enum fd_act k, int64_t n, const float *restrict x, float *restrict y)
{
	switch (k) {
	case FD_ACT_RELU:
		for (int64_t i = 0; i < n; i++)
			y[i] = fd_ai_fwd(FD_ACT_RELU, x[i]);
		break;
	case FD_ACT_HARDSWISH:
		for (int64_t i = 0; i < n; i++)
			y[i] = fd_ai_fwd(FD_ACT_HARDSWISH, x[i]);
		break;
	case FD_ACT_HARDSIGMOID:
		for (int64_t i = 0; i < n; i++)
			y[i] = fd_ai_clamp06(x[i] + 3.0f) / 6.0f;
		break;
	case FD_ACT_SILU:
		for (int64_t i = 0; i < n; i++)
			y[i] = fd_ai_fwd(FD_ACT_SILU, x[i]);
		break;
	case FD_ACT_SIGMOID:
		for (int64_t i = 0; i < n; i++)
			y[i] = fd_ai_sigm(x[i]);
		break;
	default:
		break;
	}
}

/* GELU's forward in a function of its own: inside fwd_chunk's switch GCC 12
 * left this loop scalar ("no vectype" for the load), 20x slower than the
 * vectorised one here (gelu_save_chunk's body, without the save) */
FD_VEC_CLONES
static void gelu_chunk(int64_t n, const float *restrict x, float *restrict y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = x[i] * gauss_cdf(x[i]);
}

/* GELU's backward from x: g = GELU'(x) dy, added into dx (add) or written
 * as 0 + it (the bits bwd_body's other cases give a fresh dx); g may be dy
 * or dx (element i reads both before writing it). In a function of its own
 * with one loop: inside bwd_body's switch, or beside other loops, GCC 12
 * left it scalar ("no vectype" for the load of x), 10x slower. */
FD_VEC_CLONES
static void gelu_bwd_chunk(int64_t n, const float *restrict x, const float *g, float *dx, int add)
{
	for (int64_t i = 0; i < n; i++) {
		float v = x[i], cdf = gauss_cdf(v);
		float d = g[i] * gelu_grad(v, cdf);
		dx[i] = fd_vm_sel(add, dx[i], 0.0f) + d;
	}
}

/* dx += the gradient for every element, or dx = 0 + it when wr (a fresh
 * gradient, struct fd_node's writes: the bits adding to zeros gives, without
 * reading dx). Inlined into three clones, each wr a constant; selects
 * (fd_vm_sel), not `?:`, so every loop vectorises. Element i reads dy[i]
 * before writing dx[i], so dx may be dy (bwd_chunk_inplace). */
static inline __attribute__((always_inline)) void bwd_body(int k, int64_t n,
							   const float *restrict x, const float *restrict y,
							   const float *dy, float *dx, const int wr)
{
#define DX(i) (wr ? 0.0f : dx[i])
	switch (k) {
	case FD_ACT_RELU:
		for (int64_t i = 0; i < n; i++)
			dx[i] = DX(i) + fd_ai_grad(FD_ACT_RELU, x[i], dy[i]);
		break;
	case FD_ACT_HARDSWISH:
		for (int64_t i = 0; i < n; i++)
			dx[i] = DX(i) + fd_ai_grad(FD_ACT_HARDSWISH, x[i], dy[i]);
		break;
	case FD_ACT_HARDSIGMOID:
		for (int64_t i = 0; i < n; i++)
			dx[i] = DX(i) + fd_vm_sel((x[i] > -3.0f) & (x[i] < 3.0f), dy[i] / 6.0f, 0.0f);
		break;
	case FD_ACT_SILU:
		for (int64_t i = 0; i < n; i++)
			dx[i] = DX(i) + fd_ai_grad(FD_ACT_SILU, x[i], dy[i]);
		break;
	case FD_ACT_SIGMOID:
		for (int64_t i = 0; i < n; i++)
			dx[i] = DX(i) + dy[i] * y[i] * (1.0f - y[i]);
		break;
	case FD_ACT_GELU:
		gelu_bwd_chunk(n, x, dy, dx, !wr);
		break;
	case ACT_GELU_SAVED:
		for (int64_t i = 0; i < n; i++)
			dx[i] = DX(i) + dy[i] * x[i];
		break;
	default:
		break;
	}
#undef DX
}

FD_VEC_CLONES
static void bwd_chunk_add(int k, int64_t n, const float *restrict x, const float *restrict y,
			  const float *restrict dy, float *restrict dx)
{
	bwd_body(k, n, x, y, dy, dx, 0);
}

FD_VEC_CLONES
static void bwd_chunk_write(int k, int64_t n, const float *restrict x, const float *restrict y,
			    const float *restrict dy, float *restrict dx)
{
	bwd_body(k, n, x, y, dy, dx, 1);
}

/* bwd_chunk_write with dx == dy: g holds dy and receives dx (struct
 * fd_node's aliases) */
FD_VEC_CLONES
static void bwd_chunk_inplace(int k, int64_t n, const float *restrict x, const float *restrict y,
			      float *restrict g)
{
	bwd_body(k, n, x, y, g, g, 1);
}

/* y = GELU(x) as fwd_chunk computes it, and x overwritten with GELU'(x):
 * one erf for both (element i reads x[i] before writing it) */
FD_VEC_CLONES
static void gelu_save_chunk(int64_t n, float *x, float *restrict y)
{
	for (int64_t i = 0; i < n; i++) {
		float v = x[i], cdf = gauss_cdf(v);
		y[i] = v * cdf;
		x[i] = gelu_grad(v, cdf);
	}
}

/* relu over x in place: the same comparison as fwd_chunk, no aliasing there */
FD_VEC_CLONES
static void relu_inplace_chunk(int64_t n, float *x)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = x[i] > 0 ? x[i] : 0.0f;
}

int fd_act_fwd_cpu(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, float *y)
{
	if ((unsigned)k >= FD_ACT_COUNT) {
		fd_fail(c, "activation %d: unknown", (int)k);
		return -1;
	}
	int64_t nc = (n + CHUNK - 1) / CHUNK;
	if (x == y) {
		if (k != FD_ACT_RELU) {
			fd_fail(c, "%s: not available in place", act_names[k]);
			return -1;
		}
#pragma omp parallel for num_threads(c->threads) schedule(static) if (nc > 1)
		for (int64_t b = 0; b < nc; b++) {
			int64_t o = b * CHUNK;
			relu_inplace_chunk(n - o < CHUNK ? n - o : CHUNK, y + o);
		}
		return 0;
	}
#pragma omp parallel for num_threads(c->threads) schedule(static) if (nc > 1)
	for (int64_t b = 0; b < nc; b++) {
		int64_t o = b * CHUNK, m = n - o < CHUNK ? n - o : CHUNK;
		if (k == FD_ACT_GELU)
			gelu_chunk(m, x + o, y + o);
		else
			fwd_chunk(k, m, x + o, y + o);
	}
	return 0;
}

/* gelu_save_chunk with y rounded to bf16 (fd_ai_bf16: fd_dnnl_to_bf16's
 * bits) into yb: y's floats never leave the registers. Only called in bf16
 * contexts (AVX512-BF16 checked), hence the target; 512-bit vectors, which
 * GCC's generic tuning would not pick for it (256-bit: 1.4x slower). Per
 * 38.5M values, 2 threads: 34 ms, against 50 ms for the fp32 GELU and 62
 * ms when y went through a buffer and fd_dnnl_to_bf16 (doc/nn-kernels.md
 * "bf16 hand-off"). */
FD_VEC_AVX512_ONLY
static void gelu_save_chunk_bf16(int64_t n, float *x, uint16_t *restrict yb)
{
	for (int64_t i = 0; i < n; i++) {
		float v = x[i], cdf = gauss_cdf(v);
		yb[i] = fd_ai_bf16(v * cdf);
		x[i] = gelu_grad(v, cdf);
	}
}

/* gelu_save_chunk_bf16 with x in bf16 (widened exactly in the loads) and
 * GELU'(x) written over it rounded to bf16 (fd_ai_bf16); y in bf16 (yb) or
 * floats (y, yb NULL). bf16 contexts only, as gelu_save_chunk_bf16. */
FD_VEC_AVX512_ONLY
static void gelu_save_chunk_b(int64_t n, uint16_t *x, float *restrict y, uint16_t *restrict yb)
{
	if (yb) {
		for (int64_t i = 0; i < n; i++) {
			float v = fd_ai_f32(x[i]), cdf = gauss_cdf(v);
			yb[i] = fd_ai_bf16(v * cdf);
			x[i] = fd_ai_bf16(gelu_grad(v, cdf));
		}
	} else {
		for (int64_t i = 0; i < n; i++) {
			float v = fd_ai_f32(x[i]), cdf = gauss_cdf(v);
			y[i] = v * cdf;
			x[i] = fd_ai_bf16(gelu_grad(v, cdf));
		}
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
#include "nn/vexp512.h"
#define GB_X86 1
#else
#define GB_X86 0
#endif

#if GB_X86
/* gelu_save_chunk_b with bf16 x, y and GELU'(x) in AVX-512 intrinsics:
 * fd_vm_erff's and fd_vm_expf's polynomials with fused multiply-adds,
 * 2^n by vscalefps, the roundings by vcvtneps2bf16 (fd_ai_bf16's bits).
 * The floats before rounding may differ from the portable loop's by an
 * ulp, the bf16 values do not: over all 65536 bf16 inputs both give the
 * same y and GELU'(x) bits (t_nn_bf16in runs every one), so this is the
 * same op, 2.3x faster (doc/nn-kernels.md "GELU in bf16: intrinsics"). */
#define GB_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define GB_INLINE static inline __attribute__((always_inline))

/* y = x Phi(x) and g = GELU'(x) = Phi(x) + x phi(x) on 16 lanes: erf(u),
 * u = x / sqrt 2, as fd_vm_erff (both branches, one chosen), and phi from
 * e^(-u^2) */
GB_TARGET GB_INLINE void gb_gelu(__m512 x, __m512 *y, __m512 *g)
{
	__m512 u = _mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2));
	__m512 s = _mm512_mul_ps(u, u);
	__m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(u), _mm512_set1_epi32(0x7fffffff)));
	__m512 q = _mm512_set1_ps(-6.20325562e-4f);
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(5.03218127e-3f));
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(-2.67914627e-2f));
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(1.12824552e-1f));
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(-3.76125515e-1f));
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(1.28379151e-1f));
	__m512 small = _mm512_fmadd_ps(u, q, u);
	/* vminps returns its second operand where either is a NaN: a NaN stays */
	__m512 t = _mm512_min_ps(_mm512_set1_ps(4.0f), a);
	__m512 p = _mm512_set1_ps(1.99901697e-4f);
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-3.08199902e-3f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(2.23810412e-2f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.04250222e-1f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-6.36820614e-1f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.12788940e+0f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.44207661e-4f));
	__m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f), fd_v512_exp(p));
	/* big | (u & sign): copysign, big being >= 0 */
	big = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(big), _mm512_castps_si512(u),
							    _mm512_set1_epi32((int)0x80000000u), 0xf8));
	__m512 erf = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.875f), _CMP_LE_OQ), big, small);
	__m512 cdf = _mm512_fmadd_ps(erf, _mm512_set1_ps(0.5f), _mm512_set1_ps(0.5f));
	*y = _mm512_mul_ps(x, cdf);
	__m512 h = _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_sub_ps(_mm512_setzero_ps(), s));
	__m512 pdf = _mm512_mul_ps(fd_v512_exp(h), _mm512_set1_ps((float)(0.5 * M_2_SQRTPI * M_SQRT1_2)));
	*g = _mm512_fmadd_ps(x, pdf, cdf);
}

/* the n - n % 16 first values of gelu_save_chunk_b with yb; returns how
 * many it did */
GB_TARGET static int64_t gelu_save_bb_avx512(int64_t n, uint16_t *x, uint16_t *restrict yb)
{
	int64_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(x + i)));
		__m512 y, g;
		gb_gelu(_mm512_castsi512_ps(_mm512_slli_epi32(w, 16)), &y, &g);
		_mm256_storeu_si256((void *)(yb + i), (__m256i)_mm512_cvtneps_pbh(y));
		_mm256_storeu_si256((void *)(x + i), (__m256i)_mm512_cvtneps_pbh(g));
	}
	return i;
}
#endif

int fd_act_gelu_bf16_fast(void)
{
#if GB_X86
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
	return 0;
#endif
}

/* GELU over x into y, or into yb in bf16 (y NULL), with GELU'(x) over x
 * (gelu_save_chunk); xb: x holds bf16 values (gelu_save_chunk_b, or its
 * intrinsics where y is bf16 too: the same bits) */
static void gelu_save_cpu(struct fd_ctx *c, int64_t n, void *x, int xb, float *y, uint16_t *yb)
{
	int64_t nc = (n + CHUNK - 1) / CHUNK;
	int fast = xb && yb && fd_act_gelu_bf16_fast();
#pragma omp parallel for num_threads(c->threads) schedule(static) if (nc > 1)
	for (int64_t b = 0; b < nc; b++) {
		int64_t o = b * CHUNK, m = n - o < CHUNK ? n - o : CHUNK;
#if GB_X86
		if (fast) {
			int64_t d = gelu_save_bb_avx512(m, (uint16_t *)x + o, yb + o);
			o += d;
			m -= d;
		}
#endif
		if (xb)
			gelu_save_chunk_b(m, (uint16_t *)x + o, y ? y + o : NULL, yb ? yb + o : NULL);
		else if (yb)
			gelu_save_chunk_bf16(m, (float *)x + o, yb + o);
		else
			gelu_save_chunk(m, (float *)x + o, y + o);
	}
}

/* The backward of ACT_GELU_SAVED_BF16: dx = dy g with g = GELU'(x) in
 * bf16, added into dx or written (wr; dx may then be dy) */
FD_VEC_AVX512_ONLY
static void gelu_saved_b_chunk(int64_t n, const uint16_t *restrict g, const float *dy, float *dx, int wr)
{
	if (!wr) {
		for (int64_t i = 0; i < n; i++)
			dx[i] = dx[i] + dy[i] * fd_ai_f32(g[i]);
	} else if (dx == dy) {
		for (int64_t i = 0; i < n; i++)
			dx[i] = 0.0f + dx[i] * fd_ai_f32(g[i]);
	} else {
		for (int64_t i = 0; i < n; i++)
			dx[i] = 0.0f + dy[i] * fd_ai_f32(g[i]);
	}
}

/* The backward of ACT_GELU_SAVED_BF16 into a bf16 dx (FD_T_GRAD_BF16, the
 * gradient hand-off: always fresh): dx = dy g rounded (fd_ai_bf16), the
 * bits fd_dnnl_to_bf16 gives the float dx of gelu_saved_b_chunk */
FD_VEC_AVX512_ONLY
static void gelu_saved_b_chunk_b(int64_t n, const uint16_t *restrict g, const float *restrict dy,
				 uint16_t *restrict dx)
{
	for (int64_t i = 0; i < n; i++)
		dx[i] = fd_ai_bf16(0.0f + dy[i] * fd_ai_f32(g[i]));
}

/* fd_act_bwd_cpu for k an enum fd_act, ACT_GELU_SAVED (x then holds
 * GELU'(x)) or ACT_GELU_SAVED_BF16 (x then holds GELU'(x) in bf16, the
 * pointer cast), overwriting dx when wr (a fresh gradient, which may be dy
 * itself) */
static void bwd_cpu(struct fd_ctx *c, int k, int64_t n, const float *x, const float *y, const float *dy,
		    float *dx, int wr)
{
	int64_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (nc > 1)
	for (int64_t b = 0; b < nc; b++) {
		int64_t o = b * CHUNK;
		int64_t m = n - o < CHUNK ? n - o : CHUNK;
		if (k == ACT_GELU_SAVED_BF16)
			gelu_saved_b_chunk(m, (const uint16_t *)(const void *)x + o, dy + o, dx + o, wr);
		else if (wr && dx == dy)
			bwd_chunk_inplace(k, m, x ? x + o : NULL, y ? y + o : NULL, dx + o);
		else if (wr)
			bwd_chunk_write(k, m, x ? x + o : NULL, y ? y + o : NULL, dy + o, dx + o);
		else
			bwd_chunk_add(k, m, x ? x + o : NULL, y ? y + o : NULL, dy + o, dx + o);
	}
}

int fd_act_bwd_cpu(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, const float *y,
		   const float *dy, float *dx)
{
	if ((unsigned)k >= FD_ACT_COUNT) {
		fd_fail(c, "activation %d: unknown", (int)k);
		return -1;
	}
	bwd_cpu(c, k, n, x, y, dy, dx, 0);
	return 0;
}

struct act_saved {
	int k; /* enum fd_act, ACT_GELU_SAVED or ACT_GELU_SAVED_BF16 */
};

static int act_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct act_saved *s = n->saved;
	struct fd_tensor *x = n->in[0], *y = n->out;
	if (x->dev == FD_DEV_CPU && (x->flags & FD_T_GRAD_BF16)) { /* GELU's, fresh (bf16_grads bit 0) */
		const uint16_t *g = (const uint16_t *)(const void *)x->data;
		const float *dy = y->grad;
		uint16_t *dx = (uint16_t *)(void *)x->grad;
		int64_t n = x->numel, nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (nc > 1)
		for (int64_t b = 0; b < nc; b++) {
			int64_t o = b * CHUNK, m = n - o < CHUNK ? n - o : CHUNK;
			gelu_saved_b_chunk_b(m, g + o, dy + o, dx + o);
		}
		return 0;
	}
	if (x->dev == FD_DEV_CPU) { /* a fresh dx (the node's writes bit 0) is overwritten */
		bwd_cpu(c, s->k, x->numel, x->data, y->data, y->grad, x->grad, (x->flags & FD_T_GRAD_FRESH) != 0);
		return 0;
	}
	const struct fd_backend *be = FD_KERNEL(c, x->dev, act_bwd);
	if (!be)
		return -1;
	return be->act_bwd(c, (enum fd_act)s->k, x->numel, x->data, y->data, y->grad, x->grad);
}

/* y = k(x); over x when inplace and k is relu. inplace with k gelu, on the
 * CPU and recorded: y new and GELU'(x) over x for the backward
 * (ACT_GELU_SAVED), the caller's guarantee of fd_act_ making x's values
 * free to overwrite; y in bf16 there under c->bf16_out (the backward reads
 * GELU'(x) only). x in bf16 (FD_T_BF16) only there, in a bf16 context:
 * GELU'(x) is then written over it rounded to bf16 (ACT_GELU_SAVED_BF16). */
static struct fd_tensor *act(struct fd_ctx *c, enum fd_act k, struct fd_tensor *x, int inplace)
{
	if (!x)
		return NULL;
	if ((unsigned)k >= FD_ACT_COUNT)
		return fd_fail(c, "activation %d: unknown", (int)k);
	int grad = fd_needs_grad(c, 1, &x);
	int save = inplace && k == FD_ACT_GELU && x->dev == FD_DEV_CPU && grad;
	int xb = (x->flags & FD_T_BF16) != 0;
	if (xb && (!save || c->precision != FD_PREC_BF16))
		return fd_fail(c, "%s: bf16 input only to a recorded in-place gelu in a bf16 context", act_names[k]);
	inplace = inplace && k == FD_ACT_RELU;
	int yb = save && c->bf16_out && c->precision == FD_PREC_BF16;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, act_fwd);
	struct fd_tensor *y = !be ? NULL
			      : inplace ? fd_tensor_wrap(c, x->dev, x->data, x->ndim, x->shape)
			      : yb	? fd_tensor_new_bf16(c, x->ndim, x->shape)
					: fd_tensor_new(c, x->dev, x->ndim, x->shape);
	if (y)
		y->layout = x->layout; /* elementwise: any layout */
	if (!y)
		return NULL;
	/* the gradient hand-off (c->bf16_dy): x, in bf16, is the output of the
	 * conv2d recorded just before (whose backward reads a bf16 dy as it
	 * is; the caller's word that nothing else reads x): dx written fresh
	 * in bf16 (doc/nn-kernels.md "GELU's gradient in bf16") */
	int dxb = save && xb && c->bf16_dy && c->training && !x->grad &&
		  !(x->flags & (FD_T_RETAIN_GRAD | FD_T_GRAD_BF16)) && c->tape && c->tape->out == x &&
		  strcmp(c->tape->op, "conv2d") == 0;
	if (save)
		gelu_save_cpu(c, x->numel, x->data, xb, yb ? NULL : y->data, yb ? (uint16_t *)y->data : NULL);
	else if (be->act_fwd(c, k, x->numel, x->data, y->data) < 0)
		return NULL;
	if (grad) {
		struct fd_node *n = fd_tape_push(c, act_names[k], act_backward, 1, &x, y, sizeof(struct act_saved));
		if (!n)
			return NULL;
		((struct act_saved *)n->saved)->k = save ? (xb ? ACT_GELU_SAVED_BF16 : ACT_GELU_SAVED) : (int)k;
		if (x->dev == FD_DEV_CPU)
			n->writes = n->aliases = 1u; /* act_backward overwrites a fresh dx, also dy itself */
		if (dxb) {
			x->flags |= FD_T_GRAD_BF16;
			n->bf16_grads = 1u;
			c->bf16_dys++;
		}
	}
	return y;
}

struct fd_tensor *fd_act(struct fd_ctx *c, enum fd_act k, struct fd_tensor *x) { return act(c, k, x, 0); }
struct fd_tensor *fd_relu_(struct fd_ctx *c, struct fd_tensor *x) { return act(c, FD_ACT_RELU, x, 1); }
struct fd_tensor *fd_act_(struct fd_ctx *c, enum fd_act k, struct fd_tensor *x) { return act(c, k, x, 1); }
struct fd_tensor *fd_relu(struct fd_ctx *c, struct fd_tensor *x) { return fd_act(c, FD_ACT_RELU, x); }
struct fd_tensor *fd_hardswish(struct fd_ctx *c, struct fd_tensor *x) { return fd_act(c, FD_ACT_HARDSWISH, x); }
struct fd_tensor *fd_silu(struct fd_ctx *c, struct fd_tensor *x) { return fd_act(c, FD_ACT_SILU, x); }
struct fd_tensor *fd_sigmoid(struct fd_ctx *c, struct fd_tensor *x) { return fd_act(c, FD_ACT_SIGMOID, x); }
struct fd_tensor *fd_gelu(struct fd_ctx *c, struct fd_tensor *x) { return fd_act(c, FD_ACT_GELU, x); }

int fd_prelu_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
		     const float *w, float *y)
{
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
	for (int64_t n = 0; n < N; n++)
		for (int64_t ch = 0; ch < C; ch++) {
			const float *xp = x + (n * C + ch) * inner;
			float *yp = y + (n * C + ch) * inner;
			float a = w[ch];
			for (int64_t i = 0; i < inner; i++)
				yp[i] = xp[i] > 0 ? xp[i] : a * xp[i];
		}
	return 0;
}

int fd_prelu_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
		     const float *w, const float *dy, float *dx, float *dw)
{
	/* parallel over channels so each thread owns its dw[ch] */
#pragma omp parallel for num_threads(c->threads) schedule(static)
	for (int64_t ch = 0; ch < C; ch++) {
		double acc = 0;
		float a = w[ch];
		for (int64_t n = 0; n < N; n++) {
			const float *xp = x + (n * C + ch) * inner, *g = dy + (n * C + ch) * inner;
			for (int64_t i = 0; i < inner; i++) {
				if (xp[i] > 0) {
					if (dx)
						dx[(n * C + ch) * inner + i] += g[i];
				} else {
					if (dx)
						dx[(n * C + ch) * inner + i] += a * g[i];
					acc += (double)xp[i] * g[i];
				}
			}
		}
		if (dw)
			dw[ch] += (float)acc;
	}
	return 0;
}

static int prelu_backward(struct fd_ctx *c, struct fd_node *n)
{
	struct fd_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, prelu_bwd);
	if (!be)
		return -1;
	int64_t inner = x->numel / (x->shape[0] * x->shape[1]);
	return be->prelu_bwd(c, x->shape[0], x->shape[1], inner, x->data, w->data, y->grad,
			     (x->flags & FD_T_REQUIRES_GRAD) ? x->grad : NULL,
			     (w->flags & FD_T_REQUIRES_GRAD) ? w->grad : NULL);
}

struct fd_tensor *fd_prelu(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w)
{
	if (!x || !w)
		return NULL;
	char b1[64], b2[64];
	if (x->ndim < 2 || w->numel != x->shape[1] || w->dev != x->dev)
		return fd_fail(c, "prelu: input %s and weight %s do not match (want [C] slopes on %s)",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(w, b2, sizeof b2),
			       fd_dev_name(x->dev));
	if (!(x = fd_to_layout(c, x, FD_NCHW)))
		return NULL;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, prelu_fwd);
	struct fd_tensor *y = be ? fd_tensor_new(c, x->dev, x->ndim, x->shape) : NULL;
	int64_t inner = x->numel / (x->shape[0] * x->shape[1]);
	if (!y || be->prelu_fwd(c, x->shape[0], x->shape[1], inner, x->data, w->data, y->data) < 0)
		return NULL;
	struct fd_tensor *in[2] = {x, w};
	if (fd_needs_grad(c, 2, in) && !fd_tape_push(c, "prelu", prelu_backward, 2, in, y, 0))
		return NULL;
	return y;
}

static double act_ref(enum fd_act k, double x)
{
	switch (k) {
	case FD_ACT_RELU:
		return x > 0 ? x : 0.0;
	case FD_ACT_HARDSWISH:
		return x * fmin(fmax(x + 3.0, 0.0), 6.0) / 6.0;
	case FD_ACT_HARDSIGMOID:
		return fmin(fmax(x + 3.0, 0.0), 6.0) / 6.0;
	case FD_ACT_SILU:
		return x / (1.0 + exp(-x));
	case FD_ACT_SIGMOID:
		return 1.0 / (1.0 + exp(-x));
	case FD_ACT_GELU:
		return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
	default:
		return NAN;
	}
}

/* d act(x) / dx */
static double act_ref_grad(enum fd_act k, double x)
{
	double s = 1.0 / (1.0 + exp(-x));
	switch (k) {
	case FD_ACT_RELU:
		return x > 0 ? 1.0 : 0.0;
	case FD_ACT_HARDSWISH:
		return x < -3.0 ? 0.0 : x <= 3.0 ? x / 3.0 + 0.5 : 1.0;
	case FD_ACT_HARDSIGMOID:
		return x > -3.0 && x < 3.0 ? 1.0 / 6.0 : 0.0;
	case FD_ACT_SILU:
		return s * (1.0 + x * (1.0 - s));
	case FD_ACT_SIGMOID:
		return s * (1.0 - s);
	case FD_ACT_GELU:
		return 0.5 * (1.0 + erf(x * M_SQRT1_2)) + x * exp(-0.5 * x * x) * 0.5 * M_2_SQRTPI * M_SQRT1_2;
	default:
		return NAN;
	}
}

void fd_act_ref_forward(enum fd_act k, int64_t n, const double *x, double *y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = act_ref(k, x[i]);
}

void fd_act_ref_backward(enum fd_act k, int64_t n, const double *x, const double *dy, double *dx)
{
	for (int64_t i = 0; i < n; i++)
		dx[i] += dy[i] * act_ref_grad(k, x[i]);
}

void fd_prelu_ref_forward(int64_t N, int64_t C, int64_t inner, const double *x, const double *w,
			  double *y)
{
	for (int64_t n = 0; n < N; n++)
		for (int64_t ch = 0; ch < C; ch++)
			for (int64_t i = 0; i < inner; i++) {
				int64_t j = (n * C + ch) * inner + i;
				y[j] = x[j] > 0 ? x[j] : w[ch] * x[j];
			}
}

void fd_prelu_ref_backward(int64_t N, int64_t C, int64_t inner, const double *x, const double *w,
			   const double *dy, double *dx, double *dw)
{
	for (int64_t n = 0; n < N; n++)
		for (int64_t ch = 0; ch < C; ch++)
			for (int64_t i = 0; i < inner; i++) {
				int64_t j = (n * C + ch) * inner + i;
				if (dx)
					dx[j] += x[j] > 0 ? dy[j] : w[ch] * dy[j];
				if (dw && !(x[j] > 0))
					dw[ch] += x[j] * dy[j];
			}
}

/* mbback: an inverted-residual block's squeeze-excitation scaling,
 * projection and residual add at inference in one pass (see mbback.h).
 *
 * Work: (image, band of pixels) tasks over c->threads. A task computes its
 * image's gates from the channel sums (fd_se_gate), packs the projection's
 * weights times the gates (wp[o][i] g[i], rounded to float) per group of 3
 * blocks of 16 output channels, input channel by input channel (from a
 * copy packed so once a call), then runs
 * register tiles of 7 pixels x nb (<= 3) blocks over its pixels: the sums
 * from the bias, one fused multiply-add per input channel in order, the
 * residual's value added, the last block's padded channels masked off. */
#include "nn/mbback.h"
#include "core/fd_vec.h"
#include "nn/act.h"
#include "nn/layout.h"
#include "nn/tile7.h"
#include "nn/se.h"

#include <omp.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MB_X86 1
#else
#define MB_X86 0
#endif

#define MB_P FD_T7_P   /* pixels of a tile (tile7.h) */
#define MB_NB FD_T7_NB /* 16-channel output blocks of a tile, at most */

struct mb {
	int N, C, Q, K, K16, HW, act, gate, bands, res;
	int gate_x;                         /* 1: the gates scale a copy of the pixels (an image
					     * has fewer pixels than output channels: the 7x7
					     * maps), 0: the weights, per image */
	int64_t pwf;                        /* floats of one packed weight set */
	const float *x;                     /* [N, HW, C] */
	const double *sums;                 /* [N][C] */
	const float *w1, *b1, *w2, *b2;
	const float *wp;                    /* the projection packed as the tiles read it: per
					     * group of MB_NB blocks g (nb blocks), at g MB_NB 16 C,
					     * [C][nb 16], zero-padded */
	const float *bp;                    /* [K16], zero-padded */
	float *y;                           /* [N, HW, K]; holds the residual where res */
};

static int cpu_ok(void)
{
#if MB_X86
	return __builtin_cpu_supports("avx512f");
#else
	return 0;
#endif
}

int fd_mbback_serves(const struct fd_ctx *c, const struct fd_tensor *x, int act, int gate)
{
	return c->dev == FD_DEV_CPU && c->precision == FD_PREC_FP32 && x && x->dev == FD_DEV_CPU && x->ndim == 4 &&
	       !(x->flags & FD_T_BF16) && (fd_is_nhwc(x) || x->shape[2] * x->shape[3] == 1) && act >= 0 && gate >= 0 &&
	       fd_se_act_ok((enum fd_act)act) && fd_se_act_ok((enum fd_act)gate) && cpu_ok();
}

#if MB_X86
#define MB_TARGET FD_VEC_AVX512_ONLY
/* as mbfront.c's tiles: no UBSan checks in the unrolled register tile */
#define MB_NO_UBSAN __attribute__((no_sanitize("undefined")))

/* Pixels q0 .. q0 + np - 1 (np <= MB_P) of image n, output blocks cb ..
 * cb + nb - 1, from the packed weights pw (this group's at pw) */
MB_TARGET static inline __attribute__((always_inline)) void tile_b(const int nb, const int res, const struct mb *d,
								   int64_t n, const float *xq, int q0, int np, int cb,
								   const float *pw)
{
	/* xq: the tile's first pixel of x (or of its gated copy) */
	const float *xp[MB_P];
	for (int i = 0; i < MB_P; i++)
		xp[i] = xq + (int64_t)(i < np ? i : np - 1) * d->C;
	__m512 acc[MB_P][MB_NB];
	FD_TILE7_SUMS(acc, nb, xp, d->C, pw, d->bp + cb * 16);
	__mmask16 mk[MB_NB];
#pragma GCC unroll 4
	for (int j = 0; j < nb; j++) {
		int left = d->K - (cb + j) * 16;
		mk[j] = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
	}
	float *yn = d->y + n * d->HW * (int64_t)d->K;
#pragma GCC unroll 8
	for (int i = 0; i < MB_P; i++) {
		if (i >= np)
			break;
		float *o = yn + (int64_t)(q0 + i) * d->K + cb * 16;
#pragma GCC unroll 4
		for (int j = 0; j < nb; j++) {
			__m512 v = acc[i][j];
			if (res)
				v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk[j], o + j * 16));
			_mm512_mask_storeu_ps(o + j * 16, mk[j], v);
		}
	}
}

typedef void (*tile_fn)(const struct mb *, int64_t, const float *, int, int, int, const float *);
#define MB_TILE(NB, RES, NAME)                                                                               \
	MB_TARGET MB_NO_UBSAN __attribute__((noinline)) static void NAME(const struct mb *d, int64_t n,          \
									  const float *xq, int q0, int np,      \
									  int cb, const float *pw)              \
	{                                                                                                    \
		tile_b(NB, RES, d, n, xq, q0, np, cb, pw);                                                   \
	}
MB_TILE(1, 0, t1)
MB_TILE(2, 0, t2)
MB_TILE(3, 0, t3)
MB_TILE(1, 1, t1r)
MB_TILE(2, 1, t2r)
MB_TILE(3, 1, t3r)

/* o[i][j] = w[i][j] g[j] for i < rows, j < n (rows of n, g per column) */
MB_TARGET static void scale_cols(const float *restrict w, const float *restrict g, int64_t rows, int n,
				 float *restrict o)
{
	for (int64_t i = 0; i < rows; i++)
		for (int j = 0; j < n; j++)
			o[i * n + j] = w[i * n + j] * g[j];
}

/* o[i][j] = w[i][j] g[i] for i < C, j < n (g per row) */
MB_TARGET static void scale_rows(const float *restrict w, const float *restrict g, int C, int n, float *restrict o)
{
	for (int i = 0; i < C; i++)
		for (int j = 0; j < n; j++)
			o[(int64_t)i * n + j] = w[(int64_t)i * n + j] * g[i];
}

/* Task t: image t / bands, its band t % bands of pixels. pw: d->pwf floats
 * (the gated weights, or the gated pixels where d->gate_x), mean: C + Q
 * doubles, g: C floats */
MB_TARGET static void task(const struct mb *d, int64_t t, float *pw, double *mean, float *g)
{
	static const tile_fn tf[2][MB_NB] = {{t1, t2, t3}, {t1r, t2r, t3r}};
	const int64_t n = t / d->bands;
	const int b = (int)(t % d->bands), C = d->C;
	/* bands of whole tiles: pixels q0 .. q1 */
	const int tiles = (d->HW + MB_P - 1) / MB_P;
	const int q0 = (int)((int64_t)tiles * b / d->bands) * MB_P;
	int q1 = (int)((int64_t)tiles * (b + 1) / d->bands) * MB_P;
	q1 = q1 < d->HW ? q1 : d->HW;
	if (q0 >= q1)
		return;
	const double *s = d->sums + n * C;
	for (int i = 0; i < C; i++)
		mean[i] = s[i] / (double)d->HW;
	fd_se_gate(C, d->Q, mean, d->w1, d->b1, d->w2, d->b2, (enum fd_act)d->act, (enum fd_act)d->gate, mean + C, g);
	const float *xn = d->x + (n * d->HW + q0) * (int64_t)C; /* pixel q0 */
	if (d->gate_x) { /* the band's pixels times the gates, the weights as they are */
		scale_cols(xn, g, q1 - q0, C, pw);
		xn = pw;
	}
	const int nblk = d->K16 / 16;
	for (int cb = 0; cb < nblk; cb += MB_NB) {
		int nb = nblk - cb < MB_NB ? nblk - cb : MB_NB;
		/* this group's weights (d->wp holds them packed, zero-padded, in
		 * the order the tile reads), or times the gates: one contiguous
		 * pass */
		const float *wg = d->wp + (int64_t)cb * 16 * C;
		if (!d->gate_x) {
			float *pg = pw + (int64_t)cb * 16 * C;
			scale_rows(wg, g, C, nb * 16, pg);
			wg = pg;
		}
		tile_fn f = tf[d->res][nb - 1];
		for (int q = q0; q < q1; q += MB_P)
			f(d, n, xn + (int64_t)(q - q0) * C, q, q1 - q < MB_P ? q1 - q : MB_P, cb, wg);
	}
}
#endif

/* t is [rows, cols] or [rows, cols, 1, 1] */
static int is_mat(const struct fd_tensor *t, int64_t rows, int64_t cols)
{
	return t && t->shape[0] == rows && t->numel == rows * cols &&
	       (t->ndim == 2 || (t->ndim == 4 && t->shape[1] == cols));
}

struct fd_tensor *fd_mbback_infer(struct fd_ctx *c, struct fd_tensor *x, const double *sums, struct fd_tensor *w1,
				  struct fd_tensor *b1, struct fd_tensor *w2, struct fd_tensor *b2, int act, int gate,
				  struct fd_tensor *wp, struct fd_tensor *bp, struct fd_tensor *res, int add)
{
	if (!x || !sums || !w1 || !b1 || !w2 || !b2 || !wp || !bp)
		return NULL;
	struct fd_tensor *in[8] = {x, w1, b1, w2, b2, wp, bp, res};
	int nin = res ? 8 : 7;
	for (int i = 0; i < nin; i++)
		if (in[i]->dev != FD_DEV_CPU)
			return fd_fail(c, "mbback_infer: tensors must be on the cpu");
	if (fd_needs_grad(c, nin, in))
		return fd_fail(c, "mbback_infer records no gradient: an input needs one");
	if (!fd_mbback_serves(c, x, act, gate))
		return fd_fail(c, "mbback_infer: not for this input, %s, %s or CPU (fp32 channels last, the "
				  "activations fd_se_infer takes, AVX-512)",
			       act >= 0 ? fd_act_name((enum fd_act)act) : "no activation",
			       gate >= 0 ? fd_act_name((enum fd_act)gate) : "no gate");
	char b[64], bw[64];
	int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], Q = w1->shape[0];
	int64_t K = wp->shape[0];
	if (!is_mat(w1, Q, C) || b1->numel != Q || !is_mat(w2, C, Q) || b2->numel != C || !is_mat(wp, K, C) ||
	    bp->numel != K || K > INT32_MAX / 64 || C > INT32_MAX / 64)
		return fd_fail(c, "mbback_infer: weights (%s projection) do not fit x %s",
			       fd_tensor_shape_str(wp, bw, sizeof bw), fd_tensor_shape_str(x, b, sizeof b));
	if (res && (res->ndim != 4 || res->shape[0] != N || res->shape[1] != K || res->shape[2] != H ||
		    res->shape[3] != W || !(fd_is_nhwc(res) || H * W == 1) || (res->flags & FD_T_BF16) ||
		    (res->data < x->data + x->numel && x->data < res->data + res->numel)))
		return fd_fail(c, "mbback_infer: output %s is not a channels-last [%lld, %lld, %lld, %lld] apart "
				  "from x",
			       fd_tensor_shape_str(res, b, sizeof b), (long long)N, (long long)K, (long long)H,
			       (long long)W);
#if MB_X86
	struct mb d = {.N = (int)N, .C = (int)C, .Q = (int)Q, .K = (int)K, .K16 = (int)((K + 15) / 16 * 16),
		       .HW = (int)(H * W), .act = act, .gate = gate, .res = res && add};
	const int nt = c->threads < 1 ? 1 : c->threads;
	const int tiles = (d.HW + MB_P - 1) / MB_P;
	d.bands = d.N >= 2 * nt ? 1 : (2 * nt + d.N - 1) / d.N;
	if (d.bands > tiles)
		d.bands = tiles;
	struct fd_tensor *y = res;
	if (!y) {
		int64_t ys[4] = {N, K, H, W};
		if (!(y = fd_tensor_new(c, FD_DEV_CPU, 4, ys)))
			return NULL;
		y->layout = FD_NHWC;
	}
	struct fd_arena_mark m = fd_arena_mark(&c->arena);
	/* per thread: the packed weights (whole groups of MB_NB blocks), C + Q
	 * doubles, C floats */
	const int64_t ngrp = (d.K16 / 16 + MB_NB - 1) / MB_NB;
	d.pwf = ngrp * MB_NB * 16 * C;
	/* gate whichever is smaller: an image's pixels or the weights (by the
	 * shape alone, not the bands, so the bits do not depend on the thread
	 * count) */
	const int64_t band_px = ((int64_t)(tiles + d.bands - 1) / d.bands) * MB_P;
	d.gate_x = d.HW < d.K16;
	const int64_t scrf = d.gate_x ? band_px * C : d.pwf;
	const int64_t per = (scrf + 2 * (C + Q) + C + 32 + 15) / 16 * 16;
	float *scr = fd_ctx_alloc(c, FD_DEV_CPU, nt * per), *pb = fd_ctx_alloc(c, FD_DEV_CPU, d.K16);
	float *pk = fd_ctx_alloc(c, FD_DEV_CPU, d.pwf);
	if (!scr || !pb || !pk) {
		fd_arena_release(&c->arena, &m, NULL, 0);
		return NULL;
	}
	memset(pb, 0, (size_t)d.K16 * sizeof *pb);
	memcpy(pb, bp->data, (size_t)K * sizeof *pb);
	fd_tile7_pack(wp->data, K, C, d.K16, nt, pk);
	d.x = x->data, d.sums = sums, d.w1 = w1->data, d.b1 = b1->data, d.w2 = w2->data, d.b2 = b2->data;
	d.wp = pk, d.bp = pb, d.y = y->data;
	const int64_t tasks = (int64_t)d.N * d.bands;
	#pragma omp parallel num_threads(nt)
	{
		float *pw = scr + (int64_t)omp_get_thread_num() * per;
		double *mean = (double *)(pw + scrf);
		float *g = (float *)(mean + C + Q);
		#pragma omp for schedule(static)
		for (int64_t t = 0; t < tasks; t++)
			task(&d, t, pw, mean, g);
	}
	fd_arena_release(&c->arena, &m, NULL, 0);
	c->macs += (uint64_t)(2 * N * C * Q) + (uint64_t)(N * H * W) * (uint64_t)(K * C);
	return y;
#else
	return fd_fail(c, "mbback_infer: not built for this CPU");
#endif
}

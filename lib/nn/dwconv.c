/* dwconv: depthwise backward-weights over NHWC (see dwconv.h). C over
 * 8-float vectors of channels (a GCC/Clang vector extension, with AVX2 and
 * SSE2 clones, core/fd_vec.h), OpenMP over fixed chunks of output rows, each
 * chunk summing into its own partial dw, the partials folded in chunk order
 * (doc/nn-kernels.md "Depthwise backward-weights"). */
#include "nn/dwconv.h"
#include "core/fd_vec.h"
#include "nn/layout.h"

#include <string.h>

/* Output rows (n, oh) are split into at most DW_CHUNKS chunks, whatever the
 * thread count: enough to keep 16 threads busy, few enough that the
 * partials stay small (ConvNeXt's 768-channel 7x7: 32 x 50 x 768 floats,
 * 4.9 MB, released after the call). */
#define DW_CHUNKS 32

struct dw {
	const struct fd_conv2d_shape *s;
	int Ho, Wo, kk;
	int want_w, want_b;         /* dw, db wanted */
	int64_t rows, nch, pstride; /* output rows N*Ho, chunks, floats per chunk's partial */
	const float *x, *dy;
	float *part;                /* nch partials: [kk][C] taps, then [C] bias */
};

/* Eight floats as one value (GCC/Clang vector extension): AVX2 holds it in
 * one register, SSE2 in two. Lane-wise + and * with no contraction (ISO C
 * mode: -ffp-contract=off), so each channel gets the bits plain scalar code
 * would give, on every clone. aligned(4) and may_alias: a pointer to it
 * may point at any float, so LD8 is an unaligned load. */
typedef float dw_v8 __attribute__((vector_size(32), aligned(4), may_alias));
#define LD8(p) (*(const dw_v8 *)(p))

/* a[0..32) += sum over ow in [o0, o1) of g[ow][j] * x[ow][j] (x steps xs
 * floats per column, g C floats): two running sums per vector in registers
 * (even and odd columns, added at the end), eight independent add chains
 * instead of one latency-bound chain per vector. Written out: GCC keeps
 * an array of vectors in memory. */
__attribute__((always_inline)) static inline void dw_block32(float *a, const float *x, const float *g,
							     int o0, int o1, int64_t xs, int C)
{
	dw_v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, u0 = {0}, u1 = {0}, u2 = {0}, u3 = {0};
	int ow = o0;
	for (; ow + 1 < o1; ow += 2, x += 2 * xs, g += 2 * C) {
		const float *x1 = x + xs, *g1 = g + C;
		s0 += LD8(g) * LD8(x);
		s1 += LD8(g + 8) * LD8(x + 8);
		s2 += LD8(g + 16) * LD8(x + 16);
		s3 += LD8(g + 24) * LD8(x + 24);
		u0 += LD8(g1) * LD8(x1);
		u1 += LD8(g1 + 8) * LD8(x1 + 8);
		u2 += LD8(g1 + 16) * LD8(x1 + 16);
		u3 += LD8(g1 + 24) * LD8(x1 + 24);
	}
	if (ow < o1) {
		s0 += LD8(g) * LD8(x);
		s1 += LD8(g + 8) * LD8(x + 8);
		s2 += LD8(g + 16) * LD8(x + 16);
		s3 += LD8(g + 24) * LD8(x + 24);
	}
	*(dw_v8 *)a += s0 + u0;
	*(dw_v8 *)(a + 8) += s1 + u1;
	*(dw_v8 *)(a + 16) += s2 + u2;
	*(dw_v8 *)(a + 24) += s3 + u3;
}

/* The same for a[0..8). */
__attribute__((always_inline)) static inline void dw_block8(float *a, const float *x, const float *g,
							    int o0, int o1, int64_t xs, int C)
{
	dw_v8 s0 = {0}, u0 = {0};
	int ow = o0;
	for (; ow + 1 < o1; ow += 2, x += 2 * xs, g += 2 * C) {
		s0 += LD8(g) * LD8(x);
		u0 += LD8(g + C) * LD8(x + xs);
	}
	if (ow < o1)
		s0 += LD8(g) * LD8(x);
	*(dw_v8 *)a += s0 + u0;
}

/* One channel (the last C % 8): the same sums, scalar. */
static inline void dw_one(float *a, const float *x, const float *g, int o0, int o1, int64_t xs, int C)
{
	float t0 = 0, t1 = 0;
	int ow = o0;
	for (; ow + 1 < o1; ow += 2, x += 2 * xs, g += 2 * C) {
		t0 += g[0] * x[0];
		t1 += g[C] * x[xs];
	}
	if (ow < o1)
		t0 += g[0] * x[0];
	*a += t0 + t1;
}

/* The partial acc[(r*kw + q)*C + c] += sum over ow of dy[ow][c] * x[ih][iw][c]
 * for the output row oh of image xn (its dy row g): for each tap, the
 * output columns whose input column lies inside the image, channels in
 * blocks of 32, then 8, then one. */
__attribute__((always_inline)) static inline void dw_row(const struct fd_conv2d_shape *s, int Wo,
							 const float *xn, const float *g, int oh, float *acc)
{
	const int C = s->C, W = s->W, sw = s->sw;
	const int64_t xs = (int64_t)sw * C;
	for (int r = 0; r < s->kh; r++) {
		int ih = oh * s->sh - s->ph + r * s->dh;
		if (ih < 0 || ih >= s->H)
			continue;
		const float *xr = xn + (int64_t)ih * W * C;
		for (int q = 0; q < s->kw; q++) {
			int off = q * s->dw - s->pw; /* iw = ow*sw + off */
			int o0 = off < 0 ? (-off + sw - 1) / sw : 0;
			int o1 = off > W - 1 ? 0 : (W - 1 - off) / sw + 1;
			if (o1 > Wo)
				o1 = Wo;
			if (o0 >= o1)
				continue;
			float *a = acc + (int64_t)(r * s->kw + q) * C;
			const float *x0 = xr + (int64_t)(o0 * sw + off) * C, *g0 = g + (int64_t)o0 * C;
			int c = 0;
			for (; c + 32 <= C; c += 32)
				dw_block32(a + c, x0 + c, g0 + c, o0, o1, xs, C);
			for (; c + 8 <= C; c += 8)
				dw_block8(a + c, x0 + c, g0 + c, o0, o1, xs, C);
			for (; c < C; c++)
				dw_one(a + c, x0 + c, g0 + c, o0, o1, xs, C);
		}
	}
}

/* Chunk i: its rows' products into its own partial (zeroed first). */
FD_VEC_CLONES
static void dw_chunk(const struct dw *d, int64_t i)
{
	const struct fd_conv2d_shape *s = d->s;
	const int C = s->C;
	float *acc = d->part + i * d->pstride, *bacc = acc + (int64_t)d->kk * C;
	int64_t r0 = i * d->rows / d->nch, r1 = (i + 1) * d->rows / d->nch;
	memset(acc, 0, (size_t)d->pstride * sizeof *acc);
	for (int64_t row = r0; row < r1; row++) {
		int64_t n = row / d->Ho;
		int oh = (int)(row % d->Ho);
		const float *g = d->dy + row * d->Wo * C;
		if (d->want_w)
			dw_row(s, d->Wo, d->x + n * s->H * s->W * C, g, oh, acc);
		if (d->want_b)
			for (int ow = 0; ow < d->Wo; ow++)
				for (int c = 0; c < C; c++)
					bacc[c] += g[(int64_t)ow * C + c];
	}
}

/* Slot t of every partial (a tap's C values, or the bias at t == kk) folded
 * into chunk 0's, in chunk order. */
FD_VEC_CLONES
static void dw_fold(const struct dw *d, int t)
{
	const int C = d->s->C;
	float *a = d->part + (int64_t)t * C;
	for (int64_t i = 1; i < d->nch; i++) {
		const float *p = d->part + i * d->pstride + (int64_t)t * C;
		for (int c = 0; c < C; c++)
			a[c] += p[c];
	}
}

/* What the kernel computes: depthwise, multiplier 1, channels last. */
static int dw_shape(const struct fd_conv2d_shape *s)
{
	return s->groups == s->C && s->K == s->C && s->xl == FD_NHWC && s->yl == FD_NHWC;
}

int fd_dwconv_serves(const struct fd_conv2d_shape *s)
{
	return dw_shape(s) && s->kh * s->kw >= FD_DWCONV_MIN_TAPS;
}

int fd_dwconv_bwd_weights_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x,
			      const float *dy, float *dw, float *db)
{
	struct dw d = {.s = s, .x = x, .dy = dy, .kk = s->kh * s->kw};
	struct fd_err e = {{0}};
	if (!dw_shape(s)) {
		fd_fail(c, "depthwise backward-weights: C=%d K=%d groups=%d layouts %d,%d: not a channels-last "
			   "depthwise convolution", s->C, s->K, s->groups, s->xl, s->yl);
		return -1;
	}
	if (fd_conv2d_out_size(s, &d.Ho, &d.Wo, &e) < 0) {
		fd_fail(c, "depthwise backward-weights: %s", e.msg);
		return -1;
	}
	if (!s->bias)
		db = NULL;
	if (!dw && !db)
		return 0;
	d.want_w = dw != NULL, d.want_b = db != NULL;
	d.rows = (int64_t)s->N * d.Ho;
	d.nch = d.rows < DW_CHUNKS ? d.rows : DW_CHUNKS;
	d.pstride = (int64_t)(d.kk + 1) * s->C;
	struct fd_arena_mark m = fd_arena_mark(&c->arena);
	if (!(d.part = fd_ctx_alloc(c, FD_DEV_CPU, d.nch * d.pstride)))
		return -1;
	/* one parallel region (each can cost a time slice on a loaded machine) */
	#pragma omp parallel num_threads(c->threads)
	{
		#pragma omp for schedule(static)
		for (int64_t i = 0; i < d.nch; i++)
			dw_chunk(&d, i);
		#pragma omp for schedule(static)
		for (int t = 0; t <= d.kk; t++)
			dw_fold(&d, t);
	}
	const int C = s->C, kk = d.kk;
	if (dw)
		for (int t = 0; t < kk; t++)
			for (int ch = 0; ch < C; ch++)
				dw[(int64_t)ch * kk + t] += d.part[(int64_t)t * C + ch];
	if (db)
		for (int ch = 0; ch < C; ch++)
			db[ch] += d.part[(int64_t)kk * C + ch];
	fd_arena_release(&c->arena, &m, NULL, 0);
	return 0;
}

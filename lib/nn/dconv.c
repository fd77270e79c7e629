/* dconv: the direct forward (see dconv.h). The weights packed once per
 * call into V[K/16][kh kw][C][16]; per group of output rows of one image
 * (their input rows and one block of V about DC_GROUP_BYTES, in L2) and
 * per block of 16 output channels, six output pixels at a time: twelve
 * 8-float sums in registers over every tap and input channel, one
 * broadcast of each pixel's input value and two loads of V a step
 * (doc/nn-kernels.md "fd's direct forward"). An image layer (at most
 * FD_DCONV_IMG_MAX_C planes, NCHW in, NHWC out) packs V[K/16][C kh kw][16]
 * and runs every tap of a pixel in one call, through a table of the taps'
 * offsets from the pixel's corner (pixels whose taps fall off the image
 * read a gathered copy with zeros). */
#include "nn/dconv.h"
#include "nn/act_inline.h"
#include "core/fd_vec.h"

#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "nn/fma6x16.h"
#define DC_X86 1
#else
#define DC_X86 0
#endif

#define MR 6  /* output columns per register block */
#define KB 16 /* output channels per register block */
/* a group's input rows and one block's packed weights V[kb]: about this
 * many bytes together (in L2), the group at least one output row */
#define DC_GROUP_BYTES (384 << 10)

int fd_dconv_takes_cpu(void)
{
	return DC_X86 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int fd_dconv_serves(const struct fd_conv2d_shape *s)
{
	int taps = s->kh * s->kw;
	int nhwc = s->xl == FD_NHWC && s->yl == FD_NHWC && s->C >= 16;
	int img = s->xl == FD_NCHW && s->yl == FD_NHWC && s->C >= 1 && s->C <= FD_DCONV_IMG_MAX_C;
	return s->groups == 1 && (nhwc || img) && s->dh == 1 && s->dw == 1 && taps > 1 &&
	       taps <= FD_DCONV_MAX_TAPS && fd_dconv_takes_cpu();
}

/* y[0..n) = f(y) for the activation act (enum fd_conv_post: SiLU or
 * hardswish, act_inline.h's formulas), vectorised; one loop per kind (a
 * switch around one loop left GCC's loop scalar, act.c) */
FD_VEC_CLONES static void act_silu(float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = fd_ai_fwd(FD_ACT_SILU, y[i]);
}

FD_VEC_CLONES static void act_hardswish(float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = fd_ai_fwd(FD_ACT_HARDSWISH, y[i]);
}

#if DC_X86
/* m[6][16] += the sums over n input channels j of u[i][j] * v[j][0..16),
 * i the six columns: in registers, in order of j */
__attribute__((target("avx2,fma"))) static void dk(const float *const *u, const float *v, int n, float *m)
{
	__m256 a00 = _mm256_loadu_ps(m), a01 = _mm256_loadu_ps(m + 8), a10 = _mm256_loadu_ps(m + 16);
	__m256 a11 = _mm256_loadu_ps(m + 24), a20 = _mm256_loadu_ps(m + 32), a21 = _mm256_loadu_ps(m + 40);
	__m256 a30 = _mm256_loadu_ps(m + 48), a31 = _mm256_loadu_ps(m + 56), a40 = _mm256_loadu_ps(m + 64);
	__m256 a41 = _mm256_loadu_ps(m + 72), a50 = _mm256_loadu_ps(m + 80), a51 = _mm256_loadu_ps(m + 88);
	const float *u0 = u[0], *u1 = u[1], *u2 = u[2], *u3 = u[3], *u4 = u[4], *u5 = u[5];
	for (int j = 0; j < n; j++, v += KB)
		FMA6X16_STEP(v, u0 + j, u1 + j, u2 + j, u3 + j, u4 + j, u5 + j);
	FMA6X16_STORE(m);
}

/* m[6][16] = the sums over n taps j of u[i us + o[j]] * v[j][0..16), i the
 * six pixels (u + i us a pixel's corner, o the taps' offsets from it): in
 * registers, from 0, in order of j. With y (not NULL), m is not written:
 * the first ny pixels' 16 outputs go to y + i ys as store_rows writes them
 * (+ bk, + the old y when add, ReLU when relu). */
__attribute__((target("avx2,fma"))) static void dk_off(const float *u, int64_t us, const int64_t *o, const float *v,
							 int n, float *m, float *y, int64_t ys, int ny, const float *bk,
							 int add, int relu)
{
	FMA6X16_ZERO();
	const float *u0 = u, *u1 = u + us, *u2 = u + 2 * us, *u3 = u + 3 * us, *u4 = u + 4 * us, *u5 = u + 5 * us;
	for (int j = 0; j < n; j++, v += KB) {
		const int64_t t = o[j];
		FMA6X16_STEP(v, u0 + t, u1 + t, u2 + t, u3 + t, u4 + t, u5 + t);
	}
	if (!y) {
		FMA6X16_STORE(m);
		return;
	}
	/* store_rows' arithmetic from the registers: + b, + the old y, ReLU
	 * (max with 0 first: a NaN, the second operand, stays) */
	const __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8), z = _mm256_setzero_ps();
	__m256 r[MR][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
	for (int i = 0; i < ny; i++, y += ys) {
		__m256 v0 = _mm256_add_ps(r[i][0], b0), v1 = _mm256_add_ps(r[i][1], b1);
		if (add)
			v0 = _mm256_add_ps(_mm256_loadu_ps(y), v0), v1 = _mm256_add_ps(_mm256_loadu_ps(y + 8), v1);
		if (relu)
			v0 = _mm256_max_ps(z, v0), v1 = _mm256_max_ps(z, v1);
		_mm256_storeu_ps(y, v0), _mm256_storeu_ps(y + 8, v1);
	}
}

struct dc {
	const struct fd_conv2d_shape *s;
	int Ho, Wo, Kp, R, gpi; /* R output rows a group, gpi groups an image */
	const float *x, *w, *b, *zero, *V;
	const int64_t *toff, *tid; /* image layers: the taps' offsets in x, and 0, 1, 2, .. */
	float *y;
	int act, add;           /* act: enum fd_conv_post */
};

/* rows pixels' nk outputs at y (a pixel's K apart) from m (16 apart): m +
 * bk, + the old y when add, ReLU when relu (a NaN stays NaN); one loop per
 * case, so each vectorises */
FD_VEC_CLONES static void store_rows(const float *restrict m, float *restrict y, int64_t K, int rows, int nk,
				     const float *restrict bk, int add, int relu)
{
	for (int i = 0; i < rows; i++) {
		float *yo = y + i * K;
		const float *mi = m + i * KB;
		if (add)
			for (int l = 0; l < nk; l++)
				yo[l] = yo[l] + (mi[l] + bk[l]);
		else
			for (int l = 0; l < nk; l++)
				yo[l] = mi[l] + bk[l];
		if (relu)
			for (int l = 0; l < nk; l++)
				yo[l] = fd_vm_sel(yo[l] < 0, 0.0f, yo[l]);
	}
}

/* The output of pixel block p0 (np pixels from the group's first, y
 * at yg): m + b (+ the old y), ReLU, for the nk outputs from k0 */
static void store_block(const struct dc *d, const float *m, float *yg, int p0, int np, int k0, int nk)
{
	static const float zeros[KB];
	const int rows = np - p0 < MR ? np - p0 : MR;
	store_rows(m, yg + (int64_t)p0 * d->s->K + k0, d->s->K, rows, nk, d->b ? d->b + k0 : zeros, d->add,
		   d->act == FD_CONV_POST_RELU);
}

/* V[t][c][16] = w[k0 + l][c][t] (an image layer: V[c][t][16]) for the
 * block of 16 outputs from k0, zeros past K */
static void pack_block(const struct dc *d, int k0, float *V)
{
	const struct fd_conv2d_shape *s = d->s;
	const int C = s->C, K = s->K, kk = s->kh * s->kw, img = s->xl == FD_NCHW;
	for (int l = 0; l < KB; l++) {
		const float *wk = d->w + (int64_t)(k0 + l) * C * kk;
		for (int ch = 0; ch < C; ch++)
			for (int t = 0; t < kk; t++)
				V[(img ? (int64_t)ch * kk + t : (int64_t)t * C + ch) * KB + l] =
					k0 + l < K ? wk[(int64_t)ch * kk + t] : 0.0f;
	}
}

/* group g: output rows [oh0, oh1) of image n, every block of 16 outputs;
 * the group's pixels (row by row) six at a time, so a narrow map fills the
 * register block across rows */
static void group(const struct dc *d, int64_t g)
{
	const struct fd_conv2d_shape *s = d->s;
	const int C = s->C, K = s->K, Wo = d->Wo;
	const int n = (int)(g / d->gpi), oh0 = (int)(g % d->gpi) * d->R;
	const int oh1 = oh0 + d->R < d->Ho ? oh0 + d->R : d->Ho, np = (oh1 - oh0) * Wo;
	const float *xn = d->x + (int64_t)n * s->H * s->W * C;
	float *yg = d->y + ((int64_t)n * d->Ho + oh0) * Wo * K;
	float m[MR * KB];
	for (int kb = 0; kb < d->Kp / KB; kb++) {
		const int k0 = kb * KB, nk = K - k0 < KB ? K - k0 : KB;
		const float *V = d->V + (int64_t)kb * s->kh * s->kw * C * KB;
		for (int p0 = 0; p0 < np; p0 += MR) {
			int ih0[MR], iw0[MR]; /* each pixel's input corner; a pixel past the group: off the image */
			for (int i = 0; i < MR; i++) {
				int p = p0 + i, oh = oh0 + p / Wo, ow = p % Wo;
				ih0[i] = p < np ? oh * s->sh - s->ph : -(1 << 20);
				iw0[i] = ow * s->sw - s->pw;
			}
			memset(m, 0, sizeof m);
			for (int r = 0; r < s->kh; r++)
				for (int q = 0; q < s->kw; q++) {
					const float *u[MR];
					for (int i = 0; i < MR; i++) { /* taps outside the image: zeros */
						int ih = ih0[i] + r, iw = iw0[i] + q;
						u[i] = ih >= 0 && ih < s->H && iw >= 0 && iw < s->W
							       ? xn + ((int64_t)ih * s->W + iw) * C
							       : d->zero;
					}
					dk(u, V + (int64_t)(r * s->kw + q) * C * KB, C, m);
				}
			store_block(d, m, yg, p0, np, k0, nk);
		}
	}
}

/* An image layer's block of n <= MR pixels, their corners u + i us (or
 * copies of their taps, read through the offsets o), their outputs y + i K,
 * through every block of 16 outputs */
static void img_block(const struct dc *d, const float *u, int64_t us, const int64_t *o, float *y, int n)
{
	const int K = d->s->K, nt = d->s->C * d->s->kh * d->s->kw, relu = d->act == FD_CONV_POST_RELU;
	static const float zeros[KB];
	float m[MR * KB];
	for (int kb = 0; kb < d->Kp / KB; kb++) {
		const int k0 = kb * KB, nk = K - k0 < KB ? K - k0 : KB;
		const float *bk = d->b ? d->b + k0 : zeros, *v = d->V + (int64_t)kb * nt * KB;
		if (nk == KB) { /* stored from the registers */
			dk_off(u, us, o, v, nt, NULL, y + k0, K, n, bk, d->add, relu);
			continue;
		}
		dk_off(u, us, o, v, nt, m, NULL, 0, 0, NULL, 0, 0);
		store_rows(m, y + k0, K, n, nk, bk, d->add, relu);
	}
}

/* img_block for n pixels whose outputs are not K apart: at y + ows[i] K */
static void img_scatter(const struct dc *d, const float *u, int64_t us, float *y, const int *ows, int n)
{
	const int K = d->s->K, nt = d->s->C * d->s->kh * d->s->kw, relu = d->act == FD_CONV_POST_RELU;
	static const float zeros[KB];
	float m[MR * KB];
	for (int kb = 0; kb < d->Kp / KB; kb++) {
		const int k0 = kb * KB, nk = K - k0 < KB ? K - k0 : KB;
		dk_off(u, us, d->tid, d->V + (int64_t)kb * nt * KB, nt, m, NULL, 0, 0, NULL, 0, 0);
		for (int i = 0; i < n; i++)
			store_rows(m + i * KB, y + (int64_t)ows[i] * K + k0, K, 1, nk, d->b ? d->b + k0 : zeros, d->add,
				   relu);
	}
}

/* group g of an image layer (x NCHW, C <= FD_DCONV_IMG_MAX_C): per output
 * row, the pixels whose taps all lie on the image six at a time, read in
 * place (every tap of a pixel in one dk_off call); each other pixel from a
 * copy of its taps with zeros off the image */
static void group_img(const struct dc *d, int64_t g)
{
	const struct fd_conv2d_shape *s = d->s;
	const int C = s->C, K = s->K, Wo = d->Wo, kh = s->kh, kw = s->kw;
	const int n = (int)(g / d->gpi), oh0 = (int)(g % d->gpi) * d->R;
	const int oh1 = oh0 + d->R < d->Ho ? oh0 + d->R : d->Ho;
	const int64_t plane = (int64_t)s->H * s->W;
	const float *xn = d->x + (int64_t)n * C * plane;
	/* the columns whose taps lie inside: ow in [lo, hi) */
	int lo = (s->pw + s->sw - 1) / s->sw, hi = s->W + s->pw >= kw ? (s->W + s->pw - kw) / s->sw + 1 : 0;
	hi = hi > Wo ? Wo : hi;
	lo = lo > hi ? hi : lo;
	const int nt = C * kh * kw;
	float buf[MR * FD_DCONV_IMG_MAX_C * FD_DCONV_MAX_TAPS];
	for (int oh = oh0; oh < oh1; oh++) {
		const int ih0 = oh * s->sh - s->ph, rows_in = ih0 >= 0 && ih0 + kh <= s->H;
		float *yr = d->y + ((int64_t)n * d->Ho + oh) * Wo * K;
		int a = rows_in ? lo : Wo, b = rows_in ? hi : Wo; /* in place: [a, b) */
		for (int ow = a; ow < b; ow += MR)
			img_block(d, xn + (int64_t)ih0 * s->W + ow * s->sw - s->pw, s->sw, d->toff, yr + (int64_t)ow * K,
				  b - ow < MR ? b - ow : MR);
		/* the others (the row's ends, or every pixel of a row whose taps
		 * leave the image) six at a time, in copies nt floats apart; their
		 * outputs through the block's m (their y are not K apart) */
		int nb = 0, ows[MR];
		for (int ow = 0; ow < Wo; ow++) {
			if (ow == a)
				ow = b;
			if (ow < Wo) {
				const int iw0 = ow * s->sw - s->pw;
				float *bi = buf + nb * nt;
				for (int ch = 0, j = 0; ch < C; ch++)
					for (int r = 0; r < kh; r++)
						for (int q = 0; q < kw; q++, j++) {
							int ih = ih0 + r, iw = iw0 + q;
							bi[j] = ih >= 0 && ih < s->H && iw >= 0 && iw < s->W
									? xn[ch * plane + (int64_t)ih * s->W + iw]
									: 0.0f;
						}
				ows[nb++] = ow;
			}
			if (nb == MR || (nb && ow >= Wo - 1)) {
				for (int i = nb; i < MR; i++) /* unused lanes: the first pixel's copy */
					memcpy(buf + i * nt, buf, (size_t)nt * sizeof *buf);
				img_scatter(d, buf, nt, yr, ows, nb);
				nb = 0;
			}
		}
	}
}

/* group g, then its outputs through SiLU or hardswish */
static void group_act(const struct dc *d, int64_t g)
{
	if (d->s->xl == FD_NCHW)
		group_img(d, g);
	else
		group(d, g);
	if (d->act != FD_CONV_POST_SILU && d->act != FD_CONV_POST_HARDSWISH)
		return;
	const int n = (int)(g / d->gpi), oh0 = (int)(g % d->gpi) * d->R;
	const int oh1 = oh0 + d->R < d->Ho ? oh0 + d->R : d->Ho;
	float *yg = d->y + ((int64_t)n * d->Ho + oh0) * d->Wo * d->s->K;
	int64_t cnt = (int64_t)(oh1 - oh0) * d->Wo * d->s->K;
	if (d->act == FD_CONV_POST_SILU)
		act_silu(yg, cnt);
	else
		act_hardswish(yg, cnt);
}
#endif

int64_t fd_dconv_scratch(const struct fd_conv2d_shape *s)
{
	/* the packed weights, C zeros (one more: 8-byte alignment), and two
	 * tables of C kh kw int64 offsets (image layers) */
	return (int64_t)(s->K + KB - 1) / KB * KB * s->kh * s->kw * s->C + s->C + 1 +
	       4 * (int64_t)s->C * s->kh * s->kw;
}

int fd_dconv_fwd_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, const float *w,
		     const float *b, int act, int add, float *scratch, float *y)
{
	struct fd_err e = {{0}};
	if (!fd_dconv_serves(s)) {
		fd_fail(c, "direct convolution: C=%d K=%d k=%dx%d s=%d,%d d=%d,%d g=%d layouts %d,%d: not an ungrouped "
			   "undilated convolution of 2 to %d taps, channels last with >= 16 channels or NCHW -> NHWC "
			   "with <= %d, on a CPU with AVX2 and FMA",
			s->C, s->K, s->kh, s->kw, s->sh, s->sw, s->dh, s->dw, s->groups, s->xl, s->yl, FD_DCONV_MAX_TAPS,
			FD_DCONV_IMG_MAX_C);
		return -1;
	}
	if (act != FD_CONV_POST_NONE && act != FD_CONV_POST_RELU && act != FD_CONV_POST_SILU &&
	    act != FD_CONV_POST_HARDSWISH) {
		fd_fail(c, "direct convolution: activation %d is not none, ReLU, SiLU or hardswish", act);
		return -1;
	}
#if DC_X86
	struct dc d = {.s = s, .x = x, .b = s->bias ? b : NULL, .y = y, .act = act, .add = add};
	if (fd_conv2d_out_size(s, &d.Ho, &d.Wo, &e) < 0) {
		fd_fail(c, "direct convolution: %s", e.msg);
		return -1;
	}
	const int C = s->C, kk = s->kh * s->kw;
	d.Kp = (s->K + KB - 1) / KB * KB;
	int64_t rowb = (int64_t)s->W * C * (int64_t)sizeof(float), vb = (int64_t)kk * C * KB * (int64_t)sizeof(float);
	int64_t room = DC_GROUP_BYTES - vb; /* for the group's input rows: (R - 1) sh + kh of them */
	int R = room <= 0 ? 1 : (int)((room / rowb - s->kh) / s->sh + 1);
	int rmin = (4 * MR + d.Wo - 1) / d.Wo; /* at least 4 register blocks of pixels */
	R = R < rmin ? rmin : R;
	d.R = R < 1 ? 1 : R > d.Ho ? d.Ho : R;
	d.gpi = (d.Ho + d.R - 1) / d.R;
	/* every block's packed weights, then a row of C zeros */
	const int64_t vb_floats = (int64_t)kk * C * KB, nkb = d.Kp / KB;
	struct fd_arena_mark mk = fd_arena_mark(&c->arena);
	float *V = scratch ? scratch : fd_ctx_alloc(c, FD_DEV_CPU, fd_dconv_scratch(s));
	if (!V)
		return -1;
	float *zero = V + nkb * vb_floats;
	memset(zero, 0, (size_t)C * sizeof *zero);
	d.w = w, d.zero = zero, d.V = V;
	if (s->xl == FD_NCHW) { /* the taps' offsets (c, r, q) in x, and the identity */
		int64_t *toff = (int64_t *)(void *)(zero + (C + 1) / 2 * 2), *tid = toff + (int64_t)C * kk;
		for (int ch = 0, j = 0; ch < C; ch++)
			for (int r = 0; r < s->kh; r++)
				for (int q = 0; q < s->kw; q++, j++)
					toff[j] = ((int64_t)ch * s->H + r) * s->W + q, tid[j] = j;
		d.toff = toff, d.tid = tid;
	}
	const int64_t groups = (int64_t)s->N * d.gpi;
	#pragma omp parallel num_threads(c->threads)
	{
		#pragma omp for schedule(static)
		for (int64_t kb = 0; kb < nkb; kb++)
			pack_block(&d, (int)kb * KB, V + kb * vb_floats);
		#pragma omp for schedule(static)
		for (int64_t g = 0; g < groups; g++)
			group_act(&d, g);
	}
	if (!scratch)
		fd_arena_release(&c->arena, &mk, NULL, 0);
	return 0;
#else
	(void)x, (void)w, (void)b, (void)add, (void)scratch, (void)y, (void)e;
	return -1;
#endif
}

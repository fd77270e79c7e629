/* dconv: the direct forward (see dconv.h). The weights packed once per
 * call into V[K/16][kh kw][C][16]; per group of output rows of one image
 * (their input rows and one block of V about DC_GROUP_BYTES, in L2) and
 * per block of 16 output channels, six output pixels at a time: twelve
 * 8-float sums in registers over every tap and input channel, one
 * broadcast of each pixel's input value and two loads of V a step
 * (doc/nn-kernels.md "fd's direct forward"). */
#include "nn/dconv.h"

#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DC_X86 1
#else
#define DC_X86 0
#endif

#define MR 6  /* output columns per register block */
#define KB 16 /* output channels per register block */
/* a group's input rows and one block's packed weights V[kb]: about this
 * many bytes together (in L2), the group at least one output row */
#define DC_GROUP_BYTES (384 << 10)

int fd_dconv_serves(const struct fd_conv2d_shape *s)
{
	int taps = s->kh * s->kw;
	return DC_X86 && s->groups == 1 && s->xl == FD_NHWC && s->yl == FD_NHWC &&
	       s->dh == 1 && s->dw == 1 && taps > 1 && taps <= FD_DCONV_MAX_TAPS && s->C >= 16 &&
	       __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
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
	for (int j = 0; j < n; j++, v += KB) {
		__m256 b0 = _mm256_loadu_ps(v), b1 = _mm256_loadu_ps(v + 8), a;
		a = _mm256_broadcast_ss(u0 + j);
		a00 = _mm256_fmadd_ps(a, b0, a00), a01 = _mm256_fmadd_ps(a, b1, a01);
		a = _mm256_broadcast_ss(u1 + j);
		a10 = _mm256_fmadd_ps(a, b0, a10), a11 = _mm256_fmadd_ps(a, b1, a11);
		a = _mm256_broadcast_ss(u2 + j);
		a20 = _mm256_fmadd_ps(a, b0, a20), a21 = _mm256_fmadd_ps(a, b1, a21);
		a = _mm256_broadcast_ss(u3 + j);
		a30 = _mm256_fmadd_ps(a, b0, a30), a31 = _mm256_fmadd_ps(a, b1, a31);
		a = _mm256_broadcast_ss(u4 + j);
		a40 = _mm256_fmadd_ps(a, b0, a40), a41 = _mm256_fmadd_ps(a, b1, a41);
		a = _mm256_broadcast_ss(u5 + j);
		a50 = _mm256_fmadd_ps(a, b0, a50), a51 = _mm256_fmadd_ps(a, b1, a51);
	}
	_mm256_storeu_ps(m, a00), _mm256_storeu_ps(m + 8, a01);
	_mm256_storeu_ps(m + 16, a10), _mm256_storeu_ps(m + 24, a11);
	_mm256_storeu_ps(m + 32, a20), _mm256_storeu_ps(m + 40, a21);
	_mm256_storeu_ps(m + 48, a30), _mm256_storeu_ps(m + 56, a31);
	_mm256_storeu_ps(m + 64, a40), _mm256_storeu_ps(m + 72, a41);
	_mm256_storeu_ps(m + 80, a50), _mm256_storeu_ps(m + 88, a51);
}

struct dc {
	const struct fd_conv2d_shape *s;
	int Ho, Wo, Kp, R, gpi; /* R output rows a group, gpi groups an image */
	const float *x, *w, *b, *zero, *V;
	float *y;
	int relu, add;
};

/* V[t][c][16] = w[k0 + l][c][t] for the block of 16 outputs from k0, zeros
 * past K */
static void pack_block(const struct dc *d, int k0, float *V)
{
	const struct fd_conv2d_shape *s = d->s;
	const int C = s->C, K = s->K, kk = s->kh * s->kw;
	for (int l = 0; l < KB; l++) {
		const float *wk = d->w + (int64_t)(k0 + l) * C * kk;
		for (int ch = 0; ch < C; ch++)
			for (int t = 0; t < kk; t++)
				V[((int64_t)t * C + ch) * KB + l] = k0 + l < K ? wk[(int64_t)ch * kk + t] : 0.0f;
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
			for (int i = 0; i < MR && p0 + i < np; i++) {
				float *yo = yg + (int64_t)(p0 + i) * K + k0;
				for (int l = 0; l < nk; l++) {
					float v = m[i * KB + l] + (d->b ? d->b[k0 + l] : 0.0f);
					if (d->add)
						v = yo[l] + v;
					if (d->relu && v < 0)
						v = 0;
					yo[l] = v;
				}
			}
		}
	}
}
#endif

int64_t fd_dconv_scratch(const struct fd_conv2d_shape *s)
{
	return (int64_t)(s->K + KB - 1) / KB * KB * s->kh * s->kw * s->C + s->C;
}

int fd_dconv_fwd_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, const float *w,
		     const float *b, int relu, int add, float *scratch, float *y)
{
	struct fd_err e = {{0}};
	if (!fd_dconv_serves(s)) {
		fd_fail(c, "direct convolution: C=%d K=%d k=%dx%d s=%d,%d d=%d,%d g=%d layouts %d,%d: not a channels-last "
			   "ungrouped undilated convolution of 2 to %d taps and >= 16 channels on a CPU with AVX2 and FMA",
			s->C, s->K, s->kh, s->kw, s->sh, s->sw, s->dh, s->dw, s->groups, s->xl, s->yl, FD_DCONV_MAX_TAPS);
		return -1;
	}
#if DC_X86
	struct dc d = {.s = s, .x = x, .b = s->bias ? b : NULL, .y = y, .relu = relu, .add = add};
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
	const int64_t groups = (int64_t)s->N * d.gpi;
	#pragma omp parallel num_threads(c->threads)
	{
		#pragma omp for schedule(static)
		for (int64_t kb = 0; kb < nkb; kb++)
			pack_block(&d, (int)kb * KB, V + kb * vb_floats);
		#pragma omp for schedule(static)
		for (int64_t g = 0; g < groups; g++)
			group(&d, g);
	}
	if (!scratch)
		fd_arena_release(&c->arena, &mk, NULL, 0);
	return 0;
#else
	(void)x, (void)w, (void)b, (void)relu, (void)add, (void)scratch, (void)y, (void)e;
	return -1;
#endif
}

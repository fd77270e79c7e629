/* pool2d: max / average / adaptive average pooling, plain C + OpenMP over
 * planes (see pool2d.h). Window bounds follow PyTorch's CPU kernels exactly. */
#include "nn/pool2d.h"
#include "nn/layout.h"
#include "nn/fd_backend.h"
#include "core/fd_vec.h"
#include "nn/act_inline.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

static int pool_len(int in, int k, int s, int p, int ceil_mode)
{
	int out = (in + 2 * p - k + (ceil_mode ? s - 1 : 0)) / s + 1;
	/* the last window must start inside the input or the left padding */
	if (ceil_mode && (out - 1) * s >= in + p)
		out--;
	return out;
}

int fd_pool2d_out_size(const struct fd_pool2d_shape *s, int *Ho, int *Wo, struct fd_err *e)
{
	if (s->N < 1 || s->C < 1 || s->H < 1 || s->W < 1 || s->kh < 1 || s->kw < 1 || s->sh < 1 ||
	    s->sw < 1 || s->ph < 0 || s->pw < 0)
		return fd_err_set(e, "pool2d N=%d C=%d H=%d W=%d k=%dx%d s=%d,%d p=%d,%d: sizes must be positive",
				  s->N, s->C, s->H, s->W, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw);
	if (s->ph > s->kh / 2 || s->pw > s->kw / 2)
		return fd_err_set(e, "pool2d k=%dx%d p=%d,%d: padding must be at most half the kernel",
				  s->kh, s->kw, s->ph, s->pw);
	if (s->H + 2 * s->ph < s->kh || s->W + 2 * s->pw < s->kw)
		return fd_err_set(e, "pool2d H=%d W=%d k=%dx%d p=%d,%d: kernel larger than padded input",
				  s->H, s->W, s->kh, s->kw, s->ph, s->pw);
	*Ho = pool_len(s->H, s->kh, s->sh, s->ph, s->ceil_mode);
	*Wo = pool_len(s->W, s->kw, s->sw, s->pw, s->ceil_mode);
	return 0;
}

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* One plane of the 2x2, stride 2, unpadded window (simplecnn's and most
 * CNNs' downsampling), every window whole (floor mode). */
static void maxpool_2x2_plane(const float *xp, int W, int Ho, int Wo, float *yp, int32_t *ip)
{
	for (int oh = 0; oh < Ho; oh++) {
		const float *r0 = xp + (size_t)2 * oh * W, *r1 = r0 + W;
		int32_t base = 2 * oh * W;
		for (int ow = 0; ow < Wo; ow++) {
			const float v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
			const int32_t at[4] = {base + 2 * ow, base + 2 * ow + 1, base + W + 2 * ow,
					       base + W + 2 * ow + 1};
			float m = -INFINITY;
			int32_t mi = at[0];
			for (int k = 0; k < 4; k++) {
				int t = fd_mp_take(v[k], m);
				m = t ? v[k] : m;
				mi = t ? at[k] : mi;
			}
			yp[oh * Wo + ow] = m;
			ip[oh * Wo + ow] = mi;
		}
	}
}

/* Output (oh, ow) of one plane, any window: bounds clipped to the input. */
static void maxpool_window(const struct fd_pool2d_shape *s, const float *xp, int oh, int ow, float *y,
			   int32_t *idx)
{
	int H = s->H, W = s->W;
	int h0 = oh * s->sh - s->ph, h1 = imin(h0 + s->kh, H);
	int w0 = ow * s->sw - s->pw, w1 = imin(w0 + s->kw, W);
	h0 = imax(h0, 0);
	w0 = imax(w0, 0);
	float m = -INFINITY;
	int32_t mi = h0 * W + w0;
	for (int ih = h0; ih < h1; ih++)
		for (int iw = w0; iw < w1; iw++) {
			float v = xp[ih * W + iw];
			int t = fd_mp_take(v, m);
			m = t ? v : m;
			mi = t ? ih * W + iw : mi;
		}
	*y = m;
	*idx = mi;
}

/* n interior windows of one output row of the 3x3 stride-2 pool: window j
 * (output column j + 1) covers rows 0 .. 2 and columns 2j .. 2j+2 from r = x + at0 (flat index
 * at0 in its plane, W the row length). The nine window elements are the
 * outer loops, in scan order, and the windows the inner one: independent
 * running maxima, vectorised, same result as a window at a time. */
FD_VEC_CLONES
static void maxpool_3x3s2_row(const float *restrict r, int32_t at0, int W, int n, float *restrict y,
			      int32_t *restrict idx)
{
	for (int j = 0; j < n; j++) {
		y[j] = -INFINITY;
		idx[j] = at0 + 2 * j;
	}
	for (int dh = 0; dh < 3; dh++)
		for (int dw = 0; dw < 3; dw++) {
			const float *q = r + dh * W + dw;
			int32_t base = at0 + dh * W + dw;
			for (int j = 0; j < n; j++) {
				float v = q[2 * j], m = y[j];
				int t = fd_mp_take(v, m);
				y[j] = t ? v : m;
				idx[j] = t ? base + 2 * j : idx[j];
			}
		}
}

/* One plane of the 3x3, stride 2, padding 1 window (ResNet's stem): the
 * interior windows (wholly inside the input) without bounds checks, the
 * border ones through maxpool_window; same scan order and rule. */
static void maxpool_3x3s2_plane(const struct fd_pool2d_shape *s, const float *xp, int Ho, int Wo, float *yp,
				int32_t *ip)
{
	int W = s->W;
	/* window (oh, ow) covers rows 2oh-1 .. 2oh+1: inside for 1 <= oh <= (H-2)/2 */
	int oh1 = imin(Ho, (s->H - 2) / 2 + 1), ow1 = imin(Wo, (W - 2) / 2 + 1);
	for (int oh = 0; oh < Ho; oh++) {
		float *yr = yp + (size_t)oh * Wo;
		int32_t *ir = ip + (size_t)oh * Wo;
		if (oh == 0 || oh >= oh1) {
			for (int ow = 0; ow < Wo; ow++)
				maxpool_window(s, xp, oh, ow, yr + ow, ir + ow);
			continue;
		}
		maxpool_window(s, xp, oh, 0, yr, ir);
		if (ow1 > 1)
			maxpool_3x3s2_row(xp + (size_t)(2 * oh - 1) * W + 1, (2 * oh - 1) * W + 1, W, ow1 - 1, yr + 1,
					  ir + 1);
		for (int ow = imax(ow1, 1); ow < Wo; ow++)
			maxpool_window(s, xp, oh, ow, yr + ow, ir + ow);
	}
}

static void maxpool2d_fwd(int threads, const struct fd_pool2d_shape *s, const float *x, float *y, int32_t *idx)
{
	int Ho, Wo, H = s->H, W = s->W;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	if (s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 && s->ph == 0 && s->pw == 0 &&
	    2 * Ho <= H && 2 * Wo <= W) {
		#pragma omp parallel for num_threads(threads)
		for (long pl = 0; pl < (long)s->N * s->C; pl++)
			maxpool_2x2_plane(x + (size_t)pl * H * W, W, Ho, Wo, y + (size_t)pl * Ho * Wo,
					  idx + (size_t)pl * Ho * Wo);
		return;
	}
	if (s->kh == 3 && s->kw == 3 && s->sh == 2 && s->sw == 2 && s->ph == 1 && s->pw == 1) {
		#pragma omp parallel for num_threads(threads)
		for (long pl = 0; pl < (long)s->N * s->C; pl++)
			maxpool_3x3s2_plane(s, x + (size_t)pl * H * W, Ho, Wo, y + (size_t)pl * Ho * Wo,
					    idx + (size_t)pl * Ho * Wo);
		return;
	}
	#pragma omp parallel for num_threads(threads)
	for (long pl = 0; pl < (long)s->N * s->C; pl++) {
		const float *xp = x + (size_t)pl * H * W;
		float *yp = y + (size_t)pl * Ho * Wo;
		int32_t *ip = idx + (size_t)pl * Ho * Wo;
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++)
				maxpool_window(s, xp, oh, ow, yp + oh * Wo + ow, ip + oh * Wo + ow);
	}
}

static void maxpool2d_bwd(int threads, const struct fd_pool2d_shape *s, const float *dy, const int32_t *idx,
			   float *dx)
{
	int Ho, Wo;
	size_t HW = (size_t)s->H * s->W;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	#pragma omp parallel for num_threads(threads)
	for (long pl = 0; pl < (long)s->N * s->C; pl++) {
		const float *gp = dy + (size_t)pl * Ho * Wo;
		const int32_t *ip = idx + (size_t)pl * Ho * Wo;
		float *dp = dx + (size_t)pl * HW;
		for (int o = 0; o < Ho * Wo; o++)
			dp[ip[o]] += gp[o];
	}
}

/* Window [h0,h1) x [w0,w1) clipped to the input, and PyTorch's divisor. */
static int avg_window(const struct fd_pool2d_shape *s, int oh, int ow, int *h0, int *h1, int *w0, int *w1)
{
	int hs = oh * s->sh - s->ph, ws = ow * s->sw - s->pw;
	int he = imin(hs + s->kh, s->H + s->ph), we = imin(ws + s->kw, s->W + s->pw);
	int padded = (he - hs) * (we - ws);
	*h0 = imax(hs, 0), *w0 = imax(ws, 0), *h1 = imin(he, s->H), *w1 = imin(we, s->W);
	return s->count_include_pad ? padded : (*h1 - *h0) * (*w1 - *w0);
}

static void avgpool2d_fwd(int threads, const struct fd_pool2d_shape *s, const float *x, float *y)
{
	int Ho, Wo, H = s->H, W = s->W;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	#pragma omp parallel for num_threads(threads)
	for (long pl = 0; pl < (long)s->N * s->C; pl++) {
		const float *xp = x + (size_t)pl * H * W;
		float *yp = y + (size_t)pl * Ho * Wo;
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				int h0, h1, w0, w1, div = avg_window(s, oh, ow, &h0, &h1, &w0, &w1);
				float acc = 0;
				for (int ih = h0; ih < h1; ih++)
					for (int iw = w0; iw < w1; iw++)
						acc += xp[ih * W + iw];
				yp[oh * Wo + ow] = acc / div;
			}
	}
}

static void avgpool2d_bwd(int threads, const struct fd_pool2d_shape *s, const float *dy, float *dx)
{
	int Ho, Wo, H = s->H, W = s->W;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	#pragma omp parallel for num_threads(threads)
	for (long pl = 0; pl < (long)s->N * s->C; pl++) {
		const float *gp = dy + (size_t)pl * Ho * Wo;
		float *dp = dx + (size_t)pl * H * W;
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				int h0, h1, w0, w1, div = avg_window(s, oh, ow, &h0, &h1, &w0, &w1);
				float g = gp[oh * Wo + ow] / div;
				for (int ih = h0; ih < h1; ih++)
					for (int iw = w0; iw < w1; iw++)
						dp[ih * W + iw] += g;
			}
	}
}

static int adaptive_check(int N, int C, int H, int W, int Ho, int Wo, struct fd_err *e)
{
	if (N < 1 || C < 1 || H < 1 || W < 1 || Ho < 1 || Wo < 1)
		return fd_err_set(e, "adaptive_avg_pool2d N=%d C=%d H=%d W=%d out=%dx%d: sizes must be positive",
				  N, C, H, W, Ho, Wo);
	return 0;
}

static int a_start(int o, int in, int out) { return (int)((long)o * in / out); }
static int a_end(int o, int in, int out) { return (int)(((long)(o + 1) * in + out - 1) / out); }

static int adaptive_avgpool2d_fwd(int threads, int N, int C, int H, int W, int Ho, int Wo, const float *x,
				  float *y, struct fd_err *e)
{
	if (adaptive_check(N, C, H, W, Ho, Wo, e))
		return -1;
	if (Ho == 1 && Wo == 1) {
		size_t HW = (size_t)H * W;
		#pragma omp parallel for num_threads(threads)
		for (long pl = 0; pl < (long)N * C; pl++) {
			const float *xp = x + (size_t)pl * HW;
			float acc = 0;
			for (size_t i = 0; i < HW; i++)
				acc += xp[i];
			y[pl] = acc / (float)HW;
		}
		return 0;
	}
	#pragma omp parallel for num_threads(threads)
	for (long pl = 0; pl < (long)N * C; pl++) {
		const float *xp = x + (size_t)pl * H * W;
		float *yp = y + (size_t)pl * Ho * Wo;
		for (int oh = 0; oh < Ho; oh++) {
			int h0 = a_start(oh, H, Ho), h1 = a_end(oh, H, Ho);
			for (int ow = 0; ow < Wo; ow++) {
				int w0 = a_start(ow, W, Wo), w1 = a_end(ow, W, Wo);
				float acc = 0;
				for (int ih = h0; ih < h1; ih++)
					for (int iw = w0; iw < w1; iw++)
						acc += xp[ih * W + iw];
				yp[oh * Wo + ow] = acc / ((h1 - h0) * (w1 - w0));
			}
		}
	}
	return 0;
}

static int adaptive_avgpool2d_bwd(int threads, int N, int C, int H, int W, int Ho, int Wo, const float *dy,
				   float *dx, struct fd_err *e)
{
	if (adaptive_check(N, C, H, W, Ho, Wo, e))
		return -1;
	if (Ho == 1 && Wo == 1) {
		size_t HW = (size_t)H * W;
		#pragma omp parallel for num_threads(threads)
		for (long pl = 0; pl < (long)N * C; pl++) {
			float g = dy[pl] / (float)HW, *dp = dx + (size_t)pl * HW;
			for (size_t i = 0; i < HW; i++)
				dp[i] += g;
		}
		return 0;
	}
	#pragma omp parallel for num_threads(threads)
	for (long pl = 0; pl < (long)N * C; pl++) {
		const float *gp = dy + (size_t)pl * Ho * Wo;
		float *dp = dx + (size_t)pl * H * W;
		for (int oh = 0; oh < Ho; oh++) {
			int h0 = a_start(oh, H, Ho), h1 = a_end(oh, H, Ho);
			for (int ow = 0; ow < Wo; ow++) {
				int w0 = a_start(ow, W, Wo), w1 = a_end(ow, W, Wo);
				float g = gp[oh * Wo + ow] / ((h1 - h0) * (w1 - w0));
				for (int ih = h0; ih < h1; ih++)
					for (int iw = w0; iw < w1; iw++)
						dp[ih * W + iw] += g;
			}
		}
	}
	return 0;
}

/* ---- double references: one window at a time, straight from the formulas ---- */

/* First maximum of window (oh, ow) of plane xp (padding excluded): its flat index. */
static int ref_argmax(const struct fd_pool2d_shape *s, const double *xp, int oh, int ow)
{
	int best = -1;
	for (int r = 0; r < s->kh; r++)
		for (int q = 0; q < s->kw; q++) {
			int ih = oh * s->sh - s->ph + r, iw = ow * s->sw - s->pw + q;
			if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
				continue;
			if (best < 0 || xp[ih * s->W + iw] > xp[best])
				best = ih * s->W + iw;
		}
	return best;
}

/* ---------- CPU kernels (table entries maxpool2d_*, avgpool2d_*, adaptive_avgpool2d_*) ---------- */

static int ctx_err(struct fd_ctx *c, const struct fd_err *e)
{
	fd_fail(c, "%s", e->msg);
	return -1;
}

static int int_sizes(struct fd_ctx *c, const char *op, int64_t a, int64_t b, int64_t d)
{
	if (a > INT32_MAX || b > INT32_MAX || d > INT32_MAX) {
		fd_fail(c, "%s: sizes beyond 2^31 are not supported", op);
		return -1;
	}
	return 0;
}

int fd_maxpool2d_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y,
		       int32_t *idx)
{
	maxpool2d_fwd(c->threads, s, x, y, idx);
	return 0;
}

int fd_maxpool2d_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
		       const int32_t *idx, float *dx)
{
	maxpool2d_bwd(c->threads, s, dy, idx, dx);
	return 0;
}

int fd_avgpool2d_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y)
{
	avgpool2d_fwd(c->threads, s, x, y);
	return 0;
}

int fd_avgpool2d_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy, float *dx)
{
	avgpool2d_bwd(c->threads, s, dy, dx);
	return 0;
}

int fd_adaptive_avgpool2d_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
		       int64_t Wo, const float *x, float *y)
{
	struct fd_err e = {{0}};
	if (int_sizes(c, "adaptive_avg_pool2d", N * C, H, W) < 0)
		return -1;
	return adaptive_avgpool2d_fwd(c->threads, (int)N, (int)C, (int)H, (int)W, (int)Ho, (int)Wo, x, y, &e) < 0
		       ? ctx_err(c, &e) : 0;
}

int fd_adaptive_avgpool2d_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
		       int64_t Wo, const float *dy, float *dx)
{
	struct fd_err e = {{0}};
	return adaptive_avgpool2d_bwd(c->threads, (int)N, (int)C, (int)H, (int)W, (int)Ho, (int)Wo, dy, dx, &e) < 0
		       ? ctx_err(c, &e) : 0;
}

/* gap_nhwc_fwd for image n, x in bf16 when xb (widened exactly in the
 * loads: the same float sums on the widened values) */
static inline __attribute__((always_inline)) void gap_nhwc_one(int64_t n, int64_t HW, int64_t C, const void *x,
								const int xb, float *y)
{
	float *yn = y + n * C;
	for (int64_t c = 0; c < C; c++)
		yn[c] = 0;
	for (int64_t i = 0; i < HW; i++)
		for (int64_t c = 0; c < C; c++)
			yn[c] += xb ? fd_ai_f32(((const uint16_t *)x)[(n * HW + i) * C + c])
				    : ((const float *)x)[(n * HW + i) * C + c];
	for (int64_t c = 0; c < C; c++)
		yn[c] /= (float)HW;
}

/* Global average pooling of a channels-last [N, HW, C] input: per channel the
 * same float sum, in the same order (position by position), as the NCHW loop
 * above, so both layouts give the same bits; vectorised over channels. CPU
 * only, like the layout (doc/nn-kernels.md "Layouts"). */
static void gap_nhwc_fwd(int threads, int64_t N, int64_t HW, int64_t C, const float *x, float *y)
{
	#pragma omp parallel for num_threads(threads)
	for (int64_t n = 0; n < N; n++)
		gap_nhwc_one(n, HW, C, x, 0, y);
}

/* gap_nhwc_fwd on a bf16 x (FD_T_BF16); bf16 contexts only, hence the target */
FD_VEC_AVX512_ONLY
static void gap_nhwc_fwd_b(int threads, int64_t N, int64_t HW, int64_t C, const uint16_t *x, float *y)
{
	#pragma omp parallel for num_threads(threads)
	for (int64_t n = 0; n < N; n++)
		gap_nhwc_one(n, HW, C, x, 1, y);
}

static void gap_nhwc_bwd(int threads, int64_t N, int64_t HW, int64_t C, const float *dy, float *dx)
{
	#pragma omp parallel for num_threads(threads) collapse(2)
	for (int64_t n = 0; n < N; n++)
		for (int64_t i = 0; i < HW; i++) {
			const float *g = dy + n * C;
			float *d = dx + (n * HW + i) * C;
			for (int64_t c = 0; c < C; c++)
				d[c] += g[c] / (float)HW;
		}
}

/* Max pooling of a channels-last [N, H, W, C] input into [N, Ho, Wo, C]
 * values and indices (ih*W + iw, as for NCHW), vectorised over channels:
 * per channel the same scan order and rule (fd_mp_take) as the NCHW loops, so
 * both layouts pick the same element. One output position of one sample,
 * from xn, whose first row is input row hr. Without wi no index is kept
 * (inference): the same values. */
static inline __attribute__((always_inline)) void maxpool_nhwc_pos_b(const int wi, const struct fd_pool2d_shape *s,
								     const float *restrict xn, int hr, int oh,
								     int ow, float *restrict y,
								     int32_t *restrict idx)
{
	int64_t C = s->C;
	int H = s->H, W = s->W;
	int h0 = oh * s->sh - s->ph, h1 = imin(h0 + s->kh, H);
	int w0 = ow * s->sw - s->pw, w1 = imin(w0 + s->kw, W);
	h0 = imax(h0, 0);
	w0 = imax(w0, 0);
	for (int64_t c = 0; c < C; c++) {
		y[c] = -INFINITY;
		if (wi)
			idx[c] = h0 * W + w0;
	}
	for (int ih = h0; ih < h1; ih++)
		for (int iw = w0; iw < w1; iw++) {
			const float *xr = xn + ((int64_t)(ih - hr) * W + iw) * C;
			int32_t at = ih * W + iw;
			for (int64_t c = 0; c < C; c++) {
				float v = xr[c], m = y[c];
				int t = fd_mp_take(v, m);
				y[c] = t ? v : m;
				if (wi)
					idx[c] = t ? at : idx[c];
			}
		}
}

FD_VEC_CLONES
static void maxpool_nhwc_pos(const struct fd_pool2d_shape *s, const float *restrict xn, int hr, int oh, int ow,
			     float *restrict y, int32_t *restrict idx)
{
	if (idx)
		maxpool_nhwc_pos_b(1, s, xn, hr, oh, ow, y, idx);
	else
		maxpool_nhwc_pos_b(0, s, xn, hr, oh, ow, y, NULL);
}

static void maxpool_nhwc_fwd(int threads, const struct fd_pool2d_shape *s, const float *x, float *y, int32_t *idx)
{
	int Ho, Wo;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	int64_t C = s->C, HWC = (int64_t)s->H * s->W * C;
	#pragma omp parallel for num_threads(threads) collapse(2) schedule(static)
	for (int n = 0; n < s->N; n++)
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				int64_t o = (((int64_t)n * Ho + oh) * Wo + ow) * C;
				maxpool_nhwc_pos(s, x + n * HWC, 0, oh, ow, y + o, idx ? idx + o : NULL);
			}
}

/* Channels per task of the NHWC backward: tasks own disjoint channels of a
 * sample, so overlapping windows never add into one element from two threads. */
#define MP_CBLK 64

static void maxpool_nhwc_bwd(int threads, const struct fd_pool2d_shape *s, const float *dy, const int32_t *idx,
			     float *dx)
{
	int Ho, Wo;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	int64_t C = s->C, HWC = (int64_t)s->H * s->W * C, P = (int64_t)Ho * Wo, nb = (C + MP_CBLK - 1) / MP_CBLK;
	#pragma omp parallel for num_threads(threads) collapse(2) schedule(static)
	for (int n = 0; n < s->N; n++)
		for (int64_t b = 0; b < nb; b++) {
			int64_t c0 = b * MP_CBLK, c1 = c0 + MP_CBLK < C ? c0 + MP_CBLK : C;
			float *dn = dx + n * HWC;
			for (int64_t o = 0; o < P; o++) {
				const float *g = dy + ((int64_t)n * P + o) * C;
				const int32_t *ix = idx + ((int64_t)n * P + o) * C;
				for (int64_t c = c0; c < c1; c++)
					dn[(int64_t)ix[c] * C + c] += g[c];
			}
		}
}

int fd_maxpool2d_disjoint(const struct fd_pool2d_shape *s)
{
	return s->kh == s->sh && s->kw == s->sw && s->ph == 0 && s->pw == 0;
}

/* Disjoint windows: input element (ih, iw) can only be in window (ih / sh,
 * iw / sw); written in input order, one pass over dx. 0.0f + g keeps the
 * scatter's bits (a -0 gradient becomes +0 there too). The positions [iw0,
 * iw0 + n) of input row ih of sample n into dr [n, C]; the window column
 * kept by a counter, not a division a position. */
FD_VEC_CLONES
static void maxpool_nhwc_bwd_row(const struct fd_pool2d_shape *s, int Ho, int Wo, int nn, int ih, int iw0,
				 int n, const float *restrict dy, const int32_t *restrict idx, float *restrict dr)
{
	int64_t C = s->C;
	int oh = ih / s->sh, ow = iw0 / s->sw, r = iw0 % s->sw;
	for (int j = 0; j < n; j++) {
		float *d = dr + (int64_t)j * C;
		if (oh >= Ho || ow >= Wo) {
			for (int64_t c = 0; c < C; c++)
				d[c] = 0.0f;
		} else {
			int64_t o = (((int64_t)nn * Ho + oh) * Wo + ow) * C;
			const float *g = dy + o;
			const int32_t *ix = idx + o;
			int32_t at = ih * s->W + iw0 + j;
			for (int64_t c = 0; c < C; c++)
				d[c] = ix[c] == at ? 0.0f + g[c] : 0.0f;
		}
		if (++r == s->sw)
			r = 0, ow++;
	}
}

int fd_maxpool2d_nhwc_bwd_write_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
				    const int32_t *idx, float *dx)
{
	int Ho, Wo;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	int64_t WC = (int64_t)s->W * s->C;
	#pragma omp parallel for num_threads(c->threads) collapse(2) schedule(static)
	for (int n = 0; n < s->N; n++)
		for (int ih = 0; ih < s->H; ih++)
			maxpool_nhwc_bwd_row(s, Ho, Wo, n, ih, 0, s->W, dy, idx, dx + ((int64_t)n * s->H + ih) * WC);
	return 0;
}

int fd_maxpool2d_nhwc_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y,
			      int32_t *idx)
{
	maxpool_nhwc_fwd(c->threads, s, x, y, idx);
	return 0;
}

int fd_maxpool2d_nhwc_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
			      const int32_t *idx, float *dx)
{
	maxpool_nhwc_bwd(c->threads, s, dy, idx, dx);
	return 0;
}

void fd_maxpool2d_nhwc_orow(const struct fd_pool2d_shape *s, const float *rows, int hr, int oh, float *y,
			    int32_t *idx)
{
	int Ho, Wo;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	for (int ow = 0; ow < Wo; ow++)
		maxpool_nhwc_pos(s, rows, hr, oh, ow, y + (int64_t)ow * s->C, idx + (int64_t)ow * s->C);
}

/* The windows along one axis (k, stride st, padding p, n_out windows) that
 * hold input index i: [lo, hi). Kept incrementally as i steps by one, so
 * the gather divides once per run of a row, not once per position. */
struct mp_axis {
	int k, st, n_out;
	int64_t t, qh, rh; /* t = i + p; t = qh * st + rh (t >= 0) */
	int64_t u, ql, rl; /* u = t - k + st; u = ql * st + rl when u >= 0 */
};

static void axis_at(struct mp_axis *a, int k, int st, int p, int n_out, int64_t i)
{
	a->k = k, a->st = st, a->n_out = n_out;
	a->t = i + p, a->qh = a->t / st, a->rh = a->t % st;
	a->u = a->t - k + st;
	a->ql = a->u >= 0 ? a->u / st : 0, a->rl = a->u >= 0 ? a->u % st : 0;
}

static void axis_next(struct mp_axis *a)
{
	if (++a->rh == a->st)
		a->rh = 0, a->qh++;
	if (++a->u > 0 && ++a->rl == a->st)
		a->rl = 0, a->ql++;
	else if (a->u == 0)
		a->ql = 0, a->rl = 0;
}

/* window o holds i when o * st <= t <= o * st + k - 1: o from ceil((t - k +
 * 1) / st) = floor(u / st) (0 when u < 0) to floor(t / st), clipped */
static int axis_lo(const struct mp_axis *a) { return a->u >= 0 ? (int)a->ql : 0; }
static int axis_hi(const struct mp_axis *a) { return (int)(a->qh + 1 < a->n_out ? a->qh + 1 : a->n_out); }

/* g = the sum over the windows (output offsets o, ascending) of dy at o
 * where idx at o is `at`, from +0: 0 + dy (or 0) for the first, then + dy
 * (or + 0, which changes no partial sum: none is -0). One run of input
 * positions [iw0, iw0 + n) of row ih of sample nn. */
FD_VEC_CLONES
static void maxpool_nhwc_gather_run(const struct fd_pool2d_shape *s, int Ho, int Wo, int64_t nn, int ih, int iw0,
				    int64_t n, const float *restrict dy, const int32_t *restrict idx,
				    float *restrict g)
{
	int64_t C = s->C;
	struct mp_axis h, w;
	axis_at(&h, s->kh, s->sh, s->ph, Ho, ih);
	axis_at(&w, s->kw, s->sw, s->pw, Wo, iw0);
	int ha = axis_lo(&h), hb = axis_hi(&h);
	for (int64_t j = 0; j < n; j++, axis_next(&w)) {
		float *gr = g + j * C;
		int32_t at = ih * s->W + iw0 + (int32_t)j;
		int wa = axis_lo(&w), wb = axis_hi(&w), first = 1;
		for (int oh = ha; oh < hb; oh++)
			for (int ow = wa; ow < wb; ow++) {
				int64_t o = ((nn * Ho + oh) * Wo + ow) * C;
				const float *d = dy + o;
				const int32_t *ix = idx + o;
				if (first)
					for (int64_t c = 0; c < C; c++)
						gr[c] = ix[c] == at ? 0.0f + d[c] : 0.0f;
				else
					for (int64_t c = 0; c < C; c++)
						gr[c] += ix[c] == at ? d[c] : 0.0f;
				first = 0;
			}
		if (first)
			for (int64_t c = 0; c < C; c++)
				gr[c] = 0.0f;
	}
}

int fd_maxpool2d_nhwc_grad_rows(const struct fd_pool2d_shape *s, int64_t m0, int64_t n, const float *dy,
				const int32_t *idx, float *g)
{
	int Ho, Wo;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	if ((int64_t)((s->kh + s->sh - 1) / s->sh) * ((s->kw + s->sw - 1) / s->sw) > FD_MP_MAXWIN)
		return -1;
	int64_t HW = (int64_t)s->H * s->W;
	int disjoint = fd_maxpool2d_disjoint(s);
	for (int64_t m = m0; m < m0 + n;) { /* runs within one input row */
		int64_t nn = m / HW, r = m % HW, iw = r % s->W;
		int64_t len = s->W - iw < m0 + n - m ? s->W - iw : m0 + n - m;
		if (disjoint) /* one window at most: maxpool_nhwc_bwd_row's bits */
			maxpool_nhwc_bwd_row(s, Ho, Wo, (int)nn, (int)(r / s->W), (int)iw, (int)len, dy, idx,
					     g + (m - m0) * s->C);
		else
			maxpool_nhwc_gather_run(s, Ho, Wo, nn, (int)(r / s->W), (int)iw, len, dy, idx,
						g + (m - m0) * s->C);
		m += len;
	}
	return 0;
}

/* ---------- the taped ops ---------- */

struct pool_saved {
	struct fd_pool2d_shape s;
	int32_t *idx;
	int nhwc; /* max pool ran channels last (idx in [N, Ho, Wo, C] order) */
};

static struct fd_tensor *pool_out(struct fd_ctx *c, const char *op, struct fd_tensor *x,
				  struct fd_pool2d_shape *s, int k, int stride, int pad, int ceil_mode,
				  int cip)
{
	char b1[64];
	if (x->ndim != 4 || x->numel > INT32_MAX)
		return fd_fail(c, "%s: input %s is not [N, C, H, W]", op, fd_tensor_shape_str(x, b1, sizeof b1));
	*s = (struct fd_pool2d_shape){(int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3],
				      k, k, stride, stride, pad, pad, ceil_mode, cip};
	int Ho, Wo;
	struct fd_err e = {{0}};
	if (fd_pool2d_out_size(s, &Ho, &Wo, &e) < 0)
		return fd_fail(c, "%s: input %s: %s", op, fd_tensor_shape_str(x, b1, sizeof b1), e.msg);
	int64_t shape[4] = {x->shape[0], x->shape[1], Ho, Wo};
	return fd_tensor_new(c, x->dev, 4, shape);
}

static int maxpool_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct pool_saved *s = n->saved;
	if (s->nhwc && (n->in[0]->flags & FD_T_GRAD_FRESH)) /* disjoint windows (n->writes) */
		return fd_maxpool2d_nhwc_bwd_write_cpu(c, &s->s, n->out->grad, s->idx, n->in[0]->grad);
	if (s->nhwc)
		return fd_maxpool2d_nhwc_bwd_cpu(c, &s->s, n->out->grad, s->idx, n->in[0]->grad);
	const struct fd_backend *be = FD_KERNEL(c, n->in[0]->dev, maxpool2d_bwd);
	return be ? be->maxpool2d_bwd(c, &s->s, n->out->grad, s->idx, n->in[0]->grad) : -1;
}

struct fd_tensor *fd_maxpool2d(struct fd_ctx *c, struct fd_tensor *x, int k, int stride, int pad,
			       int ceil_mode)
{
	if (!x)
		return NULL;
	struct pool_saved sv = {0};
	/* a channels-last CPU input stays so (doc/nn-kernels.md "Layouts") */
	sv.nhwc = fd_is_nhwc(x) && x->dev == FD_DEV_CPU;
	if (!sv.nhwc && !(x = fd_to_layout(c, x, FD_NCHW)))
		return NULL;
	const struct fd_backend *be = sv.nhwc ? NULL : FD_KERNEL(c, x->dev, maxpool2d_fwd);
	struct fd_tensor *y = be || sv.nhwc ? pool_out(c, "max_pool2d", x, &sv.s, k, stride, pad, ceil_mode, 1)
					   : NULL;
	/* int32 indices in float-sized device memory; none channels last
	 * where no backward will read them (inference) */
	int grad = fd_needs_grad(c, 1, &x);
	sv.idx = y && (grad || !sv.nhwc) ? (int32_t *)fd_ctx_alloc(c, x->dev, y->numel) : NULL;
	if (!y || (!sv.idx && (grad || !sv.nhwc)))
		return NULL;
	if (sv.nhwc) {
		y->layout = FD_NHWC;
		fd_maxpool2d_nhwc_fwd_cpu(c, &sv.s, x->data, y->data, sv.idx);
	} else if (be->maxpool2d_fwd(c, &sv.s, x->data, y->data, sv.idx) < 0) {
		return NULL;
	}
	if (grad) {
		struct fd_node *n = fd_tape_push(c, "max_pool2d", maxpool_backward, 1, &x, y, sizeof sv);
		if (!n)
			return NULL;
		*(struct pool_saved *)n->saved = sv;
		/* channels last with disjoint windows: a fresh dx is written, not
		 * zeroed and then added into */
		if (sv.nhwc && fd_maxpool2d_disjoint(&sv.s))
			n->writes |= 1;
	}
	return y;
}

static int avgpool_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct pool_saved *s = n->saved;
	const struct fd_backend *be = FD_KERNEL(c, n->in[0]->dev, avgpool2d_bwd);
	return be ? be->avgpool2d_bwd(c, &s->s, n->out->grad, n->in[0]->grad) : -1;
}

struct fd_tensor *fd_avgpool2d(struct fd_ctx *c, struct fd_tensor *x, int k, int stride, int pad,
			       int ceil_mode, int count_include_pad)
{
	if (!x)
		return NULL;
	struct pool_saved sv = {0};
	if (!(x = fd_to_layout(c, x, FD_NCHW)))
		return NULL;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, avgpool2d_fwd);
	struct fd_tensor *y = be ? pool_out(c, "avg_pool2d", x, &sv.s, k, stride, pad, ceil_mode,
					    count_include_pad) : NULL;
	if (!y || be->avgpool2d_fwd(c, &sv.s, x->data, y->data) < 0)
		return NULL;
	if (fd_needs_grad(c, 1, &x)) {
		struct fd_node *n = fd_tape_push(c, "avg_pool2d", avgpool_backward, 1, &x, y, sizeof sv);
		if (!n)
			return NULL;
		*(struct pool_saved *)n->saved = sv;
	}
	return y;
}

static int adapool_backward(struct fd_ctx *c, struct fd_node *n)
{
	struct fd_tensor *x = n->in[0], *y = n->out;
	if (fd_is_nhwc(x)) {
		gap_nhwc_bwd(c->threads, x->shape[0], x->shape[2] * x->shape[3], x->shape[1], y->grad, x->grad);
		return 0;
	}
	const struct fd_backend *be = FD_KERNEL(c, x->dev, adaptive_avgpool2d_bwd);
	return be ? be->adaptive_avgpool2d_bwd(c, x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->shape[2],
				    y->shape[3], y->grad, x->grad) : -1;
}

struct fd_tensor *fd_adaptive_avgpool2d(struct fd_ctx *c, struct fd_tensor *x, int Ho, int Wo)
{
	if (!x)
		return NULL;
	char b1[64];
	if (x->ndim != 4 || Ho < 1 || Wo < 1)
		return fd_fail(c, "adaptive_avg_pool2d: input %s to %dx%d: want [N, C, H, W] and a positive size",
			       fd_tensor_shape_str(x, b1, sizeof b1), Ho, Wo);
	int64_t shape[4] = {x->shape[0], x->shape[1], Ho, Wo};
	/* x in bf16 (a BN output under c->bf16_out that only this pool and a
	 * multiply read: the squeeze-excitation's input): the channels-last
	 * global pool in a bf16 context only */
	int xb = (x->flags & FD_T_BF16) != 0;
	if (xb && !(fd_is_nhwc(x) && Ho == 1 && Wo == 1 && x->dev == FD_DEV_CPU && c->precision == FD_PREC_BF16))
		return fd_fail(c, "adaptive_avg_pool2d: input %s in bf16: only channels last to 1x1 in a bf16 context",
			       fd_tensor_shape_str(x, b1, sizeof b1));
	if (fd_is_nhwc(x) && Ho == 1 && Wo == 1) { /* the [N, C, 1, 1] result is the same in both orders */
		struct fd_tensor *y = fd_tensor_new(c, x->dev, 4, shape);
		if (!y)
			return NULL;
		if (xb)
			gap_nhwc_fwd_b(c->threads, x->shape[0], x->shape[2] * x->shape[3], x->shape[1],
				       (const uint16_t *)x->data, y->data);
		else
			gap_nhwc_fwd(c->threads, x->shape[0], x->shape[2] * x->shape[3], x->shape[1], x->data, y->data);
		if (fd_needs_grad(c, 1, &x) && !fd_tape_push(c, "adaptive_avg_pool2d", adapool_backward, 1, &x, y, 0))
			return NULL;
		return y;
	}
	if (!(x = fd_to_layout(c, x, FD_NCHW)))
		return NULL;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, adaptive_avgpool2d_fwd);
	struct fd_tensor *y = be ? fd_tensor_new(c, x->dev, 4, shape) : NULL;
	if (!y || be->adaptive_avgpool2d_fwd(c, x->shape[0], x->shape[1], x->shape[2], x->shape[3], Ho, Wo, x->data,
				  y->data) < 0)
		return NULL;
	if (fd_needs_grad(c, 1, &x) && !fd_tape_push(c, "adaptive_avg_pool2d", adapool_backward, 1, &x, y, 0))
		return NULL;
	return y;
}

void fd_maxpool2d_ref_forward(const struct fd_pool2d_shape *s, const double *x, double *y)
{
	int Ho, Wo;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	for (long pl = 0; pl < (long)s->N * s->C; pl++)
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				const double *xp = x + (size_t)pl * s->H * s->W;
				y[((size_t)pl * Ho + oh) * Wo + ow] = xp[ref_argmax(s, xp, oh, ow)];
			}
}

void fd_maxpool2d_ref_backward(const struct fd_pool2d_shape *s, const double *x, const double *dy,
			       double *dx)
{
	int Ho, Wo;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	for (long pl = 0; pl < (long)s->N * s->C; pl++)
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				size_t base = (size_t)pl * s->H * s->W;
				dx[base + ref_argmax(s, x + base, oh, ow)] += dy[((size_t)pl * Ho + oh) * Wo + ow];
			}
}

/* The window of (oh, ow) in padded coordinates; in[] marks real input. */
static double ref_avg_div(const struct fd_pool2d_shape *s, int oh, int ow)
{
	int n = 0;
	for (int r = 0; r < s->kh; r++)
		for (int q = 0; q < s->kw; q++) {
			int ih = oh * s->sh - s->ph + r, iw = ow * s->sw - s->pw + q;
			int in_pad = ih < s->H + s->ph && iw < s->W + s->pw; /* ceil_mode windows overhang */
			int in_img = ih >= 0 && ih < s->H && iw >= 0 && iw < s->W;
			n += s->count_include_pad ? in_pad : in_img;
		}
	return n;
}

void fd_avgpool2d_ref_forward(const struct fd_pool2d_shape *s, const double *x, double *y)
{
	int Ho, Wo;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	for (long pl = 0; pl < (long)s->N * s->C; pl++)
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				double acc = 0;
				for (int r = 0; r < s->kh; r++)
					for (int q = 0; q < s->kw; q++) {
						int ih = oh * s->sh - s->ph + r, iw = ow * s->sw - s->pw + q;
						if (ih >= 0 && ih < s->H && iw >= 0 && iw < s->W)
							acc += x[((size_t)pl * s->H + ih) * s->W + iw];
					}
				y[((size_t)pl * Ho + oh) * Wo + ow] = acc / ref_avg_div(s, oh, ow);
			}
}

void fd_avgpool2d_ref_backward(const struct fd_pool2d_shape *s, const double *dy, double *dx)
{
	int Ho, Wo;
	fd_pool2d_out_size(s, &Ho, &Wo, NULL);
	for (long pl = 0; pl < (long)s->N * s->C; pl++)
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				double g = dy[((size_t)pl * Ho + oh) * Wo + ow] / ref_avg_div(s, oh, ow);
				for (int r = 0; r < s->kh; r++)
					for (int q = 0; q < s->kw; q++) {
						int ih = oh * s->sh - s->ph + r, iw = ow * s->sw - s->pw + q;
						if (ih >= 0 && ih < s->H && iw >= 0 && iw < s->W)
							dx[((size_t)pl * s->H + ih) * s->W + iw] += g;
					}
			}
}

void fd_adaptive_avgpool2d_ref_forward(int N, int C, int H, int W, int Ho, int Wo, const double *x,
				       double *y)
{
	for (long pl = 0; pl < (long)N * C; pl++)
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				int h0 = (int)floor((double)oh * H / Ho), h1 = (int)ceil((double)(oh + 1) * H / Ho);
				int w0 = (int)floor((double)ow * W / Wo), w1 = (int)ceil((double)(ow + 1) * W / Wo);
				double acc = 0;
				for (int ih = h0; ih < h1; ih++)
					for (int iw = w0; iw < w1; iw++)
						acc += x[((size_t)pl * H + ih) * W + iw];
				y[((size_t)pl * Ho + oh) * Wo + ow] = acc / ((h1 - h0) * (w1 - w0));
			}
}

void fd_adaptive_avgpool2d_ref_backward(int N, int C, int H, int W, int Ho, int Wo, const double *dy,
					double *dx)
{
	for (long pl = 0; pl < (long)N * C; pl++)
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				int h0 = (int)floor((double)oh * H / Ho), h1 = (int)ceil((double)(oh + 1) * H / Ho);
				int w0 = (int)floor((double)ow * W / Wo), w1 = (int)ceil((double)(ow + 1) * W / Wo);
				double g = dy[((size_t)pl * Ho + oh) * Wo + ow] / ((h1 - h0) * (w1 - w0));
				for (int ih = h0; ih < h1; ih++)
					for (int iw = w0; iw < w1; iw++)
						dx[((size_t)pl * H + ih) * W + iw] += g;
			}
}

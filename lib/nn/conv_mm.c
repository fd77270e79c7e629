/* conv_mm: bf16 convolution backward passes as oneDNN matmuls (see conv_mm.h). */
#include "nn/conv_mm.h"

#include <string.h>

int fd_conv_mm_rule(const struct fd_conv2d_shape *s, int Ho, int Wo)
{
	if (s->groups != 1 || s->dh != 1 || s->dw != 1 || s->xl != FD_NHWC || s->yl != FD_NHWC)
		return 0;
	/* 1x1 backward-weights dW[K, C]: with C < 32 columns the matmul was
	 * slower than oneDNN's convolution (EfficientNet's and MobileNet's
	 * 16-channel expansions, doc/nn-kernels.md "bf16") */
	if (s->kh == 1 && s->kw == 1 && s->ph == 0 && s->pw == 0)
		return FD_CONV_MM_DATA | (s->C >= 32 ? FD_CONV_MM_WEIGHTS : 0);
	/* strided kxk backward-data: dy . W' and col2im (fd_conv_mm_bwd_data) */
	int bd = (s->sh > 1 || s->sw > 1) && s->kh * s->kw > 1 ? FD_CONV_MM_DATA : 0;
	/* kxk: under FD_CONV2D_BF16_WEIGHTS_MAP positions oneDNN's bf16
	 * backward-weights is slow and fd's ran fp32; on larger maps its AMX
	 * kernel is faster than im2col + matmul, except strided with at least
	 * 96 input channels (ResNet-50's 3x3/2 128 -> 128 at 56 -> 28 took 350
	 * ms a call there; ConvNeXt's 2x2/2 downsampling) */
	if ((int64_t)Ho * Wo < FD_CONV2D_BF16_WEIGHTS_MAP || ((s->sh > 1 || s->sw > 1) && s->C >= 96))
		return bd | FD_CONV_MM_WEIGHTS;
	return bd;
}

int fd_conv_mm_nonamx(const struct fd_conv2d_shape *s, int Ho, int Wo)
{
	int r = fd_conv_mm_rule(s, Ho, Wo), strided = s->sh > 1 || s->sw > 1;
	if (s->kh * s->kw > 1)
		r &= ~FD_CONV_MM_DATA;
	else if ((int64_t)Ho * Wo >= FD_CONV2D_BF16_WEIGHTS_MAP && !(strided && s->C >= 96))
		r &= ~FD_CONV_MM_WEIGHTS;
	return r;
}

/* A matmul C[M,N] (=, or += with sum) A[M,K] B[K,N]: A bf16 row-major, or
 * its transpose stored row-major (at: A = T^T, T [K,M]), B bf16 and C fp32
 * row-major; memories without handles (mem[3]: its scratchpad in slot
 * FD_DNNL_SCRATCH, NULL when it needs none). *fast: fd_pd_bf16_native of
 * oneDNN's kernel (2 AMX, 1 AVX512-BF16 on a CPU without AMX, 0 else). */
static int mm_make(struct fd_dnnl *d, int64_t M, int64_t K, int64_t N, int at, int sum, dnnl_primitive_t *prim,
		   dnnl_memory_t mem[4], int *fast, struct fd_err *e)
{
	fd_md am = NULL, bm = NULL, cm = NULL;
	dnnl_dims_t ad = {M, K}, as = {at ? 1 : K, at ? M : 1}, bd = {K, N}, bs = {N, 1}, cd = {M, N};
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	dnnl_primitive_desc_t pd = NULL;
	int rc = -1;
	if (fd_md_strides(&am, 2, ad, dnnl_bf16, as, e) || fd_md_strides(&bm, 2, bd, dnnl_bf16, bs, e) ||
	    fd_md_strides(&cm, 2, cd, dnnl_f32, bs, e) || fd_dnnl_attr_scratch(&attr, e))
		goto out;
	if (sum && (fd_dnnl_check(dnnl_post_ops_create(&po), e, "conv matmul post-ops") ||
		    fd_dnnl_check(fd_po_sum(po), e, "conv matmul sum post-op") ||
		    fd_dnnl_check(dnnl_primitive_attr_set_post_ops(attr, po), e, "conv matmul attr post-ops")))
		goto out;
	if (fd_dnnl_check(fd_matmul_pd(&pd, d->engine, am, bm, NULL, cm, attr), e,
			  "conv matmul primitive descriptor") ||
	    fd_dnnl_check(dnnl_primitive_create(prim, pd), e, "conv matmul primitive") ||
	    fd_dnnl_check(dnnl_memory_create(&mem[0], am, d->engine, DNNL_MEMORY_NONE), e, "conv matmul memory") ||
	    fd_dnnl_check(dnnl_memory_create(&mem[1], bm, d->engine, DNNL_MEMORY_NONE), e, "conv matmul memory") ||
	    fd_dnnl_check(dnnl_memory_create(&mem[2], cm, d->engine, DNNL_MEMORY_NONE), e, "conv matmul memory") ||
	    fd_dnnl_scratch_init(d, pd, &mem[3], e))
		goto out;
	*fast = fd_pd_bf16_native(pd);
	rc = 0;
out:
	fd_md_free(am);
	fd_md_free(bm);
	fd_md_free(cm);
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (po)
		dnnl_post_ops_destroy(po);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	return rc;
}

static int mm_run(struct fd_dnnl *d, dnnl_primitive_t prim, dnnl_memory_t const mem[4], const void *a,
		  const void *b, float *c, struct fd_err *e)
{
	dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]}};
	if (fd_dnnl_check(dnnl_memory_set_data_handle(mem[0], (void *)a), e, "conv matmul handle") ||
	    fd_dnnl_check(dnnl_memory_set_data_handle(mem[1], (void *)b), e, "conv matmul handle") ||
	    fd_dnnl_check(dnnl_memory_set_data_handle(mem[2], c), e, "conv matmul handle"))
		return -1;
	return fd_dnnl_exec_sp(d, prim, mem[3], 3, args, e);
}

void fd_conv_mm_free(struct fd_conv_mm *m)
{
	dnnl_primitive_t p[] = {m->bd, m->bd_sum, m->bw};
	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
		if (p[i])
			dnnl_primitive_destroy(p[i]);
	for (int i = 0; i < 4; i++) {
		if (m->bd_m[i])
			dnnl_memory_destroy(m->bd_m[i]);
		if (m->bw_m[i])
			dnnl_memory_destroy(m->bw_m[i]);
		if (m->bds_m[i])
			dnnl_memory_destroy(m->bds_m[i]);
	}
	memset(m, 0, sizeof *m);
}

/* Images per backward-weights chunk: the most that divide N with their
 * im2col within the bound (FD_CONV_MM_COL_MAX, or x's size for a 1x1). */
static int chunk_images(const struct fd_conv2d_shape *s, int Ho, int Wo)
{
	int64_t per = (int64_t)Ho * Wo * s->kh * s->kw * s->C;
	int64_t lim = FD_CONV_MM_COL_MAX;
	if (s->kh * s->kw == 1 && (int64_t)s->H * s->W * s->C * s->N > lim)
		lim = (int64_t)s->H * s->W * s->C * s->N;
	int nb = 1;
	for (int b = 1; b <= s->N; b++)
		if (s->N % b == 0 && b * per <= lim)
			nb = b;
	return nb;
}

/* Images per strided kxk backward-data chunk: the most that divide N with
 * their fp32 columns within FD_CONV_MM_COL_MAX / 2 values (16 MiB). */
static int chunk_images_data(const struct fd_conv2d_shape *s, int Ho, int Wo)
{
	int64_t per = (int64_t)Ho * Wo * s->kh * s->kw * s->C;
	int nb = 1;
	for (int b = 1; b <= s->N; b++)
		if (s->N % b == 0 && b * per <= FD_CONV_MM_COL_MAX / 2)
			nb = b;
	return nb;
}

int fd_conv_mm_init(struct fd_conv_mm *m, struct fd_dnnl *d, const struct fd_conv2d_shape *s, int Ho, int Wo,
		    struct fd_err *e)
{
	int want = fd_conv_mm_rule(s, Ho, Wo), fast = 0, fast2 = 2;
	int64_t P = (int64_t)s->N * Ho * Wo, K = s->K, C = s->C, kk = (int64_t)s->kh * s->kw;
	int strided = s->sh > 1 || s->sw > 1;
	memset(m, 0, sizeof *m);
	m->Ho = Ho, m->Wo = Wo;
	if (!want)
		return 0;
	int prev = fd_dnnl_threads_enter(d->threads);
	if (want & FD_CONV_MM_DATA) {
		/* a kxk: cols [nbd Ho Wo, kh kw C] a batch chunk at a time */
		m->nbd = kk > 1 ? chunk_images_data(s, Ho, Wo) : s->N;
		int64_t Pd = (int64_t)m->nbd * Ho * Wo, out = Pd * kk * C > K * kk * C ? Pd * kk * C : K * kk * C;
		int rc = mm_make(d, Pd, K, kk * C, 0, 0, &m->bd, m->bd_m, &fast, e) ||
			 (!strided && mm_make(d, P, K, C, 0, 1, &m->bd_sum, m->bds_m, &fast2, e));
		if (rc)
			goto fail;
		/* without AMX (Zen 4) the 1x1's matmul beat oneDNN's AVX512-BF16
		 * backward-data (2.5 against 3.9 ms, ResNet-18's 64 -> 128
		 * downsampling), the strided kxk's im2col one did not (17 against
		 * 11 ms) */
		if (fast == 2 ? fast2 == 2 : fast == 1 && fast2 >= 1 && (fd_conv_mm_nonamx(s, Ho, Wo) & FD_CONV_MM_DATA)) {
			if (fd_dnnl_ws_reserve(d, 0, (size_t)(K * kk * C) * 2, e) ||
			    fd_dnnl_ws_reserve(d, 1, (size_t)(P * K) * 2, e) ||
			    (strided && fd_dnnl_ws_reserve(d, 2, (size_t)(kk > 1 ? out : P * C) * 4, e)))
				goto fail;
			m->passes |= FD_CONV_MM_DATA;
		}
	}
	if (want & FD_CONV_MM_WEIGHTS) {
		m->nb = chunk_images(s, Ho, Wo);
		int64_t Pc = (int64_t)m->nb * Ho * Wo;
		if (mm_make(d, K, Pc, kk * C, 1, 1, &m->bw, m->bw_m, &fast, e))
			goto fail;
		/* without AMX a 1x1 on a map of FD_CONV2D_BF16_WEIGHTS_MAP positions
		 * or more keeps oneDNN's AVX512-BF16 backward-weights (15.7 against
		 * 23.3 ms, ResNet-50's 64 -> 256 at 56x56): fd_conv_mm_nonamx */
		if (fast == 2 || (fast == 1 && (fd_conv_mm_nonamx(s, Ho, Wo) & FD_CONV_MM_WEIGHTS))) {
			if (fd_dnnl_ws_reserve(d, 0, (size_t)(Pc * kk * C) * 2, e) ||
			    fd_dnnl_ws_reserve(d, 1, (size_t)(P * K) * 2, e) ||
			    (kk > 1 && fd_dnnl_ws_reserve(d, 2, (size_t)(K * kk * C) * 4, e)))
				goto fail;
			m->passes |= FD_CONV_MM_WEIGHTS;
		}
	}
	fd_dnnl_threads_leave(prev);
	return 0;
fail:
	fd_dnnl_threads_leave(prev);
	fd_conv_mm_free(m);
	return fd_err_ctx(e, "bf16 backward as matmuls");
}

int fd_conv_mm_dy(const struct fd_conv_mm *m, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
		  const float *dy, struct fd_err *e)
{
	size_t n = (size_t)s->N * m->Ho * m->Wo * s->K;
	if (fd_dnnl_to_bf16(d->threads, dy, d->ws[1], n) < 0)
		return fd_err_set(e, "bf16 dy: this CPU lacks AVX512-BF16");
	return 0;
}

/* dx (NHWC, H x W) from t (NHWC, Ho x Wo, stride sh, sw, no padding): the
 * positions the stride reaches get t's values (over) or add them; the
 * others are zeroed (over) or left. */
static void scatter(int threads, const struct fd_conv2d_shape *s, int Ho, int Wo, const float *t, float *dx,
		    int over)
{
	int64_t C = s->C;
	#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
	for (int n = 0; n < s->N; n++)
		for (int h = 0; h < s->H; h++) {
			float *r = dx + ((int64_t)n * s->H + h) * s->W * C;
			int oh = h / s->sh, hit = h % s->sh == 0 && oh < Ho;
			for (int w = 0; w < s->W; w++) {
				int ow = w / s->sw;
				float *o = r + (int64_t)w * C;
				if (hit && w % s->sw == 0 && ow < Wo) {
					const float *src = t + (((int64_t)n * Ho + oh) * Wo + ow) * C;
					if (over)
						memcpy(o, src, (size_t)C * sizeof *o);
					else
						for (int64_t c = 0; c < C; c++)
							o[c] += src[c];
				} else if (over) {
					memset(o, 0, (size_t)C * sizeof *o);
				}
			}
		}
}

/* dx rows of images n0 .. n0+nb-1 (NHWC) from their columns col [nb Ho
 * Wo, kh kw C] (fp32): each position adds, into its value (zeroed first
 * when over), the column entries that multiply it, kernel taps in order
 * (i, then j): a fixed order per element, the same bits on any thread
 * count; positions no tap reaches are zeroed (over) or left. */
static void col2im(int threads, const struct fd_conv2d_shape *s, int Ho, int Wo, const float *col, int n0, int nb,
		   float *dx, int over)
{
	int64_t C = s->C, row = (int64_t)s->kh * s->kw * C;
	#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
	for (int n = 0; n < nb; n++)
		for (int h = 0; h < s->H; h++) {
			float *r = dx + (((int64_t)(n0 + n) * s->H + h) * s->W) * C;
			for (int w = 0; w < s->W; w++) {
				float *o = r + (int64_t)w * C;
				if (over)
					memset(o, 0, (size_t)C * sizeof *o);
				for (int i = 0; i < s->kh; i++) {
					int t = h + s->ph - i, oh = t / s->sh;
					if (t < 0 || t % s->sh || oh >= Ho)
						continue;
					for (int j = 0; j < s->kw; j++) {
						int u = w + s->pw - j, ow = u / s->sw;
						if (u < 0 || u % s->sw || ow >= Wo)
							continue;
						const float *src = col + (((int64_t)n * Ho + oh) * Wo + ow) * row +
								   ((int64_t)i * s->kw + j) * C;
						for (int64_t c = 0; c < C; c++)
							o[c] += src[c];
					}
				}
			}
		}
}

/* Strided kxk backward-data: per batch chunk cols = dy . W' (W'[k, (i kw +
 * j) C + c] = w[k, c, i, j] in bf16, slot 0), cols in slot 2, then col2im
 * into dx. */
static int bwd_data_kxk(const struct fd_conv_mm *m, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
			const uint16_t *dyb, const float *w, float *dx, int over, struct fd_err *e)
{
	int64_t K = s->K, C = s->C, kk = (int64_t)s->kh * s->kw, HoWo = (int64_t)m->Ho * m->Wo;
	float *wr = d->ws[2]; /* w rearranged, fp32, before the columns use slot 2 */
	#pragma omp parallel for num_threads(d->threads) schedule(static)
	for (int64_t k = 0; k < K; k++)
		for (int64_t t = 0; t < kk; t++)
			for (int64_t c = 0; c < C; c++)
				wr[(k * kk + t) * C + c] = w[(k * C + c) * kk + t];
	if (fd_dnnl_to_bf16(d->threads, wr, d->ws[0], (size_t)(K * kk * C)) < 0)
		return fd_err_set(e, "bf16 w: this CPU lacks AVX512-BF16");
	for (int n0 = 0; n0 < s->N; n0 += m->nbd) {
		if (mm_run(d, m->bd, m->bd_m, dyb + n0 * HoWo * K, d->ws[0], d->ws[2], e))
			return -1;
		col2im(d->threads, s, m->Ho, m->Wo, d->ws[2], n0, m->nbd, dx, over);
	}
	return 0;
}

int fd_conv_mm_bwd_data(const struct fd_conv_mm *m, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
			const uint16_t *dyb, const float *w, float *dx, int over, struct fd_err *e)
{
	int rc = -1, prev = fd_dnnl_threads_enter(d->threads);
	uint16_t *wb = d->ws[0];
	if (!dyb)
		dyb = d->ws[1];
	if (s->kh * s->kw > 1) {
		rc = bwd_data_kxk(m, d, s, dyb, w, dx, over, e);
		goto out;
	}
	if (fd_dnnl_to_bf16(d->threads, w, wb, (size_t)s->K * s->C) < 0) {
		fd_err_set(e, "bf16 w: this CPU lacks AVX512-BF16");
		goto out;
	}
	if (s->sh == 1 && s->sw == 1) {
		rc = over ? mm_run(d, m->bd, m->bd_m, dyb, wb, dx, e)
			  : mm_run(d, m->bd_sum, m->bds_m, dyb, wb, dx, e);
	} else if (!(rc = mm_run(d, m->bd, m->bd_m, dyb, wb, d->ws[2], e))) {
		scatter(d->threads, s, m->Ho, m->Wo, d->ws[2], dx, over);
	}
out:
	fd_dnnl_threads_leave(prev);
	return rc ? fd_err_ctx(e, "bf16 backward-data as a matmul") : 0;
}

/* The bf16 im2col of images n0 .. n0+nb-1 of x (NHWC): row (n, oh, ow),
 * column (i kw + j) C + c = x[n, oh sh - ph + i, ow sw - pw + j, c], zero
 * in the padding; from xb (x in bf16, copied) when x is NULL. */
static void im2col(int threads, const struct fd_conv2d_shape *s, int Ho, int Wo, const float *x,
		   const uint16_t *xb, int n0, int nb, uint16_t *col)
{
	int64_t C = s->C, row = (int64_t)s->kh * s->kw * C;
	#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
	for (int n = 0; n < nb; n++)
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				uint16_t *r = col + (((int64_t)n * Ho + oh) * Wo + ow) * row;
				for (int i = 0; i < s->kh; i++) {
					int ih = oh * s->sh - s->ph + i;
					for (int j = 0; j < s->kw; j++) {
						int iw = ow * s->sw - s->pw + j;
						uint16_t *o = r + ((int64_t)i * s->kw + j) * C;
						int64_t at = (((int64_t)(n0 + n) * s->H + ih) * s->W + iw) * C;
						if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
							memset(o, 0, (size_t)C * sizeof *o);
						else if (x)
							fd_dnnl_to_bf16(1, x + at, o, (size_t)C);
						else
							memcpy(o, xb + at, (size_t)C * sizeof *o);
					}
				}
			}
}

/* dy's value i: a float, or (dyb) a bf16 value widened (exact) */
static inline __attribute__((always_inline)) float dy_at(const float *dy, const uint16_t *dyb, int64_t i)
{
	if (!dyb)
		return dy[i];
	uint32_t u = (uint32_t)dyb[i] << 16;
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* db[k] += sum over the P rows of dy[., k] (fp32, or the bf16 dyb's values
 * when dyb; rows in order: the same bits on any thread count) */
static void col_sums(int threads, const float *dy, const uint16_t *dyb, int64_t P, int64_t K, float *db)
{
	int64_t nblk = (K + 15) / 16;
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int64_t b = 0; b < nblk; b++) {
		int64_t k0 = b * 16, nk = K - k0 < 16 ? K - k0 : 16;
		float acc[16] = {0};
		for (int64_t p = 0; p < P; p++)
			for (int64_t k = 0; k < nk; k++)
				acc[k] += dy_at(dy, dyb, p * K + k0 + k);
		for (int64_t k = 0; k < nk; k++)
			db[k0 + k] += acc[k];
	}
}

int fd_conv_mm_bwd_weights(const struct fd_conv_mm *m, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
			   const float *x, const uint16_t *xb, const float *dy, const uint16_t *dyb, float *dw,
			   float *db, struct fd_err *e)
{
	int64_t K = s->K, C = s->C, kk = (int64_t)s->kh * s->kw, HoWo = (int64_t)m->Ho * m->Wo;
	const uint16_t *dyb_given = dyb; /* the bias sums read dy in bf16 when that is what was given */
	if (!dyb)
		dyb = d->ws[1];
	int rc = 0, prev = fd_dnnl_threads_enter(d->threads);
	if (dw) {
		/* a 1x1's dW is dw's OIHW [K, C]; a kxk's [K, kh kw C] goes through slot 2 */
		float *acc = kk == 1 ? dw : d->ws[2];
		if (kk > 1)
			memset(acc, 0, (size_t)(K * kk * C) * sizeof *acc);
		for (int n0 = 0; n0 < s->N && !rc; n0 += m->nb) {
			const uint16_t *col = d->ws[0];
			if (kk == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0) {
				if (x) /* x's own rows are the columns */
					fd_dnnl_to_bf16(d->threads, x + (int64_t)n0 * s->H * s->W * C, d->ws[0],
							(size_t)(m->nb * HoWo * C));
				else
					col = xb + (int64_t)n0 * s->H * s->W * C;
			} else {
				im2col(d->threads, s, m->Ho, m->Wo, x, xb, n0, m->nb, d->ws[0]);
			}
			rc = mm_run(d, m->bw, m->bw_m, dyb + n0 * HoWo * K, col, acc, e);
		}
		if (!rc && kk > 1) {
			#pragma omp parallel for num_threads(d->threads) schedule(static)
			for (int64_t k = 0; k < K; k++)
				for (int64_t t = 0; t < kk; t++)
					for (int64_t c = 0; c < C; c++)
						dw[(k * C + c) * kk + t] += acc[(k * kk + t) * C + c];
		}
	}
	if (!rc && db)
		col_sums(d->threads, dy, dyb_given, s->N * HoWo, K, db);
	fd_dnnl_threads_leave(prev);
	return rc ? fd_err_ctx(e, "bf16 backward-weights as a matmul") : 0;
}

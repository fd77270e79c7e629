/* mbfront: an inverted-residual block's expansion and depthwise
 * convolution at inference in one pass (see mbfront.h).
 *
 * Work: (image, band of output rows) tasks over c->threads. A task walks
 * its output rows in order; before row ho it expands the input rows the
 * depthwise window needs that it has not expanded yet into a ring of
 * d->slots rows (k, or H where the whole padded image fits; row hi in slot
 * hi mod slots), each ring row W + 2p pixels wide with p zero pixels at
 * either end (never written after they are cleared), so the depthwise loop
 * has no border case; rows above or below the image read a zero row.
 * Channels are padded to a multiple of 16 (C16) in the ring and the packed
 * weights (zero weights and biases: the padded channels hold act(0) = 0)
 * and masked off when the output row is stored.
 *
 * Expansion: register tiles of 7 pixels x nb (<= 3) 16-channel blocks
 * (tile7.h), the sums from the bias, one fused multiply-add per input
 * channel in order, then the activation in registers (v_act). Depthwise:
 * per 16-channel block, four output columns at a time share each weight
 * load; the sum from the bias, taps in row-major order, the activation in
 * registers; the row's channel sums in double where asked. */
#include "nn/mbfront.h"
#include "core/fd_vec.h"
#include "nn/act.h"
#include "nn/layout.h"
#include "nn/tile7.h"

#include <omp.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include "nn/vexp512.h"
#define MF_X86 1
#else
#define MF_X86 0
#endif

/* the expansion's tile (tile7.h): 7 pixels (EfficientNet's and MobileNetV3's
 * widths are multiples of 7: 112, 56, 28, 14, 7) x up to 3 blocks of 16 */
#define MF_P FD_T7_P
#define MF_NB FD_T7_NB
#define MF_Q 4  /* output columns of a depthwise step */
/* The ring holds the whole padded image (every row expanded once, each
 * weight group used over all its rows) where it takes at most this many
 * bytes, the L2 share of a thread (1 MiB a core on Zen 4) */
#define MF_WHOLE_BYTES (768 * 1024)

struct mf {
	int N, H, W, Cin, C, C16, k, s, p, Ho, Wo, act, bands;
	int64_t rowf;                       /* floats of a ring row: (W + 2p) C16 */
	int slots;                          /* ring rows: k, or H where the whole padded
					     * image fits (MF_WHOLE_BYTES) */
	const float *x;                     /* [N, H, W, Cin] */
	const float *we, *be, *wd, *bd;     /* packed (we NULL: no expansion, x's rows copied
					     * into the ring): we per group of MF_NB blocks g, at g Cin
					     * MF_NB 16: [Cin][nb 16] (nb: the group's blocks);
					     * be [C16], wd [k k][C16], bd [C16] */
	const float *zero;                  /* a ring row of zeros */
	float *y;                           /* [N, Ho, Wo, C] */
	double *rs;                         /* NULL, or each output row's channel sums
					     * [N][Ho][C16] */
};

static int act_ok(int act)
{
	return act == FD_ACT_RELU || act == FD_ACT_HARDSWISH || act == FD_ACT_SILU;
}

static int cpu_ok(void)
{
#if MF_X86
	return __builtin_cpu_supports("avx512f");
#else
	return 0;
#endif
}

int fd_mbfront_serves(const struct fd_ctx *c, const struct fd_tensor *x, int k, int stride, int act)
{
	return c->dev == FD_DEV_CPU && c->precision == FD_PREC_FP32 && x && x->dev == FD_DEV_CPU && x->ndim == 4 &&
	       !(x->flags & FD_T_BF16) && (fd_is_nhwc(x) || x->shape[2] * x->shape[3] == 1) && k >= 1 && k <= FD_MBFRONT_MAXK && k % 2 == 1 &&
	       (stride == 1 || stride == 2) && act_ok(act) && cpu_ok();
}

#if MF_X86
#define MF_TARGET FD_VEC_AVX512_ONLY
/* the register tiles without UBSan's checks (their indices are the unrolled
 * loops' constants; clang -O1 with make fuzz's flags slows to minutes on
 * them otherwise, as bfw.c's); ASan still checks the loads */
#define MF_NO_UBSAN __attribute__((no_sanitize("undefined")))

/* The activations on 16 lanes, in registers (the formulas of act_inline.h
 * with fused multiply-adds: within a few ulp of them, not their bits).
 * vmaxps / vminps return their second operand where either is a NaN, so
 * NaN propagates as torch's. */
MF_TARGET static inline __attribute__((always_inline)) __m512 v_relu(__m512 x)
{
	return _mm512_max_ps(_mm512_setzero_ps(), x);
}

MF_TARGET static inline __attribute__((always_inline)) __m512 v_hardswish(__m512 x)
{
	__m512 t = _mm512_add_ps(x, _mm512_set1_ps(3.0f));
	t = _mm512_min_ps(_mm512_set1_ps(6.0f), _mm512_max_ps(_mm512_setzero_ps(), t));
	return _mm512_mul_ps(x, _mm512_mul_ps(t, _mm512_set1_ps(1.0f / 6.0f)));
}

/* x / (1 + e^-x): e^-x by fd_v512_exp (vexp512.h: +inf or +0 beyond the
 * float range: x / inf = -0 for x << 0, x / 1 = x for x >> 0); the
 * quotient from vrcp14ps and one Newton step (relative error about 2^-27) */
MF_TARGET static inline __attribute__((always_inline)) __m512 v_silu(__m512 x)
{
	__m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), fd_v512_exp(_mm512_sub_ps(_mm512_setzero_ps(), x)));
	__m512 q = _mm512_rcp14_ps(d);
	q = _mm512_mul_ps(q, _mm512_fnmadd_ps(d, q, _mm512_set1_ps(2.0f)));
	/* d = +inf (x << 0): rcp14 gives +0 and the Newton step 0 * (2 - inf * 0) = NaN */
	q = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(d, _mm512_set1_ps(3.0e38f), _CMP_GT_OQ), q, _mm512_setzero_ps());
	return _mm512_mul_ps(x, q);
}

MF_TARGET static inline __attribute__((always_inline)) __m512 v_act(const int act, __m512 x)
{
	return act == FD_ACT_RELU ? v_relu(x) : act == FD_ACT_HARDSWISH ? v_hardswish(x) : v_silu(x);
}

/* Pixels px0 .. px0 + np - 1 (np <= MF_P) of input row xr, channel blocks
 * cb .. cb + nb - 1: act of the expanded sums into ring row r (pixel px at
 * px + p). Missing pixels of a short tile repeat the last one (computed,
 * not stored). */
MF_TARGET static inline __attribute__((always_inline)) void ex_tile_b(const int nb, const int act, const struct mf *d,
								      const float *xr, int px0, int np, int cb, float *r)
{
	const float *xp[MF_P];
	for (int i = 0; i < MF_P; i++)
		xp[i] = xr + (int64_t)(px0 + (i < np ? i : np - 1)) * d->Cin;
	__m512 acc[MF_P][MF_NB];
	FD_TILE7_SUMS(acc, nb, xp, d->Cin, d->we + (int64_t)cb * 16 * d->Cin, d->be + cb * 16);
#pragma GCC unroll 8
	for (int i = 0; i < MF_P; i++) {
		if (i >= np)
			break;
		float *o = r + (int64_t)(d->p + px0 + i) * d->C16 + cb * 16;
#pragma GCC unroll 4
		for (int j = 0; j < nb; j++)
			_mm512_storeu_ps(o + j * 16, v_act(act, acc[i][j]));
	}
}

typedef void (*ex_tile_fn)(const struct mf *, const float *, int, int, int, float *);
#define MF_EX(NB, ACT, NAME)                                                                                 \
	MF_TARGET MF_NO_UBSAN __attribute__((noinline)) static void NAME(const struct mf *d, const float *xr,    \
									  int px0, int np, int cb, float *r)    \
	{                                                                                                    \
		ex_tile_b(NB, ACT, d, xr, px0, np, cb, r);                                                   \
	}
MF_EX(1, FD_ACT_RELU, ex1_relu)
MF_EX(2, FD_ACT_RELU, ex2_relu)
MF_EX(3, FD_ACT_RELU, ex3_relu)
MF_EX(1, FD_ACT_HARDSWISH, ex1_hs)
MF_EX(2, FD_ACT_HARDSWISH, ex2_hs)
MF_EX(3, FD_ACT_HARDSWISH, ex3_hs)
MF_EX(1, FD_ACT_SILU, ex1_silu)
MF_EX(2, FD_ACT_SILU, ex2_silu)
MF_EX(3, FD_ACT_SILU, ex3_silu)

/* the tile function for nb blocks (1..MF_NB) and act */
static ex_tile_fn ex_tile(int nb, int act)
{
	static const ex_tile_fn t[3][MF_NB] = {{ex1_relu, ex2_relu, ex3_relu},
					       {ex1_hs, ex2_hs, ex3_hs},
					       {ex1_silu, ex2_silu, ex3_silu}};
	return t[act == FD_ACT_RELU ? 0 : act == FD_ACT_HARDSWISH ? 1 : 2][nb - 1];
}

/* Input rows h0 .. h1 - 1 of image n expanded into their ring rows (slot
 * hi mod d->slots, the interiors), weight group by weight group so each
 * group's weights serve every row */
MF_TARGET static void expand_rows(const struct mf *d, int64_t n, int h0, int h1, float *ring)
{
	const int nblk = d->C16 / 16;
	if (!d->we) { /* no expansion: x's rows copied in (padded channels stay zero) */
		for (int hi = h0; hi < h1; hi++) {
			const float *xr = d->x + ((n * d->H + hi) * (int64_t)d->W) * d->Cin;
			float *r = ring + (int64_t)(hi % d->slots) * d->rowf + (int64_t)d->p * d->C16;
			if (d->C == d->C16)
				memcpy(r, xr, (size_t)d->W * d->C * sizeof *r);
			else
				for (int px = 0; px < d->W; px++)
					memcpy(r + (int64_t)px * d->C16, xr + (int64_t)px * d->C, (size_t)d->C * sizeof *r);
		}
		return;
	}
	for (int cb = 0; cb < nblk; cb += MF_NB) {
		int nb = nblk - cb < MF_NB ? nblk - cb : MF_NB;
		ex_tile_fn f = ex_tile(nb, d->act);
		for (int hi = h0; hi < h1; hi++) {
			const float *xr = d->x + ((n * d->H + hi) * (int64_t)d->W) * d->Cin;
			float *r = ring + (int64_t)(hi % d->slots) * d->rowf;
			for (int px = 0; px < d->W; px += MF_P)
				f(d, xr, px, d->W - px < MF_P ? d->W - px : MF_P, cb, r);
		}
	}
}

/* One output row from the k ring rows rows[0..k) (input rows ho s - p ..):
 * o [Wo][C] = act(the sums: bias, then the taps in row-major order), the
 * output row itself (the padded channels masked off). K, S:
 * the kernel size and stride as constants (0: d->k, d->s at run time).
 * Per 16-channel block, MF_Q output columns at a time (the last block of a
 * row overlapping the one before it); with constant K and
 * S each input vector of a kernel row is loaded once for the MF_Q columns
 * ((MF_Q - 1) S + K loads instead of MF_Q K). */
MF_TARGET static inline __attribute__((always_inline)) void dw_row_b(const int act, const int K, const int S,
								     const struct mf *d, const float *const *rows,
								     float *o)
{
	const int k = K ? K : d->k, s = S ? S : d->s, C16 = d->C16, C = d->C, Wo = d->Wo;
	const int64_t ps = (int64_t)s * C16;
	for (int cb = 0; cb < C16; cb += 16) {
		const __m512 b = _mm512_loadu_ps(d->bd + cb);
		/* the last block of a channel count that is not a multiple of 16:
		 * its padded channels not stored */
		const __mmask16 mk = C - cb >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (C - cb)) - 1);
		int wo = 0;
		/* the last block of a row whose width is not a multiple of MF_Q
		 * ends at Wo, computing some columns again (the same values) */
		for (; Wo >= MF_Q && wo < Wo; wo += MF_Q) {
			if (wo + MF_Q > Wo)
				wo = Wo - MF_Q;
			__m512 a[MF_Q] = {b, b, b, b};
			const float *w = d->wd + cb;
			for (int i = 0; i < k; i++) {
				const float *r = rows[i] + (int64_t)wo * ps + cb;
				if (K && S) {
					__m512 in[(MF_Q - 1) * 2 + FD_MBFRONT_MAXK];
#pragma GCC unroll 16
					for (int t = 0; t < (MF_Q - 1) * S + K; t++)
						in[t] = _mm512_loadu_ps(r + (int64_t)t * C16);
#pragma GCC unroll 8
					for (int j = 0; j < K; j++, w += C16) {
						__m512 wv = _mm512_loadu_ps(w);
#pragma GCC unroll 4
						for (int q = 0; q < MF_Q; q++)
							a[q] = _mm512_fmadd_ps(in[q * S + j], wv, a[q]);
					}
				} else {
					for (int j = 0; j < k; j++, w += C16, r += C16) {
						__m512 wv = _mm512_loadu_ps(w);
#pragma GCC unroll 4
						for (int q = 0; q < MF_Q; q++)
							a[q] = _mm512_fmadd_ps(_mm512_loadu_ps(r + q * ps), wv, a[q]);
					}
				}
			}
			float *q = o + (int64_t)wo * C + cb;
#pragma GCC unroll 4
			for (int j = 0; j < MF_Q; j++)
				_mm512_mask_storeu_ps(q + (int64_t)j * C, mk, v_act(act, a[j]));
		}
		for (; wo < Wo; wo++) {
			__m512 a0 = b;
			const float *w = d->wd + cb;
			for (int i = 0; i < k; i++) {
				const float *r = rows[i] + (int64_t)wo * ps + cb;
				for (int j = 0; j < k; j++, w += C16, r += C16)
					a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r), _mm512_loadu_ps(w), a0);
			}
			_mm512_mask_storeu_ps(o + (int64_t)wo * C + cb, mk, v_act(act, a0));
		}
	}
}

typedef void (*dw_row_fn)(const struct mf *, const float *const *, float *);
#define MF_DW(ACT, K, S, NAME)                                                                               \
	MF_TARGET MF_NO_UBSAN __attribute__((noinline)) static void NAME(const struct mf *d,                    \
									  const float *const *rows, float *o)   \
	{                                                                                                    \
		dw_row_b(ACT, K, S, d, rows, o);                                                             \
	}
#define MF_DW_ACT(ACT, SUF)                                                                                  \
	MF_DW(ACT, 3, 1, dw31_##SUF)                                                                         \
	MF_DW(ACT, 3, 2, dw32_##SUF)                                                                         \
	MF_DW(ACT, 5, 1, dw51_##SUF)                                                                         \
	MF_DW(ACT, 5, 2, dw52_##SUF)                                                                         \
	MF_DW(ACT, 0, 0, dwkk_##SUF)
MF_DW_ACT(FD_ACT_RELU, relu)
MF_DW_ACT(FD_ACT_HARDSWISH, hs)
MF_DW_ACT(FD_ACT_SILU, silu)

/* the row function for d's kernel, stride and activation */
static dw_row_fn dw_row(const struct mf *d)
{
	static const dw_row_fn t[3][5] = {{dw31_relu, dw32_relu, dw51_relu, dw52_relu, dwkk_relu},
					  {dw31_hs, dw32_hs, dw51_hs, dw52_hs, dwkk_hs},
					  {dw31_silu, dw32_silu, dw51_silu, dw52_silu, dwkk_silu}};
	int a = d->act == FD_ACT_RELU ? 0 : d->act == FD_ACT_HARDSWISH ? 1 : 2;
	int kind = d->k == 3 ? d->s - 1 : d->k == 5 ? 1 + d->s : 4;
	return t[a][kind];
}

/* rs[c] = sum over wo of o[wo][c] (o [Wo][C], rs C16 long: the padded
 * channels' sums 0) in double, in column order */
MF_TARGET static void row_sums(const float *o, int Wo, int C, int C16, double *rs)
{
	for (int cb = 0; cb < C16; cb += 16) {
		const __mmask16 mk = C - cb >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (C - cb)) - 1);
		__m512d lo = _mm512_setzero_pd(), hi = lo;
		for (int wo = 0; wo < Wo; wo++) {
			__m512 v = _mm512_maskz_loadu_ps(mk, o + (int64_t)wo * C + cb);
			lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
			hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
		}
		_mm512_storeu_pd(rs + cb, lo);
		_mm512_storeu_pd(rs + cb + 8, hi);
	}
}

/* Task t: image t / bands, its band t % bands of output rows. ring:
 * d->slots rows */
MF_TARGET static void task(const struct mf *d, int64_t t, float *ring)
{
	const int64_t n = t / d->bands;
	const int b = (int)(t % d->bands), k = d->k;
	const int ho0 = (int)((int64_t)d->Ho * b / d->bands), ho1 = (int)((int64_t)d->Ho * (b + 1) / d->bands);
	const float *rows[FD_MBFRONT_MAXK];
	const dw_row_fn dw = dw_row(d);
	int next = -1; /* the next input row to expand (none yet) */
	for (int ho = ho0; ho < ho1; ho++) {
		int top = ho * d->s - d->p;
		if (next < top)
			next = top; /* rows above the window are never needed again */
		if (next < 0)
			next = 0;
		/* the rows the window needs that are not expanded yet (with the
		 * whole image in the ring: every row the band needs) */
		int last = d->slots >= d->H ? (ho1 - 1) * d->s - d->p + k : top + k;
		last = last < d->H ? last : d->H;
		if (next < last) {
			expand_rows(d, n, next, last, ring);
			next = last;
		}
		for (int i = 0; i < k; i++) {
			int hi = top + i;
			rows[i] = hi < 0 || hi >= d->H ? d->zero : ring + (int64_t)(hi % d->slots) * d->rowf;
		}
		float *yr = d->y + ((n * d->Ho + ho) * (int64_t)d->Wo) * d->C;
		dw(d, rows, yr);
		if (d->rs)
			row_sums(yr, d->Wo, d->C, d->C16, d->rs + (n * d->Ho + ho) * (int64_t)d->C16);
	}
}
#endif

/* (tile7.h) each group's floats written by one thread */
void fd_tile7_pack(const float *w, int64_t K, int64_t C, int64_t K16, int nt, float *o)
{
	const int64_t ng = (K16 / 16 + FD_T7_NB - 1) / FD_T7_NB;
	#pragma omp parallel for num_threads(nt) schedule(static) if (K * C >= 65536)
	for (int64_t g = 0; g < ng; g++) {
		int64_t nb = K16 / 16 - g * FD_T7_NB < FD_T7_NB ? K16 / 16 - g * FD_T7_NB : FD_T7_NB, o0 = g * 16 * FD_T7_NB;
		float *pg = o + o0 * C;
		for (int64_t i = 0; i < C; i++)
			for (int64_t j = 0; j < nb * 16; j++)
				pg[i * nb * 16 + j] = o0 + j < K ? w[(o0 + j) * C + i] : 0.0f;
	}
}

struct fd_tensor *fd_mbfront_infer(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *we,
				   struct fd_tensor *be, struct fd_tensor *wd, struct fd_tensor *bd, int stride,
				   int act, double *sums)
{
	if (!x || !wd || !bd || !we != !be)
		return !x || !wd || !bd ? NULL : fd_fail(c, "mbfront_infer: an expansion weight without its bias");
	struct fd_tensor *in[5] = {x, wd, bd, we, be};
	const int nin = we ? 5 : 3;
	for (int i = 0; i < nin; i++)
		if (in[i]->dev != FD_DEV_CPU)
			return fd_fail(c, "mbfront_infer: tensors must be on the cpu");
	if (fd_needs_grad(c, nin, in))
		return fd_fail(c, "mbfront_infer records no gradient: an input needs one");
	char b1[64], b2[64], b3[64];
	int k = wd->ndim == 4 ? (int)wd->shape[3] : 0;
	if (!fd_mbfront_serves(c, x, k, stride, act))
		return fd_fail(c, "mbfront_infer: not for this input, kernel %d, stride %d, %s or CPU (fp32 "
				  "channels last, odd k <= %d, stride 1 or 2, relu, hardswish or silu, AVX-512)",
			       k, stride, act >= 0 ? fd_act_name((enum fd_act)act) : "no activation",
			       FD_MBFRONT_MAXK);
	int64_t Cin = x->shape[1], C = we ? we->shape[0] : Cin;
	if ((we && (!(we->ndim == 4 || we->ndim == 2) || we->numel != C * Cin || we->shape[1] != Cin ||
		    be->numel != C)) ||
	    wd->ndim != 4 || wd->shape[0] != C || wd->shape[1] != 1 || wd->shape[2] != k || bd->numel != C ||
	    C > INT32_MAX / 64)
		return fd_fail(c, "mbfront_infer: weights %s and %s do not fit input %s",
			       we ? fd_tensor_shape_str(we, b1, sizeof b1) : "(none)",
			       fd_tensor_shape_str(wd, b2, sizeof b2), fd_tensor_shape_str(x, b3, sizeof b3));
#if MF_X86
	struct mf d = {.N = (int)x->shape[0], .H = (int)x->shape[2], .W = (int)x->shape[3], .Cin = (int)Cin,
		       .C = (int)C, .C16 = (int)((C + 15) / 16 * 16), .k = k, .s = stride, .p = (k - 1) / 2,
		       .act = act};
	d.Ho = (d.H + 2 * d.p - k) / stride + 1;
	d.Wo = (d.W + 2 * d.p - k) / stride + 1;
	d.rowf = (int64_t)(d.W + 2 * d.p) * d.C16;
	const int nt = c->threads < 1 ? 1 : c->threads;
	/* bands: enough tasks for the threads when the batch is small (each
	 * band expands the k - s rows it shares with the next again) */
	d.bands = d.N >= 2 * nt ? 1 : (2 * nt + d.N - 1) / d.N;
	if (d.bands > d.Ho)
		d.bands = d.Ho;
	int64_t ys[4] = {d.N, C, d.Ho, d.Wo};
	struct fd_tensor *y = fd_tensor_new(c, FD_DEV_CPU, 4, ys);
	if (!y)
		return NULL;
	y->layout = FD_NHWC;
	struct fd_arena_mark m = fd_arena_mark(&c->arena);
	d.slots = (int64_t)d.H * d.rowf * (int64_t)sizeof(float) <= MF_WHOLE_BYTES && d.H > k ? d.H : k;
	const int64_t ringf = (int64_t)d.slots * d.rowf + 16;
	float *wp = fd_ctx_alloc(c, FD_DEV_CPU, (Cin + k * k + 2) * (int64_t)d.C16);
	float *zero = fd_ctx_alloc(c, FD_DEV_CPU, d.rowf);
	float *ring = fd_ctx_alloc(c, FD_DEV_CPU, nt * ringf);
	double *rs = sums ? (double *)fd_ctx_alloc(c, FD_DEV_CPU, 2 * (int64_t)d.N * d.Ho * d.C16) : NULL;
	if (!wp || !zero || !ring || (sums && !rs)) {
		fd_arena_release(&c->arena, &m, NULL, 0);
		return NULL;
	}
	/* packed weights: we^T [Cin][C16], be, wd [k k][C16], bd, zero-padded */
	memset(wp, 0, (size_t)(Cin + k * k + 2) * d.C16 * sizeof *wp);
	float *pwe = wp, *pbe = pwe + Cin * d.C16, *pwd = pbe + d.C16, *pbd = pwd + (int64_t)k * k * d.C16;
	if (we)
		fd_tile7_pack(we->data, C, Cin, d.C16, nt, pwe);
	for (int64_t o = 0; o < C; o++) {
		for (int t = 0; t < k * k; t++)
			pwd[(int64_t)t * d.C16 + o] = wd->data[o * k * k + t];
		pbe[o] = be ? be->data[o] : 0, pbd[o] = bd->data[o];
	}
	memset(zero, 0, (size_t)d.rowf * sizeof *zero);
	d.x = x->data, d.we = we ? pwe : NULL, d.be = pbe, d.wd = pwd, d.bd = pbd, d.zero = zero, d.y = y->data, d.rs = rs;
	const int64_t tasks = (int64_t)d.N * d.bands;
	#pragma omp parallel num_threads(nt)
	{
		int th = omp_get_thread_num();
		float *r = ring + th * ringf;
		/* the ring rows' padding pixels stay zero: only interiors are written */
		memset(r, 0, (size_t)ringf * sizeof *r);
		#pragma omp for schedule(static)
		for (int64_t t = 0; t < tasks; t++)
			task(&d, t, r);
	}
	/* the channel sums: the rows' sums added in row order (the same bits
	 * however the rows were split into bands) */
	if (sums) {
		#pragma omp parallel for num_threads(nt) schedule(static)
		for (int64_t n = 0; n < d.N; n++)
			for (int64_t o = 0; o < C; o++) {
				double t = 0;
				for (int ho = 0; ho < d.Ho; ho++)
					t += rs[(n * d.Ho + ho) * d.C16 + o];
				sums[n * C + o] = t;
			}
	}
	fd_arena_release(&c->arena, &m, NULL, 0);
	c->macs += (we ? (uint64_t)d.N * d.H * d.W * (uint64_t)(C * Cin) : 0) + (uint64_t)y->numel * (uint64_t)(k * k);
	return y;
#else
	return fd_fail(c, "mbfront_infer: not built for this CPU");
#endif
}

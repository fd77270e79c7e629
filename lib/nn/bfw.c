/* bfw: fd's bf16 convolution backward-weights over channels-last x and dy
 * (see bfw.h; doc/nn-kernels.md "fd's bf16 backward-weights").
 *
 * dw[k][t] = sum over output pixels p of dy[p][k] * x(p, t), t a tap
 * (r, q, c). vdpbf16ps adds two bf16 products to each fp32 lane, so the
 * pixels go in pairs (p0, p1) = (ow, ow + 1) of one output row: x becomes
 * a pair image of 32-bit words (x(col), x(col + sw)), where pair j's tap
 * (r, q, c) word is a fixed offset from its row's start; per row, dy is
 * packed as [pair][k] words (dy(p0, k), dy(p1, k)); register tiles of taps
 * x 16-channel blocks then run over a group of rows' pairs: the dy words
 * of the tile's channel blocks loaded, each tap's word broadcast. Rows go in a fixed
 * number of chunks, each with its own double partial, folded in chunk
 * order. The kernel functions carry the target (AVX512-BF16); the OpenMP
 * bodies only call them. */
#include "nn/bfw.h"

#include <omp.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define IW_X86 1
#else
#define IW_X86 0
#endif

/* Output rows (n, oh) go in at most IW_CHUNKS chunks, whatever the thread
 * count; a chunk's partial is Tp x K doubles (ResNet's 7x7 stem: 150 x 64,
 * 77 KB; SimpleCNN's 128 -> 256 3x3: 1152 x 256, 2.4 MB), so there are
 * fewer where the partials would pass IW_PART_BYTES, but at least
 * IW_MIN_CHUNKS */
#define IW_CHUNKS 32
#define IW_MIN_CHUNKS 4
#define IW_PART_BYTES ((int64_t)24 << 20)
/* The most taps a tile of KB channel blocks holds: TT*KB accumulators, KB
 * dy words and a broadcast within 30 of the 32 registers (one more and GCC
 * spilled accumulators in the loop), and at most 8 (a general register per
 * tap holds its row of the pair image) */
#define IW_TT(KB) ((29 - (KB)) / (KB) < 8 ? (29 - (KB)) / (KB) : 8)
/* Pairs a tile runs over before its sums go to the partial: whole rows,
 * at least this many pairs (the fold into doubles costs about two tiles'
 * worth of instructions per tap and block) */
#define IW_GROUP_PAIRS 256

struct iw {
	const struct fd_conv2d_shape *s;
	int Ho, Wo, P;        /* output size; pairs per output row, ceil(Wo / 2) */
	int T, KB, TT, Tp;    /* taps kh*kw*C; 16-channel blocks K/16; taps per tile (<= IW_TT(KBt));
			       * T rounded up to TT */
	int KBt;              /* channel blocks per tile: KB, or 4 where KB is a larger multiple of 4 */
	int Hp, Wp;           /* the padded x: every tap of every pixel of every pair inside */
	int Wz;               /* columns of the pair image */
	int G;                /* rows packed together (their tiles run over G*P pairs) */
	int64_t rows, nch;    /* N*Ho, chunks */
	const float *dy;      /* fp32 dy, or */
	const uint16_t *dyb;  /* bf16 dy */
	uint32_t *z;          /* the pair image [N][Hp][Wz][C]: (x(col), x(col + sw)) of the padded
			       * bf16 x (zero outside x), so pair j's tap (r, q, c) word of output
			       * row (n, oh) is z[n][oh*sh + r][2*j*sw + q][c] */
	int32_t *off;         /* [Tp] tap t's word offset in z from its row's start: (r*Wz + q)*C + c
			       * (0 for the padding taps) */
	uint16_t *tmp;        /* per thread: one padded bf16 row of x, Wp*C values and 64 of slack */
	int64_t tmpstride;
	double *part;         /* nch x [Tp][K] */
	uint32_t *buf;        /* per thread: dy words [G*P][K] */
	int64_t bufstride;    /* words per thread */
};

/* What the kernel computes (bfw.h: fd_bfw_computes) */
static int shape_ok(const struct fd_conv2d_shape *s)
{
	return s->groups == 1 && s->dh == 1 && s->dw == 1 && !s->bias && s->C >= 1 && s->C <= FD_BFW_MAX_C &&
	       s->K % 16 == 0 && s->K >= 16 && s->K <= FD_BFW_MAX_K && (s->K <= 128 || s->K % 64 == 0) &&
	       s->xl == FD_NHWC && s->yl == FD_NHWC;
}

/* AVX512-BF16 without AMX: the kernel was measured against oneDNN's
 * AVX512-BF16 one (a Zen 4); with AMX (CPUID 7.0 EDX bit 22, AMX-BF16)
 * oneDNN's AMX kernels stay in charge, unmeasured against this */
static int cpu_ok(void)
{
#if IW_X86
	unsigned a, b, c, d;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1))
		return 0;
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512bf16");
#else
	return 0;
#endif
}

int fd_bfw_computes(const struct fd_conv2d_shape *s)
{
	return shape_ok(s) && cpu_ok();
}

int fd_bfw_serves(const struct fd_conv2d_shape *s)
{
	if (!fd_bfw_computes(s))
		return 0;
	if (s->C <= FD_BFW_IMG_C) /* image layers */
		return 1;
	/* Wider layers: the kernel computes them (t_nn_bfw checks), at 75-80% of
	 * the bf16 peak on 3x3 layers of 32-128 channels alone, level with
	 * oneDNN's jit_bf16 and matmul paths in the models measured (SimpleCNN
	 * bf16 training steps the same within the machine's noise, the peak 11
	 * MiB higher; doc/nn-kernels.md), so they stay oneDNN's */
	return 0;
}

#if IW_X86
#define IW_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
/* The register tile without UBSan's checks: clang -O1 with
 * -fsanitize=address,undefined -fno-sanitize-recover=undefined (make fuzz's
 * flags) took over 10 minutes on this file with them (one abort path per
 * index of the unrolled tiles), under 10 s without; its indices are the
 * constants of the unrolled loops and offsets checked by the callers, and
 * ASan still checks its loads */
#define IW_NO_UBSAN __attribute__((no_sanitize("undefined")))

/* Row i of image n's pair image: the padded bf16 row (zeros, x's row
 * i - ph at columns pw.., rounded by vcvtneps2bf16, fd_dnnl_to_bf16's
 * instruction, zeros) into tmp, then each value paired with the one sw
 * columns right of it (the row's last store masked: rows are written by
 * both threads) */
IW_TARGET static void z_row(const struct iw *d, const float *x, const uint16_t *xb, int64_t n, int i, uint16_t *tmp)
{
	const struct fd_conv2d_shape *s = d->s;
	const int C = s->C;
	const int64_t wpc = (int64_t)d->Wp * C, zc = (int64_t)d->Wz * C, ps = (int64_t)s->sw * C;
	int ih = i - s->ph;
	memset(tmp, 0, (size_t)(wpc + 64) * sizeof *tmp);
	/* the columns of x that land inside the padded row (pw may cut some off the right) */
	int wn = s->W < d->Wp - s->pw ? s->W : d->Wp - s->pw;
	if (ih >= 0 && ih < s->H && wn > 0) {
		int64_t len = (int64_t)wn * C, src = ((n * s->H + ih) * (int64_t)s->W) * C;
		uint16_t *o = tmp + (int64_t)s->pw * C;
		if (xb) {
			memcpy(o, xb + src, (size_t)len * sizeof *o);
		} else {
			const float *xr = x + src;
			for (int64_t j = 0; j < len; j += 16) {
				__mmask16 m = len - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (len - j)) - 1);
				__m256bh r = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, xr + j));
				_mm256_mask_storeu_epi16((void *)(o + j), m, (__m256i)r);
			}
		}
	}
	/* word e = (tmp[e], tmp[e + ps]): index e from a (0..31), 32 + e from b */
	__m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
				      37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
	__m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
	uint32_t *zr = d->z + ((n * d->Hp + i) * d->Wz) * C;
	for (int64_t e = 0; e < zc; e += 32) {
		__m512i a = _mm512_loadu_si512((const void *)(tmp + e)), b = _mm512_loadu_si512((const void *)(tmp + e + ps));
		int64_t left = zc - e;
		__mmask16 m0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
		__mmask16 m1 = left >= 32 ? (__mmask16)0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
		_mm512_mask_storeu_epi32(zr + e, m0, _mm512_permutex2var_epi16(a, lo, b));
		if (m1)
			_mm512_mask_storeu_epi32(zr + e + 16, m1, _mm512_permutex2var_epi16(a, hi, b));
	}
}

/* 16 bf16 of dy at pixel (row g, column ow; zeros past the row's end) */
IW_TARGET static inline __m256i dy16(const struct iw *d, int64_t row, int ow, int k)
{
	if (ow >= d->Wo)
		return _mm256_setzero_si256();
	int64_t o = (row * d->Wo + ow) * d->s->K + k;
	if (d->dyb)
		return _mm256_loadu_si256((const void *)(d->dyb + o));
	return (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(d->dy + o));
}

/* A byte range to prefetch, a slice of it per pair of a row */
struct iw_pf {
	const char *p;
	int64_t n, step;
};

/* Slice r of G of the next group's data (rows nr.. of the chunk, up to
 * r1): its dy (consecutive rows: one range) and the pair image's rows it
 * reads (one range), each cut into d->P steps. Without, the first loads
 * waited on memory (20% of the kernel's samples on SimpleCNN's stem): dy
 * streams from memory, and both threads wrote the pair image. */
static void iw_prefetch_plan(const struct iw *d, int64_t nr, int64_t r1, int r, struct iw_pf pf[2])
{
	const struct fd_conv2d_shape *s = d->s;
	memset(pf, 0, 2 * sizeof *pf);
	if (nr >= r1)
		return;
	int64_t last = nr + d->G - 1 < r1 ? nr + d->G - 1 : r1 - 1;
	const int esz = d->dyb ? 2 : 4;
	const char *dy0 = d->dyb ? (const char *)d->dyb : (const char *)d->dy;
	int64_t a = nr * d->Wo * s->K * esz, b = (last + 1) * d->Wo * s->K * esz;
	int64_t xa = ((nr / d->Ho) * d->Hp + (nr % d->Ho) * s->sh) * d->Wz * s->C * 4;
	int64_t xb = ((last / d->Ho) * d->Hp + (last % d->Ho) * s->sh + s->kh) * d->Wz * s->C * 4;
	int64_t ds = (b - a + d->G - 1) / d->G, xs = (xb - xa + d->G - 1) / d->G;
	pf[0].p = dy0 + a + ds * r, pf[0].n = ds < b - a - ds * r ? ds : b - a - ds * r;
	pf[1].p = (const char *)d->z + xa + xs * r, pf[1].n = xs < xb - xa - xs * r ? xs : xb - xa - xs * r;
	for (int i = 0; i < 2; i++)
		pf[i].step = pf[i].n > 0 ? (pf[i].n + d->P - 1) / d->P : 0;
}

/* One output row's dy words into dq [P][K], prefetching pf's slices. */
IW_TARGET static void pack_row(const struct iw *d, int64_t row, const struct iw_pf pf[2], uint32_t *dq)
{
	const int K = d->s->K;
	__m512i dyi = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
				       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
	for (int j = 0; j < d->P; j++) {
		uint32_t *dw = dq + (int64_t)j * K;
		for (int f = 0; f < 2; f++)
			for (int64_t o = j * pf[f].step; o < (j + 1) * pf[f].step && o < pf[f].n; o += 64)
				_mm_prefetch(pf[f].p + o, _MM_HINT_T0);
		for (int k = 0; k < K; k += 16) {
			__m512i ab = _mm512_inserti64x4(_mm512_castsi256_si512(dy16(d, row, 2 * j, k)),
							dy16(d, row, 2 * j + 1, k), 1);
			_mm512_storeu_si512((void *)(dw + k), _mm512_permutexvar_epi16(dyi, ab));
		}
	}
}

/* The tile of taps t0.. (TT of them) x channel blocks kb0.. (KB of them)
 * over the g rows from row0 (P pairs each: their dy words in dq), added
 * into the partial p ([Tp][K] doubles). KB and TT are constants where it
 * is inlined, so acc stays in registers (TT*KB + KB + 1 of the 32: IW_TT),
 * each tap's pair image row in a general register. */
IW_NO_UBSAN __attribute__((always_inline)) IW_TARGET static inline void tile(int KB, int TT, const struct iw *d, int g,
								   int64_t row0, const uint32_t *dq, int t0, int kb0,
								   double *p)
{
	const struct fd_conv2d_shape *s = d->s;
	const int K = s->K, P = d->P;
	const int64_t js = (int64_t)2 * s->sw * s->C, zrow = (int64_t)d->Wz * s->C;
	__m512 acc[28];
#pragma GCC unroll 28
	for (int i = 0; i < KB * TT; i++)
		acc[i] = _mm512_setzero_ps();
	for (int rr = 0; rr < g; rr++) {
		const int64_t row = row0 + rr, n = row / d->Ho, oh = row % d->Ho;
		const uint32_t *zr = d->z + (n * d->Hp + oh * s->sh) * zrow;
		const uint32_t *zp[8];
#pragma GCC unroll 8
		for (int t = 0; t < TT; t++)
			zp[t] = zr + d->off[t0 + t];
		const uint32_t *dr = dq + (int64_t)rr * P * K + 16 * kb0;
		for (int j = 0; j < P; j++) {
			__m512bh a[8];
#pragma GCC unroll 8
			for (int b = 0; b < KB; b++)
				a[b] = (__m512bh)_mm512_loadu_si512((const void *)(dr + (int64_t)j * K + 16 * b));
#pragma GCC unroll 28
			for (int t = 0; t < TT; t++) {
				__m512bh w = (__m512bh)_mm512_set1_epi32((int)zp[t][j * js]);
#pragma GCC unroll 8
				for (int b = 0; b < KB; b++)
					acc[t * KB + b] = _mm512_dpbf16_ps(acc[t * KB + b], a[b], w);
			}
		}
	}
#pragma GCC unroll 28
	for (int t = 0; t < TT; t++)
#pragma GCC unroll 8
		for (int b = 0; b < KB; b++) {
			double *q = p + (int64_t)(t0 + t) * K + 16 * (kb0 + b);
			__m512d l = _mm512_cvtps_pd(_mm512_castps512_ps256(acc[t * KB + b]));
			__m512d h = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
				_mm512_castps_pd(acc[t * KB + b]), 1)));
			_mm512_storeu_pd(q, _mm512_add_pd(_mm512_loadu_pd(q), l));
			_mm512_storeu_pd(q + 8, _mm512_add_pd(_mm512_loadu_pd(q + 8), h));
		}
}

/* A group's tiles of KBT channel blocks and TTT taps, t-major (the tiles of
 * one tap window read the same pair image words, in L1, each its channel
 * blocks' dy words, streamed from L2): one function per tile shape, kept
 * out of line so no function holds more than one (clang -O1 with the
 * sanitizers took over 15 minutes on the file with all of them inlined
 * into iw_chunk) */
#define IW_DEF(KBT, TTT)                                                                   \
	__attribute__((noinline)) IW_TARGET static void tiles_##KBT##_##TTT(                 \
		const struct iw *d, int g, int64_t row, const uint32_t *dq, double *p)       \
	{                                                                                   \
		for (int t0 = 0; t0 < d->Tp; t0 += (TTT))                                   \
			for (int kb0 = 0; kb0 < d->KB; kb0 += (KBT))                        \
				tile((KBT), (TTT), d, g, row, dq, t0, kb0, p);              \
	}
IW_DEF(1, 8) IW_DEF(1, 7) IW_DEF(1, 6) IW_DEF(1, 5) IW_DEF(1, 4)
IW_DEF(2, 8) IW_DEF(2, 7) IW_DEF(2, 6) IW_DEF(2, 5) IW_DEF(2, 4)
IW_DEF(3, 8) IW_DEF(3, 7) IW_DEF(3, 6) IW_DEF(3, 5) IW_DEF(3, 4)
IW_DEF(4, 6) IW_DEF(4, 5) IW_DEF(4, 4) IW_DEF(4, 3)
IW_DEF(5, 4) IW_DEF(5, 3) IW_DEF(5, 2)
IW_DEF(6, 3) IW_DEF(6, 2)
IW_DEF(7, 3) IW_DEF(7, 2)
IW_DEF(8, 2) IW_DEF(8, 1)

#define IW_T(KBT, TTT)                                                                     \
	case TTT:                                                                           \
		tiles_##KBT##_##TTT(d, g, row, dq, p);                                      \
		break;

/* Chunk i's rows into its partial (zeroed first), on buffer buf. */
IW_TARGET static void iw_chunk(const struct iw *d, int64_t i, uint32_t *buf)
{
	const int K = d->s->K;
	double *p = d->part + i * (int64_t)d->Tp * K;
	uint32_t *dq = buf;
	int64_t r0 = i * d->rows / d->nch, r1 = (i + 1) * d->rows / d->nch;
	memset(p, 0, (size_t)d->Tp * K * sizeof *p);
	for (int64_t row = r0; row < r1; row += d->G) {
		int g = r1 - row < d->G ? (int)(r1 - row) : d->G;
		for (int r = 0; r < g; r++) {
			struct iw_pf pf[2];
			iw_prefetch_plan(d, row + d->G, r1, r, pf);
			pack_row(d, row + r, pf, dq + (int64_t)r * d->P * K);
		}
		switch (d->KBt) { /* tile widths IW_TT(KBt) down to half of it (fd_bfw_bwd_weights_cpu) */
		case 1:
			switch (d->TT) {
				IW_T(1, 8) IW_T(1, 7) IW_T(1, 6) IW_T(1, 5) IW_T(1, 4)
			}
			break;
		case 2:
			switch (d->TT) {
				IW_T(2, 8) IW_T(2, 7) IW_T(2, 6) IW_T(2, 5) IW_T(2, 4)
			}
			break;
		case 3:
			switch (d->TT) {
				IW_T(3, 8) IW_T(3, 7) IW_T(3, 6) IW_T(3, 5) IW_T(3, 4)
			}
			break;
		case 4:
			switch (d->TT) {
				IW_T(4, 6) IW_T(4, 5) IW_T(4, 4) IW_T(4, 3)
			}
			break;
		case 5:
			switch (d->TT) {
				IW_T(5, 4) IW_T(5, 3) IW_T(5, 2)
			}
			break;
		case 6:
			switch (d->TT) {
				IW_T(6, 3) IW_T(6, 2)
			}
			break;
		case 7:
			switch (d->TT) {
				IW_T(7, 3) IW_T(7, 2)
			}
			break;
		case 8:
			switch (d->TT) {
				IW_T(8, 2) IW_T(8, 1)
			}
			break;
		}
	}
}
#endif

int fd_bfw_bwd_weights_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x,
			    const uint16_t *xb, const float *dy, const uint16_t *dyb, float *dw)
{
	struct iw d = {.s = s, .dy = dy, .dyb = dyb};
	struct fd_err e = {{0}};
	if (!shape_ok(s) || !cpu_ok()) {
		fd_fail(c, "fd's bf16 backward-weights: C=%d K=%d %dx%d groups=%d dilation %d,%d%s, layouts %d,%d: %s",
			s->C, s->K, s->kh, s->kw, s->groups, s->dh, s->dw, s->bias ? ", bias" : "", s->xl, s->yl,
			cpu_ok() ? "not a shape it takes" : "this CPU has no AVX512-BF16 or has AMX");
		return -1;
	}
	if (fd_conv2d_out_size(s, &d.Ho, &d.Wo, &e) < 0) {
		fd_fail(c, "fd's bf16 backward-weights: %s", e.msg);
		return -1;
	}
	if (!dw)
		return 0;
#if IW_X86
	d.P = (d.Wo + 1) / 2;
	d.T = s->kh * s->kw * s->C;
	d.KB = s->K / 16;
	d.KBt = d.KB > 4 && d.KB % 4 == 0 ? 4 : d.KB; /* shape_ok: KB <= 8 otherwise */
	/* the tile width with the fewest instructions a pair: taps padded up to
	 * whole tiles, each tile's KBt dy loads and tt broadcasts at half a
	 * product's cost */
	double best = 0;
	for (int tt = (IW_TT(d.KBt) + 1) / 2; tt <= IW_TT(d.KBt); tt++) {
		double cost = (double)((d.T + tt - 1) / tt) * (tt * d.KBt + 0.5 * (d.KBt + tt));
		if (best == 0 || cost <= best)
			best = cost, d.TT = tt;
	}
	d.Tp = (d.T + d.TT - 1) / d.TT * d.TT;
	d.Hp = (d.Ho - 1) * s->sh + s->kh;
	d.Wp = (2 * d.P - 1) * s->sw + s->kw;
	d.Wz = (2 * d.P - 2) * s->sw + s->kw;
	d.rows = (int64_t)s->N * d.Ho;
	int64_t pb = (int64_t)d.Tp * s->K * (int64_t)sizeof(double), nc = IW_PART_BYTES / pb;
	nc = nc < IW_MIN_CHUNKS ? IW_MIN_CHUNKS : nc > IW_CHUNKS ? IW_CHUNKS : nc;
	d.nch = d.rows < nc ? d.rows : nc;
	d.G = (IW_GROUP_PAIRS + d.P - 1) / d.P;
	d.bufstride = ((int64_t)d.G * d.P * s->K + 15) / 16 * 16;
	d.tmpstride = ((int64_t)d.Wp * s->C + 64 + 31) / 32 * 32; /* bf16 values */
	const int nt = c->threads < 1 ? 1 : c->threads;
	int64_t nz = (int64_t)s->N * d.Hp * d.Wz * s->C;
	struct fd_arena_mark m = fd_arena_mark(&c->arena);
	float *a = fd_ctx_alloc(c, FD_DEV_CPU, nz), *b = fd_ctx_alloc(c, FD_DEV_CPU, 2 * d.nch * d.Tp * s->K),
	      *f = fd_ctx_alloc(c, FD_DEV_CPU, nt * d.bufstride), *o = fd_ctx_alloc(c, FD_DEV_CPU, d.Tp),
	      *tm = fd_ctx_alloc(c, FD_DEV_CPU, nt * d.tmpstride / 2);
	if (!a || !b || !f || !o || !tm) {
		fd_arena_release(&c->arena, &m, NULL, 0);
		return -1;
	}
	d.z = (uint32_t *)a, d.part = (double *)b, d.buf = (uint32_t *)f, d.off = (int32_t *)o;
	d.tmp = (uint16_t *)tm;
	for (int t = 0; t < d.Tp; t++) { /* t = (r*kw + q)*C + c */
		int c = t % s->C, rq = t / s->C;
		d.off[t] = t < d.T ? (int32_t)(((int64_t)(rq / s->kw) * d.Wz + rq % s->kw) * s->C + c) : 0;
	}
	const int64_t prow = (int64_t)s->N * d.Hp;
	#pragma omp parallel num_threads(nt)
	{
		uint16_t *tmp = d.tmp + (int64_t)omp_get_thread_num() * d.tmpstride;
		#pragma omp for schedule(static)
		for (int64_t i = 0; i < prow; i++)
			z_row(&d, x, xb, i / d.Hp, (int)(i % d.Hp), tmp);
		uint32_t *buf = d.buf + (int64_t)omp_get_thread_num() * d.bufstride;
		#pragma omp for schedule(static)
		for (int64_t i = 0; i < d.nch; i++)
			iw_chunk(&d, i, buf);
	}
	/* fold the partials into chunk 0's in chunk order (each sum the same as
	 * from 0: 0 + p0 is p0), a tap's row at a time; then tap t = (r*kw +
	 * q)*C + ch -> dw[k][ch][r][q] */
	const int K = s->K, C = s->C, kk = s->kh * s->kw;
	#pragma omp parallel for num_threads(nt) schedule(static)
	for (int t = 0; t < d.T; t++) {
		double *v = d.part + (int64_t)t * K;
		for (int64_t i = 1; i < d.nch; i++) {
			const double *q = d.part + (i * d.Tp + t) * K;
			for (int k = 0; k < K; k++)
				v[k] += q[k];
		}
		for (int k = 0; k < K; k++)
			dw[((int64_t)k * C + t % C) * kk + t / C] += (float)v[k];
	}
	fd_arena_release(&c->arena, &m, NULL, 0);
	return 0;
#else
	(void)x, (void)xb;
	fd_fail(c, "fd's bf16 backward-weights: not built for this CPU");
	return -1;
#endif
}

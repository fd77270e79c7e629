/* wino: Winograd F(4x4, 3x3) over NHWC (see wino.h). Per block of tiles
 * (each thread its own): the input transform B^T d B of every 6x6 patch
 * into U[36][tiles][C]; per block of 16 output channels, 36 matrix
 * products U[p] (tiles x C) by V[p] (C x 16) into M[36][tiles][16] by a
 * register-blocked 6x16 kernel (AVX2 + FMA where the CPU has them); then
 * the output transform A^T m A into y. The weights' transform G g G^T is
 * made once per call into V (doc/nn-kernels.md "fd's own Winograd"). */
#include "nn/wino.h"
#include "core/fd_vec.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "nn/fma6x16.h"
#endif

#define WP 36 /* transformed positions: 6 x 6 */
#define KB 16 /* output channels per block (two 8-float vectors) */
#define MR 6  /* tiles per register block of the product */

/* One thread's transformed tiles: about this many bytes (U of a block, in
 * L2 or L3), so the weights V are read once per block of many tiles. */
#define WINO_U_BYTES (1u << 20)
/* most tiles per block */
#define WINO_TB_MAX 240

/* Eight floats as one value (GCC/Clang vector extension; see dwconv.c):
 * lane-wise + - * with no contraction, the same bits in every clone. */
typedef float wv8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef int wi8 __attribute__((vector_size(32), aligned(4), may_alias));
#define LD8(p) (*(const wv8 *)(p))
#define ST8(p, v) (*(wv8 *)(p) = (v))

/* One convolution's geometry as the kernels see it: Ci channels in, Co out
 * (for backward-data Ci = K, Co = C), input H x W, output Ho x Wo, padding
 * ph, pw; tiles th x tw per image, T in all. */
struct wg {
	int N, H, W, Ci, Co, ph, pw, Ho, Wo, th, tw, Kp, TB;
	int64_t T;
	const float *x, *V, *bias; /* bias: Kp floats (zeros without one) */
	const float *dy;           /* backward-weights: dy [N, Ho, Wo, Co] */
	float *y;
	int relu, add;
};

int fd_wino_serves(const struct fd_conv2d_shape *s)
{
	return s->groups == 1 && s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 && s->dh == 1 &&
	       s->dw == 1 && s->ph <= 2 && s->pw <= 2 && s->xl == FD_NHWC && s->yl == FD_NHWC &&
	       s->C >= FD_CONV2D_WINO_MIN_C && s->K >= FD_CONV2D_WINO_MIN_C;
}

/* ---- transforms (Lavin and Gray's F(4x4, 3x3) matrices) ---- */

/* t = B^T d for six values d[0..6) (vectors or floats) */
#define WINO_BT(T, d, t)                                                        \
	do {                                                                    \
		T a_ = d[4] - 4.0f * d[2], b_ = d[3] - 4.0f * d[1];             \
		T c_ = d[4] - d[2], e_ = 2.0f * (d[3] - d[1]);                  \
		t[0] = (4.0f * d[0] - 5.0f * d[2]) + d[4];                      \
		t[1] = a_ + b_;                                                 \
		t[2] = a_ - b_;                                                 \
		t[3] = c_ + e_;                                                 \
		t[4] = c_ - e_;                                                 \
		t[5] = (4.0f * d[1] - 5.0f * d[3]) + d[5];                      \
	} while (0)

/* o = A^T m for six values m[0..6) (four out) */
#define WINO_AT(T, m, o)                                                        \
	do {                                                                    \
		T p1_ = m[1] + m[2], m1_ = m[1] - m[2];                         \
		T p3_ = m[3] + m[4], m3_ = m[3] - m[4];                         \
		o[0] = (m[0] + p1_) + p3_;                                      \
		o[1] = m1_ + 2.0f * m3_;                                        \
		o[2] = p1_ + 4.0f * p3_;                                        \
		o[3] = (m1_ + 8.0f * m3_) + m[5];                               \
	} while (0)

/* u = G g for three values g[0..3) (six out), G's rows (1/4, 0, 0),
 * -(1, 1, 1)/6, -(1, -1, 1)/6, (1/24, 1/12, 1/6), (1/24, -1/12, 1/6),
 * (0, 0, 1) */
#define WINO_G(T, g, u)                                                         \
	do {                                                                    \
		T s_ = g[0] + g[2], p_ = g[0] * (1.0 / 24) + g[2] * (1.0 / 6);  \
		T q_ = g[1] * (1.0 / 12);                                       \
		u[0] = g[0] * 0.25;                                             \
		u[1] = (s_ + g[1]) * (-1.0 / 6);                                \
		u[2] = (s_ - g[1]) * (-1.0 / 6);                                \
		u[3] = p_ + q_;                                                 \
		u[4] = p_ - q_;                                                 \
		u[5] = g[2];                                                    \
	} while (0)

/* four doubles (the weights' transform: G g G^T in double, rounded once) */
typedef double wd4 __attribute__((vector_size(32)));
/* four floats (a wd4 rounded: __builtin_convertvector, round to nearest) */
typedef float wf4 __attribute__((vector_size(16)));

/* V[Kp/16][36][Ci][16] = G g G^T of each (out, in) kernel; g = w[o][i]
 * (w [Co, Ci, 3, 3]) or, flip (backward-data, w [Ci, Co, 3, 3]), w[i][o]
 * rotated by 180 degrees; zero for o >= Co. Parallel over (block of 16
 * outputs, input channel), four outputs per vector; each writes 36 rows of
 * 16 floats whole (the rows lie Ci * 64 bytes apart: scattered single
 * floats thrashed L1's sets at 4 KiB strides). */
FD_VEC_CLONES
static void pack_one(const struct wg *g, const float *w, int flip, float *V, int kb, int i)
{
	const int Ci = g->Ci, Co = g->Co;
	float u[WP][KB];
	for (int l4 = 0; l4 < KB; l4 += 4) {
		wd4 k[3][3], t[6][3], r[6];
		for (int r0 = 0; r0 < 3; r0++)
			for (int q = 0; q < 3; q++)
				for (int l = 0; l < 4; l++) {
					int o = kb * KB + l4 + l;
					k[r0][q][l] = o >= Co ? 0
						      : flip ? w[(((int64_t)i * Co + o) * 3 + 2 - r0) * 3 + 2 - q]
							     : w[(((int64_t)o * Ci + i) * 3 + r0) * 3 + q];
				}
		for (int q = 0; q < 3; q++) {
			wd4 c3[3] = {k[0][q], k[1][q], k[2][q]}, c6[6];
			WINO_G(wd4, c3, c6);
			for (int a = 0; a < 6; a++)
				t[a][q] = c6[a];
		}
		for (int a = 0; a < 6; a++) {
			WINO_G(wd4, t[a], r);
			for (int bb = 0; bb < 6; bb++) {
				wf4 f = __builtin_convertvector(r[bb], wf4);
				memcpy(&u[a * 6 + bb][l4], &f, sizeof f);
			}
		}
	}
	float *v = V + (int64_t)kb * WP * Ci * KB + (int64_t)i * KB;
	for (int p = 0; p < WP; p++)
		memcpy(v + (int64_t)p * Ci * KB, u[p], sizeof u[p]);
}

static void pack_weights(const struct wg *g, const float *w, int flip, float *V, int threads)
{
	const int Ci = g->Ci, nkb = g->Kp / KB;
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int64_t ki = 0; ki < (int64_t)nkb * Ci; ki++)
		pack_one(g, w, flip, V, (int)(ki / Ci), (int)(ki % Ci));
}

/* the 6x6 patch's offsets into x (in floats) of tile t, -1 outside the image */
static void patch(const struct wg *g, int64_t t, int64_t off[WP])
{
	int64_t per = (int64_t)g->th * g->tw;
	int n = (int)(t / per), r = (int)(t % per);
	int ih0 = (r / g->tw) * 4 - g->ph, iw0 = (r % g->tw) * 4 - g->pw;
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < 6; j++) {
			int ih = ih0 + i, iw = iw0 + j;
			off[i * 6 + j] = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W
						 ? (((int64_t)n * g->H + ih) * g->W + iw) * g->Ci
						 : -1;
		}
}

/* the column pass of B^T d B: rows r (B^T applied along each) into
 * U[p][tt][c..c+8), p = a * 6 + j */
__attribute__((always_inline)) static inline void in_cols_v8(wv8 r[6][6], float *u, int64_t us)
{
	for (int j = 0; j < 6; j++) {
		wv8 d[6] = {r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j]}, o[6];
		WINO_BT(wv8, d, o);
		for (int a = 0; a < 6; a++)
			ST8(u + (a * 6 + j) * us, o[a]);
	}
}

/* U[p][tt][c..c+8) for one tile: B^T d B of 8 channels */
__attribute__((always_inline)) static inline void in_v8(const float *x, const int64_t *off, float *u, int64_t us)
{
	wv8 r[6][6];
	const wv8 z = {0};
	for (int i = 0; i < 6; i++) {
		wv8 d[6];
		for (int j = 0; j < 6; j++)
			d[j] = off[i * 6 + j] >= 0 ? LD8(x + off[i * 6 + j]) : z;
		WINO_BT(wv8, d, r[i]);
	}
	in_cols_v8(r, u, us);
}

/* in_v8 for a patch wholly inside the image: element (i, j) at
 * x[i * rs + j * Ci], no test per element (the same arithmetic, the same bits) */
__attribute__((always_inline)) static inline void in_v8_in(const float *x, int64_t rs, int Ci, float *u, int64_t us)
{
	wv8 r[6][6];
	for (int i = 0; i < 6; i++) {
		const float *xr = x + i * rs;
		wv8 d[6] = {LD8(xr), LD8(xr + Ci), LD8(xr + 2 * Ci), LD8(xr + 3 * Ci), LD8(xr + 4 * Ci), LD8(xr + 5 * Ci)};
		WINO_BT(wv8, d, r[i]);
	}
	in_cols_v8(r, u, us);
}

/* the same for one channel */
__attribute__((always_inline)) static inline void in_f1(const float *x, const int64_t *off, float *u, int64_t us)
{
	float r[6][6];
	for (int i = 0; i < 6; i++) {
		float d[6];
		for (int j = 0; j < 6; j++)
			d[j] = off[i * 6 + j] >= 0 ? x[off[i * 6 + j]] : 0.0f;
		WINO_BT(float, d, r[i]);
	}
	for (int j = 0; j < 6; j++) {
		float d[6] = {r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j]}, o[6];
		WINO_BT(float, d, o);
		for (int a = 0; a < 6; a++)
			u[(a * 6 + j) * us] = o[a];
	}
}

/* Tiles t0 + [tt0, tt1) into rows [tt0, tt1) of U[36][TB][Ci]. */
FD_VEC_CLONES
static void in_tiles(const struct wg *g, int64_t t0, int tt0, int tt1, float *U)
{
	const int Ci = g->Ci;
	const int64_t us = (int64_t)g->TB * Ci;
	int64_t off[WP];
	for (int tt = tt0; tt < tt1; tt++) {
		patch(g, t0 + tt, off);
		float *u = U + (int64_t)tt * Ci;
		int c = 0;
		if (off[0] >= 0 && off[WP - 1] >= 0) /* corners inside: the whole patch is */
			for (; c + 8 <= Ci; c += 8)
				in_v8_in(g->x + off[0] + c, (int64_t)g->W * Ci, Ci, u + c, us);
		for (; c + 8 <= Ci; c += 8)
			in_v8(g->x + c, off, u + c, us);
		for (; c < Ci; c++)
			in_f1(g->x + c, off, u + c, us);
	}
}

/* rows nt of U up to a multiple of MR zeroed (the product reads them) */
static void pad_rows(const struct wg *g, int nt, float *U)
{
	const int Ci = g->Ci;
	const int64_t us = (int64_t)g->TB * Ci;
	int pad = (nt + MR - 1) / MR * MR;
	if (pad > nt)
		for (int p = 0; p < WP; p++)
			memset(U + p * us + (int64_t)nt * Ci, 0, (size_t)(pad - nt) * Ci * sizeof *U);
}

/* y of tiles [t0, t0 + nt), channels [kb*16, kb*16 + 16) of Co, from M[36][TB][16] */
FD_VEC_CLONES
static void out_block(const struct wg *g, int64_t t0, int nt, int kb, const float *M)
{
	const int Co = g->Co, k0 = kb * KB, kn = Co - k0 < KB ? Co - k0 : KB;
	const int64_t ms = (int64_t)g->TB * KB, per = (int64_t)g->th * g->tw;
	const wv8 z = {0};
	for (int tt = 0; tt < nt; tt++) {
		int64_t t = t0 + tt;
		int n = (int)(t / per), r = (int)(t % per);
		int oh0 = (r / g->tw) * 4, ow0 = (r % g->tw) * 4;
		int nh = g->Ho - oh0 < 4 ? g->Ho - oh0 : 4, nw = g->Wo - ow0 < 4 ? g->Wo - ow0 : 4;
		for (int h = 0; h * 8 < kn; h++) {
			const float *m0 = M + (int64_t)tt * KB + h * 8;
			wv8 r4[6][4], bias = LD8(g->bias + k0 + h * 8);
			for (int i = 0; i < 6; i++) {
				wv8 m[6];
				for (int j = 0; j < 6; j++)
					m[j] = LD8(m0 + (i * 6 + j) * ms);
				WINO_AT(wv8, m, r4[i]);
			}
			int lanes = kn - h * 8 < 8 ? kn - h * 8 : 8;
			for (int j = 0; j < nw; j++) {
				wv8 d[6] = {r4[0][j], r4[1][j], r4[2][j], r4[3][j], r4[4][j], r4[5][j]}, o[4];
				WINO_AT(wv8, d, o);
				for (int a = 0; a < nh; a++) {
					float *yp = g->y + (((int64_t)n * g->Ho + oh0 + a) * g->Wo + ow0 + j) * Co + k0 + h * 8;
					wv8 v = o[a] + bias;
					if (lanes == 8) {
						if (g->add)
							v = LD8(yp) + v;
						if (g->relu) /* x < 0 -> 0; NaN stays */
							v = (wv8)((wi8)v & ~(wi8)(v < z));
						ST8(yp, v);
					} else {
						for (int l = 0; l < lanes; l++) {
							float f = v[l];
							if (g->add)
								f = yp[l] + f;
							if (g->relu && f < 0)
								f = 0;
							yp[l] = f;
						}
					}
				}
			}
		}
	}
}

/* ---- the product: m[MR][16] = sum over n steps of u[r] v ----
 * Row r's value at step j is u[r * rs + j * cs], v's 16 values at step j
 * are v[j * vs ...]: the forward's U rows (rs = C, cs = 1) by V (C x 16),
 * or backward-weights' U columns (rs = 1, cs = C) by the transformed dy
 * (tiles x 16). Sums run over the steps in order, in registers. */

typedef void (*wino_mk_fn)(const float *u, int64_t rs, int64_t cs, const float *v, int64_t vs, int n, float *m);

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static void mk_fma(const float *u, int64_t rs, int64_t cs, const float *v,
							 int64_t vs, int n, float *m)
{
	FMA6X16_ZERO();
	const float *u0 = u, *u1 = u + rs, *u2 = u + 2 * rs, *u3 = u + 3 * rs, *u4 = u + 4 * rs, *u5 = u + 5 * rs;
	for (int64_t j = 0, o = 0; j < n; j++, v += vs, o += cs)
		FMA6X16_STEP(v, u0 + o, u1 + o, u2 + o, u3 + o, u4 + o, u5 + o);
	FMA6X16_STORE(m);
}
#endif

/* CPUs without AVX2 and FMA: separate multiply and add */
static void mk_plain(const float *u, int64_t rs, int64_t cs, const float *v, int64_t vs, int n, float *m)
{
	wv8 acc[MR][2];
	memset(acc, 0, sizeof acc);
	for (int64_t j = 0; j < n; j++, v += vs) {
		wv8 b0 = LD8(v), b1 = LD8(v + 8);
		for (int r = 0; r < MR; r++) {
			float a = u[r * rs + j * cs];
			acc[r][0] += a * b0;
			acc[r][1] += a * b1;
		}
	}
	memcpy(m, acc, sizeof acc);
}

static wino_mk_fn mk_pick(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return mk_fma;
#endif
	return mk_plain;
}

/* ---- driver ---- */

/* The product and output transform of block-of-16 kb for tiles t0 + [0, nt)
 * whose transformed input is in U; M: this thread's [36][TB][16]. */
static void kb_block(const struct wg *g, wino_mk_fn mk, const float *U, float *M, int64_t t0, int nt, int kb)
{
	const int Ci = g->Ci, rows = (nt + MR - 1) / MR * MR;
	for (int p = 0; p < WP; p++) {
		const float *up = U + (int64_t)p * g->TB * Ci;
		const float *vp = g->V + ((int64_t)kb * WP + p) * Ci * KB;
		float *mp = M + (int64_t)p * g->TB * KB;
		for (int r = 0; r < rows; r += MR)
			mk(up + (int64_t)r * Ci, Ci, 1, vp, KB, Ci, mp + (int64_t)r * KB);
	}
	out_block(g, t0, nt, kb, M);
}

/* Two schedules, the same sums (each output's 36 products over C in
 * channel order, whichever thread or block computes it):
 * - private: each thread its own blocks of tiles (U of about
 *   WINO_U_BYTES), all output channels; V, read once per block, is small
 *   enough (WINO_V_PRIVATE) to stay in cache. ResNet's 64 and 128 channels.
 * - shared: V is large (256 and 512 channels: 9 and 38 MB), so reading it
 *   once per thread's block would stream it from memory many times; the
 *   threads transform one big block of tiles together (U up to
 *   WINO_U_SHARED), then split the output channels, each block of 16
 *   reading its part of V once per block. */
#define WINO_V_PRIVATE (4u << 20)
#define WINO_U_SHARED (16u << 20)

static int run(struct fd_ctx *c, struct wg *g, const float *w, int flip, const float *b)
{
	const int Ci = g->Ci, Kp = g->Kp, nkb = Kp / KB, threads = c->threads > 0 ? c->threads : 1;
	g->th = (g->Ho + 3) / 4, g->tw = (g->Wo + 3) / 4;
	g->T = (int64_t)g->N * g->th * g->tw;
	int64_t vbytes = (int64_t)WP * Ci * Kp * sizeof(float), tb;
	int shared = threads > 1 && vbytes > WINO_V_PRIVATE;
	if (shared) {
		tb = WINO_U_SHARED / ((int64_t)WP * Ci * sizeof(float));
		tb = tb < MR ? MR : tb > g->T ? g->T : tb;
	} else { /* U of about WINO_U_BYTES, at least one block per thread */
		tb = WINO_U_BYTES / ((int64_t)WP * Ci * sizeof(float));
		tb = tb < MR ? MR : tb > WINO_TB_MAX ? WINO_TB_MAX : tb;
		int64_t per_thread = (g->T + threads - 1) / threads;
		if (tb > per_thread)
			tb = per_thread;
	}
	g->TB = (int)((tb + MR - 1) / MR * MR);
	int64_t nblk = (g->T + g->TB - 1) / g->TB;
	int64_t nu = (int64_t)WP * g->TB * Ci, nm = (int64_t)WP * g->TB * KB;
	struct fd_arena_mark mark = fd_arena_mark(&c->arena);
	float *V = fd_ctx_alloc(c, FD_DEV_CPU, (int64_t)WP * Ci * Kp);
	float *bias = fd_ctx_alloc(c, FD_DEV_CPU, Kp);
	float *scr = fd_ctx_alloc(c, FD_DEV_CPU, shared ? nu + threads * nm : threads * (nu + nm));
	if (!V || !bias || !scr) { /* c->err says why */
		fd_arena_release(&c->arena, &mark, NULL, 0);
		return -1;
	}
	for (int k = 0; k < Kp; k++)
		bias[k] = b && k < g->Co ? b[k] : 0.0f;
	g->V = V, g->bias = bias;
	pack_weights(g, w, flip, V, threads);
	wino_mk_fn mk = mk_pick();
	#pragma omp parallel num_threads(threads)
	{
		int tid = 0;
#ifdef _OPENMP
		tid = omp_get_thread_num();
#endif
		if (shared) {
			float *U = scr, *M = scr + nu + tid * nm;
			for (int64_t blk = 0; blk < nblk; blk++) {
				int64_t t0 = blk * g->TB;
				int nt = (int)(g->T - t0 < g->TB ? g->T - t0 : g->TB);
				#pragma omp for schedule(static)
				for (int q = 0; q < threads; q++)
					in_tiles(g, t0, (int)((int64_t)nt * q / threads), (int)((int64_t)nt * (q + 1) / threads), U);
				#pragma omp single
				pad_rows(g, nt, U);
				#pragma omp for schedule(static)
				for (int kb = 0; kb < nkb; kb++)
					kb_block(g, mk, U, M, t0, nt, kb);
			}
		} else {
			float *U = scr + (int64_t)tid * (nu + nm), *M = U + nu;
			#pragma omp for schedule(static)
			for (int64_t blk = 0; blk < nblk; blk++) {
				int64_t t0 = blk * g->TB;
				int nt = (int)(g->T - t0 < g->TB ? g->T - t0 : g->TB);
				in_tiles(g, t0, 0, nt, U);
				pad_rows(g, nt, U);
				for (int kb = 0; kb < nkb; kb++)
					kb_block(g, mk, U, M, t0, nt, kb);
			}
		}
	}
	fd_arena_release(&c->arena, &mark, NULL, 0);
	return 0;
}

/* -1 with c->err for a shape fd_wino_serves does not take */
static int refuse(struct fd_ctx *c, const struct fd_conv2d_shape *s)
{
	fd_fail(c, "winograd: conv2d C=%d K=%d k=%dx%d s=%d,%d p=%d,%d d=%d,%d g=%d (%s -> %s) is not a channels-last "
		   "3x3 stride-1 convolution with padding <= 2 and >= %d channels",
		s->C, s->K, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->dh, s->dw, s->groups,
		s->xl == FD_NHWC ? "NHWC" : "NCHW", s->yl == FD_NHWC ? "NHWC" : "NCHW", FD_CONV2D_WINO_MIN_C);
	return -1;
}

/* ---- backward-weights: dw = G^T [sum over tiles (B^T d B) . (A dyt A^T)] G ---- */

/* e = A d for four values d[0..4) (six out): A^T's columns */
#define WINO_A(T, d, e)                                                         \
	do {                                                                    \
		T p02_ = d[0] + d[2], p13_ = d[1] + d[3];                       \
		T q02_ = d[0] + 4.0f * d[2], q13_ = 2.0f * d[1] + 8.0f * d[3];  \
		e[0] = d[0];                                                    \
		e[1] = p02_ + p13_;                                             \
		e[2] = p02_ - p13_;                                             \
		e[3] = q02_ + q13_;                                             \
		e[4] = q02_ - q13_;                                             \
		e[5] = d[3];                                                    \
	} while (0)

/* Y[kb][36][TB][16] of tiles t0 + [tt0, tt1): A dyt A^T of each 4x4 tile of
 * dy (zero outside Ho x Wo), channels Co..Kp zero. */
FD_VEC_CLONES
static void dy_tiles(const struct wg *g, int64_t t0, int tt0, int tt1, float *Y)
{
	const int Co = g->Co, nkb = g->Kp / KB;
	const int64_t per = (int64_t)g->th * g->tw, ys = (int64_t)g->TB * KB;
	const wv8 z = {0};
	for (int tt = tt0; tt < tt1; tt++) {
		int64_t t = t0 + tt;
		int n = (int)(t / per), r = (int)(t % per);
		int oh0 = (r / g->tw) * 4, ow0 = (r % g->tw) * 4;
		int64_t off[16];
		for (int i = 0; i < 4; i++)
			for (int j = 0; j < 4; j++)
				off[i * 4 + j] = oh0 + i < g->Ho && ow0 + j < g->Wo
							 ? (((int64_t)n * g->Ho + oh0 + i) * g->Wo + ow0 + j) * Co
							 : -1;
		for (int kb = 0; kb < nkb; kb++)
			for (int h = 0; h < 2; h++) {
				int k0 = kb * KB + h * 8;
				float *y = Y + (int64_t)kb * WP * ys + (int64_t)tt * KB + h * 8;
				wv8 e4[4][6];
				for (int i = 0; i < 4; i++) {
					wv8 d[4];
					for (int j = 0; j < 4; j++) {
						const float *p = g->dy + off[i * 4 + j] + k0;
						if (off[i * 4 + j] < 0 || k0 >= Co) {
							d[j] = z;
						} else if (k0 + 8 <= Co) {
							d[j] = LD8(p);
						} else {
							d[j] = z;
							for (int l = 0; k0 + l < Co; l++)
								d[j][l] = p[l];
						}
					}
					WINO_A(wv8, d, e4[i]);
				}
				for (int b = 0; b < 6; b++) {
					wv8 d[4] = {e4[0][b], e4[1][b], e4[2][b], e4[3][b]}, e[6];
					WINO_A(wv8, d, e);
					for (int a = 0; a < 6; a++)
						ST8(y + (int64_t)(a * 6 + b) * ys, e[a]);
				}
			}
	}
}

/* dw[k][c] += G^T z G (in double) for the 16 outputs of block kb, input
 * channel c: z = Z[kb][c], [36][16]. Four outputs per vector of doubles,
 * each output's sums in the order of the scalar formula (no contraction:
 * the same bits in every clone). */
FD_VEC_CLONES
static void dw_out(const struct wg *g, const float *Z, int kb, int c, float *dw)
{
	const int Ci = g->Ci;
	const float *z = Z + ((int64_t)kb * Ci + c) * WP * KB;
	static const double Gc[3][6] = { /* G's columns */
		{1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 0},
		{0, -1.0 / 6, 1.0 / 6, 1.0 / 12, -1.0 / 12, 0},
		{0, -1.0 / 6, -1.0 / 6, 1.0 / 6, 1.0 / 6, 1},
	};
	for (int l4 = 0; l4 < KB && kb * KB + l4 < g->Co; l4 += 4) {
		wd4 t[6][3];
		for (int a = 0; a < 6; a++)
			for (int q = 0; q < 3; q++) {
				wd4 v = {0, 0, 0, 0};
				for (int b = 0; b < 6; b++) {
					const float *zp = z + (a * 6 + b) * KB + l4;
					wd4 zd = {zp[0], zp[1], zp[2], zp[3]};
					v += zd * Gc[q][b];
				}
				t[a][q] = v;
			}
		wd4 o[9];
		for (int r = 0; r < 3; r++)
			for (int q = 0; q < 3; q++) {
				wd4 v = {0, 0, 0, 0};
				for (int a = 0; a < 6; a++)
					v += Gc[r][a] * t[a][q];
				o[r * 3 + q] = v;
			}
		for (int j = 0; j < 4 && kb * KB + l4 + j < g->Co; j++) {
			float *d = dw + ((int64_t)(kb * KB + l4 + j) * Ci + c) * 9;
			for (int i = 0; i < 9; i++)
				d[i] += (float)o[i][j];
		}
	}
}

/* Z rows c0 + [0, rows) of position p, block kb (Z [nkb][Ci][36][16]):
 * each 16 sums of m added (first: 0 + them, as into zeros) */
FD_VEC_CLONES
static void z_add(float *Z, int Ci, int kb, int p, int c0, int rows, const float *m, int first)
{
	for (int r = 0; r < rows; r++) {
		float *zr = Z + (((int64_t)kb * Ci + c0 + r) * WP + p) * KB;
		const float *mr = m + r * KB;
		if (first)
			for (int l = 0; l < KB; l++)
				zr[l] = 0.0f + mr[l];
		else
			for (int l = 0; l < KB; l++)
				zr[l] += mr[l];
	}
}

/* Tiles per block of backward-weights: U and Y of a block about this many
 * bytes. Fixed by the shape (not the thread count): Z adds each block's
 * sums in block order, so the result is the same bits on any threads. */
#define WINO_W_BYTES (16u << 20)

int fd_wino_bwd_weights_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, const float *dy,
			    float *dw, float *db)
{
	if (!fd_wino_serves(s))
		return refuse(c, s);
	const int threads = c->threads > 0 ? c->threads : 1;
	struct wg g = {.N = s->N, .H = s->H, .W = s->W, .Ci = s->C, .Co = s->K, .ph = s->ph, .pw = s->pw,
		       .Ho = s->H + 2 * s->ph - 2, .Wo = s->W + 2 * s->pw - 2, .Kp = (s->K + KB - 1) / KB * KB,
		       .x = x, .dy = dy};
	const int Ci = g.Ci, Kp = g.Kp, nkb = Kp / KB;
	g.th = (g.Ho + 3) / 4, g.tw = (g.Wo + 3) / 4;
	g.T = (int64_t)g.N * g.th * g.tw;
	int64_t tb = WINO_W_BYTES / ((int64_t)WP * (Ci + Kp) * sizeof(float));
	tb = tb < 16 ? 16 : tb;
	g.TB = (int)(tb > g.T ? g.T : tb);
	int64_t nblk = (g.T + g.TB - 1) / g.TB, nu = (int64_t)WP * g.TB * Ci + 8;
	struct fd_arena_mark mark = fd_arena_mark(&c->arena);
	float *U = dw ? fd_ctx_alloc(c, FD_DEV_CPU, nu) : NULL;
	float *Y = U ? fd_ctx_alloc(c, FD_DEV_CPU, (int64_t)WP * g.TB * Kp) : NULL;
	float *Z = Y ? fd_ctx_alloc(c, FD_DEV_CPU, (int64_t)WP * Ci * Kp) : NULL;
	if (dw && !Z) { /* c->err says why */
		fd_arena_release(&c->arena, &mark, NULL, 0);
		return -1;
	}
	if (dw) {
		memset(U + nu - 8, 0, 8 * sizeof *U); /* read past the last row, never used */
	}
	wino_mk_fn mk = mk_pick();
	#pragma omp parallel num_threads(threads)
	{
		for (int64_t blk = 0; dw && blk < nblk; blk++) {
			int64_t t0 = blk * g.TB;
			int nt = (int)(g.T - t0 < g.TB ? g.T - t0 : g.TB);
			#pragma omp for schedule(static)
			for (int q = 0; q < threads; q++) {
				int a = (int)((int64_t)nt * q / threads), b = (int)((int64_t)nt * (q + 1) / threads);
				in_tiles(&g, t0, a, b, U);
				dy_tiles(&g, t0, a, b, Y);
			}
			#pragma omp for schedule(static)
			for (int it = 0; it < WP * nkb; it++) { /* a position's blocks together: U[p] reused */
				int p = it / nkb, kb = it % nkb;
				const float *up = U + (int64_t)p * g.TB * Ci, *yp = Y + ((int64_t)kb * WP + p) * g.TB * KB;
				float acc[MR * KB];
				for (int c0 = 0; c0 < Ci; c0 += MR) {
					mk(up + c0, 1, Ci, yp, KB, nt, acc);
					z_add(Z, Ci, kb, p, c0, Ci - c0 < MR ? Ci - c0 : MR, acc, blk == 0);
				}
			}
		}
		if (dw) {
			#pragma omp for schedule(static)
			for (int64_t it = 0; it < (int64_t)nkb * Ci; it++)
				dw_out(&g, Z, (int)(it / Ci), (int)(it % Ci), dw);
		}
		if (db && s->bias) { /* per channel, rows in order, in double */
			#pragma omp for schedule(static)
			for (int k = 0; k < g.Co; k++) {
				double v = 0;
				for (int64_t row = 0; row < (int64_t)g.N * g.Ho * g.Wo; row++)
					v += dy[row * g.Co + k];
				db[k] += (float)v;
			}
		}
	}
	fd_arena_release(&c->arena, &mark, NULL, 0);
	return 0;
}

int fd_wino_fwd_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, const float *w,
		    const float *b, int relu, int add, float *y)
{
	if (!fd_wino_serves(s))
		return refuse(c, s);
	struct wg g = {.N = s->N, .H = s->H, .W = s->W, .Ci = s->C, .Co = s->K, .ph = s->ph, .pw = s->pw,
		       .Ho = s->H + 2 * s->ph - 2, .Wo = s->W + 2 * s->pw - 2, .Kp = (s->K + KB - 1) / KB * KB,
		       .x = x, .y = y, .relu = relu, .add = add};
	return run(c, &g, w, 0, s->bias ? b : NULL);
}

int fd_wino_bwd_data_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *dy, const float *w,
			 float *dx, int over)
{
	if (!fd_wino_serves(s))
		return refuse(c, s);
	int Ho = s->H + 2 * s->ph - 2, Wo = s->W + 2 * s->pw - 2;
	struct wg g = {.N = s->N, .H = Ho, .W = Wo, .Ci = s->K, .Co = s->C, .ph = 2 - s->ph, .pw = 2 - s->pw,
		       .Ho = s->H, .Wo = s->W, .Kp = (s->C + KB - 1) / KB * KB, .x = dy, .y = dx, .add = !over};
	return run(c, &g, w, 1, NULL);
}

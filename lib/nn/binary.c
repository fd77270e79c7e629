/* binary: broadcast add and mul. Forward runs a 5-D loop nest with the last
 * dim innermost; backward reduces into each operand in parallel over that
 * operand's own elements, so no two threads write the same gradient. */
#include "nn/binary.h"
#include "nn/layout.h"

#include "core/fd_vec.h"
#include "nn/act_inline.h"

#include <string.h>

int fd_bcast_init(struct fd_ctx *c, struct fd_bcast *bc, const struct fd_tensor *a,
		  const struct fd_tensor *b, int *ndim)
{
	char b1[64], b2[64];
	int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
	int64_t as[FD_MAXDIM], bs[FD_MAXDIM];
	for (int d = 0; d < FD_MAXDIM; d++) {
		int ia = d - (FD_MAXDIM - a->ndim), ib = d - (FD_MAXDIM - b->ndim);
		as[d] = ia >= 0 ? a->shape[ia] : 1;
		bs[d] = ib >= 0 ? b->shape[ib] : 1;
		if (as[d] != bs[d] && as[d] != 1 && bs[d] != 1) {
			fd_fail(c, "shapes %s and %s do not broadcast", fd_tensor_shape_str(a, b1, sizeof b1),
				fd_tensor_shape_str(b, b2, sizeof b2));
			return -1;
		}
		bc->shape[d] = as[d] > bs[d] ? as[d] : bs[d];
	}
	int64_t ra = 1, rb = 1;
	bc->n = 1;
	for (int d = FD_MAXDIM - 1; d >= 0; d--) {
		bc->sa[d] = as[d] == 1 ? 0 : ra;
		bc->sb[d] = bs[d] == 1 ? 0 : rb;
		ra *= as[d];
		rb *= bs[d];
		bc->n *= bc->shape[d];
	}
	bc->na = ra;
	bc->nb = rb;
	*ndim = nd;
	return 0;
}

void fd_bin_ref_forward(enum fd_binop op, const struct fd_bcast *bc, const double *a, const double *b,
			double *y)
{
	const int64_t *s = bc->shape;
	int64_t k = 0;
	for (int64_t i0 = 0; i0 < s[0]; i0++)
		for (int64_t i1 = 0; i1 < s[1]; i1++)
			for (int64_t i2 = 0; i2 < s[2]; i2++)
				for (int64_t i3 = 0; i3 < s[3]; i3++)
					for (int64_t i4 = 0; i4 < s[4]; i4++) {
						int64_t oa = i0 * bc->sa[0] + i1 * bc->sa[1] + i2 * bc->sa[2] +
							     i3 * bc->sa[3] + i4 * bc->sa[4];
						int64_t ob = i0 * bc->sb[0] + i1 * bc->sb[1] + i2 * bc->sb[2] +
							     i3 * bc->sb[3] + i4 * bc->sb[4];
						y[k++] = op == FD_BIN_ADD ? a[oa] + b[ob] : a[oa] * b[ob];
					}
}

void fd_bin_ref_backward(enum fd_binop op, const struct fd_bcast *bc, const double *a, const double *b,
			 const double *dy, double *da, double *db)
{
	const int64_t *s = bc->shape;
	int64_t k = 0;
	for (int64_t i0 = 0; i0 < s[0]; i0++)
		for (int64_t i1 = 0; i1 < s[1]; i1++)
			for (int64_t i2 = 0; i2 < s[2]; i2++)
				for (int64_t i3 = 0; i3 < s[3]; i3++)
					for (int64_t i4 = 0; i4 < s[4]; i4++, k++) {
						int64_t oa = i0 * bc->sa[0] + i1 * bc->sa[1] + i2 * bc->sa[2] +
							     i3 * bc->sa[3] + i4 * bc->sa[4];
						int64_t ob = i0 * bc->sb[0] + i1 * bc->sb[1] + i2 * bc->sb[2] +
							     i3 * bc->sb[3] + i4 * bc->sb[4];
						if (da)
							da[oa] += op == FD_BIN_ADD ? dy[k] : dy[k] * b[ob];
						if (db)
							db[ob] += op == FD_BIN_ADD ? dy[k] : dy[k] * a[oa];
					}
}

/* y[i] = a[i * xa] op b[i * xb] along one row, strides 0 or 1: the four
 * stride cases are separate loops so each vectorises. */
FD_VEC_CLONES
static void row_apply(enum fd_binop op, int64_t n, const float *a, int64_t xa, const float *b, int64_t xb,
		      float *y)
{
	if (op == FD_BIN_ADD) {
		if (xa && xb)
			for (int64_t i = 0; i < n; i++)
				y[i] = a[i] + b[i];
		else if (xa)
			for (int64_t i = 0; i < n; i++)
				y[i] = a[i] + b[0];
		else if (xb)
			for (int64_t i = 0; i < n; i++)
				y[i] = a[0] + b[i];
		else
			for (int64_t i = 0; i < n; i++)
				y[i] = a[0] + b[0];
	} else {
		if (xa && xb)
			for (int64_t i = 0; i < n; i++)
				y[i] = a[i] * b[i];
		else if (xa)
			for (int64_t i = 0; i < n; i++)
				y[i] = a[i] * b[0];
		else if (xb)
			for (int64_t i = 0; i < n; i++)
				y[i] = a[0] * b[i];
		else
			for (int64_t i = 0; i < n; i++)
				y[i] = a[0] * b[0];
	}
}

/* y[i] = a[i * xa] * b[i] with b in bf16, widened exactly in the loads: the
 * floats of row_apply's mul on the widened b. bf16 contexts only (a bf16
 * operand exists only there), hence the target. */
FD_VEC_AVX512_ONLY
static void row_mul_b(int64_t n, const float *a, int64_t xa, const uint16_t *b, float *y)
{
	if (xa)
		for (int64_t i = 0; i < n; i++)
			y[i] = a[i] * fd_ai_f32(b[i]);
	else
		for (int64_t i = 0; i < n; i++)
			y[i] = a[0] * fd_ai_f32(b[i]);
}

/* row_mul_b with y rounded to bf16 (fd_ai_bf16) into yb */
FD_VEC_AVX512_ONLY
static void row_mul_bb(int64_t n, const float *a, int64_t xa, const uint16_t *b, uint16_t *yb)
{
	if (xa)
		for (int64_t i = 0; i < n; i++)
			yb[i] = fd_ai_bf16(a[i] * fd_ai_f32(b[i]));
	else
		for (int64_t i = 0; i < n; i++)
			yb[i] = fd_ai_bf16(a[0] * fd_ai_f32(b[i]));
}

/* The offset of row r (rows: the outer four dims of shape s, each row s[4]
 * long) in an operand with strides st */
static inline int64_t row_off(const int64_t *s, const int64_t *st, int64_t r)
{
	int64_t i3 = r % s[3], t = r / s[3];
	int64_t i2 = t % s[2];
	t /= s[2];
	int64_t i1 = t % s[1], i0 = t / s[1];
	return i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3];
}

/* Below this many outputs a kernel runs on the calling thread: the SE
 * blocks' [N, C] vectors and the like cost less than waking a team. */
#define PAR_MIN 32768

int fd_binary_fwd_cpu(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const float *a,
		   const float *b, float *y)
{
	const int64_t *s = bc->shape;
	if (bc->na == bc->n && bc->nb == bc->n) {
		int64_t n = bc->n, per = 16384, nb = (n + per - 1) / per;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (n >= PAR_MIN)
		for (int64_t k = 0; k < nb; k++) {
			int64_t i0 = k * per, m = n - i0 < per ? n - i0 : per;
			row_apply(op, m, a + i0, 1, b + i0, 1, y + i0);
		}
		return 0;
	}
	int64_t rows = s[0] * s[1] * s[2] * s[3];
#pragma omp parallel for num_threads(c->threads) schedule(static) if (bc->n >= PAR_MIN)
	for (int64_t r = 0; r < rows; r++) {
		const float *ap = a + row_off(s, bc->sa, r), *bp = b + row_off(s, bc->sb, r);
		row_apply(op, s[4], ap, bc->sa[4], bp, bc->sb[4], y + r * s[4]);
	}
	return 0;
}

/* y rounded to bf16 (fd_ai_bf16: fd_dnnl_to_bf16's bits); bf16 contexts
 * only (AVX512-BF16 checked), hence the 512-bit target (doc/nn-kernels.md
 * "bf16 hand-off") */
FD_VEC_AVX512_ONLY
static void row_to_bf16(const float *y, uint16_t *yb, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		yb[i] = fd_ai_bf16(y[i]);
}

/* fd_binary_fwd_cpu with y rounded to bf16 into yb: each row computed by
 * row_apply (the same floats) into a block on the stack, then rounded */
enum { BROW = 4096 };
static void binary_fwd_bf16(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const float *a,
			    const float *b, uint16_t *yb)
{
	const int64_t *s = bc->shape;
	int same = bc->na == bc->n && bc->nb == bc->n;
	int64_t len = same ? bc->n : s[4], rows = same ? 1 : s[0] * s[1] * s[2] * s[3];
	int64_t nbl = (len + BROW - 1) / BROW;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (bc->n >= PAR_MIN)
	for (int64_t u = 0; u < rows * nbl; u++) {
		int64_t r = u / nbl, j = u % nbl * BROW, m = len - j < BROW ? len - j : BROW;
		const float *ap = a, *bp = b;
		int64_t xa = 1, xb = 1;
		if (!same) {
			ap = a + row_off(s, bc->sa, r), bp = b + row_off(s, bc->sb, r);
			xa = bc->sa[4], xb = bc->sb[4];
		}
		float t[BROW];
		row_apply(op, m, ap + j * xa, xa, bp + j * xb, xb, t);
		row_to_bf16(t, yb + r * len + j, m);
	}
}

/* dx[i] += dy[i] (other == NULL) or dy[i] * other[i * xo] along one row
 * (x not broadcast: one term per element); wr: dx[i] = the term (a fresh
 * gradient, struct fd_node's writes). */
FD_VEC_CLONES
static void row_acc(int64_t n, const float *dy, const float *other, int64_t xo, float *dx, int wr)
{
	if (wr) {
		if (!other)
			for (int64_t i = 0; i < n; i++)
				dx[i] = dy[i];
		else if (xo)
			for (int64_t i = 0; i < n; i++)
				dx[i] = dy[i] * other[i];
		else
			for (int64_t i = 0; i < n; i++)
				dx[i] = dy[i] * other[0];
	} else if (!other) {
		for (int64_t i = 0; i < n; i++)
			dx[i] += dy[i];
	} else if (xo) {
		for (int64_t i = 0; i < n; i++)
			dx[i] += dy[i] * other[i];
	} else {
		for (int64_t i = 0; i < n; i++)
			dx[i] += dy[i] * other[0];
	}
}

/* row_acc with other in bf16, not broadcast (xo 1): the same floats */
FD_VEC_AVX512_ONLY
static void row_acc_b(int64_t n, const float *dy, const uint16_t *other, float *dx, int wr)
{
	if (wr)
		for (int64_t i = 0; i < n; i++)
			dx[i] = dy[i] * fd_ai_f32(other[i]);
	else
		for (int64_t i = 0; i < n; i++)
			dx[i] += dy[i] * fd_ai_f32(other[i]);
}

/* row_sum's product with other in bf16, not broadcast: the same doubles */
FD_VEC_AVX512_ONLY
static void row_sum_b(int64_t n, const float *dy, const uint16_t *other, double *acc)
{
	for (int64_t i = 0; i < n; i++)
		acc[i] += (double)dy[i] * fd_ai_f32(other[i]);
}

/* acc[i] += dy[i] (other == NULL) or (double)dy[i] * other[i * xo]: one
 * reduced row into a tile of double sums. */
FD_VEC_CLONES
static void row_sum(int64_t n, const float *dy, const float *other, int64_t xo, double *acc)
{
	if (!other)
		for (int64_t i = 0; i < n; i++)
			acc[i] += dy[i];
	else if (xo)
		for (int64_t i = 0; i < n; i++)
			acc[i] += (double)dy[i] * other[i];
	else
		for (int64_t i = 0; i < n; i++)
			acc[i] += (double)dy[i] * other[0];
}

/* dx[j] += sum over the output positions that read x[j] of dy (* other)
 * (wr: dx[j] = the sum). x has strides sx (0 = broadcast), the other operand
 * so. Parallel over j. otherb: mul's other operand in bf16 instead (other
 * NULL), not broadcast, x either not broadcast or keeping the innermost dim
 * (bf16_takes: the first two paths). */
static void reduce_into(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc,
			const int64_t *sx, int64_t nx, const int64_t *so, const float *other,
			const uint16_t *otherb, const float *dy, float *dx, int wr)
{
	const int64_t *s = bc->shape;
	int64_t sy[FD_MAXDIM], r = 1, xs[FD_MAXDIM];
	for (int d = FD_MAXDIM - 1; d >= 0; d--) {
		sy[d] = r;
		r *= s[d];
		xs[d] = sx[d] ? s[d] : 1; /* x's own extent along d */
	}
	if (nx == r) {
		/* x is not broadcast (residual adds, squeeze-excitation scaling):
		 * each dx[j] receives one term, so walk y by rows as the forward
		 * does instead of decoding every j; same result bit for bit (one
		 * float product, one add) */
		int64_t rows = s[0] * s[1] * s[2] * s[3];
#pragma omp parallel for num_threads(c->threads) schedule(static) if (r >= PAR_MIN)
		for (int64_t q = 0; q < rows; q++) {
			int64_t i3 = q % s[3], t = q / s[3];
			int64_t i2 = t % s[2];
			t /= s[2];
			int64_t i1 = t % s[1], i0 = t / s[1];
			float *xp = dx + i0 * sx[0] + i1 * sx[1] + i2 * sx[2] + i3 * sx[3];
			if (otherb) {
				row_acc_b(s[4], dy + q * s[4], otherb + q * s[4], xp, wr);
				continue;
			}
			const float *op_ = op == FD_BIN_ADD ? NULL
							    : other + i0 * so[0] + i1 * so[1] + i2 * so[2] + i3 * so[3];
			row_acc(s[4], dy + q * s[4], op_, so[4], xp, wr);
		}
		return;
	}
	if (sx[4] && s[4] > 1) {
		/* x keeps the innermost dim (the SE scale's [N, 1, 1, C] in channels
		 * last, a bias [C]): walk the reduced positions in the same order as
		 * below, each adding a contiguous row of dy into a tile of TILE
		 * double sums, one per x element: every sum gets the same terms in
		 * the same order, so the result is bit for bit the one of the
		 * per-element loop, with the reads along memory instead of across. */
		enum { TILE = 128 };
		int64_t nt = (s[4] + TILE - 1) / TILE, nq = nx / s[4];
#pragma omp parallel for num_threads(c->threads) schedule(static) if (r >= PAR_MIN)
		for (int64_t u = 0; u < nq * nt; u++) {
			int64_t q = u / nt, t0 = u % nt * TILE, w = s[4] - t0 < TILE ? s[4] - t0 : TILE;
			int64_t lo[FD_MAXDIM], hi[FD_MAXDIM], t = q;
			for (int d = FD_MAXDIM - 2; d >= 0; d--) {
				int64_t i = t % xs[d];
				t /= xs[d];
				lo[d] = sx[d] ? i : 0;
				hi[d] = sx[d] ? i + 1 : s[d];
			}
			double acc[TILE] = {0};
			for (int64_t i0 = lo[0]; i0 < hi[0]; i0++)
				for (int64_t i1 = lo[1]; i1 < hi[1]; i1++)
					for (int64_t i2 = lo[2]; i2 < hi[2]; i2++)
						for (int64_t i3 = lo[3]; i3 < hi[3]; i3++) {
							int64_t py = i0 * sy[0] + i1 * sy[1] + i2 * sy[2] + i3 * sy[3];
							int64_t po = i0 * so[0] + i1 * so[1] + i2 * so[2] + i3 * so[3];
							if (otherb) {
								row_sum_b(w, dy + py + t0, otherb + po + t0, acc);
								continue;
							}
							row_sum(w, dy + py + t0,
								op == FD_BIN_ADD ? NULL : other + po + t0 * so[4], so[4],
								acc);
						}
			float *xp = dx + q * s[4] + t0;
			for (int64_t i = 0; i < w; i++)
				xp[i] = (wr ? 0.0f : xp[i]) + (float)acc[i];
		}
		return;
	}
#pragma omp parallel for num_threads(c->threads) schedule(static) if (r >= PAR_MIN)
	for (int64_t j = 0; j < nx; j++) {
		int64_t lo[FD_MAXDIM], hi[FD_MAXDIM], t = j;
		for (int d = FD_MAXDIM - 1; d >= 0; d--) {
			int64_t i = t % xs[d];
			t /= xs[d];
			lo[d] = sx[d] ? i : 0;
			hi[d] = sx[d] ? i + 1 : s[d];
		}
		double acc = 0;
		for (int64_t i0 = lo[0]; i0 < hi[0]; i0++)
			for (int64_t i1 = lo[1]; i1 < hi[1]; i1++)
				for (int64_t i2 = lo[2]; i2 < hi[2]; i2++)
					for (int64_t i3 = lo[3]; i3 < hi[3]; i3++) {
						int64_t py = i0 * sy[0] + i1 * sy[1] + i2 * sy[2] + i3 * sy[3];
						int64_t po = i0 * so[0] + i1 * so[1] + i2 * so[2] + i3 * so[3];
						if (op == FD_BIN_ADD)
							for (int64_t i4 = lo[4]; i4 < hi[4]; i4++)
								acc += dy[py + i4];
						else
							for (int64_t i4 = lo[4]; i4 < hi[4]; i4++)
								acc += (double)dy[py + i4] * other[po + i4 * so[4]];
					}
		dx[j] = (wr ? 0.0f : dx[j]) + (float)acc;
	}
}

/* wa, wb: da, db are fresh gradients, overwritten. One of them may be dy
 * itself (struct fd_node's aliases; that operand is then not broadcast):
 * the other one is reduced first, from dy intact; a fresh da == dy of add
 * already holds its value (dy), mul's is written in place (each element
 * reads its dy before writing it). */
static void bwd_cpu(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const void *a, int a16,
		    const void *b, int b16, const float *dy, float *da, float *db, int wa, int wb)
{
	const float *af = a16 ? NULL : a, *bf = b16 ? NULL : b;
	const uint16_t *ah = a16 ? a : NULL, *bh = b16 ? b : NULL;
	int first_b = da == dy; /* da overwrites dy: db reads it before */
	if (db && first_b && !(op == FD_BIN_ADD && wb && db == dy))
		reduce_into(c, op, bc, bc->sb, bc->nb, bc->sa, af, ah, dy, db, wb);
	if (da && !(op == FD_BIN_ADD && wa && da == dy))
		reduce_into(c, op, bc, bc->sa, bc->na, bc->sb, bf, bh, dy, da, wa);
	if (db && !first_b && !(op == FD_BIN_ADD && wb && db == dy))
		reduce_into(c, op, bc, bc->sb, bc->nb, bc->sa, af, ah, dy, db, wb);
}

int fd_binary_bwd_cpu(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const float *a,
		   const float *b, const float *dy, float *da, float *db)
{
	bwd_cpu(c, op, bc, a, 0, b, 0, dy, da, db, 0, 0);
	return 0;
}

struct bin_saved {
	enum fd_binop op;
	struct fd_bcast bc;
};

/* On the CPU fresh gradients (the node's writes, set for CPU operands) are
 * overwritten; the device tables add, into zeroed gradients. */
static int bin_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct bin_saved *s = n->saved;
	struct fd_tensor *a = n->in[0], *b = n->in[1];
	float *da = (a->flags & FD_T_REQUIRES_GRAD) ? a->grad : NULL;
	float *db = (b->flags & FD_T_REQUIRES_GRAD) ? b->grad : NULL;
	if (a->dev == FD_DEV_CPU) {
		bwd_cpu(c, s->op, &s->bc, a->data, (a->flags & FD_T_BF16) != 0, b->data, (b->flags & FD_T_BF16) != 0,
			n->out->grad, da, db, (a->flags & FD_T_GRAD_FRESH) != 0, (b->flags & FD_T_GRAD_FRESH) != 0);
		return 0;
	}
	const struct fd_backend *be = FD_KERNEL(c, a->dev, binary_bwd);
	if (!be)
		return -1;
	return be->binary_bwd(c, s->op, &s->bc, a->data, b->data, n->out->grad, da, db);
}

/* Whether mul takes its bf16 operand (a16: a, else b) in bc: that operand
 * not broadcast, the other one not broadcast or keeping the innermost dim
 * (the paths of reduce_into that read a bf16 other) */
static int bf16_takes(const struct fd_bcast *bc, int a16)
{
	int64_t nh = a16 ? bc->na : bc->nb, no = a16 ? bc->nb : bc->na;
	const int64_t *so = a16 ? bc->sb : bc->sa;
	return nh == bc->n && (no == bc->n || (so[4] && bc->shape[4] > 1));
}

/* mul's forward with one operand h in bf16, not broadcast (bf16_takes), the
 * other o with strides so: per row of the innermost dim, as
 * fd_binary_fwd_cpu's; y in bf16 into yb instead (y NULL) */
static void mul_fwd_b(struct fd_ctx *c, const struct fd_bcast *bc, const float *o, const int64_t *so,
		      const uint16_t *h, float *y, uint16_t *yb)
{
	const int64_t *s = bc->shape;
	int64_t rows = s[0] * s[1] * s[2] * s[3];
#pragma omp parallel for num_threads(c->threads) schedule(static) if (bc->n >= PAR_MIN)
	for (int64_t r = 0; r < rows; r++) {
		const float *op = o + row_off(s, so, r);
		if (yb)
			row_mul_bb(s[4], op, so[4], h + r * s[4], yb + r * s[4]);
		else
			row_mul_b(s[4], op, so[4], h + r * s[4], y + r * s[4]);
	}
}

/* Whether t has fewer than 4 dims and, aligned right to [n, c, h, w], c == 1
 * or h*w == 1: its memory is then the same in NCHW and NHWC order. */
static int same_both(const struct fd_tensor *t)
{
	int64_t s4[4] = {1, 1, 1, 1};
	if (t->ndim >= 4)
		return 0;
	for (int i = 0; i < t->ndim; i++)
		s4[4 - t->ndim + i] = t->shape[i];
	return s4[1] == 1 || s4[2] * s4[3] == 1;
}

/* t's shape with leading 1s to 4 dims (a header copy: same memory) */
static void pad4(struct fd_tensor *t)
{
	int k = 4 - t->ndim;
	if (k <= 0)
		return;
	for (int i = 3; i >= 0; i--)
		t->shape[i] = i >= k ? t->shape[i - k] : 1;
	t->ndim = 4;
}

static struct fd_tensor *binary(struct fd_ctx *c, enum fd_binop op, struct fd_tensor *a,
				struct fd_tensor *b, int inplace)
{
	if (!a || !b)
		return NULL;
	if (a->dev != b->dev)
		return fd_fail(c, "%s: operands on %s and %s", op == FD_BIN_ADD ? "add" : "mul",
			       fd_dev_name(a->dev), fd_dev_name(b->dev));
	if (inplace && !fd_tensor_same_shape(a, b)) {
		char b1[64], b2[64];
		return fd_fail(c, "add_: shapes %s and %s differ (in place needs equal shapes)",
			       fd_tensor_shape_str(a, b1, sizeof b1), fd_tensor_shape_str(b, b2, sizeof b2));
	}
	/* Layouts: in place, b takes a's; otherwise channels last wins when both
	 * are 4-D (a residual add, an SE scale [N, C, 1, 1] of [N, C, H, W]) or
	 * the other has fewer dims and the same memory in both orders (ConvNeXt's
	 * layer scale [C, 1, 1]: see same_both), else both go NCHW. Channels-last
	 * operands are broadcast as the [N, H, W, C] arrays they are in memory (a
	 * 4-D operand with H*W == 1 is the same memory in both orders). */
	enum fd_layout L = FD_NCHW;
	if (inplace)
		L = fd_is_nhwc(a) ? FD_NHWC : FD_NCHW;
	else if (fd_is_nhwc(a) || fd_is_nhwc(b))
		L = (a->ndim == 4 || same_both(a)) && (b->ndim == 4 || same_both(b)) ? FD_NHWC : FD_NCHW;
	/* one operand in bf16 (FD_T_BF16, a convolution's output under
	 * c->bf16_y): mul only, on the CPU in a bf16 context, already in L */
	char b1[64];
	int a16 = (a->flags & FD_T_BF16) != 0, b16 = (b->flags & FD_T_BF16) != 0, h16 = a16 || b16;
	if (h16) {
		const struct fd_tensor *t = a16 ? a : b;
		if (op != FD_BIN_MUL || inplace || (a16 && b16) || a->dev != FD_DEV_CPU ||
		    c->precision != FD_PREC_BF16 || t->ndim != 4 || (fd_is_nhwc(t) ? FD_NHWC : FD_NCHW) != L)
			return fd_fail(c, "%s: bf16 operand %s: only to mul on the CPU in a bf16 context, 4-D, in "
					  "the result's layout",
				       op == FD_BIN_ADD ? "add" : "mul", fd_tensor_shape_str(t, b1, sizeof b1));
	}
	if (!(a = inplace ? a : fd_to_layout(c, a, L)) || !(b = fd_to_layout(c, b, L)))
		return NULL;
	struct fd_bcast bc;
	int nd;
	struct fd_tensor pa = *a, pb = *b; /* NHWC: the memory order as the shape */
	if (L == FD_NHWC) {
		struct fd_tensor *p[2] = {&pa, &pb};
		for (int i = 0; i < 2; i++) {
			pad4(p[i]);
			int64_t C = p[i]->shape[1];
			p[i]->shape[1] = p[i]->shape[2], p[i]->shape[2] = p[i]->shape[3], p[i]->shape[3] = C;
		}
	}
	if (fd_bcast_init(c, &bc, &pa, &pb, &nd) < 0)
		return NULL;
	int64_t ys[FD_MAXDIM];
	memcpy(ys, bc.shape + (FD_MAXDIM - nd), (size_t)nd * sizeof *ys);
	if (L == FD_NHWC) { /* back to the logical [N, C, H, W] */
		int64_t C = ys[3];
		ys[3] = ys[2], ys[2] = ys[1], ys[1] = C;
	}
	if (h16 && !bf16_takes(&bc, a16))
		return fd_fail(c, "%s: bf16 operand %s: only mul's full operand beside a full or last-dim one",
			       op == FD_BIN_ADD ? "add" : "mul", fd_tensor_shape_str(a16 ? a : b, b1, sizeof b1));
	const struct fd_backend *be = FD_KERNEL(c, a->dev, binary_fwd);
	/* asked for bf16 (nothing but convolutions reads y; backward reads a, b) */
	int yb = !inplace && c->bf16_out && c->precision == FD_PREC_BF16 && a->dev == FD_DEV_CPU;
	struct fd_tensor *y = !be ? NULL
			      : inplace ? fd_tensor_wrap(c, a->dev, a->data, a->ndim, a->shape)
			      : yb ? fd_tensor_new_bf16(c, nd, ys)
					: fd_tensor_new(c, a->dev, nd, ys);
	if (y)
		y->layout = L;
	if (y && h16)
		mul_fwd_b(c, &bc, a16 ? b->data : a->data, a16 ? &bc.sb[0] : &bc.sa[0],
			  (const uint16_t *)(a16 ? a->data : b->data), yb ? NULL : y->data,
			  yb ? (uint16_t *)y->data : NULL);
	else if (y && yb)
		binary_fwd_bf16(c, op, &bc, a->data, b->data, (uint16_t *)y->data);
	else if (!y || be->binary_fwd(c, op, &bc, a->data, b->data, y->data) < 0)
		return NULL;
	struct fd_tensor *in[2] = {a, b};
	if (fd_needs_grad(c, 2, in)) {
		struct fd_node *n = fd_tape_push(c, op == FD_BIN_ADD ? "add" : "mul", bin_backward, 2, in, y,
						 sizeof(struct bin_saved));
		if (!n)
			return NULL;
		struct bin_saved *s = n->saved;
		s->op = op;
		s->bc = bc;
		if (a->dev == FD_DEV_CPU) /* bin_backward overwrites fresh da and db, either of them
					   * also dy itself (bwd_cpu) */
			n->writes = n->aliases = 3u;
	}
	return y;
}

struct fd_tensor *fd_add(struct fd_ctx *c, struct fd_tensor *a, struct fd_tensor *b)
{
	return binary(c, FD_BIN_ADD, a, b, 0);
}

struct fd_tensor *fd_mul(struct fd_ctx *c, struct fd_tensor *a, struct fd_tensor *b)
{
	return binary(c, FD_BIN_MUL, a, b, 0);
}

struct fd_tensor *fd_add_(struct fd_ctx *c, struct fd_tensor *a, struct fd_tensor *b)
{
	return binary(c, FD_BIN_ADD, a, b, 1);
}

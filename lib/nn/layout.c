/* layout: NCHW <-> NHWC as a taped op over a tiled transpose (see layout.h). */
#include "nn/layout.h"
#include "core/fd_vec.h"

#include <string.h>

int fd_is_nhwc(const struct fd_tensor *t)
{
	return t->layout == FD_NHWC && t->ndim == 4 && t->shape[2] * t->shape[3] > 1;
}

struct fd_tensor *fd_tensor_like(struct fd_ctx *c, const struct fd_tensor *x)
{
	struct fd_tensor *y = fd_tensor_new(c, x->dev, x->ndim, x->shape);
	if (y)
		y->layout = x->layout;
	return y;
}

#define TILE 32

/* [n, 3, cols] -> [n, cols, 3] (an RGB image into channels last, the first
 * op of every CPU model forward): three reads interleaved into one write
 * stream, which the tiled loop's 3-long inner loop ran scalar (32x3x224x224:
 * 8-14 ms -> 3 ms on the loaded 2-core box). Rows of samples split over
 * threads. */
FD_VEC_CLONES static void rows3(int threads, int64_t n, int64_t cols, const float *restrict src,
				float *restrict dst)
{
	#pragma omp parallel for num_threads(threads) collapse(2) schedule(static)
	for (int64_t m = 0; m < n; m++)
		for (int64_t j0 = 0; j0 < cols; j0 += 4096) {
			const float *s0 = src + m * 3 * cols, *s1 = s0 + cols, *s2 = s1 + cols;
			float *d = dst + m * 3 * cols;
			int64_t j1 = j0 + 4096 < cols ? j0 + 4096 : cols;
			for (int64_t j = j0; j < j1; j++) {
				d[3 * j] = s0[j];
				d[3 * j + 1] = s1[j];
				d[3 * j + 2] = s2[j];
			}
		}
}

void fd_transpose_cpu(int threads, int64_t n, int64_t rows, int64_t cols, const float *src, float *dst,
		      int add)
{
	if (rows == 3 && !add) {
		rows3(threads, n, cols, src, dst);
		return;
	}
	int64_t tr = (rows + TILE - 1) / TILE, tc = (cols + TILE - 1) / TILE;
	#pragma omp parallel for num_threads(threads) collapse(2) schedule(static)
	for (int64_t m = 0; m < n; m++)
		for (int64_t t = 0; t < tr * tc; t++) {
			int64_t r0 = t / tc * TILE, c0 = t % tc * TILE;
			int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows, c1 = c0 + TILE < cols ? c0 + TILE : cols;
			const float *s = src + m * rows * cols;
			float *d = dst + m * rows * cols;
			for (int64_t j = c0; j < c1; j++)
				for (int64_t i = r0; i < r1; i++) {
					float v = s[i * cols + j];
					d[j * rows + i] = add ? d[j * rows + i] + v : v;
				}
		}
}

/* [N, a, b] -> [N, b, a] with (a, b) = (C, HW) for NCHW -> NHWC, else (HW, C). */
static void dims(const struct fd_tensor *x, enum fd_layout to, int64_t *a, int64_t *b)
{
	int64_t C = x->shape[1], HW = x->shape[2] * x->shape[3];
	*a = to == FD_NHWC ? C : HW;
	*b = to == FD_NHWC ? HW : C;
}

static int to_layout_backward(struct fd_ctx *c, struct fd_node *n)
{
	struct fd_tensor *x = n->in[0], *y = n->out;
	int64_t a, b;
	dims(y, x->layout, &a, &b); /* y's gradient goes back to x's order */
	fd_transpose_cpu(c->threads, x->shape[0], a, b, y->grad, x->grad, 1);
	return 0;
}

struct fd_tensor *fd_to_layout(struct fd_ctx *c, struct fd_tensor *x, enum fd_layout L)
{
	if (!x || x->ndim != 4 || x->layout == L)
		return x;
	if (x->shape[2] * x->shape[3] == 1) {
		/* the same memory in both orders: a header with the new tag, its
		 * gradient shared through the tape as reshape does */
		if (!fd_needs_grad(c, 1, &x)) {
			struct fd_tensor *y = fd_tensor_wrap(c, x->dev, x->data, 4, x->shape);
			if (y)
				y->layout = L;
			return y;
		}
	}
	if (x->dev != FD_DEV_CPU)
		return fd_fail(c, "layout conversion on %s: not supported", fd_dev_name(x->dev));
	struct fd_tensor *y = fd_tensor_new(c, x->dev, 4, x->shape);
	if (!y)
		return NULL;
	y->layout = L;
	int64_t a, b;
	dims(x, L, &a, &b);
	fd_transpose_cpu(c->threads, x->shape[0], a, b, x->data, y->data, 0);
	if (fd_needs_grad(c, 1, &x) && !fd_tape_push(c, "to_layout", to_layout_backward, 1, &x, y, 0))
		return NULL;
	return y;
}

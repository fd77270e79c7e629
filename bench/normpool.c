/* bench/normpool: time fd's batchnorm2d (train forward + backward) and pooling
 * kernels for shapes read from stdin, one per line:
 *   NAME KIND N C H W      (KIND: bn | maxpool3s2 | maxpool3s2_nhwc | gap |
 *                           bn_relu_nhwc | bn_silu_nhwc | bn_hardswish_nhwc |
 *                           bn_relu_pool2_nhwc | bn_relu_pool2_bf16_nhwc;
 *                           _nhwc: the channels-last kernel on the same data read as [N, H, W, C];
 *                           bn_ACT_nhwc: the taped op the models' training runs,
 *                           fd_batchnorm2d_act on a channels-last x, and its
 *                           node's backward alone, as bench/model --ops times
 *                           it: x, w, b requiring gradients, zeroed before the
 *                           clock starts; _pool2: fd_batchnorm2d_act_maxpool
 *                           with a 2x2/2 max pool, SimpleCNN's, N C H W its
 *                           input; _bf16: x in bf16, as the bf16 convolution
 *                           before writes it)
 * printing "NAME<TAB>fwd_ms<TAB>bwd_ms" (best of the repeats after a warm-up).
 * Driven by bench/normpool_vs_torch.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fd_progress.h"
#include "nn/act.h"
#include "nn/act_inline.h"
#include "nn/batchnorm2d.h"
#include "nn/pool2d.h"

/* One taped training forward of fd_batchnorm2d_act(act) on a channels-last
 * x (the data of x and dy, [N, H, W, C]) and its node's backward: the
 * seconds of each into *tf, *tb; -1 with c->err on failure. */
static int bn_act_taped(struct fd_ctx *c, int act, int pool, int xbf, int N, int C, int H, int W, const float *xd,
			const float *dyd, double *tf, double *tb)
{
	int64_t sx[4] = {N, C, H, W}, sc[1] = {C}, s1[1] = {1};
	size_t n = (size_t)N * C * H * W;
	fd_ctx_step(c);
	struct fd_tensor *x = xbf ? fd_tensor_new_bf16(c, 4, sx) : fd_tensor_new(c, FD_DEV_CPU, 4, sx);
	struct fd_tensor *w = fd_tensor_new(c, FD_DEV_CPU, 1, sc);
	struct fd_tensor *b = fd_tensor_new(c, FD_DEV_CPU, 1, sc), *rm = fd_tensor_new(c, FD_DEV_CPU, 1, sc);
	struct fd_tensor *rv = fd_tensor_new(c, FD_DEV_CPU, 1, sc), *nbt = fd_tensor_new(c, FD_DEV_CPU, 1, s1);
	float *dy = fd_ctx_alloc(c, FD_DEV_CPU, (int64_t)n);
	if (!x || !w || !b || !rm || !rv || !nbt || !dy)
		return -1;
	x->layout = FD_NHWC;
	if (xbf)
		for (size_t i = 0; i < n; i++)
			((uint16_t *)x->data)[i] = fd_ai_bf16(xd[i]);
	else
		memcpy(x->data, xd, n * 4);
	memcpy(dy, dyd, n * 4);
	for (int i = 0; i < C; i++)
		w->data[i] = 1, b->data[i] = 0, rm->data[i] = 0, rv->data[i] = 1;
	nbt->data[0] = 0;
	fd_requires_grad(x), fd_requires_grad(w), fd_requires_grad(b);
	c->training = 1;
	double t0 = fd_now();
	struct fd_tensor *y = pool ? fd_batchnorm2d_act_maxpool(c, x, w, b, rm, rv, nbt, 0.1, 1e-5, act, 2, 2, 0)
				   : fd_batchnorm2d_act(c, x, w, b, rm, rv, nbt, 0.1, 1e-5, act);
	double t1 = fd_now();
	if (!y || !c->tape || (pool && strcmp(c->tape->op, "batchnorm2d_relu_max_pool2d") != 0))
		return -1;
	struct fd_tensor *g[3] = {x, w, b};
	for (int i = 0; i < 3; i++)
		if (!(g[i]->grad = fd_ctx_alloc(c, FD_DEV_CPU, g[i]->numel)))
			return -1;
		else
			memset(g[i]->grad, 0, (size_t)g[i]->numel * sizeof(float));
	y->grad = dy;
	double t2 = fd_now();
	if (c->tape->backward(c, c->tape) < 0)
		return -1;
	*tf = t1 - t0, *tb = fd_now() - t2;
	return 0;
}

int main(int argc, char **argv)
{
	struct fd_ctx c;
	struct fd_err e;
	char line[256], name[64], kind[32];
	int N, C, H, W;
	if (fd_ctx_open(&c, FD_DEV_CPU, argc > 1 ? atoi(argv[1]) : 2, 0, &e)) {
		fprintf(stderr, "normpool: %s\n", e.msg);
		return 1;
	}
	while (fgets(line, sizeof line, stdin)) {
		if (sscanf(line, "%63s %31s %d %d %d %d", name, kind, &N, &C, &H, &W) != 6) {
			fprintf(stderr, "normpool: bad line: %s", line);
			return 2;
		}
		size_t n = (size_t)N * C * H * W;
		float *x = malloc(n * 4), *y = malloc(n * 4), *dy = malloc(n * 4), *dx = calloc(n, 4);
		float *pc = calloc(6 * (size_t)C, 4);
		int32_t *idx = malloc(n * 4);
		for (size_t i = 0; i < n; i++)
			x[i] = (float)((i * 2654435761u) % 1000) / 500 - 1, dy[i] = (float)(i % 7) - 3;
		for (int c = 0; c < C; c++)
			pc[c] = 1, pc[3 * C + c] = 1;
		struct fd_pool2d_shape ps = {N, C, H, W, 3, 3, 2, 2, 1, 1, 0, 1};
		double bf = 1e9, bb = 1e9;
		for (int r = 0; r < 8; r++) {
			int pool = !strncmp(kind, "bn_relu_pool2", 13), xbf = !strcmp(kind, "bn_relu_pool2_bf16_nhwc");
			int act = !strcmp(kind, "bn_relu_nhwc") || pool ? FD_ACT_RELU
				  : !strcmp(kind, "bn_silu_nhwc")      ? FD_ACT_SILU
				  : !strcmp(kind, "bn_hardswish_nhwc") ? FD_ACT_HARDSWISH
								       : -1;
			double tf, tb, t0 = fd_now(), t1;
			if (act >= 0) {
				if (bn_act_taped(&c, act, pool, xbf, N, C, H, W, x, dy, &tf, &tb) < 0) {
					fprintf(stderr, "normpool: %s: %s\n", name, c.err.msg);
					return 1;
				}
			} else {
				if (!strcmp(kind, "bn")) {
					fd_batchnorm2d_fwd_train_cpu(&c, N, C, H * W, x, pc, pc + C, pc + 2 * C, pc + 3 * C,
								     0.1, 1e-5, y, pc + 4 * C, pc + 5 * C);
					t1 = fd_now();
					fd_batchnorm2d_bwd_train_cpu(&c, N, C, H * W, x, pc, pc + 4 * C, pc + 5 * C, dy, dx,
								     pc + C, pc + 2 * C);
				} else if (!strcmp(kind, "maxpool3s2")) {
					fd_maxpool2d_fwd_cpu(&c, &ps, x, y, idx);
					t1 = fd_now();
					fd_maxpool2d_bwd_cpu(&c, &ps, dy, idx, dx);
				} else if (!strcmp(kind, "maxpool3s2_nhwc")) {
					fd_maxpool2d_nhwc_fwd_cpu(&c, &ps, x, y, idx);
					t1 = fd_now();
					fd_maxpool2d_nhwc_bwd_cpu(&c, &ps, dy, idx, dx);
				} else {
					fd_adaptive_avgpool2d_fwd_cpu(&c, N, C, H, W, 1, 1, x, y);
					t1 = fd_now();
					fd_adaptive_avgpool2d_bwd_cpu(&c, N, C, H, W, 1, 1, dy, dx);
				}
				tf = t1 - t0, tb = fd_now() - t1;
			}
			if (r && tf < bf)
				bf = tf;
			if (r && tb < bb)
				bb = tb;
		}
		printf("%s\t%.3f\t%.3f\n", name, 1e3 * bf, 1e3 * bb);
		fflush(stdout);
		free(x), free(y), free(dy), free(dx), free(pc), free(idx);
	}
	fd_ctx_free(&c);
	return 0;
}

/* model_ab.h: two training steps of a model with and without one of its
 * switches (an m->no_* field), for the tests that show a fused or handed-off
 * path gives the separate path's bits (t_nn_bf16out, t_nn_bf16dy,
 * t_nn_bnpool, t_nn_bnadd). Side 0 runs with *knob = 1 (the path off),
 * side 1 with *knob = 0; each keeps its second step's logits, parameter
 * gradients, training arena peak, the growth of a context counter and the
 * number of tape nodes whose op name contains a string. */
#ifndef MODEL_AB_H
#define MODEL_AB_H

#include "models/fd_model.h"
#include "nn/conv2d.h"
#include "nn/loss.h"
#include "nn_ctx.h"
#include "tap.h"

enum { MODEL_AB_N = 2 }; /* batch; 3 classes */

struct model_ab {
	float lg[2][MODEL_AB_N * 3];
	float *g[2];        /* [m->p.ntrain] each */
	size_t ng;
	size_t peak[2];     /* c.arena.peak */
	uint64_t count[2];  /* the counter's growth over the second step */
	int ops[2];         /* the second step's tape nodes whose op name contains opname */
};

static __attribute__((unused)) void model_ab_free(struct model_ab *r)
{
	free(r->g[0]), free(r->g[1]);
	r->g[0] = r->g[1] = NULL;
}

/* Sides 0 and 1 of model m (size x size inputs, precision prec, reusing
 * activations as fd-train does) into r; counter (may be NULL) reads the
 * context's counter, opname (may be NULL) names the ops counted. 1 when
 * every step ran (each reported as a test), else 0. */
static __attribute__((unused)) int model_ab_run(const char *name, struct fd_model *m, int size,
						enum fd_precision prec, int *knob,
						uint64_t (*counter)(const struct fd_ctx *), const char *opname,
						struct model_ab *r)
{
	struct fd_err e = {{0}};
	enum { N = MODEL_AB_N };
	int64_t xs[4] = {N, 3, size, size}, ts[2] = {N, 3};
	size_t nx = (size_t)N * 3 * size * size;
	float *x = malloc(nx * sizeof *x), t[N * 3] = {1, 0, 1, 0, 0, 1};
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((double)((i * 2654435761u) % 1000) / 500.0 - 1.0);
	memset(r, 0, sizeof *r);
	r->ng = (size_t)m->p.ntrain;
	r->g[0] = malloc(r->ng * sizeof(float)), r->g[1] = malloc(r->ng * sizeof(float));
	int good = 1;
	for (int v = 0; v < 2 && good; v++) {
		struct fd_ctx c;
		ctx_open(&c, 2, 1);
		if (prec == FD_PREC_BF16)
			fd_ctx_set_precision(&c, FD_PREC_BF16, &e);
		c.reuse_activations = 1;
		*knob = !v;
		for (int s = 0; s < 2 && good; s++) {
			fd_ctx_step(&c);
			fd_params_zero_grad(&m->p);
			uint64_t c0 = counter ? counter(&c) : 0;
			struct fd_tensor *y = fd_keep_data(fd_model_forward(m, &c, fd_tensor_wrap(&c, FD_DEV_CPU, x, 4, xs)));
			int nops = 0;
			for (const struct fd_node *nd = c.tape; opname && nd; nd = nd->prev)
				nops += strstr(nd->op, opname) != NULL;
			struct fd_tensor *loss = fd_bce_with_logits(&c, y, fd_tensor_wrap(&c, FD_DEV_CPU, t, 2, ts));
			good = ok(loss && fd_backward(&c, loss, NULL) == 0, "%s %s: training step %d%s %s", name,
				  prec == FD_PREC_BF16 ? "bf16" : "fp32", s + 1, v ? " (on)" : " (off)", c.err.msg);
			if (good && s == 1) {
				memcpy(r->lg[v], y->data, sizeof r->lg[v]);
				memcpy(r->g[v], m->p.grad, r->ng * sizeof(float));
				r->peak[v] = c.arena.peak;
				r->count[v] = counter ? counter(&c) - c0 : 0;
				r->ops[v] = nops;
			}
		}
		for (int i = 0; i < m->nconvs; i++)
			fd_conv2d_op_free(m->convs[i]);
		fd_ctx_free(&c);
	}
	*knob = 0;
	free(x);
	return good;
}

/* Whether both sides gave the same logits and parameter gradients, bit for bit. */
static __attribute__((unused)) int model_ab_same(const struct model_ab *r)
{
	return !memcmp(r->lg[0], r->lg[1], sizeof r->lg[0]) && r->g[0] && r->g[1] &&
	       !memcmp(r->g[0], r->g[1], r->ng * sizeof(float));
}

#endif

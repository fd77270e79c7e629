/* model_ab.h: two training steps of a model with and without one of its
 * switches (an m->no_* field), for the tests that show a fused or handed-off
 * path gives the separate path's bits (t_nn_bf16out, t_nn_bf16dy,
 * t_nn_bnpool, t_nn_bnadd). Side 0 runs with *knob = 1 (the path off),
 * side 1 with *knob = 0; each keeps its second step's logits, parameter
 * gradients, training arena peak, the growth of a context counter and the
 * number of tape nodes whose op name contains a string. model_ab_rounding:
 * the same for a switch that rounds to bf16, against fp32's own movement. */
#ifndef MODEL_AB_H
#define MODEL_AB_H

#include "models/fd_model.h"
#include "nn/conv2d.h"
#include "nn/loss.h"
#include "nn_ctx.h"
#include "tap.h"

#include <math.h>

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

/* For a switch that rounds something to bf16 (so the bits change): one
 * training step each of m bf16 with *knob = 1, bf16 with *knob = 0, and
 * fp32, from the same weights (ConvNeXt's layer scales, 1e-6 at init,
 * which hide every block, set to 0.3-0.7 first), reported as tests: the
 * counter grows more on the bf16 side with the switch on than off (by want
 * more exactly when want > 0), the arena peak falls (amx: where every path runs bf16),
 * the logits and gradients move by no more than twice what fp32 against
 * bf16 training moves them (at batch 2 from a random init, BN amplifies
 * any rounding through the depth: bf16 itself moves ResNet-18's gradients
 * by half their norm), and they move (the control). what names the
 * rounded tensors. */
static __attribute__((unused)) void model_ab_rounding(const char *name, struct fd_model *m, int size, int *knob,
						      uint64_t (*counter)(const struct fd_ctx *), int want, int amx,
						      const char *what)
{
	struct fd_err e = {{0}};
	for (int i = 0; i < m->p.n; i++)
		if (strstr(m->p.v[i].name, "layer_scale"))
			for (int64_t k = 0; k < m->p.v[i].t.numel; k++)
				m->p.v[i].t.data[k] = 0.3f + 0.5f * (float)(k % 7) / 7.0f;
	enum { N = MODEL_AB_N };
	int64_t xs[4] = {N, 3, size, size}, ts[2] = {N, 3};
	size_t nx = (size_t)N * 3 * size * size, np = (size_t)m->p.ntrain;
	float *x = malloc(nx * sizeof *x), t[N * 3] = {1, 0, 1, 0, 0, 1}, lg[3][N * 3];
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((double)((i * 2654435761u) % 1000) / 500.0 - 1.0);
	float *g[3] = {malloc(np * sizeof(float)), malloc(np * sizeof(float)), malloc(np * sizeof(float))};
	uint64_t cnt[3] = {0, 0, 0};
	size_t peak[3] = {0, 0, 0};
	int good = 1;
	for (int v = 0; v < 3 && good; v++) {
		struct fd_ctx c;
		ctx_open(&c, 2, 1);
		if (v < 2)
			fd_ctx_set_precision(&c, FD_PREC_BF16, &e);
		c.reuse_activations = 1;
		*knob = !v;
		fd_ctx_step(&c);
		fd_params_zero_grad(&m->p);
		uint64_t c0 = counter(&c);
		struct fd_tensor *y = fd_keep_data(fd_model_forward(m, &c, fd_tensor_wrap(&c, FD_DEV_CPU, x, 4, xs)));
		struct fd_tensor *loss = fd_bce_with_logits(&c, y, fd_tensor_wrap(&c, FD_DEV_CPU, t, 2, ts));
		good = ok(loss && fd_backward(&c, loss, NULL) == 0, "%s: %s training step%s%s %s", name,
			  v < 2 ? "bf16" : "fp32", v == 1 ? " with bf16 " : "", v == 1 ? what : "", c.err.msg);
		if (good) {
			memcpy(lg[v], y->data, sizeof lg[v]);
			memcpy(g[v], m->p.grad, np * sizeof(float));
			cnt[v] = counter(&c) - c0;
			peak[v] = c.arena.peak;
		}
		for (int i = 0; i < m->nconvs; i++)
			fd_conv2d_op_free(m->convs[i]);
		fd_ctx_free(&c);
	}
	*knob = 0;
	if (good) {
		double lmax = 0, ldiff = 0, l32 = 0, gn = 0, gd = 0, g32 = 0;
		for (int i = 0; i < N * 3; i++) {
			lmax = fmax(lmax, fabs(lg[0][i]));
			ldiff = fmax(ldiff, fabs(lg[1][i] - lg[0][i]));
			l32 = fmax(l32, fabs(lg[2][i] - lg[0][i]));
		}
		for (size_t i = 0; i < np; i++) {
			gn += (double)g[0][i] * g[0][i];
			gd += ((double)g[1][i] - g[0][i]) * ((double)g[1][i] - g[0][i]);
			g32 += ((double)g[2][i] - g[0][i]) * ((double)g[2][i] - g[0][i]);
		}
		double grel = gn > 0 ? sqrt(gd / gn) : NAN, grel32 = gn > 0 ? sqrt(g32 / gn) : NAN;
		ok(cnt[1] > cnt[0] && (want <= 0 || cnt[1] - cnt[0] == (uint64_t)want) && (!amx || peak[1] < peak[0]),
		   "%s: %llu more tensors in bf16 with bf16 %s (%llu against %llu%s); arena peak %.1f MiB (%.1f "
		   "without)", name, (unsigned long long)(cnt[1] - cnt[0]), what, (unsigned long long)cnt[1],
		   (unsigned long long)cnt[0], want > 0 ? ", as expected" : "", peak[1] / 1048576.0,
		   peak[0] / 1048576.0);
		ok(ldiff <= 2 * l32 + 1e-6 * lmax && grel <= 2 * grel32,
		   "%s: with bf16 %s logits move %.4f, gradients %.4f relative (L2); fp32 against bf16 "
		   "training: %.4f, %.4f (max |logit| %.3f)", name, what, ldiff, grel, l32, grel32, lmax);
		ok(ldiff > 0 && gd > 0, "%s: control: the rounded %s change logits and gradients", name, what);
	}
	free(x), free(g[0]), free(g[1]), free(g[2]);
}

/* Whether both sides gave the same logits and parameter gradients, bit for bit. */
static __attribute__((unused)) int model_ab_same(const struct model_ab *r)
{
	return !memcmp(r->lg[0], r->lg[1], sizeof r->lg[0]) && r->g[0] && r->g[1] &&
	       !memcmp(r->g[0], r->g[1], r->ng * sizeof(float));
}

#endif

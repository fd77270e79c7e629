/* model_fused.h: the inference-fusion check shared by the model tests
 * (t_models, t_models_effmob, t_models_convnext): fused_eval. Include after
 * fixture.h. */
#ifndef FD_TEST_MODEL_FUSED_H
#define FD_TEST_MODEL_FUSED_H

#include "models/fd_model.h"
#include "nn/conv2d.h"
#include "nn/fd_params.h"

#include <math.h>

/* Case k's model with its weights loaded and its fixture file opened into
 * *s: 1, or 0 (a failure reported, nothing left open). */
static inline int fused_open(const struct fix_case *k, struct fd_model **m, struct fd_st *s)
{
	struct fd_err e = {{0}};
	char file[128];
	if (!ok(fd_model_new(k->name, 1, 42, m, &e) == 0, "%s: built %s", k->name, e.msg))
		return 0;
	if (!fix_model_load(*m, k)) {
		fd_model_free(*m);
		return 0;
	}
	snprintf(file, sizeof file, "%s_%d", k->name, k->size);
	fix_open(s, k->set, file);
	return 1;
}

/* Inference fusion (fd_mconv_bn_fwd, fd_mconv_bn_add_fwd, fd_mse_fwd;
 * ConvNeXt's fused blocks): an eval forward without gradients folds all
 * `want` conv-BN pairs (ConvNeXt: norm or layer scale into Linears),
 * `want_add` of them with the residual add (and ReLU) fused in (ResNet,
 * MBConv and ConvNeXt blocks), runs `want_se` squeeze-excitation blocks as
 * one kernel each, and its logits match torchvision's eval
 * logits (fix_atol, as the unfused check in fix_model_case); after a
 * folded weight bnw (a batchnorm's, a LayerNorm's, a layer scale) changes, the fused logits follow (they equal the unfused
 * path's, run with gradients on, within the same tolerance) and move away
 * from the old ones (negative control). */
static inline void fused_eval(struct fd_ctx *c, const struct fix_case *k, const char *bnw, int want,
				     int want_add, int want_se)
{
	struct fd_model *m;
	struct fd_st s;
	char file[128];
	if (!fused_open(k, &m, &s))
		return;
	c->training = 0;
	c->grad_enabled = 0;
	fd_ctx_step(c);
	struct fd_tensor *y = fd_model_forward(m, c, fix_get(c, &s, "x"));
	ok(y && m->nfused == want, "%s@%d: eval forward folded %d layers (m->nfused, want %d) %s", k->name, k->size,
	   m->nfused, want, y ? "" : c->err.msg);
	ok(y && m->nfused_add == want_add, "%s@%d: %d residual adds fused (want %d)", k->name, k->size,
	   m->nfused_add, want_add);
	ok(y && m->nfused_se == want_se, "%s@%d: %d squeeze-excitations fused (want %d)", k->name, k->size,
	   m->nfused_se, want_se);
	/* where fd's direct forward runs, the first convolution reads the
	 * NCHW image itself (dconv.h's image layer) */
	ok(y && m->img_nchw == fd_conv2d_direct_cpu(), "%s@%d: the image %s (fd_conv2d_direct_cpu %d)", k->name,
	   k->size, m->img_nchw ? "read as NCHW by the first convolution" : "transposed first",
	   fd_conv2d_direct_cpu());
	snprintf(file, sizeof file, "%s@%d fused eval logits", k->name, k->size);
	if (y)
		fix_close_ref(file, y->data, &s, "logits_eval", k->k32);
	float old[2] = {y ? y->data[0] : NAN, y ? y->data[1] : NAN};
	double atol = fix_atol(&s, "logits_eval", k->k32);
	struct fd_tensor *g = fd_params_find(&m->p, bnw);
	for (int64_t i = 0; g && i < g->numel; i++)
		g->data[i] *= 1.5f;
	fd_ctx_step(c);
	y = fd_model_forward(m, c, fix_get(c, &s, "x"));
	int fused = m->nfused, fused_add = m->nfused_add, fused_se = m->nfused_se;
	float a[2] = {y ? y->data[0] : NAN, y ? y->data[1] : NAN};
	c->grad_enabled = 1;
	fd_ctx_step(c);
	y = fd_model_forward(m, c, fix_get(c, &s, "x"));
	ok(g && y && fused == want && fused_add == want_add && fused_se == want_se && m->nfused == 0 &&
		   m->nfused_add == 0 && m->nfused_se == 0,
	   "%s@%d: %s x 1.5: fused again (%d, %d adds, %d SE), then unfused with gradients on (%d, %d, %d)",
	   k->name, k->size, bnw, fused, fused_add, fused_se, m->nfused, m->nfused_add, m->nfused_se);
	snprintf(file, sizeof file, "%s@%d fused logits after %s changed vs unfused", k->name, k->size, bnw);
	if (y)
		tap_close_f32(file, a, y->data, 2, 2 * atol, 1e-4);
	double moved = fmax(fabs(a[0] - old[0]), fabs(a[1] - old[1]));
	ok(moved > 10 * atol, "%s@%d control: the fused logits moved by %.3g (> 10 x tol %.3g) with the weight",
	   k->name, k->size, moved, atol);
	fd_ctx_step(c);
	c->training = 1;
	fd_st_close(&s);
	fd_model_free(m);
}

/* The same fused inference in a bf16 context (cb: precision bf16): all
 * `want_add` residual adds fused (fd_conv2d_infer_add on the bf16 plans),
 * the logits within bf16's accuracy of torchvision's fp32 eval logits
 * (rel: a fraction of the logits' largest magnitude) and of fd's own bf16
 * forward with gradients on (the taped ops, no add fused). Control: the
 * weight bnw x 1.5 moves the logits by more than twice the tolerance. */
static inline void fused_eval_bf16(struct fd_ctx *cb, const struct fix_case *k, const char *bnw, int want_add,
				   double rel)
{
	struct fd_model *m;
	struct fd_st s;
	if (!fused_open(k, &m, &s))
		return;
	const struct fd_st_tensor *r = fix_raw(&s, "logits_eval", FD_DT_F32);
	const float *ref = r->data;
	size_t n = (size_t)r->numel;
	double big = 0;
	for (size_t i = 0; i < n; i++)
		big = fmax(big, fabs(ref[i]));
	double tol = rel * big;
	cb->training = 0;
	cb->grad_enabled = 0;
	fd_ctx_step(cb);
	struct fd_tensor *y = fd_model_forward(m, cb, fix_get(cb, &s, "x"));
	float *fused = malloc(n * sizeof *fused);
	int good = y != NULL;
	if (good)
		memcpy(fused, y->data, n * sizeof *fused);
	ok(good && m->nfused_add == want_add, "%s@%d bf16: %d residual adds fused (want %d) %s", k->name, k->size,
	   m->nfused_add, want_add, good ? "" : cb->err.msg);
	double d_ref = 0, d_taped = 0, moved = 0;
	for (size_t i = 0; good && i < n; i++)
		d_ref = fmax(d_ref, fabs((double)fused[i] - ref[i]));
	cb->grad_enabled = 1;
	fd_ctx_step(cb);
	y = fd_model_forward(m, cb, fix_get(cb, &s, "x"));
	good = good && y && m->nfused_add == 0;
	for (size_t i = 0; good && i < n; i++)
		d_taped = fmax(d_taped, fabs((double)fused[i] - y->data[i]));
	ok(good && d_ref <= tol && d_taped <= tol,
	   "%s@%d bf16 fused eval logits: %.3g from torchvision's fp32, %.3g from fd's taped bf16 forward (tol %.3g)",
	   k->name, k->size, d_ref, d_taped, tol);
	struct fd_tensor *g = fd_params_find(&m->p, bnw);
	for (int64_t i = 0; g && i < g->numel; i++)
		g->data[i] *= 1.5f;
	cb->grad_enabled = 0;
	fd_ctx_step(cb);
	y = fd_model_forward(m, cb, fix_get(cb, &s, "x"));
	for (size_t i = 0; y && i < n; i++)
		moved = fmax(moved, fabs((double)fused[i] - y->data[i]));
	ok(g && y && moved > 2 * tol, "%s@%d bf16 control: %s x 1.5 moves the logits by %.3g (> 2 x tol)", k->name,
	   k->size, bnw, moved);
	fd_ctx_step(cb);
	cb->training = 1;
	cb->grad_enabled = 1;
	free(fused);
	fd_st_close(&s);
	fd_model_free(m);
}

#endif

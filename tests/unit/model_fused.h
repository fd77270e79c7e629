/* model_fused.h: the inference-fusion check shared by the model tests
 * (t_models, t_models_effmob, t_models_convnext): fused_eval. Include after
 * fixture.h. */
#ifndef FD_TEST_MODEL_FUSED_H
#define FD_TEST_MODEL_FUSED_H

#include "models/fd_model.h"
#include "nn/fd_params.h"

#include <math.h>

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
	struct fd_err e = {{0}};
	struct fd_model *m;
	struct fd_st s;
	char file[128];
	if (!ok(fd_model_new(k->name, 1, 42, &m, &e) == 0, "%s: built %s", k->name, e.msg))
		return;
	if (!fix_model_load(m, k)) {
		fd_model_free(m);
		return;
	}
	snprintf(file, sizeof file, "%s_%d", k->name, k->size);
	fix_open(&s, k->set, file);
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

#endif

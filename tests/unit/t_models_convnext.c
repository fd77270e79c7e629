/* t_models_convnext: convnext_tiny and convnext_mini against torchvision 0.14
 * (tests/ref/models_convnext.py, float64 references): convnext_tiny's
 * parameter count, state_dict names and shapes (strict load of torch's state
 * dict), MACs and eval logits; convnext_mini's eval and train logits, the BCE
 * loss, every named gradient and 5 AdamW steps; stochastic depth semantics;
 * initialisation; the fused inference blocks (model_fused.h). */
#include "models/fd_model.h"
#include "fixture.h"
#include "model_fused.h"
#include "nn_ctx.h"

#include <math.h>

/* Tolerances (fixture.h's fix_atol with k32 0): atol = 1e-4 x the tensor's
 * RMS + 1e-7, rtol 1e-4; the AdamW losses 1e-5 + 1e-4 relative. ConvNeXt has
 * no batch statistics, so rounding is not amplified as in the ResNets'
 * train-mode batchnorm over a few values: torch's own float32 run stays
 * within about 3e-6 of each tensor's largest value, and a wrong op gives
 * errors of the order of the values themselves. Torch's float32 error does
 * not scale the tolerance (as t_models does) because its LayerNorm backward
 * is unreliable here (see the reference script). */
static const struct fix_case k_tiny = {"models_convnext", "convnext_tiny", 64, 0, NULL, NULL};
static const struct fix_case k_mini = {"models_convnext", "convnext_mini", 64, 0, "features.7.0.block.3.weight",
					 NULL};

static struct fd_model *built(const struct fd_model_arch *a, const struct fd_st *counts)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	if (!ok(fd_model_new_arch(a, 1, 42, &m, &e) == 0, "%s: built %s", a->name, e.msg))
		return NULL;
	int64_t want;
	memcpy(&want, fix_raw(counts, a->name, FD_DT_I64)->data, sizeof want);
	ok(fd_model_params(m) == want, "%s: %lld parameters (torchvision %lld)", a->name,
	   (long long)fd_model_params(m), (long long)want);
	return m;
}

static struct fd_tensor *eval_logits(struct fd_ctx *c, struct fd_model *m, const struct fd_st *s)
{
	fd_ctx_step(c);
	c->training = 0;
	c->grad_enabled = 0;
	struct fd_tensor *y = fd_model_forward(m, c, fix_get(c, s, "x"));
	c->training = 1;
	c->grad_enabled = 1;
	return y;
}

static void tiny(struct fd_ctx *c, const struct fd_st *counts)
{
	struct fd_model *m = built(&fd_arch_convnext_tiny, counts);
	struct fd_st s;
	if (!m)
		return;
	fix_model_load(m, &k_tiny);
	fix_open(&s, k_tiny.set, "convnext_tiny_64");
	struct fd_tensor *y = eval_logits(c, m, &s);
	if (ok(y != NULL, "convnext_tiny@64: eval forward %s", c->err.msg))
		fix_close_ref("convnext_tiny@64 eval logits", y->data, &s, "logits_eval", 0);
	/* names in torch's state_dict order, spot checks of the Linear-as-1x1 views */
	ok(!strcmp(m->p.v[4].name, "features.1.0.layer_scale") && m->p.v[4].t.ndim == 3 &&
	   m->p.v[4].t.shape[0] == 96 && !strcmp(m->p.v[9].name, "features.1.0.block.3.weight") &&
	   m->p.v[9].t.ndim == 2 && m->p.v[9].t.shape[0] == 384 && m->p.v[9].t.shape[1] == 96 &&
	   !strcmp(m->p.v[m->p.n - 1].name, "classifier.2.bias"),
	   "convnext_tiny: names and shapes in torch's order (%s, %s [384,96], ..., %s)", m->p.v[4].name,
	   m->p.v[9].name, m->p.v[m->p.n - 1].name);
	fd_st_close(&s);
	fd_model_free(m);
}

/* eval and train logits, loss, every gradient, 5 AdamW steps (fixture.h) */
static void mini(struct fd_ctx *c, const struct fd_st *counts)
{
	struct fd_model *m = built(&fd_arch_convnext_mini, counts);
	if (!m)
		return;
	fix_model_case(c, m, &k_mini);
	fd_model_free(m);
}

/* fd_model_new's initialisation is torchvision's: conv and linear weights
 * trunc_normal_(std 0.02) within torch's absolute bounds [-2, 2], biases 0,
 * LayerNorm 1 / 0, layer_scale 1e-6 */
static void init_check(void)
{
	struct fd_model *m;
	struct fd_err e = {{0}};
	if (!ok(fd_model_new("convnext_tiny", 1, 11, &m, &e) == 0, "convnext_tiny by name %s", e.msg))
		return;
	int bad = 0, nw = 0;
	double s2 = 0, n = 0;
	for (int i = 0; i < m->p.n; i++) {
		const struct fd_pview *v = &m->p.v[i];
		const float *d = v->t.data;
		const char *dot = strrchr(v->name, '.');
		int is_ln = strstr(v->name, "block.2.") || !strncmp(v->name, "features.0.1.", 13) ||
			    !strncmp(v->name, "classifier.0.", 13) ||
			    (!strncmp(v->name, "features.", 9) && v->name[9] % 2 == 0 && v->name[9] != '0' &&
			     !strncmp(v->name + 10, ".0.", 3));
		for (int64_t j = 0; j < v->t.numel; j++) {
			if (!strcmp(dot, ".layer_scale"))
				bad += d[j] != 1e-6f;
			else if (!strcmp(dot, ".bias"))
				bad += d[j] != 0.0f;
			else if (is_ln)
				bad += d[j] != 1.0f;
			else {
				bad += fabsf(d[j]) > 2.0f;
				s2 += (double)d[j] * d[j];
				n++;
			}
		}
		nw += !is_ln && !strcmp(dot, ".weight");
	}
	double sd = sqrt(s2 / n);
	ok(!bad && nw == 1 + 18 * 3 + 3 + 1 && fabs(sd - 0.02) < 2e-4,
	   "convnext_tiny init: %d conv/linear weights, std %.5f (0.02), %d values off (biases 0, LayerNorm 1/0, layer "
	   "scale 1e-6)", nw, sd, bad);
	fd_model_free(m);
}

/* Stochastic depth in train mode cannot be compared with torch (its masks
 * come from torch's generator): check that it is active (the logits change
 * from step to step: rows dropped, survivors scaled by 1 / (1 - p)),
 * deterministic for a step (same seed and step, same logits) and gone in eval
 * mode. */
static void sd_check(struct fd_ctx *c)
{
	struct fd_model *m;
	struct fd_err e = {{0}};
	struct fd_st s;
	char p[900];
	if (fd_model_new_arch(&fd_arch_convnext_mini, 1, 1, &m, &e) < 0)
		return;
	fix_path(p, sizeof p, k_mini.set, "convnext_mini_64_w.safetensors");
	fd_model_load(m, p, NULL, 0, &e);
	fix_open(&s, k_mini.set, "convnext_mini_64");
	const float *ref = fix_raw(&s, "logits_train", FD_DT_F32)->data;
	enum { STEPS = 8 };
	float seen[STEPS][2];
	int distinct = 0, same_again = 1, all_ran = 1;
	c->grad_enabled = 0;
	for (int k = 0; k < STEPS; k++) {
		fd_ctx_step(c);
		uint64_t step = c->step;
		struct fd_tensor *y = fd_model_forward(m, c, fix_get(c, &s, "x"));
		if (!y) {
			all_ran = 0;
			break;
		}
		float y0 = y->data[0], y1 = y->data[1];
		int newone = 1;
		for (int j = 0; j < distinct; j++)
			newone &= seen[j][0] != y0 || seen[j][1] != y1;
		if (newone) {
			seen[distinct][0] = y0;
			seen[distinct][1] = y1;
			distinct++;
		}
		c->step = step; /* replay the step */
		c->rng_calls = 0;
		y = fd_model_forward(m, c, fix_get(c, &s, "x"));
		same_again &= y && y->data[0] == y0 && y->data[1] == y1;
	}
	ok(all_ran && distinct > 1 && same_again,
	   "convnext_mini train mode: stochastic depth gave %d distinct logit pairs in %d steps, replays identical %s",
	   distinct, STEPS, c->err.msg);
	struct fd_tensor *y = eval_logits(c, m, &s);
	ok(y && fabsf(y->data[0] - ref[0]) < 1e-5f && fabsf(y->data[1] - ref[1]) < 1e-5f,
	   "convnext_mini eval mode: no stochastic depth");
	c->grad_enabled = 1;
	fd_st_close(&s);
	fd_model_free(m);
}

int main(void)
{
	struct fd_ctx c;
	struct fd_err e = {{0}};
	struct fd_st counts;
	ctx_open(&c, 2, 3);
	fix_open(&counts, "models_convnext", "counts");
	tiny(&c, &counts);
	/* the fused inference blocks (18: 36 Linears folded, 18 residual adds
	 * as sum post-ops); controls: a block's LayerNorm weight (folded into
	 * pw1) and another's layer scale (folded into pw2) x 1.5 */
	fused_eval(&c, &k_tiny, "features.3.1.block.2.weight", 36, 18, 0);
	fused_eval(&c, &k_tiny, "features.5.7.layer_scale", 36, 18, 0);
	{ /* the same blocks in bf16 (where the CPU has it) */
		struct fd_ctx cb;
		ctx_open(&cb, 2, 3);
		if (fd_ctx_set_precision(&cb, FD_PREC_BF16, &e) == 0) {
			fused_eval_bf16(&cb, &k_tiny, "features.3.1.block.2.weight", 18, 0.02);
			fused_eval_bf16(&cb, &k_tiny, "features.5.7.layer_scale", 18, 0.02);
		} else {
			diag("no bf16 on this CPU (%s): bf16 fused inference not checked", e.msg);
		}
		fd_ctx_free(&cb);
	}
	mini(&c, &counts);
	sd_check(&c);
	init_check();
	struct fd_model *m;
	uint64_t macs = 0;
	int64_t want;
	memcpy(&want, fix_raw(&counts, "macs224.convnext_tiny", FD_DT_I64)->data, sizeof want);
	if (fd_model_new("convnext_tiny", 1000, 1, &m, &e) == 0) {
		int rc = fd_model_macs(m, 224, &macs, &e);
		ok(rc == 0 && (int64_t)macs == want,
		   "convnext_tiny MACs at 224: %llu (torchvision, counted by hooks: %lld)", (unsigned long long)macs,
		   (long long)want);
		fd_model_free(m);
	}
	fd_st_close(&counts);
	fd_ctx_free(&c);
	return tap_done();
}

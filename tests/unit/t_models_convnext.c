/* t_models_convnext: convnext_tiny and convnext_mini against torchvision 0.14
 * (tests/ref/models_convnext.py, float64 references): convnext_tiny's
 * parameter count, state_dict names and shapes (strict load of torch's state
 * dict), MACs and eval logits; convnext_mini's eval and train logits, the BCE
 * loss, every named gradient and 5 AdamW steps; stochastic depth semantics;
 * initialisation. */
#include "models/fd_model.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn_fix.h"
#include "nn_ctx.h"

#include <math.h>

static char dir[512];

static void open_fix(struct fd_st *s, const char *name)
{
	char p[700];
	struct fd_err e = {{0}};
	snprintf(p, sizeof p, "%s/%s", dir, name);
	if (fd_st_open(s, p, &e) < 0) {
		printf("Bail out! cannot open fixture: %s\n", e.msg);
		exit(1);
	}
}

static double rms(const struct fd_st_tensor *t)
{
	const float *r = t->data;
	double s = 0;
	for (int64_t i = 0; i < t->numel; i++)
		s += (double)r[i] * r[i];
	return t->numel ? sqrt(s / (double)t->numel) : 0;
}

/* Tolerance of reference tensor `key` (torch float64 vs fd float32):
 * atol = 1e-4 x the tensor's RMS + 1e-7, rtol 1e-4. ConvNeXt has no batch
 * statistics, so rounding is not amplified as in the ResNets' train-mode
 * batchnorm over a few values: torch's own float32 run stays within about
 * 3e-6 of each tensor's largest value (err32.KEY, printed as a diagnostic),
 * and a wrong op gives errors of the order of the values themselves. Torch's
 * float32 error does not scale the tolerance (as t_models does) because its
 * LayerNorm backward is unreliable here (see the reference script). */
static double atol_of(const struct fd_st *s, const char *key)
{
	return 1e-4 * rms(fix_raw(s, key, FD_DT_F32)) + 1e-7;
}

static int close_ref(const char *what, const float *a, const struct fd_st *s, const char *key)
{
	const struct fd_st_tensor *r = fix_raw(s, key, FD_DT_F32);
	char k[300];
	snprintf(k, sizeof k, "err32.%s", key);
	diag("%s: torch float32 off by %.2g (RMS %.3g)", what, ((const float *)fix_raw(s, k, FD_DT_F32)->data)[0],
	     rms(r));
	return tap_close_f32(what, a, r->data, (size_t)r->numel, atol_of(s, key), 1e-4);
}

static struct fd_model *load_model(const struct fd_model_arch *a, int size, const struct fd_st *counts)
{
	char p[700], note[512] = "x";
	struct fd_err e = {{0}};
	struct fd_model *m;
	if (!ok(fd_model_new_arch(a, 1, 42, &m, &e) == 0, "%s: built %s", a->name, e.msg))
		return NULL;
	int64_t want;
	memcpy(&want, fix_raw(counts, a->name, FD_DT_I64)->data, sizeof want);
	ok(fd_model_params(m) == want, "%s: %lld parameters (torchvision %lld)", a->name,
	   (long long)fd_model_params(m), (long long)want);
	snprintf(p, sizeof p, "%s/%s_%d_w.safetensors", dir, a->name, size);
	/* strict: every state_dict name and shape of torch's model, nothing else */
	ok(fd_model_load(m, p, note, sizeof note, &e) == 0 && !note[0], "%s@%d: torch state dict loaded strictly %s",
	   a->name, size, e.msg);
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
	struct fd_model *m = load_model(&fd_arch_convnext_tiny, 64, counts);
	struct fd_st s;
	if (!m)
		return;
	open_fix(&s, "convnext_tiny_64.safetensors");
	struct fd_tensor *y = eval_logits(c, m, &s);
	if (ok(y != NULL, "convnext_tiny@64: eval forward %s", c->err.msg))
		close_ref("convnext_tiny@64 eval logits", y->data, &s, "logits_eval");
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

static void mini(struct fd_ctx *c, const struct fd_st *counts)
{
	struct fd_model *m = load_model(&fd_arch_convnext_mini, 64, counts);
	struct fd_st s;
	struct fd_err e = {{0}};
	char pw[700];
	if (!m)
		return;
	open_fix(&s, "convnext_mini_64.safetensors");
	struct fd_tensor *y = eval_logits(c, m, &s);
	if (ok(y != NULL, "convnext_mini@64: eval forward %s", c->err.msg))
		close_ref("convnext_mini@64 eval logits", y->data, &s, "logits_eval");

	/* train mode, stochastic depth off (torch: every StochasticDepth p = 0) */
	fd_ctx_step(c);
	c->dropout_off = 1;
	fd_params_zero_grad(&m->p);
	y = fd_model_forward(m, c, fix_get(c, &s, "x"));
	struct fd_tensor *loss = fd_bce_with_logits(c, y, fix_get(c, &s, "t"));
	if (!ok(loss && fd_backward(c, loss, NULL) == 0, "convnext_mini@64: train forward, backward %s", c->err.msg))
		goto out;
	close_ref("convnext_mini@64 train logits", y->data, &s, "logits_train");
	close_ref("convnext_mini@64 loss", loss->data, &s, "loss");
	double worst = 0, worst32 = 0;
	const char *wname = "";
	int bad = 0, ng = 0;
	for (int i = 0; i < m->p.n; i++) {
		struct fd_pview *v = &m->p.v[i];
		char key[300], k32[320];
		if (v->kind != FD_P_PARAM)
			continue;
		snprintf(key, sizeof key, "grad.%s", v->name);
		snprintf(k32, sizeof k32, "err32.%s", key);
		const struct fd_st_tensor *r = fix_raw(&s, key, FD_DT_F32);
		const float *rd = r->data;
		double atol = atol_of(&s, key), rtol = 1e-4, m32 = 0;
		for (int64_t j = 0; j < r->numel; j++)
			m32 = fmax(m32, fabs(rd[j]));
		m32 = ((const float *)fix_raw(&s, k32, FD_DT_F32)->data)[0] / (m32 > 0 ? m32 : 1);
		if (m32 > worst32)
			worst32 = m32;
		ng++;
		if (r->numel != v->t.numel) {
			ok(0, "%s: %lld values, reference %lld", key, (long long)v->t.numel, (long long)r->numel);
			continue;
		}
		for (int64_t j = 0; j < r->numel; j++) {
			double share = fabs((double)v->t.grad[j] - rd[j]) / (atol + rtol * fabs(rd[j]));
			if (!(share <= 1) && !bad++)
				diag("%s[%lld]: %g vs %g", key, (long long)j, v->t.grad[j], rd[j]);
			if (share > worst || share != share) {
				worst = share;
				wname = v->name;
			}
		}
	}
	diag("torch float32's worst gradient error: %.2g of the tensor's largest value", worst32);
	ok(!bad, "convnext_mini@64: %d gradients, worst %.3f of tol (%s)", ng, worst, wname);

	/* 5 AdamW steps from torch's weights */
	struct fd_optim o;
	snprintf(pw, sizeof pw, "%s/convnext_mini_64_w.safetensors", dir);
	if (fd_model_load(m, pw, NULL, 0, &e) < 0 || fd_optim_adamw(&o, &m->p, 1e-3, 0.9, 0.999, 1e-8, 1e-2, &e) < 0) {
		ok(0, "convnext_mini: reload and optimizer %s", e.msg);
		goto out;
	}
	const float *ref = fix_raw(&s, "losses", FD_DT_F32)->data;
	const float *e32 = fix_raw(&s, "err32.losses", FD_DT_F32)->data;
	worst = 0;
	int steps = 0;
	for (int step = 0; step < 5; step++, steps++) {
		fd_ctx_step(c);
		fd_params_zero_grad(&m->p);
		loss = fd_bce_with_logits(c, fd_model_forward(m, c, fix_get(c, &s, "x")), fix_get(c, &s, "t"));
		if (!loss || fd_backward(c, loss, NULL) < 0 || fd_optim_step(&o, &m->p, &e) < 0)
			break;
		/* AdamW's first steps move each weight by about lr x sign(grad), so
		 * gradient rounding differences show in later losses: 1e-5 + 1e-4 rel */
		double share = fabs(loss->data[0] - ref[step]) / (1e-5 + 1e-4 * fabs(ref[step]));
		diag("convnext_mini step %d: loss %.7f torch64 %.7f (torch32 off by %.2g)", step, loss->data[0], ref[step],
		     e32[step]);
		if (share > worst || share != share)
			worst = share;
	}
	ok(steps == 5 && worst <= 1, "convnext_mini@64: 5 AdamW losses, worst %.3f of tol (1e-5 + 1e-4 rel) %s", worst,
	   c->err.msg);
	fd_optim_free(&o);
out:
	c->dropout_off = 0;
	fd_st_close(&s);
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
	char p[700];
	if (fd_model_new_arch(&fd_arch_convnext_mini, 1, 1, &m, &e) < 0)
		return;
	snprintf(p, sizeof p, "%s/convnext_mini_64_w.safetensors", dir);
	fd_model_load(m, p, NULL, 0, &e);
	open_fix(&s, "convnext_mini_64.safetensors");
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
	const char *b = getenv("FD_BUILD");
	snprintf(dir, sizeof dir, "%s/ref/models_convnext", b && *b ? b : "build");
	struct fd_ctx c;
	struct fd_err e = {{0}};
	struct fd_st counts;
	ctx_open(&c, 2, 3);
	open_fix(&counts, "counts.safetensors");
	tiny(&c, &counts);
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

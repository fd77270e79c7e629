/* t_models: every model of lib/models against torchvision (tests/ref/models.py):
 * parameter counts, weights loaded from a torch state dict, eval and train
 * logits, the BCE loss, every named gradient (also with eval-mode batchnorm
 * for the deep cases), running statistics, 5 AdamW steps, negative controls
 * (fixture.h's fix_model_case; ResNet's train mode against torch's float64
 * run with fd's ReLU decisions where they differ within rounding of zero,
 * model_relumask.h); checkpoint round trip; a 1000-class .pth into a 1-logit
 * model. */
#include "io/fd_pth.h"
#include "models/fd_model.h"
#include "fixture.h"
#include "model_fused.h"
#include "nn_ctx.h"

#include <math.h>
#include <unistd.h>

/* Tolerances (doc/models.md, "Conformance"): fd runs float32 against torch's
 * float64 result through 20-50 layers with train-mode batchnorm on batches of
 * 2, which amplify rounding (torch's own float32 runs are off by 4% on
 * resnet34's conv1 gradient, and its two CPU conv paths differ 40x in error on
 * resnet50's layer1.0.bn3.weight gradient), so atol = 4 x torch's own float32
 * error on each tensor + 1e-4 x its RMS, rtol 1e-4 (fixture.h, fix_atol).
 * Deep nets' train-mode batchnorm over a few values per channel makes that
 * tolerance reach 11x a gradient's RMS (resnet34), so resnet34/50 (and
 * resnet18@224) are checked with batchnorm in eval mode too, where the
 * loosest tolerance is 2.4e-3x RMS; simplecnn and resnet18@64 are the
 * well-conditioned train-mode checks (2e-4x, 3e-3x). Each case prints its
 * loosest tolerance; negative controls scale one gradient by 1.01. */
static void run_case(struct fd_ctx *c, const struct fix_case *k, const struct fd_st *counts)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	if (!ok(fd_model_new(k->name, 1, 42, &m, &e) == 0, "%s: built %s", k->name, e.msg))
		return;
	int64_t want;
	memcpy(&want, fix_raw(counts, k->name, FD_DT_I64)->data, sizeof want);
	ok(fd_model_params(m) == want, "%s: %lld parameters (torchvision %lld)", k->name,
	   (long long)fd_model_params(m), (long long)want);
	fix_model_case(c, m, k);
	fd_model_free(m);
}

/* save -> load into a fresh model: every view equal */
static void round_trip(void)
{
	struct fd_model *a, *b;
	struct fd_err e = {{0}};
	char tmp[] = "/tmp/fd_t_models_XXXXXX", path[600];
	if (!mkdtemp(tmp)) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof path, "%s/m.safetensors", tmp);
	fd_model_new("resnet18", 3, 1, &a, &e);
	fd_model_new("resnet18", 3, 2, &b, &e);
	fd_model_t(a, 2)->data[0] = 7; /* bn1.bias */
	const char *meta[] = {"fd.epoch", "4", NULL};
	ok(fd_model_save(a, path, meta, &e) == 0, "round trip: saved %s", e.msg);
	char note[256];
	ok(fd_model_load(b, path, note, sizeof note, &e) == 0 && !note[0], "round trip: loaded %s", e.msg);
	ok(!memcmp(a->p.data, b->p.data, (size_t)a->p.ntotal * sizeof(float)), "round trip: all views equal");
	struct fd_model *r34;
	fd_model_new("resnet34", 3, 1, &r34, &e);
	ok(fd_model_load(r34, path, NULL, 0, &e) < 0 && strstr(e.msg, "resnet18 checkpoint"),
	   "resnet18 checkpoint refused by resnet34: %s", e.msg);
	fd_model_free(r34);
	unlink(path);
	rmdir(tmp);
	fd_model_free(a);
	fd_model_free(b);
}

/* a torchvision 1000-class .pth into a 1-logit resnet18 */
static void head_swap(void)
{
	struct fd_model *m, *ref;
	struct fd_err e = {{0}};
	char p[700], note[512];
	fix_path(p, sizeof p, "models", "resnet18_1000.pth");
	fd_model_new("resnet18", 1, 5, &m, &e);
	fd_model_new("resnet18", 1, 5, &ref, &e); /* same seed: the head it should keep */
	if (!ok(fd_model_load(m, p, note, sizeof note, &e) == 0, "head swap: loaded %s", e.msg))
		goto out;
	diag("note: %s", note);
	ok(strstr(note, "fc.weight is [1000,512]") && strstr(note, "head (fc.weight, fc.bias) freshly initialised"),
	   "head swap: the note says so");
	struct fd_pth pth;
	fd_pth_load(&pth, p, &e);
	int same = 1;
	for (int i = 0; i < m->p.n; i++) {
		struct fd_pview *v = &m->p.v[i];
		const struct fd_pth_tensor *t = fd_pth_find(&pth, v->name);
		if (!strncmp(v->name, "fc.", 3)) {
			same &= !memcmp(v->t.data, fd_model_t(ref, i)->data, (size_t)v->t.numel * sizeof(float));
			continue;
		}
		if (v->kind == FD_P_COUNTER)
			continue;
		same &= t && !memcmp(v->t.data, t->data, (size_t)v->t.numel * sizeof(float));
	}
	ok(same, "head swap: backbone equals the file, head equals a fresh init");
	fd_pth_free(&pth);
	/* the same file into simplecnn: refused, naming what is wrong */
	struct fd_model *s;
	fd_model_new("simplecnn", 1, 1, &s, &e);
	ok(fd_model_load(s, p, NULL, 0, &e) < 0 && strstr(e.msg, "missing features.0.weight") &&
	   strstr(e.msg, "extra conv1.weight"), "wrong model refused: %.120s...", e.msg);
	fd_model_free(s);
out:
	fd_model_free(m);
	fd_model_free(ref);
}

/* Winograd (c->winograd, doc/nn-kernels.md "Winograd"): its F(4x4, 3x3)
 * rounds differently from the direct convolution (2-4x the direct
 * algorithm's error against float64 per layer on ResNet's shapes), so it is
 * checked with k32 = 16 rather than 4: eval logits, and every gradient with
 * batchnorm in eval mode where the fixture has them (the deep cases), else in
 * train mode; not the 5 AdamW steps, whose losses follow the rounding of
 * near-zero gradients (Adam scales each to a full step). The share of the
 * forward's multiply-adds run by Winograd plans must reach min_share (above
 * zero: the check would otherwise test the direct path). */
static void wino_case(struct fd_ctx *c, const struct fix_case *k, double min_share)
{
	char file[300], nm[400];
	struct fd_err e = {{0}};
	struct fd_model *m;
	struct fd_st s;
	struct fd_tensor *y;
	if (!ok(fd_model_new(k->name, 1, 42, &m, &e) == 0, "%s: built %s", k->name, e.msg) || !fix_model_load(m, k))
		return;
	snprintf(file, sizeof file, "%s_%d", k->name, k->size);
	fix_open(&s, k->set, file);
	int bn_eval = fd_st_find(&s, "eloss") != NULL;
	c->winograd = 1;
	fd_ctx_step(c);
	c->macs = c->wino_macs = 0;
	c->training = 0;
	c->grad_enabled = 0;
	y = fd_model_forward(m, c, fix_get(c, &s, "x"));
	double share = c->macs ? (double)c->wino_macs / c->macs : 0;
	ok(y && share >= min_share, "%s@%d winograd: %.0f%% of the forward's multiply-adds on Winograd (want >= %.0f%%) %s",
	   k->name, k->size, 100 * share, 100 * min_share, c->err.msg);
	snprintf(nm, sizeof nm, "%s@%d winograd eval logits", k->name, k->size);
	if (y)
		fix_close_ref(nm, y->data, &s, "logits_eval", k->k32);
	c->grad_enabled = 1;
	c->training = !bn_eval;
	c->dropout_off = 1;
	struct fix_relu *relu = k->relu;
	struct fd_tensor *loss = fix_model_loss(c, m, &s, &y, relu);
	if (ok(loss != NULL, "%s@%d winograd: forward, backward %s", k->name, k->size, c->err.msg)) {
		/* against float64 with fd's ReLU decisions where they differ
		 * from float64's (fix_relu_ref, as the direct check) */
		struct fd_st mref = {0};
		const struct fd_st *vals = relu ? fix_relu_ref(k, &s, &mref, bn_eval) : &s;
		snprintf(nm, sizeof nm, "%s@%d winograd %s loss", k->name, k->size, bn_eval ? "eval-mode" : "train");
		fix_close_ref_in(nm, loss->data, &s, vals, bn_eval ? "eloss" : "loss", k->k32);
		snprintf(nm, sizeof nm, "%s@%d winograd %s", k->name, k->size,
			 bn_eval ? "eval-mode batchnorm" : "train mode");
		fix_model_grads(nm, m, &s, vals == &s ? NULL : vals, bn_eval ? "egrad" : "grad", !bn_eval, k);
		if (vals != &s)
			fd_st_close(&mref);
	}
	c->winograd = 0;
	c->training = 1;
	c->dropout_off = 0;
	fd_st_close(&s);
	fd_model_free(m);
}

int main(void)
{
	struct fd_ctx c;
	struct fd_err e = {{0}};
	struct fd_st counts;
	static struct fix_relu relu;
	ctx_open(&c, 2, 3);
	fix_open(&counts, "models", "counts");
	/* ResNet's train-mode checks: the reference takes fd's ReLU decisions
	 * (model_relumask.h); started first, so its import of torch overlaps */
	if (!ok(fix_relu_start(&relu) == 0, "started /usr/bin/python3 %s", FIX_RELU_SCRIPT))
		return tap_done();
	/* negative controls: a gradient off by 1% fails the well-conditioned checks */
	static const struct fix_case cases[] = {
		{"models", "simplecnn", 64, 4, NULL, NULL},
		{"models", "resnet18", 64, 4, "layer4.1.conv1.weight", &relu},
		{"models", "resnet18", 224, 4, "layer4.1.conv1.weight", &relu},
		{"models", "resnet34", 64, 4, "layer4.1.conv1.weight", &relu},
		{"models", "resnet50", 64, 4, "layer4.1.conv1.weight", &relu},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&c, &cases[i], &counts);
	/* ResNet: every block's last conv-BN takes the residual add and ReLU
	 * (torchvision: 8 BasicBlocks in ResNet-18, 16 Bottlenecks in ResNet-50);
	 * the batchnorm changed is such a conv's: layer1.0's identity is the
	 * block's input itself (overwritten), layer4.2's a plain one */
	fused_eval(&c, &cases[0], "features.1.weight", 4, 0, 0);
	fused_eval(&c, &cases[1], "layer1.0.bn2.weight", 20, 8, 0);
	fused_eval(&c, &cases[4], "layer4.2.bn3.weight", 53, 16, 0);
	{ /* the same in bf16 (where the CPU has it) */
		struct fd_ctx cb;
		struct fd_err e = {{0}};
		ctx_open(&cb, 2, 1);
		if (fd_ctx_set_precision(&cb, FD_PREC_BF16, &e) == 0) {
			fused_eval_bf16(&cb, &cases[1], "layer1.0.bn2.weight", 8, 0.02);
			fused_eval_bf16(&cb, &cases[4], "layer4.2.bn3.weight", 16, 0.02);
		} else {
			diag("no bf16 on this CPU (%s): bf16 fused inference not checked", e.msg);
		}
		fd_ctx_free(&cb);
	}
	/* Winograd plans: oneDNN's (2.x on AVX-512) or fd's own (elsewhere) */
	diag("Winograd here: %s", fd_conv2d_winograd_available() ? "oneDNN's" : "fd's own (lib/nn/wino.h)");
	wino_case(&c, &(struct fix_case){"models", "simplecnn", 64, 16, NULL, NULL}, 0.9);
	wino_case(&c, &(struct fix_case){"models", "resnet18", 64, 16, "layer4.1.conv1.weight", &relu}, 0.8);
	wino_case(&c, &(struct fix_case){"models", "resnet34", 64, 16, "layer4.1.conv1.weight", &relu}, 0.9);
	wino_case(&c, &(struct fix_case){"models", "resnet50", 64, 16, "layer4.1.conv1.weight", &relu}, 0.3);
	round_trip();
	head_swap();
	/* listing: MACs at 224 as torchvision's tables (resnet18 1.81 G, resnet50 4.09 G) */
	struct fd_model *m;
	uint64_t macs = 0;
	fd_model_new("resnet18", 1000, 1, &m, &e);
	ok(fd_model_macs(m, 224, &macs, &e) == 0 && llabs((long long)macs - 1814073344LL) < 1000000,
	   "resnet18 MACs at 224: %llu", (unsigned long long)macs);
	fd_model_free(m);
	ok(fd_model_new("resnet19", 1, 1, &m, &e) < 0 && strstr(e.msg, "known: simplecnn, resnet18"),
	   "unknown model: %s", e.msg);
	fix_relu_stop(&relu);
	fd_st_close(&counts);
	fd_ctx_free(&c);
	return tap_done();
}

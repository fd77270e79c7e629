/* t_models_effmob: efficientnet_b0 and mobilenet_v3_small against
 * torchvision (tests/ref/models_effmob.py): parameter counts, initialisation
 * statistics, weights loaded from a torch state dict, eval and train logits,
 * the BCE loss, every named gradient and running statistic (each tensor's
 * worst share of its tolerance), 5 AdamW steps, MACs at 224, stochastic
 * depth / dropout in train mode, and an fd checkpoint loaded by torchvision
 * with load_state_dict(strict=True). */
#include "models/fd_model.h"
#include "fixture.h"
#include "model_fused.h"
#include "nn_ctx.h"

#include <math.h>
#include <unistd.h>

/* One case (fixture.h's fix_model_case; tolerances as t_models, doc/models.md
 * "Conformance": fd's float32 against torch's float64 through 16-18 blocks
 * with train-mode batchnorm over 8 values per channel at the last stage
 * (64x64, batch 2), so atol = 4 x torch's own float32 error on each tensor +
 * 1e-4 x RMS, rtol 1e-4), then the dropout / stochastic depth masks. */
static void run_case(struct fd_ctx *c, const char *name, int size)
{
	const struct fix_case k = {"models_effmob", name, size, 4, NULL, NULL};
	char fw[128], pw[900];
	struct fd_err e = {{0}};
	struct fd_model *m;
	struct fd_st s;
	struct fd_tensor *y, *loss;
	if (!ok(fd_model_new(name, 1, 42, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	fix_model_case(c, m, &k);
	snprintf(fw, sizeof fw, "%s_%d", name, size);
	fix_open(&s, k.set, fw);
	snprintf(fw, sizeof fw, "%s_%d_w.safetensors", name, size);
	fix_path(pw, sizeof pw, k.set, fw);

	/* train mode with dropout and stochastic depth on: the masks are fd's
	 * (Philox), so check their semantics: logits differ from the masks-off
	 * run (efficientnet: 0.2 dropout on 1280 features, stochastic depth on
	 * 9 residual blocks; mobilenet: dropout on 1024), the same seed and step
	 * give the same logits, and the loss still backpropagates */
	c->dropout_off = 0;
	float y0[2], y1[2], y2[2];
	fd_model_load(m, pw, NULL, 0, &e);
	for (int pass = 0; pass < 3; pass++) {
		fd_ctx_step(c);
		c->step = 7;
		c->dropout_off = pass == 0;
		fd_params_zero_grad(&m->p);
		y = fd_model_forward(m, c, fix_get(c, &s, "x"));
		loss = fd_bce_with_logits(c, y, fix_get(c, &s, "t"));
		if (!loss || fd_backward(c, loss, NULL) < 0) {
			ok(0, "%s: train forward with masks %s", name, c->err.msg);
			goto out;
		}
		memcpy(pass == 0 ? y0 : pass == 1 ? y1 : y2, y->data, sizeof y0);
	}
	ok(memcmp(y0, y1, sizeof y0) && !memcmp(y1, y2, sizeof y1),
	   "%s: masks on change the logits (%g %g vs %g %g) and are reproducible", name, y1[0], y1[1], y0[0], y0[1]);
out:
	c->dropout_off = 0;
	fd_st_close(&s);
	fd_model_free(m);
}

/* A fresh fd model's initialisation against a fresh torchvision model's,
 * per view: constants exactly, random views by mean and standard deviation
 * within 6 standard errors of the two samples, and the uniform bound. */
static void init_stats(const char *name, const struct fd_st *init)
{
	struct fd_model *m;
	struct fd_err e = {{0}};
	if (fd_model_new(name, 1, 11, &m, &e) < 0) {
		ok(0, "%s: built %s", name, e.msg);
		return;
	}
	int bad = 0, n = 0;
	for (int i = 0; i < m->p.n; i++) {
		struct fd_pview *v = &m->p.v[i];
		char key[300];
		if (v->kind == FD_P_COUNTER)
			continue;
		snprintf(key, sizeof key, "%s:%s", name, v->name);
		const float *r = fix_raw(init, key, FD_DT_F32)->data;
		double s = 0, s2 = 0, mx = 0, N = (double)v->t.numel;
		for (int64_t j = 0; j < v->t.numel; j++) {
			double x = v->t.data[j];
			s += x;
			s2 += x * x;
			mx = tap_worse(mx, fabs(x));
		}
		double mean = s / N, sd = N > 1 ? sqrt(fmax(0, (s2 - N * mean * mean) / (N - 1))) : 0;
		int good;
		if (r[1] == 0) /* constant in torchvision */
			good = sd == 0 && mean == r[0];
		else
			good = fabs(mean - r[0]) <= 6 * r[1] * sqrt(2 / N) && fabs(sd - r[1]) <= 6 * r[1] / sqrt(N) &&
			       (strcmp(v->name, "classifier.1.weight") || mx <= 1.0);
		n++;
		if (!good && bad++ < 5)
			diag("%s: mean %g sd %g max %g, torchvision %g %g %g", key, mean, sd, mx, r[0], r[1], r[2]);
	}
	ok(!bad, "%s: initialisation of %d views matches torchvision's distributions", name, n);
	fd_model_free(m);
}

/* fd checkpoint (3 classes) -> torchvision load_state_dict(strict=True),
 * and the weights arrive unchanged */
static void torch_loads(const char *name)
{
	struct fd_model *m;
	struct fd_err e = {{0}};
	char tmp[] = "/tmp/fd_t_effmob_XXXXXX", path[600], cmd[2000];
	if (!mkdtemp(tmp) || fd_model_new(name, 3, 5, &m, &e) < 0) {
		ok(0, "%s: setup %s", name, e.msg);
		return;
	}
	snprintf(path, sizeof path, "%s/m.safetensors", tmp);
	const struct fd_pview *last = &m->p.v[m->p.n - 1]; /* the head bias (initialised to 0) */
	last->t.data[2] = 0.3125f;
	ok(fd_model_save(m, path, NULL, &e) == 0, "%s: saved %s", name, e.msg);
	snprintf(cmd, sizeof cmd,
		 "/usr/bin/python3 -c \"import json, struct, numpy as np, torch, torchvision\n"
		 "m = torchvision.models.%s(num_classes=3)\n"
		 "b = open('%s', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])\n"
		 "dt = {'F32': np.float32, 'I64': np.int64}\n"
		 "sd = {k: torch.from_numpy(np.frombuffer(b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]], "
		 "dtype=dt[v['dtype']]).reshape(v['shape']).copy()) for k, v in h.items() if k != '__metadata__'}\n"
		 "m.load_state_dict(sd, strict=True)\n"
		 "print('%%.9g' %% m.state_dict()['%s'][2].item())\" 2>&1",
		 name, path, last->name);
	FILE *p = popen(cmd, "r");
	char line[512] = "";
	if (p) {
		if (!fgets(line, sizeof line, p))
			line[0] = 0;
		pclose(p);
	}
	line[strcspn(line, "\n")] = 0;
	double got = strtod(line, NULL);
	ok(line[0] && got == (double)last->t.data[2], "%s: torchvision load_state_dict(strict=True) takes the fd "
	   "checkpoint (%s = %.9g, torch %s)", name, last->name, (double)last->t.data[2], line);
	unlink(path);
	rmdir(tmp);
	fd_model_free(m);
}

/* The blocks' fused fronts (fd_mbfront_infer: expansion + depthwise in one
 * kernel) and backs (fd_mbback_infer: SE + projection + residual add) in an
 * eval forward: on a CPU with AVX-512F `want` fronts (every block) and
 * `want_back` backs (those with an SE), none elsewhere;
 * the logits equal, within the fixture's tolerance, those of the same
 * forward with m->no_mbfront (oneDNN's convolutions and fd_se_infer, which
 * fused_eval compares with torchvision),
 * and both follow a change of the expansion BN weight ew (control: the
 * fused logits move by more than 10 tolerances). */
static void front_eval(struct fd_ctx *c, const struct fix_case *k, const char *ew, int want, int want_back)
{
	struct fd_model *m;
	struct fd_st s;
	char file[128];
	if (!fused_open(k, &m, &s))
		return;
	double atol = fix_atol(&s, "logits_eval", k->k32);
	int avx512 = cpu_has("avx512f");
	c->training = 0;
	c->grad_enabled = 0;
	float a[2][2], b[2][2];
	int nf[2], nu[2], nb = -1;
	struct fd_tensor *g = fd_params_find(&m->p, ew);
	for (int r = 0; r < 2; r++) {
		if (r == 1)
			for (int64_t i = 0; g && i < g->numel; i++)
				g->data[i] *= 1.5f;
		m->no_mbfront = 0;
		fd_ctx_step(c);
		struct fd_tensor *y = fd_model_forward(m, c, fix_get(c, &s, "x"));
		nf[r] = m->nfused_front;
		if (r == 0)
			nb = m->nfused_back;
		a[r][0] = y ? y->data[0] : NAN, a[r][1] = y ? y->data[1] : NAN;
		m->no_mbfront = 1;
		fd_ctx_step(c);
		y = fd_model_forward(m, c, fix_get(c, &s, "x"));
		nu[r] = m->nfused_front;
		b[r][0] = y ? y->data[0] : NAN, b[r][1] = y ? y->data[1] : NAN;
		m->no_mbfront = 0;
	}
	ok(g && nf[0] == (avx512 ? want : 0) && nf[1] == nf[0] && nu[0] == 0 && nu[1] == 0 &&
		   nb == (avx512 ? want_back : 0),
	   "%s@%d: %d block fronts fused (want %d: AVX-512F %s), %d of them with their back (want %d), none "
	   "with m->no_mbfront (%d)",
	   k->name, k->size, nf[0], avx512 ? want : 0, avx512 ? "yes" : "no", nb, avx512 ? want_back : 0, nu[0]);
	snprintf(file, sizeof file, "%s@%d fused-front logits vs oneDNN's convolutions", k->name, k->size);
	tap_close_f32(file, a[0], b[0], 2, atol, 1e-4);
	snprintf(file, sizeof file, "%s@%d fused-front logits after %s x 1.5 vs oneDNN's", k->name, k->size, ew);
	tap_close_f32(file, a[1], b[1], 2, atol, 1e-4);
	double moved = fmax(fabs(a[1][0] - a[0][0]), fabs(a[1][1] - a[0][1]));
	ok(moved > 10 * atol, "%s@%d control: the fused-front logits moved by %.3g (> 10 x tol %.3g) with %s",
	   k->name, k->size, moved, atol, ew);
	fd_ctx_step(c);
	c->training = 1;
	c->grad_enabled = 1;
	fd_st_close(&s);
	fd_model_free(m);
}

/* An eval forward at 32 px (a batch of 3, random weights): the last
 * blocks' maps are 1x1, which the fused kernels take in any layout (the
 * same memory); every front and back fused (want, want_back) on AVX-512F,
 * the logits within 1e-5 (relative to the largest) of m->no_mbfront's.
 * (A first version checked the back's input layout on the block's input,
 * 2x2, and failed on the 1x1 depthwise output: pipelines.t's 16 px
 * MobileNetV3 runs caught it.) */
static void small_eval(struct fd_ctx *c, const char *name, int want, int want_back)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	if (!ok(fd_model_new(name, 1, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	int64_t xs[4] = {3, 3, 32, 32};
	float *x = malloc(3 * 3 * 32 * 32 * sizeof *x), y[2][3];
	for (int i = 0; i < 3 * 3 * 32 * 32; i++)
		x[i] = (float)((i * 7919) % 201 - 100) / 50.0f;
	int avx512 = cpu_has("avx512f"), nf = -1, nb = -1, good = 1;
	c->training = 0;
	c->grad_enabled = 0;
	for (int r = 0; r < 2; r++) {
		m->no_mbfront = r;
		fd_ctx_step(c);
		struct fd_tensor *o = fd_model_forward(m, c, fd_tensor_wrap(c, FD_DEV_CPU, x, 4, xs));
		good = good && o && o->numel == 3;
		for (int i = 0; o && i < 3 && i < o->numel; i++)
			y[r][i] = o->data[i];
		if (r == 0)
			nf = m->nfused_front, nb = m->nfused_back;
		if (!o)
			diag("%s@32: %s", name, c->err.msg);
	}
	double big = 0, d = 0;
	for (int i = 0; good && i < 3; i++)
		big = fmax(big, fabs(y[1][i])), d = fmax(d, fabs((double)y[0][i] - y[1][i]));
	ok(good && nf == (avx512 ? want : 0) && nb == (avx512 ? want_back : 0) && d <= 1e-5 * big && big > 0,
	   "%s@32 (1x1 maps at the end): %d fronts and %d backs fused (want %d, %d), logits %.3g from "
	   "m->no_mbfront's (largest %.3g)",
	   name, nf, nb, avx512 ? want : 0, avx512 ? want_back : 0, d, big);
	fd_ctx_step(c);
	c->training = 1;
	c->grad_enabled = 1;
	free(x);
	fd_model_free(m);
}

int main(void)
{
	struct fd_ctx c;
	struct fd_err e = {{0}};
	struct fd_st counts, init;
	ctx_open(&c, 2, 3);
	fix_open(&counts, "models_effmob", "counts");
	fix_open(&init, "models_effmob", "init");
	static const char *const names[] = {"efficientnet_b0", "mobilenet_v3_small"};
	for (int i = 0; i < 2; i++) {
		struct fd_model *m;
		char key[64];
		int64_t want;
		uint64_t macs = 0;
		if (fd_model_new(names[i], 1, 1, &m, &e) < 0) {
			ok(0, "%s: built %s", names[i], e.msg);
			continue;
		}
		memcpy(&want, fix_raw(&counts, names[i], FD_DT_I64)->data, sizeof want);
		ok(fd_model_params(m) == want, "%s: %lld parameters (torchvision %lld)", names[i],
		   (long long)fd_model_params(m), (long long)want);
		snprintf(key, sizeof key, "macs.%s", names[i]);
		memcpy(&want, fix_raw(&counts, key, FD_DT_I64)->data, sizeof want);
		int rc = fd_model_macs(m, 224, &macs, &e);
		ok(rc == 0 && (int64_t)macs == want, "%s: MACs at 224 %llu (torch hooks %lld)",
		   names[i], (unsigned long long)macs, (long long)want);
		ok(fd_model_arch_find(names[i]) == m->arch, "%s: in the registry", names[i]);
		fd_model_free(m);
		init_stats(names[i], &init);
		run_case(&c, names[i], 64);
		/* every Conv2dNormActivation folded in inference (fd_mcna_fwd), the
		 * residual add of every block that has one (9 in EfficientNet-B0,
		 * 6 in MobileNetV3-Small: stride 1, cin == cout) fused into its
		 * projection (fd_mconv_bn_add_fwd), every squeeze-excitation (16,
		 * 9) one kernel (fd_se_infer); the controls change a residual
		 * block's projection BN (its output is added into the block's
		 * input), an SE block's fc1 weight, then the head's BN */
		const struct fix_case k = {"models_effmob", names[i], 64, 4, NULL, NULL};
		int nf = i == 0 ? 49 : 34, na = i == 0 ? 9 : 6, ns = i == 0 ? 16 : 9;
		fused_eval(&c, &k, i == 0 ? "features.6.3.block.3.1.weight" : "features.11.block.3.1.weight", nf, na,
			   ns);
		fused_eval(&c, &k, i == 0 ? "features.7.0.block.2.fc2.weight" : "features.11.block.2.fc1.weight", nf,
			   na, ns);
		fused_eval(&c, &k, i == 0 ? "features.8.1.weight" : "features.12.1.weight", nf, na, ns);
		/* every block (16 in EfficientNet-B0, 11 in MobileNetV3-Small)
		 * runs its front (expansion, if any, and depthwise) as one
		 * kernel, those with an SE (16, 9) their SE, projection and add
		 * as another; the
		 * control changes a late block's expansion BN */
		front_eval(&c, &k, i == 0 ? "features.7.0.block.0.1.weight" : "features.11.block.0.1.weight",
			   i == 0 ? 16 : 11, i == 0 ? 16 : 9);
		small_eval(&c, names[i], i == 0 ? 16 : 11, i == 0 ? 16 : 9);
		torch_loads(names[i]);
	}
	fd_st_close(&init);
	fd_st_close(&counts);
	fd_ctx_free(&c);
	return tap_done();
}

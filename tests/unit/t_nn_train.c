/* t_nn_train: parameters, optimizers, schedule, initialisers, checkpoints and
 * a tiny graph trained 5 steps, against PyTorch (tests/ref/nn_core.py); and
 * the promise that a training step allocates nothing after the first. */
#include "nn/act.h"
#include "nn/binary.h"
#include "nn/ckpt.h"
#include "nn/fd_params.h"
#include "nn/init.h"
#include "nn/layernorm2d.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/shape.h"
#include "fixture.h"
#include "nn_ctx.h"

#include <unistd.h>

/* Run the optimizer of `fixture` over its gradients and return the worst
 * share of tolerance (1e-6 + 1e-5 |p|) of the parameters after each step
 * against torch's trajectory; poison: every step then writes NaN into every
 * parameter (the negative control: the check must fail). */
static double optim_worst(const char *fixture, int poison)
{
	struct fd_st s;
	struct fd_err e = {{0}};
	struct fd_params p;
	struct fd_optim o;
	fix_open(&s, "nn_core", fixture);
	const struct fd_st_tensor *p0 = fix_raw(&s, "p0", FD_DT_F32), *g = fix_raw(&s, "g", FD_DT_F32);
	const struct fd_st_tensor *traj = fix_raw(&s, "p", FD_DT_F32);
	int64_t P = p0->shape[0], steps = g->shape[0];
	fd_params_init(&p);
	fd_params_add(&p, "p", FD_P_PARAM, 1, &P, &e);
	fd_params_alloc(&p, &e);
	memcpy(p.data, p0->data, p0->nbytes);
	int rc;
	if (strcmp(fixture, "opt_adamw") == 0)
		rc = fd_optim_adamw(&o, &p, 1e-2, 0.9, 0.999, 1e-8, 0.05, &e);
	else if (strcmp(fixture, "opt_adamw_nowd") == 0)
		rc = fd_optim_adamw(&o, &p, 3e-3, 0.8, 0.99, 1e-8, 0.0, &e);
	else if (strcmp(fixture, "opt_sgd") == 0)
		rc = fd_optim_sgd(&o, &p, 0.1, 0, 0, 0, 0, &e);
	else if (strcmp(fixture, "opt_sgd_mom") == 0)
		rc = fd_optim_sgd(&o, &p, 0.05, 0.9, 0, 1e-3, 0, &e);
	else
		rc = fd_optim_sgd(&o, &p, 0.05, 0.9, 0, 1e-2, 1, &e);
	if (!poison)
		ok(rc == 0, "%s: optimizer made %s", fixture, e.msg);
	const float *gd = g->data, *td = traj->data;
	double worst = 0;
	for (int64_t t = 0; t < steps; t++) {
		memcpy(p.grad, gd + t * P, (size_t)P * sizeof(float));
		fd_optim_step(&o, &p, &e);
		for (int64_t i = 0; poison && i < P; i++)
			p.data[i] = NAN;
		for (int64_t i = 0; i < P; i++) {
			double err = fabs(p.data[i] - td[t * P + i]) / (1e-6 + 1e-5 * fabs(td[t * P + i]));
			worst = tap_worse(worst, err);
		}
	}
	fd_optim_free(&o);
	fd_params_free(&p);
	fd_st_close(&s);
	return steps > 0 && P > 0 ? worst : INFINITY;
}

/* float32 update order as torch's; differences are rounding only. For SGD
 * also the negative control: a step that writes NaN must fail the check. */
static void test_optim(const char *fixture)
{
	double worst = optim_worst(fixture, 0);
	ok(worst <= 1, "%s: steps match torch, worst %.2f of tol (1e-6 + 1e-5 |p|)", fixture, worst);
	if (!strncmp(fixture, "opt_sgd", 7)) {
		worst = optim_worst(fixture, 1);
		ok(!(worst <= 1), "%s: negative control: a step writing NaN into every parameter fails (%.2f of tol)",
		   fixture, worst);
	}
}

static void test_sched(void)
{
	struct fd_st s;
	struct fd_err e = {{0}};
	struct fd_sched sc;
	fix_open(&s, "nn_core", "sched");
	const struct fd_st_tensor *cs = fix_raw(&s, "cos", FD_DT_F64), *wm = fix_raw(&s, "warm", FD_DT_F64);
	const double *cv = cs->data, *wv = wm->data;
	fd_sched_cosine(&sc, 0.1, 7, 1e-3, 0, &e);
	double worst = 0;
	for (int64_t t = 0; t < cs->shape[0]; t++) {
		worst = tap_worse(worst, fabs(sc.lr - cv[t]) / (1e-12 + 1e-9 * cv[t]));
		fd_sched_step(&sc);
	}
	ok(worst <= 1 && cs->shape[0] > 0, "cosine T_max=7 over %lld epochs (past T_max) matches torch, worst %.3f of tol",
	   (long long)cs->shape[0], worst);
	fd_sched_cosine(&sc, 0.1, 10, 0.0, 3, &e);
	worst = 0;
	for (int64_t t = 0; t < wm->shape[0]; t++) {
		worst = tap_worse(worst, fabs(sc.lr - wv[t]) / (1e-12 + 1e-9 * wv[t]));
		fd_sched_step(&sc);
	}
	ok(worst <= 1 && wm->shape[0] > 0, "3 warm-up epochs then cosine (%lld epochs) match torch SequentialLR, worst "
	   "%.3f of tol", (long long)wm->shape[0], worst);
	ok(fd_sched_cosine(&sc, 0.1, 0, 0, 0, &e) < 0 && strstr(e.msg, "T_max 0"), "T_max 0 refused: %s", e.msg);
	fd_st_close(&s);
}

/* The graph of nn_core.py's "train" section, on the context c. */
static struct fd_tensor *graph(struct fd_ctx *c, struct fd_params *p, struct fd_tensor *x, const int32_t *lab)
{
	struct fd_tensor *h = fd_add(c, fd_mul(c, x, fd_params_find(p, "scale")), fd_params_find(p, "shift"));
	h = fd_gelu(c, h);
	h = fd_layernorm2d(c, h, fd_params_find(p, "ln.weight"), fd_params_find(p, "ln.bias"), 1e-6f);
	h = fd_add(c, h, fd_prelu(c, h, fd_params_find(p, "act.weight")));
	h = fd_mul(c, h, fd_sigmoid(c, h));
	return fd_cross_entropy(c, fd_flatten(c, h, 1), lab);
}

static void test_train(void)
{
	static const char *const names[] = {"scale", "shift", "ln.weight", "ln.bias", "act.weight"};
	struct fd_st s;
	struct fd_err e = {{0}};
	struct fd_params p;
	struct fd_optim o;
	struct fd_ctx c;
	char key[64];
	fix_open(&s, "nn_core", "train");
	fd_params_init(&p);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof key, "init.%s", names[i]);
		const struct fd_st_tensor *t = fix_raw(&s, key, FD_DT_F32);
		fd_params_add(&p, names[i], FD_P_PARAM, t->ndim, t->shape, &e);
	}
	ok(fd_params_alloc(&p, &e) == 0, "params allocated");
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof key, "init.%s", names[i]);
		const struct fd_st_tensor *t = fix_raw(&s, key, FD_DT_F32);
		memcpy(fd_params_find(&p, names[i])->data, t->data, t->nbytes);
	}
	/* torch: {scale} decays 0.1, the rest not. fd_params_group_vectors puts
	 * every vector-like tensor ([C] and [C,1,1]) in group 1; scale goes back. */
	ok(fd_params_group_vectors(&p, 1) == 5, "all five are vector-like");
	p.v[fd_params_index(&p, "scale")].group = 0;
	fd_optim_adamw(&o, &p, 0.05, 0.9, 0.999, 1e-8, 0.1, &e);
	o.weight_decay[1] = 0.0;

	ctx_open(&c, 2, 5);
	const struct fd_st_tensor *lt = fix_raw(&s, "label", FD_DT_I32);
	const float *ref_loss = fix_raw(&s, "loss", FD_DT_F32)->data;
	unsigned long grows_after_first = 0, pool_grows = 0;
	double worst = 0;
	for (int step = 0; step < 5; step++) {
		fd_ctx_step(&c);
		if (step == 1)
			grows_after_first = c.arena.grows, pool_grows = c.gpool.grows;
		struct fd_tensor *x = fix_get(&c, &s, "x");
		fd_params_zero_grad(&p);
		struct fd_tensor *loss = graph(&c, &p, x, lt->data);
		if (!loss || fd_backward(&c, loss, NULL) < 0) {
			ok(0, "train step %d: %s", step, c.err.msg);
			break;
		}
		worst = tap_worse(worst, fabs(loss->data[0] - ref_loss[step]) / (1e-6 + 1e-5 * ref_loss[step]));
		fd_optim_step(&o, &p, &e);
	}
	ok(worst <= 1, "5 AdamW steps: losses match torch, worst %.3f of tol (1e-6 + 1e-5 loss)", worst);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof key, "final.%s", names[i]);
		char what[96];
		snprintf(what, sizeof what, "after 5 steps %s", names[i]);
		/* 5 Adam steps amplify float32 rounding where v is tiny: 1e-5 */
		fix_close(what, fd_params_find(&p, names[i]), fix_get(&c, &s, key), 1e-5, 1e-4);
	}
	ok(c.arena.grows == grows_after_first && grows_after_first > 0,
	   "no allocation after the first step (arena grew %lu times, all in step 1)", c.arena.grows);
	ok(c.gpool.grows == pool_grows && pool_grows > 0 && c.gpool.used_bytes == 0,
	   "gradient pool: %lu allocations, all in step 1; every block back after backward (%zu bytes in use)",
	   c.gpool.grows, c.gpool.used_bytes);
	ok(c.gpool.peak_bytes < c.gpool.bytes + 1 && c.gpool.peak_bytes > 0, "gradient pool peak %zu of %zu held",
	   c.gpool.peak_bytes, c.gpool.bytes);
	fd_ctx_free(&c);
	fd_optim_free(&o);
	fd_params_free(&p);
	fd_st_close(&s);
}

static void test_init(void)
{
	struct fd_ctx c;
	struct fd_err e = {{0}};
	struct fd_rng r;
	ctx_open(&c, 1, 1);
	int64_t ws[4] = {64, 32, 3, 3}; /* fan_in 288, fan_out 576, 18432 values */
	struct fd_tensor *w = fd_tensor_new(&c, FD_DEV_CPU, 4, ws);
	double n = (double)w->numel;
#define STATS(t, mean, sd, lo, hi)                                      \
	do {                                                            \
		double s1 = 0, s2 = 0;                                  \
		lo = INFINITY, hi = -INFINITY;                          \
		for (int64_t i = 0; i < (t)->numel; i++) {              \
			s1 += (t)->data[i];                             \
			s2 += (double)(t)->data[i] * (t)->data[i];      \
			lo = -tap_worse(-lo, -(t)->data[i]);            \
			hi = tap_worse(hi, (t)->data[i]);               \
		}                                                       \
		mean = s1 / (t)->numel;                                 \
		sd = sqrt(s2 / (t)->numel - mean * mean);               \
	} while (0)
	double mean, sd, lo, hi;
	fd_init_rng(&r, 42, "conv.weight");
	fd_init_kaiming_uniform(w, sqrt(5.0), &r, &e);
	STATS(w, mean, sd, lo, hi);
	double b = 1 / sqrt(288.0); /* U(-b, b): sd b/sqrt(3); 5-sigma bands on the estimates */
	ok(lo >= -b && hi <= b && hi > 0.99 * b && fabs(mean) < 5 * b / sqrt(3 * n) &&
		   fabs(sd - b / sqrt(3)) < 0.02 * b / sqrt(3),
	   "kaiming_uniform(a=sqrt 5): within +-1/sqrt(fan_in), mean %.2g sd %.4g (want %.4g)", mean, sd, b / sqrt(3));
	fd_init_kaiming_normal_fan_out(w, &r, &e);
	STATS(w, mean, sd, lo, hi);
	double want = sqrt(2.0 / 576);
	ok(fabs(mean) < 5 * want / sqrt(n) && fabs(sd - want) < 0.03 * want,
	   "kaiming_normal(fan_out, relu): mean %.2g sd %.4g (want %.4g)", mean, sd, want);
	fd_init_trunc_normal(w, 0, 0.02, -2, 2, &r, &e);
	STATS(w, mean, sd, lo, hi);
	ok(fabs(sd - 0.02) < 0.0006 && fabs(mean) < 5 * 0.02 / sqrt(n), "trunc_normal(std .02, [-2, 2]): sd %.4g", sd);
	fd_init_trunc_normal(w, 0, 1, -1, 1.5, &r, &e);
	STATS(w, mean, sd, lo, hi);
	/* N(0,1) truncated to [-1, 1.5]: moments from scipy.stats.truncnorm; the
	 * estimates' standard errors are ~0.005 at n = 18432, so 0.02 is 4 sigma */
	struct fd_st s;
	fix_open(&s, "nn_core", "init");
	double tm = *(const double *)fix_raw(&s, "truncnorm_mean", FD_DT_F64)->data;
	double ts = *(const double *)fix_raw(&s, "truncnorm_std", FD_DT_F64)->data;
	fd_st_close(&s);
	ok(lo >= -1 && hi <= 1.5 && fabs(mean - tm) < 0.02 && fabs(sd - ts) < 0.02,
	   "trunc_normal on [-1, 1.5]: bounds held, mean %.4f sd %.4f (scipy %.4f %.4f)", mean, sd, tm, ts);
	ok(fd_init_trunc_normal(w, 0, 1, 8, 9, &r, &e) < 0, "trunc_normal refuses an empty window: %s", e.msg);
	int64_t bs[1] = {64};
	struct fd_tensor *bias = fd_tensor_new(&c, FD_DEV_CPU, 1, bs);
	fd_init_bias_default(bias, w, &r, &e);
	STATS(bias, mean, sd, lo, hi);
	ok(lo >= -b && hi <= b, "default bias within +-1/sqrt(fan_in)");
	ok(fd_init_kaiming_uniform(bias, 0, &r, &e) < 0 && strstr(e.msg, "at least 2 dims"), "fans of a vector refused");
	struct fd_rng r1, r2;
	fd_init_rng(&r1, 42, "a");
	fd_init_rng(&r2, 42, "a");
	ok(fd_rng_u64(&r1) == fd_rng_u64(&r2), "init streams are per name and seed");
	fd_ctx_free(&c);
}

static void test_ckpt(void)
{
	struct fd_err e = {{0}};
	struct fd_params p, q;
	char path[700], out[64];
	fix_path(path, sizeof path, "nn_core", "state_dict.safetensors");
	static const struct {
		const char *name;
		enum fd_pkind kind;
		int ndim;
		int64_t shape[4];
	} decl[] = {{"0.weight", FD_P_PARAM, 4, {4, 3, 3, 3}}, {"0.bias", FD_P_PARAM, 1, {4}},
		    {"1.weight", FD_P_PARAM, 1, {4}},          {"1.bias", FD_P_PARAM, 1, {4}},
		    {"1.running_mean", FD_P_BUFFER, 1, {4}},   {"1.running_var", FD_P_BUFFER, 1, {4}},
		    {"1.num_batches_tracked", FD_P_COUNTER, 0, {0}}};
	fd_params_init(&p);
	for (int i = 0; i < 7; i++)
		fd_params_add(&p, decl[i].name, decl[i].kind, decl[i].ndim, decl[i].shape, &e);
	fd_params_alloc(&p, &e);
	ok(fd_params_count(&p) == 108 + 4 + 8, "120 trainable values; buffers apart");
	ok(p.ntrain < p.ntotal && fd_params_find(&p, "1.running_mean")->grad == NULL &&
		   fd_params_find(&p, "0.bias")->grad == p.grad + (fd_params_find(&p, "0.bias")->data - p.data),
	   "parameters first with gradient views, buffers after without");
	ok(fd_ckpt_load(&p, path, &e) == 0, "torch state dict loads: %s", e.msg);
	struct fd_st s;
	fd_st_open(&s, path, &e);
	int same = 1;
	for (int i = 0; i < 6; i++) {
		const struct fd_st_tensor *t = fd_st_find(&s, decl[i].name);
		same &= memcmp(t->data, fd_params_find(&p, decl[i].name)->data, t->nbytes) == 0;
	}
	ok(same && fd_params_find(&p, "1.num_batches_tracked")->data[0] == 1.0f, "values and counter copied");
	snprintf(out, sizeof out, "/tmp/t_nn_train.%d.safetensors", (int)getpid());
	static const char *const meta[] = {"fd.arch", "tiny", "fd.num_classes", "1", "fd.epoch", "3", NULL};
	ok(fd_ckpt_save(&p, out, meta, &e) == 0, "saved: %s", e.msg);
	struct fd_st s2;
	ok(fd_st_open(&s2, out, &e) == 0 && s2.n == 7 && strcmp(fd_st_meta(&s2, "fd.arch"), "tiny") == 0 &&
		   strcmp(fd_st_meta(&s2, "fd.epoch"), "3") == 0,
	   "checkpoint has 7 tensors and the fd metadata");
	same = 1;
	for (int i = 0; i < s.n; i++) {
		const struct fd_st_tensor *a = &s.t[i], *b2 = fd_st_find(&s2, a->name);
		same &= b2 && b2->dtype == a->dtype && b2->ndim == a->ndim && b2->nbytes == a->nbytes &&
			memcmp(a->data, b2->data, a->nbytes) == 0;
	}
	ok(same, "round trip: every tensor byte-identical to torch's state dict, I64 counter included");
	fd_st_close(&s2);
	fd_st_close(&s);

	/* wrong model: one shape differs, one name missing, one extra */
	fd_params_init(&q);
	int64_t w2[4] = {4, 3, 5, 5}, v4 = 4;
	fd_params_add(&q, "0.weight", FD_P_PARAM, 4, w2, &e);
	fd_params_add(&q, "0.bias", FD_P_PARAM, 1, &v4, &e);
	fd_params_add(&q, "2.bias", FD_P_PARAM, 1, &v4, &e);
	fd_params_alloc(&q, &e);
	ok(fd_ckpt_load(&q, out, &e) < 0 && strstr(e.msg, "0.weight is [4,3,3,3] in the file, [4,3,5,5] here") &&
		   strstr(e.msg, "missing 2.bias") && strstr(e.msg, "extra 1.running_var") && q.data[0] == 0.0f,
	   "mismatch named precisely, nothing copied: %s", e.msg);
	ok(fd_ckpt_load(&q, "/nonexistent/x.safetensors", &e) < 0 && strstr(e.msg, "x.safetensors"),
	   "missing file: %s", e.msg);

	/* impossible values: a negative variance, then a NaN weight; p unchanged */
	float *rv = fd_params_find(&p, "1.running_var")->data, *w0 = fd_params_find(&p, "0.weight")->data;
	float keep_rv = rv[2], keep_w = w0[7];
	rv[2] = -0.25f;
	ok(fd_ckpt_save(&p, out, meta, &e) == 0, "saved a negative running_var");
	rv[2] = 3.0f;
	ok(fd_ckpt_load(&p, out, &e) < 0 && strstr(e.msg, "1.running_var[2] is -0.25 (a variance must be >= 0)") &&
		   strstr(e.msg, out) && rv[2] == 3.0f,
	   "negative running_var refused, nothing copied: %s", e.msg);
	rv[2] = keep_rv;
	w0[7] = NAN;
	ok(fd_ckpt_save(&p, out, meta, &e) == 0, "saved a NaN weight");
	w0[7] = keep_w;
	ok(fd_ckpt_load(&p, out, &e) < 0 && strstr(e.msg, "0.weight[7] is nan (weights must be finite)") &&
		   w0[7] == keep_w,
	   "NaN weight refused, nothing copied: %s", e.msg);
	unlink(out);
	fd_params_free(&q);
	fd_params_free(&p);
}

/* Gradient lifetimes: y = relu(h), h = x * x (x a leaf), z = sum-like seed.
 * After backward, the leaf x and the retained h keep their gradients (with
 * the right values), the unretained op output y has given its back. */
static void test_grad_lifetime(void)
{
	struct fd_ctx c;
	ctx_open(&c, 1, 1);
	fd_ctx_step(&c);
	int64_t sh[1] = {4};
	struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 1, sh);
	const float xv[4] = {-2, -1, 1, 3};
	for (int i = 0; i < 4; i++)
		x->data[i] = xv[i];
	fd_requires_grad(x);
	struct fd_tensor *h = fd_mul(&c, x, x);
	fd_requires_grad(h); /* retained: Grad-CAM's way to read an activation's gradient */
	struct fd_tensor *y = fd_relu(&c, fd_add(&c, h, x));
	const float seed[4] = {1, 1, 1, 1};
	int rc = fd_backward(&c, y, seed);
	ok(rc == 0, "backward ran (%s)", c.err.msg);
	/* y = relu(x^2 + x): x^2 + x = 2, 0, 2, 12 -> dy/dx = (2x + 1) where > 0 */
	const float dx[4] = {-3, 0, 3, 7}, dh[4] = {1, 0, 1, 1};
	int good = x->grad && h->grad;
	for (int i = 0; good && i < 4; i++)
		good = x->grad[i] == dx[i] && h->grad[i] == dh[i];
	ok(good, "leaf and retained gradients kept, with torch's values");
	ok(y->grad == NULL, "the root's gradient went back to the pool");
	ok(c.gpool.used_bytes == 0 && c.gpool.peak_bytes > 0, "pool: %zu bytes in use after backward, peak %zu",
	   c.gpool.used_bytes, c.gpool.peak_bytes);
	fd_ctx_free(&c);
}

/* fd_adamw_step_cpu (vectorised chunks) against the plain scalar loop of
 * the update rule, bit for bit: 3 chunks and a tail, 1 and 2 threads, v
 * from 0 up (sqrt(0)), g of both signs and zeros; control: the same loop
 * with m * (1 / denom) instead of m / denom is caught. */
static void test_adamw_bits(void)
{
	enum { N = 3 * 16384 + 77 };
	static float p0[N], g[N], m0[N], v0[N], p[N], m[N], v[N], rp[N], rm[N], rv[N], cp[N];
	struct fd_rng r;
	fd_rng_init(&r, 91, 0);
	for (int i = 0; i < N; i++) {
		p0[i] = (float)(2 * fd_rng_uniform(&r) - 1);
		g[i] = i % 13 == 0 ? 0.0f : (float)(fd_rng_uniform(&r) - 0.5) * 1e-2f;
		m0[i] = (float)(fd_rng_uniform(&r) - 0.5) * 1e-3f;
		v0[i] = i % 17 == 0 ? 0.0f : (float)fd_rng_uniform(&r) * 1e-5f;
	}
	const struct fd_opt_args a0 = {.decay = 0.9999f, .b1 = 0.9f, .b2 = 0.999f, .a1 = 0.1f, .a2 = 0.001f,
				       .step_size = 1.2e-3f, .bc2s = 0.0447f, .eps = 1e-8f};
	for (int i = 0; i < N; i++) {
		rp[i] = p0[i], rm[i] = m0[i], rv[i] = v0[i];
		rp[i] *= a0.decay;
		rm[i] = rm[i] * a0.b1 + g[i] * a0.a1;
		rv[i] = rv[i] * a0.b2 + a0.a2 * g[i] * g[i];
		float denom = sqrtf(rv[i]) / a0.bc2s + a0.eps;
		cp[i] = rp[i] + -a0.step_size * (rm[i] * (1.0f / denom));
		rp[i] += -a0.step_size * (rm[i] / denom);
	}
	for (int th = 1; th <= 2; th++) {
		struct fd_opt_args a = a0;
		a.threads = th;
		memcpy(p, p0, sizeof p), memcpy(m, m0, sizeof m), memcpy(v, v0, sizeof v);
		ok(fd_adamw_step_cpu(&a, N, p, g, m, v) == 0 && !memcmp(p, rp, sizeof p) && !memcmp(m, rm, sizeof m) &&
			   !memcmp(v, rv, sizeof v),
		   "adamw kernel, %d threads: p, m, v bit for bit the scalar loop's", th);
	}
	ok(memcmp(cp, rp, sizeof cp) != 0, "adamw control: m * (1 / denom) differs from m / denom");
}

int main(void)
{
	test_grad_lifetime();
	test_adamw_bits();
	static const char *const opts[] = {"opt_adamw", "opt_adamw_nowd", "opt_sgd", "opt_sgd_mom", "opt_sgd_nesterov"};
	for (int i = 0; i < 5; i++)
		test_optim(opts[i]);
	test_sched();
	test_train();
	test_init();
	test_ckpt();
	return tap_done();
}

/* t_nn_layers: the taped conv2d, linear, batchnorm2d and pooling ops
 * (lib/nn/conv2d.h, linear.h, batchnorm2d.h, pool2d.h) against PyTorch (tests/ref/nn_layers.py): forward,
 * input and parameter gradients through the tape, running statistics, plan
 * reuse, and a conv-bn-relu-pool-linear net trained 3 AdamW steps. */
#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/linear.h"
#include "nn/pool2d.h"
#include "nn/fd_params.h"
#include "nn/act.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/shape.h"
#include "fixture.h"
#include "nn_ctx.h"

#include <math.h>

static struct fd_tensor *grad_in(struct fd_ctx *c, const struct fd_st *s, const char *name)
{
	struct fd_tensor *t = fix_get(c, s, name);
	fd_requires_grad(t);
	return t;
}

static void test_conv(struct fd_ctx *c)
{
	struct fd_st s;
	struct fd_conv2d_op op;
	fix_open(&s, "nn_layers", "conv");
	fd_conv2d_op_init(&op, 2, 1, 1, 2);
	for (int rep = 0; rep < 2; rep++) {
		fd_ctx_step(c);
		struct fd_tensor *x = grad_in(c, &s, "x"), *w = grad_in(c, &s, "w"), *b = grad_in(c, &s, "b");
		uint64_t macs0 = c->macs;
		struct fd_tensor *y = fd_conv2d(c, &op, x, w, b);
		if (!ok(y != NULL, "conv: runs %s", c->err.msg))
			break;
		fix_close("conv y", y, fix_get(c, &s, "y"), 1e-4, 1e-4);
		ok(c->macs - macs0 == (uint64_t)y->numel * 2 * 9, "conv: macs counted");
		ok(fd_backward(c, y, fix_get(c, &s, "dy")->data) == 0, "conv: backward %s", c->err.msg);
		fix_close_grad("conv dx", x, fix_get(c, &s, "dx"), 1e-4, 1e-4);
		fix_close_grad("conv dw", w, fix_get(c, &s, "dw"), 3e-4, 1e-4);
		fix_close_grad("conv db", b, fix_get(c, &s, "db"), 3e-4, 1e-4);
	}
	ok(op.nplans == 1, "conv: one plan reused over steps (%d)", op.nplans);
	/* a different batch size gets its own plan, the first is kept */
	fd_ctx_step(c);
	int64_t sh[4] = {1, 4, 9, 9};
	struct fd_tensor *x1 = fd_tensor_zeros(c, FD_DEV_CPU, 4, sh);
	ok(fd_conv2d(c, &op, x1, fix_get(c, &s, "w"), fix_get(c, &s, "b")) && op.nplans == 2,
	   "conv: second input size, second plan");
	/* shapes refused with a message naming them */
	fd_ctx_step(c);
	int64_t bad[4] = {2, 3, 9, 9};
	struct fd_tensor *xb = fd_tensor_zeros(c, FD_DEV_CPU, 4, bad);
	ok(!fd_conv2d(c, &op, xb, fix_get(c, &s, "w"), NULL) && strstr(c->err.msg, "[2,3,9,9]"),
	   "conv: channel mismatch refused: %s", c->err.msg);
	fd_conv2d_op_free(&op);
	fd_st_close(&s);

	fix_open(&s, "nn_layers", "conv_nobias");
	fd_conv2d_op_init(&op, 2, 0, 1, 1);
	fd_ctx_step(c);
	struct fd_tensor *x = grad_in(c, &s, "x"), *w = grad_in(c, &s, "w");
	struct fd_tensor *y = fd_conv2d(c, &op, x, w, NULL);
	fix_close("conv_nobias y", y, fix_get(c, &s, "y"), 1e-4, 1e-4);
	ok(y && fd_backward(c, y, fix_get(c, &s, "dy")->data) == 0, "conv_nobias: backward");
	fix_close_grad("conv_nobias dx", x, fix_get(c, &s, "dx"), 1e-4, 1e-4);
	fix_close_grad("conv_nobias dw", w, fix_get(c, &s, "dw"), 3e-4, 1e-4);
	fd_conv2d_op_free(&op);
	fd_st_close(&s);
}

static void test_linear(struct fd_ctx *c)
{
	struct fd_st s;
	fix_open(&s, "nn_layers", "linear");
	fd_ctx_step(c);
	struct fd_tensor *x = grad_in(c, &s, "x"), *w = grad_in(c, &s, "w"), *b = grad_in(c, &s, "b");
	struct fd_tensor *y = fd_linear(c, x, w, b);
	fix_close("linear y", y, fix_get(c, &s, "y"), 1e-5, 1e-5);
	ok(y && fd_backward(c, y, fix_get(c, &s, "dy")->data) == 0, "linear: backward");
	fix_close_grad("linear dx", x, fix_get(c, &s, "dx"), 1e-5, 1e-5);
	fix_close_grad("linear dw", w, fix_get(c, &s, "dw"), 1e-5, 1e-5);
	fix_close_grad("linear db", b, fix_get(c, &s, "db"), 1e-5, 1e-5);
	fd_st_close(&s);
}

static void test_bn(struct fd_ctx *c, const char *mode)
{
	struct fd_st s;
	char fx[32], nm[64];
	snprintf(fx, sizeof fx, "bn_%s", mode);
	fix_open(&s, "nn_layers", fx);
	fd_ctx_step(c);
	c->training = !strcmp(mode, "train");
	struct fd_tensor *x = grad_in(c, &s, "x"), *w = grad_in(c, &s, "w"), *b = grad_in(c, &s, "b");
	struct fd_tensor *rm = fix_get(c, &s, "rm"), *rv = fix_get(c, &s, "rv");
	int64_t one = 1;
	struct fd_tensor *nbt = fd_tensor_zeros(c, FD_DEV_CPU, 1, &one);
	struct fd_tensor *y = fd_batchnorm2d(c, x, w, b, rm, rv, nbt, 0.1, 1e-5);
	snprintf(nm, sizeof nm, "bn %s y", mode);
	fix_close(nm, y, fix_get(c, &s, "y"), 2e-5, 2e-5);
	ok(y && fd_backward(c, y, fix_get(c, &s, "dy")->data) == 0, "bn %s: backward", mode);
	snprintf(nm, sizeof nm, "bn %s dx", mode);
	fix_close_grad(nm, x, fix_get(c, &s, "dx"), 2e-5, 2e-5);
	snprintf(nm, sizeof nm, "bn %s dw", mode);
	fix_close_grad(nm, w, fix_get(c, &s, "dw"), 2e-5, 2e-5);
	snprintf(nm, sizeof nm, "bn %s db", mode);
	fix_close_grad(nm, b, fix_get(c, &s, "db"), 2e-5, 2e-5);
	snprintf(nm, sizeof nm, "bn %s running_mean", mode);
	fix_close(nm, rm, fix_get(c, &s, "rm_after"), 1e-6, 1e-5);
	snprintf(nm, sizeof nm, "bn %s running_var", mode);
	fix_close(nm, rv, fix_get(c, &s, "rv_after"), 1e-6, 1e-5);
	ok(nbt->data[0] == (c->training ? 1.0f : 0.0f), "bn %s: num_batches_tracked %g", mode, nbt->data[0]);
	c->training = 1;
	fd_st_close(&s);
}

static struct fd_tensor *pool(struct fd_ctx *c, const char *which, struct fd_tensor *x)
{
	if (!strcmp(which, "maxpool"))
		return fd_maxpool2d(c, x, 3, 2, 1, 0);
	if (!strcmp(which, "avgpool"))
		return fd_avgpool2d(c, x, 3, 2, 1, 1, 0);
	return fd_adaptive_avgpool2d(c, x, 3, 2);
}

static void test_pool(struct fd_ctx *c, const char *which)
{
	struct fd_st s;
	char nm[64];
	fix_open(&s, "nn_layers", which);
	fd_ctx_step(c);
	struct fd_tensor *x = grad_in(c, &s, "x");
	struct fd_tensor *y = pool(c, which, x);
	snprintf(nm, sizeof nm, "%s y", which);
	fix_close(nm, y, fix_get(c, &s, "y"), 1e-6, 1e-6);
	ok(y && fd_backward(c, y, fix_get(c, &s, "dy")->data) == 0, "%s: backward", which);
	snprintf(nm, sizeof nm, "%s dx", which);
	fix_close_grad(nm, x, fix_get(c, &s, "dx"), 1e-6, 1e-6);
	fd_st_close(&s);
}

/* conv(3->8, 3x3, pad 1, no bias) - bn - relu - maxpool 2 - gap - linear(8->1), BCE, AdamW */
static void test_net(struct fd_ctx *c)
{
	struct fd_st s;
	struct fd_params p;
	struct fd_err e = {{0}};
	struct fd_optim o;
	struct fd_conv2d_op op;
	fix_open(&s, "nn_layers", "net");
	fd_params_init(&p);
	static const char *names[] = {"conv.weight", "bn.weight", "bn.bias", "fc.weight", "fc.bias",
				      "bn.running_mean", "bn.running_var"};
	int64_t shp[7][4] = {{8, 3, 3, 3}, {8}, {8}, {1, 8}, {1}, {8}, {8}};
	int nd[7] = {4, 1, 1, 2, 1, 1, 1};
	for (int i = 0; i < 7; i++)
		fd_params_add(&p, names[i], i < 5 ? FD_P_PARAM : FD_P_BUFFER, nd[i], shp[i], &e);
	fd_params_add(&p, "bn.num_batches_tracked", FD_P_COUNTER, 0, NULL, &e);
	if (!ok(fd_params_alloc(&p, &e) == 0, "net: params %s", e.msg))
		return;
	for (int i = 0; i < 7; i++) {
		char nm[64];
		snprintf(nm, sizeof nm, "init.%s", names[i]);
		const struct fd_st_tensor *t = fix_raw(&s, nm, FD_DT_F32);
		memcpy(fd_params_tensor(&p, i)->data, t->data, t->nbytes);
	}
	fd_optim_adamw(&o, &p, 1e-2, 0.9, 0.999, 1e-8, 1e-2, &e);
	fd_conv2d_op_init(&op, 1, 1, 1, 1);
	const float *ref = fix_raw(&s, "losses", FD_DT_F32)->data;
	double worst = 0;
	unsigned long grows = 0;
	for (int step = 0; step < 3; step++) {
		fd_ctx_step(c);
		if (step == 1)
			grows = c->arena.grows;
		fd_params_zero_grad(&p);
		struct fd_tensor *t[8];
		for (int i = 0; i < 8; i++)
			t[i] = fd_params_tensor(&p, i);
		struct fd_tensor *h = fd_conv2d(c, &op, fix_get(c, &s, "x"), t[0], NULL);
		h = fd_maxpool2d(c, fd_relu(c, fd_batchnorm2d(c, h, t[1], t[2], t[5], t[6], t[7], 0.1, 1e-5)), 2, 2, 0, 0);
		h = fd_linear(c, fd_flatten(c, fd_adaptive_avgpool2d(c, h, 1, 1), 1), t[3], t[4]);
		struct fd_tensor *loss = fd_bce_with_logits(c, h, fix_get(c, &s, "t"));
		if (!ok(loss && fd_backward(c, loss, NULL) == 0, "net step %d: forward and backward %s", step, c->err.msg))
			break;
		double rel = fabs(loss->data[0] - ref[step]) / (1e-6 + 1e-5 * fabs(ref[step]));
		worst = tap_worse(worst, rel);
		fd_optim_step(&o, &p, &e);
	}
	ok(worst <= 1, "net: 3 AdamW losses match torch, worst %.3f of tol (1e-6 + 1e-5 rel)", worst);
	ok(c->arena.grows == grows, "net: no arena growth after step 1");
	for (int i = 0; i < 7; i++) {
		char nm[64];
		snprintf(nm, sizeof nm, "final.%s", names[i]);
		const struct fd_st_tensor *r = fix_raw(&s, nm, FD_DT_F32);
		tap_close_f32(nm, fd_params_tensor(&p, i)->data, r->data, (size_t)r->numel, 1e-5, 1e-4);
	}
	ok(fd_params_tensor(&p, 7)->data[0] == 3.0f, "net: num_batches_tracked counts 3 steps");
	fd_conv2d_op_free(&op);
	fd_optim_free(&o);
	fd_params_free(&p);
	fd_st_close(&s);
}

int main(void)
{
	struct fd_ctx c;
	struct fd_err e = {{0}};
	ctx_open(&c, 2, 7);
	test_conv(&c);
	test_linear(&c);
	test_bn(&c, "train");
	test_bn(&c, "eval");
	test_pool(&c, "maxpool");
	test_pool(&c, "avgpool");
	test_pool(&c, "adapool");
	test_net(&c);
	/* a device without a table: the constructor says so, leaves c2 zeroed */
	struct fd_ctx c2;
	ok(fd_ctx_open(&c2, FD_DEV_CUDA, 1, 1, &e) < 0 && strstr(e.msg, "cuda: not supported") && !c2.engine,
	   "context on cuda: %s", e.msg);
	fd_ctx_free(&c2);
	fd_ctx_free(&c);
	return tap_done();
}

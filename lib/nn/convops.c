/* convops: taped conv2d, linear, batchnorm2d and pooling over the op table,
 * and the CPU entries of that table (thin adapters over the raw kernels). */
#include "nn/convops.h"
#include "nn/batchnorm2d.h"
#include "nn/fd_backend.h"
#include "nn/fd_dnnl.h"
#include "nn/linear.h"

#include <stdlib.h>
#include <string.h>

static int wants(const struct fd_tensor *t)
{
	return t && (t->flags & FD_T_REQUIRES_GRAD);
}

/* ---------- CPU table entries ---------- */

static int ctx_err(struct fd_ctx *c, const struct fd_err *e)
{
	fd_fail(c, "%s", e->msg);
	return -1;
}

int fd_conv2d_plan_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, void **plan)
{
	struct fd_err e = {{0}};
	if (!c->engine || c->dev != FD_DEV_CPU) {
		fd_fail(c, "conv2d on cpu: the context has no oneDNN engine (fd_ctx_open)");
		return -1;
	}
	struct fd_conv2d *p = calloc(1, sizeof *p);
	if (!p) {
		fd_fail(c, "conv2d plan: out of memory");
		return -1;
	}
	if (fd_conv2d_init(p, c->engine, s, &e) < 0) {
		free(p);
		return ctx_err(c, &e);
	}
	*plan = p;
	return 0;
}

void fd_conv2d_plan_free_cpu(void *plan)
{
	if (!plan)
		return;
	fd_conv2d_free(plan);
	free(plan);
}

int fd_conv2d_fwd_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *b,
		      float *y)
{
	struct fd_err e = {{0}};
	return fd_conv2d_forward(plan, x, w, b, y, &e) < 0 ? ctx_err(c, &e) : 0;
}

int fd_conv2d_bwd_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *dy,
		      float *dx, float *dw, float *db)
{
	struct fd_conv2d *p = plan;
	struct fd_err e = {{0}};
	if (dx && fd_conv2d_backward_data(p, dy, w, dx, &e) < 0)
		return ctx_err(c, &e);
	if (!dw && !db)
		return 0;
	/* the weights primitive computes both; one not wanted goes to scratch */
	if (!dw) {
		int64_t n = (int64_t)p->s.K * (p->s.C / p->s.groups) * p->s.kh * p->s.kw;
		if (!(dw = fd_ctx_alloc(c, FD_DEV_CPU, n)))
			return -1;
		memset(dw, 0, (size_t)n * sizeof *dw);
	}
	if (p->s.bias && !db) {
		if (!(db = fd_ctx_alloc(c, FD_DEV_CPU, p->s.K)))
			return -1;
		memset(db, 0, (size_t)p->s.K * sizeof *db);
	}
	return fd_conv2d_backward_weights(p, x, dy, dw, db, &e) < 0 ? ctx_err(c, &e) : 0;
}

static int int_sizes(struct fd_ctx *c, const char *op, int64_t a, int64_t b, int64_t d)
{
	if (a > INT32_MAX || b > INT32_MAX || d > INT32_MAX) {
		fd_fail(c, "%s: sizes beyond 2^31 are not supported", op);
		return -1;
	}
	return 0;
}

static int linear_fwd_body(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *b, float *y)
{
	struct fd_err e = {{0}};
	if (int_sizes(c, "linear", N, in, out) < 0)
		return -1;
	return fd_linear_forward((int)N, (int)in, (int)out, x, w, b, y, &e) < 0 ? ctx_err(c, &e) : 0;
}

int fd_linear_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *b, float *y)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = linear_fwd_body(c, N, in, out, x, w, b, y);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int linear_bwd_body(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *dy, float *dx, float *dw, float *db)
{
	struct fd_err e = {{0}};
	if (int_sizes(c, "linear", N, in, out) < 0)
		return -1;
	if (dx && fd_linear_backward_data((int)N, (int)in, (int)out, dy, w, dx, &e) < 0)
		return ctx_err(c, &e);
	if (!dw && db) {
		/* rare (frozen weight, trained bias): column sums of dy */
		for (int64_t i = 0; i < N; i++)
			for (int64_t j = 0; j < out; j++)
				db[j] += dy[i * out + j];
		return 0;
	}
	if (dw && fd_linear_backward_weights((int)N, (int)in, (int)out, x, dy, dw, db, &e) < 0)
		return ctx_err(c, &e);
	return 0;
}

int fd_linear_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *dy, float *dx, float *dw, float *db)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = linear_bwd_body(c, N, in, out, x, w, dy, dx, dw, db);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int bn_fwd_train_body(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *b, float *rmean, float *rvar, double momentum,
			double eps, float *y, float *mean, float *invstd)
{
	struct fd_err e = {{0}};
	if (int_sizes(c, "batchnorm2d", N, C, HW) < 0)
		return -1;
	return fd_batchnorm2d_forward_train((int)N, (int)C, (int)HW, x, w, b, rmean, rvar, momentum,
					    eps, y, mean, invstd, &e) < 0 ? ctx_err(c, &e) : 0;
}

int fd_bn_fwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *b, float *rmean, float *rvar, double momentum,
			double eps, float *y, float *mean, float *invstd)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = bn_fwd_train_body(c, N, C, HW, x, w, b, rmean, rvar, momentum, eps, y, mean, invstd);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int bn_bwd_train_body(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *mean, const float *invstd, const float *dy,
			float *dx, float *dw, float *db)
{
	fd_batchnorm2d_backward_train((int)N, (int)C, (int)HW, dy, x, w, mean, invstd, dx, dw, db);
	return 0;
}

int fd_bn_bwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *mean, const float *invstd, const float *dy,
			float *dx, float *dw, float *db)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = bn_bwd_train_body(c, N, C, HW, x, w, mean, invstd, dy, dx, dw, db);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int bn_fwd_eval_body(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		       const float *w, const float *b, const float *rmean, const float *rvar,
		       double eps, float *y)
{
	if (int_sizes(c, "batchnorm2d", N, C, HW) < 0)
		return -1;
	fd_batchnorm2d_forward_eval((int)N, (int)C, (int)HW, x, w, b, rmean, rvar, eps, y);
	return 0;
}

int fd_bn_fwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		       const float *w, const float *b, const float *rmean, const float *rvar,
		       double eps, float *y)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = bn_fwd_eval_body(c, N, C, HW, x, w, b, rmean, rvar, eps, y);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int bn_bwd_eval_body(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		       const float *w, const float *rmean, const float *rvar, double eps,
		       const float *dy, float *dx, float *dw, float *db)
{
	fd_batchnorm2d_backward_eval((int)N, (int)C, (int)HW, dy, x, w, rmean, rvar, eps, dx, dw, db);
	return 0;
}

int fd_bn_bwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		       const float *w, const float *rmean, const float *rvar, double eps,
		       const float *dy, float *dx, float *dw, float *db)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = bn_bwd_eval_body(c, N, C, HW, x, w, rmean, rvar, eps, dy, dx, dw, db);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int maxpool_fwd_body(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y,
		       int32_t *idx)
{
	fd_maxpool2d_forward(s, x, y, idx);
	return 0;
}

int fd_maxpool_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y,
		       int32_t *idx)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = maxpool_fwd_body(c, s, x, y, idx);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int maxpool_bwd_body(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
		       const int32_t *idx, float *dx)
{
	fd_maxpool2d_backward(s, dy, idx, dx);
	return 0;
}

int fd_maxpool_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
		       const int32_t *idx, float *dx)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = maxpool_bwd_body(c, s, dy, idx, dx);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int avgpool_fwd_body(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y)
{
	fd_avgpool2d_forward(s, x, y);
	return 0;
}

int fd_avgpool_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = avgpool_fwd_body(c, s, x, y);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int avgpool_bwd_body(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy, float *dx)
{
	fd_avgpool2d_backward(s, dy, dx);
	return 0;
}

int fd_avgpool_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy, float *dx)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = avgpool_bwd_body(c, s, dy, dx);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int adapool_fwd_body(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
		       int64_t Wo, const float *x, float *y)
{
	struct fd_err e = {{0}};
	if (int_sizes(c, "adaptive_avg_pool2d", N * C, H, W) < 0)
		return -1;
	return fd_adaptive_avgpool2d_forward((int)N, (int)C, (int)H, (int)W, (int)Ho, (int)Wo, x, y, &e) < 0
		       ? ctx_err(c, &e) : 0;
}

int fd_adapool_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
		       int64_t Wo, const float *x, float *y)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = adapool_fwd_body(c, N, C, H, W, Ho, Wo, x, y);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int adapool_bwd_body(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
		       int64_t Wo, const float *dy, float *dx)
{
	struct fd_err e = {{0}};
	return fd_adaptive_avgpool2d_backward((int)N, (int)C, (int)H, (int)W, (int)Ho, (int)Wo, dy, dx, &e) < 0
		       ? ctx_err(c, &e) : 0;
}

int fd_adapool_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
		       int64_t Wo, const float *dy, float *dx)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = adapool_bwd_body(c, N, C, H, W, Ho, Wo, dy, dx);
	fd_dnnl_threads_leave(prev);
	return rc;
}

/* ---------- conv2d ---------- */

void fd_conv2d_op_init(struct fd_conv2d_op *op, int stride, int pad, int dilation, int groups)
{
	memset(op, 0, sizeof *op);
	op->sh = op->sw = stride;
	op->ph = op->pw = pad;
	op->dh = op->dw = dilation;
	op->groups = groups;
}

void fd_conv2d_op_free(struct fd_conv2d_op *op)
{
	for (int i = 0; i < op->nplans; i++) {
		const struct fd_backend *be = fd_backend_of(op->plans[i].dev);
		if (be && be->conv2d_plan_free)
			be->conv2d_plan_free(op->plans[i].plan);
	}
	op->nplans = 0;
}

static int same_shape(const struct fd_conv2d_shape *a, const struct fd_conv2d_shape *b)
{
	return a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W && a->K == b->K &&
	       a->kh == b->kh && a->kw == b->kw && a->sh == b->sh && a->sw == b->sw && a->ph == b->ph &&
	       a->pw == b->pw && a->dh == b->dh && a->dw == b->dw && a->groups == b->groups &&
	       a->bias == b->bias;
}

/* The plan for s on dev: found, or made (evicting the least recently used
 * plan not used in this step when all slots are taken). */
static void *get_plan(struct fd_ctx *c, struct fd_conv2d_op *op, const struct fd_conv2d_shape *s,
		      enum fd_dev dev, const struct fd_backend *be)
{
	for (int i = 0; i < op->nplans; i++)
		if (op->plans[i].dev == dev && same_shape(&op->plans[i].s, s)) {
			op->plans[i].last_step = c->step;
			return op->plans[i].plan;
		}
	int slot = op->nplans;
	if (slot == FD_CONV2D_PLANS) {
		slot = -1;
		for (int i = 0; i < op->nplans; i++)
			if (op->plans[i].last_step != c->step &&
			    (slot < 0 || op->plans[i].last_step < op->plans[slot].last_step))
				slot = i;
		if (slot < 0)
			return fd_fail(c, "conv2d: more than %d input sizes in one step", FD_CONV2D_PLANS);
		const struct fd_backend *old = fd_backend_of(op->plans[slot].dev);
		if (old && old->conv2d_plan_free)
			old->conv2d_plan_free(op->plans[slot].plan);
		op->plans[slot].plan = NULL;
		/* keep the table dense: move the last entry here, make the new plan at the end */
		op->plans[slot] = op->plans[op->nplans - 1];
		op->nplans--;
		slot = op->nplans;
	}
	void *plan = NULL;
	if (be->conv2d_plan(c, s, &plan) < 0)
		return NULL;
	op->plans[slot] = (struct fd_conv2d_plan_slot){*s, dev, plan, c->step};
	op->nplans++;
	return plan;
}

struct conv_saved {
	void *plan;
};

static int conv_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct conv_saved *s = n->saved;
	struct fd_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, conv2d_bwd);
	if (!be)
		return -1;
	return be->conv2d_bwd(c, s->plan, x->data, w->data, n->out->grad, wants(x) ? x->grad : NULL,
			      wants(w) ? w->grad : NULL, wants(b) ? b->grad : NULL);
}

struct fd_tensor *fd_conv2d(struct fd_ctx *c, struct fd_conv2d_op *op, struct fd_tensor *x,
			    struct fd_tensor *w, struct fd_tensor *b)
{
	if (!x || !w)
		return NULL;
	char b1[64], b2[64], b3[64] = "none";
	if (b)
		fd_tensor_shape_str(b, b3, sizeof b3);
	if (x->ndim != 4 || w->ndim != 4 || op->groups < 1 || x->shape[1] != w->shape[1] * op->groups ||
	    w->shape[0] % op->groups || (b && (b->numel != w->shape[0] || b->dev != x->dev)) ||
	    w->dev != x->dev || x->numel > INT32_MAX)
		return fd_fail(c, "conv2d: input %s, weight %s, bias %s and groups %d do not match",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(w, b2, sizeof b2),
			       b3, op->groups);
	struct fd_conv2d_shape s = {
		.N = (int)x->shape[0], .C = (int)x->shape[1], .H = (int)x->shape[2], .W = (int)x->shape[3],
		.K = (int)w->shape[0], .kh = (int)w->shape[2], .kw = (int)w->shape[3],
		.sh = op->sh, .sw = op->sw, .ph = op->ph, .pw = op->pw, .dh = op->dh, .dw = op->dw,
		.groups = op->groups, .bias = b != NULL,
	};
	int Ho, Wo;
	struct fd_err e = {{0}};
	if (fd_conv2d_out_size(&s, &Ho, &Wo, &e) < 0)
		return fd_fail(c, "conv2d: input %s, weight %s: %s", fd_tensor_shape_str(x, b1, sizeof b1),
			       fd_tensor_shape_str(w, b2, sizeof b2), e.msg);
	const struct fd_backend *be = FD_KERNEL(c, x->dev, conv2d_fwd);
	if (!be || !FD_KERNEL(c, x->dev, conv2d_plan))
		return NULL;
	void *plan = get_plan(c, op, &s, x->dev, be);
	int64_t shape[4] = {s.N, s.K, Ho, Wo};
	struct fd_tensor *y = plan ? fd_tensor_new(c, x->dev, 4, shape) : NULL;
	if (!y || be->conv2d_fwd(c, plan, x->data, w->data, b ? b->data : NULL, y->data) < 0)
		return NULL;
	c->macs += (uint64_t)y->numel * (uint64_t)(s.C / s.groups) * (uint64_t)(s.kh * s.kw);
	struct fd_tensor *in[3] = {x, w, b};
	int nin = b ? 3 : 2;
	if (fd_needs_grad(c, nin, in)) {
		struct fd_node *n = fd_tape_push(c, "conv2d", conv_backward, nin, in, y, sizeof(struct conv_saved));
		if (!n)
			return NULL;
		((struct conv_saved *)n->saved)->plan = plan;
	}
	return y;
}

/* ---------- linear ---------- */

static int linear_backward(struct fd_ctx *c, struct fd_node *n)
{
	struct fd_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, linear_bwd);
	if (!be)
		return -1;
	return be->linear_bwd(c, x->shape[0], x->shape[1], w->shape[0], x->data, w->data, n->out->grad,
			      wants(x) ? x->grad : NULL, wants(w) ? w->grad : NULL,
			      wants(b) ? b->grad : NULL);
}

struct fd_tensor *fd_linear(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
			    struct fd_tensor *b)
{
	if (!x || !w)
		return NULL;
	char b1[64], b2[64], b3[64] = "none";
	if (b)
		fd_tensor_shape_str(b, b3, sizeof b3);
	if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1] ||
	    (b && (b->numel != w->shape[0] || b->dev != x->dev)) || w->dev != x->dev)
		return fd_fail(c, "linear: input %s, weight %s and bias %s do not match",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(w, b2, sizeof b2), b3);
	const struct fd_backend *be = FD_KERNEL(c, x->dev, linear_fwd);
	int64_t shape[2] = {x->shape[0], w->shape[0]};
	struct fd_tensor *y = be ? fd_tensor_new(c, x->dev, 2, shape) : NULL;
	if (!y || be->linear_fwd(c, x->shape[0], x->shape[1], w->shape[0], x->data, w->data,
				 b ? b->data : NULL, y->data) < 0)
		return NULL;
	c->macs += (uint64_t)x->numel * (uint64_t)w->shape[0];
	struct fd_tensor *in[3] = {x, w, b};
	int nin = b ? 3 : 2;
	if (fd_needs_grad(c, nin, in) && !fd_tape_push(c, "linear", linear_backward, nin, in, y, 0))
		return NULL;
	return y;
}

/* ---------- batchnorm2d ---------- */

struct bn_saved {
	int train;
	int64_t N, C, HW;
	double eps;
	float *mean, *invstd;       /* train: batch statistics */
	const float *rmean, *rvar;  /* eval: running statistics (not changed in eval) */
};

static int bn_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct bn_saved *s = n->saved;
	struct fd_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
	float *dx = wants(x) ? x->grad : NULL, *dw = wants(w) ? w->grad : NULL;
	float *db = wants(b) ? b->grad : NULL;
	if (s->train) {
		const struct fd_backend *be = FD_KERNEL(c, x->dev, bn_bwd_train);
		return be ? be->bn_bwd_train(c, s->N, s->C, s->HW, x->data, w->data, s->mean, s->invstd,
					     n->out->grad, dx, dw, db) : -1;
	}
	const struct fd_backend *be = FD_KERNEL(c, x->dev, bn_bwd_eval);
	return be ? be->bn_bwd_eval(c, s->N, s->C, s->HW, x->data, w->data, s->rmean, s->rvar, s->eps,
				    n->out->grad, dx, dw, db) : -1;
}

struct fd_tensor *fd_batchnorm2d(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
				 struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
				 struct fd_tensor *nbt, double momentum, double eps)
{
	if (!x || !w || !b || !rm || !rv)
		return NULL;
	char b1[64], b2[64];
	int64_t C = x->ndim >= 2 ? x->shape[1] : -1;
	if (x->ndim < 2 || w->numel != C || b->numel != C || rm->numel != C || rv->numel != C ||
	    w->dev != x->dev || b->dev != x->dev || rm->dev != x->dev || rv->dev != x->dev)
		return fd_fail(c, "batchnorm2d: input %s and weight %s (with bias and running stats) do not match",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(w, b2, sizeof b2));
	int64_t N = x->shape[0], HW = x->numel / (N * C);
	struct fd_tensor *in[3] = {x, w, b};
	int rec = fd_needs_grad(c, 3, in);
	struct fd_tensor *y;
	struct bn_saved sv = {c->training, N, C, HW, eps, NULL, NULL, rm->data, rv->data};
	if (c->training) {
		const struct fd_backend *be = FD_KERNEL(c, x->dev, bn_fwd_train);
		y = be ? fd_tensor_new(c, x->dev, x->ndim, x->shape) : NULL;
		sv.mean = y ? fd_ctx_alloc(c, x->dev, C) : NULL;
		sv.invstd = sv.mean ? fd_ctx_alloc(c, x->dev, C) : NULL;
		if (!sv.invstd || be->bn_fwd_train(c, N, C, HW, x->data, w->data, b->data, rm->data, rv->data,
						   momentum, eps, y->data, sv.mean, sv.invstd) < 0)
			return NULL;
		if (nbt)
			nbt->data[0] += 1.0f; /* host view: the counter lives with the parameters */
	} else {
		const struct fd_backend *be = FD_KERNEL(c, x->dev, bn_fwd_eval);
		y = be ? fd_tensor_new(c, x->dev, x->ndim, x->shape) : NULL;
		if (!y || be->bn_fwd_eval(c, N, C, HW, x->data, w->data, b->data, rm->data, rv->data, eps,
					  y->data) < 0)
			return NULL;
	}
	if (rec) {
		struct fd_node *n = fd_tape_push(c, "batchnorm2d", bn_backward, 3, in, y, sizeof sv);
		if (!n)
			return NULL;
		*(struct bn_saved *)n->saved = sv;
	}
	return y;
}

/* ---------- pooling ---------- */

struct pool_saved {
	struct fd_pool2d_shape s;
	int32_t *idx;
};

static struct fd_tensor *pool_out(struct fd_ctx *c, const char *op, struct fd_tensor *x,
				  struct fd_pool2d_shape *s, int k, int stride, int pad, int ceil_mode,
				  int cip)
{
	char b1[64];
	if (x->ndim != 4 || x->numel > INT32_MAX)
		return fd_fail(c, "%s: input %s is not [N, C, H, W]", op, fd_tensor_shape_str(x, b1, sizeof b1));
	*s = (struct fd_pool2d_shape){(int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3],
				      k, k, stride, stride, pad, pad, ceil_mode, cip};
	int Ho, Wo;
	struct fd_err e = {{0}};
	if (fd_pool2d_out_size(s, &Ho, &Wo, &e) < 0)
		return fd_fail(c, "%s: input %s: %s", op, fd_tensor_shape_str(x, b1, sizeof b1), e.msg);
	int64_t shape[4] = {x->shape[0], x->shape[1], Ho, Wo};
	return fd_tensor_new(c, x->dev, 4, shape);
}

static int maxpool_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct pool_saved *s = n->saved;
	const struct fd_backend *be = FD_KERNEL(c, n->in[0]->dev, maxpool_bwd);
	return be ? be->maxpool_bwd(c, &s->s, n->out->grad, s->idx, n->in[0]->grad) : -1;
}

struct fd_tensor *fd_maxpool2d(struct fd_ctx *c, struct fd_tensor *x, int k, int stride, int pad,
			       int ceil_mode)
{
	if (!x)
		return NULL;
	struct pool_saved sv;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, maxpool_fwd);
	struct fd_tensor *y = be ? pool_out(c, "max_pool2d", x, &sv.s, k, stride, pad, ceil_mode, 1) : NULL;
	/* int32 indices in float-sized device memory */
	sv.idx = y ? (int32_t *)fd_ctx_alloc(c, x->dev, y->numel) : NULL;
	if (!sv.idx || be->maxpool_fwd(c, &sv.s, x->data, y->data, sv.idx) < 0)
		return NULL;
	if (fd_needs_grad(c, 1, &x)) {
		struct fd_node *n = fd_tape_push(c, "max_pool2d", maxpool_backward, 1, &x, y, sizeof sv);
		if (!n)
			return NULL;
		*(struct pool_saved *)n->saved = sv;
	}
	return y;
}

static int avgpool_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct pool_saved *s = n->saved;
	const struct fd_backend *be = FD_KERNEL(c, n->in[0]->dev, avgpool_bwd);
	return be ? be->avgpool_bwd(c, &s->s, n->out->grad, n->in[0]->grad) : -1;
}

struct fd_tensor *fd_avgpool2d(struct fd_ctx *c, struct fd_tensor *x, int k, int stride, int pad,
			       int ceil_mode, int count_include_pad)
{
	if (!x)
		return NULL;
	struct pool_saved sv = {0};
	const struct fd_backend *be = FD_KERNEL(c, x->dev, avgpool_fwd);
	struct fd_tensor *y = be ? pool_out(c, "avg_pool2d", x, &sv.s, k, stride, pad, ceil_mode,
					    count_include_pad) : NULL;
	if (!y || be->avgpool_fwd(c, &sv.s, x->data, y->data) < 0)
		return NULL;
	if (fd_needs_grad(c, 1, &x)) {
		struct fd_node *n = fd_tape_push(c, "avg_pool2d", avgpool_backward, 1, &x, y, sizeof sv);
		if (!n)
			return NULL;
		*(struct pool_saved *)n->saved = sv;
	}
	return y;
}

static int adapool_backward(struct fd_ctx *c, struct fd_node *n)
{
	struct fd_tensor *x = n->in[0], *y = n->out;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, adapool_bwd);
	return be ? be->adapool_bwd(c, x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->shape[2],
				    y->shape[3], y->grad, x->grad) : -1;
}

struct fd_tensor *fd_adaptive_avgpool2d(struct fd_ctx *c, struct fd_tensor *x, int Ho, int Wo)
{
	if (!x)
		return NULL;
	char b1[64];
	if (x->ndim != 4 || Ho < 1 || Wo < 1)
		return fd_fail(c, "adaptive_avg_pool2d: input %s to %dx%d: want [N, C, H, W] and a positive size",
			       fd_tensor_shape_str(x, b1, sizeof b1), Ho, Wo);
	const struct fd_backend *be = FD_KERNEL(c, x->dev, adapool_fwd);
	int64_t shape[4] = {x->shape[0], x->shape[1], Ho, Wo};
	struct fd_tensor *y = be ? fd_tensor_new(c, x->dev, 4, shape) : NULL;
	if (!y || be->adapool_fwd(c, x->shape[0], x->shape[1], x->shape[2], x->shape[3], Ho, Wo, x->data,
				  y->data) < 0)
		return NULL;
	if (fd_needs_grad(c, 1, &x) && !fd_tape_push(c, "adaptive_avg_pool2d", adapool_backward, 1, &x, y, 0))
		return NULL;
	return y;
}

/* mbconv: Conv2dNormActivation, SqueezeExcitation and inverted residual
 * blocks for EfficientNet and MobileNetV3 (torchvision names and init). */
#include "models/mbconv.h"
#include "nn/act.h"
#include "nn/binary.h"
#include "nn/dropout.h"
#include "nn/mbback.h"
#include "nn/mbfront.h"
#include "nn/se.h"

#include <stdio.h>

int fd_make_divisible(double v, int divisor)
{
	int nv = (int)(v + divisor / 2.0) / divisor * divisor;
	if (nv < divisor)
		nv = divisor;
	if (nv < 0.9 * v)
		nv += divisor;
	return nv;
}

int fd_mcna_add(struct fd_model *m, struct fd_mcna *l, const char *name, int cin, int cout, int k, int stride,
		int groups, double eps, double momentum, int act, struct fd_err *e)
{
	char nm[256];
	l->act = act;
	snprintf(nm, sizeof nm, "%s.0", name);
	if (fd_mconv_add(m, &l->conv, nm, cin, cout, k, stride, (k - 1) / 2, groups, 0, FD_MI_KAIMING_OUT, e) < 0)
		return -1;
	snprintf(nm, sizeof nm, "%s.1", name);
	return fd_mbn_add(m, &l->bn, nm, cout, eps, momentum, e);
}

struct fd_tensor *fd_mcna_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mcna *l, struct fd_tensor *x)
{
	/* in CPU inference conv-BN-activation is one convolution with the BN
	 * folded into it and the activation as its post-op; in CPU training
	 * the conv, then BN + activation as one op (fd_mconv_bn_fwd) */
	return fd_mconv_bn_fwd(m, c, &l->conv, &l->bn, l->act, x);
}

int fd_mse_add(struct fd_model *m, struct fd_mse *l, const char *name, int C, int Csq, enum fd_act act,
	       enum fd_act gate, struct fd_err *e)
{
	char nm[256];
	l->act = act;
	l->gate = gate;
	snprintf(nm, sizeof nm, "%s.fc1", name);
	if (fd_mconv_add(m, &l->fc1, nm, C, Csq, 1, 1, 0, 1, 1, FD_MI_KAIMING_OUT, e) < 0)
		return -1;
	snprintf(nm, sizeof nm, "%s.fc2", name);
	return fd_mconv_add(m, &l->fc2, nm, Csq, C, 1, 1, 0, 1, 1, FD_MI_KAIMING_OUT, e);
}

struct fd_tensor *fd_mse_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mse *l, struct fd_tensor *x)
{
	if (!x)
		return NULL;
	struct fd_tensor *in[5] = {x, fd_model_t(m, l->fc1.w), fd_model_t(m, l->fc1.b), fd_model_t(m, l->fc2.w),
				   fd_model_t(m, l->fc2.b)};
	if (c->dev == FD_DEV_CPU && x->dev == FD_DEV_CPU && !m->tap && !m->unfused && !fd_needs_grad(c, 5, in)) {
		m->nfused_se++;
		return fd_se_infer(c, x, in[1], in[2], in[3], in[4], l->act, l->gate);
	}
	struct fd_tensor *s = fd_adaptive_avgpool2d(c, x, 1, 1);
	s = fd_act(c, l->act, fd_mconv_fwd(m, c, &l->fc1, s));
	s = fd_act(c, l->gate, fd_mconv_fwd(m, c, &l->fc2, s));
	return fd_mul(c, x, s);
}

struct fd_tensor *fd_mse_fwd_conv(struct fd_model *m, struct fd_ctx *c, struct fd_mse *l, struct fd_tensor *x)
{
	if (!x || !fd_model_bf16_out(m, c))
		return fd_mse_fwd(m, c, l, x);
	struct fd_tensor *s = fd_adaptive_avgpool2d(c, x, 1, 1);
	s = fd_act(c, l->act, fd_mconv_fwd(m, c, &l->fc1, s));
	s = fd_act(c, l->gate, fd_mconv_fwd(m, c, &l->fc2, s));
	c->bf16_out = s != NULL;
	struct fd_tensor *y = fd_mul(c, x, s);
	c->bf16_out = 0;
	return y;
}

int fd_mbconv_add(struct fd_model *m, struct fd_mbconv *b, const char *name, const struct fd_mbconv_cfg *cfg,
		  struct fd_err *e)
{
	char nm[256];
	int k = 0;
	b->cfg = *cfg;
	b->has_expand = cfg->cexp != cfg->cin;
	b->res = cfg->stride == 1 && cfg->cin == cfg->cout;
	if (b->has_expand) {
		snprintf(nm, sizeof nm, "%s.block.%d", name, k++);
		if (fd_mcna_add(m, &b->expand, nm, cfg->cin, cfg->cexp, 1, 1, 1, cfg->eps, cfg->momentum, (int)cfg->act,
				e) < 0)
			return -1;
	}
	snprintf(nm, sizeof nm, "%s.block.%d", name, k++);
	if (fd_mcna_add(m, &b->dw, nm, cfg->cexp, cfg->cexp, cfg->k, cfg->stride, cfg->cexp, cfg->eps, cfg->momentum,
			(int)cfg->act, e) < 0)
		return -1;
	if (cfg->se_sq > 0) {
		snprintf(nm, sizeof nm, "%s.block.%d", name, k++);
		if (fd_mse_add(m, &b->se, nm, cfg->cexp, cfg->se_sq, cfg->se_act, cfg->se_gate, e) < 0)
			return -1;
	}
	snprintf(nm, sizeof nm, "%s.block.%d", name, k++);
	return fd_mcna_add(m, &b->proj, nm, cfg->cexp, cfg->cout, 1, 1, 1, cfg->eps, cfg->momentum, -1, e);
}

/* Whether b's expansion (if any) and depthwise convolution run as one
 * kernel on x: the conv-BN pairs fold (fp32 CPU inference, no tap, not
 * m->unfused) and fd_mbfront_serves, not m->no_mbfront */
static int front_fuses(struct fd_model *m, struct fd_ctx *c, struct fd_mbconv *b, struct fd_tensor *x)
{
	return x && !m->no_mbfront && fd_mbfront_serves(c, x, b->cfg.k, b->cfg.stride, (int)b->cfg.act) &&
	       (!b->has_expand || fd_mconv_bn_folds(m, c, &b->expand.conv, &b->expand.bn, x)) &&
	       fd_mconv_bn_folds(m, c, &b->dw.conv, &b->dw.bn, x);
}

/* Whether, after a fused front on x, b's squeeze-excitation, projection and
 * residual add run as one kernel (fd_mbback_infer): an SE, which
 * fd_mse_fwd would fuse (no tap, not m->unfused, no gradient), the
 * projection's conv-BN pair folds, fd_mbback_serves, not m->no_mbfront */
static int back_fuses(struct fd_model *m, struct fd_ctx *c, struct fd_mbconv *b, struct fd_tensor *x)
{
	if (b->cfg.se_sq <= 0 || m->no_mbfront || m->tap || m->unfused)
		return 0;
	struct fd_tensor *in[4] = {fd_model_t(m, b->se.fc1.w), fd_model_t(m, b->se.fc1.b), fd_model_t(m, b->se.fc2.w),
				   fd_model_t(m, b->se.fc2.b)};
	return !fd_needs_grad(c, 4, in) && fd_mbback_serves(c, x, (int)b->cfg.se_act, (int)b->cfg.se_gate) &&
	       fd_mconv_bn_folds(m, c, &b->proj.conv, &b->proj.bn, x);
}

/* The expansion (if any) and depthwise convolution of b on x by
 * fd_mbfront_infer, the BNs folded (counted in m->nfused, as
 * fd_mconv_bn_fwd would); sums
 * (NULL: none) receives the output's channel sums per image */
static struct fd_tensor *front(struct fd_model *m, struct fd_ctx *c, struct fd_mbconv *b, struct fd_tensor *x,
			       double *sums)
{
	struct fd_tensor *we = NULL, *be = NULL, *wd, *bd;
	if ((b->has_expand && fd_mconv_bn_fold(m, c, &b->expand.conv, &b->expand.bn, &we, &be) < 0) ||
	    fd_mconv_bn_fold(m, c, &b->dw.conv, &b->dw.bn, &wd, &bd) < 0)
		return NULL;
	m->nfused += 1 + b->has_expand;
	m->nfused_front++;
	return fd_mbfront_infer(c, x, we, be, wd, bd, b->cfg.stride, (int)b->cfg.act, sums);
}

/* b's squeeze-excitation on h (channel sums `sums`), projection (BN folded)
 * and, for a residual block, the add into x (in place: the block's output
 * is then x, as fd_mconv_bn_add_fwd's), else written into y, by
 * fd_mbback_infer; counted as the fused SE, the folded projection and the
 * fused add */
static struct fd_tensor *back(struct fd_model *m, struct fd_ctx *c, struct fd_mbconv *b, struct fd_tensor *h,
			      const double *sums, struct fd_tensor *x, struct fd_tensor *y)
{
	struct fd_tensor *wp, *bp;
	if (!h || fd_mconv_bn_fold(m, c, &b->proj.conv, &b->proj.bn, &wp, &bp) < 0)
		return NULL;
	m->nfused++;
	m->nfused_se++;
	m->nfused_add += b->res;
	m->nfused_back++;
	return fd_mbback_infer(c, h, sums, fd_model_t(m, b->se.fc1.w), fd_model_t(m, b->se.fc1.b),
			       fd_model_t(m, b->se.fc2.w), fd_model_t(m, b->se.fc2.b), (int)b->cfg.se_act,
			       (int)b->cfg.se_gate, wp, bp, b->res ? x : y, b->res);
}

struct fd_tensor *fd_mbconv_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mbconv *b, struct fd_tensor *x)
{
	/* Without a tape nothing is kept inside the block: a keep moves the
	 * kept tensor down to the mark (memmove), and the expanded tensors
	 * (cexp channels) are the largest of the network, while the expand and
	 * depthwise outputs are alive together during the depthwise conv
	 * anyway; the caller's keep of the block's output (cout channels)
	 * releases them. In eval mode (stochastic depth is the identity)
	 * without a tap the residual add is fd_mconv_bn_add_fwd: where it
	 * folds, the projection's sum post-op written into x (nothing reads x
	 * after the block), else the taped ops adding x into the projection's
	 * output in place. */
	struct fd_tensor *h = x;
	if (front_fuses(m, c, b, x)) {
		/* expand + depthwise in one kernel, the expanded tensor never
		 * stored (fp32 CPU inference); then SE + projection + residual
		 * add in one, the depthwise output read once */
		if (back_fuses(m, c, b, x)) {
			/* a block without the residual: its output first, at the
			 * caller's mark, so the caller's keep of it moves nothing
			 * (the front's output, the largest, lies above it) */
			int64_t N = x->shape[0], C = b->cfg.cexp, p = (b->cfg.k - 1) / 2;
			int64_t ys[4] = {N, b->cfg.cout, (x->shape[2] + 2 * p - b->cfg.k) / b->cfg.stride + 1,
					 (x->shape[3] + 2 * p - b->cfg.k) / b->cfg.stride + 1};
			struct fd_tensor *y = b->res ? NULL : fd_tensor_new(c, FD_DEV_CPU, 4, ys);
			double *sums = (double *)fd_ctx_alloc(c, FD_DEV_CPU, 2 * N * C);
			if ((!b->res && !y) || !sums)
				return NULL;
			if (y)
				y->layout = FD_NHWC;
			return back(m, c, b, front(m, c, b, x, sums), sums, x, y);
		}
		h = front(m, c, b, x, NULL);
	} else {
		if (b->has_expand)
			h = fd_mcna_fwd(m, c, &b->expand, h);
		/* the depthwise output feeds only the projection where no SE
		 * reads it, else the SE's scaled output does: either may be
		 * handed off in bf16; with an SE the depthwise output (read by
		 * its pool and multiply, which take bf16) in bf16 under
		 * fd_model_bf16_se */
		h = b->cfg.se_sq > 0 && !fd_model_bf16_se(m, c)
			    ? fd_mcna_fwd(m, c, &b->dw, h)
			    : fd_mconv_bn_fwd_conv(m, c, &b->dw.conv, &b->dw.bn, b->dw.act, h);
	}
	if (b->cfg.se_sq > 0)
		h = fd_mse_fwd_conv(m, c, &b->se, h);
	if (!b->res)
		return fd_mcna_fwd(m, c, &b->proj, h);
	if (!c->training && !m->tap) /* with a tap, the hooks see torch's out-of-place add */
		return fd_mconv_bn_add_fwd(m, c, &b->proj.conv, &b->proj.bn, -1, h, x);
	h = fd_mcna_fwd(m, c, &b->proj, h);
	if (m->tap)
		return fd_add(c, fd_stochastic_depth(c, h, b->cfg.sd_p), x);
	/* in place: the projection's output feeds only these two, and neither
	 * its maker (batchnorm, or the folded conv at inference) nor they read
	 * it in backward */
	return fd_add_(c, fd_stochastic_depth_(c, h, b->cfg.sd_p), x);
}

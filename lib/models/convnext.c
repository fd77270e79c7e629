/* convnext: torchvision 0.14's ConvNeXt-Tiny (features.0 stem conv 4x4/4 +
 * LayerNorm2d, stages features.{1,3,5,7} of CNBlocks, downsampling
 * features.{2,4,6} = LayerNorm2d + conv 2x2/2, classifier LayerNorm2d ->
 * flatten -> Linear) with torchvision's state_dict names and initialisation,
 * plus convnext_mini, the same code with small widths for tests. */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/binary.h"
#include "nn/dropout.h"
#include "nn/layernorm2d.h"
#include "nn/shape.h"

#include <stdio.h>
#include <stdlib.h>

#define MAXBLOCKS 32
#define LN_EPS 1e-6f

struct cfg {
	int dims[4], depths[4];
	double sd_prob;       /* stochastic_depth_prob: block i of B gets sd_prob * i / (B - 1) */
	double layer_scale;   /* initial layer scale */
};

struct ln {
	int w, b;
};

/* CNBlock: block.0 depthwise conv 7x7 pad 3, block.2 LayerNorm (over C),
 * block.3 Linear(d, 4d), block.4 GELU, block.5 Linear(4d, d), layer_scale
 * [d,1,1], stochastic depth. The Linears act on NHWC data in torch; here they
 * are 1x1 convs over NCHW with the Linear's [out, in] weight viewed as
 * [out, in, 1, 1] (same arithmetic, no permutes), and the LayerNorm over the
 * last dim of the permuted tensor is LayerNorm2d over C. */
struct block {
	struct fd_mconv dw;
	struct ln norm;
	struct fd_mconv pw1, pw2;
	int scale;
	float sd;
};

struct convnext {
	struct fd_mconv stem;
	struct ln stem_norm;
	int nblocks[4];
	struct block b[MAXBLOCKS];
	struct ln down_norm[3];
	struct fd_mconv down[3];
	struct ln head_norm;
	struct fd_mlinear fc;
};

static const struct fd_minit TRUNC = {FD_MI_TRUNC_NORMAL, 0.02, 2.0, 0};

/* nn.Conv2d with torchvision ConvNeXt's init: trunc_normal_(std=0.02) (torch's
 * absolute bounds -2, 2) and a zero bias */
static int conv_add(struct fd_model *m, struct fd_mconv *l, const char *name, int cin, int cout, int k,
		    int stride, int pad, int groups, struct fd_err *e)
{
	if (fd_mconv_add(m, l, name, cin, cout, k, stride, pad, groups, 1, FD_MI_ZEROS, e) < 0)
		return -1;
	m->init[l->w] = TRUNC;
	return 0;
}

/* nn.Linear(in, out) named `name` run as a 1x1 conv: declares name.weight
 * [out, in] (torch's Linear shape, trunc_normal 0.02) and name.bias [out]
 * (zero); the forward views the weight as a [out, in, 1, 1] kernel. */
static int pw_add(struct fd_model *m, struct fd_mconv *l, const char *name, int in, int out,
		  struct fd_err *e)
{
	struct fd_mlinear lin;
	if (fd_mlinear_add(m, &lin, name, in, out, 1, TRUNC, e) < 0)
		return -1;
	fd_conv2d_op_init(&l->op, 1, 0, 1, 1);
	l->w = lin.w;
	l->b = lin.b;
	return fd_model_conv_op(m, &l->op, e);
}

/* A Linear's weight [out, in] as a 1x1 conv kernel [out, in, 1, 1]: a header
 * over the same data and the same gradient buffer, so the conv's backward
 * adds straight into the parameter's gradient (a taped fd_reshape would work
 * too, at the price of one more copy-add of the weight gradient per step). */
static struct fd_tensor *kernel_of(struct fd_ctx *c, struct fd_tensor *w)
{
	int64_t s[4] = {w->shape[0], w->shape[1], 1, 1};
	struct fd_tensor *k = fd_tensor_wrap(c, w->dev, w->data, 4, s);
	if (k) {
		k->grad = w->grad;
		k->flags = w->flags;
	}
	return k;
}

static struct fd_tensor *pw_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *l,
				struct fd_tensor *x)
{
	if (!x)
		return NULL;
	return fd_conv2d(c, &l->op, x, kernel_of(c, fd_model_t(m, l->w)), fd_model_t(m, l->b));
}

static int ln_add(struct fd_model *m, struct ln *l, const char *name, int C, struct fd_err *e)
{
	char nm[128];
	int64_t s[1] = {C};
	struct fd_minit one = {FD_MI_ONES, 0, 0, 0}, zero = {FD_MI_ZEROS, 0, 0, 0};
	snprintf(nm, sizeof nm, "%s.weight", name);
	if ((l->w = fd_model_param(m, nm, FD_P_PARAM, 1, s, one, e)) < 0)
		return -1;
	snprintf(nm, sizeof nm, "%s.bias", name);
	return (l->b = fd_model_param(m, nm, FD_P_PARAM, 1, s, zero, e)) < 0 ? -1 : 0;
}

static struct fd_tensor *ln_fwd(struct fd_model *m, struct fd_ctx *c, struct ln *l, struct fd_tensor *x)
{
	return fd_layernorm2d(c, x, fd_model_t(m, l->w), fd_model_t(m, l->b), LN_EPS);
}

static int build(struct fd_model *m, const struct cfg *g, struct fd_err *e)
{
	struct convnext *r = calloc(1, sizeof *r);
	if (!r)
		return fd_err_set(e, "out of memory");
	m->priv = r;
	char nm[96];
	int total = 0, id = 0;
	for (int s = 0; s < 4; s++)
		total += g->depths[s];
	if (total > MAXBLOCKS)
		return fd_err_set(e, "%d blocks, at most %d", total, MAXBLOCKS);
	/* features.0: Conv2dNormActivation(3, d0, 4, stride 4, padding 0, bias, LayerNorm2d, no activation) */
	if (conv_add(m, &r->stem, "features.0.0", 3, g->dims[0], 4, 4, 0, 1, e) < 0 ||
	    ln_add(m, &r->stem_norm, "features.0.1", g->dims[0], e) < 0)
		return -1;
	for (int s = 0; s < 4; s++) {
		int d = g->dims[s];
		r->nblocks[s] = g->depths[s];
		for (int i = 0; i < g->depths[s]; i++, id++) {
			struct block *b = &r->b[id];
			char p[64];
			snprintf(p, sizeof p, "features.%d.%d", 2 * s + 1, i);
			/* torchvision: sd_prob = stochastic_depth_prob * stage_block_id / (total_stage_blocks - 1.0) */
			b->sd = (float)(total > 1 ? g->sd_prob * id / (total - 1.0) : 0.0);
			int64_t ls[3] = {d, 1, 1};
			struct fd_minit lsi = {FD_MI_CONSTANT, g->layer_scale, 0, 0};
			/* state_dict order: the block's own parameter, then its children */
			snprintf(nm, sizeof nm, "%s.layer_scale", p);
			if ((b->scale = fd_model_param(m, nm, FD_P_PARAM, 3, ls, lsi, e)) < 0)
				return -1;
			snprintf(nm, sizeof nm, "%s.block.0", p);
			if (conv_add(m, &b->dw, nm, d, d, 7, 1, 3, d, e) < 0)
				return -1;
			snprintf(nm, sizeof nm, "%s.block.2", p);
			if (ln_add(m, &b->norm, nm, d, e) < 0)
				return -1;
			snprintf(nm, sizeof nm, "%s.block.3", p);
			if (pw_add(m, &b->pw1, nm, d, 4 * d, e) < 0)
				return -1;
			snprintf(nm, sizeof nm, "%s.block.5", p);
			if (pw_add(m, &b->pw2, nm, 4 * d, d, e) < 0)
				return -1;
		}
		if (s < 3) {
			snprintf(nm, sizeof nm, "features.%d.0", 2 * s + 2);
			if (ln_add(m, &r->down_norm[s], nm, d, e) < 0)
				return -1;
			snprintf(nm, sizeof nm, "features.%d.1", 2 * s + 2);
			if (conv_add(m, &r->down[s], nm, d, g->dims[s + 1], 2, 2, 0, 1, e) < 0)
				return -1;
		}
	}
	if (ln_add(m, &r->head_norm, "classifier.0", g->dims[3], e) < 0)
		return -1;
	return fd_mlinear_add(m, &r->fc, "classifier.2", g->dims[3], m->num_classes, 1, TRUNC, e);
}

/* Whether block b's forward on x fuses (block_fused): in CPU inference
 * (eval mode, no gradient to record, no tap, not m->unfused, as
 * fd_mconv_bn_fwd's fold), fp32 or bf16 (the folded weights rounded once
 * to bf16, fd_model_fold_pw; the sum post-op adds into the fp32
 * accumulator; t_models_convnext checks the bf16 logits against
 * torchvision's). */
static int block_fuses(struct fd_model *m, struct fd_ctx *c, struct block *b, struct fd_tensor *x)
{
	struct fd_tensor *in[10] = {x,
				    fd_model_t(m, b->dw.w),
				    fd_model_t(m, b->dw.b),
				    fd_model_t(m, b->norm.w),
				    fd_model_t(m, b->norm.b),
				    fd_model_t(m, b->pw1.w),
				    fd_model_t(m, b->pw1.b),
				    fd_model_t(m, b->pw2.w),
				    fd_model_t(m, b->pw2.b),
				    fd_model_t(m, b->scale)};
	return c->dev == FD_DEV_CPU && !c->training && !m->tap && !m->unfused && !fd_needs_grad(c, 10, in);
}

/* The fused inference block (doc/nn-kernels.md "ConvNeXt inference"):
 * dwconv, the LayerNorm's normalisation in place, pw1 with the norm's
 * weight and bias folded in and GELU as its post-op, pw2 with the layer
 * scale folded in and the residual added into x by its sum post-op: x is
 * OVERWRITTEN with the block's output and returned (nothing reads the
 * block's input afterwards). Eval mode: no stochastic depth. */
static struct fd_tensor *block_fused(struct fd_model *m, struct fd_ctx *c, struct block *b, struct fd_tensor *x)
{
	struct fd_mark mk = fd_ctx_mark(c);
	struct fd_tensor *wf, *bf;
	struct fd_tensor *h = fd_layernorm2d_norm_(c, fd_mconv_fwd(m, c, &b->dw, x), LN_EPS);
	if (!h || fd_model_fold_pw(c, fd_model_t(m, b->pw1.w), fd_model_t(m, b->pw1.b), fd_model_t(m, b->norm.w),
				   fd_model_t(m, b->norm.b), NULL, &wf, &bf) < 0)
		return NULL;
	h = fd_conv2d_infer(c, &b->pw1.op, h, wf, bf, FD_CONV_POST_GELU);
	if (!h || fd_model_fold_pw(c, fd_model_t(m, b->pw2.w), fd_model_t(m, b->pw2.b), NULL, NULL,
				   fd_model_t(m, b->scale), &wf, &bf) < 0)
		return NULL;
	m->nfused += 2;
	m->nfused_add++;
	return fd_ctx_keep(c, &mk, fd_conv2d_infer_add(c, &b->pw2.op, h, wf, bf, FD_CONV_POST_NONE, x));
}

/* CNBlock.forward: x + stochastic_depth(layer_scale * block(x)) */
static struct fd_tensor *block_fwd(struct fd_model *m, struct fd_ctx *c, struct block *b, struct fd_tensor *x)
{
	if (x && block_fuses(m, c, b, x))
		return block_fused(m, c, b, x);
	/* without a tape each step's output replaces the previous one's (x,
	 * below the mark, stays for the residual) */
	struct fd_mark mk = fd_ctx_mark(c);
	/* the depthwise output, read only by the LayerNorm, in bf16 under
	 * fd_model_bf16_y; the LayerNorm's, read only by pw1, under
	 * fd_model_bf16_out */
	c->bf16_y = fd_model_bf16_y(m, c);
	struct fd_tensor *h = fd_mconv_fwd(m, c, &b->dw, x);
	c->bf16_y = 0;
	c->bf16_out = h && fd_model_bf16_out(m, c);
	h = fd_ctx_keep(c, &mk, ln_fwd(m, c, &b->norm, h));
	c->bf16_out = 0;
	/* GELU "in place" (fd_act_): pw1's output is read by nothing else, and
	 * in training it is overwritten with GELU' for the backward; pw1's
	 * output in bf16 under fd_model_bf16_y (GELU' then in bf16 too), GELU's
	 * output, read only by pw2, in bf16 under fd_model_bf16_out */
	c->bf16_y = h && fd_model_bf16_y(m, c);
	h = pw_fwd(m, c, &b->pw1, h);
	c->bf16_y = 0;
	c->bf16_out = h && fd_model_bf16_out(m, c);
	c->bf16_dy = h && fd_model_bf16_dy(m, c); /* its gradient to pw1 in bf16 */
	h = fd_ctx_keep(c, &mk, fd_act_(c, FD_ACT_GELU, h));
	c->bf16_dy = 0;
	c->bf16_out = 0;
	/* pw2's output, read only by the layer scale's mul, in bf16 under
	 * fd_model_bf16_y */
	c->bf16_y = h && fd_model_bf16_y(m, c);
	h = fd_ctx_keep(c, &mk, pw_fwd(m, c, &b->pw2, h));
	c->bf16_y = 0;
	/* stochastic depth and the residual add in place (mul's output feeds
	 * only them; neither op reads values in backward): two activations of
	 * the block's size less per block in training */
	h = fd_ctx_keep(c, &mk, fd_stochastic_depth_(c, fd_mul(c, fd_model_t(m, b->scale), h), b->sd));
	return fd_add_(c, h, x);
}

static struct fd_tensor *forward(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *x)
{
	struct convnext *r = m->priv;
	struct fd_mark mk = fd_ctx_mark(c); /* without a tape: one block's working set at a time */
	/* taps: the 2-d convs (stem, depthwise, downsampling; not the block
	 * Linears, channels-last in torch), features.S.B (blocks), features.S
	 * (stem, stages, downsamplings), "features" (= features.7), the head */
	x = FD_TAP(m, c, fd_ctx_keep(c, &mk, ln_fwd(m, c, &r->stem_norm, fd_mconv_fwd(m, c, &r->stem, x))),
		   "features.0");
	int id = 0;
	for (int s = 0; s < 4; s++) {
		for (int i = 0; i < r->nblocks[s]; i++)
			x = FD_TAP(m, c, fd_ctx_keep(c, &mk, block_fwd(m, c, &r->b[id++], x)), "features.%d.%d",
				   2 * s + 1, i);
		x = FD_TAP(m, c, x, "features.%d", 2 * s + 1);
		if (s < 3)
			x = FD_TAP(m, c,
				   fd_ctx_keep(c, &mk, fd_mconv_fwd(m, c, &r->down[s], ln_fwd(m, c, &r->down_norm[s], x))),
				   "features.%d", 2 * s + 2);
	}
	x = FD_TAP(m, c, x, "features");
	/* avgpool, then classifier: LayerNorm2d on [N, C, 1, 1], flatten, Linear */
	x = fd_flatten(c, ln_fwd(m, c, &r->head_norm, fd_adaptive_avgpool2d(c, x, 1, 1)), 1);
	return fd_mlinear_fwd(m, c, &r->fc, x);
}

static int build_tiny(struct fd_model *m, struct fd_err *e)
{
	static const struct cfg g = {{96, 192, 384, 768}, {3, 3, 9, 3}, 0.1, 1e-6};
	return build(m, &g, e);
}

static int build_mini(struct fd_model *m, struct fd_err *e)
{
	static const struct cfg g = {{16, 32, 64, 128}, {2, 1, 2, 1}, 0.1, 1e-6};
	return build(m, &g, e);
}

static const char *const head[] = {"classifier.2.weight", "classifier.2.bias", NULL};

const struct fd_model_arch fd_arch_convnext_tiny = {
	"convnext_tiny", "torchvision ConvNeXt-Tiny ([3,3,9,3] x (96,192,384,768), stochastic depth 0.1)",
	head, build_tiny, forward, "convnext_tiny-983f1562.pth",
};
const struct fd_model_arch fd_arch_convnext_mini = {
	"convnext_mini", "ConvNeXt [2,1,2,1] x (16,32,64,128) (tests only; not registered)",
	head, build_mini, forward, NULL,
};

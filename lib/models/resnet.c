/* resnet: torchvision's ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck,
 * "v1.5": the stride sits on the 3x3 conv), zero_init_residual=False, with
 * torchvision's state_dict names (conv1, bn1, layerL.B.convK, layerL.B.bnK,
 * layerL.B.downsample.{0,1}, fc) and initialisation (convs
 * kaiming_normal_(fan_out, relu), batchnorm 1 / 0, fc nn.Linear's default). */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/shape.h"

#include <stdio.h>
#include <stdlib.h>

#define MAXBLOCKS 16

struct block {
	struct fd_mconv conv[3];
	struct fd_mbn bn[3];
	int has_down;
	struct fd_mconv down;
	struct fd_mbn down_bn;
	int layer, index;         /* layer{layer}.{index} */
	int last;                 /* the last block of its layer */
};

struct resnet {
	int bottleneck;
	int nblocks;
	struct fd_mconv conv1;
	struct fd_mbn bn1;
	struct block b[MAXBLOCKS];
	struct fd_mlinear fc;
};

static int build(struct fd_model *m, const int *layers, int bottleneck, struct fd_err *e)
{
	struct resnet *r = calloc(1, sizeof *r);
	if (!r)
		return fd_err_set(e, "out of memory");
	m->priv = r;
	r->bottleneck = bottleneck;
	const int exp = bottleneck ? 4 : 1;
	char nm[96];
	if (fd_mconv_add(m, &r->conv1, "conv1", 3, 64, 7, 2, 3, 1, 0, FD_MI_KAIMING_OUT, e) < 0 ||
	    fd_mbn_add(m, &r->bn1, "bn1", 64, 1e-5, 0.1, e) < 0)
		return -1;
	int inplanes = 64;
	for (int L = 0; L < 4; L++) {
		int planes = 64 << L;
		for (int i = 0; i < layers[L]; i++) {
			struct block *b = &r->b[r->nblocks++];
			b->layer = L + 1;
			b->index = i;
			b->last = i == layers[L] - 1;
			int stride = (L > 0 && i == 0) ? 2 : 1;
			char p[64];
			snprintf(p, sizeof p, "layer%d.%d", L + 1, i);
			if (bottleneck) {
				int ks[3] = {1, 3, 1}, ss[3] = {1, stride, 1};
				int cin[3] = {inplanes, planes, planes}, cout[3] = {planes, planes, planes * 4};
				for (int k = 0; k < 3; k++) {
					snprintf(nm, sizeof nm, "%s.conv%d", p, k + 1);
					if (fd_mconv_add(m, &b->conv[k], nm, cin[k], cout[k], ks[k], ss[k], ks[k] / 2, 1, 0,
							 FD_MI_KAIMING_OUT, e) < 0)
						return -1;
					snprintf(nm, sizeof nm, "%s.bn%d", p, k + 1);
					if (fd_mbn_add(m, &b->bn[k], nm, cout[k], 1e-5, 0.1, e) < 0)
						return -1;
				}
			} else {
				int cin[2] = {inplanes, planes}, ss[2] = {stride, 1};
				for (int k = 0; k < 2; k++) {
					snprintf(nm, sizeof nm, "%s.conv%d", p, k + 1);
					if (fd_mconv_add(m, &b->conv[k], nm, cin[k], planes, 3, ss[k], 1, 1, 0,
							 FD_MI_KAIMING_OUT, e) < 0)
						return -1;
					snprintf(nm, sizeof nm, "%s.bn%d", p, k + 1);
					if (fd_mbn_add(m, &b->bn[k], nm, planes, 1e-5, 0.1, e) < 0)
						return -1;
				}
			}
			if (stride != 1 || inplanes != planes * exp) {
				b->has_down = 1;
				snprintf(nm, sizeof nm, "%s.downsample.0", p);
				if (fd_mconv_add(m, &b->down, nm, inplanes, planes * exp, 1, stride, 0, 1, 0,
						 FD_MI_KAIMING_OUT, e) < 0)
					return -1;
				snprintf(nm, sizeof nm, "%s.downsample.1", p);
				if (fd_mbn_add(m, &b->down_bn, nm, planes * exp, 1e-5, 0.1, e) < 0)
					return -1;
			}
			inplanes = planes * exp;
		}
	}
	struct fd_minit w = {FD_MI_TORCH_WEIGHT, 0, 0, 0};
	return fd_mlinear_add(m, &r->fc, "fc", 512 * exp, m->num_classes, 1, w, e);
}

/* The ops of torchvision's forward in its order, except that a block's
 * downsample runs before its last conv (the identity must exist for the
 * fused residual below); the order gradients add up in is still torch's
 * (x's gradient gets the downsample's share, then conv1's, as in torch's
 * backward). ReLUs and the residual add run in place
 * (torchvision: ReLU(inplace=True), out += identity): batchnorm2d and add do
 * not read their outputs in backward. Without a tape (inference) each
 * conv-bn-relu result and each block's output is kept and the rest released
 * (fd_ctx_keep), so the arena holds about one block's working set; there
 * each conv-bn(-relu) is one fused convolution (fd_mconv_bn_fwd) and a
 * block's last one also adds the identity and applies the ReLU
 * (fd_mconv_bn_add_fwd: written into the identity, which may be the
 * block's input x: nothing reads x after the block). In training the
 * stem's ReLU output (read by the max pool, which keeps its indices) and the
 * downsample's BN output (read by the residual add) live in the gradient
 * pool until their reader ran (fd_mconv_bn_fwd_transient). In bf16
 * training the stem's pooled output and every block's output are bf16
 * (fd_model_bf16_res: the bf16 residual stream). Taps
 * (fd_model_tap): the convs, "maxpool", "layerL.B" and "layerL" (the
 * outputs of torchvision's modules of those names), "fc". */
static struct fd_tensor *forward(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *x)
{
	struct resnet *r = m->priv;
	struct fd_mark mk = fd_ctx_mark(c);
	if (fd_model_bn_pools(m, c)) { /* the stem's BN, ReLU and pool as one op */
		x = fd_ctx_keep(c, &mk, fd_mconv_bn_pool_fwd(m, c, &r->conv1, &r->bn1, FD_ACT_RELU, x, 3, 2, 1,
							     fd_model_bf16_res(m, c)));
	} else {
		struct fd_tensor *s =
			fd_ctx_keep(c, &mk, fd_mconv_bn_fwd_transient(m, c, &r->conv1, &r->bn1, FD_ACT_RELU, x));
		x = fd_maxpool2d(c, s, 3, 2, 1, 0);
		fd_tensor_release(c, s);
		x = FD_TAP(m, c, fd_ctx_keep(c, &mk, x), "maxpool");
	}
	int nk = r->bottleneck ? 3 : 2;
	for (int i = 0; i < r->nblocks; i++) {
		struct block *b = &r->b[i];
		struct fd_mark bk = fd_ctx_mark(c); /* above x: x stays for the identity */
		struct fd_tensor *h = x;
		for (int k = 0; k < nk - 1; k++)
			h = fd_ctx_keep(c, &bk, fd_mconv_bn_fwd_conv(m, c, &b->conv[k], &b->bn[k], FD_ACT_RELU, h));
		struct fd_tensor *id = b->has_down ? fd_mconv_bn_fwd_transient(m, c, &b->down, &b->down_bn, -1, x) : x;
		h = fd_mconv_bn_add_fwd_res(m, c, &b->conv[nk - 1], &b->bn[nk - 1], FD_ACT_RELU, h, id);
		if (id != x)
			fd_tensor_release(c, id);
		x = FD_TAP(m, c, fd_ctx_keep(c, &mk, h), "layer%d.%d", b->layer, b->index);
		if (b->last)
			x = FD_TAP(m, c, x, "layer%d", b->layer);
	}
	x = fd_flatten(c, fd_adaptive_avgpool2d(c, x, 1, 1), 1);
	return fd_mlinear_fwd(m, c, &r->fc, x);
}

static int build18(struct fd_model *m, struct fd_err *e)
{
	static const int l[4] = {2, 2, 2, 2};
	return build(m, l, 0, e);
}

static int build34(struct fd_model *m, struct fd_err *e)
{
	static const int l[4] = {3, 4, 6, 3};
	return build(m, l, 0, e);
}

static int build50(struct fd_model *m, struct fd_err *e)
{
	static const int l[4] = {3, 4, 6, 3};
	return build(m, l, 1, e);
}

static const char *const head[] = {"fc.weight", "fc.bias", NULL};

const struct fd_model_arch fd_arch_resnet18 = {
	"resnet18", "torchvision ResNet-18 (BasicBlock [2,2,2,2])", head, build18, forward, "resnet18-f37072fd.pth",
};
const struct fd_model_arch fd_arch_resnet34 = {
	"resnet34", "torchvision ResNet-34 (BasicBlock [3,4,6,3])", head, build34, forward, "resnet34-b627a593.pth",
};
const struct fd_model_arch fd_arch_resnet50 = {
	"resnet50", "torchvision ResNet-50 (Bottleneck v1.5 [3,4,6,3])", head, build50, forward, "resnet50-11ad3fa6.pth",
};

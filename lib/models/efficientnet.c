/* efficientnet: torchvision's EfficientNet-B0 (torchvision 0.14
 * efficientnet_b0: width and depth 1.0, nn.BatchNorm2d defaults eps 1e-5
 * momentum 0.1 -- eps 1e-3 is only B5-B7 and V2 -- SiLU everywhere,
 * squeeze-excitation SiLU + sigmoid with max(1, cin / 4) squeeze channels,
 * stochastic depth 0.2 x block index / 16, Dropout(0.2) before the
 * classifier). state_dict names: features.0.{0,1} (stem), features.S.B.block.K
 * (stages S = 1..7), features.8.{0,1} (1x1 to 1280), classifier.1. Init:
 * convs kaiming_normal_(fan_out) with zero bias, batchnorm 1 / 0, Linear
 * uniform_(+-1/sqrt(num_classes)) with zero bias. 4 008 829 parameters with
 * one logit. */
#include "models/mbconv.h"
#include "nn/act.h"
#include "nn/dropout.h"
#include "nn/shape.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define NBLOCKS 16

struct effnet {
	struct fd_mcna stem, head;
	struct fd_mbconv b[NBLOCKS];
	struct fd_mlinear fc;
};

/* (expand_ratio, kernel, stride, in, out, layers) of torchvision's B0 */
static const int stages[7][6] = {
	{1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},   {6, 3, 2, 40, 80, 3},
	{6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1},
};

static int build(struct fd_model *m, struct fd_err *e)
{
	struct effnet *n = calloc(1, sizeof *n);
	if (!n)
		return fd_err_set(e, "out of memory");
	m->priv = n;
	const double eps = 1e-5, mom = 0.1;
	if (fd_mcna_add(m, &n->stem, "features.0", 3, 32, 3, 2, 1, eps, mom, FD_ACT_SILU, e) < 0)
		return -1;
	int id = 0;
	for (int s = 0; s < 7; s++) {
		const int *st = stages[s];
		for (int i = 0; i < st[5]; i++) {
			struct fd_mbconv_cfg cfg = {0};
			cfg.cin = i ? st[4] : st[3];
			cfg.cout = st[4];
			cfg.cexp = fd_make_divisible((double)cfg.cin * st[0], 8);
			cfg.k = st[1];
			cfg.stride = i ? 1 : st[2];
			cfg.act = FD_ACT_SILU;
			cfg.se_sq = cfg.cin / 4 > 1 ? cfg.cin / 4 : 1;
			cfg.se_act = FD_ACT_SILU;
			cfg.se_gate = FD_ACT_SIGMOID;
			cfg.eps = eps;
			cfg.momentum = mom;
			/* torchvision computes 0.2 * float(id) / 16 in double, then
			 * StochasticDepth keeps it as a Python float */
			cfg.sd_p = (float)(0.2 * (double)id / NBLOCKS);
			char nm[64];
			snprintf(nm, sizeof nm, "features.%d.%d", s + 1, i);
			if (fd_mbconv_add(m, &n->b[id], nm, &cfg, e) < 0)
				return -1;
			id++;
		}
	}
	if (fd_mcna_add(m, &n->head, "features.8", 320, 1280, 1, 1, 1, eps, mom, FD_ACT_SILU, e) < 0)
		return -1;
	struct fd_minit w = {FD_MI_UNIFORM, 1.0 / sqrt((double)m->num_classes), 0, 0};
	return fd_mlinear_add(m, &n->fc, "classifier.1", 1280, m->num_classes, 1, w, e);
}

static struct fd_tensor *forward(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *x)
{
	struct effnet *n = m->priv;
	struct fd_mark mk = fd_ctx_mark(c); /* without a tape: one block's working set at a time */
	/* taps: the convs, features.S.B (blocks), features.S (stages 0..8),
	 * "features" (= features.8), the classifier's linear */
	/* the stem's and head's outputs are not kept: a keep would move them
	 * (tens of MB at batch 32) over only their folded weights; the next
	 * block's keep, or the step's end, releases them */
	x = FD_TAP(m, c, fd_mcna_fwd(m, c, &n->stem, x), "features.0");
	int id = 0;
	for (int s = 0; s < 7; s++) {
		for (int i = 0; i < stages[s][5]; i++, id++)
			x = FD_TAP(m, c, fd_ctx_keep(c, &mk, fd_mbconv_fwd(m, c, &n->b[id], x)), "features.%d.%d", s + 1, i);
		x = FD_TAP(m, c, x, "features.%d", s + 1);
	}
	x = FD_TAP(m, c, fd_mcna_fwd(m, c, &n->head, x), "features.8");
	x = FD_TAP(m, c, x, "features");
	x = fd_flatten(c, fd_adaptive_avgpool2d(c, x, 1, 1), 1);
	return fd_mlinear_fwd(m, c, &n->fc, fd_dropout(c, x, 0.2f));
}

static const char *const head[] = {"classifier.1.weight", "classifier.1.bias", NULL};

const struct fd_model_arch fd_arch_efficientnet_b0 = {
	"efficientnet_b0", "torchvision EfficientNet-B0 (MBConv + SE, SiLU, stochastic depth 0.2)", head, build,
	forward, "efficientnet_b0_rwightman-7f5810bc.pth",
};

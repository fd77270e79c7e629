/* mobilenetv3: torchvision's MobileNetV3-Small (mobilenet_v3_small, width
 * 1.0: BatchNorm2d eps 1e-3 momentum 0.01, hardswish / ReLU per block,
 * squeeze-excitation ReLU + hardsigmoid with _make_divisible(exp / 4, 8)
 * squeeze channels, classifier Linear(576, 1024), Hardswish, Dropout(0.2),
 * Linear(1024, num_classes)). state_dict names: features.0.{0,1} (stem),
 * features.1..11.block.K, features.12.{0,1} (1x1 to 576), classifier.{0,3}.
 * Init: convs kaiming_normal_(fan_out) with zero bias, batchnorm 1 / 0,
 * Linear normal_(0, 0.01) with zero bias. 1 518 881 parameters with one
 * logit. */
#include "models/mbconv.h"
#include "nn/act.h"
#include "nn/dropout.h"
#include "nn/shape.h"

#include <stdio.h>
#include <stdlib.h>

#define NBLOCKS 11

struct mbv3 {
	struct fd_mcna stem, head;
	struct fd_mbconv b[NBLOCKS];
	struct fd_mlinear fc1, fc2;
};

/* (in, kernel, expanded, out, use_se, hardswish, stride) of torchvision's
 * mobilenet_v3_small setting */
static const int setting[NBLOCKS][7] = {
	{16, 3, 16, 16, 1, 0, 2},  {16, 3, 72, 24, 0, 0, 2},  {24, 3, 88, 24, 0, 0, 1},  {24, 5, 96, 40, 1, 1, 2},
	{40, 5, 240, 40, 1, 1, 1}, {40, 5, 240, 40, 1, 1, 1}, {40, 5, 120, 48, 1, 1, 1}, {48, 5, 144, 48, 1, 1, 1},
	{48, 5, 288, 96, 1, 1, 2}, {96, 5, 576, 96, 1, 1, 1}, {96, 5, 576, 96, 1, 1, 1},
};

static int build(struct fd_model *m, struct fd_err *e)
{
	struct mbv3 *n = calloc(1, sizeof *n);
	if (!n)
		return fd_err_set(e, "out of memory");
	m->priv = n;
	const double eps = 1e-3, mom = 0.01;
	if (fd_mcna_add(m, &n->stem, "features.0", 3, 16, 3, 2, 1, eps, mom, FD_ACT_HARDSWISH, e) < 0)
		return -1;
	for (int i = 0; i < NBLOCKS; i++) {
		const int *s = setting[i];
		struct fd_mbconv_cfg cfg = {0};
		cfg.cin = s[0];
		cfg.k = s[1];
		cfg.cexp = s[2];
		cfg.cout = s[3];
		cfg.se_sq = s[4] ? fd_make_divisible(s[2] / 4, 8) : 0;
		cfg.act = s[5] ? FD_ACT_HARDSWISH : FD_ACT_RELU;
		cfg.stride = s[6];
		cfg.se_act = FD_ACT_RELU;
		cfg.se_gate = FD_ACT_HARDSIGMOID;
		cfg.eps = eps;
		cfg.momentum = mom;
		char nm[64];
		snprintf(nm, sizeof nm, "features.%d", i + 1);
		if (fd_mbconv_add(m, &n->b[i], nm, &cfg, e) < 0)
			return -1;
	}
	if (fd_mcna_add(m, &n->head, "features.12", 96, 576, 1, 1, 1, eps, mom, FD_ACT_HARDSWISH, e) < 0)
		return -1;
	struct fd_minit w = {FD_MI_NORMAL, 0.01, 0, 0};
	if (fd_mlinear_add(m, &n->fc1, "classifier.0", 576, 1024, 1, w, e) < 0)
		return -1;
	return fd_mlinear_add(m, &n->fc2, "classifier.3", 1024, m->num_classes, 1, w, e);
}

static struct fd_tensor *forward(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *x)
{
	struct mbv3 *n = m->priv;
	struct fd_mark mk = fd_ctx_mark(c); /* without a tape: one block's working set at a time */
	/* taps: the convs, features.0..12 (stem, blocks, last conv), "features"
	 * (= features.12), the classifier's linears */
	/* the stem's and head's outputs are not kept: a keep would move them
	 * (tens of MB at batch 32) over only their folded weights; the next
	 * block's keep, or the step's end, releases them */
	x = FD_TAP(m, c, fd_mcna_fwd(m, c, &n->stem, x), "features.0");
	for (int i = 0; i < NBLOCKS; i++)
		x = FD_TAP(m, c, fd_ctx_keep(c, &mk, fd_mbconv_fwd(m, c, &n->b[i], x)), "features.%d", i + 1);
	x = FD_TAP(m, c, fd_mcna_fwd(m, c, &n->head, x), "features.12");
	x = FD_TAP(m, c, x, "features");
	x = fd_flatten(c, fd_adaptive_avgpool2d(c, x, 1, 1), 1);
	x = fd_dropout(c, fd_hardswish(c, fd_mlinear_fwd(m, c, &n->fc1, x)), 0.2f);
	return fd_mlinear_fwd(m, c, &n->fc2, x);
}

static const char *const head[] = {"classifier.3.weight", "classifier.3.bias", NULL};

const struct fd_model_arch fd_arch_mobilenet_v3_small = {
	"mobilenet_v3_small", "torchvision MobileNetV3-Small (inverted residuals + SE, hardswish)", head, build,
	forward, "mobilenet_v3_small-047dcff4.pth",
};

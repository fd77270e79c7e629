/* simplecnn: the small baseline CNN of DESIGN.md. Its PyTorch twin (state
 * dict names, initialisation) is SimpleCNN in tests/ref/models.py:
 *   features = Sequential(4 x [Conv2d(cin, cout, 3, padding=1, bias=False),
 *                              BatchNorm2d(cout), ReLU, MaxPool2d(2)])
 *              with cout 32, 64, 128, 256 (indices 0, 4, 8, 12 are convs,
 *              1, 5, 9, 13 batchnorms)
 *   avgpool = AdaptiveAvgPool2d(1); flatten
 *   classifier = Sequential(Dropout(0.5), Linear(256, num_classes))
 * PyTorch's default initialisation (nn.Conv2d / nn.Linear / BatchNorm2d). */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/dropout.h"
#include "nn/shape.h"

#include <stdio.h>
#include <stdlib.h>

struct simplecnn {
	struct fd_mconv conv[4];
	struct fd_mbn bn[4];
	struct fd_mlinear fc;
};

static int build(struct fd_model *m, struct fd_err *e)
{
	struct simplecnn *s = calloc(1, sizeof *s);
	if (!s)
		return fd_err_set(e, "out of memory");
	m->priv = s;
	static const int ch[5] = {3, 32, 64, 128, 256};
	char name[64];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "features.%d", 4 * i);
		if (fd_mconv_add(m, &s->conv[i], name, ch[i], ch[i + 1], 3, 1, 1, 1, 0, FD_MI_TORCH_WEIGHT, e) < 0)
			return -1;
		snprintf(name, sizeof name, "features.%d", 4 * i + 1);
		if (fd_mbn_add(m, &s->bn[i], name, ch[i + 1], 1e-5, 0.1, e) < 0)
			return -1;
	}
	struct fd_minit w = {FD_MI_TORCH_WEIGHT, 0, 0, 0};
	return fd_mlinear_add(m, &s->fc, "classifier.1", 256, m->num_classes, 1, w, e);
}

static struct fd_tensor *forward(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *x)
{
	struct simplecnn *s = m->priv;
	struct fd_mark mk = fd_ctx_mark(c); /* without a tape: one stage's working set at a time */
	for (int i = 0; i < 4; i++) {
		/* relu in place: batchnorm2d does not read its output in backward.
		 * Taps: the convs features.{0,4,8,12}, the ReLUs features.{2,6,10,14},
		 * the pools features.{3,7,11,15}, "features" (= features.15). In
		 * training without taps BN, ReLU and the pool are one op; the
		 * first three pools feed only a convolution */
		if (fd_model_bn_pools(m, c)) {
			x = fd_ctx_keep(c, &mk, fd_mconv_bn_pool_fwd(m, c, &s->conv[i], &s->bn[i], FD_ACT_RELU, x, 2,
								     2, 0, i < 3));
			continue;
		}
		x = fd_mconv_bn_fwd(m, c, &s->conv[i], &s->bn[i], FD_ACT_RELU, x); /* fused in inference */
		x = FD_TAP(m, c, fd_ctx_keep(c, &mk, x), "features.%d", 4 * i + 2);
		x = FD_TAP(m, c, fd_ctx_keep(c, &mk, fd_maxpool2d(c, x, 2, 2, 0, 0)), "features.%d", 4 * i + 3);
	}
	x = FD_TAP(m, c, x, "features");
	x = fd_flatten(c, fd_adaptive_avgpool2d(c, x, 1, 1), 1);
	return fd_mlinear_fwd(m, c, &s->fc, fd_dropout(c, x, 0.5f));
}

static const char *const head[] = {"classifier.1.weight", "classifier.1.bias", NULL};

const struct fd_model_arch fd_arch_simplecnn = {
	.name = "simplecnn",
	.summary = "4 x [conv3x3-BN-ReLU-maxpool] (32..256 channels), GAP, dropout 0.5, linear",
	.head = head,
	.build = build,
	.forward = forward,
	.imagenet = NULL, /* no torchvision model: init "imagenet" is refused */
};

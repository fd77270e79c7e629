/* mbconv: the building blocks shared by torchvision's EfficientNet and
 * MobileNetV3: Conv2dNormActivation, SqueezeExcitation and the inverted
 * residual (MBConv / InvertedResidual) block, declared under torchvision's
 * state_dict names with torchvision's initialisation (convs
 * kaiming_normal_(fan_out), conv biases 0, batchnorm 1 / 0). */
#ifndef FD_MBCONV_H
#define FD_MBCONV_H

#include "models/fd_model.h"
#include "nn/fd_backend.h"

/* torchvision.ops.Conv2dNormActivation(cin, cout, k, stride, groups=groups,
 * norm_layer=BatchNorm2d(eps, momentum), activation_layer=act): conv
 * `name.0` (bias-free, padding (k-1)/2), batchnorm `name.1`, then act
 * (act < 0: none). */
struct fd_mcna {
	struct fd_mconv conv;
	struct fd_mbn bn;
	int act; /* enum fd_act, or -1 */
};
int fd_mcna_add(struct fd_model *m, struct fd_mcna *l, const char *name, int cin, int cout, int k, int stride,
		int groups, double eps, double momentum, int act, struct fd_err *e);
/* y = act(bn(conv(x))); NULL propagates (c->err). */
struct fd_tensor *fd_mcna_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mcna *l, struct fd_tensor *x);

/* torchvision.ops.SqueezeExcitation(C, Csq, activation=act,
 * scale_activation=gate): name.fc1 = Conv2d(C, Csq, 1) and name.fc2 =
 * Conv2d(Csq, C, 1), both with bias; y = x * gate(fc2(act(fc1(avgpool(x))))),
 * the scale [N, C, 1, 1] broadcast over H, W. */
struct fd_mse {
	struct fd_mconv fc1, fc2;
	enum fd_act act, gate;
};
int fd_mse_add(struct fd_model *m, struct fd_mse *l, const char *name, int C, int Csq, enum fd_act act,
	       enum fd_act gate, struct fd_err *e);
/* The block on x; NULL propagates (c->err). On the CPU without a gradient
 * to record or a tap on the model (and not m->unfused), one in-place kernel
 * (fd_se_infer: x is OVERWRITTEN and returned, the caller must not need its
 * old values; counted in m->nfused_se); otherwise the taped ops (pool, fc1,
 * act, fc2, gate, mul into a new tensor). */
struct fd_tensor *fd_mse_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mse *l, struct fd_tensor *x);
/* fd_mse_fwd for an output that only convolutions read (MBConv's
 * projection): under fd_model_bf16_out the scaling multiply writes it in
 * bf16 (FD_T_BF16, the fp32 product rounded; c->bf16_outs counts it),
 * which conv2d reads as it is (doc/nn-kernels.md "bf16 hand-off"). The
 * same values reach the convolution. Otherwise exactly fd_mse_fwd. x may be
 * in bf16 (FD_T_BF16, under fd_model_bf16_se): the pool and the multiply
 * read it widened. */
struct fd_tensor *fd_mse_fwd_conv(struct fd_model *m, struct fd_ctx *c, struct fd_mse *l, struct fd_tensor *x);

/* One inverted residual block, `name.block.K` for K = 0.. in this order:
 * expand 1x1 (only when cexp != cin), depthwise k x k with the stride,
 * squeeze-excitation (only when se_sq > 0), project 1x1 (no activation).
 * The residual is added when stride == 1 and cin == cout, after
 * stochastic depth "row" with probability sd_p (EfficientNet; 0 for
 * MobileNetV3, which has none). torchvision: efficientnet.MBConv,
 * mobilenetv3.InvertedResidual. */
struct fd_mbconv_cfg {
	int cin, cexp, cout, k, stride;
	enum fd_act act;          /* expand and depthwise activation */
	int se_sq;                /* squeeze channels, 0 = no SE */
	enum fd_act se_act, se_gate;
	double eps, momentum;     /* of every batchnorm */
	float sd_p;               /* stochastic depth probability */
};
struct fd_mbconv {
	struct fd_mbconv_cfg cfg;
	int has_expand, res;
	struct fd_mcna expand, dw, proj;
	struct fd_mse se;
};
int fd_mbconv_add(struct fd_model *m, struct fd_mbconv *b, const char *name, const struct fd_mbconv_cfg *cfg,
		  struct fd_err *e);
/* The block's output; NULL propagates (c->err). In eval mode
 * (!c->training) without a tap a residual block's add may be fused into
 * the projection (fd_mconv_bn_add_fwd): its output is then x itself,
 * OVERWRITTEN, so the caller must not read x afterwards. */
struct fd_tensor *fd_mbconv_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mbconv *b, struct fd_tensor *x);

/* torchvision.models._utils._make_divisible(v, divisor, min_value=divisor):
 * v rounded to the nearest multiple of divisor, at least divisor, and not
 * below 90% of v. */
int fd_make_divisible(double v, int divisor);

#endif

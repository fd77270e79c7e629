/* fd_model: the model API. A model is named parameters and buffers (an
 * fd_params under torchvision's state_dict keys), the layer objects of its
 * architecture (conv plans, hyper-parameters) and a forward function that
 * returns logits [N, num_classes] on the context's tape. A registry maps
 * names to architectures. See doc/models.md ("How to add a model"). */
#ifndef FD_MODEL_H
#define FD_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"
#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/linear.h"
#include "nn/pool2d.h"
#include "nn/fd_params.h"
#include "nn/fd_tensor.h"

/* How one view is initialised (torch.nn.init / torchvision's init loops).
 * Each view draws from its own stream fd_init_rng(seed, name), so values do
 * not depend on declaration order (they are not torch's values: the
 * generators differ; the distributions are the same). */
enum fd_minit_kind {
	FD_MI_ZEROS,          /* constant 0 (biases under torchvision's init, BN bias, running_mean) */
	FD_MI_ONES,           /* constant 1 (BN weight, running_var) */
	FD_MI_CONSTANT,       /* constant a (ConvNeXt layer scale 1e-6) */
	FD_MI_TORCH_WEIGHT,   /* nn.Conv2d / nn.Linear default: kaiming_uniform_(a=sqrt(5)) */
	FD_MI_TORCH_BIAS,     /* nn.Conv2d / nn.Linear default bias: U(+-1/sqrt(fan_in of view `ref`)) */
	FD_MI_KAIMING_OUT,    /* kaiming_normal_(mode="fan_out", nonlinearity="relu") */
	FD_MI_NORMAL,         /* normal_(0, a) */
	FD_MI_UNIFORM,        /* uniform_(-a, a) */
	FD_MI_TRUNC_NORMAL,   /* trunc_normal_(0, a, -b, b) (absolute bounds, as torch) */
};

struct fd_minit {
	enum fd_minit_kind kind;
	double a, b;
	int ref;              /* FD_MI_TORCH_BIAS: index of the layer's weight view */
};

struct fd_model;

/* A tap on the forward: when m->tap is set, the forward calls fn with the
 * output of each named module as it finishes, under the module's torchvision
 * name (the state_dict prefix: "conv1", "layer4.1.conv2", "layer4",
 * "features.7", "features" for the whole feature extractor). Only outputs
 * that no later op changes in place are tapped (so t holds exactly what a
 * torch forward hook on that module sees): every conv, every linear, and the
 * block and stage outputs each architecture lists in its forward. t is the
 * tensor the forward goes on with (after fd_ctx_keep), so fn may call
 * fd_requires_grad(t) and set c->grad_enabled (Grad-CAM); fn returns 0, or
 * -1 to fail the forward with c->err set by fn. One name may tap the same
 * tensor as another ("layer4" and "layer4.1"). Without a tap (m->tap NULL,
 * the normal path) a forward pays one pointer test per module. */
struct fd_model_tap {
	int (*fn)(void *arg, struct fd_ctx *c, const char *name, struct fd_tensor *t);
	void *arg;
};

/* One architecture of the registry. */
struct fd_model_arch {
	const char *name;            /* "resnet18": what configs and --arch say */
	const char *summary;         /* one line for listings */
	/* state_dict names whose shape depends on num_classes (NULL-terminated):
	 * loading a file whose head differs keeps these freshly initialised */
	const char *const *head;
	/* Declare every view (fd_model_param / the layer helpers below), in
	 * state_dict order, and set m->priv to the layer objects (calloc'd; freed
	 * by fd_model_free). Runs before allocation: record view indices, not
	 * tensors. m->num_classes is set. */
	int (*build)(struct fd_model *m, struct fd_err *e);
	/* x [N, 3, H, W] normalised images -> logits [N, num_classes], on c's
	 * tape (train/eval from c->training). NULL on error (c->err). */
	struct fd_tensor *(*forward)(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *x);
	/* torchvision's ImageNet checkpoint of this architecture: its file name
	 * under FD_IMAGENET_URL ("resnet18-f37072fd.pth"; the hex digits are the
	 * first of its SHA-256), what config `init: "imagenet"` loads; NULL when
	 * torchvision has none (simplecnn). configs/weights.tsv holds the same
	 * names with the full hashes (make weights; doc/train.md). */
	const char *imagenet;
};

/* Where torchvision's ImageNet checkpoints are published (+ arch->imagenet). */
#define FD_IMAGENET_URL "https://download.pytorch.org/models/"

struct fd_model {
	const struct fd_model_arch *arch;
	int num_classes;
	uint64_t seed;                /* initialisation seed (head re-initialisation uses it too) */
	struct fd_params p;           /* views in state_dict order; host memory (fd_params_move: a device) */
	struct fd_minit *init;        /* one per view */
	int capinit;
	struct fd_conv2d_op **convs;  /* every conv op of the layers (their plans are freed with m) */
	int nconvs, capconvs;
	void *priv;                   /* the architecture's layer objects */
	const struct fd_model_tap *tap; /* NULL (default): no tap; borrowed */
	int nfused;                   /* conv-BN pairs folded by the last forward (fd_mconv_bn_fwd,
				       * fd_mconv_bn_add_fwd); ConvNeXt: its blocks' Linears with
				       * the norm or the layer scale folded in, 2 a block */
	int nfused_add;               /* of them, residual adds fused into the convolution
				       * (fd_mconv_bn_add_fwd; ConvNeXt: one a block) */
	int nfused_se;                /* squeeze-excitation blocks run as one kernel by the last
				       * forward (fd_mse_fwd: fd_se_infer) */
	int nfused_front;             /* inverted-residual fronts (expand + depthwise) run as one
				       * kernel by the last forward (fd_mbconv_fwd: fd_mbfront_infer) */
	int nfused_back;              /* of them, blocks whose SE, projection and residual add ran
				       * as one kernel too (fd_mbback_infer) */
	int no_mbfront;               /* 1: fd_mbconv_fwd never runs fd_mbfront_infer nor
				       * fd_mbback_infer (tests comparing with oneDNN's
				       * convolutions and fd_se_infer); 0 by default */
	int img_nchw;                 /* 1: the last forward handed the first convolution the
				       * image in NCHW, not transposed (fd_model_forward) */
	int unfused;                  /* 1: fd_mconv_bn_fwd never folds, fd_mse_fwd never fuses
				       * (tests comparing taped and untaped forwards bit for
				       * bit); 0 by default */
	int no_transient;             /* 1: fd_mconv_bn_fwd_transient keeps its result in the
				       * arena, as fd_mconv_bn_fwd (tests comparing the two bit
				       * for bit); 0 by default */
	int no_bf16_out;              /* 1: fd_model_bf16_out always says no (tests comparing
				       * bf16 training with and without the hand-off bit for
				       * bit); 0 by default */
	int no_bn_pool;               /* 1: fd_model_bn_pools always says no (tests comparing
				       * training with and without BN + pool fused bit for
				       * bit); 0 by default */
	int no_bf16_dy;               /* 1: fd_model_bf16_dy always says no (tests comparing
				       * bf16 training with and without the gradient hand-off
				       * bit for bit); 0 by default */
	int no_bn_add;                /* 1: fd_mconv_bn_add_fwd in training never runs BN, the
				       * add and ReLU as one op (tests comparing bit for bit);
				       * 0 by default */
	int no_bf16_y;                /* 1: fd_model_bf16_y always says no (tests comparing
				       * bf16 training with fp32 and bf16 convolution
				       * outputs); 0 by default */
	int no_bf16_se;               /* 1: fd_model_bf16_se always says no (tests comparing
				       * bf16 training with fp32 and bf16 squeeze-excitation
				       * inputs); 0 by default */
	int no_bf16_res;              /* 1: fd_model_bf16_res always says no (tests comparing
				       * bf16 training with an fp32 and a bf16 residual
				       * stream); 0 by default */
};

/* ---- registry ---- */

/* Number of architectures, and the i-th (registry order: simplecnn, resnet18, ...). */
int fd_model_count(void);
const struct fd_model_arch *fd_model_arch_at(int i);
/* By name, or NULL. */
const struct fd_model_arch *fd_model_arch_find(const char *name);

/* ---- life cycle ---- */

/* Build architecture `name` with a head of num_classes (>= 1) outputs and
 * parameters initialised as torchvision does (seeded). *out is a new model
 * owned by the caller (fd_model_free). c is used only for errors of plan
 * making later; building itself allocates host memory only. Errors: unknown
 * name (the message lists the known ones), num_classes < 1, out of memory. */
int fd_model_new(const char *name, int num_classes, uint64_t seed, struct fd_model **out,
		 struct fd_err *e);
/* fd_model_new for an architecture record that need not be in the registry
 * (test variants such as convnext_mini). */
int fd_model_new_arch(const struct fd_model_arch *a, int num_classes, uint64_t seed,
		      struct fd_model **out, struct fd_err *e);
/* Free the parameters, the conv plans and the layers; NULL is a no-op. */
void fd_model_free(struct fd_model *m);

/* logits [N, num_classes] = model(x), x [N, 3, H, W] (as torch: model(x)).
 * Training mode, dropout and gradient recording follow c. Parameters' grads
 * ADD into m->p.grad (the caller zeroes it, fd_params_zero_grad). The CPU
 * needs a context from fd_ctx_open. NULL on error (c->err). */
struct fd_tensor *fd_model_forward(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *x);

/* Trainable scalars (sum(p.numel() for p in model.parameters())). */
int64_t fd_model_params(const struct fd_model *m);
/* Multiply-adds of one forward at batch 1, 3 x size x size: the MACs of
 * every conv2d and linear (what fvcore's FlopCountAnalysis and torchvision's
 * model tables call "FLOPs": 1.81 G for resnet18 at 224), measured by running
 * the forward in eval mode without gradients on a private context.
 * Errors: those of the forward. */
int fd_model_macs(struct fd_model *m, int size, uint64_t *macs, struct fd_err *e);

/* ---- weights in and out ---- */

/* Save every view and the metadata fd.arch, fd.num_classes, then the pairs
 * of meta (key, value, ..., NULL; may be NULL) atomically to path (safetensors,
 * fd_ckpt_save). Loads in PyTorch with load_state_dict(strict=True). */
int fd_model_save(const struct fd_model *m, const char *path, const char *const *meta,
		  struct fd_err *e);

/* Load weights from an fd checkpoint or any safetensors file, or a torch
 * .pth/.pt state dict (zip or legacy; recognised by content, not name).
 * Every view must be in the file with its shape (float tensors of any
 * precision are converted to float32; counters are int64 scalars), and the
 * file must hold nothing else; views of the head (arch->head) may differ in
 * shape: then the whole head keeps a fresh initialisation (seed m->seed),
 * the rest is loaded, and note receives a sentence saying so ("fc.weight is
 * [1000,512] in 'x.pth', [1,512] here: backbone loaded, head (fc.weight,
 * fc.bias) freshly initialised"); note is "" otherwise (note may be NULL).
 * An fd checkpoint of another architecture (fd.arch) is refused, and so
 * are values fd_ckpt_check refuses (NaN/inf, a negative running_var or
 * num_batches_tracked; the message names the file and tensor). On error
 * nothing is copied and the message lists every missing, extra and
 * mismatched name. torch: model.load_state_dict(sd, strict=True). */
int fd_model_load(struct fd_model *m, const char *path, char *note, size_t notelen,
		  struct fd_err *e);

/* Re-initialise views whose name starts with prefix (all when prefix is
 * ""), from seed. Returns how many. */
int fd_model_reinit(struct fd_model *m, const char *prefix, uint64_t seed, struct fd_err *e);

/* ---- for architecture authors (build / forward) ---- */

/* t after the tap of module `fmt...` (printf-style name, formatted only when
 * m->tap is set): t itself, or NULL when t is NULL, the context has failed
 * or the tap failed (c->err). Call as FD_TAP(m, c, t, "layer%d", L). */
struct fd_tensor *fd_model_tap_at(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *t,
				  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define FD_TAP(m, c, t, ...) ((m)->tap ? fd_model_tap_at((m), (c), (t), __VA_ARGS__) : (t))

/* Declare a view with its initialiser; returns its index or -1. */
int fd_model_param(struct fd_model *m, const char *name, enum fd_pkind kind, int ndim,
		   const int64_t *shape, struct fd_minit init, struct fd_err *e);
/* The tensor of view i (valid after fd_model_new returned). */
static inline struct fd_tensor *fd_model_t(struct fd_model *m, int i)
{
	return &m->p.v[i].t;
}

/* Register a conv op of the layers (fd_mconv_add does it) so that its plans
 * are freed with the model and dropped by fd_model_macs: for convs whose
 * weights are declared otherwise (ConvNeXt's Linears run as 1x1 convs).
 * Errors: out of memory. */
int fd_model_conv_op(struct fd_model *m, struct fd_conv2d_op *op, struct fd_err *e);

/* nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=bias) named
 * `name` (views name.weight [cout, cin/groups, k, k], name.bias [cout]).
 * init FD_MI_TORCH_WEIGHT gives nn.Conv2d's default weight and bias;
 * FD_MI_KAIMING_OUT torchvision's kaiming_normal_(fan_out) weight and zero
 * bias. */
struct fd_mconv {
	int w, b;                 /* view indices; b = -1 without bias */
	struct fd_conv2d_op op;
};
int fd_mconv_add(struct fd_model *m, struct fd_mconv *l, const char *name, int cin, int cout, int k,
		 int stride, int pad, int groups, int bias, enum fd_minit_kind init, struct fd_err *e);
struct fd_tensor *fd_mconv_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *l,
			       struct fd_tensor *x);

/* nn.BatchNorm2d(C, eps, momentum): name.weight (1), name.bias (0),
 * name.running_mean (0), name.running_var (1), name.num_batches_tracked (0). */
struct fd_mbn {
	int w, b, rm, rv, nbt;
	double eps, momentum;
};
int fd_mbn_add(struct fd_model *m, struct fd_mbn *l, const char *name, int C, double eps,
	       double momentum, struct fd_err *e);
struct fd_tensor *fd_mbn_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mbn *l,
			     struct fd_tensor *x);

/* bn(conv(x)), then the activation act (enum fd_act, or -1 for none; in
 * place: fd_act_), as the conv-BN(-act) units of every model but ConvNeXt.
 * In CPU inference (eval mode, no gradient to
 * record, no tap on the model) the batchnorm is folded into the
 * convolution, as torch.fx's fuse_conv_bn_eval does: w' = w x s, b' = (b -
 * running_mean) x s + beta with s = gamma / sqrt(running_var + eps),
 * computed in double from the current parameters on every forward (weights
 * change under training; folding costs one pass over them) and rounded
 * once (w' to bf16 in a bf16 context, b' to float), and a ReLU,
 * SiLU or hardswish runs as the convolution's post-op (fd_conv2d_infer;
 * another activation separately); m->nfused counts
 * these. In training (c->training, no tap, not m->unfused) the conv, then
 * BN and the activation as one op (fd_batchnorm2d_act: fused on the CPU,
 * BN's output never stored). Otherwise (or with m->unfused) the three taped
 * ops, taps included. NULL on error. */
struct fd_tensor *fd_mconv_bn_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
				  struct fd_mbn *bn, int act, struct fd_tensor *x);

/* Whether fd_mconv_bn_fwd would fold bn into cv for input x (CPU inference
 * without a tap, not m->unfused, no input needing a gradient), and the
 * folded weight and bias it would convolve with (in the arena; w' rounded
 * to bf16 in a bf16 context but for a depthwise cv). For kernels of fd's
 * own that take a folded conv-BN pair (fd_mbfront_infer). -1 with c->err. */
int fd_mconv_bn_folds(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv, struct fd_mbn *bn,
		      struct fd_tensor *x);
int fd_mconv_bn_fold(struct fd_model *m, struct fd_ctx *c, const struct fd_mconv *cv, const struct fd_mbn *bn,
		     struct fd_tensor **wf, struct fd_tensor **bf);

/* Whether an op whose output only conv2d reads may write that output in
 * bf16 (c->bf16_out): bf16 CPU training, no tap, not m->unfused, not
 * m->no_bf16_out. The convolution rounds its input to bf16 anyway, so it
 * multiplies the same values; the output takes half the memory and
 * nothing converts it (doc/nn-kernels.md "bf16 hand-off"). */
int fd_model_bf16_out(const struct fd_model *m, const struct fd_ctx *c);

/* Whether the depthwise BN + activation before a squeeze-excitation
 * (EfficientNet, MobileNetV3) writes its output in bf16: its readers, the
 * SE's global pool and its scaling multiply, take bf16 (as autocast's
 * bf16 activations are). fd_model_bf16_out and not m->no_bf16_se. Unlike
 * the hand-off those readers then see rounded values (doc/nn-kernels.md
 * "bf16 squeeze-excitation input"). */
int fd_model_bf16_se(const struct fd_model *m, const struct fd_ctx *c);

/* Whether the BN after a convolution (its output read by that BN alone)
 * may write the convolution's output gradient in bf16 (c->bf16_dy): bf16
 * CPU training, no tap, not m->unfused, not m->no_bf16_dy. The fd_mconv_bn_*
 * training paths set it around their BN for an ungrouped convolution; the
 * convolution's backward rounds dy to bf16 anyway, so it multiplies the
 * same values (doc/nn-kernels.md "bf16 gradient hand-off"). */
int fd_model_bf16_dy(const struct fd_model *m, const struct fd_ctx *c);

/* Whether a convolution whose output only the BN after it reads writes
 * that output in bf16 (c->bf16_y), as autocast's bf16 convolutions do:
 * bf16 CPU training, no tap, not m->unfused, not m->no_bf16_y. The
 * fd_mconv_bn_* training paths set it around their convolution; BN then
 * reads the rounded values, computes in fp32 and keeps its input for the
 * backward at half the size (doc/nn-kernels.md "bf16 convolution outputs").
 * ConvNeXt's block sets it around its depthwise convolution and its two
 * Linears (read by the LayerNorm, GELU and the layer scale: "bf16 in the
 * ConvNeXt block"). */
int fd_model_bf16_y(const struct fd_model *m, const struct fd_ctx *c);

/* fd_mconv_bn_fwd for a result y that only convolutions read (the next
 * conv of a residual block): under fd_model_bf16_out, the fused BN and
 * activation writes y in bf16 (FD_T_BF16; c->bf16_outs counts it) where it
 * can (channels last), which conv2d reads as it is. Otherwise exactly
 * fd_mconv_bn_fwd. The same values reach the convolution either way, so
 * the same gradients. NULL on error. */
struct fd_tensor *fd_mconv_bn_fwd_conv(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
				       struct fd_mbn *bn, int act, struct fd_tensor *x);

/* fd_mconv_bn_fwd for a result y that no backward reads: neither BN's (it
 * recomputes from its input) nor that of any op the caller feeds y to (an
 * add, a max pool), and that the caller reads no more once those ops ran.
 * In CPU training on the fused path (c->training, no tap, not m->unfused,
 * not m->no_transient) y's data is a block of the gradient pool
 * (c->pool_outputs), which the caller gives back with fd_tensor_release
 * right after y's last reader: the block serves the next such result and,
 * in the backward, gradients, instead of holding arena memory for the whole
 * step (ResNet's downsample BN output, its stem's ReLU output; doc/nn.md
 * "Memory"). Otherwise fd_mconv_bn_fwd (fd_tensor_release is then a
 * no-op). Same values, same gradients. NULL on error. */
struct fd_tensor *fd_mconv_bn_fwd_transient(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
					    struct fd_mbn *bn, int act, struct fd_tensor *x);

/* Whether a model's conv -> BN -> activation -> max pool runs as
 * fd_mconv_bn_pool_fwd: CPU training, no tap (the activation is not
 * stored), not m->unfused, not m->no_bn_pool. */
int fd_model_bn_pools(const struct fd_model *m, const struct fd_ctx *c);

/* maxpool2d(act(bn(conv(x))), k, stride, pad) (ceil_mode 0) where
 * fd_model_bn_pools: the conv, then BN, the activation and the pool as one
 * op (fd_batchnorm2d_act_maxpool: where it fuses, the activation and its
 * gradient are never stored whole). to_conv: the pooled result is read by
 * convolutions only (or by readers that take bf16: ResNet's residual
 * stream, fd_model_bf16_res), so under fd_model_bf16_out it may be bf16 (as
 * fd_mconv_bn_fwd_conv). Same values, same gradients as fd_mconv_bn_fwd
 * and fd_maxpool2d. NULL on error. */
struct fd_tensor *fd_mconv_bn_pool_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
				       struct fd_mbn *bn, int act, struct fd_tensor *x, int k, int stride, int pad,
				       int to_conv);

/* act(bn(conv(x)) + id) (act: enum fd_act, or -1 for none), the end of a
 * residual block (torchvision: out = bn(conv(out)); out += identity;
 * relu(out)). Where fd_mconv_bn_fwd folds (fp32 or bf16; no gradient
 * would reach id)
 * and act is none or a post-op (ReLU, SiLU, hardswish), and the convolution
 * would not run a Winograd unable to take the sum (fd_conv2d_wants_winograd:
 * oneDNN's with K not a multiple of 16), one convolution adds into
 * id and applies act (fd_conv2d_infer_add): id is OVERWRITTEN and returned,
 * so the caller must not read id afterwards (it may be the block's input
 * x), and id must have the convolution output's layout (FD_NHWC in a
 * channels-last forward); m->nfused and m->nfused_add count it. Otherwise
 * the taped ops (fd_mconv_bn_fwd, fd_add_ into the conv's output, fd_act_):
 * id is only read. NULL on error. */
struct fd_tensor *fd_mconv_bn_add_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
				      struct fd_mbn *bn, int act, struct fd_tensor *x, struct fd_tensor *id);
/* fd_mconv_bn_add_fwd for a ResNet block, whose output the next block's
 * convolutions and residual add read (or the global pool): under
 * fd_model_bf16_res, where BN, the add and ReLU run as one op, that output
 * is written in bf16 (the bf16 residual stream). id may be bf16 (the
 * previous block's output). */
struct fd_tensor *fd_mconv_bn_add_fwd_res(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
					  struct fd_mbn *bn, int act, struct fd_tensor *x, struct fd_tensor *id);

/* Whether a ResNet keeps its residual stream (the stem's pooled output and
 * every block's output) in bf16, as autocast's bf16 BN, add and ReLU do:
 * fd_model_bf16_out, channels last, not m->no_bf16_res nor m->no_bn_add
 * (its adds must be the fused op). Its readers (the
 * convolutions, the next block's BN + add + ReLU, the global pool) take
 * bf16; the convolutions no longer convert it (doc/nn-kernels.md "bf16
 * residual stream"). */
int fd_model_bf16_res(const struct fd_model *m, const struct fd_ctx *c);

/* Fold per-channel affine maps around a pointwise layer (a Linear, or a
 * 1x1 convolution) for inference: w [K, Ci] (or [K, Ci, 1, 1]), bias b [K]
 * (NULL: none), input scale is and shift ish [Ci], output scale os [K]
 * (each NULL: identity) give the weight *wf [K, Ci, 1, 1] and bias *bf [K],
 * new arena tensors, such that os (w (is x + ish) + b) = wf x + bf:
 * wf = diag(os) w diag(is), bf = os (b + w ish), computed in double and
 * rounded once: wf to bf16 in a bf16 context (the convolution's conversion
 * is then exact, as fd_mconv_bn_fwd's folded weights), else to float; bf
 * to float. Output channels split over c's threads (the same bits
 * for any count). 0, or -1 with c->err (sizes that do not match, no
 * memory). */
int fd_model_fold_pw(struct fd_ctx *c, const struct fd_tensor *w, const struct fd_tensor *b,
		     const struct fd_tensor *is, const struct fd_tensor *ish, const struct fd_tensor *os,
		     struct fd_tensor **wf, struct fd_tensor **bf);

/* nn.Linear(in, out, bias): name.weight [out, in], name.bias [out]. init as
 * for convs, plus FD_MI_NORMAL / FD_MI_UNIFORM / FD_MI_TRUNC_NORMAL with a
 * (and b) for the weight and a zero bias (torchvision's classifier inits). */
struct fd_mlinear {
	int w, b;
};
int fd_mlinear_add(struct fd_model *m, struct fd_mlinear *l, const char *name, int in, int out,
		   int bias, struct fd_minit winit, struct fd_err *e);
struct fd_tensor *fd_mlinear_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mlinear *l,
				 struct fd_tensor *x);

/* Architectures of this module (registry.c lists them). */
extern const struct fd_model_arch fd_arch_simplecnn;
extern const struct fd_model_arch fd_arch_resnet18, fd_arch_resnet34, fd_arch_resnet50;
extern const struct fd_model_arch fd_arch_efficientnet_b0, fd_arch_mobilenet_v3_small;
extern const struct fd_model_arch fd_arch_convnext_tiny;
/* Not in the registry: ConvNeXt with widths (16,32,64,128) and depths
 * (2,1,2,1), the same code as convnext_tiny, for gradient tests whose
 * float64 torch reference would take minutes on the full model. */
extern const struct fd_model_arch fd_arch_convnext_mini;

#endif

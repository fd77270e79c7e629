/* conv2d: 2-D convolution over contiguous NCHW float32, forward and backward,
 * as torch.nn.functional.conv2d(x, w, b, stride, padding, dilation, groups):
 * the shape, the taped op fd_conv2d with its per-layer plan cache, the CPU
 * kernels of the op table (oneDNN, private to conv2d.c) and double
 * references. A plan is made once per shape (oneDNN primitive creation is
 * expensive) and reused every step. No oneDNN type appears here. */
#ifndef FD_CONV2D_H
#define FD_CONV2D_H

#include "core/fd_err.h"
#include "nn/fd_tensor.h"

/* x [N, C, H, W], w [K, C/groups, kh, kw], b [K] (if bias), y [N, K, Ho, Wo]
 * with Ho = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1 (Wo likewise): PyTorch's
 * symmetric zero padding. Dilation is PyTorch's (1 = none). Depthwise is
 * groups == C (K a multiple of C). */
struct fd_conv2d_shape {
	int N, C, H, W;
	int K, kh, kw;
	int sh, sw, ph, pw, dh, dw;
	int groups;
	int bias;       /* 1: the layer has a bias */
	/* layouts of x (and dx) and of y (and dy): FD_NCHW (zero, what every
	 * backend takes) or, on the CPU only, FD_NHWC (doc/nn-kernels.md
	 * "Layouts"); weights and bias are always plain */
	enum fd_layout xl, yl;
};

/* Check a shape (all sizes positive, C and K divisible by groups, output at
 * least 1x1) and compute the output size. Errors name the offending field. */
int fd_conv2d_out_size(const struct fd_conv2d_shape *s, int *Ho, int *Wo, struct fd_err *e);

/* Plans kept per conv layer: one per distinct input size (training batch,
 * the last short batch, evaluation batch, each MTCNN pyramid level and batch
 * size...). */
#define FD_CONV2D_PLANS 32

/* A conv2d layer's hyper-parameters and its plans. The weight tensor passed
 * to fd_conv2d gives K, C/groups, kh, kw; the input gives N, C, H, W. The
 * first call with a new input size makes that size's plan (oneDNN primitive
 * creation, milliseconds) and every later call with that size reuses it, so
 * a training loop creates plans in its first step only. Owned by the model
 * (one per layer), not by the context. */
struct fd_conv2d_op {
	int sh, sw, ph, pw, dh, dw, groups;
	int nplans;
	struct fd_conv2d_plan_slot {
		struct fd_conv2d_shape s;
		enum fd_dev dev;
		enum fd_precision prec; /* c->precision the plan was made for */
		void *plan;          /* the device's plan object (struct fd_conv2d on the CPU) */
		uint64_t last_step;  /* ctx step of the last use: a plan used this step is never evicted */
		int post;            /* a CPU inference plan's fused activation (enum fd_conv_post),
				      * with a bit set when it also adds into its output
				      * (fd_conv2d_infer_add) */
		int wino;            /* c->winograd the plan was made for */
	} plans[FD_CONV2D_PLANS];
};

/* nn.Conv2d(..., stride, padding, dilation, groups) with square kernel
 * geometry (the rectangular fields may be set by hand after this). */
void fd_conv2d_op_init(struct fd_conv2d_op *op, int stride, int pad, int dilation, int groups);
/* Free every plan; the op may be used again (plans are remade). No-op on a
 * zeroed op. */
void fd_conv2d_op_free(struct fd_conv2d_op *op);

/* F.conv2d(x, w, b, stride, padding, dilation, groups): x [N, C, H, W]
 * (either layout), w [K, C/groups, kh, kw], b [K] or NULL; returns
 * [N, K, Ho, Wo] (PyTorch's output size), FD_NHWC when c->channels_last and
 * x is on the CPU, else FD_NCHW. Backward adds into the gradients of x, w and b that require
 * one. Plans are made on c's engine and borrow it: free them
 * (fd_conv2d_op_free) before fd_ctx_free. Adds
 * N*K*Ho*Wo*(C/groups)*kh*kw to c->macs. NULL on error (c->err: shapes, or
 * "more than 32 input sizes in one step" when every plan is in use). */
struct fd_tensor *fd_conv2d(struct fd_ctx *c, struct fd_conv2d_op *op, struct fd_tensor *x,
			    struct fd_tensor *w, struct fd_tensor *b);

/* An activation fused into an inference convolution (fd_conv2d_infer):
 * oneDNN eltwise relu, swish (alpha 1: x sigmoid(x), F.silu) and
 * hardswish (F.hardswish), computed by oneDNN's own kernels (its exp, not
 * core/fd_vmath.h's: within a few ulp of the separate op).
 * FD_CONV_POST_GELU: eltwise gelu_erf, F.gelu(approximate='none') (oneDNN's
 * erf; its value leaves room for other entries before it). */
enum fd_conv_post { FD_CONV_POST_NONE, FD_CONV_POST_RELU, FD_CONV_POST_SILU, FD_CONV_POST_HARDSWISH,
	FD_CONV_POST_GELU = 16 };

/* F.conv2d(x, w, b, ...) as fd_conv2d, followed by the activation post
 * (fused into the convolution: oneDNN's eltwise post-op), for inference on
 * the CPU: records nothing, and refuses ("records no gradient") when an
 * input would need one (fd_needs_grad) or the context is not on the CPU.
 * Same output size and layout as fd_conv2d; plans with a post-op are
 * separate from fd_conv2d's (their slot's post). NULL on error (c->err). */
struct fd_tensor *fd_conv2d_infer(struct fd_ctx *c, struct fd_conv2d_op *op, struct fd_tensor *x,
				  struct fd_tensor *w, struct fd_tensor *b, enum fd_conv_post post);

/* Whether oneDNN has a Winograd convolution here: 2.x on a CPU with AVX-512
 * (3.x removed the CPU one; doc/onednn.md "oneDNN 3 on AVX2 CPUs").
 * Elsewhere c->winograd runs fd's own (lib/nn/wino.h) on channels-last
 * shapes. */
int fd_conv2d_winograd_available(void);
/* Whether fp32 CPU plans run fd's direct forward (lib/nn/dconv.h) where it
 * takes the shape: a CPU with AVX2 and FMA but without AVX-512. There a
 * model's first convolution reads the NCHW image itself (an image layer),
 * so inference need not transpose the image into channels last first. */
int fd_conv2d_direct_cpu(void);
/* 1 when a CPU plan of c for op with weight w would try oneDNN's Winograd
 * (c->winograd set, the shape rule of fd_conv2d_winograd_cpu, oneDNN's
 * Winograd available): a caller that could fuse a residual sum
 * (fd_conv2d_infer_add, which oneDNN's Winograd plans take only for K a
 * multiple of 16: fd_conv2d_winograd_sum_cpu) runs the convolution alone
 * instead. fd's own Winograd adds the sum itself, so this is 0 where it
 * would run, and 0 where K is a multiple of 16. */
int fd_conv2d_wants_winograd(const struct fd_ctx *c, const struct fd_conv2d_op *op, const struct fd_tensor *w);

/* act(conv2d(x, w, b) + sum) as fd_conv2d_infer with the residual added
 * inside the convolution (oneDNN's sum post-op, then the activation post):
 * the result OVERWRITES sum, which is returned (no new tensor; the caller
 * must not need sum's old values). sum is [N, K, Ho, Wo] in the layout
 * fd_conv2d_infer's output would have (FD_NHWC when c->channels_last; on a
 * 1x1 map either, fd_is_nhwc), on
 * the CPU, needs no gradient and does not overlap x. Its plans are separate
 * from fd_conv2d_infer's (the slot's post). NULL on error (c->err). */
struct fd_tensor *fd_conv2d_infer_add(struct fd_ctx *c, struct fd_conv2d_op *op, struct fd_tensor *x,
				      struct fd_tensor *w, struct fd_tensor *b, enum fd_conv_post post,
				      struct fd_tensor *sum);

/* y = conv2d(x, w, b) over raw pointers on dev, through op's plan cache,
 * recording nothing (inference outside the tape, as MTCNN's nets): s is the
 * full shape, its stride, padding, dilation and groups those of op. Forward
 * OVERWRITES y. Adds the multiply-adds to c->macs. -1 with c->err. */
int fd_conv2d_apply(struct fd_ctx *c, struct fd_conv2d_op *op, enum fd_dev dev,
		    const struct fd_conv2d_shape *s, const float *x, const float *w, const float *b,
		    float *y);

/* CPU kernels (table entries conv2d_plan, conv2d_plan_free, conv2d_fwd,
 * conv2d_bwd): a plan is oneDNN primitives for one full shape on c's engine,
 * with the reorders to and from the caller's plain layouts cached; it borrows
 * the engine, so it must be freed before the context. fwd OVERWRITES y (b
 * ignored, may be NULL, when the shape has no bias); bwd ADDS into dx
 * (backward data), dw and db (backward weights), each NULL = not wanted.
 * Errors (bad shape, the failing oneDNN call with the shape) go to c->err. */
int fd_conv2d_plan_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, void **plan);
void fd_conv2d_plan_free_cpu(void *plan);
/* Smallest output map (Ho*Wo) on which a bf16 plan's backward-weights runs
 * oneDNN's AMX bf16 convolution kernel; on smaller maps it runs fp32, or on
 * AMX channels-last plans a bf16 matmul (doc/nn-kernels.md "bf16"). */
#define FD_CONV2D_BF16_WEIGHTS_MAP 784
/* Fewest input and output channels of a Winograd plan (doc/nn-kernels.md
 * "Winograd"). */
#define FD_CONV2D_WINO_MIN_C 16
/* 1 when the CPU plan's backward-weights ran or will run on bf16 operands
 * (oneDNN's AMX kernel, a matmul: fd_conv2d_bf16_mm_cpu, or fd's image-layer
 * kernel: fd_conv2d_bfw_cpu), 0 when in
 * fp32 (fp32 plans; bf16 plans on small maps that no matmul serves, or
 * without AMX). Known once the plan's backward was made (its first
 * backward call). */
int fd_conv2d_bf16_weights_cpu(void *plan);
/* 1 when a bf16 context's plan for s runs in fp32 nonetheless: depthwise
 * convolutions (groups == C > 1), where oneDNN 2.6's bf16 kernels were
 * slower than its fp32 ones in every layer measured (forward 1.2-2.7x,
 * backward-data up to 1.8x: doc/nn-kernels.md "bf16"). */
int fd_conv2d_bf16_in_fp32(const struct fd_conv2d_shape *s);
/* 1 when the CPU plan multiplies bf16 operands (a bf16 context's plan, but
 * for the shapes of fd_conv2d_bf16_in_fp32), 0 when fp32. */
int fd_conv2d_bf16_cpu(void *plan);
/* Which backward passes of a bf16 CPU plan avoid oneDNN's bf16 convolution
 * backward primitives (bits): 1 backward-data and 2 backward-weights as
 * oneDNN AMX matmuls (lib/nn/conv_mm.h), 4 backward-data as oneDNN's AMX
 * forward of dy with the flipped, transposed weights (stride-1 kxk); 0
 * none (fp32 plans, shapes outside the rules, CPUs without AMX). Known
 * once the plan's backward was made. */
int fd_conv2d_bf16_mm_cpu(void *plan);
/* 1 when the bf16 CPU plan's backward-weights runs fd's own kernel (image
 * layers: lib/nn/bfw.h, fd_bfw_serves), 0 otherwise. Known when the plan is
 * made. */
int fd_conv2d_bfw_cpu(void *plan);
/* How the CPU plan reads an input held in bf16 (FD_T_BF16, c->bf16_out's
 * tensors; fd_conv2d takes one on the CPU): bit 1 the forward, bit 2 the
 * backward-weights read it as it is; a pass without its bit widens it to
 * floats first (exact; a copy). Bit 4: both backward passes read a bf16
 * output gradient (FD_T_GRAD_BF16, c->bf16_dy's) as it is; without it the
 * backward widens that gradient first. The forward's bit is known once the
 * plan exists, the backward's once its backward was made. */
int fd_conv2d_takes_bf16_cpu(void *plan);
/* 1 when the CPU plan runs a Winograd F(4x4, 3x3), 0 when direct. A plan
 * made with c->winograd set is Winograd when its shape allows (fp32,
 * ungrouped 3x3, stride 1, no dilation, at least FD_CONV2D_WINO_MIN_C
 * channels in and out) and either oneDNN has a Winograd kernel for it on
 * this CPU (AVX-512, oneDNN 2.x: all three passes; no sum post-op) or,
 * where it has none (another CPU, or a shape oneDNN refuses: padding 2),
 * fd's own takes it (x and y channels last, padding <= 2, no activation
 * but ReLU; lib/nn/wino.h); otherwise direct, as without the flag. */
int fd_conv2d_winograd_cpu(void *plan);
/* 1 when that Winograd is fd's own (lib/nn/wino.h), 0 otherwise */
int fd_conv2d_own_winograd_cpu(void *plan);
/* 1 when plan is oneDNN's Winograd taking fd_conv2d_infer_add's sum: its
 * forward writes oneDNN's blocked nChw16c layout and fd adds it into the
 * channels-last sum (then ReLU) in the pass that leaves that layout, in
 * place of the reorder, the separate add and the separate ReLU (an fp32
 * channels-last plan with c->winograd, K a multiple of 16, no activation
 * but ReLU, where oneDNN has the Winograd: doc/nn-kernels.md "Winograd
 * with the residual sum"); 0 otherwise. */
int fd_conv2d_winograd_sum_cpu(void *plan);
int fd_conv2d_fwd_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *b,
		      float *y);
int fd_conv2d_bwd_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *dy,
		      float *dx, float *dw, float *db);
/* fd_conv2d_bwd_cpu with dx OVERWRITTEN (a fresh gradient, FD_T_GRAD_FRESH:
 * dx's old values never read, every value written); dw, db still add. */
int fd_conv2d_bwd_fresh_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *dy,
			    float *dx, float *dw, float *db);

/* Plain-loop references in double, for tests and finite differences; same
 * layouts and semantics as above (forward overwrites, backward adds). s must
 * have passed fd_conv2d_out_size. */
void fd_conv2d_ref_forward(const struct fd_conv2d_shape *s, const double *x, const double *w,
			   const double *b, double *y);
void fd_conv2d_ref_backward_data(const struct fd_conv2d_shape *s, const double *dy, const double *w,
				 double *dx);
void fd_conv2d_ref_backward_weights(const struct fd_conv2d_shape *s, const double *x, const double *dy,
				    double *dw, double *db);

#endif

/* fd_tensor: float32 NCHW tensors with a device tag, the context every op is
 * given (threads, RNG, the per-step arena, the tape, later the CUDA handles),
 * and reverse-mode autodiff over a tape of eagerly run ops. See doc/nn.md. */
#ifndef FD_TENSOR_H
#define FD_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"

#define FD_MAXDIM 5

enum fd_dev { FD_DEV_CPU, FD_DEV_CUDA, FD_DEV_COUNT };

/* Name of a device for messages ("cpu", "cuda"). */
const char *fd_dev_name(enum fd_dev d);

/* The arithmetic of the matrix products (conv2d, linear): fp32 throughout, or
 * bf16 operands with fp32 accumulation and fp32 results (doc/nn-kernels.md
 * "bf16"). Everything else (tensors, parameters, optimizer, reductions) is
 * fp32 in both. */
enum fd_precision { FD_PREC_FP32 = 0, FD_PREC_BF16 };
/* "fp32", "bf16" */
const char *fd_precision_name(enum fd_precision p);

/* Memory order of a 4-D tensor's elements. The shape is always the logical
 * [N, C, H, W]; FD_NHWC ("channels last") stores element (n, c, h, w) at
 * ((n*H + h)*W + w)*C + c. Only CPU ops inside a model's forward make NHWC
 * tensors (struct fd_ctx's channels_last); a tensor's gradient has its
 * layout; tensors of other ranks are always FD_NCHW. See doc/nn-kernels.md
 * "Layouts". */
enum fd_layout { FD_NCHW = 0, FD_NHWC = 1 };

enum {
	FD_T_REQUIRES_GRAD = 1u, /* backward fills grad (allocating it if NULL) */
	FD_T_RETAIN_GRAD = 2u,   /* keep grad after backward (set by fd_requires_grad) */
	FD_T_POOL_GRAD = 4u,     /* grad is a block of the context's gradient pool */
	/* (8u is fd_backward's own mark) */
	FD_T_GRAD_FRESH = 16u,   /* grad is new and not zeroed: its first writer overwrites it
				  * (set only while a node with a writes bit for it runs; see
				  * struct fd_node) */
	FD_T_OWNS_DATA = 32u,    /* data was allocated for this tensor (fd_tensor_new), not
				  * borrowed from another (views, in-place results) */
	FD_T_KEEP_DATA = 64u,    /* data stays readable after fd_backward even when the context
				  * reuses activations (set by fd_keep_data) */
	FD_T_POOL_DATA = 128u,   /* data is a block of the context's gradient pool, made under
				  * c->pool_outputs (fd_tensor_release gives it back) */
	FD_T_BF16 = 256u,        /* data holds numel bf16 values (uint16_t, rounded as
				  * fd_dnnl_to_bf16), not floats; grad is float as always. Made
				  * only under c->bf16_out by the ops that honour it, read only
				  * by conv2d on the CPU (doc/nn-kernels.md "bf16 hand-off"); or
				  * by conv2d under c->bf16_y, read only by CPU train-mode
				  * batchnorm2d ("bf16 convolution outputs"), channels-last
				  * layernorm2d, the recorded in-place GELU and mul ("bf16 in
				  * the ConvNeXt block") */
	FD_T_GRAD_BF16 = 512u,   /* grad will hold numel bf16 values (rounded as
				  * fd_dnnl_to_bf16), not floats: set under c->bf16_dy by a
				  * CPU train-mode batchnorm2d on the output of the conv2d
				  * recorded just before it; that BN's backward writes the
				  * fresh gradient (struct fd_node's bf16_grads) and only the
				  * conv's backward reads it (doc/nn-kernels.md "bf16
				  * gradient hand-off") */
};

/* A dense, contiguous, row-major float32 tensor. data and grad live on dev (no
 * host twin). A tensor made by an op lives in the context's arena and is valid
 * until fd_ctx_step(); parameters are views into an fd_params buffer. grad is
 * NULL until backward reaches the tensor (or points into the gradient buffer
 * for a parameter). */
struct fd_tensor {
	float *data;
	float *grad;
	int ndim;
	int64_t shape[FD_MAXDIM];
	int64_t numel;
	enum fd_dev dev;
	unsigned flags;
	enum fd_layout layout; /* FD_NCHW unless an op said otherwise */
};

/* Bump allocator for one step's activations, saved state and tape. Memory
 * that does not fit is taken from the heap and counted in `grows`; the next
 * fd_arena_reset() folds it into one block of the step's peak size, so from
 * the second identical step on nothing is allocated (tests assert grows stays
 * put). fd_arena_release() gives back everything above a mark (see
 * fd_ctx_keep); the peak it tracks is the most ever held at once, so a reset
 * after releases still grows to the true high-water mark. */
struct fd_arena {
	char *base;
	size_t cap, used;
	struct fd_arena_extra { void *p; size_t bytes; } *extra; /* overflow blocks of this step */
	int nextra, capextra;
	size_t extra_bytes;
	size_t peak;         /* this step's most bytes held at once (used + extra_bytes) */
	unsigned long grows; /* heap allocations made by the arena, ever */
	/* where blocks come from: NULL = host memory (mmap, posix_memalign); a
	 * device arena has its table's mem_alloc/mem_free (fd_arena_release,
	 * which moves bytes with memmove, is for host arenas only) */
	void *(*mem_alloc)(size_t bytes);
	void (*mem_free)(void *p);
};

/* A position in an arena: fd_arena_release() frees what came after it. */
struct fd_arena_mark {
	size_t used, extra_bytes;
	int nextra;
};

void fd_arena_init(struct fd_arena *a);
/* 64-byte aligned, uninitialised; NULL only when the heap is exhausted. */
void *fd_arena_alloc(struct fd_arena *a, size_t bytes);
/* Forget everything allocated; grow the block to this step's peak if it overflowed. */
int fd_arena_reset(struct fd_arena *a);
/* Make a's block an address range of `bytes` reserved up front (a host arena
 * holding nothing yet; mmap with MAP_NORESERVE: pages take memory only once
 * written). Every step then bumps through the same pages, so the second
 * step writes into memory the first one made resident instead of a block
 * regrown from fresh pages (whose page faults cost a ConvNeXt-Tiny training
 * step 20%). Steps that need more still overflow and regrow as usual.
 * 0; -1 when the range cannot be had (e.g. under ulimit -v) or a is not
 * empty: a is then unchanged and works as before. */
int fd_arena_reserve(struct fd_arena *a, size_t bytes);
/* The current position. */
struct fd_arena_mark fd_arena_mark(const struct fd_arena *a);
/* Whether p points into memory allocated after m (and not released since). */
int fd_arena_above(const struct fd_arena *a, const struct fd_arena_mark *m, const void *p);
/* Release everything allocated after m, except the n bytes at keep (which
 * may lie anywhere, in or out of the arena; NULL with n 0 keeps nothing):
 * they are moved (memmove) to a fresh allocation right at m, whose address
 * is returned; except that bytes in the arena's block above m with a gap
 * below them of at most 4 KiB or n/8 (a tensor's own header, say) stay
 * where they are (keep returned; the gap is unused until a release below
 * m): moving would copy n bytes to win back a few. Overflow blocks above m go back to the heap. m must be a
 * position of this step not released already (marks nest: release inner
 * ones first). NULL only when moving needed a heap block and none was left
 * (then everything above m is gone). With keep NULL, returns a non-NULL
 * dummy. */
void *fd_arena_release(struct fd_arena *a, const struct fd_arena_mark *m, const void *keep, size_t n);
void fd_arena_free(struct fd_arena *a);

/* Gradient blocks of op outputs. fd_backward takes an output's gradient from
 * here when the first consumer adds into it and gives it back as soon as the
 * op that made the output has run its backward, so only the gradients on the
 * backward "frontier" are alive at once (as in PyTorch), not one per
 * activation. A request takes the smallest free block that holds it. Own
 * blocks are kept across steps: from the second identical step on nothing is
 * allocated (grows stays put). With c->reuse_activations, fd_backward also
 * lends the pool the memory of activations nothing can read any more
 * (donated blocks: arena memory, dropped at the step's end), which it uses
 * before its own (doc/nn.md "Memory: what is alive when"). */
struct fd_gpool {
	struct fd_gblock { void *p; size_t bytes; int used, donated; } *b;
	int n, cap;
	size_t bytes, used_bytes, peak_bytes; /* own blocks held, in use now, most in use at once */
	size_t donated_bytes;                 /* donated this step (not counted in bytes) */
	size_t out_bytes;                     /* op outputs' data served this step
					       * (c->pool_outputs, fd_tensor_release) */
	size_t aliased_bytes;                 /* gradients an input took over from its op's
					       * output this step (struct fd_node's aliases) */
	unsigned long grows;                  /* heap allocations made by the pool, ever */
	void *(*mem_alloc)(size_t bytes);     /* NULL: host memory; else the device's table entries */
	void (*mem_free)(void *p);
};

struct fd_node;

/* The context passed explicitly to every op. No op keeps state elsewhere. */
struct fd_ctx {
	enum fd_dev dev;      /* the device whose engine the context opened */
	int threads;          /* OpenMP threads of every CPU kernel, oneDNN's included (>= 1) */
	int training;         /* 1: dropout and stochastic depth active, batchnorm uses batch stats */
	int grad_enabled;     /* 0: ops record nothing (inference, Grad-CAM forward before the target) */
	int channels_last;    /* 1: CPU convolutions write NHWC outputs and the ops after
			       * them keep that layout (set by fd_model_forward for its
			       * duration; 0 by default, so ops called directly see NCHW) */
	int reuse_activations; /* 1: fd_backward gives the memory of each op output that the
				* tape can no longer read to the gradient pool, as PyTorch
				* frees saved tensors during backward; the caller then reads
				* no op output after fd_backward except those given to
				* fd_keep_data (0 by default: every tensor stays readable
				* until fd_ctx_step); it also lets an op's input take
				* over its output's gradient block (struct fd_node's
				* aliases) */
	int pool_outputs;     /* 1: fd_tensor_new takes the data of each tensor it makes on
			       * c->dev from the gradient pool (FD_T_POOL_DATA) instead of
			       * the arena, for an op output its caller frees before the
			       * step ends (fd_tensor_release); 0 by default. Set only
			       * around one op (fd_mconv_bn_fwd_transient) */
	int bf16_out;         /* 1: the op about to run writes its output as bf16 (FD_T_BF16)
			       * if it can, in a bf16 context (precision): CPU train-mode
			       * batchnorm2d_act on channels-last input and CPU recorded
			       * in-place GELU (fd_act_); any other op ignores it. Set by
			       * model code around one op whose output only conv2d reads
			       * (fd_mconv_bn_fwd_conv); 0 by default */
	uint64_t bf16_outs;   /* tensors made under bf16_out as bf16 (tests read it) */
	int bf16_dy;          /* 1: the op about to run, a CPU train-mode batchnorm2d in a bf16
			       * context whose input is the output of the conv2d recorded
			       * just before and read by nothing else, writes that input's
			       * gradient in bf16 (FD_T_GRAD_BF16), which the conv's
			       * backward reads as it is; any other op ignores it. Set by
			       * model code around one op (fd_model_bf16_dy); 0 by default */
	uint64_t bf16_dys;    /* inputs marked FD_T_GRAD_BF16 under bf16_dy (tests read it) */
	int bf16_y;           /* 1: the op about to run, a CPU conv2d in a bf16 context whose
			       * output only a train-mode batchnorm2d (or, in ConvNeXt's
			       * block, the LayerNorm, the in-place GELU or the layer
			       * scale's mul) reads, writes that output in bf16
			       * (FD_T_BF16) where its plan has such a forward or is a
			       * depthwise fp32 plan (y rounded after), as autocast's bf16
			       * convolution outputs; any other op ignores it. Set by
			       * model code around one op (fd_model_bf16_y); 0 by default */
	uint64_t bf16_ys;     /* conv2d outputs made in bf16 under bf16_y (tests read it) */
	int dropout_off;      /* 1: dropout and stochastic depth act as in eval even when training
			       * (conformance runs against torch, whose masks differ; batchnorm
			       * still uses batch statistics) */
	uint64_t macs;        /* multiply-adds of conv2d and linear ops run, added by those ops
			       * (fd_model_flops reads it; nothing else depends on it) */
	uint64_t wino_macs;   /* of those, conv2d forwards run by Winograd plans (c->winograd;
			       * counted as direct multiply-adds) */
	/* Per-op timing (bench/models --ops; NULL by default, then nothing is
	 * timed): fd_tape_push calls op_timer(arg, op, 0, s) with the seconds s
	 * since the previous call (or since op_timer_t0, which the caller sets
	 * when its forward starts): the op that made the node and whatever ran
	 * between the two pushes. fd_backward calls it (bwd 1) with the seconds
	 * of each node: its inputs' gradients made (zeroed unless the node
	 * overwrites them) and its backward run. */
	void (*op_timer)(void *arg, const char *op, int bwd, double seconds);
	void *op_timer_arg;
	double op_timer_t0;
	uint64_t seed;        /* RNG key for dropout and friends */
	enum fd_precision precision; /* of conv2d and linear; fp32 unless fd_ctx_set_precision */
	int winograd;         /* 1: fp32 3x3 stride-1 convolutions on the CPU run oneDNN's
			       * Winograd F(4x4, 3x3) where it has them (fd_conv2d_winograd_cpu;
			       * rounding differs from direct: doc/nn-kernels.md "Winograd");
			       * 0 (fd_ctx_open's) = direct, as PyTorch. Set before the first op:
			       * plans remember it */
	uint64_t step;        /* advanced by fd_ctx_step(); part of every random stream */
	uint32_t rng_calls;   /* random ops run this step; gives each its own stream */
	struct fd_arena arena; /* host arena (CPU tensors, every header, node and saved state) */
	struct fd_arena darena; /* device arena: tensors of c->dev when it is not the CPU
				 * (blocks from its table's mem_alloc; reset with the host arena) */
	struct fd_gpool gpool; /* op outputs' gradients during fd_backward (on c->dev) */
	struct fd_node *tape;  /* last recorded node; nodes link backwards */
	void *engine;          /* the device's own state, owned (struct fd_dnnl on the CPU:
				* oneDNN engine and stream; the CUDA handles later) */
	int failed;            /* sticky: an op failed this step, err says why */
	struct fd_err err;
};

/* The one constructor: a context for dev that owns that device's engine
 * (oneDNN's CPU engine and stream today; the CUDA handles when that backend
 * exists) and runs every CPU kernel, oneDNN's included, on `threads` OpenMP
 * threads (< 1 means 1), set per call, never process-wide. seed keys dropout
 * and friends. Training on, grad enabled. A device without a table answers
 * "not supported". On failure c is zeroed (fd_ctx_free is a no-op) and e
 * says why. Release with fd_ctx_free. */
int fd_ctx_open(struct fd_ctx *c, enum fd_dev dev, int threads, uint64_t seed, struct fd_err *e);
/* Set the precision of c's matrix products (fd_ctx_open gives fp32). bf16
 * needs a device whose table supports it: on the CPU, AVX512-BF16 as oneDNN
 * sees it (the error names the missing feature; ONEDNN_MAX_CPU_ISA below
 * avx512_core_bf16 counts as missing). Call it before the first op: conv2d
 * plans remember the precision they were made for, so a later change makes
 * new plans. On failure c is unchanged and e says why. */
int fd_ctx_set_precision(struct fd_ctx *c, enum fd_precision p, struct fd_err *e);
/* Start a new step: drop the tape and every arena tensor, clear the error,
 * advance the step counter (new dropout masks). */
int fd_ctx_step(struct fd_ctx *c);
/* Reserve the host arena's address range (fd_arena_reserve) for a context
 * that will run many identical steps (training): the physical memory's size
 * (at most 1 TiB). 0, or -1 when it could not (the arena then grows as
 * usual; nothing else changes). */
int fd_ctx_reserve(struct fd_ctx *c);
/* Release what the context owns: arena, gradient pool, engine. No-op on a
 * zeroed c. */
void fd_ctx_free(struct fd_ctx *c);
/* Record a failure in c->err (the first one wins) and return NULL, so ops can
 * `return fd_fail(c, ...)`. */
void *fd_fail(struct fd_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A fresh stream for the next random op of this step: depends on seed, step
 * and the op's position in the step, never on threads. */
uint64_t fd_ctx_stream(struct fd_ctx *c);

/* --- releasing memory inside a step (inference) ---
 *
 * The arena frees nothing until fd_ctx_step(), so a forward pass would hold
 * every activation. A forward that runs without a tape (inference) can give
 * back a block's intermediates once the block's output exists:
 *
 *     struct fd_mark mk = fd_ctx_mark(c);
 *     y = ...ops on x...;
 *     y = fd_ctx_keep(c, &mk, y);   (y moved down to the mark, or left in place
 *                                   above a small gap; the rest freed)
 *
 * Contract (the caller guarantees): nothing allocated after the mark is used
 * afterwards except the tensor kept (its old header and data pointers are
 * invalid; use the returned one); the mark is of this step and marks nest
 * (keep to an inner mark before an outer one; a keep to an outer mark
 * invalidates the inner ones). Memory allocated before the mark (the input x
 * of the forward, earlier kept tensors) is untouched. When a tape node was
 * recorded since the mark (training, or any op that needs grad), the values
 * are needed by backward, so fd_ctx_keep does nothing and returns t: callers
 * need no mode test. */
struct fd_mark {
	struct fd_arena_mark a;
	const struct fd_node *tape; /* c->tape at the mark */
};

/* The context's current arena position and tape. */
struct fd_mark fd_ctx_mark(const struct fd_ctx *c);
/* Keep t, free everything else allocated since m (see above): returns t's
 * new header, data moved right above the mark (a data pointer below the mark
 * or outside the arena is kept as is, only the header moves). Returns t
 * unchanged when a node was recorded since m, when t has a gradient or is not
 * on the CPU, and t (NULL) when t is NULL or the context has failed. NULL
 * with c->err when moving needed memory the heap could not give. The values
 * are bit for bit those of t. */
struct fd_tensor *fd_ctx_keep(struct fd_ctx *c, const struct fd_mark *m, struct fd_tensor *t);

/* n floats of dev memory, valid until fd_ctx_step: the host arena for the
 * CPU, the device arena for the context's own device (a CUDA context); any
 * other device answers "not supported". Uninitialised (a fresh device block
 * is zeroed, reused memory is not). NULL and c->err set on failure. */
float *fd_ctx_alloc(struct fd_ctx *c, enum fd_dev dev, int64_t n);

/* New arena tensor with the given shape, uninitialised (fd_tensor_zeros: zeroed).
 * ndim 1..FD_MAXDIM, every dim >= 1. NULL on error (c->err). */
struct fd_tensor *fd_tensor_new(struct fd_ctx *c, enum fd_dev dev, int ndim, const int64_t *shape);
struct fd_tensor *fd_tensor_zeros(struct fd_ctx *c, enum fd_dev dev, int ndim, const int64_t *shape);
/* New CPU tensor with the given shape whose data holds bf16 values
 * (FD_T_BF16, numel of them, uninitialised): host arena, or a block of the
 * gradient pool under c->pool_outputs (as fd_tensor_new). Counted in
 * c->bf16_outs when made under c->bf16_out. NULL on error (c->err). */
struct fd_tensor *fd_tensor_new_bf16(struct fd_ctx *c, int ndim, const int64_t *shape);
/* The bytes of t's data: numel floats, or numel bf16 values (FD_T_BF16). */
size_t fd_tensor_bytes(const struct fd_tensor *t);
/* Give back the gradient-pool block holding t's data (a tensor fd_tensor_new
 * made under c->pool_outputs): the block then serves later such outputs and
 * the backward's gradients, so t's values are undefined from now on. No-op
 * for any other tensor (NULL included). The caller guarantees that nothing
 * reads t's values afterwards: no later op, and no backward (neither t's
 * maker nor any op that read t reads those values in its backward; e.g. a
 * batchnorm2d output read only by an add or by a max pool, which keeps its
 * indices). */
void fd_tensor_release(struct fd_ctx *c, struct fd_tensor *t);

/* An arena tensor header over caller memory (not copied, not owned). */
struct fd_tensor *fd_tensor_wrap(struct fd_ctx *c, enum fd_dev dev, float *data, int ndim,
				 const int64_t *shape);
/* Same shape (ndim and every dim). */
int fd_tensor_same_shape(const struct fd_tensor *a, const struct fd_tensor *b);
/* "[2,3,5,5]" into buf (for messages); returns buf. */
const char *fd_tensor_shape_str(const struct fd_tensor *t, char *buf, size_t len);
/* Ask for t's gradient: ops that consume t from now on are recorded and
 * fd_backward fills t->grad, valid until fd_ctx_step() (the gradient of an op
 * output nobody asked for is released during the backward pass). This is how
 * Grad-CAM gets d(logit)/d(activation). */
void fd_requires_grad(struct fd_tensor *t);

/* --- tape --- */

#define FD_NODE_MAXIN 4

/* One recorded op. backward reads out->grad and ADDS into in[i]->grad for
 * every input with FD_T_REQUIRES_GRAD (fd_backward has allocated and zeroed
 * those that had none). saved is the op's own state (arena memory).
 * writes (0 from fd_tape_push; the op may set bit i after pushing) lets
 * fd_backward skip zeroing a new gradient of in[i]: when in[i] is no other
 * input of the node and its gradient is first needed here, fd_backward
 * allocates it without zeroing and sets FD_T_GRAD_FRESH on in[i] for the
 * duration of backward, which must then WRITE every element of in[i]->grad
 * (the value it would have added to zeros) instead of adding. A gradient
 * that already holds values (a tensor used by several ops) is never fresh,
 * so accumulation is unchanged.
 * aliases (0 from fd_tape_push; bit i implies writes bit i) says backward is
 * also correct when in[i]'s fresh gradient IS out's gradient (dx == dy: an
 * elementwise or per-row op reading every dy value it needs before writing
 * dx there). With c->reuse_activations, fd_backward then lets in[i] take
 * out's pool block instead of a new one when out's gradient is dead after
 * the node (a pool gradient, released right after), of in[i]'s size and
 * layout, and in[i]'s would be a fresh pool block; at most one input per
 * node takes it. */
struct fd_node {
	const char *op;
	int (*backward)(struct fd_ctx *c, struct fd_node *n);
	struct fd_tensor *in[FD_NODE_MAXIN];
	int nin;
	unsigned writes;
	unsigned aliases;
	unsigned bf16_grads; /* bit i: backward writes in[i]'s fresh gradient as bf16 numel
			      * values when in[i] has FD_T_GRAD_BF16 (bit i implies writes
			      * bit i). fd_backward clears the flag where another node
			      * would make that gradient, and fails where one would add
			      * into it */
	struct fd_tensor *out;
	void *saved;
	struct fd_node *prev;
};

/* n floats of c's gradient pool (on c->dev) as scratch of a backward, e.g.
 * a gradient computed apart before it is added into one that already holds
 * values: the smallest free block, dead activations lent to the pool first,
 * so the scratch shares memory with the gradients instead of sitting in
 * a buffer of its own (doc/nn.md "Memory"). Uninitialised; give it back with
 * fd_grad_scratch_put before the step ends. NULL and c->err on failure. */
float *fd_grad_scratch(struct fd_ctx *c, int64_t n);
void fd_grad_scratch_put(struct fd_ctx *c, float *p);

/* Keep t's values readable after fd_backward in a context that reuses
 * activations (c->reuse_activations): e.g. the logits a training loop scores
 * after the step. Returns t. */
struct fd_tensor *fd_keep_data(struct fd_tensor *t);

/* Whether an op with these inputs must be recorded (grad enabled and some
 * input requires grad). */
int fd_needs_grad(const struct fd_ctx *c, int nin, struct fd_tensor *const *in);
/* Record an op whose output is out; marks out as requiring grad. saved_bytes
 * of arena memory are reserved for the op's state (returned through node->saved).
 * NULL on failure (c->err). */
struct fd_node *fd_tape_push(struct fd_ctx *c, const char *op,
			     int (*backward)(struct fd_ctx *, struct fd_node *), int nin,
			     struct fd_tensor *const *in, struct fd_tensor *out, size_t saved_bytes);

/* Reverse-mode pass from t. dy (t->numel floats, on t's device, borrowed) is
 * the seed gradient; NULL means t is a scalar loss and the seed is 1. Every
 * tensor that requires grad and lies on a path to t gets (adds into) its grad;
 * parameter gradients accumulate into their buffer, which the caller zeroes.
 * Leaves (tensors no recorded op made) and tensors given to fd_requires_grad
 * keep their grad until fd_ctx_step(); an op output's grad is released (NULL)
 * as soon as that op's backward has run, t's too. One backward per tape.
 * Returns 0, or -1 with c->err (including a failure recorded earlier this step). */
int fd_backward(struct fd_ctx *c, struct fd_tensor *t, const float *dy);

#endif

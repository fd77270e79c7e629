/* conv_mm: bf16 convolution backward passes as oneDNN matrix products
 * (doc/nn-kernels.md "bf16"). On a CPU where oneDNN 2.6's bf16 matmul runs
 * its AMX kernel (or, without AMX, its AVX512-BF16 one, for the passes
 * fd_conv_mm_init names), a channels-last (x and y NHWC), ungrouped,
 * undilated convolution's backward is one or a few matmuls, much faster
 * there than oneDNN 2.6's bf16 convolution backward primitives:
 *   backward-data of a 1x1 convolution without padding (any stride):
 *     dx[n, s oh, s ow, :] = dy[n, oh, ow, :] . W[K, C]
 *     (positions a stride skips get no gradient);
 *   backward-weights (1x1 or kxk, any stride and padding):
 *     dW[K, kh kw C] = dy^T . im2col(x), added into dw's OIHW layout, the
 *     im2col built a batch chunk at a time (at most FD_CONV_MM_COL_MAX bf16
 *     values, or x's own size for a 1x1); db += column sums of the fp32 dy.
 * Operands are rounded to bf16 by fd_dnnl_to_bf16 (nearest even); products
 * accumulate in fp32 and dx, dw, db are fp32. The bf16 dy lives in the
 * context's shared slot 1 (where oneDNN's backward-data puts it), so both
 * passes share one conversion; the bf16 weights and im2col use slot 0, the
 * fp32 scratch (a strided dx, a kxk dW, a strided kxk's columns) slot 2,
 * the matmuls' scratchpads FD_DNNL_SCRATCH (fd_dnnl.h). Used by
 * conv2d.c's CPU plans only (private to the conv2d module). */
#ifndef FD_CONV_MM_H
#define FD_CONV_MM_H

#include "nn/conv2d.h"
#include "nn/fd_dnnl.h"

/* Most bf16 values of one im2col chunk (16 MiB) for kxk backward-weights;
 * a 1x1's chunk may be as large as x (the size of the bf16 x oneDNN's
 * forward already keeps in slot 0). */
#define FD_CONV_MM_COL_MAX ((int64_t)8 << 20)

/* Which passes of a plan run as matmuls (FD_CONV_MM_DATA,
 * FD_CONV_MM_WEIGHTS bits) and their primitives (handles set per call). */
enum { FD_CONV_MM_DATA = 1, FD_CONV_MM_WEIGHTS = 2 };
/* fd_conv2d_bf16_mm_cpu's bit for conv2d.c's stride-1 kxk backward-data as
 * a forward convolution of dy (not a matmul; flip_init in conv2d.c) */
#define FD_CONV_MM_FLIP 4

struct fd_conv_mm {
	int passes;             /* FD_CONV_MM_* bits; 0: none (the other fields unset) */
	int Ho, Wo;
	int nb;                 /* images per im2col chunk (backward-weights) */
	int nbd;                /* images per column chunk (strided kxk backward-data) */
	dnnl_primitive_t bd, bd_sum; /* dx = / dx += dy W (bd_sum: stride 1 only) */
	dnnl_primitive_t bw;         /* dW += dy^T cols (a chunk's) */
	dnnl_memory_t bd_m[4], bds_m[4], bw_m[4]; /* A, B, C and scratchpad of each */
};

/* The passes shape s (output Ho x Wo) would run as matmuls by fd's static
 * rule (doc/nn-kernels.md "bf16"): FD_CONV_MM_* bits, 0 for none. */
int fd_conv_mm_rule(const struct fd_conv2d_shape *s, int Ho, int Wo);

/* The part of that rule a CPU without AMX runs as matmuls where oneDNN's
 * matmul is its AVX512-BF16 kernel (doc/nn-kernels.md "bf16 without
 * AMX"): backward-weights, but a 1x1's only on maps under
 * FD_CONV2D_BF16_WEIGHTS_MAP positions or strided with >= 96 input
 * channels; backward-data of a 1x1 only (a strided kxk's im2col one was
 * slower than oneDNN's). */
int fd_conv_mm_nonamx(const struct fd_conv2d_shape *s, int Ho, int Wo);

/* Make m for s at bf16 on d: the passes of fd_conv_mm_rule, each kept only
 * where oneDNN's matmul for it is its AMX kernel, or on a CPU without AMX
 * its AVX512-BF16 one for the passes of fd_conv_mm_nonamx
 * (fd_pd_bf16_native); m->passes says which (0 is no error), d's slots
 * grown for them. 0, or -1 with e (m zeroed). */
int fd_conv_mm_init(struct fd_conv_mm *m, struct fd_dnnl *d, const struct fd_conv2d_shape *s, int Ho, int Wo,
		    struct fd_err *e);
/* Free m's primitives and memories; m zeroed (no-op on a zeroed m). */
void fd_conv_mm_free(struct fd_conv_mm *m);

/* dy (fp32, NHWC [N Ho Wo, K]) rounded to bf16 into d's slot 1, where both
 * passes read it. 0, or -1 with e. */
int fd_conv_mm_dy(const struct fd_conv_mm *m, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
		  const float *dy, struct fd_err *e);
/* Backward-data (m->passes has FD_CONV_MM_DATA) from the bf16 dy: dyb
 * (NHWC, e.g. a gradient BN wrote in bf16: FD_T_GRAD_BF16), or slot 1's when
 * NULL: dx (NHWC) += the gradient, or = it when over (a fresh gradient:
 * every value written, zero where the stride skips). 0, or -1 with e. */
int fd_conv_mm_bwd_data(const struct fd_conv_mm *m, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
			const uint16_t *dyb, const float *w, float *dx, int over, struct fd_err *e);
/* Backward-weights (m->passes has FD_CONV_MM_WEIGHTS) from x (NHWC) and the
 * bf16 dy (dyb, or slot 1's when NULL), dy (fp32) for the bias: dw (OIHW)
 * += dW and, with db, db += column sums of dy (of the bf16 dyb where that
 * was given, else of the fp32 dy); either may be
 * NULL (not wanted). With x NULL, xb is x already in bf16 (FD_T_BF16:
 * fd_dnnl_to_bf16's values), read as it is. 0, or -1 with e. */
int fd_conv_mm_bwd_weights(const struct fd_conv_mm *m, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
			   const float *x, const uint16_t *xb, const float *dy, const uint16_t *dyb, float *dw,
			   float *db, struct fd_err *e);

#endif

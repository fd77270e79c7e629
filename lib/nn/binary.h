/* binary: add and mul with numpy/PyTorch broadcasting (taped). */
#ifndef FD_BINARY_H
#define FD_BINARY_H

#include "nn/fd_backend.h"
#include "nn/fd_tensor.h"

/* y = a + b, y = a * b. Shapes broadcast right-aligned as torch does: each
 * dim equal or 1 in one operand ([N,C,H,W] * [N,C,1,1] for squeeze-excitation,
 * [N,C,H,W] * [C,1,1] for ConvNeXt's layer scale, equal shapes for residuals).
 * The result has the broadcast shape (at most 5 dims). Backward adds into da
 * and db, summing over the dims an operand was broadcast along (torch's
 * sum_to_size). Both operands on the same device. mul (not add) takes one
 * operand in bf16 (FD_T_BF16, widened exactly) on the CPU in a bf16
 * context: 4-D, in the result's layout, not broadcast, the other operand
 * full or broadcast along all but the innermost dim of the memory order
 * (ConvNeXt's layer scale over channels-last); the same bits as on the
 * widened floats. NULL on error (c->err). */
struct fd_tensor *fd_add(struct fd_ctx *c, struct fd_tensor *a, struct fd_tensor *b);
struct fd_tensor *fd_mul(struct fd_ctx *c, struct fd_tensor *a, struct fd_tensor *b);
/* a += b in place (torch: a.add_(b) / the residual `out += identity` of
 * torchvision's blocks): equal shapes only; the result is a new header over
 * a's memory, values bit for bit fd_add's, gradients too (add's backward
 * reads no values). The caller guarantees a's old values are not needed
 * afterwards (no later op reads a; a's maker, e.g. batchnorm2d or conv2d,
 * does not read its output in backward). */
struct fd_tensor *fd_add_(struct fd_ctx *c, struct fd_tensor *a, struct fd_tensor *b);

/* Fill bc for a and b; -1 with c->err when they do not broadcast. The output
 * ndim is max(a->ndim, b->ndim), written to *ndim; bc->shape is 5-D with
 * leading 1s. */
int fd_bcast_init(struct fd_ctx *c, struct fd_bcast *bc, const struct fd_tensor *a,
		  const struct fd_tensor *b, int *ndim);

/* CPU kernels of the table. */
int fd_binary_fwd_cpu(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const float *a,
		   const float *b, float *y);
int fd_binary_bwd_cpu(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const float *a,
		   const float *b, const float *dy, float *da, float *db);

/* The oracle for the tests: plain single-thread loops over the 5-D broadcast
 * index of bc (from fd_bcast_init), in double. Forward overwrites y [bc->n];
 * backward ADDS into da [bc->na] and db [bc->nb] (either may be NULL), each
 * output position adding to the operand element it read, which is torch's
 * sum_to_size. t_nn_ops checks them against PyTorch, t_nn_fd64 against float64
 * finite differences and the fast kernels against them. */
void fd_bin_ref_forward(enum fd_binop op, const struct fd_bcast *bc, const double *a, const double *b,
			double *y);
void fd_bin_ref_backward(enum fd_binop op, const struct fd_bcast *bc, const double *a, const double *b,
			 const double *dy, double *da, double *db);

#endif

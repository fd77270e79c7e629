/* conv2d: 2-D convolution over contiguous NCHW float32, forward and backward,
 * as torch.nn.functional.conv2d(x, w, b, stride, padding, dilation, groups).
 * A plan is made once per shape (oneDNN primitive creation is expensive) and
 * reused every step; oneDNN picks its preferred (blocked) layouts and the plan
 * caches the reorders to and from the caller's plain layouts. */
#ifndef FD_CONV2D_H
#define FD_CONV2D_H

#include "core/fd_err.h"
#include "nn/fd_dnnl.h"

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
};

/* Check a shape (all sizes positive, C and K divisible by groups, output at
 * least 1x1) and compute the output size. Errors name the offending field. */
int fd_conv2d_out_size(const struct fd_conv2d_shape *s, int *Ho, int *Wo, struct fd_err *e);

struct fd_conv2d {
	struct fd_conv2d_shape s;
	int Ho, Wo;
	struct fd_dnnl *d;      /* borrowed */
	dnnl_primitive_desc_t fwd_pd;
	dnnl_primitive_t fwd;
	struct fd_dnnl_opnd f_x, f_w, f_y;
	dnnl_memory_t f_b;
	/* backward primitives, made on first use (inference never needs them) */
	dnnl_primitive_t bwd_data, bwd_w;
	struct fd_dnnl_opnd bd_dy, bd_w, bd_dx;
	struct fd_dnnl_opnd bw_x, bw_dy, bw_dw, bw_db;
};

/* Make a plan for shape s on d (borrowed; must outlive p). Creates the forward
 * primitive and its reorders; the backward ones come on the first backward
 * call. Errors: bad shape, or the oneDNN call that failed with the shape. */
int fd_conv2d_init(struct fd_conv2d *p, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
		   struct fd_err *e);
/* Release everything; no-op on a zeroed p. */
void fd_conv2d_free(struct fd_conv2d *p);

/* y = conv2d(x, w, b): OVERWRITES y. b is ignored (may be NULL) when the shape
 * has no bias. All pointers are contiguous NCHW / KCRS float32. */
int fd_conv2d_forward(struct fd_conv2d *p, const float *x, const float *w, const float *b, float *y,
		      struct fd_err *e);
/* dx += d(conv2d)/dx^T dy: ADDS into dx (callers zero it), as x.grad after
 * backward in PyTorch. */
int fd_conv2d_backward_data(struct fd_conv2d *p, const float *dy, const float *w, float *dx,
			    struct fd_err *e);
/* dw += grad of w, db += sum of dy over N, Ho, Wo (db ignored, may be NULL,
 * when the shape has no bias): ADDS, as w.grad / b.grad in PyTorch. */
int fd_conv2d_backward_weights(struct fd_conv2d *p, const float *x, const float *dy, float *dw,
			       float *db, struct fd_err *e);

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

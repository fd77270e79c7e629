/* act: elementwise activations and PReLU, forward and backward (taped). */
#ifndef FD_ACT_H
#define FD_ACT_H

#include "nn/fd_backend.h"
#include "nn/fd_tensor.h"

/* y = f(x), same shape, new arena tensor; recorded when x requires grad.
 * PyTorch: relu = F.relu (gradient 0 at x = 0); hardswish = F.hardswish
 * (x * relu6(x + 3) / 6; gradient x/3 + 1/2 on [-3, 3], 0 below, 1 above);
 * hardsigmoid = F.hardsigmoid (relu6(x + 3) / 6; gradient 1/6 on (-3, 3) open);
 * silu = F.silu; sigmoid = torch.sigmoid; gelu = F.gelu(approximate='none'),
 * x/2 (1 + erf(x / sqrt 2)). NULL input or failure: NULL with c->err. */
struct fd_tensor *fd_act(struct fd_ctx *c, enum fd_act k, struct fd_tensor *x);
struct fd_tensor *fd_relu(struct fd_ctx *c, struct fd_tensor *x);
struct fd_tensor *fd_hardswish(struct fd_ctx *c, struct fd_tensor *x);
struct fd_tensor *fd_silu(struct fd_ctx *c, struct fd_tensor *x);
struct fd_tensor *fd_sigmoid(struct fd_ctx *c, struct fd_tensor *x);
struct fd_tensor *fd_gelu(struct fd_ctx *c, struct fd_tensor *x);
const char *fd_act_name(enum fd_act k);

/* relu in place, as torch's nn.ReLU(inplace=True): x's data is overwritten
 * with relu(x) and the result is a new header over the same memory (x's
 * header keeps pointing at it, now holding relu(x)). Bit for bit fd_relu's
 * values and gradients: the backward masks dy with y > 0, which is x > 0.
 * The caller guarantees that x's old values are not needed afterwards: no
 * later op reads x, and the op that made x does not read its output in its
 * backward (conv2d, batchnorm2d, add do not; sigmoid does). */
struct fd_tensor *fd_relu_(struct fd_ctx *c, struct fd_tensor *x);
/* fd_relu_ when k is relu, fd_act otherwise (the other activations' backward
 * needs x, which in place would destroy), except gelu recorded on the CPU:
 * y is a new tensor as fd_act's and x's data is overwritten with GELU'(x) =
 * Phi(x) + x phi(x), computed beside y (one erf for both), which the
 * backward reads instead of x (dx = dy GELU'(x), no exp or erf). Values and
 * gradients are bit for bit fd_act's. Same caller guarantee as fd_relu_.
 * That form alone, in a bf16 context, takes a bf16 x (FD_T_BF16): y is
 * GELU of the widened values and GELU'(x) is written over x rounded to
 * bf16 (dx = dy times it); any other call on a bf16 x fails. */
struct fd_tensor *fd_act_(struct fd_ctx *c, enum fd_act k, struct fd_tensor *x);
/* Whether fd_act_'s GELU on a bf16 x with a bf16 y (c->bf16_out) runs
 * its AVX-512 intrinsics kernel on this CPU (the same bits as the portable
 * loop on every bf16 input; t_nn_bf16in) */
int fd_act_gelu_bf16_fast(void);

/* PReLU with one slope per channel: x [N, C, ...] (ndim >= 2), w [C].
 * y = x if x > 0 else w[c] x. PyTorch nn.PReLU(num_parameters=C); the
 * gradient at x = 0 follows torch (the w branch). Backward adds into dx and dw. */
struct fd_tensor *fd_prelu(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w);

/* Plain single-thread loops in double: the oracle the tests check the float32
 * kernels against and check themselves with float64 finite differences
 * (t_nn_fd64). Same layouts and semantics as the kernels, including the
 * one-sided choices at the kinks (relu 0 at x = 0, hardswish x/3 + 1/2 on the
 * closed [-3, 3], hardsigmoid 1/6 on the open (-3, 3), prelu's w branch at
 * x = 0). Forward overwrites y; backward ADDS into dx (and dw; either may be
 * NULL for prelu). Sigmoid's backward takes x, not y, since the reference
 * recomputes it. Unknown k: forward writes NaN, backward adds NaN, so a test
 * cannot pass by accident. */
void fd_act_ref_forward(enum fd_act k, int64_t n, const double *x, double *y);
void fd_act_ref_backward(enum fd_act k, int64_t n, const double *x, const double *dy, double *dx);
void fd_prelu_ref_forward(int64_t N, int64_t C, int64_t inner, const double *x, const double *w,
			  double *y);
void fd_prelu_ref_backward(int64_t N, int64_t C, int64_t inner, const double *x, const double *w,
			   const double *dy, double *dx, double *dw);

/* CPU kernels of the table (plain C + OpenMP). */
int fd_act_fwd_cpu(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, float *y);
int fd_act_bwd_cpu(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, const float *y,
		   const float *dy, float *dx);
int fd_prelu_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
		     const float *w, float *y);
int fd_prelu_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
		     const float *w, const float *dy, float *dx, float *dw);

#endif

/* loss: BCE-with-logits and softmax cross-entropy, mean over the batch (taped). */
#ifndef FD_LOSS_H
#define FD_LOSS_H

#include "nn/fd_tensor.h"

/* F.binary_cross_entropy_with_logits(x, t, reduction='mean'): x any shape
 * (the logits, [N] or [N,1]), t the same number of targets in [0, 1] (no
 * gradient flows into t). Computed stably in double as
 * max(x,0) - x t + log1p(exp(-|x|)). Returns a [1] tensor; backward adds
 * g (sigmoid(x) - t) / n into dx. NULL on error (c->err). */
struct fd_tensor *fd_bce_with_logits(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *t);

/* F.cross_entropy(x, label, reduction='mean'): x [N,K] logits, label N class
 * indices (host memory, copied; each in [0, K) or an error). Returns a [1]
 * tensor; backward adds g (softmax(x) - onehot) / N into dx. */
struct fd_tensor *fd_cross_entropy(struct fd_ctx *c, struct fd_tensor *x, const int32_t *label);

/* The oracles for the tests (t_nn_fd64): plain loops in double. The forwards
 * return the mean loss (BCE in the same stable form as the kernel, CE as
 * logsumexp - x[label] with the max subtracted); the backwards ADD
 * g (sigmoid(x) - t) / n, resp. g (softmax(x) - onehot) / N, into dx, with g
 * the incoming gradient of the loss. Labels must lie in [0, K). */
double fd_bce_ref_forward(int64_t n, const double *x, const double *t);
void fd_bce_ref_backward(int64_t n, const double *x, const double *t, double g, double *dx);
double fd_ce_ref_forward(int64_t N, int64_t K, const double *x, const int32_t *label);
void fd_ce_ref_backward(int64_t N, int64_t K, const double *x, const int32_t *label, double g,
			double *dx);

int fd_bce_fwd_cpu(struct fd_ctx *c, int64_t n, const float *x, const float *t, double *loss);
int fd_bce_bwd_cpu(struct fd_ctx *c, int64_t n, const float *x, const float *t, float g, float *dx);
int fd_ce_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t K, const float *x, const int32_t *label,
		  float *prob, double *loss);
int fd_ce_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t K, const float *prob, const int32_t *label,
		  float g, float *dx);

#endif

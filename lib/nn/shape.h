/* shape: reshape and flatten (taped views). */
#ifndef FD_SHAPE_H
#define FD_SHAPE_H

#include "nn/fd_tensor.h"

/* A tensor of the new shape over x's data (no copy; x is contiguous). One dim
 * may be -1 and is inferred. The element count must match. Backward adds the
 * output gradient into x's (its own buffer, so branches that read both x and
 * the view stay correct). PyTorch: x.reshape(shape). NULL on error (c->err). */
struct fd_tensor *fd_reshape(struct fd_ctx *c, struct fd_tensor *x, int ndim, const int64_t *shape);

/* torch.flatten(x, start_dim, end_dim=-1): dims start_dim.. merged into one
 * ([N,C,1,1] -> [N,C] with start_dim 1, as torchvision heads do). */
struct fd_tensor *fd_flatten(struct fd_ctx *c, struct fd_tensor *x, int start_dim);

#endif

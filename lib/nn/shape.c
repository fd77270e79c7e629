/* shape: reshape/flatten share the data and copy-add the gradient back. */
#include "nn/shape.h"
#include "nn/layout.h"
#include "nn/fd_backend.h"

static int reshape_backward(struct fd_ctx *c, struct fd_node *n)
{
	struct fd_tensor *x = n->in[0], *y = n->out;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, axpy);
	return be ? be->axpy(c, x->numel, 1.0f, y->grad, x->grad) : -1;
}

struct fd_tensor *fd_reshape(struct fd_ctx *c, struct fd_tensor *x, int ndim, const int64_t *shape)
{
	if (!x)
		return NULL;
	if (!(x = fd_to_layout(c, x, FD_NCHW))) /* reshape is of the logical order */
		return NULL;
	if (ndim < 1 || ndim > FD_MAXDIM)
		return fd_fail(c, "reshape to %d dims (1..%d allowed)", ndim, FD_MAXDIM);
	int64_t s[FD_MAXDIM], known = 1;
	int infer = -1;
	for (int i = 0; i < ndim; i++) {
		s[i] = shape[i];
		if (s[i] == -1 && infer < 0)
			infer = i;
		else if (s[i] < 1)
			return fd_fail(c, "reshape: dim %d is %lld", i, (long long)s[i]);
		else
			known *= s[i];
	}
	char b[64];
	if (infer >= 0) {
		if (x->numel % known)
			return fd_fail(c, "reshape: %s does not split by %lld", fd_tensor_shape_str(x, b, sizeof b),
				       (long long)known);
		s[infer] = x->numel / known;
		known *= s[infer];
	}
	if (known != x->numel)
		return fd_fail(c, "reshape: %s has %lld elements, the new shape %lld",
			       fd_tensor_shape_str(x, b, sizeof b), (long long)x->numel, (long long)known);
	struct fd_tensor *y = fd_tensor_wrap(c, x->dev, x->data, ndim, s);
	if (!y)
		return NULL;
	if (fd_needs_grad(c, 1, &x) && !fd_tape_push(c, "reshape", reshape_backward, 1, &x, y, 0))
		return NULL;
	return y;
}

struct fd_tensor *fd_flatten(struct fd_ctx *c, struct fd_tensor *x, int start_dim)
{
	if (!x)
		return NULL;
	if (start_dim < 0 || start_dim >= x->ndim)
		return fd_fail(c, "flatten: start dim %d of a %d-dim tensor", start_dim, x->ndim);
	int64_t s[FD_MAXDIM];
	for (int i = 0; i < start_dim; i++)
		s[i] = x->shape[i];
	s[start_dim] = -1;
	return fd_reshape(c, x, start_dim + 1, s);
}

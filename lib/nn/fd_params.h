/* fd_params: a model's parameters and buffers in one buffer with named views
 * (PyTorch state_dict keys), gradients in a second buffer of the same layout.
 * Zeroing gradients is one memset; a checkpoint is one write. */
#ifndef FD_PARAMS_H
#define FD_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"
#include "nn/fd_tensor.h"

enum fd_pkind {
	FD_P_PARAM,   /* trained: has a gradient and optimizer state */
	FD_P_BUFFER,  /* state_dict buffer (batchnorm running_mean/var): not trained */
	FD_P_COUNTER, /* int64 scalar buffer (num_batches_tracked); held as a float, saved as I64 */
};

struct fd_pview {
	char *name;
	enum fd_pkind kind;
	int group;            /* optimizer parameter group (FD_P_PARAM only), 0 by default */
	size_t off;           /* in floats, into data (and grad for parameters) */
	struct fd_tensor t;   /* data/grad point into the buffers after fd_params_alloc */
};

/* Declare with fd_params_add in state_dict order, then fd_params_alloc once.
 * Layout: every parameter first (64-byte aligned each), then every buffer, so
 * data[0 .. ntrain) is exactly what grad and the optimizer moments mirror. */
struct fd_params {
	int n, cap;
	struct fd_pview *v;
	enum fd_dev dev;
	int64_t ntrain, ntotal; /* floats, padding included */
	float *data;            /* [ntotal], owned */
	float *grad;            /* [ntrain], owned */
};

void fd_params_init(struct fd_params *p);
/* Declare a tensor; returns its index, or -1 (duplicate name, bad shape,
 * after alloc). ndim 0 is a scalar (shape [] in the state dict). */
int fd_params_add(struct fd_params *p, const char *name, enum fd_pkind kind, int ndim,
		  const int64_t *shape, struct fd_err *e);
/* Lay out and allocate the buffers (zeroed) on p->dev through its table's
 * memory entry (mem_alloc; "not supported" on a device without one).
 * Parameters get FD_T_REQUIRES_GRAD and their grad view. */
int fd_params_alloc(struct fd_params *p, struct fd_err *e);
/* The view of index i / of a name (NULL when absent). Stable after alloc. */
struct fd_tensor *fd_params_tensor(struct fd_params *p, int i);
struct fd_tensor *fd_params_find(struct fd_params *p, const char *name);
int fd_params_index(const struct fd_params *p, const char *name);
/* Move the allocated buffers (values and gradients) to device dev, which
 * is the CPU or c's device: new buffers from dev's mem_alloc, the values and
 * gradients copied through c's table (copy_h2d / copy_d2h), every view
 * repointed (data, grad, dev), the old buffers freed. Views stay the same
 * structs, so tensors a model holds follow. An optimizer's moments stay
 * where they are: fd_optim_step only while p is on their device again (a
 * checkpoint write visits the host and comes back). No-op when p is on dev.
 * Errors: dev not c's device nor the CPU, no memory, a failed copy (c->err);
 * p is unchanged then. */
int fd_params_move(struct fd_params *p, struct fd_ctx *c, enum fd_dev dev, struct fd_err *e);
/* grad = 0, one mem_zero of the device. */
void fd_params_zero_grad(struct fd_params *p);
/* Put parameters of at most one dimension (biases, norm weights, PReLU
 * slopes, layer scales are [C,1,1]: those too, by their element count equal
 * to their first dim) into group g, the usual "no weight decay on norms and
 * biases" split; others stay in group 0. Returns how many moved. */
int fd_params_group_vectors(struct fd_params *p, int g);
/* Number of trainable scalars (padding excluded). */
int64_t fd_params_count(const struct fd_params *p);
void fd_params_free(struct fd_params *p);

#endif

/* fd_backend: device tables and the "not supported" dispatcher. */
#include "nn/fd_backend.h"

/* The CUDA table (lib/nn/backend_cuda.cu, fd_cuda.h) is referenced weakly: a
 * static link pulls the CUDA backend's object out of libfd.a only for a
 * program that calls into it (fd_cuda_open, which a program running on the
 * GPU needs anyway), and only such a program loads cudart, cuBLAS and cuDNN
 * (--as-needed). Any other program, and every program of a build without
 * CUDA, sees no CUDA table: loading those libraries costs ~0.3 s and ~220 MB
 * at each start. */
extern const struct fd_backend fd_backend_cuda __attribute__((weak));

const struct fd_backend *fd_backend_of(enum fd_dev d)
{
	if (d == FD_DEV_CUDA)
		return &fd_backend_cuda; /* NULL unless the program links the CUDA backend */
	return d == FD_DEV_CPU ? &fd_backend_cpu : NULL;
}

const struct fd_backend *fd_backend_need(struct fd_ctx *c, enum fd_dev d, int has, const char *what)
{
	if (!has)
		return fd_fail(c, "%s on %s: not supported", what, fd_dev_name(d));
	return fd_backend_of(d);
}

/* fd_backend: device tables and the "not supported" dispatcher. */
#include "nn/fd_backend.h"

const struct fd_backend *fd_backend_of(enum fd_dev d)
{
	/* the CUDA table joins here when the CUDA backend is built */
	return d == FD_DEV_CPU ? &fd_backend_cpu : NULL;
}

const struct fd_backend *fd_backend_need(struct fd_ctx *c, enum fd_dev d, int has, const char *what)
{
	if (!has)
		return fd_fail(c, "%s on %s: not supported", what, fd_dev_name(d));
	return fd_backend_of(d);
}

/* nn_ctx.h: a CPU context for the nn tests, or "Bail out!" when none opens. */
#ifndef NN_CTX_H
#define NN_CTX_H

#include <stdio.h>
#include <stdlib.h>
#include "nn/fd_tensor.h"

static __attribute__((unused)) void ctx_open(struct fd_ctx *c, int threads, uint64_t seed)
{
	struct fd_err e = {{0}};
	if (fd_ctx_open(c, FD_DEV_CPU, threads, seed, &e) < 0) {
		printf("Bail out! context: %s\n", e.msg);
		exit(1);
	}
}

#endif

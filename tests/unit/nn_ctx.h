/* nn_ctx.h: a CPU context for the nn tests, or "Bail out!" when none opens. */
#ifndef NN_CTX_H
#define NN_CTX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nn/fd_tensor.h"

static __attribute__((unused)) void ctx_open(struct fd_ctx *c, int threads, uint64_t seed)
{
	struct fd_err e = {{0}};
	if (fd_ctx_open(c, FD_DEV_CPU, threads, seed, &e) < 0) {
		printf("Bail out! context: %s\n", e.msg);
		exit(1);
	}
}

/* Whether /proc/cpuinfo lists flag (e.g. "avx512_bf16", "amx_bf16") among
 * the CPU's flags. */
static __attribute__((unused)) int cpu_has(const char *flag)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[8192];
	int has = 0;
	size_t n = strlen(flag);
	while (f && !has && fgets(line, sizeof line, f))
		if (strncmp(line, "flags", 5) == 0)
			for (char *p = strstr(line, flag); p && !has; p = strstr(p + 1, flag))
				has = (p[-1] == ' ' || p[-1] == '\t') && (p[n] == ' ' || p[n] == '\n');
	if (f)
		fclose(f);
	return has;
}

#endif

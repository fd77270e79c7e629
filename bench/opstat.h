/* bench/opstat.h: seconds and calls by op name, forward and backward, as
 * c->op_timer reports them (lib/nn/fd_tensor.h); shared by bench/model and
 * bench/models --ops. */
#ifndef FD_BENCH_OPSTAT_H
#define FD_BENCH_OPSTAT_H

#include <string.h>

struct opstat {
	const char *op;
	double s[2]; /* [0] forward, [1] backward */
	int n[2];
};
struct opstats {
	struct opstat o[96];
	int n;
};

/* the c->op_timer callback: arg is a struct opstats */
static void op_time(void *arg, const char *op, int bwd, double sec)
{
	struct opstats *st = arg;
	int i = 0;
	while (i < st->n && strcmp(st->o[i].op, op))
		i++;
	if (i == st->n) {
		if (st->n == 96)
			return;
		st->o[st->n++] = (struct opstat){op, {0, 0}, {0, 0}};
	}
	st->o[i].s[bwd] += sec;
	st->o[i].n[bwd]++;
}

#endif

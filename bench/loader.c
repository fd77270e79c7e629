/* bench/loader.c: fd_loader throughput. One training epoch (shuffled, augmented
 * with the merged configs) over a pack's fold-K training rows; prints batches/s
 * and images/s. Usage: loader PACK K THREADS BATCH CONFIG... */
#include "core/fd_config.h"
#include "core/fd_progress.h"
#include "data/fd_loader.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: loader PACK K THREADS BATCH [CONFIG...]\n");
		return 2;
	}
	struct fd_err e;
	struct fd_config c;
	struct fd_loader_opts o = {0};
	fd_config_init(&c, &e);
	for (int i = 5; i < argc; i++)
		if (fd_config_load(&c, argv[i], &e) < 0) {
			fprintf(stderr, "loader: %s\n", e.msg);
			return 1;
		}
	if (fd_aug_cfg_from_config(&o.aug, &c, &e) < 0) {
		fprintf(stderr, "loader: %s\n", e.msg);
		return 1;
	}
	o.fold = atoi(argv[2]);
	o.threads = atoi(argv[3]);
	o.batch = atoi(argv[4]);
	o.seed = 42;
	struct fd_loader *L;
	if (fd_loader_open(&L, argv[1], &o, &e) < 0) {
		fprintf(stderr, "loader: %s\n", e.msg);
		return 1;
	}
	const struct fd_batch *b;
	double best = 0;
	for (int epoch = 0; epoch < 2; epoch++) {
		double t0 = fd_now();
		size_t n = 0;
		int nb = 0;
		fd_loader_begin(L, FD_SET_TRAIN, epoch, 1, &e);
		while (fd_loader_next(L, &b, &e) == 1) {
			n += (size_t)b->n;
			nb++;
		}
		double dt = fd_now() - t0;
		printf("epoch %d: %d batches, %zu images in %.3f s: %.2f batches/s, %.1f images/s\n", epoch,
		       nb, n, dt, nb / dt, n / dt);
		if (n / dt > best)
			best = n / dt;
	}
	printf("fd images/s %.1f\n", best);
	fd_loader_close(L);
	fd_config_free(&c);
	return 0;
}

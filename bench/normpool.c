/* bench/normpool: time fd's batchnorm2d (train forward + backward) and pooling
 * kernels for shapes read from stdin, one per line:
 *   NAME KIND N C H W      (KIND: bn | maxpool3s2 | maxpool3s2_nhwc | gap;
 *                           _nhwc: the channels-last kernel on the same data read as [N, H, W, C])
 * printing "NAME<TAB>fwd_ms<TAB>bwd_ms" (best of the repeats after a warm-up).
 * Driven by bench/normpool_vs_torch.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fd_progress.h"
#include "nn/batchnorm2d.h"
#include "nn/pool2d.h"

int main(int argc, char **argv)
{
	struct fd_ctx c;
	struct fd_err e;
	char line[256], name[64], kind[32];
	int N, C, H, W;
	if (fd_ctx_open(&c, FD_DEV_CPU, argc > 1 ? atoi(argv[1]) : 2, 0, &e)) {
		fprintf(stderr, "normpool: %s\n", e.msg);
		return 1;
	}
	while (fgets(line, sizeof line, stdin)) {
		if (sscanf(line, "%63s %31s %d %d %d %d", name, kind, &N, &C, &H, &W) != 6) {
			fprintf(stderr, "normpool: bad line: %s", line);
			return 2;
		}
		size_t n = (size_t)N * C * H * W;
		float *x = malloc(n * 4), *y = malloc(n * 4), *dy = malloc(n * 4), *dx = calloc(n, 4);
		float *pc = calloc(6 * (size_t)C, 4);
		int32_t *idx = malloc(n * 4);
		for (size_t i = 0; i < n; i++)
			x[i] = (float)((i * 2654435761u) % 1000) / 500 - 1, dy[i] = (float)(i % 7) - 3;
		for (int c = 0; c < C; c++)
			pc[c] = 1, pc[3 * C + c] = 1;
		struct fd_pool2d_shape ps = {N, C, H, W, 3, 3, 2, 2, 1, 1, 0, 1};
		double bf = 1e9, bb = 1e9;
		for (int r = 0; r < 8; r++) {
			double t0 = fd_now(), t1, t2;
			if (!strcmp(kind, "bn")) {
				fd_batchnorm2d_fwd_train_cpu(&c, N, C, H * W, x, pc, pc + C, pc + 2 * C, pc + 3 * C,
							     0.1, 1e-5, y, pc + 4 * C, pc + 5 * C);
				t1 = fd_now();
				fd_batchnorm2d_bwd_train_cpu(&c, N, C, H * W, x, pc, pc + 4 * C, pc + 5 * C, dy, dx,
							     pc + C, pc + 2 * C);
			} else if (!strcmp(kind, "maxpool3s2")) {
				fd_maxpool2d_fwd_cpu(&c, &ps, x, y, idx);
				t1 = fd_now();
				fd_maxpool2d_bwd_cpu(&c, &ps, dy, idx, dx);
			} else if (!strcmp(kind, "maxpool3s2_nhwc")) {
				fd_maxpool2d_nhwc_fwd_cpu(&c, &ps, x, y, idx);
				t1 = fd_now();
				fd_maxpool2d_nhwc_bwd_cpu(&c, &ps, dy, idx, dx);
			} else {
				fd_adaptive_avgpool2d_fwd_cpu(&c, N, C, H, W, 1, 1, x, y);
				t1 = fd_now();
				fd_adaptive_avgpool2d_bwd_cpu(&c, N, C, H, W, 1, 1, dy, dx);
			}
			t2 = fd_now();
			if (r && t1 - t0 < bf)
				bf = t1 - t0;
			if (r && t2 - t1 < bb)
				bb = t2 - t1;
		}
		printf("%s\t%.3f\t%.3f\n", name, 1e3 * bf, 1e3 * bb);
		fflush(stdout);
		free(x), free(y), free(dy), free(dx), free(pc), free(idx);
	}
	fd_ctx_free(&c);
	return 0;
}

/* bench/conv: time fd's conv2d plans (forward, backward-data, backward-weights)
 * for layer shapes read from stdin, one per line:
 *   NAME N C H W K k stride pad groups
 * (usage: conv [THREADS [nhwc|img [bf16|wino]]]; nhwc: x, y, dx, dy channels
 * last, the layout every model's CPU forward runs in; img: x and dx NCHW, y
 * and dy channels last, a model's first layer in inference (dconv.h's image
 * layers); bf16: the context's
 * precision, fd_ctx_set_precision; wino: c->winograd, the Winograd
 * algorithm where the shape allows it)
 * and print "NAME<TAB>fwd_ms<TAB>bwd_data_ms<TAB>bwd_weights_ms" (the best of
 * the repeats after one warm-up, robust to other load on a shared machine;
 * repeats shrink for big layers). Driven by
 * bench/conv_vs_torch.py, which times PyTorch on the same shapes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fd_progress.h"
#include "nn/conv2d.h"

static void fill(float *a, size_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		a[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
	}
}

static double best(const double *t, int n)
{
	double b = t[0];
	for (int i = 1; i < n; i++)
		b = t[i] < b ? t[i] : b;
	return b;
}

int main(int argc, char **argv)
{
	struct fd_ctx c;
	struct fd_err e;
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	int img = argc > 2 && !strcmp(argv[2], "img");
	enum fd_layout lay = argc > 2 && (!strcmp(argv[2], "nhwc") || img) ? FD_NHWC : FD_NCHW;
	int bf16 = argc > 3 && !strcmp(argv[3], "bf16");
	int wino = argc > 3 && !strcmp(argv[3], "wino");
	char line[256], name[64];
	if (fd_ctx_open(&c, FD_DEV_CPU, threads, 0, &e) || (bf16 && fd_ctx_set_precision(&c, FD_PREC_BF16, &e))) {
		fprintf(stderr, "conv: %s\n", e.msg);
		return 1;
	}
	c.winograd = wino;
	while (fgets(line, sizeof line, stdin)) {
		struct fd_conv2d_shape s = {0};
		void *p = NULL;
		int k, st, pad, Ho, Wo;
		if (sscanf(line, "%63s %d %d %d %d %d %d %d %d %d", name, &s.N, &s.C, &s.H, &s.W, &s.K, &k,
			   &st, &pad, &s.groups) != 10) {
			fprintf(stderr, "conv: bad shape line: %s", line);
			return 2;
		}
		s.kh = s.kw = k, s.sh = s.sw = st, s.ph = s.pw = pad, s.dh = s.dw = 1;
		s.xl = s.yl = lay;
		if (img) /* a first layer: the NCHW image in, channels last out */
			s.xl = FD_NCHW;
		if (fd_conv2d_out_size(&s, &Ho, &Wo, &e) < 0 || fd_conv2d_plan_cpu(&c, &s, &p) < 0) {
			fprintf(stderr, "conv: %s\n", c.failed ? c.err.msg : e.msg);
			return 1;
		}
		size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * Ho * Wo;
		size_t nw = (size_t)s.K * (s.C / s.groups) * k * k;
		float *x = malloc(nx * 4), *dx = calloc(nx, 4), *w = malloc(nw * 4), *dw = calloc(nw, 4);
		float *y = malloc(ny * 4), *dy = malloc(ny * 4);
		fill(x, nx, 1), fill(w, nw, 2), fill(dy, ny, 3);
		double flops = 2.0 * ny * (s.C / s.groups) * k * k;
		int reps = flops > 2e10 ? 3 : flops > 2e9 ? 7 : 25;
		double t[3][25];
		for (int r = 0; r <= reps; r++) {
			double t0 = fd_now();
			int rc = fd_conv2d_fwd_cpu(&c, p, x, w, NULL, y);
			double t1 = fd_now();
			rc = rc ? rc : fd_conv2d_bwd_cpu(&c, p, NULL, w, dy, dx, NULL, NULL);
			double t2 = fd_now();
			rc = rc ? rc : fd_conv2d_bwd_cpu(&c, p, x, NULL, dy, NULL, dw, NULL);
			double t3 = fd_now();
			if (rc) {
				fprintf(stderr, "conv: %s\n", c.err.msg);
				return 1;
			}
			fd_ctx_step(&c); /* scratch from the arena (Winograd's) is reused, as in a training step */
			if (r) /* the first round warms up (backward plans, caches) */
				t[0][r - 1] = t1 - t0, t[1][r - 1] = t2 - t1, t[2][r - 1] = t3 - t2;
		}
		printf("%s\t%.3f\t%.3f\t%.3f\n", name, 1e3 * best(t[0], reps), 1e3 * best(t[1], reps),
		       1e3 * best(t[2], reps));
		fflush(stdout);
		free(x), free(dx), free(w), free(dw), free(y), free(dy);
		fd_conv2d_plan_free_cpu(p);
	}
	fd_ctx_free(&c);
	return 0;
}

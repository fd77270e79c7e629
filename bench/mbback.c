/* bench/mbback: an inverted-residual block's back at inference, fd's fused
 * kernel (fd_mbback_infer: SE gate from channel sums, projection with the
 * gates folded in, residual add) against the path the models take without
 * it (fd_se_infer in place, then fd_conv2d_infer of the projection, or
 * fd_conv2d_infer_add into the residual), for EfficientNet-B0's and
 * MobileNetV3-Small's back shapes at 224 px or those read from stdin, one
 * per line:
 *   NAME N C H W Csq Cout res act gate  (res 0/1; act, gate: relu, hardswish,
 *                                        hardsigmoid, silu, sigmoid)
 * Usage: mbback [THREADS [REPEATS]] [-] (- reads the shapes from stdin).
 * Prints "NAME<TAB>fused_ms<TAB>separate_ms<TAB>separate/fused", the best of
 * the repeats after one warm-up each, the two alternated. The fused time
 * leaves out the channel sums (made once before; in the models the front
 * kernel makes them on the way, fd_mbfront_infer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fd_progress.h"
#include "nn/act.h"
#include "nn/conv2d.h"
#include "nn/mbback.h"
#include "nn/se.h"

static void fill(float *a, size_t n, uint64_t seed, float sc)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		a[i] = sc * (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
	}
}

static const char *const SHAPES[] = {
	"eff.s2a 32 96 56 56 4 24 0 silu sigmoid",       "eff.s2b 32 144 56 56 6 24 1 silu sigmoid",
	"eff.s3a 32 144 28 28 6 40 0 silu sigmoid",      "eff.s3b 32 240 28 28 10 40 1 silu sigmoid",
	"eff.s4a 32 240 14 14 10 80 0 silu sigmoid",     "eff.s4b 32 480 14 14 20 80 1 silu sigmoid",
	"eff.s5a 32 480 14 14 20 112 0 silu sigmoid",    "eff.s5b 32 672 14 14 28 112 1 silu sigmoid",
	"eff.s6a 32 672 7 7 28 192 0 silu sigmoid",      "eff.s6b 32 1152 7 7 48 192 1 silu sigmoid",
	"eff.s7 32 1152 7 7 48 320 0 silu sigmoid",      "mnv3.b3 32 96 14 14 24 40 0 relu hardsigmoid",
	"mnv3.b4 32 240 14 14 64 40 1 relu hardsigmoid", "mnv3.b9 32 576 7 7 144 96 1 relu hardsigmoid",
	NULL};

static int act_of(const char *s)
{
	for (int k = 0; k <= FD_ACT_SIGMOID; k++)
		if (!strcmp(s, fd_act_name((enum fd_act)k)))
			return k;
	return -1;
}

int main(int argc, char **argv)
{
	struct fd_ctx c;
	struct fd_err e;
	int threads = argc > 1 && strcmp(argv[1], "-") ? atoi(argv[1]) : 2;
	int reps = argc > 2 && strcmp(argv[2], "-") ? atoi(argv[2]) : 5;
	int from_stdin = !strcmp(argv[argc - 1], "-");
	if (reps < 1 || reps > 100 || fd_ctx_open(&c, FD_DEV_CPU, threads, 0, &e)) {
		fprintf(stderr, "mbback: %s\n", reps < 1 || reps > 100 ? "repeats: 1 to 100" : e.msg);
		return 1;
	}
	fd_ctx_reserve(&c); /* as bench/models: one reserved arena block, no page faults per call */
	c.channels_last = 1;
	char line[256], name[64], an[32], gn[32];
	for (int li = 0;; li++) {
		if (from_stdin ? !fgets(line, sizeof line, stdin) : !SHAPES[li])
			break;
		const char *l = from_stdin ? line : SHAPES[li];
		int N, C, H, W, Q, K, res;
		if (sscanf(l, "%63s %d %d %d %d %d %d %d %31s %31s", name, &N, &C, &H, &W, &Q, &K, &res, an, gn) != 10 ||
		    act_of(an) < 0 || act_of(gn) < 0) {
			fprintf(stderr, "mbback: bad shape line: %s\n", l);
			return 2;
		}
		int act = act_of(an), gate = act_of(gn);
		int64_t sx[4] = {N, C, H, W}, s1[4] = {Q, C, 1, 1}, s2[4] = {C, Q, 1, 1}, sp[4] = {K, C, 1, 1};
		int64_t sq[1] = {Q}, sc[1] = {C}, sk[1] = {K}, sr[4] = {N, K, H, W};
		struct fd_tensor *x0 = fd_tensor_new(&c, FD_DEV_CPU, 4, sx), *x = fd_tensor_new(&c, FD_DEV_CPU, 4, sx);
		struct fd_tensor *w1 = fd_tensor_new(&c, FD_DEV_CPU, 4, s1), *b1 = fd_tensor_new(&c, FD_DEV_CPU, 1, sq);
		struct fd_tensor *w2 = fd_tensor_new(&c, FD_DEV_CPU, 4, s2), *b2 = fd_tensor_new(&c, FD_DEV_CPU, 1, sc);
		struct fd_tensor *wp = fd_tensor_new(&c, FD_DEV_CPU, 4, sp), *bp = fd_tensor_new(&c, FD_DEV_CPU, 1, sk);
		struct fd_tensor *r = fd_tensor_new(&c, FD_DEV_CPU, 4, sr);
		double *sums = (double *)fd_ctx_alloc(&c, FD_DEV_CPU, 2 * (int64_t)N * C);
		if (!x0 || !x || !w1 || !b1 || !w2 || !b2 || !wp || !bp || !r || !sums) {
			fprintf(stderr, "mbback: %s\n", c.err.msg);
			return 1;
		}
		x0->layout = x->layout = r->layout = FD_NHWC;
		fill(x0->data, (size_t)x0->numel, 1, 1), fill(w1->data, (size_t)w1->numel, 2, 0.3f);
		fill(b1->data, (size_t)Q, 3, 0.5f), fill(w2->data, (size_t)w2->numel, 4, 0.3f);
		fill(b2->data, (size_t)C, 5, 0.5f), fill(wp->data, (size_t)wp->numel, 6, 0.1f);
		fill(bp->data, (size_t)K, 7, 0.5f), fill(r->data, (size_t)r->numel, 8, 1);
		struct fd_conv2d_op op;
		fd_conv2d_op_init(&op, 1, 0, 1, 1);
		double tf = 1e30, ts = 1e30;
		int64_t HWC = (int64_t)H * W * C;
		#pragma omp parallel for num_threads(threads) schedule(static)
		for (int n = 0; n < N; n++) {
			double *s = sums + (int64_t)n * C;
			const float *xn = x0->data + n * HWC;
			for (int k = 0; k < C; k++)
				s[k] = 0;
			for (int64_t p = 0; p < (int64_t)H * W; p++)
				for (int k = 0; k < C; k++)
					s[k] += xn[p * C + k];
		}
		for (int rep = 0; rep <= reps; rep++) {
			struct fd_arena_mark m = fd_arena_mark(&c.arena);
			double t0 = fd_now();
			struct fd_tensor *y = fd_mbback_infer(&c, x0, sums, w1, b1, w2, b2, act, gate, wp, bp,
							      res ? r : NULL, res);
			double t1 = fd_now();
			fd_arena_release(&c.arena, &m, NULL, 0);
			memcpy(x->data, x0->data, (size_t)x0->numel * sizeof *x->data);
			double t2 = fd_now();
			struct fd_tensor *z = y ? fd_se_infer(&c, x, w1, b1, w2, b2, (enum fd_act)act, (enum fd_act)gate)
						: NULL;
			z = !z ? NULL
			    : res ? fd_conv2d_infer_add(&c, &op, z, wp, bp, FD_CONV_POST_NONE, r)
				  : fd_conv2d_infer(&c, &op, z, wp, bp, FD_CONV_POST_NONE);
			double t3 = fd_now();
			fd_arena_release(&c.arena, &m, NULL, 0);
			if (!z) {
				fprintf(stderr, "mbback: %s: %s\n", name, c.err.msg);
				return 1;
			}
			if (rep > 0) {
				tf = t1 - t0 < tf ? t1 - t0 : tf;
				ts = t3 - t2 < ts ? t3 - t2 : ts;
			}
		}
		printf("%s\t%.3f\t%.3f\t%.2f\n", name, 1e3 * tf, 1e3 * ts, ts / tf);
		fflush(stdout);
		fd_conv2d_op_free(&op);
		fd_ctx_step(&c);
	}
	fd_ctx_free(&c);
	return 0;
}

/* bench/mbfront: an inverted-residual block's front at inference, fd's
 * fused kernel (fd_mbfront_infer) against the two oneDNN convolutions it
 * replaces (fd_conv2d_infer of the 1x1 expansion and of the depthwise
 * convolution, each with its activation as the post-op, the path the
 * models take without it), for EfficientNet-B0's and MobileNetV3-Small's
 * front shapes at 224 px or those read from stdin, one per line:
 *   NAME N Cin Cexp H W k stride act     (act: relu, hardswish, silu; Cexp 0:
 *                                         no expansion, the depthwise alone)
 * Usage: mbfront [THREADS [REPEATS]] [-] (- reads the shapes from stdin).
 * Prints "NAME<TAB>fused_ms<TAB>onednn_ms<TAB>onednn/fused", the best of
 * the repeats after one warm-up each, the two alternated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fd_progress.h"
#include "nn/act.h"
#include "nn/conv2d.h"
#include "nn/mbfront.h"

static void fill(float *a, size_t n, uint64_t seed, float sc)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		a[i] = sc * (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
	}
}

static const char *const SHAPES[] = {
	/* EfficientNet-B0 @224, batch 32: one line per kind of block */
	"eff.s1 32 32 0 112 112 3 1 silu", "eff.s2a 32 16 96 112 112 3 2 silu", "eff.s2b 32 24 144 56 56 3 1 silu",
	"eff.s3a 32 24 144 56 56 5 2 silu", "eff.s3b 32 40 240 28 28 5 1 silu",
	"eff.s4a 32 40 240 28 28 3 2 silu", "eff.s4b 32 80 480 14 14 3 1 silu",
	"eff.s5a 32 80 480 14 14 5 1 silu", "eff.s5b 32 112 672 14 14 5 1 silu",
	"eff.s6a 32 112 672 14 14 5 2 silu", "eff.s6b 32 192 1152 7 7 5 1 silu",
	"eff.s7 32 192 1152 7 7 3 1 silu",
	/* MobileNetV3-Small @224 */
	"mnv3.b0 32 16 0 112 112 3 2 relu", "mnv3.b1 32 16 72 56 56 3 2 relu", "mnv3.b2 32 24 88 28 28 3 1 relu",
	"mnv3.b3 32 24 96 28 28 5 2 hardswish", "mnv3.b4 32 40 240 14 14 5 1 hardswish",
	"mnv3.b6 32 40 120 14 14 5 1 hardswish", "mnv3.b8 32 48 288 14 14 5 2 hardswish",
	"mnv3.b9 32 96 576 7 7 5 1 hardswish", NULL};

static int act_of(const char *s)
{
	return !strcmp(s, "relu") ? FD_ACT_RELU : !strcmp(s, "hardswish") ? FD_ACT_HARDSWISH
					       : !strcmp(s, "silu") ? FD_ACT_SILU : -1;
}

static enum fd_conv_post post_of(int act)
{
	return act == FD_ACT_RELU ? FD_CONV_POST_RELU : act == FD_ACT_SILU ? FD_CONV_POST_SILU : FD_CONV_POST_HARDSWISH;
}

int main(int argc, char **argv)
{
	struct fd_ctx c;
	struct fd_err e;
	int threads = argc > 1 && strcmp(argv[1], "-") ? atoi(argv[1]) : 2;
	int reps = argc > 2 && strcmp(argv[2], "-") ? atoi(argv[2]) : 5;
	int from_stdin = !strcmp(argv[argc - 1], "-");
	if (reps < 1 || reps > 100 || fd_ctx_open(&c, FD_DEV_CPU, threads, 0, &e)) {
		fprintf(stderr, "mbfront: %s\n", reps < 1 || reps > 100 ? "repeats: 1 to 100" : e.msg);
		return 1;
	}
	fd_ctx_reserve(&c); /* as bench/models: one reserved arena block, no page faults per call */
	c.channels_last = 1;
	char line[256], name[64], an[32];
	for (int li = 0;; li++) {
		if (from_stdin ? !fgets(line, sizeof line, stdin) : !SHAPES[li])
			break;
		const char *l = from_stdin ? line : SHAPES[li];
		int N, Cin, C, H, W, k, s;
		if (sscanf(l, "%63s %d %d %d %d %d %d %d %31s", name, &N, &Cin, &C, &H, &W, &k, &s, an) != 9 ||
		    act_of(an) < 0) {
			fprintf(stderr, "mbfront: bad shape line: %s\n", l);
			return 2;
		}
		int act = act_of(an), expand = C > 0;
		C = expand ? C : Cin;
		int64_t sx[4] = {N, Cin, H, W}, se[4] = {C, Cin, 1, 1}, sd[4] = {C, 1, k, k}, sc[1] = {C};
		struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 4, sx), *we = fd_tensor_new(&c, FD_DEV_CPU, 4, se);
		struct fd_tensor *be = fd_tensor_new(&c, FD_DEV_CPU, 1, sc), *wd = fd_tensor_new(&c, FD_DEV_CPU, 4, sd);
		struct fd_tensor *bd = fd_tensor_new(&c, FD_DEV_CPU, 1, sc);
		if (!x || !we || !be || !wd || !bd) {
			fprintf(stderr, "mbfront: %s\n", c.err.msg);
			return 1;
		}
		x->layout = FD_NHWC;
		fill(x->data, (size_t)x->numel, 1, 1), fill(we->data, (size_t)we->numel, 2, 0.3f);
		fill(be->data, (size_t)C, 3, 0.5f), fill(wd->data, (size_t)wd->numel, 4, 0.3f);
		fill(bd->data, (size_t)C, 5, 0.5f);
		struct fd_conv2d_op o1, o2;
		fd_conv2d_op_init(&o1, 1, 0, 1, 1);
		fd_conv2d_op_init(&o2, s, (k - 1) / 2, 1, C);
		double tf = 1e30, to = 1e30;
		for (int r = 0; r <= reps; r++) {
			struct fd_arena_mark m = fd_arena_mark(&c.arena);
			double t0 = fd_now();
			struct fd_tensor *y = fd_mbfront_infer(&c, x, expand ? we : NULL, expand ? be : NULL, wd, bd, s,
							       act, NULL);
			double t1 = fd_now();
			fd_arena_release(&c.arena, &m, NULL, 0);
			struct fd_tensor *h = !y ? NULL : expand ? fd_conv2d_infer(&c, &o1, x, we, be, post_of(act)) : x;
			struct fd_tensor *z = h ? fd_conv2d_infer(&c, &o2, h, wd, bd, post_of(act)) : NULL;
			double t2 = fd_now();
			fd_arena_release(&c.arena, &m, NULL, 0);
			if (!z) {
				fprintf(stderr, "mbfront: %s: %s\n", name, c.err.msg);
				return 1;
			}
			if (r > 0) {
				tf = t1 - t0 < tf ? t1 - t0 : tf;
				to = t2 - t1 < to ? t2 - t1 : to;
			}
		}
		printf("%s\t%.3f\t%.3f\t%.2f\n", name, 1e3 * tf, 1e3 * to, to / tf);
		fflush(stdout);
		fd_conv2d_op_free(&o1);
		fd_conv2d_op_free(&o2);
		fd_ctx_step(&c);
	}
	fd_ctx_free(&c);
	return 0;
}

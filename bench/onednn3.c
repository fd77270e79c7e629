/* bench/onednn3: one oneDNN version's fp32 direct convolution forward on
 * ResNet's 3x3 shapes (batch 32, channels-last x and y, weights in the
 * primitive's layout), built against Debian's oneDNN 2.6 or a 3.x (the
 * source compiles with either API: DNNL_VERSION_MAJOR). bench/onednn3.sh
 * builds it twice and alternates the two (doc/onednn.md "AVX2 CPUs").
 * Usage: onednn3 [REPEATS]   (OMP_NUM_THREADS sets the threads)
 * Prints "version<TAB>layer<TAB>implementation<TAB>best_ms<TAB>GFLOP/s" per
 * shape: the best of REPEATS (default 12) after one warm-up call. */
#include <dnnl.h>
#include <dnnl_version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void check(dnnl_status_t s, const char *what)
{
	if (s != dnnl_success) {
		fprintf(stderr, "onednn3: %s failed (status %d)\n", what, (int)s);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	/* C, K, H, stride: ResNet-18's 3x3 layers at 128 px (and a strided one) */
	static const int shapes[][4] = {{64, 64, 32, 1}, {128, 128, 16, 1}, {256, 256, 8, 1},
					{512, 512, 4, 1}, {128, 256, 16, 2}};
	int reps = argc > 1 ? atoi(argv[1]) : 12;
	if (reps < 1 || reps > 1000) {
		fprintf(stderr, "usage: onednn3 [REPEATS]\n");
		return 2;
	}
	dnnl_engine_t eng;
	dnnl_stream_t st;
	check(dnnl_engine_create(&eng, dnnl_cpu, 0), "engine");
	check(dnnl_stream_create(&st, eng, dnnl_stream_default_flags), "stream");
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		int C = shapes[i][0], K = shapes[i][1], H = shapes[i][2], S = shapes[i][3], N = 32;
		int Ho = (H + 2 - 3) / S + 1;
		dnnl_dims_t xd = {N, C, H, H}, wd = {K, C, 3, 3}, yd = {N, K, Ho, Ho}, sd = {S, S}, pl = {1, 1};
		dnnl_dims_t pr = {(Ho - 1) * S + 2 - H, (Ho - 1) * S + 2 - H};
		dnnl_primitive_desc_t pd;
#if DNNL_VERSION_MAJOR >= 3
		dnnl_memory_desc_t x, w, y;
		dnnl_dims_t dil = {0, 0};
		check(dnnl_memory_desc_create_with_tag(&x, 4, xd, dnnl_f32, dnnl_nhwc), "x");
		check(dnnl_memory_desc_create_with_tag(&y, 4, yd, dnnl_f32, dnnl_nhwc), "y");
		check(dnnl_memory_desc_create_with_tag(&w, 4, wd, dnnl_f32, dnnl_format_tag_any), "w");
		check(dnnl_convolution_forward_primitive_desc_create(&pd, eng, dnnl_forward_training,
								     dnnl_convolution_direct, x, w, NULL, y, sd,
								     dil, pl, pr, NULL),
		      "primitive descriptor");
		const_dnnl_memory_desc_t xq = x, yq = y;
#else
		dnnl_memory_desc_t x, w, y;
		dnnl_convolution_desc_t cd;
		check(dnnl_memory_desc_init_by_tag(&x, 4, xd, dnnl_f32, dnnl_nhwc), "x");
		check(dnnl_memory_desc_init_by_tag(&y, 4, yd, dnnl_f32, dnnl_nhwc), "y");
		check(dnnl_memory_desc_init_by_tag(&w, 4, wd, dnnl_f32, dnnl_format_tag_any), "w");
		check(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &x, &w,
							 NULL, &y, sd, pl, pr),
		      "descriptor");
		check(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL), "primitive descriptor");
		const dnnl_memory_desc_t *xq = &x, *yq = &y;
#endif
		const char *impl = "?";
		dnnl_primitive_t p;
		dnnl_memory_t mx, mw, my;
		dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
		check(dnnl_primitive_create(&p, pd), "primitive");
		check(dnnl_memory_create(&mx, xq, eng, DNNL_MEMORY_ALLOCATE), "x memory");
		check(dnnl_memory_create(&mw, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), eng,
					 DNNL_MEMORY_ALLOCATE),
		      "w memory");
		check(dnnl_memory_create(&my, yq, eng, DNNL_MEMORY_ALLOCATE), "y memory");
		void *h;
		dnnl_memory_get_data_handle(mx, &h);
		memset(h, 0, (size_t)N * C * H * H * sizeof(float));
		dnnl_memory_get_data_handle(mw, &h);
		memset(h, 0, (size_t)K * C * 9 * sizeof(float));
		dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}};
		double best = 1e30;
		for (int r = 0; r <= reps; r++) {
			double t0 = now_ms();
			check(dnnl_primitive_execute(p, st, 3, args), "execute");
			check(dnnl_stream_wait(st), "wait");
			double t = now_ms() - t0;
			if (r > 0 && t < best)
				best = t;
		}
		double gflop = 2.0 * N * C * K * Ho * Ho * 9 / 1e9;
		printf("%d.%d.%d\t%d->%d 3x3@%d%s\t%s\t%.2f\t%.0f\n", DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR,
		       DNNL_VERSION_PATCH, C, K, H, S > 1 ? " s2" : "", impl, best, gflop / best * 1e3);
		dnnl_memory_destroy(mx);
		dnnl_memory_destroy(mw);
		dnnl_memory_destroy(my);
		dnnl_primitive_destroy(p);
		dnnl_primitive_desc_destroy(pd);
#if DNNL_VERSION_MAJOR >= 3
		dnnl_memory_desc_destroy(x);
		dnnl_memory_desc_destroy(w);
		dnnl_memory_desc_destroy(y);
#endif
	}
	dnnl_stream_destroy(st);
	dnnl_engine_destroy(eng);
	return 0;
}

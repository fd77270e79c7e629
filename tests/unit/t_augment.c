/* t_augment: fd_augment against torchvision 0.14 / Pillow 9.4 (fixtures from
 * tests/ref/augment.py): every deterministic transform on the same images with
 * the same parameters, Pillow's HSV conversions over all 2^24 values, the
 * whole pipeline, and the parameter sampling against torchvision's
 * RandomResizedCrop.get_params (two-sample Kolmogorov-Smirnov). */
#include "core/fd_config.h"
#include "core/fd_rng.h"
#include "core/fd_sha256.h"
#include "core/fd_table.h"
#include "image/fd_augment.h"
#include "io/fd_safetensors.h"
#include "tap.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[1024];
static struct fd_st st;

static const struct fd_st_tensor *need(const char *name)
{
	const struct fd_st_tensor *t = fd_st_find(&st, name);
	if (!t || t->dtype != FD_DT_U8 || t->ndim != 3 || t->shape[2] != 3) {
		printf("Bail out! fixture tensor '%s' missing or not u8 [H,W,3]\n", name);
		exit(1);
	}
	return t;
}

/* Exact comparison, or (tol1 = 1) at most one grey level everywhere with at
 * least min_exact of the values exact. */
static int compare(const char *name, const uint8_t *a, const struct fd_st_tensor *r, int tol1,
		   double min_exact)
{
	const uint8_t *b = r->data;
	size_t n = (size_t)r->numel, nd = 0, worst_i = 0;
	int worst = 0;
	for (size_t i = 0; i < n; i++) {
		int d = abs((int)a[i] - (int)b[i]);
		nd += d != 0;
		if (d > worst) {
			worst = d;
			worst_i = i;
		}
	}
	double exact = 1.0 - (double)nd / (double)n;
	int good = n > 0 && (tol1 ? worst <= 1 && exact >= min_exact : nd == 0);
	if (!good || nd)
		diag("%s: %zu of %zu values differ (%.3f%% exact), max %d at %zu (ours %d, torchvision %d)",
		     name, nd, n, 100 * exact, worst, worst_i, a[worst_i], b[worst_i]);
	return ok(good, "%s %s", name, tol1 ? "within 1 grey level" : "exact");
}

static void run_cases(void)
{
	char p[1200];
	snprintf(p, sizeof p, "%s/cases.tsv", dir);
	struct fd_table t;
	struct fd_err e;
	fd_table_init(&t);
	if (fd_table_read(&t, p, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
	int cn = fd_table_col(&t, "name"), co = fd_table_col(&t, "op"), ci = fd_table_col(&t, "img");
	int cp[5] = {fd_table_col(&t, "a"), fd_table_col(&t, "b"), fd_table_col(&t, "c"),
		     fd_table_col(&t, "d"), fd_table_col(&t, "e")};
	int nblur = 0, njpeg = 0;
	for (size_t r = 0; r < t.nrow; r++) {
		const char *name = fd_table_get(&t, r, cn), *op = fd_table_get(&t, r, co);
		double v[5];
		for (int k = 0; k < 5; k++)
			v[k] = strtod(fd_table_get(&t, r, cp[k]), NULL);
		const struct fd_st_tensor *src = need(fd_table_get(&t, r, ci));
		char on[300];
		snprintf(on, sizeof on, "out_%s", name);
		const struct fd_st_tensor *ref = need(on);
		int w = (int)src->shape[1], h = (int)src->shape[0];
		size_t n = (size_t)w * h;
		uint8_t *a = malloc(n * 3), *out = malloc((size_t)ref->numel), *tmp = malloc(n * 3);
		float *f = malloc(n * 3 * sizeof(float));
		memcpy(a, src->data, n * 3);
		if (strcmp(op, "hflip") == 0) {
			fd_aug_hflip(a, w, h);
			compare(name, a, ref, 0, 1);
		} else if (strcmp(op, "rcrop") == 0) {
			int oh = (int)v[4];
			int rc = fd_aug_resized_crop(a, w, h, (int)v[0], (int)v[1], (int)v[2], (int)v[3], tmp,
						     out, oh, oh, &e);
			ok(rc == 0 && ref->shape[0] == oh && ref->shape[1] == oh, "%s runs", name);
			compare(name, out, ref, 0, 1);
		} else if (strcmp(op, "rotate") == 0) {
			fd_aug_rotate(a, w, h, v[0], out);
			compare(name, out, ref, 0, 1);
		} else if (strcmp(op, "brightness") == 0) {
			fd_aug_brightness(a, n, v[0]);
			compare(name, a, ref, 0, 1);
		} else if (strcmp(op, "contrast") == 0) {
			fd_aug_contrast(a, n, v[0]);
			compare(name, a, ref, 0, 1);
		} else if (strcmp(op, "saturation") == 0) {
			fd_aug_saturation(a, n, v[0]);
			compare(name, a, ref, 0, 1);
		} else if (strcmp(op, "hue") == 0) {
			fd_aug_hue(a, n, v[0]);
			compare(name, a, ref, 0, 1);
		} else if (strcmp(op, "blur") == 0) {
			/* Separable float32 sums vs torch's 2-D float32 convolution: a
			 * value near .5 may round the other way (see fd_augment.h). */
			fd_aug_gaussian_blur(a, w, h, (int)v[0], v[1], f, out);
			compare(name, out, ref, 1, 0.99);
			nblur++;
		} else if (strcmp(op, "jpeg") == 0) {
			ok(fd_aug_jpeg(a, w, h, (int)v[0], &e) == 0, "%s runs", name);
			compare(name, a, ref, 0, 1);
			njpeg++;
		} else if (strcmp(op, "pipe") == 0) {
			struct fd_aug_cfg c;
			fd_aug_cfg_default(&c);
			c.cj_brightness = c.cj_contrast = c.cj_saturation = c.cj_hue = 0.5;
			c.blur_ksize = 5;
			struct fd_aug_params pp = {.rrc = 1, .flip = 1, .rot = 1, .cj = 1,
						   .crop = {4, 9, 50, 41}, .angle = -17.25,
						   .order = {2, 0, 3, 1}, .bright = 0.8, .contrast = 1.2,
						   .sat = 1.3, .hue = 0.07, .sigma = 1.1, .quality = 80};
			pp.blur = strcmp(name, "pipe_nojpeg_noblur") != 0;
			pp.jpeg = strcmp(name, "pipe_all") == 0;
			struct fd_aug_work wk;
			ok(fd_aug_work_init(&wk, w, &e) == 0 && fd_aug_apply(&c, &pp, a, w, &wk, &e) == 0,
			   "%s runs", name);
			fd_aug_work_free(&wk);
			/* With blur, the blur's rounding ties propagate (through JPEG too). */
			compare(name, a, ref, pp.blur, 0.99);
		} else {
			ok(0, "unknown op '%s'", op);
		}
		free(a);
		free(out);
		free(tmp);
		free(f);
	}
	ok(nblur >= 10 && njpeg >= 6 && t.nrow > 100, "ran %zu cases", t.nrow);
	fd_table_free(&t);
}

static void hsv_exhaustive(void)
{
	char p[1200], want[2][80] = {{0}};
	snprintf(p, sizeof p, "%s/hsv.txt", dir);
	FILE *fp = fopen(p, "r");
	ok(fp && fscanf(fp, "%79s %79s", want[0], want[1]) == 2, "read hsv.txt");
	if (fp)
		fclose(fp);
	struct fd_sha256 s1, s2;
	fd_sha256_init(&s1);
	fd_sha256_init(&s2);
	enum { CH = 4096 };
	uint8_t in[CH * 3], o1[CH * 3], o2[CH * 3];
	for (uint32_t base = 0; base < (1u << 24); base += CH) {
		for (uint32_t i = 0; i < CH; i++) {
			uint32_t c = base + i;
			in[i * 3] = (uint8_t)(c >> 16);
			in[i * 3 + 1] = (uint8_t)(c >> 8);
			in[i * 3 + 2] = (uint8_t)c;
			fd_aug_rgb2hsv(in + i * 3, o1 + i * 3);
			fd_aug_hsv2rgb(in + i * 3, o2 + i * 3);
		}
		fd_sha256_update(&s1, o1, sizeof o1);
		fd_sha256_update(&s2, o2, sizeof o2);
	}
	char h1[65], h2[65];
	fd_sha256_hex(&s1, h1);
	fd_sha256_hex(&s2, h2);
	ok(strcmp(h1, want[0]) == 0, "RGB->HSV equals Pillow's on all 2^24 colours");
	ok(strcmp(h2, want[1]) == 0, "HSV->RGB equals Pillow's on all 2^24 triples");
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Two-sample Kolmogorov-Smirnov statistic (ties handled by stepping over
 * equal values together). Sorts both arrays. */
static double ks(double *a, size_t n, double *b, size_t m)
{
	qsort(a, n, sizeof *a, cmpd);
	qsort(b, m, sizeof *b, cmpd);
	size_t i = 0, j = 0;
	double d = 0;
	while (i < n && j < m) {
		double v = a[i] < b[j] ? a[i] : b[j];
		while (i < n && a[i] == v)
			i++;
		while (j < m && b[j] == v)
			j++;
		double x = fabs((double)i / n - (double)j / m);
		if (x > d)
			d = x;
	}
	return d;
}

static void rrc_stats(const char *name, int w, int h, double s0, double s1, double r0, double r1)
{
	char p[1200];
	struct fd_err e;
	struct fd_st rs;
	snprintf(p, sizeof p, "%s/rrc_%s.safetensors", dir, name);
	if (fd_st_open(&rs, p, &e) < 0) {
		ok(0, "%s", e.msg);
		return;
	}
	const struct fd_st_tensor *t = fd_st_find(&rs, "p");
	size_t n = (size_t)t->shape[0];
	const int32_t *ref = t->data;
	double scale[2] = {s0, s1}, ratio[2] = {r0, r1};
	struct fd_rng r;
	fd_rng_init(&r, 1234, 99);
	const char *what[4] = {"area fraction", "log aspect", "centre x", "centre y"};
	double *a[4], *b[4];
	for (int k = 0; k < 4; k++) {
		a[k] = malloc(n * sizeof(double));
		b[k] = malloc(n * sizeof(double));
	}
	int inside = 1;
	for (size_t i = 0; i < n; i++) {
		int o[4];
		fd_aug_rrc_params(&r, w, h, scale, ratio, o);
		inside &= o[0] >= 0 && o[1] >= 0 && o[2] > 0 && o[3] > 0 && o[0] + o[2] <= h &&
			  o[1] + o[3] <= w;
		const int32_t *q = ref + i * 4;
		for (int s = 0; s < 2; s++) {
			const int *v = s ? (const int *)NULL : o;
			int top = s ? q[0] : v[0], left = s ? q[1] : v[1], ch = s ? q[2] : v[2],
			    cw = s ? q[3] : v[3];
			double **d = s ? b : a;
			d[0][i] = (double)ch * cw / ((double)w * h);
			d[1][i] = log((double)cw / ch);
			d[2][i] = (left + cw / 2.0) / w;
			d[3][i] = (top + ch / 2.0) / h;
		}
	}
	ok(inside, "rrc %s: every crop inside the image", name);
	/* alpha = 0.001: c = 1.949 * sqrt((n + m) / (n m)). */
	double crit = 1.949 * sqrt(2.0 / n);
	for (int k = 0; k < 4; k++) {
		double d = ks(a[k], n, b[k], n);
		ok(d < crit, "rrc %s: %s matches torchvision (KS D = %.4f, critical %.4f, %zu draws each)",
		   name, what[k], d, crit, n);
		free(a[k]);
		free(b[k]);
	}
	fd_st_close(&rs);
}

static void sampling(void)
{
	struct fd_aug_cfg c;
	fd_aug_cfg_default(&c);
	c.hflip_p = 0.5;
	c.rot_p = 0.25;
	c.rot_degrees = 10;
	c.cj_p = 1;
	c.cj_brightness = 0.4;
	c.cj_hue = 0.1;
	c.jpeg_p = 1;
	c.jpeg_quality[0] = 60;
	c.jpeg_quality[1] = 62;
	int nflip = 0, nrot = 0, q[3] = {0}, perm_ok = 1, range_ok = 1, indep = 1, det = 1;
	double bmin = 9, bmax = -9;
	const int N = 20000;
	for (int i = 0; i < N; i++) {
		struct fd_aug_params p, p2, p3;
		fd_aug_sample(&c, 42, 3, (uint64_t)i, 64, 64, &p);
		fd_aug_sample(&c, 42, 3, (uint64_t)i, 64, 64, &p2);
		det &= memcmp(&p, &p2, sizeof p) == 0;
		struct fd_aug_cfg c2 = c;
		c2.rrc_p = 1; /* another transform on: this one's draws must not move */
		fd_aug_sample(&c2, 42, 3, (uint64_t)i, 64, 64, &p3);
		indep &= p3.flip == p.flip && p3.angle == p.angle && p3.quality == p.quality &&
			 p3.bright == p.bright;
		nflip += p.flip;
		nrot += p.rot;
		range_ok &= !p.rot || fabs(p.angle) <= 10;
		range_ok &= p.contrast == 1 && p.sat == 1 && fabs(p.hue) <= 0.1;
		if (p.quality >= 60 && p.quality <= 62)
			q[p.quality - 60]++;
		else
			range_ok = 0;
		bmin = -tap_worse(-bmin, -p.bright); /* a NaN: -inf, +inf */
		bmax = tap_worse(bmax, p.bright);
		int seen = 0;
		for (int k = 0; k < 4; k++)
			seen |= 1 << p.order[k];
		perm_ok &= seen == 15;
	}
	/* binomial: 5 standard deviations */
	ok(fabs(nflip - N * 0.5) < 5 * sqrt(N * 0.25), "flip rate %.4f ~ 0.5", (double)nflip / N);
	ok(fabs(nrot - N * 0.25) < 5 * sqrt(N * 0.1875), "rotation rate %.4f ~ 0.25", (double)nrot / N);
	ok(q[0] > 6000 && q[1] > 6000 && q[2] > 6000 && range_ok, "quality 60..62 inclusive, ranges kept");
	ok(bmin >= 0.6 && bmin < 0.61 && bmax <= 1.4 && bmax > 1.39, "brightness in [0.6, 1.4]: %.4f..%.4f",
	   bmin, bmax);
	ok(perm_ok, "jitter order is a permutation");
	ok(det, "same (seed, epoch, row): same parameters");
	ok(indep, "a transform's draws do not depend on the others");
	struct fd_aug_params pa, pb;
	fd_aug_sample(&c, 42, 4, 0, 64, 64, &pa);
	int differ = 0;
	for (uint64_t row = 0; row < 8; row++) {
		fd_aug_sample(&c, 42, 3, row, 64, 64, &pa);
		fd_aug_sample(&c, 42, 4, row, 64, 64, &pb);
		differ += pa.bright != pb.bright;
	}
	ok(differ == 8, "another epoch draws other parameters");
}

static void config(void)
{
	struct fd_config c;
	struct fd_err e;
	struct fd_aug_cfg a;
	fd_config_init(&c, &e);
	ok(fd_aug_cfg_from_config(&a, &c, &e) == 0 && !fd_aug_cfg_any(&a), "no augment block: all off");
	const char *good = "{\"augment\":{\"hflip\":{\"p\":0.5},\"random_resized_crop\":{\"p\":1,"
			   "\"scale\":[0.5,1],\"ratio\":[0.75,1.3333333]},\"gaussian_blur\":{\"p\":0.1,"
			   "\"kernel_size\":7,\"sigma\":[0.1,1.5]},\"jpeg\":{\"p\":0.2,\"quality\":[40,90]}}}";
	ok(fd_config_merge(&c, good, strlen(good), "good.json", &e) == 0 &&
		   fd_aug_cfg_from_config(&a, &c, &e) == 0 && a.hflip_p == 0.5 && a.rrc_scale[0] == 0.5 &&
		   a.blur_ksize == 7 && a.jpeg_quality[1] == 90 && fd_aug_cfg_any(&a),
	   "a config is read");
	const char *badv[][2] = {
		{"augment.hflip.p=1.5", "'augment.hflip.p' must be in [0, 1], not 1.5"},
		{"augment.gaussian_blur.kernel_size=4", "kernel_size' must be odd"},
		{"augment.random_resized_crop.scale=[0.5,0.2]", "scale' must be [lo, hi]"},
		{"augment.color_jitter.hue=0.7", "'augment.color_jitter.hue' must be in [0, 0.5]"},
		{"augment.jpeg.quality=[0,90]", "quality' must be [lo, hi]"},
	};
	for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
		struct fd_config d;
		fd_config_init(&d, &e);
		int rc = fd_config_set(&d, badv[i][0], &e);
		rc = rc == 0 ? fd_aug_cfg_from_config(&a, &d, &e) : 0;
		ok(rc < 0 && strstr(e.msg, badv[i][1]), "--set %s refused: %s", badv[i][0], e.msg);
		fd_config_free(&d);
	}
	fd_config_free(&c);

	/* the repository's configs: shared.json (no augmentation), augment.json on top */
	fd_config_init(&c, &e);
	int64_t seed = 0, bs = 0, tmax = 0, ep = 0, pat = 0, nw = 0;
	double lr = 0, wd = 0, tr = 0;
	const char *opt = "", *norm = "", *prec = "";
	int rc = fd_config_load(&c, "configs/shared.json", &e);
	ok(rc == 0, "configs/shared.json validates%s%s", rc ? ": " : "", rc ? e.msg : "");
	ok(rc == 0 && fd_config_get_int(&c, "seed", &seed, &e) == 0 && seed == 42 &&
		   fd_config_get_int(&c, "batch_size", &bs, &e) == 0 && bs == 32 &&
		   fd_config_get_int(&c, "scheduler.T_max", &tmax, &e) == 0 && tmax == 15 &&
		   fd_config_get_int(&c, "epochs", &ep, &e) == 0 && ep == 15 &&
		   fd_config_get_int(&c, "early_stopping_patience", &pat, &e) == 0 && pat == 5 &&
		   fd_config_get_int(&c, "num_workers", &nw, &e) == 0 && nw == 4 &&
		   fd_config_get_double(&c, "optimizer.lr", &lr, &e) == 0 && lr == 1e-4 &&
		   fd_config_get_double(&c, "optimizer.weight_decay", &wd, &e) == 0 && wd == 1e-4 &&
		   fd_config_get_double(&c, "test_ratio", &tr, &e) == 0 && tr == 0.1 &&
		   fd_config_get_str(&c, "optimizer.type", &opt, &e) == 0 && strcmp(opt, "adamw") == 0 &&
		   fd_config_get_str(&c, "normalize", &norm, &e) == 0 && strcmp(norm, "imagenet") == 0 &&
		   fd_config_get_str(&c, "precision", &prec, &e) == 0 && strcmp(prec, "fp32") == 0,
	   "shared.json holds the plan's shared parameters");
	ok(fd_aug_cfg_from_config(&a, &c, &e) == 0 && !fd_aug_cfg_any(&a), "shared.json: no augmentation");
	rc = fd_config_load(&c, "configs/augment.json", &e);
	ok(rc == 0 && fd_aug_cfg_from_config(&a, &c, &e) == 0 && a.hflip_p == 0.5 && a.rrc_p == 1 &&
		   a.cj_p == 0.8 && a.jpeg_quality[0] == 60 && a.blur_ksize == 5,
	   "shared.json + augment.json: the augmentation recipe");
	fd_config_free(&c);
}

int main(void)
{
	const char *b = getenv("FD_BUILD");
	snprintf(dir, sizeof dir, "%s/ref/augment", b ? b : "build");
	char p[1200];
	struct fd_err e;
	snprintf(p, sizeof p, "%s/aug.safetensors", dir);
	if (fd_st_open(&st, p, &e) < 0) {
		printf("Bail out! %s (run make check-build)\n", e.msg);
		return 1;
	}
	run_cases();
	hsv_exhaustive();
	rrc_stats("sq", 224, 224, 0.08, 1.0, 3.0 / 4, 4.0 / 3);
	rrc_stats("wide", 200, 60, 0.3, 1.0, 0.5, 2.0);
	sampling();
	config();
	fd_st_close(&st);
	return tap_done();
}

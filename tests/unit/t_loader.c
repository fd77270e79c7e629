/* t_loader: fd_loader on a small pack from tests/ref/loader.py: row selection
 * (folds, test, excluded, --only, exclude_sources), normalisation against
 * torchvision's ToTensor + Normalize and numpy's mean / std, shuffling and
 * augmentation independent of thread count, validation never augmented,
 * drop_last=False, buffer reuse, bad input. */
#include "core/fd_table.h"
#include "data/fd_loader.h"
#include "io/fd_safetensors.h"
#include "tap.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[1024], pack[1200];
static struct fd_st ref;

static const void *rt(const char *name)
{
	const struct fd_st_tensor *t = fd_st_find(&ref, name);
	if (!t) {
		printf("Bail out! reference '%s' missing\n", name);
		exit(1);
	}
	return t->data;
}

static size_t rn(const char *name)
{
	return (size_t)fd_st_find(&ref, name)->numel;
}

static struct fd_loader_opts base(void)
{
	struct fd_loader_opts o;
	memset(&o, 0, sizeof o);
	o.fold = 1;
	o.batch = 7;
	o.threads = 2;
	o.seed = 42;
	fd_aug_cfg_default(&o.aug);
	return o;
}

static struct fd_loader *open_or_bail(const struct fd_loader_opts *o)
{
	struct fd_loader *L;
	struct fd_err e;
	if (fd_loader_open(&L, pack, o, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
	return L;
}

/* One whole pass into a malloc'ed [n,3,S,S] array plus rows and labels. */
static float *pass(struct fd_loader *L, enum fd_set s, int epoch, int aug, uint32_t *rows, float *y,
		   int *nb, int *last_n, int *distinct_buf)
{
	struct fd_err e;
	size_t n = fd_loader_count(L, s), S = (size_t)fd_loader_size(L), per = 3 * S * S, k = 0;
	float *x = malloc(sizeof(float) * per * n);
	const void *bufs[8];
	int nbuf = 0;
	const struct fd_batch *b;
	int rc;
	*nb = 0;
	fd_loader_begin(L, s, epoch, aug, &e);
	while ((rc = fd_loader_next(L, &b, &e)) == 1) {
		memcpy(x + k * per, b->x, sizeof(float) * per * (size_t)b->n);
		memcpy(rows + k, b->row, sizeof(uint32_t) * (size_t)b->n);
		memcpy(y + k, b->y, sizeof(float) * (size_t)b->n);
		k += (size_t)b->n;
		*last_n = b->n;
		int seen = 0;
		for (int i = 0; i < nbuf; i++)
			seen |= bufs[i] == b->x;
		if (!seen && nbuf < 8)
			bufs[nbuf++] = b->x;
		(*nb)++;
	}
	if (rc < 0 || k != n)
		printf("# pass ended with rc %d after %zu of %zu rows: %s\n", rc, k, n, rc < 0 ? e.msg : "");
	if (distinct_buf)
		*distinct_buf = nbuf;
	return x;
}

static void selection_and_norm(void)
{
	struct fd_loader_opts o = base();
	struct fd_loader *L = open_or_bail(&o);
	size_t nt = rn("train_rows"), nv = rn("val_rows");
	const int32_t *tr = rt("train_rows"), *vr = rt("val_rows");
	int same = fd_loader_count(L, FD_SET_TRAIN) == nt && fd_loader_count(L, FD_SET_VAL) == nv;
	for (size_t i = 0; same && i < nt; i++)
		same = fd_loader_rows(L, FD_SET_TRAIN)[i] == (uint32_t)tr[i];
	for (size_t i = 0; same && i < nv; i++)
		same = fd_loader_rows(L, FD_SET_VAL)[i] == (uint32_t)vr[i];
	ok(same, "fold 1: %zu training rows (folds 0, 2; no test, no excluded), %zu validation rows", nt,
	   nv);

	uint32_t rows[128];
	float y[128];
	int nb, last, nbuf;
	float *x = pass(L, FD_SET_VAL, 0, 1, rows, y, &nb, &last, &nbuf);
	ok(nb == (int)((nv + 6) / 7) && last == (int)(nv - (nv - 1) / 7 * 7),
	   "drop_last=False: %d batches of 7, the last has %d", nb, last);
	ok(nbuf == 2, "two batch buffers, reused (%d distinct)", nbuf);
	tap_close_f32("validation, ImageNet normalisation == ToTensor + Normalize", x, rt("val_imagenet"),
		      rn("val_imagenet"), 0, 0);
	free(x);
	fd_loader_close(L);

	o.norm = FD_NORM_REAL_TRAIN;
	L = open_or_bail(&o);
	double m[3], s[3];
	fd_loader_norm(L, m, s);
	const double *rm = rt("real_mean"), *rs = rt("real_std");
	double err = 0;
	for (int c = 0; c < 3; c++)
		err = tap_worse(tap_worse(err, fabs(m[c] - rm[c])), fabs(s[c] - rs[c]));
	ok(err < 1e-12, "real-train mean/std == numpy's (ddof=0): max error %.3g (mean %.6f %.6f %.6f)", err,
	   m[0], m[1], m[2]);
	x = pass(L, FD_SET_VAL, 0, 0, rows, y, &nb, &last, NULL);
	/* the mean/std agree with numpy's to 1e-16 but may round to another float32 */
	tap_close_f32("validation, real-train normalisation", x, rt("val_real"), rn("val_real"), 1e-6, 1e-6);
	free(x);
	fd_loader_close(L);

	struct fd_err e;
	struct fd_only only;
	fd_only_parse(&only, "in20=1", &e);
	o.only = &only;
	o.nonly = 1;
	L = open_or_bail(&o);
	fd_loader_norm(L, m, s);
	const double *rx = rt("real_mean_ex");
	ok(fabs(m[0] - rx[0]) < 1e-12 && fabs(m[2] - rx[2]) < 1e-12, "--only in20=1: stats of the subset");
	const struct fd_table *t = fd_loader_table(L);
	int ci = fd_table_col(t, "in20"), all = 1;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < fd_loader_count(L, (enum fd_set)k); i++)
			all &= strcmp(fd_table_get(t, fd_loader_rows(L, (enum fd_set)k)[i], ci), "1") == 0;
	ok(all && fd_loader_count(L, FD_SET_TRAIN) < nt, "--only in20=1 keeps only in20 rows");
	fd_loader_close(L);
	fd_only_free(&only, 1);

	o = base();
	const char *ex[] = {"inpainting"};
	o.exclude = ex;
	o.nexclude = 1;
	L = open_or_bail(&o);
	t = fd_loader_table(L);
	int cs = fd_table_col(t, "source"), cf = fd_table_col(t, "fold"), tr_has = 0, va_has = 0;
	size_t held = 0; /* inpainting rows of fold 1: validation rows before, not after */
	for (size_t r = 0; r < t->nrow; r++)
		held += strcmp(fd_table_get(t, r, cs), "inpainting") == 0 && strcmp(fd_table_get(t, r, cf), "1") == 0;
	for (size_t i = 0; i < fd_loader_count(L, FD_SET_TRAIN); i++)
		tr_has |= strcmp(fd_table_get(t, fd_loader_rows(L, FD_SET_TRAIN)[i], cs), "inpainting") == 0;
	for (size_t i = 0; i < fd_loader_count(L, FD_SET_VAL); i++)
		va_has |= strcmp(fd_table_get(t, fd_loader_rows(L, FD_SET_VAL)[i], cs), "inpainting") == 0;
	ok(!tr_has && !va_has && held > 0 && fd_loader_count(L, FD_SET_VAL) == nv - held,
	   "exclude_sources drops inpainting from training and validation (%zu of %zu validation rows)", held, nv);
	fd_loader_close(L);

	o = base();
	o.fold = -1;
	L = open_or_bail(&o);
	ok(fd_loader_count(L, FD_SET_VAL) == 61 && fd_loader_count(L, FD_SET_TRAIN) == 0,
	   "fold < 0: every row for evaluation");
	fd_loader_close(L);
}

static void augmentation(void)
{
	struct fd_loader_opts o = base(), oa = base();
	struct fd_aug_cfg *a = &oa.aug;
	a->hflip_p = a->rrc_p = a->rot_p = a->cj_p = a->blur_p = a->jpeg_p = 1;
	a->rot_degrees = 30;
	a->cj_brightness = a->cj_contrast = a->cj_saturation = 0.4;
	a->cj_hue = 0.1;
	a->blur_ksize = 5;
	struct fd_loader *L0 = open_or_bail(&o), *L1 = open_or_bail(&oa);
	size_t nt = fd_loader_count(L0, FD_SET_TRAIN), nv = fd_loader_count(L0, FD_SET_VAL);
	size_t per = 3 * 24 * 24;
	uint32_t r0[128], r1[128], r2[128];
	float y0[128], y1[128], y2[128];
	int nb, last;
	float *v0 = pass(L0, FD_SET_VAL, 3, 1, r0, y0, &nb, &last, NULL);
	float *v1 = pass(L1, FD_SET_VAL, 3, 1, r1, y1, &nb, &last, NULL);
	ok(memcmp(v0, v1, sizeof(float) * per * nv) == 0 && memcmp(r0, r1, 4 * nv) == 0,
	   "every augmentation at p=1: validation batches bit-identical to unaugmented ones");
	free(v0);
	free(v1);

	float *t0 = pass(L0, FD_SET_TRAIN, 3, 1, r0, y0, &nb, &last, NULL);
	float *t1 = pass(L1, FD_SET_TRAIN, 3, 1, r1, y1, &nb, &last, NULL);
	int same_order = memcmp(r0, r1, 4 * nt) == 0, differ = 0;
	for (size_t i = 0; i < nt; i++)
		differ += memcmp(t0 + i * per, t1 + i * per, sizeof(float) * per) != 0;
	ok(same_order && differ == (int)nt, "training epoch: same order, every image augmented (%d of %zu)",
	   differ, nt);
	int perm = 1, seen[128] = {0}, lab = 1;
	for (size_t i = 0; i < nt; i++) {
		for (size_t j = 0; j < nt; j++)
			if (fd_loader_rows(L0, FD_SET_TRAIN)[j] == r0[i])
				seen[j]++;
		const char *lv = fd_table_get(fd_loader_table(L0), r0[i],
					      fd_table_col(fd_loader_table(L0), "label"));
		lab &= y0[i] == (float)atoi(lv);
	}
	for (size_t j = 0; j < nt; j++)
		perm &= seen[j] == 1;
	int shuffled = memcmp(r0, fd_loader_rows(L0, FD_SET_TRAIN), 4 * nt) != 0;
	ok(perm && shuffled && lab, "an epoch is a shuffled permutation of the training rows, labels follow");
	float *t2 = pass(L0, FD_SET_TRAIN, 4, 1, r2, y2, &nb, &last, NULL);
	ok(memcmp(r0, r2, 4 * nt) != 0, "another epoch, another order");
	free(t2);
	t2 = pass(L0, FD_SET_TRAIN, 3, 0, r2, y2, &nb, &last, NULL);
	ok(memcmp(r2, fd_loader_rows(L0, FD_SET_TRAIN), 4 * nt) == 0, "augment=0: training rows in pack order");
	free(t2);

	/* thread count and timing do not matter */
	oa.threads = 1;
	struct fd_loader *L3 = open_or_bail(&oa);
	oa.threads = 5;
	oa.batch = 4;
	struct fd_loader *L4 = open_or_bail(&oa);
	float *t3 = pass(L3, FD_SET_TRAIN, 3, 1, r2, y2, &nb, &last, NULL);
	ok(memcmp(t1, t3, sizeof(float) * per * nt) == 0 && memcmp(r1, r2, 4 * nt) == 0,
	   "1 thread == 2 threads, bit for bit");
	free(t3);
	t3 = pass(L4, FD_SET_TRAIN, 3, 1, r2, y2, &nb, &last, NULL);
	ok(memcmp(t1, t3, sizeof(float) * per * nt) == 0 && memcmp(r1, r2, 4 * nt) == 0,
	   "5 threads, batch 4 == 2 threads, batch 7, bit for bit");
	free(t3);
	/* a pass abandoned midway, then a new one: same result */
	struct fd_err e;
	const struct fd_batch *b;
	fd_loader_begin(L4, FD_SET_TRAIN, 3, 1, &e);
	fd_loader_next(L4, &b, &e);
	t3 = pass(L4, FD_SET_TRAIN, 3, 1, r2, y2, &nb, &last, NULL);
	ok(memcmp(t1, t3, sizeof(float) * per * nt) == 0, "an abandoned pass leaves no trace");
	free(t3);
	free(t0);
	free(t1);
	fd_loader_close(L0);
	fd_loader_close(L1);
	fd_loader_close(L3);
	fd_loader_close(L4);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static void bad_input(void)
{
	struct fd_loader *L;
	struct fd_err e;
	struct fd_loader_opts o = base();
	o.fold = 7;
	ok(fd_loader_open(&L, pack, &o, &e) < 0 && strstr(e.msg, "no selected row has fold 7") && !L,
	   "missing fold: %s", e.msg);
	o = base();
	const char *ex[] = {"nosuch"};
	o.exclude = ex;
	o.nexclude = 1;
	ok(fd_loader_open(&L, pack, &o, &e) < 0 && strstr(e.msg, "no source 'nosuch'"), "unknown source: %s",
	   e.msg);
	o = base();
	o.aug.blur_p = 1;
	o.aug.blur_ksize = 49;
	ok(fd_loader_open(&L, pack, &o, &e) < 0 && strstr(e.msg, "too large"), "blur kernel: %s", e.msg);

	/* a copy of the pack with a bad TSV */
	char p2[1300], t2[1300], src[4000];
	snprintf(p2, sizeof p2, "%s/bad.safetensors", dir);
	snprintf(t2, sizeof t2, "%s/bad.tsv", dir);
	snprintf(src, sizeof src, "cp '%s' '%s'", pack, p2);
	if (system(src) != 0)
		printf("# cp failed\n");
	char *tsv = malloc(1 << 16);
	snprintf(src, sizeof src, "%s/pack.tsv", dir);
	FILE *f = fopen(src, "r");
	size_t n = fread(tsv, 1, (1 << 16) - 1, f);
	fclose(f);
	tsv[n] = 0;
	char *q = strstr(tsv, "\t0\t1\t0\n"); /* row 0: fold 0, in20 1 */
	if (q)
		memcpy(q, "\tx\t1\t0\n", 7);
	write_file(t2, tsv);
	o = base();
	ok(fd_loader_open(&L, p2, &o, &e) < 0 && strstr(e.msg, "bad.tsv': line 2: fold 'x'"), "bad fold: %s",
	   e.msg);
	write_file(t2, "path\tfold\trow\na\t0\t0\n");
	ok(fd_loader_open(&L, p2, &o, &e) < 0 && strstr(e.msg, "has 1 rows, the pack 61"), "row count: %s",
	   e.msg);
	free(tsv);
	o.norm = FD_NORM_REAL_TRAIN;
	o.fold = -1;
	ok(fd_loader_open(&L, pack, &o, &e) < 0 && strstr(e.msg, "needs a fold"), "real-train without fold");
}

int main(void)
{
	const char *b = getenv("FD_BUILD");
	snprintf(dir, sizeof dir, "%s/ref/loader", b ? b : "build");
	snprintf(pack, sizeof pack, "%s/pack.safetensors", dir);
	char p[1300];
	struct fd_err e;
	snprintf(p, sizeof p, "%s/ref.safetensors", dir);
	if (fd_st_open(&ref, p, &e) < 0) {
		printf("Bail out! %s (run make check-build)\n", e.msg);
		return 1;
	}
	selection_and_norm();
	augmentation();
	bad_input();
	fd_st_close(&ref);
	return tap_done();
}

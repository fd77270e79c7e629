/* fd_loader: pack rows -> shuffled, augmented, normalised float32 batches,
 * made by a pthread pool into two alternating buffers. */
#include "data/fd_loader.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fd_rng.h"
#include "data/fd_pack.h"

static const double imagenet_mean[3] = {0.485, 0.456, 0.406};
static const double imagenet_std[3] = {0.229, 0.224, 0.225};

int fd_norm_parse(const char *s, enum fd_norm *n)
{
	if (strcmp(s, "imagenet") == 0)
		*n = FD_NORM_IMAGENET;
	else if (strcmp(s, "real-train") == 0)
		*n = FD_NORM_REAL_TRAIN;
	else
		return -1;
	return 0;
}

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

struct slot {
	struct fd_batch b;
	int state, claimed, done, failed;
	struct fd_err err;
};

struct worker {
	struct fd_loader *L;
	pthread_t tid;
	uint8_t *img;
	struct fd_aug_work wk;
};

struct fd_loader {
	struct fd_pack pack;
	const uint8_t *images, *labels; /* the pack's */
	int S, B, nthreads;
	uint64_t seed;
	struct fd_aug_cfg aug;
	uint32_t *set[2];
	size_t nset[2];
	double mean[3], std[3];
	float lut[3][256];
	/* current pass */
	uint32_t *order;    /* rows of the pass, in pass order */
	size_t norder;
	int nbatch, next_batch, held, epoch, augment;
	struct slot slot[2];
	/* workers */
	struct worker *w;
	int nstarted, stop;
	pthread_mutex_t mu;
	pthread_cond_t work, ready;
};

/* Fill image i of the slot's batch. */
static int make_image(struct worker *w, struct slot *s, int i, struct fd_err *e)
{
	struct fd_loader *L = w->L;
	size_t px = (size_t)L->S * L->S;
	uint32_t row = s->b.row[i];
	const uint8_t *src = L->images + (size_t)row * px * 3;
	if (L->augment) {
		struct fd_aug_params p;
		fd_aug_sample(&L->aug, L->seed, (uint64_t)L->epoch, row, L->S, L->S, &p);
		memcpy(w->img, src, px * 3);
		if (fd_aug_apply(&L->aug, &p, w->img, L->S, &w->wk, e) < 0)
			return fd_err_ctx(e, "augmenting pack row %u", row);
		src = w->img;
	}
	float *x = s->b.x + (size_t)i * 3 * px;
	for (int c = 0; c < 3; c++) {
		const float *lut = L->lut[c];
		float *o = x + (size_t)c * px;
		for (size_t k = 0; k < px; k++)
			o[k] = lut[src[k * 3 + c]];
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct fd_loader *L = w->L;
	pthread_mutex_lock(&L->mu);
	for (;;) {
		/* the filling slot with the lowest batch index and unclaimed images */
		struct slot *s = NULL;
		for (int k = 0; k < 2; k++) {
			struct slot *c = &L->slot[k];
			if (c->state == SLOT_FILLING && c->claimed < c->b.n && (!s || c->b.index < s->b.index))
				s = c;
		}
		if (!s) {
			if (L->stop)
				break;
			pthread_cond_wait(&L->work, &L->mu);
			continue;
		}
		int i = s->claimed++;
		pthread_mutex_unlock(&L->mu);
		struct fd_err e;
		int rc = make_image(w, s, i, &e);
		pthread_mutex_lock(&L->mu);
		if (rc < 0 && !s->failed) {
			s->failed = 1;
			s->err = e;
		}
		if (++s->done == s->b.n) {
			s->state = SLOT_READY;
			pthread_cond_broadcast(&L->ready);
		}
	}
	pthread_mutex_unlock(&L->mu);
	return NULL;
}

/* Queue batch k of the pass into slot s (lock held). */
static void schedule(struct fd_loader *L, struct slot *s, int k)
{
	size_t lo = (size_t)k * L->B, n = L->norder - lo < (size_t)L->B ? L->norder - lo : (size_t)L->B;
	s->b.index = k;
	s->b.n = (int)n;
	for (size_t i = 0; i < n; i++) {
		uint32_t r = L->order[lo + i];
		s->b.row[i] = r;
		s->b.y[i] = (float)L->labels[r];
	}
	s->claimed = s->done = s->failed = 0;
	s->state = SLOT_FILLING;
	pthread_cond_broadcast(&L->work);
}

/* Integer fold value, or -1 for anything else. */
static long fold_of(const char *v)
{
	if (!*v)
		return -1;
	long x = 0;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9' || x > 100000000)
			return -1;
		x = x * 10 + (*p - '0');
	}
	return x;
}

static int select_rows(struct fd_loader *L, const struct fd_loader_opts *o, struct fd_err *e)
{
	const struct fd_table *t = &L->pack.tab;
	const char *tsv = L->pack.tsv;
	int cf = -1, cs = -1;
	if (o->fold >= 0 && (cf = fd_table_need(t, "fold", e)) < 0)
		return -1;
	if (o->nexclude > 0 && (cs = fd_table_need(t, "source", e)) < 0)
		return -1;
	if (fd_only_bind(o->only, o->nonly, t, e) < 0)
		return -1;
	for (int k = 0; k < o->nexclude; k++) {
		size_t r = 0;
		while (r < t->nrow && strcmp(fd_table_get(t, r, cs), o->exclude[k]) != 0)
			r++;
		if (r == t->nrow)
			return fd_err_set(e, "'%s': exclude_sources: no source '%s'", tsv, o->exclude[k]);
	}
	int have_k = 0;
	for (size_t r = 0; r < t->nrow; r++) {
		if (!fd_only_match(o->only, o->nonly, t, r))
			continue;
		if (o->fold < 0) {
			L->set[FD_SET_VAL][L->nset[FD_SET_VAL]++] = (uint32_t)r;
			continue;
		}
		const char *fv = fd_table_get(t, r, cf);
		long f = fold_of(fv);
		if (f < 0) {
			if (strcmp(fv, "test") != 0 && strcmp(fv, "excluded") != 0)
				return fd_err_set(e, "'%s': line %zu: fold '%s' is not a fold number, 'test' or "
						     "'excluded'", tsv, r + 2, fv);
			continue;
		}
		/* a held-out source is out of training and of validation (which
		 * drives early stopping and the best checkpoint): selection never sees it */
		int drop = 0;
		for (int k = 0; k < o->nexclude; k++)
			drop |= strcmp(fd_table_get(t, r, cs), o->exclude[k]) == 0;
		have_k |= f == o->fold;
		enum fd_set which = f == o->fold ? FD_SET_VAL : FD_SET_TRAIN;
		if (!drop)
			L->set[which][L->nset[which]++] = (uint32_t)r;
	}
	if (o->fold >= 0 && !have_k)
		return fd_err_set(e, "'%s': no selected row has fold %d", tsv, o->fold);
	if (o->fold >= 0 && L->nset[FD_SET_VAL] == 0)
		return fd_err_set(e, "'%s': no validation rows for fold %d once exclude_sources are left out", tsv,
				  o->fold);
	if (o->fold >= 0 && L->nset[FD_SET_TRAIN] == 0)
		return fd_err_set(e, "'%s': no training rows for fold %d", tsv, o->fold);
	if (o->fold < 0 && L->nset[FD_SET_VAL] == 0)
		return fd_err_set(e, "'%s': no row is selected", tsv);
	return 0;
}

/* Per-channel mean and population std of the real training images, in [0, 1]
 * units, from exact per-channel histograms. */
static int real_train_stats(struct fd_loader *L, struct fd_err *e)
{
	const char *tsv = L->pack.tsv;
	size_t px = (size_t)L->S * L->S, nimg = 0;
	uint64_t hist[3][256] = {{0}};
	const uint32_t *rows = L->set[FD_SET_TRAIN];
	size_t n = L->nset[FD_SET_TRAIN];
	#pragma omp parallel num_threads(L->nthreads)
	{
		uint64_t h[3][256] = {{0}};
		size_t cnt = 0;
		#pragma omp for schedule(dynamic, 16)
		for (size_t i = 0; i < n; i++) {
			if (L->labels[rows[i]] != 0)
				continue;
			cnt++;
			const uint8_t *p = L->images + (size_t)rows[i] * px * 3;
			for (size_t k = 0; k < px; k++) {
				h[0][p[3 * k]]++;
				h[1][p[3 * k + 1]]++;
				h[2][p[3 * k + 2]]++;
			}
		}
		#pragma omp critical
		{
			nimg += cnt;
			for (int c = 0; c < 3; c++)
				for (int v = 0; v < 256; v++)
					hist[c][v] += h[c][v];
		}
	}
	if (nimg == 0)
		return fd_err_set(e, "'%s': normalize real-train: no real (label 0) training image", tsv);
	double tot = (double)nimg * (double)px;
	for (int c = 0; c < 3; c++) {
		double s = 0, q = 0;
		for (int v = 0; v < 256; v++)
			s += (double)hist[c][v] * (v / 255.0);
		double m = s / tot;
		for (int v = 0; v < 256; v++) {
			double d = v / 255.0 - m;
			q += (double)hist[c][v] * d * d;
		}
		L->mean[c] = m;
		L->std[c] = sqrt(q / tot);
		if (!(L->std[c] > 0))
			return fd_err_set(e, "'%s': normalize real-train: channel %d of the real training "
					     "images is constant", tsv, c);
	}
	return 0;
}

void fd_loader_close(struct fd_loader *L)
{
	if (!L)
		return;
	pthread_mutex_lock(&L->mu);
	L->stop = 1;
	pthread_cond_broadcast(&L->work);
	pthread_mutex_unlock(&L->mu);
	for (int i = 0; i < L->nstarted; i++)
		pthread_join(L->w[i].tid, NULL);
	for (int i = 0; i < L->nthreads && L->w; i++) {
		free(L->w[i].img);
		fd_aug_work_free(&L->w[i].wk);
	}
	free(L->w);
	for (int k = 0; k < 2; k++) {
		free(L->slot[k].b.x);
		free(L->slot[k].b.y);
		free(L->slot[k].b.row);
		free(L->set[k]);
	}
	free(L->order);
	pthread_cond_destroy(&L->work);
	pthread_cond_destroy(&L->ready);
	pthread_mutex_destroy(&L->mu);
	fd_pack_close(&L->pack);
	free(L);
}

int fd_loader_open(struct fd_loader **out, const char *pack, const struct fd_loader_opts *o,
		   struct fd_err *e)
{
	*out = NULL;
	if (o->batch <= 0 || o->threads <= 0)
		return fd_err_set(e, "loader: batch size and threads must be positive");
	struct fd_loader *L = calloc(1, sizeof *L);
	if (!L)
		return fd_err_set(e, "out of memory");
	pthread_mutex_init(&L->mu, NULL);
	pthread_cond_init(&L->work, NULL);
	pthread_cond_init(&L->ready, NULL);
	L->B = o->batch;
	L->nthreads = o->threads;
	L->seed = o->seed;
	L->aug = o->aug;
	L->next_batch = L->nbatch = 0;
	L->held = -1;
	int rc = fd_pack_open(&L->pack, pack, o->max_label > 0 ? o->max_label : 1, e);
	L->images = L->pack.images;
	L->labels = L->pack.labels;
	L->S = L->pack.S;
	size_t N = L->pack.n, px = (size_t)L->S * L->S;
	if (rc == 0) {
		L->set[0] = malloc(sizeof(uint32_t) * (N ? N : 1));
		L->set[1] = malloc(sizeof(uint32_t) * (N ? N : 1));
		L->order = malloc(sizeof(uint32_t) * (N ? N : 1));
		L->w = calloc((size_t)o->threads, sizeof *L->w);
		if (!L->set[0] || !L->set[1] || !L->order || !L->w)
			rc = fd_err_set(e, "out of memory");
	}
	if (rc == 0)
		rc = select_rows(L, o, e);
	if (rc == 0 && fd_aug_cfg_any(&L->aug) && L->aug.blur_p > 0 && L->aug.blur_ksize / 2 >= L->S)
		rc = fd_err_set(e, "augment.gaussian_blur.kernel_size %d is too large for %d x %d images",
				L->aug.blur_ksize, L->S, L->S);
	if (rc == 0) {
		if (o->norm_given) {
			memcpy(L->mean, o->mean, sizeof L->mean);
			memcpy(L->std, o->std, sizeof L->std);
			for (int c = 0; c < 3 && rc == 0; c++)
				if (!(L->std[c] > 0) || !isfinite(L->mean[c]) || !isfinite(L->std[c]))
					rc = fd_err_set(e, "normalisation: channel %d mean %g std %g", c,
							L->mean[c], L->std[c]);
		} else if (o->norm == FD_NORM_REAL_TRAIN) {
			rc = o->fold < 0 ? fd_err_set(e, "normalize real-train needs a fold")
					 : real_train_stats(L, e);
		} else {
			memcpy(L->mean, imagenet_mean, sizeof L->mean);
			memcpy(L->std, imagenet_std, sizeof L->std);
		}
	}
	if (rc == 0) {
		/* torchvision: ToTensor (float32 u8 / 255), Normalize (float32 sub, div) */
		for (int c = 0; c < 3; c++) {
			float m = (float)L->mean[c], s = (float)L->std[c];
			for (int v = 0; v < 256; v++)
				L->lut[c][v] = ((float)v / 255.0f - m) / s;
		}
		for (int k = 0; k < 2 && rc == 0; k++) {
			struct fd_batch *b = &L->slot[k].b;
			b->x = malloc(sizeof(float) * (size_t)L->B * 3 * px);
			b->y = malloc(sizeof(float) * (size_t)L->B);
			b->row = malloc(sizeof(uint32_t) * (size_t)L->B);
			if (!b->x || !b->y || !b->row)
				rc = fd_err_set(e, "out of memory for batches of %d x 3 x %d x %d", L->B, L->S,
						L->S);
		}
		for (int i = 0; i < o->threads && rc == 0; i++) {
			L->w[i].L = L;
			L->w[i].img = malloc(px * 3);
			if (!L->w[i].img)
				rc = fd_err_set(e, "out of memory");
			else
				rc = fd_aug_work_init(&L->w[i].wk, L->S, e);
		}
		for (int i = 0; i < o->threads && rc == 0; i++) {
			if (pthread_create(&L->w[i].tid, NULL, worker_main, &L->w[i]) != 0)
				rc = fd_err_set(e, "cannot start loader thread %d", i);
			else
				L->nstarted++;
		}
	}
	if (rc < 0) {
		fd_loader_close(L);
		return -1;
	}
	*out = L;
	return 0;
}

int fd_loader_size(const struct fd_loader *L)
{
	return L->S;
}

size_t fd_loader_count(const struct fd_loader *L, enum fd_set s)
{
	return L->nset[s];
}

const uint32_t *fd_loader_rows(const struct fd_loader *L, enum fd_set s)
{
	return L->set[s];
}

void fd_loader_norm(const struct fd_loader *L, double mean[3], double std[3])
{
	memcpy(mean, L->mean, sizeof L->mean);
	memcpy(std, L->std, sizeof L->std);
}

const struct fd_table *fd_loader_table(const struct fd_loader *L)
{
	return &L->pack.tab;
}

const struct fd_pack *fd_loader_pack(const struct fd_loader *L)
{
	return &L->pack;
}

int fd_loader_begin(struct fd_loader *L, enum fd_set s, int epoch, int augment, struct fd_err *e)
{
	pthread_mutex_lock(&L->mu);
	/* drain: workers may still be making a batch of the previous pass */
	while (L->slot[0].state == SLOT_FILLING || L->slot[1].state == SLOT_FILLING)
		pthread_cond_wait(&L->ready, &L->mu);
	L->slot[0].state = L->slot[1].state = SLOT_FREE;
	L->epoch = epoch;
	L->augment = s == FD_SET_TRAIN && augment && fd_aug_cfg_any(&L->aug);
	L->norder = L->nset[s];
	memcpy(L->order, L->set[s], sizeof(uint32_t) * L->norder);
	if (s == FD_SET_TRAIN && augment) {
		struct fd_rng r;
		fd_rng_init(&r, L->seed, (uint64_t)(uint32_t)epoch);
		fd_rng_shuffle(&r, L->order, (uint32_t)L->norder);
	}
	L->nbatch = (int)((L->norder + (size_t)L->B - 1) / (size_t)L->B);
	L->held = -1;
	L->next_batch = 0;
	for (int k = 0; k < 2 && k < L->nbatch; k++)
		schedule(L, &L->slot[k], k);
	pthread_mutex_unlock(&L->mu);
	(void)e;
	return 0;
}

int fd_loader_next(struct fd_loader *L, const struct fd_batch **b, struct fd_err *e)
{
	*b = NULL;
	pthread_mutex_lock(&L->mu);
	if (L->held >= 0) {
		/* the caller is done with batch held: its slot makes batch held + 2 */
		struct slot *s = &L->slot[L->held % 2];
		s->state = SLOT_FREE;
		if (L->held + 2 < L->nbatch)
			schedule(L, s, L->held + 2);
		L->held = -1;
	}
	if (L->next_batch >= L->nbatch) {
		pthread_mutex_unlock(&L->mu);
		return 0;
	}
	int k = L->next_batch;
	struct slot *s = &L->slot[k % 2];
	while (s->state != SLOT_READY)
		pthread_cond_wait(&L->ready, &L->mu);
	if (s->failed) {
		*e = s->err;
		pthread_mutex_unlock(&L->mu);
		return -1;
	}
	L->held = k;
	L->next_batch++;
	*b = &s->b;
	pthread_mutex_unlock(&L->mu);
	return 1;
}

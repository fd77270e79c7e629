/* fd_train: the training run behind fd-train (config, data, model,
 * optimizer, epoch loop, validation, RUNDIR files, resume) and the scoring
 * loop shared with fd-eval. Notes: doc/train.md. */
#include "train/fd_train.h"
#include "core/fd_config.h"
#include "core/fd_out.h"
#include "core/fd_sha256.h"
#include "core/fd_table.h"
#include "core/fd_version.h"
#include "data/fd_pack.h"
#include "eval/fd_metrics.h"
#include "io/fd_safetensors.h"
#include "models/fd_model_file.h"
#include "nn/ckpt.h"
#include "nn/fd_backend.h"
#include "nn/loss.h"
#include "nn/optim.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Everything the config decides, read and checked before any output. */
struct tcfg {
	int64_t seed, batch, epochs, patience, workers, threads, num_classes;
	const char *model, *init; /* init: "imagenet", a path, or NULL (scratch) */
	int imagenet;             /* init is "imagenet": the architecture's torchvision file */
	enum fd_norm norm;
	const char *norm_name;
	enum fd_opt_type opt;
	double lr, wd, beta[2], eps, momentum;
	int nesterov, no_decay;
	enum fd_precision precision;
	int winograd; /* config winograd: c->winograd (doc/nn-kernels.md "Winograd") */
	int cosine;
	int64_t T_max, warmup;
	double eta_min;
	struct fd_aug_cfg aug;
	const char *exclude[64];
	int nexclude;
};

static int get_int(const struct fd_config *c, const char *k, int64_t def, int64_t lo, int64_t hi,
		   int64_t *out, struct fd_err *e)
{
	*out = def;
	if (fd_config_has(c, k) && fd_config_get_int(c, k, out, e) < 0)
		return -1;
	if (*out < lo || *out > hi)
		return fd_err_set(e, "%s: '%s' is %lld, not in %lld..%lld", fd_config_where(c, k), k, (long long)*out,
				  (long long)lo, (long long)hi);
	return 0;
}

static int get_num(const struct fd_config *c, const char *k, double def, double lo, double hi,
		   double *out, struct fd_err *e)
{
	*out = def;
	if (fd_config_has(c, k) && fd_config_get_double(c, k, out, e) < 0)
		return -1;
	if (!(*out >= lo && *out <= hi))
		return fd_err_set(e, "%s: '%s' is %g, not in [%g, %g]", fd_config_where(c, k), k, *out, lo, hi);
	return 0;
}

static int read_cfg(struct tcfg *t, const struct fd_config *c, struct fd_err *e)
{
	memset(t, 0, sizeof *t);
	const char *s;
	if (get_int(c, "seed", 42, 0, INT64_MAX, &t->seed, e) < 0 ||
	    get_int(c, "batch_size", 32, 1, 65536, &t->batch, e) < 0 ||
	    get_int(c, "early_stopping_patience", 0, 0, 1000000, &t->patience, e) < 0 ||
	    get_int(c, "num_workers", 2, 1, 256, &t->workers, e) < 0 ||
	    get_int(c, "threads", 0, 0, 1024, &t->threads, e) < 0 ||
	    get_int(c, "num_classes", 1, 1, 256, &t->num_classes, e) < 0)
		return -1;
	if (!fd_config_has(c, "epochs"))
		return fd_err_set(e, "config: missing 'epochs'");
	if (get_int(c, "epochs", 0, 1, 1000000, &t->epochs, e) < 0)
		return -1;
	if (!fd_config_has(c, "model"))
		return fd_err_set(e, "config: missing 'model' (fd-train --list-models names them)");
	if (fd_config_get_str(c, "model", &t->model, e) < 0)
		return -1;
	if (!fd_model_arch_find(t->model))
		return fd_err_set(e, "%s: unknown model '%s' (fd-train --list-models names them)",
				  fd_config_where(c, "model"), t->model);
	t->init = NULL;
	if (fd_config_has(c, "init")) {
		/* "scratch" (or null) means from scratch, so a later file (make
		 * demo's configs/demo.json) can undo an earlier init */
		if (fd_config_get_str(c, "init", &t->init, e) < 0)
			e->msg[0] = '\0', t->init = NULL;
		if (t->init && !*t->init)
			return fd_err_set(e, "%s: 'init' is empty (\"scratch\", \"imagenet\" or a checkpoint's path)",
					  fd_config_where(c, "init"));
		if (t->init && !strcmp(t->init, "scratch"))
			t->init = NULL;
		t->imagenet = t->init && !strcmp(t->init, "imagenet");
		if (t->imagenet && !fd_model_arch_find(t->model)->imagenet)
			return fd_err_set(e, "%s: init 'imagenet': torchvision has no ImageNet weights for %s "
					  "(init \"scratch\" or a checkpoint's path)", fd_config_where(c, "init"), t->model);
	}
	t->norm_name = "imagenet";
	if (fd_config_has(c, "normalize") && fd_config_get_str(c, "normalize", &t->norm_name, e) < 0)
		return -1;
	if (fd_norm_parse(t->norm_name, &t->norm) < 0)
		return fd_err_set(e, "%s: 'normalize' is '%s'", fd_config_where(c, "normalize"), t->norm_name);
	if (fd_config_has(c, "precision")) {
		if (fd_config_get_str(c, "precision", &s, e) < 0)
			return -1;
		/* the schema allows fp32|bf16 only */
		t->precision = strcmp(s, "bf16") == 0 ? FD_PREC_BF16 : FD_PREC_FP32;
	}
	if (fd_config_has(c, "winograd") && fd_config_get_bool(c, "winograd", &t->winograd, e) < 0)
		return -1;
	s = "adamw";
	if (fd_config_has(c, "optimizer.type") && fd_config_get_str(c, "optimizer.type", &s, e) < 0)
		return -1;
	t->opt = strcmp(s, "sgd") == 0 ? FD_OPT_SGD : FD_OPT_ADAMW;
	if (!fd_config_has(c, "optimizer.lr"))
		return fd_err_set(e, "config: missing 'optimizer.lr'");
	/* torch's defaults: AdamW weight_decay 0.01, betas (0.9, 0.999), eps 1e-8; SGD 0 */
	if (get_num(c, "optimizer.lr", 0, 0, INFINITY, &t->lr, e) < 0 ||
	    get_num(c, "optimizer.weight_decay", t->opt == FD_OPT_ADAMW ? 0.01 : 0, 0, INFINITY, &t->wd, e) < 0 ||
	    get_num(c, "optimizer.eps", 1e-8, 0, INFINITY, &t->eps, e) < 0 ||
	    get_num(c, "optimizer.momentum", 0, 0, 1, &t->momentum, e) < 0)
		return -1;
	t->beta[0] = 0.9;
	t->beta[1] = 0.999;
	if (fd_config_has(c, "optimizer.betas") && fd_config_get_doubles(c, "optimizer.betas", t->beta, 2, e) < 0)
		return -1;
	if (!(t->beta[0] >= 0 && t->beta[0] < 1 && t->beta[1] >= 0 && t->beta[1] < 1))
		return fd_err_set(e, "%s: 'optimizer.betas' must be in [0, 1)", fd_config_where(c, "optimizer.betas"));
	if (fd_config_has(c, "optimizer.nesterov") && fd_config_get_bool(c, "optimizer.nesterov", &t->nesterov, e) < 0)
		return -1;
	if (fd_config_has(c, "optimizer.no_decay_norm_bias") &&
	    fd_config_get_bool(c, "optimizer.no_decay_norm_bias", &t->no_decay, e) < 0)
		return -1;
	if (t->nesterov && (t->opt != FD_OPT_SGD || t->momentum <= 0))
		return fd_err_set(e, "%s: 'optimizer.nesterov' needs type sgd and momentum > 0",
				  fd_config_where(c, "optimizer.nesterov"));
	s = "none";
	if (fd_config_has(c, "scheduler.type") && fd_config_get_str(c, "scheduler.type", &s, e) < 0)
		return -1;
	t->cosine = strcmp(s, "cosine_annealing") == 0;
	if (get_int(c, "scheduler.T_max", t->epochs, 1, INT64_MAX, &t->T_max, e) < 0 ||
	    get_int(c, "scheduler.warmup_epochs", 0, 0, 1000000, &t->warmup, e) < 0 ||
	    get_num(c, "scheduler.eta_min", 0, 0, INFINITY, &t->eta_min, e) < 0)
		return -1;
	if (fd_aug_cfg_from_config(&t->aug, c, e) < 0)
		return -1;
	if (fd_config_has(c, "exclude_sources") &&
	    fd_config_get_strs(c, "exclude_sources", t->exclude, 64, &t->nexclude, e) < 0)
		return -1;
	return 0;
}

/* ---- scoring rows ---- */

/* A batch's host floats as a tensor on c's device: the host memory itself
 * on the CPU, else a copy in the device's step arena (copy_h2d). */
static struct fd_tensor *batch_in(struct fd_ctx *c, float *host, int ndim, const int64_t *shape)
{
	if (c->dev == FD_DEV_CPU)
		return fd_tensor_wrap(c, FD_DEV_CPU, host, ndim, shape);
	struct fd_tensor *t = fd_tensor_new(c, c->dev, ndim, shape);
	const struct fd_backend *be = t ? FD_KERNEL(c, c->dev, copy_h2d) : NULL;
	if (!be || be->copy_h2d(c, t->data, host, (size_t)t->numel * sizeof(float)) < 0)
		return NULL;
	return t;
}

/* t's values readable on the host: t's own memory on the CPU, else a copy
 * in the host arena (copy_d2h, which waits for the device). */
static const float *host_view(struct fd_ctx *c, const struct fd_tensor *t)
{
	if (!t || t->dev == FD_DEV_CPU)
		return t ? t->data : NULL;
	float *h = fd_ctx_alloc(c, FD_DEV_CPU, t->numel);
	const struct fd_backend *be = h ? FD_KERNEL(c, t->dev, copy_d2h) : NULL;
	if (!be || be->copy_d2h(c, h, t->data, (size_t)t->numel * sizeof(float)) < 0)
		return NULL;
	return h;
}

int fd_score_rows(struct fd_model *m, struct fd_ctx *c, struct fd_loader *L, enum fd_set s, int epoch,
		  double *logits, uint8_t *labels, struct fd_progress *pg, volatile sig_atomic_t *stop,
		  struct fd_err *e)
{
	if (fd_loader_begin(L, s, epoch, 0, e) < 0)
		return -1;
	int training = c->training, grad = c->grad_enabled, S = fd_loader_size(L), K = m->num_classes;
	c->training = 0;
	c->grad_enabled = 0;
	const struct fd_batch *b;
	size_t k = 0;
	int rc;
	while ((rc = fd_loader_next(L, &b, e)) == 1) {
		if (stop && *stop) {
			rc = 1;
			break;
		}
		fd_ctx_step(c);
		int64_t xs[4] = { b->n, 3, S, S };
		const float *y = host_view(c, fd_model_forward(m, c, batch_in(c, b->x, 4, xs)));
		if (!y) {
			rc = fd_err_set(e, "%s", c->err.msg);
			break;
		}
		for (int i = 0; i < b->n; i++, k++) {
			for (int j = 0; j < K; j++)
				logits[k * (size_t)K + j] = y[(size_t)i * K + j];
			labels[k] = (uint8_t)b->y[i];
		}
		if (pg)
			fd_progress_add(pg, (uint64_t)b->n);
	}
	c->training = training;
	c->grad_enabled = grad;
	return rc;
}

/* ---- run state (state.safetensors) ---- */

/* Progress within the run: what --resume restores besides the tensors. */
struct progress_state {
	int64_t epoch;       /* completed epochs */
	int64_t batch;       /* training batches done in epoch `epoch` (0-based), mid-epoch save */
	int64_t ctx_step;    /* fd_ctx step counter (dropout streams) */
	int64_t opt_step;
	double sched_lr;
	int64_t sched_epoch;
	double best;         /* early-stopping metric of the best epoch (NAN: none yet) */
	int64_t best_epoch, bad;
	double loss_sum;     /* mid-epoch: sum of batch loss x batch size so far */
	int64_t seen;        /* mid-epoch: training images so far */
	double secs;         /* mid-epoch: seconds spent in the epoch so far */
};

struct fd_run {
	struct fd_run_opts o;
	const char *dir, *pack;
	int fold, threads;
	double wall0;
	int64_t stop_after;   /* steps left before stop_after fires (<= 0: never) */
	struct tcfg t;
	struct fd_config cfg;
	char *cfg_json, *cfg_base; /* resolved; and with epochs = 0 (what a resume must match) */
	char tsv_sha[65];
	char *src_sha;
	char *init_path;      /* the file init loaded (NULL: from scratch) */
	char init_sha[65];    /* its SHA-256 */
	int init_heads;       /* head views re-initialised after the load (0: the file's head kept) */
	char *p_state, *p_log, *p_run, *p_config, *p_best, *p_last;
	struct fd_model *m;
	struct fd_optim opt;
	struct fd_sched sched;
	struct fd_model_ctx mc;
	struct fd_loader *L;
	int S;
	double mean[3], std[3];
	size_t ntrain, nval;
	double *tscore;       /* [ntrain] train scores of the batches seen (binary) */
	uint8_t *tlabel;
	double *vlogit;       /* [nval * K] */
	double *vscore;
	uint8_t *vlabel;
	int32_t *cls;         /* [batch] class labels for cross-entropy */
	struct progress_state ps;
	struct fd_table log;
};

static void say(const struct fd_run *r, enum fd_run_say kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(const struct fd_run *r, enum fd_run_say kind, const char *fmt, ...)
{
	if (!r->o.say)
		return;
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	r->o.say(r->o.say_arg, kind, buf);
}

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* A checkpoint with the metadata DESIGN.md names (lib/models/fd_model_file.h). */
static int save_model(struct fd_run *r, const char *path, int64_t epoch, struct fd_err *e)
{
	struct fd_model_meta meta = { .normalize = r->t.norm_name, .input_size = r->S, .config = r->cfg_json,
				      .epoch = epoch };
	memcpy(meta.mean, r->mean, sizeof meta.mean);
	memcpy(meta.std, r->std, sizeof meta.std);
	/* from device memory: the parameters visit the host for the write */
	if (fd_params_move(&r->m->p, &r->mc.c, FD_DEV_CPU, e) < 0)
		return -1;
	int rc = fd_model_file_save(r->m, path, &meta, e);
	if (fd_params_move(&r->m->p, &r->mc.c, r->o.dev, e) < 0)
		return -1;
	return rc;
}

/* n floats of the optimizer's device memory readable on the host: p itself
 * on the CPU, else a malloc'd copy in *own (free it). NULL on failure. */
static const float *moments_host(struct fd_run *r, const float *p, int64_t n, float **own, struct fd_err *e)
{
	*own = NULL;
	if (!p || r->o.dev == FD_DEV_CPU)
		return p;
	struct fd_ctx *c = &r->mc.c;
	if (!(*own = malloc((size_t)(n > 0 ? n : 1) * sizeof(float)))) {
		fd_err_set(e, "out of memory");
		return NULL;
	}
	if (fd_backend_of(c->dev)->copy_d2h(c, *own, p, (size_t)n * sizeof(float)) < 0) {
		fd_err_set(e, "optimizer state from %s: %s", fd_dev_name(c->dev), c->err.msg);
		return NULL;
	}
	return *own;
}

int fd_run_save(struct fd_run *r, struct fd_err *e)
{
	struct fd_stw w;
	fd_stw_init(&w);
	int64_t np = r->m->p.ntotal, no = r->opt.n, ns = r->ps.seen;
	if (r->t.num_classes > 2)
		ns = 0;
	/* from device memory: the parameters visit the host, the moments are copied */
	float *mown = NULL, *vown = NULL;
	const float *mh = NULL, *vh = NULL;
	int moved = fd_params_move(&r->m->p, &r->mc.c, FD_DEV_CPU, e);
	int rc = moved;
	if (rc == 0 && r->opt.m && !(mh = moments_host(r, r->opt.m, no, &mown, e)))
		rc = -1;
	if (rc == 0 && r->opt.v && !(vh = moments_host(r, r->opt.v, no, &vown, e)))
		rc = -1;
	if (rc == 0)
		rc = fd_stw_add(&w, "params", FD_DT_F32, 1, &np, r->m->p.data, e);
	if (rc == 0 && r->opt.m)
		rc = fd_stw_add(&w, "optim.m", FD_DT_F32, 1, &no, mh, e);
	if (rc == 0 && r->opt.v)
		rc = fd_stw_add(&w, "optim.v", FD_DT_F32, 1, &no, vh, e);
	if (rc == 0)
		rc = fd_stw_add(&w, "train.score", FD_DT_F64, 1, &ns, ns ? r->tscore : NULL, e);
	if (rc == 0)
		rc = fd_stw_add(&w, "train.label", FD_DT_U8, 1, &ns, ns ? r->tlabel : NULL, e);
	struct { const char *k; char v[64]; } kv[] = {
		{ "epoch", "" }, { "batch", "" }, { "ctx_step", "" }, { "optim_step", "" },
		{ "sched_lr", "" }, { "sched_epoch", "" }, { "best", "" }, { "best_epoch", "" },
		{ "bad", "" }, { "loss_sum", "" }, { "seen", "" }, { "secs", "" }, { "fold", "" },
		{ "threads", "" },
	};
	const struct progress_state *s = &r->ps;
	snprintf(kv[0].v, 64, "%lld", (long long)s->epoch);
	snprintf(kv[1].v, 64, "%lld", (long long)s->batch);
	snprintf(kv[2].v, 64, "%lld", (long long)s->ctx_step);
	snprintf(kv[3].v, 64, "%lld", (long long)s->opt_step);
	snprintf(kv[4].v, 64, "%.17g", s->sched_lr);
	snprintf(kv[5].v, 64, "%lld", (long long)s->sched_epoch);
	snprintf(kv[6].v, 64, "%.17g", s->best);
	snprintf(kv[7].v, 64, "%lld", (long long)s->best_epoch);
	snprintf(kv[8].v, 64, "%lld", (long long)s->bad);
	snprintf(kv[9].v, 64, "%.17g", s->loss_sum);
	snprintf(kv[10].v, 64, "%lld", (long long)s->seen);
	snprintf(kv[11].v, 64, "%.17g", s->secs);
	snprintf(kv[12].v, 64, "%d", r->fold);
	snprintf(kv[13].v, 64, "%d", r->threads);
	if (rc == 0)
		rc = fd_stw_meta(&w, "fd.kind", "train-state", e);
	for (size_t i = 0; rc == 0 && i < sizeof kv / sizeof kv[0]; i++) {
		char key[64];
		snprintf(key, sizeof key, "fd.%s", kv[i].k);
		rc = fd_stw_meta(&w, key, kv[i].v, e);
	}
	if (rc == 0)
		rc = fd_stw_meta(&w, "fd.config_base", r->cfg_base, e);
	if (rc == 0)
		rc = fd_stw_meta(&w, "fd.pack_tsv_sha256", r->tsv_sha, e);
	if (rc == 0)
		rc = fd_stw_meta(&w, "fd.arch", r->t.model, e);
	if (rc == 0)
		rc = fd_stw_write(&w, r->p_state, e);
	fd_stw_free(&w);
	free(mown);
	free(vown);
	if (moved == 0 && fd_params_move(&r->m->p, &r->mc.c, r->o.dev, e) < 0)
		rc = -1;
	return rc;
}

static int meta_i64(const struct fd_st *st, const char *key, int64_t *v, struct fd_err *e)
{
	const char *s = fd_st_meta(st, key);
	char *end;
	if (!s || !*s)
		return fd_err_set(e, "missing metadata '%s'", key);
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (*end || errno)
		return fd_err_set(e, "metadata '%s' is '%s'", key, s);
	*v = x;
	return 0;
}

static int meta_f64(const struct fd_st *st, const char *key, double *v, struct fd_err *e)
{
	const char *s = fd_st_meta(st, key);
	char *end;
	if (!s || !*s)
		return fd_err_set(e, "missing metadata '%s'", key);
	*v = strtod(s, &end);
	if (*end)
		return fd_err_set(e, "metadata '%s' is '%s'", key, s);
	return 0;
}

static const struct fd_st_tensor *want(const struct fd_st *st, const char *name, enum fd_dtype dt,
				       int64_t n, struct fd_err *e)
{
	const struct fd_st_tensor *t = fd_st_find(st, name);
	if (!t || t->dtype != dt || t->ndim != 1 || t->shape[0] != n) {
		fd_err_set(e, "tensor '%s' missing or not %s [%lld]", name, fd_dtype_name(dt), (long long)n);
		return NULL;
	}
	return t;
}

/* Every progress field of a state checked against this run's config and
 * pack, and against the others: a field that no run of this config could
 * have written is refused (a corrupt or edited state would otherwise resume
 * into nonsense, e.g. an epoch past the end written as "completed" with no
 * checkpoint). Invariants of fd_run_epoch / train_epoch: bad = epoch -
 * best_epoch (bad restarts at 0 on each improvement, best_epoch 0 = none
 * yet); one optimizer and one context step per trained batch (a batch of one
 * image is skipped); batch = batches done in epoch `epoch`, at most all of
 * them (a stop after the last batch, before validation); seen = the images
 * of those batches. */
static int check_progress(const struct fd_run *r, const struct progress_state *s, int64_t threads,
			  struct fd_err *e)
{
	int64_t B = r->t.batch, N = (int64_t)r->ntrain, nb = (N + B - 1) / B, last = N - (nb - 1) * B;
	int64_t per = nb - (last == 1); /* trained batches in a whole epoch */
	if (s->epoch < 0 || s->epoch > r->t.epochs)
		return fd_err_set(e, "fd.epoch is %lld, not in 0..%lld (the config's epochs; a run is not "
				     "shortened on --resume)", (long long)s->epoch, (long long)r->t.epochs);
	if (s->batch < 0 || s->batch > nb || (s->epoch == r->t.epochs && s->batch != 0))
		return fd_err_set(e, "fd.batch is %lld, not in 0..%lld (%lld training rows in batches of %lld%s)",
				  (long long)s->batch, (long long)(s->epoch == r->t.epochs ? 0 : nb), (long long)N,
				  (long long)B, s->epoch == r->t.epochs ? ", all epochs done" : "");
	int64_t seen = s->batch == nb ? N - (last == 1) : s->batch * B;
	if (s->seen != seen)
		return fd_err_set(e, "fd.seen is %lld, but %lld batches of %lld rows hold %lld", (long long)s->seen,
				  (long long)s->batch, (long long)B, (long long)seen);
	int64_t steps = s->epoch * per + (s->batch == nb ? per : s->batch);
	if (s->opt_step != steps)
		return fd_err_set(e, "fd.optim_step is %lld, but epoch %lld batch %lld means %lld steps",
				  (long long)s->opt_step, (long long)s->epoch, (long long)s->batch, (long long)steps);
	if (s->ctx_step != steps)
		return fd_err_set(e, "fd.ctx_step is %lld, but epoch %lld batch %lld means %lld steps",
				  (long long)s->ctx_step, (long long)s->epoch, (long long)s->batch, (long long)steps);
	if (s->best_epoch < 0 || s->best_epoch > s->epoch)
		return fd_err_set(e, "fd.best_epoch is %lld, not in 0..%lld (fd.epoch)", (long long)s->best_epoch,
				  (long long)s->epoch);
	if (s->bad != s->epoch - s->best_epoch || (r->t.patience > 0 && s->bad > r->t.patience))
		return fd_err_set(e, "fd.bad is %lld: not fd.epoch - fd.best_epoch (%lld)%s", (long long)s->bad,
				  (long long)(s->epoch - s->best_epoch),
				  r->t.patience > 0 ? " or more than the patience" : "");
	if (s->best_epoch == 0 ? !isnan(s->best) : !(s->best >= 0 && s->best <= 1))
		return fd_err_set(e, "fd.best is %g: %s", s->best,
				  s->best_epoch == 0 ? "not nan with no best epoch" : "not a metric in [0, 1]");
	double lr_hi = r->t.lr > r->t.eta_min ? r->t.lr : r->t.eta_min;
	if (!(s->sched_lr >= 0 && s->sched_lr <= lr_hi) || (!r->t.cosine && s->sched_lr != r->t.lr))
		return fd_err_set(e, "fd.sched_lr is %g, not in [0, %g]%s", s->sched_lr, lr_hi,
				  r->t.cosine ? "" : " (no scheduler: the config's lr)");
	if (s->sched_epoch != (r->t.cosine ? s->epoch : 0))
		return fd_err_set(e, "fd.sched_epoch is %lld, not %lld", (long long)s->sched_epoch,
				  (long long)(r->t.cosine ? s->epoch : 0));
	if (!(s->loss_sum >= 0 && s->loss_sum < INFINITY) || (s->seen == 0 && s->loss_sum != 0))
		return fd_err_set(e, "fd.loss_sum is %g (a finite sum of losses >= 0, 0 before the first batch)",
				  s->loss_sum);
	if (!(s->secs >= 0 && s->secs < INFINITY))
		return fd_err_set(e, "fd.secs is %g", s->secs);
	if (threads < 1 || threads > 1024)
		return fd_err_set(e, "fd.threads is %lld, not in 1..1024", (long long)threads);
	return 0;
}

/* A float32 state tensor (may be NULL): finite, and >= 0 when nonneg. */
static int check_floats(const char *name, const struct fd_st_tensor *t, int nonneg, struct fd_err *e)
{
	if (!t)
		return 0;
	const float *x = t->data;
	for (int64_t i = 0; i < t->shape[0]; i++)
		if (!isfinite(x[i]) || (nonneg && x[i] < 0))
			return fd_err_set(e, "%s[%lld] is %g (%s)", name, (long long)i, (double)x[i],
					  nonneg ? "finite and >= 0" : "finite");
	return 0;
}

/* Restore from RUNDIR/state.safetensors; checks it belongs to this run. */
static int load_state(struct fd_run *r, const char *path, struct fd_err *e)
{
	struct fd_st st;
	if (fd_st_open(&st, path, e) < 0)
		return -1;
	int rc = -1;
	struct progress_state *s = &r->ps;
	const char *kind = fd_st_meta(&st, "fd.kind"), *base = fd_st_meta(&st, "fd.config_base");
	const char *sha = fd_st_meta(&st, "fd.pack_tsv_sha256");
	int64_t fold = -1, threads = 0;
	if (!kind || strcmp(kind, "train-state") != 0) {
		fd_err_set(e, "not an fd-train state (fd.kind)");
		goto out;
	}
	if (!base || strcmp(base, r->cfg_base) != 0) {
		fd_err_set(e, "the run was made with another config (only 'epochs' may change on --resume); "
			      "see config.json there");
		goto out;
	}
	if (!sha || strcmp(sha, r->tsv_sha) != 0) {
		fd_err_set(e, "the run was made from another pack (PACK.tsv differs)");
		goto out;
	}
	if (meta_i64(&st, "fd.fold", &fold, e) < 0 || meta_i64(&st, "fd.threads", &threads, e) < 0)
		goto out;
	if (fold != r->fold) {
		fd_err_set(e, "the run was made with --fold %lld", (long long)fold);
		goto out;
	}
	if (threads != r->threads)
		say(r, FD_RUN_WARN, "the run was started with %lld threads, now %d: results will not be bit-identical "
				    "to an uninterrupted run", (long long)threads, r->threads);
	if (meta_i64(&st, "fd.epoch", &s->epoch, e) < 0 || meta_i64(&st, "fd.batch", &s->batch, e) < 0 ||
	    meta_i64(&st, "fd.ctx_step", &s->ctx_step, e) < 0 ||
	    meta_i64(&st, "fd.optim_step", &s->opt_step, e) < 0 ||
	    meta_f64(&st, "fd.sched_lr", &s->sched_lr, e) < 0 ||
	    meta_i64(&st, "fd.sched_epoch", &s->sched_epoch, e) < 0 || meta_f64(&st, "fd.best", &s->best, e) < 0 ||
	    meta_i64(&st, "fd.best_epoch", &s->best_epoch, e) < 0 || meta_i64(&st, "fd.bad", &s->bad, e) < 0 ||
	    meta_f64(&st, "fd.loss_sum", &s->loss_sum, e) < 0 || meta_i64(&st, "fd.seen", &s->seen, e) < 0 ||
	    meta_f64(&st, "fd.secs", &s->secs, e) < 0)
		goto out;
	if (check_progress(r, s, threads, e) < 0)
		goto out;
	int64_t ns = r->t.num_classes > 2 ? 0 : s->seen;
	const struct fd_st_tensor *p = want(&st, "params", FD_DT_F32, r->m->p.ntotal, e);
	const struct fd_st_tensor *tm = r->opt.m ? want(&st, "optim.m", FD_DT_F32, r->opt.n, e) : NULL;
	const struct fd_st_tensor *tv = r->opt.v ? want(&st, "optim.v", FD_DT_F32, r->opt.n, e) : NULL;
	const struct fd_st_tensor *ts = want(&st, "train.score", FD_DT_F64, ns, e);
	const struct fd_st_tensor *tl = want(&st, "train.label", FD_DT_U8, ns, e);
	if (!p || (r->opt.m && !tm) || (r->opt.v && !tv) || !ts || !tl)
		goto out;
	if (check_floats("optim.m", tm, 0, e) < 0 || check_floats("optim.v", tv, 1, e) < 0)
		goto out;
	for (int64_t i = 0; i < ns; i++) {
		double sc = ((const double *)ts->data)[i];
		uint8_t lb = ((const uint8_t *)tl->data)[i];
		if (!(sc >= 0 && sc <= 1) || lb > 1) {
			fd_err_set(e, "train.score[%lld] is %g, train.label %u (a probability and 0 or 1)", (long long)i,
				   sc, lb);
			goto out;
		}
	}
	/* to device memory: the parameters are filled and checked on the host */
	if (fd_params_move(&r->m->p, &r->mc.c, FD_DEV_CPU, e) < 0)
		goto out;
	memcpy(r->m->p.data, p->data, p->nbytes);
	if (fd_ckpt_check(&r->m->p, "params", e) < 0) /* the model is freed with r on this error */
		goto out;
	if (fd_params_move(&r->m->p, &r->mc.c, r->o.dev, e) < 0)
		goto out;
	if (r->o.dev == FD_DEV_CPU) {
		if (tm)
			memcpy(r->opt.m, tm->data, tm->nbytes);
		if (tv)
			memcpy(r->opt.v, tv->data, tv->nbytes);
	} else {
		struct fd_ctx *c = &r->mc.c;
		const struct fd_backend *be = fd_backend_of(c->dev);
		if ((tm && be->copy_h2d(c, r->opt.m, tm->data, tm->nbytes) < 0) ||
		    (tv && be->copy_h2d(c, r->opt.v, tv->data, tv->nbytes) < 0)) {
			fd_err_set(e, "optimizer state to %s: %s", fd_dev_name(c->dev), c->err.msg);
			goto out;
		}
	}
	if (ns) {
		memcpy(r->tscore, ts->data, ts->nbytes);
		memcpy(r->tlabel, tl->data, tl->nbytes);
	}
	r->opt.step = s->opt_step;
	r->sched.lr = s->sched_lr;
	r->sched.epoch = s->sched_epoch;
	r->mc.c.step = (uint64_t)s->ctx_step;
	rc = 0;
out:
	fd_st_close(&st);
	if (rc < 0)
		fd_err_ctx(e, "cannot resume from '%s'", path);
	return rc;
}

/* ---- log.tsv ---- */

static const char *const LOG_COLS[] = { "epoch", "train_loss", "train_auc", "val_loss", "val_auc", "val_acc",
					"lr", "seconds", "images_per_s" };
#define NLOG ((int)(sizeof LOG_COLS / sizeof LOG_COLS[0]))

static int log_init(struct fd_run *r, struct fd_err *e)
{
	fd_table_init(&r->log);
	const char *p = r->p_log;
	int rc = 0;
	if (r->ps.epoch > 0 && access(p, F_OK) == 0) {
		/* keep the rows of the saved epochs (a later row may exist when the
		 * run died between writing the log and the state) */
		struct fd_table old;
		fd_table_init(&old);
		rc = fd_table_read(&old, p, e);
		int ce = rc == 0 ? fd_table_need(&old, "epoch", e) : -1;
		rc = ce < 0 ? -1 : fd_table_copy_header(&r->log, &old, e);
		for (size_t i = 0; rc == 0 && i < old.nrow; i++)
			if (atoll(fd_table_get(&old, i, ce)) <= r->ps.epoch)
				rc = fd_table_copy_row(&r->log, &old, i, e);
		if (rc == 0 && (int64_t)r->log.nrow != r->ps.epoch)
			rc = fd_err_set(e, "'%s' has %zu epochs, the state %lld", p, r->log.nrow,
					(long long)r->ps.epoch);
		fd_table_free(&old);
	} else {
		for (int i = 0; rc == 0 && i < NLOG; i++)
			rc = fd_table_add_col(&r->log, LOG_COLS[i], e) < 0 ? -1 : 0;
	}
	return rc;
}

static void fmt_metric(char *buf, size_t n, double v)
{
	if (isnan(v))
		snprintf(buf, n, "NA");
	else
		snprintf(buf, n, "%.17g", v);
}

static int log_add(struct fd_run *r, int64_t epoch, double tl, double ta, double vl, double va, double vacc,
		   double lr, double secs, double ips, struct fd_err *e)
{
	size_t row = fd_table_add_row(&r->log);
	if (row == (size_t)-1)
		return fd_err_set(e, "out of memory");
	double v[] = { tl, ta, vl, va, vacc, lr };
	char buf[64];
	if (fd_table_setf(&r->log, row, 0, e, "%lld", (long long)epoch) < 0)
		return -1;
	for (int i = 0; i < 6; i++) {
		fmt_metric(buf, sizeof buf, v[i]);
		if (fd_table_set(&r->log, row, i + 1, buf, e) < 0)
			return -1;
	}
	if (fd_table_setf(&r->log, row, 7, e, "%.3f", secs) < 0 ||
	    fd_table_setf(&r->log, row, 8, e, "%.1f", ips) < 0)
		return -1;
	return fd_table_save(&r->log, r->p_log, e);
}

/* ---- the epoch ---- */

/* Per-row score (P(class 1)) and loss contributions from logits x [n, K]
 * (float32 values widened to double). */
static double row_score(const double *x, int K)
{
	if (K == 1)
		return 1.0 / (1.0 + exp(-x[0]));
	double mx = x[0];
	for (int k = 1; k < K; k++)
		mx = x[k] > mx ? x[k] : mx;
	double s = 0;
	for (int k = 0; k < K; k++)
		s += exp(x[k] - mx);
	return exp(x[1] - mx) / s;
}

static double row_ce(const double *x, int K, int y)
{
	double mx = x[0], s = 0;
	for (int k = 1; k < K; k++)
		mx = x[k] > mx ? x[k] : mx;
	for (int k = 0; k < K; k++)
		s += exp(x[k] - mx);
	return mx + log(s) - x[y];
}

static int argmax(const double *x, int K)
{
	int b = 0;
	for (int k = 1; k < K; k++)
		if (x[k] > x[b])
			b = k;
	return b;
}

/* AUC of binary scores, NAN when undefined (one class). */
static double auc_or_nan(const double *s, const uint8_t *l, size_t n)
{
	struct fd_err e;
	double a;
	e.msg[0] = '\0';
	if (n == 0 || fd_auc(s, l, n, &a, &e) != 0)
		return NAN;
	return a;
}

/* One training epoch from r->ps (possibly mid-epoch): 0 when done,
 * FD_RUN_STOPPED / FD_RUN_INTERRUPTED with the state saved, -1 on error.
 * *tsecs: seconds spent in this call. */
static int train_epoch(struct fd_run *r, double *tsecs, struct fd_err *e)
{
	int K = (int)r->t.num_classes;
	int64_t ep = r->ps.epoch;
	struct fd_ctx *c = &r->mc.c;
	if (fd_loader_begin(r->L, FD_SET_TRAIN, (int)ep, 1, e) < 0)
		return -1;
	struct fd_progress pg;
	char label[64];
	snprintf(label, sizeof label, "epoch %lld/%lld", (long long)ep + 1, (long long)r->t.epochs);
	fd_progress_init(&pg, r->o.progress, label, r->ntrain);
	const struct fd_batch *b;
	int64_t skip = r->ps.batch, nb = 0;
	double t0 = fd_now();
	int rc;
	c->training = 1;
	c->grad_enabled = 1;
	while ((rc = fd_loader_next(r->L, &b, e)) == 1) {
		if (nb++ < skip) {
			fd_progress_add(&pg, (uint64_t)b->n);
			continue;
		}
		if (r->o.stop && *r->o.stop) {
			r->ps.secs += fd_now() - t0;
			return fd_run_save(r, e) < 0 ? -1 : FD_RUN_INTERRUPTED;
		}
		if (b->n == 1) {
			/* BatchNorm cannot train on one sample (torch raises); skip it */
			say(r, FD_RUN_INFO, "epoch %lld: skipping the last training batch (1 image)", (long long)ep + 1);
			r->ps.batch++;
			continue;
		}
		fd_ctx_step(c);
		fd_params_zero_grad(&r->m->p);
		int64_t xs[4] = { b->n, 3, r->S, r->S }, ys[2] = { b->n, 1 };
		/* the batch goes to the device (copy_h2d) when training there */
		struct fd_tensor *x = batch_in(c, b->x, 4, xs);
		struct fd_tensor *logits = fd_keep_data(fd_model_forward(r->m, c, x)), *loss;
		if (K == 1) {
			loss = fd_bce_with_logits(c, logits, batch_in(c, b->y, 2, ys));
		} else {
			for (int i = 0; i < b->n; i++)
				r->cls[i] = (int32_t)b->y[i];
			loss = fd_cross_entropy(c, logits, r->cls);
		}
		if (!loss)
			return fd_err_set(e, "epoch %lld step %lld: %s", (long long)ep + 1, (long long)r->ps.batch + 1,
					  c->err.msg);
		const float *lh = host_view(c, loss);
		if (!lh)
			return fd_err_set(e, "epoch %lld step %lld: %s", (long long)ep + 1, (long long)r->ps.batch + 1,
					  c->err.msg);
		double lv = lh[0];
		if (!isfinite(lv)) {
			if (ep == 0)
				return fd_err_set(e, "epoch 1 step %lld: loss is %s: stopping (no epoch was completed: "
						     "'%s' holds no checkpoint)",
						  (long long)r->ps.batch + 1, isnan(lv) ? "nan" : "inf", r->dir);
			return fd_err_set(e, "epoch %lld step %lld: loss is %s: stopping (the state of epoch %lld is kept in '%s')",
					  (long long)ep + 1, (long long)r->ps.batch + 1, isnan(lv) ? "nan" : "inf",
					  (long long)ep, r->dir);
		}
		/* the activations' memory goes to the gradient pool during the
		 * backward (the step reads back only the loss, before it, and the
		 * logits, kept) */
		int reuse = c->reuse_activations;
		c->reuse_activations = 1;
		int brc = fd_backward(c, loss, NULL);
		c->reuse_activations = reuse;
		if (brc < 0)
			return fd_err_set(e, "epoch %lld step %lld: %s", (long long)ep + 1, (long long)r->ps.batch + 1,
					  c->err.msg);
		if (fd_optim_step(&r->opt, &r->m->p, e) < 0)
			return -1;
		const float *lg = K <= 2 ? host_view(c, logits) : NULL;
		if (K <= 2 && !lg)
			return fd_err_set(e, "epoch %lld step %lld: %s", (long long)ep + 1, (long long)r->ps.batch + 1,
					  c->err.msg);
		if (K <= 2)
			for (int i = 0; i < b->n; i++) {
				double xi[2];
				for (int j = 0; j < K; j++)
					xi[j] = lg[(size_t)i * K + j];
				r->tscore[r->ps.seen + i] = row_score(xi, K);
				r->tlabel[r->ps.seen + i] = (uint8_t)b->y[i];
			}
		r->ps.loss_sum += lv * b->n;
		r->ps.seen += b->n;
		r->ps.batch++;
		r->ps.ctx_step = (int64_t)c->step;
		r->ps.opt_step = r->opt.step;
		snprintf(pg.extra, sizeof pg.extra, "step %lld loss %.4f", (long long)r->ps.batch,
			 r->ps.loss_sum / (double)r->ps.seen);
		fd_progress_add(&pg, (uint64_t)b->n);
		if (r->stop_after > 0 && --r->stop_after == 0) {
			r->ps.secs += fd_now() - t0;
			return fd_run_save(r, e) < 0 ? -1 : FD_RUN_STOPPED;
		}
	}
	if (rc < 0)
		return -1;
	fd_progress_end(&pg);
	*tsecs = fd_now() - t0;
	r->ps.secs += *tsecs;
	return 0;
}

/* Scores the validation rows: loss, AUC (NAN when undefined or K > 2),
 * accuracy. 0, FD_RUN_INTERRUPTED (state saved) or -1. */
static int validate(struct fd_run *r, double *vloss, double *vauc, double *vacc, struct fd_err *e)
{
	int K = (int)r->t.num_classes;
	size_t k = r->nval;
	int rc = fd_score_rows(r->m, &r->mc.c, r->L, FD_SET_VAL, (int)r->ps.epoch, r->vlogit, r->vlabel, NULL,
			       r->o.stop, e);
	/* the validation steps must not move the dropout streams of training */
	r->mc.c.step = (uint64_t)r->ps.ctx_step;
	if (rc < 0)
		return fd_err_ctx(e, "validation");
	if (rc == 1)
		return fd_run_save(r, e) < 0 ? -1 : FD_RUN_INTERRUPTED;
	if (K <= 2)
		for (size_t i = 0; i < k; i++)
			r->vscore[i] = row_score(r->vlogit + i * K, K);
	double loss = 0;
	size_t correct = 0;
	if (K == 1) {
		if (fd_bce_logits(r->vlogit, r->vlabel, k, &loss, e) < 0)
			return -1;
		for (size_t i = 0; i < k; i++)
			correct += (r->vscore[i] >= 0.5) == (r->vlabel[i] == 1);
	} else {
		for (size_t i = 0; i < k; i++) {
			loss += row_ce(r->vlogit + i * K, K, r->vlabel[i]);
			correct += argmax(r->vlogit + i * K, K) == r->vlabel[i];
		}
		loss /= (double)k;
	}
	*vloss = loss;
	*vacc = (double)correct / (double)k;
	*vauc = K <= 2 ? auc_or_nan(r->vscore, r->vlabel, k) : NAN;
	return 0;
}

/* ---- run.json ---- */

/* What `init` did: {"from": "scratch"} or {"from": "imagenet" | "file",
 * "file", "sha256", "loaded": [views], "reinitialised": [head views]}. */
static json_t *init_json(const struct fd_run *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "from", json_string(!r->init_path ? "scratch" : r->t.imagenet ? "imagenet" : "file"));
	if (!r->init_path)
		return o;
	json_t *ld = json_array(), *ri = json_array();
	for (int i = 0; i < r->m->p.n; i++) {
		const char *n = r->m->p.v[i].name;
		int head = 0;
		for (int j = 0; j < r->init_heads; j++)
			head |= !strcmp(n, r->m->arch->head[j]);
		json_array_append_new(head ? ri : ld, json_string(n));
	}
	json_object_set_new(o, "file", json_string(r->init_path));
	json_object_set_new(o, "sha256", json_string(r->init_sha));
	json_object_set_new(o, "loaded", ld);
	json_object_set_new(o, "reinitialised", ri);
	return o;
}

/* Where the run's last invocation computed (doc/train.md, run.json): the
 * CPU model (/proc/cpuinfo's first "model name"), the CPUs online, oneDNN's
 * version and the instruction set its kernels dispatched on (an AVX2 and an
 * AVX-512 machine run different kernels: their runs agree within float32
 * rounding, not bit for bit, and neither does a resume moved between them),
 * and the share of the forwards' multiply-adds that Winograd plans ran (0
 * unless winograd is set and the CPU has it). */
static json_t *machine_json(const struct fd_run *r)
{
	char cpu[256] = "unknown", line[512], ver[32];
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof line, f)) {
		char *v = strchr(line, ':');
		if (strncmp(line, "model name", 10) || !v)
			continue;
		v += strspn(v + 1, " \t") + 1;
		v[strcspn(v, "\n")] = 0;
		snprintf(cpu, sizeof cpu, "%s", v);
		break;
	}
	if (f)
		fclose(f);
	json_t *o = json_object(), *js = json_string(cpu);
	const char *isa = fd_backend_cpu_describe(ver, sizeof ver);
	const struct fd_ctx *c = &r->mc.c;
	json_object_set_new(o, "cpu", js ? js : json_string("unknown")); /* NULL: not UTF-8 */
	json_object_set_new(o, "cpus_online", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_set_new(o, "onednn", json_string(ver));
	json_object_set_new(o, "onednn_isa", json_string(isa));
	json_object_set_new(o, "winograd_share", json_real(c->macs ? (double)c->wino_macs / (double)c->macs : 0.0));
	return o;
}

static int write_run_json(struct fd_run *r, const char *stopped, double wall, struct fd_err *e)
{
	json_t *o = json_object(), *cfg = json_loads(r->cfg_json, 0, NULL);
	double total = 0;
	int ce = fd_table_col(&r->log, "seconds");
	for (size_t i = 0; ce >= 0 && i < r->log.nrow; i++)
		total += atof(fd_table_get(&r->log, i, ce));
	json_object_set_new(o, "tool", json_string("fd-train"));
	json_object_set_new(o, "version", json_string(FD_VERSION));
	json_object_set_new(o, "cmdline", json_string(r->o.cmdline ? r->o.cmdline : ""));
	json_object_set_new(o, "pack", json_string(r->pack));
	json_object_set_new(o, "pack_tsv_sha256", json_string(r->tsv_sha));
	json_object_set_new(o, "pack_source_sha256", r->src_sha ? json_string(r->src_sha) : json_null());
	json_object_set_new(o, "input_size", json_integer(r->S));
	json_object_set_new(o, "fold", json_integer(r->fold));
	json_object_set_new(o, "threads", json_integer(r->threads));
	json_object_set_new(o, "loader_threads", json_integer(r->t.workers));
	json_object_set_new(o, "machine", machine_json(r));
	json_object_set_new(o, "config", cfg ? cfg : json_null());
	json_object_set_new(o, "arch", json_string(r->t.model));
	json_object_set_new(o, "params", json_integer(fd_model_params(r->m)));
	json_object_set_new(o, "init", init_json(r));
	json_object_set_new(o, "rows_train", json_integer((json_int_t)r->ntrain));
	json_object_set_new(o, "rows_val", json_integer((json_int_t)r->nval));
	/* held-out sources: out of the training rows and of the validation rows
	 * (loss, AUC, early stopping, best checkpoint); fd-eval scores them */
	json_t *ex = json_array();
	for (int i = 0; i < r->t.nexclude; i++)
		json_array_append_new(ex, json_string(r->t.exclude[i]));
	json_object_set_new(o, "exclude_sources", ex);
	json_object_set_new(o, "val_excludes_sources", json_boolean(1));
	json_t *mean = json_array(), *std = json_array();
	for (int i = 0; i < 3; i++) {
		json_array_append_new(mean, json_real(r->mean[i]));
		json_array_append_new(std, json_real(r->std[i]));
	}
	json_object_set_new(o, "norm_mean", mean);
	json_object_set_new(o, "norm_std", std);
	json_object_set_new(o, "epochs_run", json_integer(r->ps.epoch));
	json_object_set_new(o, "best_epoch", json_integer(r->ps.best_epoch));
	json_object_set_new(o, "best_metric", isnan(r->ps.best) ? json_null() : json_real(r->ps.best));
	json_object_set_new(o, "best_metric_name", json_string(r->t.num_classes > 2 ? "val_acc" : "val_auc"));
	json_object_set_new(o, "stopped", json_string(stopped));
	json_t *tm = json_object();
	json_object_set_new(tm, "epochs_seconds", json_real(total));
	json_object_set_new(tm, "last_invocation_seconds", json_real(wall));
	json_object_set_new(o, "timings", tm);
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
	json_decref(o);
	if (!s)
		return fd_err_set(e, "out of memory");
	struct fd_out out;
	int rc = fd_out_open(&out, r->p_run, e);
	if (rc == 0) {
		fputs(s, out.f);
		fputc('\n', out.f);
		rc = fd_out_commit(&out, e);
	}
	free(s);
	return rc;
}

/* ---- the run's life ---- */

static int nprocs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

/* The config: files, then --set; cfg_json (resolved) and cfg_base (epochs
 * zeroed: what a resume must match). */
static int resolve_config(struct fd_run *r, const struct fd_run_opts *o, struct fd_err *e)
{
	if (fd_config_init(&r->cfg, e) < 0)
		return -1;
	for (int i = 0; i < o->nconfigs; i++)
		if (fd_config_load(&r->cfg, o->configs[i], e) < 0)
			return -1;
	for (int i = 0; i < o->nsets; i++)
		if (fd_config_set(&r->cfg, o->sets[i], e) < 0)
			return -1;
	if (read_cfg(&r->t, &r->cfg, e) < 0)
		return -1;
	r->threads = o->threads ? o->threads : r->t.threads ? (int)r->t.threads : nprocs();
	if (!(r->cfg_json = fd_config_dump(&r->cfg, e)) || fd_config_set(&r->cfg, "epochs=0", e) < 0 ||
	    !(r->cfg_base = fd_config_dump(&r->cfg, e)))
		return -1;
	char ep[32];
	snprintf(ep, sizeof ep, "epochs=%lld", (long long)r->t.epochs);
	if (fd_config_set(&r->cfg, ep, e) < 0)
		return -1;
	/* read_cfg borrowed strings from the config: re-read them from the restored tree */
	return read_cfg(&r->t, &r->cfg, e);
}

/* Set s must hold at least two classes: a run on one class learns nothing
 * and its validation AUC is undefined, so it is refused before RUNDIR
 * exists, with the count per label (what exclude_sources left, if any). */
static int need_classes(const struct fd_run *r, enum fd_set s, const char *what, struct fd_err *e)
{
	const struct fd_table *t = fd_loader_table(r->L);
	int cl = fd_table_need(t, "label", e);
	if (cl < 0)
		return -1;
	size_t n = fd_loader_count(r->L, s), cnt[256] = { 0 };
	const uint32_t *rows = fd_loader_rows(r->L, s);
	int distinct = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned l = (unsigned)atoi(fd_table_get(t, rows[i], cl)) & 255u;
		distinct += cnt[l]++ == 0;
	}
	if (distinct >= 2)
		return 0;
	char ex[512] = "";
	size_t k = 0;
	for (int i = 0; i < r->t.nexclude && k < sizeof ex; i++)
		k += (size_t)snprintf(ex + k, sizeof ex - k, "%s'%s'", i ? ", " : " once exclude_sources ",
				      r->t.exclude[i]);
	if (k < sizeof ex && r->t.nexclude)
		snprintf(ex + k, sizeof ex - k, " %s left out", r->t.nexclude > 1 ? "are" : "is");
	if (r->t.num_classes > 2)
		return fd_err_set(e, "'%s': fold %d: the %s set has one class only (%zu rows)%s: a classifier "
				     "needs two or more", r->pack, r->fold, what, n, ex);
	return fd_err_set(e, "'%s': fold %d: the %s set has one class only (%zu real, %zu fake)%s: "
			     "a classifier needs both", r->pack, r->fold, what, cnt[0], n - cnt[0], ex);
}

/* The data: every row check happens here, before RUNDIR exists. */
static int open_data(struct fd_run *r, struct fd_err *e)
{
	struct fd_loader_opts lo = {
		.fold = r->fold, .exclude = r->t.exclude, .nexclude = r->t.nexclude, .batch = (int)r->t.batch,
		.threads = (int)r->t.workers, .seed = (uint64_t)r->t.seed, .aug = r->t.aug, .norm = r->t.norm,
		.max_label = r->t.num_classes > 2 ? (int)r->t.num_classes - 1 : 1,
	};
	if (fd_loader_open(&r->L, r->pack, &lo, e) < 0)
		return -1;
	r->S = fd_loader_size(r->L);
	r->ntrain = fd_loader_count(r->L, FD_SET_TRAIN);
	r->nval = fd_loader_count(r->L, FD_SET_VAL);
	if (need_classes(r, FD_SET_TRAIN, "training", e) < 0 || need_classes(r, FD_SET_VAL, "validation", e) < 0)
		return -1;
	fd_loader_norm(r->L, r->mean, r->std);
	/* the pack the loader opened: its sidecar and metadata, not a second open */
	const struct fd_pack *pk = fd_loader_pack(r->L);
	if (fd_sha256_file(pk->tsv, r->tsv_sha, e) < 0)
		return -1;
	const char *s = fd_st_meta(&pk->st, "fd.source_sha256");
	r->src_sha = s ? strdup(s) : NULL;
	if (s && !r->src_sha)
		return fd_err_set(e, "out of memory");
	return 0;
}

/* init "imagenet": the architecture's torchvision file in the first of
 * o.weights_dirs that has it (malloc'ed path); else an error saying which
 * file, where it was looked for and how to get it. */
static char *imagenet_file(const struct fd_run *r, struct fd_err *e)
{
	const char *name = fd_model_arch_find(r->t.model)->imagenet;
	char tried[2048] = "";
	size_t k = 0;
	for (int i = 0; i < r->o.nweights_dirs; i++) {
		char *p = path_in(r->o.weights_dirs[i], name);
		struct stat st;
		if (!p) {
			fd_err_set(e, "out of memory");
			return NULL;
		}
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			return p;
		if (k < sizeof tried)
			k += (size_t)snprintf(tried + k, sizeof tried - k, "%s'%s'", i ? ", " : "", r->o.weights_dirs[i]);
		free(p);
	}
	fd_err_set(e, "%s: init 'imagenet': %s's ImageNet weights '%s' are not in %s: run 'make weights' "
		   "(it downloads " FD_IMAGENET_URL "%s and checks its SHA-256), or place that file in '%s' "
		   "(or in $FD_WEIGHTS_DIR), or set init to \"scratch\"",
		   fd_config_where(&r->cfg, "init"), r->t.model, name, k ? tried : "no folder (none was given)", name,
		   r->o.nweights_dirs ? r->o.weights_dirs[0] : "models/torchvision");
	return NULL;
}

/* The weights `init` names: load them (fd_model_load: a head of another
 * size keeps its torchvision initialisation, seeded by the run's seed), hash
 * the file for run.json and say what was loaded and what re-initialised.
 * For "imagenet" the file's SHA-256 must start with the hex digits of
 * torchvision's file name (make weights checks the whole hash). */
static int load_init(struct fd_run *r, struct fd_err *e)
{
	if (fd_sha256_file(r->init_path, r->init_sha, e) < 0)
		return -1;
	if (r->t.imagenet) {
		const char *dash = strrchr(r->m->arch->imagenet, '-');
		size_t n = strcspn(dash + 1, ".");
		if (strncmp(r->init_sha, dash + 1, n))
			return fd_err_set(e, "init 'imagenet': '%s' has SHA-256 %s, which does not start with %.*s as "
					  "torchvision's file does: the file is damaged or another one (make weights "
					  "downloads and checks it)", r->init_path, r->init_sha, (int)n, dash + 1);
	}
	char note[1024];
	if (fd_model_load(r->m, r->init_path, note, sizeof note, e) < 0)
		return -1;
	char heads[300] = "";
	size_t k = 0;
	r->init_heads = 0;
	for (int i = 0; *note && r->m->arch->head[i] && k < sizeof heads; i++, r->init_heads++)
		k += (size_t)snprintf(heads + k, sizeof heads - k, "%s%s", i ? ", " : "", r->m->arch->head[i]);
	if (r->init_heads)
		say(r, FD_RUN_INFO, "init: backbone from '%s' (sha256 %.16s...), head %s re-initialised as torchvision "
		    "does (seed %lld): %s", r->init_path, r->init_sha, heads, (long long)r->t.seed, note);
	else
		say(r, FD_RUN_INFO, "init: every weight from '%s' (sha256 %.16s...), head included", r->init_path,
		    r->init_sha);
	return 0;
}

/* The model, optimizer, schedule, context and buffers. */
static int open_model(struct fd_run *r, struct fd_err *e)
{
	if (fd_model_new(r->t.model, (int)r->t.num_classes, (uint64_t)r->t.seed, &r->m, e) < 0)
		return -1;
	if (r->t.init && load_init(r, e) < 0)
		return -1;
	if (r->t.no_decay)
		fd_params_group_vectors(&r->m->p, 1);
	/* the context first: parameters (and so the optimizer's moments) live
	 * on its device */
	if (fd_model_ctx_init(&r->mc, r->o.dev, r->threads, (uint64_t)r->t.seed, e) < 0)
		return -1;
	/* every step reuses the first one's pages (doc/nn.md "Memory"); where
	 * the address range cannot be had the arena grows as before */
	(void)fd_ctx_reserve(&r->mc.c);
	if (fd_ctx_set_precision(&r->mc.c, r->t.precision, e) < 0)
		return fd_err_ctx(e, "config 'precision'");
	r->mc.c.winograd = r->t.winograd;
	if (fd_params_move(&r->m->p, &r->mc.c, r->o.dev, e) < 0)
		return -1;
	if (r->t.opt == FD_OPT_ADAMW
		    ? fd_optim_adamw(&r->opt, &r->m->p, r->t.lr, r->t.beta[0], r->t.beta[1], r->t.eps, r->t.wd, e)
		    : fd_optim_sgd(&r->opt, &r->m->p, r->t.lr, r->t.momentum, 0, r->t.wd, r->t.nesterov, e))
		return -1;
	if (r->t.no_decay)
		r->opt.weight_decay[1] = 0;
	r->opt.threads = r->threads;
	if (r->t.cosine) {
		if (fd_sched_cosine(&r->sched, r->t.lr, r->t.T_max, r->t.eta_min, r->t.warmup, e) < 0)
			return -1;
	} else {
		memset(&r->sched, 0, sizeof r->sched);
		r->sched.lr = r->sched.base_lr = r->t.lr;
	}
	int K = (int)r->t.num_classes;
	r->tscore = calloc(r->ntrain + 1, sizeof *r->tscore);
	r->tlabel = calloc(r->ntrain + 1, 1);
	r->vlogit = calloc((r->nval + 1) * (size_t)K, sizeof *r->vlogit);
	r->vscore = calloc(r->nval + 1, sizeof *r->vscore);
	r->vlabel = calloc(r->nval + 1, 1);
	r->cls = calloc((size_t)r->t.batch, sizeof *r->cls);
	if (!r->tscore || !r->tlabel || !r->vlogit || !r->vscore || !r->vlabel || !r->cls)
		return fd_err_set(e, "out of memory");
	r->ps.best = NAN;
	r->ps.sched_lr = r->sched.lr;
	return 0;
}

/* 1 when name is something fd-train or the pipelines' fd-eval put in a run
 * directory (or a temporary or output lock of one). */
static int run_artifact(const char *name)
{
	size_t n = strlen(name);
	return !strcmp(name, "run.json") || !strcmp(name, "log.tsv") || !strcmp(name, "config.json") ||
	       (n > 12 && !strcmp(name + n - 12, ".safetensors")) || (name[0] == '.' && strstr(name, ".tmp.")) ||
	       (n > 5 && !strcmp(name + n - 5, ".lock")) ||
	       ((!strncmp(name, "preds-", 6) || !strncmp(name, "metrics-", 8)) && n > 4 &&
		!strcmp(name + n - 4, ".tsv"));
}

int fd_run_check_dir(const char *dir, int resume, struct fd_err *e)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return fd_err_set(e, "-o '%s': not a directory", dir);
	DIR *d = opendir(dir);
	if (!d)
		return fd_err_sys(e, errno, "cannot read '%s'", dir);
	char first[256] = "", kept[256] = "";
	int state = 0, done = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (!run_artifact(n)) {
			snprintf(first, sizeof first, "%s", n);
			break;
		}
		if (!strcmp(n, "state.safetensors"))
			state = 1;
		else if (!strcmp(n, "run.json")) /* checkpoints without state: killed mid-save */
			done = 1, snprintf(kept, sizeof kept, "%s", n);
		if (!kept[0])
			snprintf(kept, sizeof kept, "%s", n);
	}
	closedir(d);
	if (first[0])
		return fd_err_set(e, "-o '%s' holds '%s', which is not part of a run: give a new or empty directory",
				  dir, first);
	if (kept[0] && !resume)
		return fd_err_set(e, "-o '%s' holds a run already ('%s'; use --resume to continue it, or another -o)",
				  dir, kept);
	if (resume && !state && done)
		return fd_err_set(e, "-o '%s' holds a run ('%s') but not its state.safetensors: it cannot be "
				     "resumed, and starting afresh would overwrite it (use another -o)", dir, kept);
	return 0;
}

int fd_run_open(struct fd_run **out, const struct fd_run_opts *o, struct fd_err *e)
{
	*out = NULL;
	struct fd_run *r = calloc(1, sizeof *r);
	if (!r)
		return fd_err_set(e, "out of memory");
	r->wall0 = fd_now();
	r->o = *o;
	r->dir = o->dir;
	r->pack = o->pack;
	r->fold = o->fold;
	r->stop_after = o->stop_after;
	fd_table_init(&r->log);
	r->p_state = path_in(o->dir, "state.safetensors");
	r->p_log = path_in(o->dir, "log.tsv");
	r->p_run = path_in(o->dir, "run.json");
	r->p_config = path_in(o->dir, "config.json");
	r->p_best = path_in(o->dir, "best.safetensors");
	r->p_last = path_in(o->dir, "last.safetensors");
	int rc = !r->p_state || !r->p_log || !r->p_run || !r->p_config || !r->p_best || !r->p_last
			 ? fd_err_set(e, "out of memory")
			 : 0;
	if (rc == 0)
		rc = resolve_config(r, o, e);
	/* the init file first: a missing download fails before the pack is read */
	if (rc == 0 && r->t.init) {
		e->msg[0] = '\0';
		r->init_path = r->t.imagenet ? imagenet_file(r, e) : strdup(r->t.init);
		if (!r->init_path)
			rc = e->msg[0] ? -1 : fd_err_set(e, "out of memory");
	}
	if (rc == 0)
		rc = open_data(r, e);
	if (rc == 0)
		rc = open_model(r, e);
	if (rc < 0) {
		fd_run_close(r);
		return -1;
	}
	*out = r;
	return 0;
}

int fd_run_start(struct fd_run *r, struct fd_err *e)
{
	int have_state = access(r->p_state, F_OK) == 0;
	if (have_state && !r->o.resume)
		return fd_err_set(e, "'%s' holds a run already (use --resume to continue it, or another -o)", r->dir);
	if (r->o.resume && have_state) {
		if (load_state(r, r->p_state, e) < 0)
			return -1;
		if (r->ps.epoch >= r->t.epochs && access(r->p_run, F_OK) == 0) {
			say(r, FD_RUN_INFO, "'%s' is complete (%lld epochs)", r->dir, (long long)r->ps.epoch);
			return FD_RUN_COMPLETE;
		}
		say(r, FD_RUN_INFO, "resuming '%s' at epoch %lld, batch %lld", r->dir, (long long)r->ps.epoch + 1,
		    (long long)r->ps.batch);
	} else if (r->o.resume) {
		say(r, FD_RUN_INFO, "nothing to resume in '%s': starting afresh", r->dir);
	}
	if (fd_mkdir_p(r->dir, e) < 0)
		return -1;
	/* a run continued past its end is no longer complete */
	if (unlink(r->p_run) < 0 && errno != ENOENT)
		return fd_err_sys(e, errno, "cannot remove '%s'", r->p_run);
	if (log_init(r, e) < 0)
		return -1;
	struct fd_out out;
	if (fd_out_open(&out, r->p_config, e) < 0)
		return -1;
	fprintf(out.f, "%s\n", r->cfg_json);
	if (fd_out_commit(&out, e) < 0)
		return -1;
	say(r, FD_RUN_INFO, "%s (%lld parameters), %zu training and %zu validation images at %d px, %d threads",
	    r->t.model, (long long)fd_model_params(r->m), r->ntrain, r->nval, r->S, r->threads);
	for (int i = 0; i < r->t.nexclude; i++)
		say(r, FD_RUN_INFO, "held out: source '%s' is in neither training nor validation (score it with "
				    "fd-eval --only source=%s)", r->t.exclude[i], r->t.exclude[i]);
	return FD_RUN_MORE;
}

int fd_run_epoch(struct fd_run *r, struct fd_err *e)
{
	int K = (int)r->t.num_classes;
	if (r->ps.epoch >= r->t.epochs || (r->t.patience > 0 && r->ps.bad >= r->t.patience)) {
		const char *stopped = "completed";
		if (r->t.patience > 0 && r->ps.bad >= r->t.patience && r->ps.epoch < r->t.epochs) {
			stopped = "early_stopping";
			say(r, FD_RUN_INFO, "early stopping: no improvement for %lld epochs (best epoch %lld)",
			    (long long)r->ps.bad, (long long)r->ps.best_epoch);
		}
		return write_run_json(r, stopped, fd_now() - r->wall0, e) < 0 ? -1 : FD_RUN_DONE;
	}
	double lr = r->sched.lr, tsecs = 0, vloss = NAN, vauc = NAN, vacc = NAN;
	r->opt.lr = lr;
	int rc = train_epoch(r, &tsecs, e);
	if (rc != 0)
		return rc;
	double v0 = fd_now();
	rc = validate(r, &vloss, &vauc, &vacc, e);
	if (rc != 0)
		return rc;
	double tloss = r->ps.seen ? r->ps.loss_sum / (double)r->ps.seen : NAN;
	double tauc = K <= 2 ? auc_or_nan(r->tscore, r->tlabel, (size_t)r->ps.seen) : NAN;
	/* training images per second of training time (over every invocation
	 * that worked on this epoch); seconds include validation */
	double ips = r->ps.secs > 0 ? (double)r->ps.seen / r->ps.secs : 0;
	double secs = r->ps.secs + (fd_now() - v0);
	int64_t epoch = r->ps.epoch + 1;
	double metric = K > 2 ? vacc : vauc;
	int improved = !isnan(metric) && (isnan(r->ps.best) || metric > r->ps.best);
	if (r->t.cosine)
		fd_sched_step(&r->sched);
	r->ps.epoch = epoch;
	r->ps.batch = 0;
	r->ps.loss_sum = 0;
	r->ps.seen = 0;
	r->ps.secs = 0;
	r->ps.sched_lr = r->sched.lr;
	r->ps.sched_epoch = r->sched.epoch;
	if (improved) {
		r->ps.best = metric;
		r->ps.best_epoch = epoch;
		r->ps.bad = 0;
	} else {
		r->ps.bad++;
	}
	/* order: log, best, last, state. A death in between leaves the
	 * previous state, and --resume redoes this epoch bit for bit. */
	if (log_add(r, epoch, tloss, tauc, vloss, vauc, vacc, lr, secs, ips, e) < 0 ||
	    ((improved || epoch == 1) && save_model(r, r->p_best, epoch, e) < 0) ||
	    save_model(r, r->p_last, epoch, e) < 0 || fd_run_save(r, e) < 0)
		return -1;
	say(r, FD_RUN_INFO, "epoch %lld: train loss %.4f auc %.4f, val loss %.4f auc %.4f acc %.4f, lr %.3g, %.1f s, %.1f img/s",
	    (long long)epoch, tloss, tauc, vloss, vauc, vacc, lr, secs, ips);
	return FD_RUN_MORE;
}

void fd_run_position(const struct fd_run *r, int64_t *epoch, int64_t *batch)
{
	*epoch = r->ps.epoch;
	*batch = r->ps.batch;
}

void fd_run_close(struct fd_run *r)
{
	if (!r)
		return;
	fd_loader_close(r->L);
	fd_model_free(r->m);
	free(r->init_path);
	fd_optim_free(&r->opt);
	fd_model_ctx_free(&r->mc);
	fd_table_free(&r->log);
	fd_config_free(&r->cfg);
	free(r->cfg_json);
	free(r->cfg_base);
	free(r->src_sha);
	free(r->p_state);
	free(r->p_log);
	free(r->p_run);
	free(r->p_config);
	free(r->p_best);
	free(r->p_last);
	free(r->tscore);
	free(r->tlabel);
	free(r->vlogit);
	free(r->vscore);
	free(r->vlabel);
	free(r->cls);
	free(r);
}

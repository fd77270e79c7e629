/* fd-train: train one model on one fold of a pack (lib/data/fd_loader.h feeds
 * it, lib/models the model, lib/nn the optimizer), with per-epoch checkpoints,
 * resumable state and a log. Notes: doc/train.md. */
#include "cli.h"
#include "core/fd_config.h"
#include "core/fd_out.h"
#include "core/fd_progress.h"
#include "core/fd_sha256.h"
#include "core/fd_table.h"
#include "core/fd_version.h"
#include "data/fd_loader.h"
#include "eval/fd_metrics.h"
#include "io/fd_safetensors.h"
#include "models/fd_model.h"
#include "nn/fd_dnnl.h"
#include "nn/loss.h"
#include "nn/optim.h"

#include <errno.h>
#include <jansson.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char SYNOPSIS[] = "fd-train --pack PACK --fold K --config FILE... [--set KEY=VAL]... [--device DEV] -o RUNDIR";

static const char HELP[] =
	"Train one model on one fold of a pack (fd-pack's PACK.safetensors + PACK.tsv):\n"
	"training rows are those whose fold is a number other than K, validation rows\n"
	"those of fold K; 'test' and 'excluded' rows are never read. Configs are merged\n"
	"in order, then --set; unknown keys are errors (configs/README.md).\n"
	"\n"
	"  --pack PACK        the pack (.safetensors; PACK.tsv beside it)\n"
	"  --fold K           validation fold, 0..999\n"
	"  --config FILE      JSON config, repeatable (later files merge over earlier)\n"
	"  --set KEY=VAL      override one key (a.b=value; JSON or a plain string)\n"
	"  -o RUNDIR          run directory (created; must not hold another run)\n"
	"  --resume           continue the run in RUNDIR from its last saved state\n"
	"                     (only 'epochs' may differ from the saved config)\n"
	"  --device DEV       cpu (default), cuda or cuda:N; this build trains on the CPU\n"
	"                     only and refuses cuda (exit 1, nothing written)\n"
	"  --threads N        compute threads (default: config 'threads', else all CPUs);\n"
	"                     loader threads come from 'num_workers'\n"
	"  --stop-after N     save the state and exit 0 after N training steps of this\n"
	"                     invocation (time-sliced jobs; --resume continues)\n"
	"  --list-models      print name, parameters (1 logit), forward GFLOPs at 224\n"
	"                     (multiply-adds, torchvision's convention) and exit\n"
	"  -q                 no progress or info lines\n"
	"\n"
	"RUNDIR receives config.json (resolved config, at start), log.tsv (one row per\n"
	"epoch), best.safetensors (best validation AUC; accuracy when num_classes > 2),\n"
	"last.safetensors, state.safetensors (everything --resume needs) and, last of\n"
	"all when training ends, run.json: a run is complete when run.json exists.\n"
	"SIGINT/SIGTERM save the state at the next step boundary and exit 130/143.\n"
	"\n"
	"Exit status: 0 success, 1 bad data, bad config or NaN loss, 2 bad usage,\n"
	"130/143 interrupted (state saved).\n";

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

/* Everything the config decides, read and checked before any output. */
struct tcfg {
	int64_t seed, batch, epochs, patience, workers, threads, num_classes;
	const char *model, *init;
	enum fd_norm norm;
	const char *norm_name;
	enum fd_opt_type opt;
	double lr, wd, beta[2], eps, momentum;
	int nesterov, no_decay;
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
		return fd_err_set(e, "config: '%s' is %lld, not in %lld..%lld", k, (long long)*out,
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
		return fd_err_set(e, "config: '%s' is %g, not in [%g, %g]", k, *out, lo, hi);
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
		return fd_err_set(e, "config: unknown model '%s' (fd-train --list-models names them)", t->model);
	t->init = NULL;
	if (fd_config_has(c, "init")) {
		/* null means "from scratch", so a later file can undo an earlier init */
		if (fd_config_get_str(c, "init", &t->init, e) < 0)
			e->msg[0] = '\0', t->init = NULL;
	}
	t->norm_name = "imagenet";
	if (fd_config_has(c, "normalize") && fd_config_get_str(c, "normalize", &t->norm_name, e) < 0)
		return -1;
	if (fd_norm_parse(t->norm_name, &t->norm) < 0)
		return fd_err_set(e, "config: 'normalize' is '%s'", t->norm_name);
	if (fd_config_has(c, "precision")) {
		if (fd_config_get_str(c, "precision", &s, e) < 0)
			return -1;
		if (strcmp(s, "fp32") != 0)
			return fd_err_set(e, "config: precision '%s' is not supported yet (fp32 only)", s);
	}
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
		return fd_err_set(e, "config: 'optimizer.betas' must be in [0, 1)");
	if (fd_config_has(c, "optimizer.nesterov") && fd_config_get_bool(c, "optimizer.nesterov", &t->nesterov, e) < 0)
		return -1;
	if (fd_config_has(c, "optimizer.no_decay_norm_bias") &&
	    fd_config_get_bool(c, "optimizer.no_decay_norm_bias", &t->no_decay, e) < 0)
		return -1;
	if (t->nesterov && (t->opt != FD_OPT_SGD || t->momentum <= 0))
		return fd_err_set(e, "config: 'optimizer.nesterov' needs type sgd and momentum > 0");
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

struct run {
	const char *dir, *pack;
	int fold, threads;
	struct tcfg t;
	struct fd_config cfg;
	char *cfg_json, *cfg_base; /* resolved; and with epochs = 0 (what a resume must match) */
	char tsv_sha[65];
	const char *src_sha;
	struct fd_model *m;
	struct fd_optim opt;
	struct fd_sched sched;
	struct fd_ctx c;
	struct fd_dnnl dnnl;
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

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (!p)
		cli_die("out of memory");
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static void fmt_vec(char *buf, size_t n, const double v[3])
{
	snprintf(buf, n, "[%.17g,%.17g,%.17g]", v[0], v[1], v[2]);
}

/* A checkpoint with the metadata DESIGN.md names (fd.arch and fd.num_classes
 * come from fd_model_save). */
static int save_model(struct run *r, const char *name, int64_t epoch, struct fd_err *e)
{
	char mean[128], std[128], size[32], ep[32];
	fmt_vec(mean, sizeof mean, r->mean);
	fmt_vec(std, sizeof std, r->std);
	snprintf(size, sizeof size, "%d", r->S);
	snprintf(ep, sizeof ep, "%lld", (long long)epoch);
	const char *meta[] = { "fd.norm_mean", mean, "fd.norm_std", std, "fd.normalize", r->t.norm_name,
			       "fd.input_size", size, "fd.config", r->cfg_json, "fd.epoch", ep, NULL };
	char *p = path_in(r->dir, name);
	int rc = fd_model_save(r->m, p, meta, e);
	free(p);
	return rc;
}

static int save_state(struct run *r, struct fd_err *e)
{
	struct fd_stw w;
	fd_stw_init(&w);
	int64_t np = r->m->p.ntotal, no = r->opt.n, ns = r->ps.seen;
	if (r->t.num_classes > 2)
		ns = 0;
	int rc = fd_stw_add(&w, "params", FD_DT_F32, 1, &np, r->m->p.data, e);
	if (rc == 0 && r->opt.m)
		rc = fd_stw_add(&w, "optim.m", FD_DT_F32, 1, &no, r->opt.m, e);
	if (rc == 0 && r->opt.v)
		rc = fd_stw_add(&w, "optim.v", FD_DT_F32, 1, &no, r->opt.v, e);
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
	char *p = path_in(r->dir, "state.safetensors");
	if (rc == 0)
		rc = fd_stw_write(&w, p, e);
	free(p);
	fd_stw_free(&w);
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

/* Restore from RUNDIR/state.safetensors; checks it belongs to this run. */
static int load_state(struct run *r, const char *path, struct fd_err *e)
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
		cli_warn("the run was started with %lld threads, now %d: results will not be bit-identical "
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
	if (s->seen < 0 || (size_t)s->seen > r->ntrain || s->batch < 0 || s->epoch < 0) {
		fd_err_set(e, "inconsistent progress (seen %lld)", (long long)s->seen);
		goto out;
	}
	int64_t ns = r->t.num_classes > 2 ? 0 : s->seen;
	const struct fd_st_tensor *p = want(&st, "params", FD_DT_F32, r->m->p.ntotal, e);
	const struct fd_st_tensor *tm = r->opt.m ? want(&st, "optim.m", FD_DT_F32, r->opt.n, e) : NULL;
	const struct fd_st_tensor *tv = r->opt.v ? want(&st, "optim.v", FD_DT_F32, r->opt.n, e) : NULL;
	const struct fd_st_tensor *ts = want(&st, "train.score", FD_DT_F64, ns, e);
	const struct fd_st_tensor *tl = want(&st, "train.label", FD_DT_U8, ns, e);
	if (!p || (r->opt.m && !tm) || (r->opt.v && !tv) || !ts || !tl)
		goto out;
	memcpy(r->m->p.data, p->data, p->nbytes);
	if (tm)
		memcpy(r->opt.m, tm->data, tm->nbytes);
	if (tv)
		memcpy(r->opt.v, tv->data, tv->nbytes);
	if (ns) {
		memcpy(r->tscore, ts->data, ts->nbytes);
		memcpy(r->tlabel, tl->data, tl->nbytes);
	}
	r->opt.step = s->opt_step;
	r->sched.lr = s->sched_lr;
	r->sched.epoch = s->sched_epoch;
	r->c.step = (uint64_t)s->ctx_step;
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

static int log_init(struct run *r, struct fd_err *e)
{
	fd_table_init(&r->log);
	char *p = path_in(r->dir, "log.tsv");
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
	free(p);
	return rc;
}

static void fmt_metric(char *buf, size_t n, double v)
{
	if (isnan(v))
		snprintf(buf, n, "NA");
	else
		snprintf(buf, n, "%.17g", v);
}

static int log_add(struct run *r, int64_t epoch, double tl, double ta, double vl, double va, double vacc,
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
	char *p = path_in(r->dir, "log.tsv");
	int rc = fd_table_save(&r->log, p, e);
	free(p);
	return rc;
}

/* ---- the run ---- */

/* Per-row score (P(class 1)) and loss contributions from logits x [n, K]. */
static double row_score(const float *x, int K)
{
	if (K == 1)
		return 1.0 / (1.0 + exp(-(double)x[0]));
	double mx = x[0];
	for (int k = 1; k < K; k++)
		mx = x[k] > mx ? x[k] : mx;
	double s = 0;
	for (int k = 0; k < K; k++)
		s += exp((double)x[k] - mx);
	return exp((double)x[1] - mx) / s;
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

static _Noreturn void interrupted(struct run *r)
{
	struct fd_err e;
	e.msg[0] = '\0';
	if (save_state(r, &e) < 0)
		cli_fail(&e);
	cli_info("interrupted by %s in epoch %lld after %lld batches: state saved in '%s' (fd-train --resume continues)",
		 got_signal == SIGINT ? "SIGINT" : "SIGTERM", (long long)r->ps.epoch + 1, (long long)r->ps.batch,
		 r->dir);
	exit(128 + got_signal);
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

/* One training epoch from r->ps (possibly mid-epoch). Returns 0, or exits.
 * stop_after: steps left before --stop-after fires (< 0: never). */
static void train_epoch(struct run *r, int64_t *stop_after, double *tsecs)
{
	struct fd_err e;
	e.msg[0] = '\0';
	int K = (int)r->t.num_classes;
	int64_t ep = r->ps.epoch;
	if (fd_loader_begin(r->L, FD_SET_TRAIN, (int)ep, 1, &e) < 0)
		cli_fail(&e);
	struct fd_progress pg;
	char label[64];
	snprintf(label, sizeof label, "epoch %lld/%lld", (long long)ep + 1, (long long)r->t.epochs);
	fd_progress_init(&pg, cli_quiet ? NULL : stderr, label, r->ntrain);
	const struct fd_batch *b;
	int64_t skip = r->ps.batch, nb = 0;
	double t0 = fd_now();
	int rc;
	r->c.training = 1;
	r->c.grad_enabled = 1;
	while ((rc = fd_loader_next(r->L, &b, &e)) == 1) {
		if (nb++ < skip) {
			fd_progress_add(&pg, (uint64_t)b->n);
			continue;
		}
		if (got_signal) {
			r->ps.secs += fd_now() - t0;
			interrupted(r);
		}
		if (b->n == 1) {
			/* BatchNorm cannot train on one sample (torch raises); skip it */
			cli_info("epoch %lld: skipping the last training batch (1 image)", (long long)ep + 1);
			r->ps.batch++;
			continue;
		}
		fd_ctx_step(&r->c);
		fd_params_zero_grad(&r->m->p);
		int64_t xs[4] = { b->n, 3, r->S, r->S }, ys[2] = { b->n, 1 };
		struct fd_tensor *x = fd_tensor_wrap(&r->c, FD_DEV_CPU, b->x, 4, xs);
		struct fd_tensor *logits = fd_model_forward(r->m, &r->c, x), *loss;
		if (K == 1) {
			loss = fd_bce_with_logits(&r->c, logits, fd_tensor_wrap(&r->c, FD_DEV_CPU, b->y, 2, ys));
		} else {
			for (int i = 0; i < b->n; i++)
				r->cls[i] = (int32_t)b->y[i];
			loss = fd_cross_entropy(&r->c, logits, r->cls);
		}
		if (!loss)
			cli_die("epoch %lld step %lld: %s", (long long)ep + 1, (long long)r->ps.batch + 1, r->c.err.msg);
		double lv = loss->data[0];
		if (!isfinite(lv))
			cli_die("epoch %lld step %lld: loss is %s: stopping (the state of epoch %lld is kept in '%s')",
				(long long)ep + 1, (long long)r->ps.batch + 1, isnan(lv) ? "nan" : "inf",
				(long long)ep, r->dir);
		if (fd_backward(&r->c, loss, NULL) < 0)
			cli_die("epoch %lld step %lld: %s", (long long)ep + 1, (long long)r->ps.batch + 1, r->c.err.msg);
		if (fd_optim_step(&r->opt, &r->m->p, &e) < 0)
			cli_fail(&e);
		if (K <= 2)
			for (int i = 0; i < b->n; i++) {
				r->tscore[r->ps.seen + i] = row_score(logits->data + (size_t)i * K, K);
				r->tlabel[r->ps.seen + i] = (uint8_t)b->y[i];
			}
		r->ps.loss_sum += lv * b->n;
		r->ps.seen += b->n;
		r->ps.batch++;
		r->ps.ctx_step = (int64_t)r->c.step;
		r->ps.opt_step = r->opt.step;
		snprintf(pg.extra, sizeof pg.extra, "step %lld loss %.4f", (long long)r->ps.batch,
			 r->ps.loss_sum / (double)r->ps.seen);
		fd_progress_add(&pg, (uint64_t)b->n);
		if (*stop_after > 0 && --*stop_after == 0) {
			r->ps.secs += fd_now() - t0;
			if (save_state(r, &e) < 0)
				cli_fail(&e);
			cli_info("stopped after the requested steps in epoch %lld: state saved in '%s'",
				 (long long)ep + 1, r->dir);
			exit(0);
		}
	}
	if (rc < 0)
		cli_fail(&e);
	fd_progress_end(&pg);
	*tsecs = fd_now() - t0;
	r->ps.secs += *tsecs;
}

/* Scores the validation rows: loss, AUC (NAN when undefined or K > 2), accuracy. */
static void validate(struct run *r, double *vloss, double *vauc, double *vacc)
{
	struct fd_err e;
	e.msg[0] = '\0';
	int K = (int)r->t.num_classes;
	if (fd_loader_begin(r->L, FD_SET_VAL, (int)r->ps.epoch, 0, &e) < 0)
		cli_fail(&e);
	r->c.training = 0;
	r->c.grad_enabled = 0;
	const struct fd_batch *b;
	size_t k = 0;
	int rc;
	while ((rc = fd_loader_next(r->L, &b, &e)) == 1) {
		if (got_signal)
			interrupted(r);
		fd_ctx_step(&r->c);
		int64_t xs[4] = { b->n, 3, r->S, r->S };
		struct fd_tensor *logits = fd_model_forward(r->m, &r->c, fd_tensor_wrap(&r->c, FD_DEV_CPU, b->x, 4, xs));
		if (!logits)
			cli_die("validation: %s", r->c.err.msg);
		for (int i = 0; i < b->n; i++, k++) {
			for (int j = 0; j < K; j++)
				r->vlogit[k * K + j] = logits->data[(size_t)i * K + j];
			r->vlabel[k] = (uint8_t)b->y[i];
			if (K <= 2)
				r->vscore[k] = row_score(logits->data + (size_t)i * K, K);
		}
	}
	if (rc < 0)
		cli_fail(&e);
	/* the validation steps must not move the dropout streams of training */
	r->c.step = (uint64_t)r->ps.ctx_step;
	double loss = 0;
	size_t correct = 0;
	if (K == 1) {
		if (fd_bce_logits(r->vlogit, r->vlabel, k, &loss, &e) < 0)
			cli_fail(&e);
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
	r->c.training = 1;
	r->c.grad_enabled = 1;
}

static int write_run_json(struct run *r, const char *stopped, double wall, struct fd_err *e)
{
	json_t *o = json_object(), *cfg = json_loads(r->cfg_json, 0, NULL);
	double total = 0;
	int ce = fd_table_col(&r->log, "seconds");
	for (size_t i = 0; ce >= 0 && i < r->log.nrow; i++)
		total += atof(fd_table_get(&r->log, i, ce));
	json_object_set_new(o, "tool", json_string("fd-train"));
	json_object_set_new(o, "version", json_string(FD_VERSION));
	json_object_set_new(o, "cmdline", json_string(cli_cmdline()));
	json_object_set_new(o, "pack", json_string(r->pack));
	json_object_set_new(o, "pack_tsv_sha256", json_string(r->tsv_sha));
	json_object_set_new(o, "pack_source_sha256", r->src_sha ? json_string(r->src_sha) : json_null());
	json_object_set_new(o, "input_size", json_integer(r->S));
	json_object_set_new(o, "fold", json_integer(r->fold));
	json_object_set_new(o, "threads", json_integer(r->threads));
	json_object_set_new(o, "loader_threads", json_integer(r->t.workers));
	json_object_set_new(o, "config", cfg ? cfg : json_null());
	json_object_set_new(o, "arch", json_string(r->t.model));
	json_object_set_new(o, "params", json_integer(fd_model_params(r->m)));
	json_object_set_new(o, "rows_train", json_integer((json_int_t)r->ntrain));
	json_object_set_new(o, "rows_val", json_integer((json_int_t)r->nval));
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
	char *p = path_in(r->dir, "run.json");
	struct fd_out out;
	int rc = fd_out_open(&out, p, e);
	if (rc == 0) {
		fputs(s, out.f);
		fputc('\n', out.f);
		rc = fd_out_commit(&out, e);
	}
	free(p);
	free(s);
	return rc;
}

static void list_models(void)
{
	printf("name\tparams\tgflops_224\tsummary\n");
	for (int i = 0; i < fd_model_count(); i++) {
		const struct fd_model_arch *a = fd_model_arch_at(i);
		struct fd_model *m;
		struct fd_err e;
		uint64_t macs = 0;
		e.msg[0] = '\0';
		if (fd_model_new(a->name, 1, 1, &m, &e) < 0 || fd_model_macs(m, 224, &macs, &e) < 0)
			cli_fail(&e);
		printf("%s\t%lld\t%.3f\t%s\n", a->name, (long long)fd_model_params(m), (double)macs / 1e9, a->summary);
		fd_model_free(m);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		cli_die("cannot write to standard output");
	exit(0);
}

static int nprocs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
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

/* Refuse a RUNDIR that would lose a result, before anything is read: one
 * holding files that are not a run's; one holding a run without --resume;
 * with --resume, one whose run is finished (run.json) but whose state is
 * gone (it cannot be continued, and starting afresh would overwrite it). */
static void check_rundir(const char *dir, int resume)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode))
		cli_die("-o '%s': not a directory", dir);
	DIR *d = opendir(dir);
	if (!d)
		cli_die("cannot read '%s': %s", dir, strerror(errno));
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
		cli_die("-o '%s' holds '%s', which is not part of a run: give a new or empty directory", dir, first);
	if (kept[0] && !resume)
		cli_die("-o '%s' holds a run already ('%s'; use --resume to continue it, or another -o)", dir, kept);
	if (resume && !state && done)
		cli_die("-o '%s' holds a run ('%s') but not its state.safetensors: it cannot be resumed, and "
			"starting afresh would overwrite it (use another -o)", dir, kept);
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-train", SYNOPSIS, HELP);
	const char *pack = NULL, *dir = NULL, *configs[64], *sets[256];
	int nconf = 0, nset = 0, fold = -1, threads = 0, resume = 0;
	int64_t stop_after = -1;
	enum fd_dev dev = FD_DEV_CPU;
	const char *dev_name = "cpu";
	int dev_index;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-q") == 0) {
			cli_quiet = 1;
			continue;
		}
		if (strcmp(a, "--resume") == 0) {
			resume = 1;
			continue;
		}
		if (strcmp(a, "--list-models") == 0)
			list_models();
		static const char *const names[] = { "--pack", "--fold", "--config", "--set", "-o", "--threads",
						     "--stop-after", "--device" };
		const char *val = NULL;
		int which = cli_opt(argc, argv, &i, names, 8, &val);
		switch (which) {
		case 0: pack = val; break;
		case 1: fold = (int)cli_int("--fold", val, 0, 999); break;
		case 2:
			if (nconf == 64)
				cli_usage("more than 64 --config files");
			configs[nconf++] = val;
			break;
		case 3:
			if (nset == 256)
				cli_usage("more than 256 --set");
			sets[nset++] = val;
			break;
		case 4: dir = val; break;
		case 5: threads = (int)cli_int("--threads", val, 1, 1024); break;
		case 6: stop_after = cli_int("--stop-after", val, 1, INT64_MAX); break;
		case 7:
			dev = cli_device("--device", val, &dev_index);
			dev_name = val;
			break;
		}
	}
	if (!pack)
		cli_usage("--pack is required");
	if (fold < 0)
		cli_usage("--fold is required");
	if (!nconf)
		cli_usage("--config is required");
	if (!dir || !*dir)
		cli_usage("-o RUNDIR is required");
	cli_device_check(dev, dev_name);
	char *side = cli_sidecar(pack);
	cli_outputs((const char *[]){pack, side}, 2, (const char *[]){dir}, 1);
	free(side);
	check_rundir(dir, resume);
	double wall0 = fd_now();

	static struct run r;
	struct fd_err e;
	e.msg[0] = '\0';
	r.dir = dir;
	r.pack = pack;
	r.fold = fold;
	if (fd_config_init(&r.cfg, &e) < 0)
		cli_fail(&e);
	for (int i = 0; i < nconf; i++)
		if (fd_config_load(&r.cfg, configs[i], &e) < 0)
			cli_fail(&e);
	for (int i = 0; i < nset; i++)
		if (fd_config_set(&r.cfg, sets[i], &e) < 0)
			cli_fail(&e);
	if (read_cfg(&r.t, &r.cfg, &e) < 0)
		cli_fail(&e);
	r.threads = threads ? threads : r.t.threads ? (int)r.t.threads : nprocs();
	if (!(r.cfg_json = fd_config_dump(&r.cfg, &e)) || fd_config_set(&r.cfg, "epochs=0", &e) < 0 ||
	    !(r.cfg_base = fd_config_dump(&r.cfg, &e)))
		cli_fail(&e);
	char ep[32];
	snprintf(ep, sizeof ep, "epochs=%lld", (long long)r.t.epochs);
	if (fd_config_set(&r.cfg, ep, &e) < 0)
		cli_fail(&e);
	/* read_cfg borrowed strings from the config: re-read them from the restored tree */
	if (read_cfg(&r.t, &r.cfg, &e) < 0)
		cli_fail(&e);

	/* the data: every row check happens here, before RUNDIR exists */
	struct fd_loader_opts lo = {
		.fold = fold, .exclude = r.t.exclude, .nexclude = r.t.nexclude, .batch = (int)r.t.batch,
		.threads = (int)r.t.workers, .seed = (uint64_t)r.t.seed, .aug = r.t.aug, .norm = r.t.norm,
		.max_label = r.t.num_classes > 2 ? (int)r.t.num_classes - 1 : 1,
	};
	if (fd_loader_open(&r.L, pack, &lo, &e) < 0)
		cli_fail(&e);
	r.S = fd_loader_size(r.L);
	r.ntrain = fd_loader_count(r.L, FD_SET_TRAIN);
	r.nval = fd_loader_count(r.L, FD_SET_VAL);
	fd_loader_norm(r.L, r.mean, r.std);
	{
		size_t pl = strlen(pack);
		char *tsv = malloc(pl + 8);
		if (!tsv)
			cli_die("out of memory");
		memcpy(tsv, pack, pl + 1);
		if (pl > 12 && strcmp(pack + pl - 12, ".safetensors") == 0)
			tsv[pl - 12] = '\0';
		strcat(tsv, ".tsv");
		if (fd_sha256_file(tsv, r.tsv_sha, &e) < 0)
			cli_fail(&e);
		free(tsv);
		struct fd_st st;
		if (fd_st_open(&st, pack, &e) < 0)
			cli_fail(&e);
		const char *s = fd_st_meta(&st, "fd.source_sha256");
		r.src_sha = s ? strdup(s) : NULL;
		fd_st_close(&st);
	}

	/* the model, optimizer and schedule */
	if (fd_model_new(r.t.model, (int)r.t.num_classes, (uint64_t)r.t.seed, &r.m, &e) < 0)
		cli_fail(&e);
	if (r.t.init) {
		char note[1024];
		if (fd_model_load(r.m, r.t.init, note, sizeof note, &e) < 0)
			cli_fail(&e);
		if (*note)
			cli_warn("%s", note);
		else
			cli_info("initial weights from '%s'", r.t.init);
	}
	if (r.t.no_decay)
		fd_params_group_vectors(&r.m->p, 1);
	if (r.t.opt == FD_OPT_ADAMW ? fd_optim_adamw(&r.opt, &r.m->p, r.t.lr, r.t.beta[0], r.t.beta[1], r.t.eps, r.t.wd, &e)
				     : fd_optim_sgd(&r.opt, &r.m->p, r.t.lr, r.t.momentum, 0, r.t.wd, r.t.nesterov, &e))
		cli_fail(&e);
	if (r.t.no_decay)
		r.opt.weight_decay[1] = 0;
	r.opt.threads = r.threads;
	if (r.t.cosine) {
		if (fd_sched_cosine(&r.sched, r.t.lr, r.t.T_max, r.t.eta_min, r.t.warmup, &e) < 0)
			cli_fail(&e);
	} else {
		memset(&r.sched, 0, sizeof r.sched);
		r.sched.lr = r.sched.base_lr = r.t.lr;
	}
	if (fd_dnnl_init(&r.dnnl, r.threads, &e) < 0)
		cli_fail(&e);
	fd_ctx_init(&r.c, r.threads, (uint64_t)r.t.seed);
	r.c.dnnl = &r.dnnl;
	int K = (int)r.t.num_classes;
	r.tscore = calloc(r.ntrain + 1, sizeof *r.tscore);
	r.tlabel = calloc(r.ntrain + 1, 1);
	r.vlogit = calloc((r.nval + 1) * (size_t)K, sizeof *r.vlogit);
	r.vscore = calloc(r.nval + 1, sizeof *r.vscore);
	r.vlabel = calloc(r.nval + 1, 1);
	r.cls = calloc((size_t)r.t.batch, sizeof *r.cls);
	if (!r.tscore || !r.tlabel || !r.vlogit || !r.vscore || !r.vlabel || !r.cls)
		cli_die("out of memory");
	r.ps.best = NAN;
	r.ps.sched_lr = r.sched.lr;

	/* RUNDIR: a fresh run, or the state of an interrupted one */
	char *state = path_in(dir, "state.safetensors"), *runjson = path_in(dir, "run.json");
	int have_state = access(state, F_OK) == 0;
	if (have_state && !resume)
		cli_die("'%s' holds a run already (use --resume to continue it, or another -o)", dir);
	if (resume && have_state) {
		if (load_state(&r, state, &e) < 0)
			cli_fail(&e);
		if (r.ps.epoch >= r.t.epochs && access(runjson, F_OK) == 0) {
			cli_info("'%s' is complete (%lld epochs)", dir, (long long)r.ps.epoch);
			return 0;
		}
		cli_info("resuming '%s' at epoch %lld, batch %lld", dir, (long long)r.ps.epoch + 1,
			 (long long)r.ps.batch);
	} else if (resume) {
		cli_info("nothing to resume in '%s': starting afresh", dir);
	}
	if (fd_mkdir_p(dir, &e) < 0)
		cli_fail(&e);
	/* a run continued past its end is no longer complete */
	if (unlink(runjson) < 0 && errno != ENOENT)
		cli_die("cannot remove '%s': %s", runjson, strerror(errno));
	if (log_init(&r, &e) < 0)
		cli_fail(&e);
	{
		char *p = path_in(dir, "config.json");
		struct fd_out out;
		if (fd_out_open(&out, p, &e) < 0)
			cli_fail(&e);
		fprintf(out.f, "%s\n", r.cfg_json);
		if (fd_out_commit(&out, &e) < 0)
			cli_fail(&e);
		free(p);
	}
	cli_info("%s (%lld parameters), %zu training and %zu validation images at %d px, %d threads", r.t.model,
		 (long long)fd_model_params(r.m), r.ntrain, r.nval, r.S, r.threads);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND; /* a second signal kills at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	const char *stopped = "completed";
	while (r.ps.epoch < r.t.epochs) {
		if (r.t.patience > 0 && r.ps.bad >= r.t.patience) {
			stopped = "early_stopping";
			break;
		}
		double lr = r.sched.lr, tsecs = 0, vloss, vauc, vacc;
		r.opt.lr = lr;
		train_epoch(&r, &stop_after, &tsecs);
		double v0 = fd_now();
		validate(&r, &vloss, &vauc, &vacc);
		double tloss = r.ps.seen ? r.ps.loss_sum / (double)r.ps.seen : NAN;
		double tauc = K <= 2 ? auc_or_nan(r.tscore, r.tlabel, (size_t)r.ps.seen) : NAN;
		/* training images per second of training time (over every invocation
		 * that worked on this epoch); seconds include validation */
		double ips = r.ps.secs > 0 ? (double)r.ps.seen / r.ps.secs : 0;
		double secs = r.ps.secs + (fd_now() - v0);
		int64_t epoch = r.ps.epoch + 1;
		double metric = K > 2 ? vacc : vauc;
		int improved = !isnan(metric) && (isnan(r.ps.best) || metric > r.ps.best);
		if (r.t.cosine)
			fd_sched_step(&r.sched);
		r.ps.epoch = epoch;
		r.ps.batch = 0;
		r.ps.loss_sum = 0;
		r.ps.seen = 0;
		r.ps.secs = 0;
		r.ps.sched_lr = r.sched.lr;
		r.ps.sched_epoch = r.sched.epoch;
		if (improved) {
			r.ps.best = metric;
			r.ps.best_epoch = epoch;
			r.ps.bad = 0;
		} else {
			r.ps.bad++;
		}
		/* order: log, best, last, state. A death in between leaves the
		 * previous state, and --resume redoes this epoch bit for bit. */
		if (log_add(&r, epoch, tloss, tauc, vloss, vauc, vacc, lr, secs, ips, &e) < 0 ||
		    ((improved || epoch == 1) && save_model(&r, "best.safetensors", epoch, &e) < 0) ||
		    save_model(&r, "last.safetensors", epoch, &e) < 0 || save_state(&r, &e) < 0)
			cli_fail(&e);
		cli_info("epoch %lld: train loss %.4f auc %.4f, val loss %.4f auc %.4f acc %.4f, lr %.3g, %.1f s, %.1f img/s",
			 (long long)epoch, tloss, tauc, vloss, vauc, vacc, lr, secs, ips);
	}
	if (r.t.patience > 0 && r.ps.bad >= r.t.patience && r.ps.epoch < r.t.epochs)
		stopped = "early_stopping";
	if (strcmp(stopped, "early_stopping") == 0)
		cli_info("early stopping: no improvement for %lld epochs (best epoch %lld)", (long long)r.ps.bad,
			 (long long)r.ps.best_epoch);
	if (write_run_json(&r, stopped, fd_now() - wall0, &e) < 0)
		cli_fail(&e);
	fd_loader_close(r.L);
	fd_model_free(r.m);
	fd_optim_free(&r.opt);
	fd_ctx_free(&r.c);
	fd_dnnl_free(&r.dnnl);
	fd_table_free(&r.log);
	fd_config_free(&r.cfg);
	free(r.cfg_json);
	free(r.cfg_base);
	free(state);
	free(runjson);
	free(r.tscore);
	free(r.tlabel);
	free(r.vlogit);
	free(r.vscore);
	free(r.vlabel);
	free(r.cls);
	return 0;
}

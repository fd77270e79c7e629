/* fd_final: the phase-4B sections of fd-report, top (the choice of models) and
 * 4b-final (the test-set analysis); formats in man/fd-report.1. */
#include "report/fd_final.h"
#include "core/fd_out.h"
#include "core/fd_table.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/fd_metrics.h"
#include "eval/fd_stats.h"

#define MAXF FD_REPORT_MAXF

static const char TOP_RULE[] =
	"the models of phases 1 and 3 at the phase-2 choices (best.json) are ranked by their mean "
	"cross-validated validation AUC (eval val, subset all, mean over folds); each model counts "
	"once, at its best condition; the K highest are chosen (ties: input order). The test set "
	"makes no choice.";

static int make_word(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-' || *s == '.'))
			return 0;
	return 1;
}

static double val_mean(const struct fd_results *rs, const char *cond, const char *model, int *nf)
{
	int fold[MAXF];
	double auc[MAXF];
	int n = fd_results_folds(rs, cond, model, "val", fold, MAXF);
	fd_results_aucs(rs, cond, model, "val", "all", fold, n, auc);
	double s = 0;
	int k = 0;
	for (int i = 0; i < n; i++)
		if (!isnan(auc[i])) {
			s += auc[i];
			k++;
		}
	*nf = k;
	return k ? s / k : NAN;
}

int fd_top_rank(struct fd_top *t, const struct fd_results *rs, int k, struct fd_err *e)
{
	memset(t, 0, sizeof *t);
	if (k < 1)
		return fd_err_set(e, "top: K must be at least 1, not %d", k);
	t->k = k;
	for (int c = 0; c < rs->ncond; c++)
		for (int m = 0; m < rs->nmodel; m++) {
			int nf;
			double mean = val_mean(rs, rs->cond[c], rs->model[m], &nf);
			if (isnan(mean))
				continue;
			if (t->n == FD_TOP_MAX)
				return fd_err_set(e, "top: more than %d (condition, model) pairs", FD_TOP_MAX);
			if (!make_word(rs->model[m]))
				return fd_err_set(e, "top: model name '%s' is not a make word "
						  "(letters, digits, '_', '-', '.')", rs->model[m]);
			struct fd_top_entry *x = &t->e[t->n++];
			snprintf(x->model, sizeof x->model, "%s", rs->model[m]);
			snprintf(x->cond, sizeof x->cond, "%s", rs->cond[c]);
			x->nf = nf;
			x->mean = mean;
		}
	if (t->n == 0)
		return fd_err_set(e, "top: no run with a validation AUC (preds-val.tsv)");
	/* stable insertion sort, highest mean first */
	for (int i = 1; i < t->n; i++) {
		struct fd_top_entry x = t->e[i];
		int j = i;
		for (; j > 0 && t->e[j - 1].mean < x.mean; j--)
			t->e[j] = t->e[j - 1];
		t->e[j] = x;
	}
	for (int i = 0; i < t->n && t->nchosen < k; i++) {
		int seen = 0;
		for (int j = 0; j < i; j++)
			seen |= !strcmp(t->e[j].model, t->e[i].model);
		if (!seen) {
			t->e[i].chosen = 1;
			t->nchosen++;
		}
	}
	return 0;
}

char *fd_top_json(const struct fd_top *t, struct fd_err *e)
{
	json_t *j = json_object(), *models = json_array(), *rank = json_array();
	json_object_set_new(j, "top_k", json_integer(t->k));
	for (int i = 0; i < t->n; i++) {
		const struct fd_top_entry *x = &t->e[i];
		if (x->chosen)
			json_array_append_new(models, json_string(x->model));
		json_t *o = json_object();
		json_object_set_new(o, "model", json_string(x->model));
		json_object_set_new(o, "condition", json_string(x->cond));
		json_object_set_new(o, "folds", json_integer(x->nf));
		json_object_set_new(o, "mean_val_auc", json_real(x->mean));
		json_object_set_new(o, "chosen", json_boolean(x->chosen));
		json_array_append_new(rank, o);
	}
	json_object_set_new(j, "models", models);
	json_object_set_new(j, "ranking", rank);
	json_object_set_new(j, "rule", json_string(TOP_RULE));
	char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	json_decref(j);
	char *out = txt ? malloc(strlen(txt) + 2) : NULL;
	if (!out) {
		free(txt);
		fd_err_set(e, "out of memory");
		return NULL;
	}
	sprintf(out, "%s\n", txt);
	free(txt);
	return out;
}

void fd_top_mk(FILE *f, const struct fd_top *t)
{
	/* model names were checked to be make words (fd_top_rank) */
	fprintf(f, "# The phase-4B models of top.json beside this file, for make's include\n"
		   "# (written by fd-report --section top; doc/pipelines.md).\nP4B_TOP_MODELS :=");
	for (int i = 0; i < t->n; i++)
		if (t->e[i].chosen)
			fprintf(f, " %s", t->e[i].model);
	fprintf(f, "\n");
}

void fd_top_md(FILE *f, const struct fd_top *t, const char *cmdline)
{
	fprintf(f, "# Phase 4B: the models chosen for the full data\n\n**Rule.** The %d model%s "
		   "with the highest cross-validated validation AUC: %s Override with `make phase4 "
		   "P4B_MODELS=\"...\"`.\n\nChosen:", t->k, t->k > 1 ? "s" : "", TOP_RULE);
	for (int i = 0, k = 0; i < t->n; i++)
		if (t->e[i].chosen)
			fprintf(f, "%s %s", k++ ? "," : "", t->e[i].model);
	fprintf(f, ".\n\n| rank | model | condition | folds | mean val AUC | chosen |\n"
		   "|---|---|---|---|---|---|\n");
	for (int i = 0; i < t->n; i++)
		fprintf(f, "| %d | %s | %s | %d | %.3f | %s |\n", i + 1, t->e[i].model, t->e[i].cond,
			t->e[i].nf, t->e[i].mean, t->e[i].chosen ? "yes" : "");
	fprintf(f, "\nTop models: `top.json`, `top.mk` (P4B_TOP_MODELS).\n\nMade by: `%s`\n\n", cmdline);
}

/* --- 4b-final ------------------------------------------------------------------ */

static const char *g17(char *b, double x)
{
	if (isnan(x))
		return "NA";
	snprintf(b, 32, "%.17g", x);
	return b;
}

static const char *f3(char *b, double x)
{
	if (isnan(x))
		return "-";
	snprintf(b, 32, "%.3f", x);
	return b;
}

static const char *fp(char *b, double p)
{
	if (isnan(p))
		return "-";
	snprintf(b, 32, p < 0.001 ? "%.1e" : "%.3f", p);
	return b;
}

/* A (condition, model) with test rows. */
struct entry {
	const char *cond, *model;
	int nf, fold[MAXF];
	struct fd_rows all;     /* ensemble rows, subset all */
	const char **source;    /* source of all's row i */
};

/* The source of each ensemble row: from the first fold's score rows (the same
 * keys, sorted alike). */
static int entry_sources(struct entry *x, const struct fd_results *rs, struct fd_err *e)
{
	const struct fd_scores *sc = NULL;
	for (size_t i = 0; i < rs->nsc && !sc; i++)
		if (!strcmp(rs->sc[i].cond, x->cond) && !strcmp(rs->sc[i].model, x->model) &&
		    !strcmp(rs->sc[i].eval, "test") && rs->sc[i].fold == x->fold[0])
			sc = &rs->sc[i];
	if (!sc)
		return fd_err_set(e, "4b-final: %s %s: no test scores", x->cond, x->model);
	x->source = malloc((x->all.n + 1) * sizeof *x->source);
	if (!x->source)
		return fd_err_set(e, "out of memory");
	size_t j = 0;
	for (size_t i = 0; i < x->all.n; i++) {
		while (j < sc->n && strcmp(sc->key[j], x->all.key[i]) < 0)
			j++;
		if (j == sc->n || strcmp(sc->key[j], x->all.key[i]) || !sc->source[j] || !*sc->source[j])
			return fd_err_set(e, "4b-final: %s %s: test row '%s' has no source", x->cond,
					  x->model, x->all.key[i]);
		x->source[i] = sc->source[j];
	}
	return 0;
}

struct metrics {
	size_t n_real, n_fake;
	struct fd_auc_ci auc;
	double ap, eer, acc;
};

static void metrics_of(struct metrics *o, const struct fd_rows *r)
{
	struct fd_err e;
	o->n_real = o->n_fake = 0;
	for (size_t i = 0; i < r->n; i++)
		r->label[i] ? o->n_fake++ : o->n_real++;
	o->auc = (struct fd_auc_ci){ NAN, NAN, NAN, NAN };
	if (fd_delong_ci(&o->auc, r->score, r->label, r->n, FD_REPORT_LEVEL, FD_AUC_CI_LOGIT, &e) < 0)
		o->auc = (struct fd_auc_ci){ NAN, NAN, NAN, NAN };
	if (isnan(o->auc.auc) && fd_auc(r->score, r->label, r->n, &o->auc.auc, &e) != 0)
		o->auc.auc = NAN;
	if (fd_average_precision(r->score, r->label, r->n, &o->ap, &e) != 0)
		o->ap = NAN;
	if (fd_eer(r->score, r->label, r->n, FD_EER_INTERP, &o->eer, &e) != 0)
		o->eer = NAN;
	struct fd_confusion c;
	o->acc = r->n && fd_confusion(&c, r->score, r->label, r->n, &e) == 0
		? (double)(c.tp + c.tn) / (double)r->n : NAN;
}

/* Distinct row sources of x, sorted by name, into src (returns their count). */
static int sources_of(const struct entry *x, const char **src, int cap)
{
	int n = 0;
	for (size_t i = 0; i < x->all.n; i++) {
		int k = 0;
		while (k < n && strcmp(src[k], x->source[i]))
			k++;
		if (k == n && n < cap) {
			int j = n++;
			for (; j > 0 && strcmp(src[j - 1], x->source[i]) > 0; j--)
				src[j] = src[j - 1];
			src[j] = x->source[i];
		}
	}
	return n;
}

/* numpy.histogram(x, bins=FD_FINAL_BINS, range=(0, 1)): edges i * (1/B), the
 * last bin closed; -1 outside [0, 1]. */
static int bin_of(double x)
{
	const int B = FD_FINAL_BINS;
	const double step = 1.0 / B;
	if (!(x >= 0 && x <= 1))
		return -1;
	if (x == 1)
		return B - 1;
	int k = (int)(x * B);
	if (k >= B)
		k = B - 1;
	if (k > 0 && x < k * step)
		k--;
	if (k + 1 < B && x >= (k + 1) * step)
		k++;
	return k;
}

/* A candidate hard example: s is the score, negated for false positives (the
 * highest first), so both kinds sort ascending by s, then by key. */
struct hard_row {
	double s;
	const char *key;
	size_t i;
};
static int cmp_hard(const void *pa, const void *pb)
{
	const struct hard_row *a = pa, *b = pb;
	if (a->s != b->s)
		return a->s < b->s ? -1 : 1;
	return strcmp(a->key, b->key);
}

static int write_hard(FILE *md, FILE *hard, const struct entry *x, int nhard, const char **src,
		      int nsrc, struct fd_err *e)
{
	struct hard_row *idx = malloc((x->all.n + 1) * sizeof *idx);
	if (!idx)
		return fd_err_set(e, "out of memory");
	char b[32];
	for (int s = 0; s < nsrc; s++)
		for (int kind = 0; kind < 2; kind++) { /* 0 false positives, 1 false negatives */
			size_t n = 0;
			for (size_t i = 0; i < x->all.n; i++)
				if (!strcmp(x->source[i], src[s]) && x->all.label[i] == kind &&
				    (kind ? x->all.score[i] < FD_EVAL_THRESHOLD : x->all.score[i] >= FD_EVAL_THRESHOLD))
					idx[n++] = (struct hard_row){ kind ? x->all.score[i] : -x->all.score[i],
								      x->all.key[i], i };
			if (n == 0)
				continue;
			qsort(idx, n, sizeof *idx, cmp_hard);
			const char *what = kind ? "false_negative" : "false_positive";
			fprintf(md, "- %s, %s (%zu in all):", src[s], kind ? "false negatives" : "false positives", n);
			for (size_t r = 0; r < n && r < (size_t)nhard; r++) {
				size_t i = idx[r].i;
				fprintf(hard, "%s\t%s\t%s\t%s\t%zu\t%s\t%d\t%s\n", x->model, x->cond, src[s], what,
					r + 1, x->all.key[i], x->all.label[i], g17(b, x->all.score[i]));
				fprintf(md, "%s `%s` %.3f", r ? "," : "", x->all.key[i], x->all.score[i]);
			}
			fprintf(md, "\n");
		}
	free(idx);
	return 0;
}

static void write_conf(FILE *md, FILE *conf, const struct entry *x, const char **src, int nsrc)
{
	char b[4][32];
	for (int s = 0; s < nsrc; s++)
		for (int lab = 0; lab < 2; lab++) {
			size_t cnt[FD_FINAL_BINS] = { 0 }, n = 0, pos = 0;
			double sum = 0;
			for (size_t i = 0; i < x->all.n; i++)
				if (x->all.label[i] == lab && !strcmp(x->source[i], src[s])) {
					int k = bin_of(x->all.score[i]);
					if (k >= 0)
						cnt[k]++;
					n++;
					sum += x->all.score[i];
					pos += x->all.score[i] >= FD_EVAL_THRESHOLD;
				}
			if (n == 0)
				continue;
			for (int k = 0; k < FD_FINAL_BINS; k++)
				fprintf(conf, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%zu\n", x->model, x->cond, src[s], lab, k,
					g17(b[0], k * (1.0 / FD_FINAL_BINS)),
					g17(b[1], k + 1 == FD_FINAL_BINS ? 1.0 : (k + 1) * (1.0 / FD_FINAL_BINS)), cnt[k]);
			fprintf(md, "| %s | %s | %s | %zu | %s | %s | `", x->model, src[s], lab ? "fake" : "real", n,
				f3(b[2], sum / (double)n), f3(b[3], (double)pos / (double)n));
			for (int k = 0; k < FD_FINAL_BINS; k++)
				fprintf(md, "%s%zu", k ? " " : "", cnt[k]);
			fprintf(md, "` |\n");
		}
}

int fd_final_write(FILE *md, FILE *tsv, FILE *cmp, FILE *hard, FILE *conf,
		   const struct fd_results *rs, int nhard, const struct fd_report_meta *m,
		   const char *hard_name, const char *conf_name, struct fd_err *e)
{
	int cap = rs->ncond * rs->nmodel, nx = 0, rc = -1;
	struct entry *x = calloc((size_t)cap + 1, sizeof *x);
	if (!x)
		return fd_err_set(e, "out of memory");
	for (int c = 0; c < rs->ncond; c++)
		for (int k = 0; k < rs->nmodel; k++) {
			struct entry *y = &x[nx];
			y->cond = rs->cond[c];
			y->model = rs->model[k];
			y->nf = fd_results_folds(rs, y->cond, y->model, "test", y->fold, MAXF);
			if (y->nf == 0)
				continue;
			int r = fd_results_rows(&y->all, rs, y->cond, y->model, "test", "all", y->fold, y->nf,
						FD_ROWS_ENSEMBLE, e);
			if (r < 0)
				goto out;
			if (r > 0)
				continue; /* no score rows (a folds table) */
			nx++;
			if (entry_sources(y, rs, e) < 0)
				goto out;
		}
	if (nx == 0) {
		fd_err_set(e, "4b-final: no run with test scores (preds-test.tsv in a run directory)");
		goto out;
	}
	char b[8][32];
	fprintf(md, "# Phase 4B: the chosen models on the full data, test set\n\n"
		    "Each model is trained on the full data (`in100`) at the phase-2 choices, one run per "
		    "cross-validation fold; the test set (`fold=test`, used for no choice) is scored by every "
		    "fold model's selected checkpoint and the scores of each row are averaged (the ensemble). "
		    "Per source: all reals vs that source's fakes. AUC with DeLong's 95%% interval (logit "
		    "scale); AP: scikit-learn's average precision; EER: interpolated equal error rate; "
		    "accuracy at score ≥ 0.5 (fake).\n\n"
		    "| model | condition | folds | subset | reals | fakes | test AUC | 95%% CI | AP | EER | accuracy |\n"
		    "|---|---|---|---|---|---|---|---|---|---|---|\n");
	fprintf(tsv, "model\tcondition\tfolds\tsubset\tn_real\tn_fake\tauc\tauc_se\tauc_lo\tauc_hi\tap\teer\taccuracy\n");
	for (int i = 0; i < nx; i++)
		for (int s = -1; s < rs->nsource; s++) {
			const char *sub = s < 0 ? "all" : rs->source[s];
			struct fd_rows r;
			int q = fd_results_rows(&r, rs, x[i].cond, x[i].model, "test", sub, x[i].fold,
						x[i].nf, FD_ROWS_ENSEMBLE, e);
			if (q < 0)
				goto out;
			if (q > 0)
				continue;
			struct metrics mt;
			metrics_of(&mt, &r);
			fd_rows_free(&r);
			if (s >= 0 && mt.n_fake == 0)
				continue;
			fprintf(md, "| %s | %s | %d | %s | %zu | %zu | %s | [%s, %s] | %s | %s | %s |\n",
				x[i].model, x[i].cond, x[i].nf, sub, mt.n_real, mt.n_fake, f3(b[0], mt.auc.auc),
				f3(b[1], mt.auc.lo), f3(b[2], mt.auc.hi), f3(b[3], mt.ap), f3(b[4], mt.eer),
				f3(b[5], mt.acc));
			fprintf(tsv, "%s\t%s\t%d\t%s\t%zu\t%zu\t%s\t%s\t%s\t%s\t", x[i].model, x[i].cond,
				x[i].nf, sub, mt.n_real, mt.n_fake, g17(b[0], mt.auc.auc), g17(b[1], mt.auc.se),
				g17(b[2], mt.auc.lo), g17(b[3], mt.auc.hi));
			fprintf(tsv, "%s\t%s\t%s\n", g17(b[0], mt.ap), g17(b[1], mt.eer), g17(b[2], mt.acc));
		}

	/* pairwise DeLong tests on the test rows, Holm over those defined */
	int np = nx * (nx - 1) / 2, k = 0;
	struct fd_report_dl *dl = calloc((size_t)np + 1, sizeof *dl);
	double *p = calloc((size_t)np + 1, sizeof *p), *adj = calloc((size_t)np + 1, sizeof *adj);
	int *idx = calloc((size_t)np + 1, sizeof *idx);
	if (!dl || !p || !adj || !idx) {
		free(dl), free(p), free(adj), free(idx);
		fd_err_set(e, "out of memory");
		goto out;
	}
	int nd = 0;
	for (int i = 0; i < nx; i++)
		for (int j = i + 1; j < nx; j++, k++) {
			fd_report_delong(&dl[k], rs, x[i].cond, x[i].model, "test", x[j].cond, x[j].model,
					 "test", FD_ROWS_ENSEMBLE);
			adj[k] = NAN;
			if (dl[k].defined) {
				idx[nd] = k;
				p[nd++] = dl[k].t.p;
			}
		}
	struct fd_err e2;
	if (nd && fd_holm(p, NULL, p, (size_t)nd, 0.05, &e2) == 0)
		for (int i = 0; i < nd; i++)
			adj[idx[i]] = p[i];
	fprintf(md, "\n## Pairwise comparisons on the test set\n\nDeLong's paired test of each pair's "
		    "ensemble test AUCs (the same rows), p adjusted by Holm over the %d pair%s tested.\n\n",
		nd, nd == 1 ? "" : "s");
	fprintf(cmp, "model_a\tcondition_a\tmodel_b\tcondition_b\trows\tdelta\tz\tp\tp_holm\n");
	if (np) {
		fprintf(md, "| model a | model b | rows | Δ AUC (b − a) | z | p | p (Holm) |\n"
			    "|---|---|---|---|---|---|---|\n");
	} else
		fprintf(md, "One model: no pair to compare.\n");
	k = 0;
	for (int i = 0; i < nx; i++)
		for (int j = i + 1; j < nx; j++, k++) {
			const struct fd_report_dl *d = &dl[k];
			double z = d->defined ? d->t.stat : NAN, pp = d->defined ? d->t.p : NAN;
			fprintf(md, "| %s | %s | %zu | %s | %s | %s | %s |\n", x[i].model, x[j].model, d->n,
				d->n ? f3(b[0], d->delta) : "-", f3(b[1], z), fp(b[2], pp), fp(b[3], adj[k]));
			fprintf(cmp, "%s\t%s\t%s\t%s\t%zu\t%s\t%s\t%s\t%s\n", x[i].model, x[i].cond, x[j].model,
				x[j].cond, d->n, g17(b[0], d->n ? d->delta : NAN), g17(b[1], z), g17(b[2], pp),
				g17(b[3], adj[k]));
		}
	free(dl), free(p), free(adj), free(idx);

	/* hard examples and confidence */
	fprintf(md, "\n## Hard examples\n\nThe %d most confident errors of each model's ensemble per "
		    "source: false positives (reals scored ≥ 0.5, highest first) and false negatives "
		    "(fakes scored < 0.5, lowest first), with path and score; all of them in `%s`.\n",
		nhard, hard_name);
	fprintf(hard, "model\tcondition\tsource\tkind\trank\tpath\tlabel\tscore\n");
	const char *src[256];
	for (int i = 0; i < nx; i++) {
		int nsrc = sources_of(&x[i], src, 256);
		fprintf(md, "\n%s (%s):\n\n", x[i].model, x[i].cond);
		long before = ftell(md);
		if (write_hard(md, hard, &x[i], nhard, src, nsrc, e) < 0)
			goto out;
		if (ftell(md) == before)
			fprintf(md, "- no errors at threshold 0.5\n");
	}
	fprintf(md, "\n## Confidence\n\nEnsemble test scores per source and label: rows, mean score, "
		    "share scored ≥ 0.5 (called fake) and the counts in %d equal bins of [0, 1] "
		    "(`%s`).\n\n| model | source | label | rows | mean score | share ≥ 0.5 | counts |\n"
		    "|---|---|---|---|---|---|---|\n", FD_FINAL_BINS, conf_name);
	fprintf(conf, "model\tcondition\tsource\tlabel\tbin\tlo\thi\tcount\n");
	for (int i = 0; i < nx; i++) {
		int nsrc = sources_of(&x[i], src, 256);
		write_conf(md, conf, &x[i], src, nsrc);
	}
	fprintf(md, "\nTables: `%s`, `%s`, per fold: `%s`.\n\nMade by: `%s`\n\n", m->tsv, m->compare,
		m->folds, m->cmdline);
	rc = 0;
out:
	for (int i = 0; i < cap; i++) {
		fd_rows_free(&x[i].all);
		free(x[i].source);
	}
	free(x);
	return rc;
}

/* ---- the rows Grad-CAM shows ---- */

const char *const FD_GRADCAM_CATEGORIES[4] = {"true_real", "true_fake", "false_positive", "false_negative"};

int fd_gradcam_category(int label, double score)
{
	int fake = score >= FD_EVAL_THRESHOLD;
	return label ? (fake ? 1 : 3) : (fake ? 2 : 0);
}

/* A pick candidate: s sorts ascending (the score, negated where the highest
 * comes first), then row. */
struct pick_row {
	double s;
	long row;
	size_t i;
};
static int cmp_pick(const void *pa, const void *pb)
{
	const struct pick_row *a = pa, *b = pb;
	if (a->s != b->s)
		return a->s < b->s ? -1 : 1;
	return a->row < b->row ? -1 : a->row > b->row;
}

int fd_gradcam_pick(FILE *out, const char *preds, int n, struct fd_err *e)
{
	struct fd_table t;
	fd_table_init(&t);
	if (fd_table_read(&t, preds, e) < 0)
		return -1;
	static const char *const COL[5] = {"row", "path", "source", "label", "score"};
	int c[5];
	for (int k = 0; k < 5; k++)
		if ((c[k] = fd_table_need(&t, COL[k], e)) < 0) {
			fd_table_free(&t);
			return -1;
		}
	struct pick_row *v = malloc((t.nrow + 1) * sizeof *v);
	int *cat = malloc((t.nrow + 1) * sizeof *cat);
	long *rowv = malloc((t.nrow + 1) * sizeof *rowv);
	double *sv = malloc((t.nrow + 1) * sizeof *sv);
	int rc = -1;
	if (!v || !cat || !rowv || !sv) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	for (size_t r = 0; r < t.nrow; r++) {
		const char *sr = fd_table_get(&t, r, c[0]), *sl = fd_table_get(&t, r, c[3]),
			   *ss = fd_table_get(&t, r, c[4]);
		char *end;
		long row = strtol(sr, &end, 10);
		if (!*sr || *end || row < 0) {
			fd_err_set(e, "'%s': line %zu: row '%s' is not a row number", preds, r + 2, sr);
			goto out;
		}
		if (strcmp(sl, "0") && strcmp(sl, "1")) {
			fd_err_set(e, "'%s': line %zu: label '%s' is not 0 or 1", preds, r + 2, sl);
			goto out;
		}
		double s = strtod(ss, &end);
		if (!*ss || *end || !(s >= 0 && s <= 1)) {
			fd_err_set(e, "'%s': line %zu: score '%s' is not a number in [0, 1]", preds, r + 2, ss);
			goto out;
		}
		cat[r] = fd_gradcam_category(sl[0] == '1', s);
		rowv[r] = row;
		sv[r] = s;
	}
	fprintf(out, "category\trank\trow\tpath\tsource\tlabel\tscore\n");
	for (int k = 0; k < 4; k++) {
		/* most confident first: true real and false negative lowest score,
		 * true fake and false positive highest */
		size_t m = 0;
		for (size_t r = 0; r < t.nrow; r++)
			if (cat[r] == k) {
				v[m++] = (struct pick_row){ k == 1 || k == 2 ? -sv[r] : sv[r], rowv[r], r };
			}
		qsort(v, m, sizeof *v, cmp_pick);
		for (size_t j = 0; j < m && j < (size_t)n; j++) {
			size_t r = v[j].i;
			fprintf(out, "%s\t%zu\t%ld\t%s\t%s\t%s\t%s\n", FD_GRADCAM_CATEGORIES[k], j + 1, v[j].row,
				fd_table_get(&t, r, c[1]), fd_table_get(&t, r, c[2]), fd_table_get(&t, r, c[3]),
				fd_table_get(&t, r, c[4]));
		}
	}
	rc = 0;
out:
	free(v);
	free(cat);
	free(rowv);
	free(sv);
	fd_table_free(&t);
	return rc;
}

/* out without a final suffix ext, plus add (malloc'ed; NULL when out of memory) */
static char *beside(const char *out, const char *ext, const char *add)
{
	size_t n = strlen(out), k = strlen(ext);
	if (n > k && !strcmp(out + n - k, ext))
		n -= k;
	char *s = malloc(n + strlen(add) + 1);
	if (s) {
		memcpy(s, out, n);
		strcpy(s + n, add);
	}
	return s;
}

int fd_top_save(const char *out, const struct fd_results *rs, int k, const char *prov, struct fd_err *e)
{
	struct fd_top *t = malloc(sizeof *t);
	char *json = NULL, *p_mk = beside(out, ".json", ".mk"), *p_md = beside(out, ".json", ".md");
	struct fd_out oj = { 0 }, om = { 0 }, od = { 0 };
	int rc = -1;
	if (!t || !p_mk || !p_md) {
		fd_err_set(e, "cannot write '%s': out of memory", out);
		goto done;
	}
	if (fd_top_rank(t, rs, k, e) < 0 || !(json = fd_top_json(t, e)))
		goto done;
	if (fd_out_open(&oj, out, e) < 0)
		goto done;
	if (fd_out_open(&om, p_mk, e) < 0 || fd_out_open(&od, p_md, e) < 0) {
		fd_out_abort(&oj);
		fd_out_abort(&om);
		goto done;
	}
	fputs(json, oj.f);
	fd_top_mk(om.f, t);
	fd_top_md(od.f, t, prov);
	if (fd_out_commit(&om, e) < 0 || fd_out_commit(&od, e) < 0) {
		fd_out_abort(&oj);
		fd_out_abort(&od);
		goto done;
	}
	rc = fd_out_commit(&oj, e) < 0 ? -1 : 0;
done:
	free(json);
	free(p_mk);
	free(p_md);
	free(t);
	return rc;
}

int fd_final_save(const char *out, const struct fd_results *rs, int nhard, const char *prov,
		  const char *const *inp, int ninp, struct fd_err *e)
{
	char *p[5] = { beside(out, ".md", ".tsv"), beside(out, ".md", ".compare.tsv"),
		       beside(out, ".md", ".folds.tsv"), beside(out, ".md", ".hard.tsv"),
		       beside(out, ".md", ".confidence.tsv") };
	int rc = -1;
	for (int i = 0; i < 5; i++)
		if (!p[i]) {
			fd_err_set(e, "cannot write '%s': out of memory", out);
			goto done;
		}
	struct fd_report_meta m = { NULL, 0, p[0], p[1], p[2], prov, inp, ninp };
	struct fd_out o[5] = { 0 };
	/* o[]: the Markdown, tsv, compare, hard, confidence */
	const char *path[5] = { out, p[0], p[1], p[3], p[4] };
	for (int i = 0; i < 5; i++)
		if (fd_out_open(&o[i], path[i], e) < 0) {
			for (int j = 0; j < i; j++)
				fd_out_abort(&o[j]);
			goto done;
		}
	int bad = fd_final_write(o[0].f, o[1].f, o[2].f, o[3].f, o[4].f, rs, nhard, &m, p[3], p[4], e) < 0;
	for (int i = 1; i < 5 && !bad; i++)
		bad = fd_out_commit(&o[i], e) < 0;
	if (!bad)
		bad = fd_results_write(rs, p[2], e) < 0;
	if (bad) {
		for (int j = 0; j < 5; j++)
			fd_out_abort(&o[j]);
		goto done;
	}
	rc = fd_out_commit(&o[0], e) < 0 ? -1 : 0;
done:
	for (int i = 0; i < 5; i++)
		free(p[i]);
	return rc;
}

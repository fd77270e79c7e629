/* fd-report: aggregate a phase's runs into the plan's tables (Markdown + TSV):
 * AUC over folds with t-intervals, train/validation gap, per-source AUC spread,
 * paired comparisons by the corrected resampled t-test; and best.json, the
 * phase-2 choices that phase 3 reads. */
#include "cli.h"
#include "core/fd_config.h"
#include "core/fd_out.h"
#include "eval/fd_stats.h"
#include "report/fd_results.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char SYNOPSIS[] = "fd-report --section NAME [--config FILE] -o FILE RUN_OR_TSV...";

static const char HELP[] =
	"Aggregate cross-validation runs into one section of the plan's report.\n"
	"Each RUN is a run directory .../MODEL/SETTING/foldK holding fd-eval's\n"
	"preds-EVAL.tsv files (val: the held-out fold, train: the training rows scored\n"
	"with the best checkpoint, others: the fold under another pack such as\n"
	"letterbox) and fd-train's run.json; LABEL=RUN names its condition (default:\n"
	"SETTING). A TSV is a folds table written by an earlier fd-report.\n"
	"\n"
	"Sections: phase1, 2a-geometry, 2a-colour, 2a-holdout, 2b-resolution,\n"
	"2c-facecrop, 2d-augment, 2e-augment-facecrop, phase3, 4a-scaling (FILE.md,\n"
	"with FILE.tsv, FILE.compare.tsv and FILE.folds.tsv beside it), and best\n"
	"(FILE is best.json: resolution from conditions labelled by size, face crop and\n"
	"augmentation from conditions center, face, center-aug, face-aug).\n"
	"\n"
	"  --section NAME   which table to make (above)\n"
	"  --config FILE    experiment config(s) the runs share, merged in order and\n"
	"                   quoted in the report (repeatable)\n"
	"  -o FILE          output (Markdown, or best.json for --section best)\n"
	"\n"
	"AUC mean +- std (ddof 1) and 95% t-interval over folds; gap = train AUC -\n"
	"validation AUC per fold, averaged; per-source variance = population variance of\n"
	"the fake sources' AUCs per fold, averaged; p = corrected resampled t-test\n"
	"(Nadeau & Bengio 2003) on per-fold differences, test/train ratio from the row\n"
	"counts.\n"
	"\n"
	"Exit status: 0 success, 1 bad or missing run files, 2 bad usage.\n";

enum mode { M_CONDS, M_EVALS, M_HOLDOUT, M_BEST };

static const struct {
	const char *name, *title;
	enum mode mode;
} SECTIONS[] = {
	{ "phase1", "Phase 1: controlled baseline comparison", M_CONDS },
	{ "2a-geometry", "Phase 2A, test 1: geometry (standard crop vs letterbox evaluation)", M_EVALS },
	{ "2a-colour", "Phase 2A, test 2: colour normalisation", M_CONDS },
	{ "2a-holdout", "Phase 2A, test 3: source hold-out", M_HOLDOUT },
	{ "2b-resolution", "Phase 2B: resolution", M_CONDS },
	{ "2c-facecrop", "Phase 2C: face crop", M_CONDS },
	{ "2d-augment", "Phase 2D: augmentation (no face crop)", M_CONDS },
	{ "2e-augment-facecrop", "Phase 2E: augmentation with face crop", M_CONDS },
	{ "phase3", "Phase 3: extended architectures", M_CONDS },
	{ "4a-scaling", "Phase 4A: data quantity scaling", M_CONDS },
	{ "best", "Phase 2 choices", M_BEST },
};
#define NSECTIONS (sizeof SECTIONS / sizeof SECTIONS[0])
#define MAXF 128
#define LEVEL 0.95

/* One cell of a table: a (condition, model, eval) over its folds. */
struct cell {
	int nf, fold[MAXF];
	double auc[MAXF], gap[MAXF], var[MAXF];
	struct fd_summary s;
	double train, gap_mean, var_mean;
};

static double nanmean(const double *x, int n)
{
	double s = 0;
	int k = 0;
	for (int i = 0; i < n; i++)
		if (!isnan(x[i])) {
			s += x[i];
			k++;
		}
	return k ? s / k : NAN;
}

static void cell_make(struct cell *c, const struct fd_results *rs, const char *cond,
		      const char *model, const char *eval)
{
	struct fd_err e;
	memset(c, 0, sizeof *c);
	c->nf = fd_results_folds(rs, cond, model, eval, c->fold, MAXF);
	fd_results_aucs(rs, cond, model, eval, "all", c->fold, c->nf, c->auc);
	if (fd_summary(&c->s, c->auc, (size_t)c->nf, LEVEL, &e) < 0 || c->nf == 0)
		c->s.mean = c->s.std = c->s.lo = c->s.hi = NAN;
	double tr[MAXF];
	fd_results_aucs(rs, cond, model, "train", "all", c->fold, c->nf, tr);
	for (int i = 0; i < c->nf; i++) {
		c->gap[i] = tr[i] - c->auc[i];
		double sa[256];
		int k = 0;
		for (int s = 0; s < rs->nsource && k < 256; s++) {
			const struct fd_result *r = fd_results_find(rs, cond, model, c->fold[i], eval,
								    rs->source[s]);
			if (r && r->n_fake > 0)
				sa[k++] = r->auc;
		}
		struct fd_spread sp;
		c->var[i] = fd_auc_spread(&sp, sa, (size_t)k, &e) == 0 ? sp.var : NAN;
	}
	c->train = nanmean(tr, c->nf);
	c->gap_mean = nanmean(c->gap, c->nf);
	c->var_mean = nanmean(c->var, c->nf);
}

/* Paired comparison of b against baseline a over their common folds. */
struct cmp {
	int n;
	double delta, dgap, dvar, ratio;
	struct fd_test t;
	int defined;
};

static void compare(struct cmp *o, const struct fd_results *rs, const struct cell *a,
		    const struct cell *b, const char *cond_b, const char *model_b,
		    const double *xa, const double *xb)
{
	double pa[MAXF], pb[MAXF], ga[MAXF], gb[MAXF], va[MAXF], vb[MAXF];
	int fold[MAXF], n = 0;
	for (int i = 0; i < a->nf; i++)
		for (int j = 0; j < b->nf; j++)
			if (a->fold[i] == b->fold[j] && !isnan(xa[i]) && !isnan(xb[j])) {
				fold[n] = a->fold[i];
				pa[n] = xa[i];
				pb[n] = xb[j];
				ga[n] = a->gap[i];
				gb[n] = b->gap[j];
				va[n] = a->var[i];
				vb[n] = b->var[j];
				n++;
			}
	memset(o, 0, sizeof *o);
	o->n = n;
	double d[MAXF] = {0}; /* GCC 12 + sanitizers cannot see the loop fills d[0..n) */
	for (int i = 0; i < n; i++)
		d[i] = pb[i] - pa[i];
	o->delta = n ? fd_mean(d, (size_t)n) : NAN;
	for (int i = 0; i < n; i++)
		d[i] = gb[i] - ga[i];
	o->dgap = nanmean(d, n);
	for (int i = 0; i < n; i++)
		d[i] = vb[i] - va[i];
	o->dvar = nanmean(d, n);
	o->ratio = fd_results_ratio(rs, cond_b, model_b, fold, n);
	struct fd_err e;
	o->defined = n >= 2 && fd_ttest_nadeau_bengio(&o->t, pb, pa, (size_t)n, o->ratio, &e) == 0;
	if (!o->defined)
		o->t.p = o->t.stat = NAN;
}

/* Number formatting: "NA" for NAN. */
static const char *f3(char *buf, double x)
{
	if (isnan(x))
		return "NA";
	snprintf(buf, 32, "%.3f", x);
	return buf;
}

static const char *fsig(char *buf, double x)
{
	if (isnan(x))
		return "NA";
	snprintf(buf, 32, "%+.3f", x);
	return buf;
}

static const char *fp(char *buf, double p)
{
	if (isnan(p))
		return "NA";
	if (p < 0.001)
		snprintf(buf, 32, "%.1e", p);
	else
		snprintf(buf, 32, "%.3f", p);
	return buf;
}

static const char *g17(char *buf, double x)
{
	if (isnan(x))
		return "NA";
	snprintf(buf, 40, "%.17g", x);
	return buf;
}

/* The entities compared in a section: condition/eval pairs. */
struct col {
	const char *cond, *eval;
};

static int cols_of(const struct fd_results *rs, enum mode m, struct col *c, int cap)
{
	int n = 0;
	if (m == M_EVALS) {
		for (int k = 0; k < rs->ncond; k++)
			for (size_t i = 0; i < rs->n && n < cap; i++) {
				const struct fd_result *r = &rs->r[i];
				if (strcmp(r->cond, rs->cond[k]) || !strcmp(r->eval, "train"))
					continue;
				int seen = 0;
				for (int j = 0; j < n; j++)
					seen |= !strcmp(c[j].cond, r->cond) && !strcmp(c[j].eval, r->eval);
				if (!seen) {
					/* "val" first: it is the baseline of the comparisons. */
					int at = n;
					if (!strcmp(r->eval, "val"))
						while (at > 0 && !strcmp(c[at - 1].cond, r->cond)) {
							c[at] = c[at - 1];
							at--;
						}
					c[at] = (struct col){ r->cond, r->eval };
					n++;
				}
			}
	} else {
		for (int k = 0; k < rs->ncond && n < cap; k++)
			c[n++] = (struct col){ rs->cond[k], "val" };
	}
	return n;
}

static void md_results(FILE *f, FILE *tsv, const struct fd_results *rs, const struct col *col, int ncol)
{
	char b[8][40];
	fprintf(f, "## Results\n\n| Model | Condition | Eval | Folds | AUC (mean ± std) | 95%% CI | "
		   "Train AUC | Train/Val gap |");
	fprintf(tsv, "model\tcondition\teval\tfolds\tauc_mean\tauc_std\tci_lo\tci_hi\ttrain_auc\tgap\t"
		     "source_auc_var");
	for (int s = 0; s < rs->nsource; s++) {
		fprintf(f, " AUC %s |", rs->source[s]);
		fprintf(tsv, "\tauc_%s", rs->source[s]);
	}
	fprintf(f, " Per-source AUC var |\n|---|---|---|---|---|---|---|---|");
	fprintf(tsv, "\n");
	for (int s = 0; s <= rs->nsource; s++)
		fprintf(f, "---|");
	fprintf(f, "\n");
	for (int m = 0; m < rs->nmodel; m++)
		for (int k = 0; k < ncol; k++) {
			struct cell c;
			cell_make(&c, rs, col[k].cond, rs->model[m], col[k].eval);
			if (c.nf == 0)
				continue;
			fprintf(f, "| %s | %s | %s | %d | %s ± %s | [%s, %s] | %s | %s |", rs->model[m],
				col[k].cond, col[k].eval, c.nf, f3(b[0], c.s.mean), f3(b[1], c.s.std),
				f3(b[2], c.s.lo), f3(b[3], c.s.hi), f3(b[4], c.train),
				fsig(b[5], c.gap_mean));
			fprintf(tsv, "%s\t%s\t%s\t%d\t%s\t%s\t", rs->model[m], col[k].cond, col[k].eval, c.nf,
				g17(b[0], c.s.mean), g17(b[1], c.s.std));
			fprintf(tsv, "%s\t%s\t", g17(b[0], c.s.lo), g17(b[1], c.s.hi));
			fprintf(tsv, "%s\t%s\t%s", g17(b[0], c.train), g17(b[1], c.gap_mean),
				g17(b[2], c.var_mean));
			for (int s = 0; s < rs->nsource; s++) {
				double a[MAXF];
				fd_results_aucs(rs, col[k].cond, rs->model[m], col[k].eval, rs->source[s],
						c.fold, c.nf, a);
				double mu = nanmean(a, c.nf);
				fprintf(f, " %s |", f3(b[0], mu));
				fprintf(tsv, "\t%s", g17(b[0], mu));
			}
			fprintf(f, " %s |\n", isnan(c.var_mean) ? "NA" : (snprintf(b[0], 40, "%.4f", c.var_mean), b[0]));
			fprintf(tsv, "\n");
		}
	fprintf(f, "\n");
}

static void cmp_header(FILE *f, FILE *tsv)
{
	fprintf(f, "## Comparisons\n\nEach row: the condition minus the baseline, paired by fold.\n\n"
		   "| Model | Baseline | Condition | Folds | Δ AUC | p (corrected t) | Δ gap | "
		   "Δ per-source var |\n|---|---|---|---|---|---|---|---|\n");
	fprintf(tsv, "model\tbaseline\tcondition\tmodel_b\tfolds\tdelta_auc\tt\tdf\tp\t"
		     "test_train_ratio\tdelta_gap\tdelta_source_var\n");
}

static void cmp_row(FILE *f, FILE *tsv, const char *model_a, const char *name_a, const char *model_b,
		    const char *name_b, const struct cmp *o)
{
	char b[6][40];
	const char *model = model_a;
	char both[256];
	if (strcmp(model_a, model_b)) {
		snprintf(both, sizeof both, "%s vs %s", model_b, model_a);
		model = both;
	}
	fprintf(f, "| %s | %s | %s | %d | %s | %s | %s | %s |\n", model, name_a, name_b, o->n,
		fsig(b[0], o->delta), fp(b[1], o->t.p), fsig(b[2], o->dgap),
		isnan(o->dvar) ? "NA" : (snprintf(b[3], 40, "%+.4f", o->dvar), b[3]));
	fprintf(tsv, "%s\t%s\t%s\t%s\t%d\t%s\t", model_a, name_a, name_b, model_b, o->n,
		g17(b[0], o->delta));
	fprintf(tsv, "%s\t%s\t%s\t", g17(b[0], o->t.stat), o->defined ? g17(b[1], o->t.df) : "NA",
		g17(b[2], o->t.p));
	fprintf(tsv, "%s\t%s\t%s\n", g17(b[0], o->ratio), g17(b[1], o->dgap), g17(b[2], o->dvar));
}

static void md_compare(FILE *f, FILE *tsv, const struct fd_results *rs, const struct col *col, int ncol,
		       enum mode m)
{
	cmp_header(f, tsv);
	char na[256], nb[256];
	if (ncol == 1) { /* one condition: models against the first model */
		struct cell a, c;
		cell_make(&a, rs, col[0].cond, rs->model[0], col[0].eval);
		for (int k = 1; k < rs->nmodel; k++) {
			cell_make(&c, rs, col[0].cond, rs->model[k], col[0].eval);
			struct cmp o;
			compare(&o, rs, &a, &c, col[0].cond, rs->model[k], a.auc, c.auc);
			cmp_row(f, tsv, rs->model[0], col[0].cond, rs->model[k], col[0].cond, &o);
		}
	}
	for (int mi = 0; mi < rs->nmodel; mi++) {
		const char *model = rs->model[mi];
		for (int k = 1; k < ncol; k++) {
			/* evals: each against "val" of its condition; conditions: against the first */
			int base = 0;
			if (m == M_EVALS) {
				base = k;
				while (base > 0 && !strcmp(col[base - 1].cond, col[k].cond))
					base--;
				if (base == k)
					continue;
			}
			struct cell a, c;
			cell_make(&a, rs, col[base].cond, model, col[base].eval);
			cell_make(&c, rs, col[k].cond, model, col[k].eval);
			if (a.nf == 0 || c.nf == 0)
				continue;
			struct cmp o;
			compare(&o, rs, &a, &c, col[k].cond, model, a.auc, c.auc);
			snprintf(na, sizeof na, "%s%s%s", col[base].cond, m == M_EVALS ? "/" : "",
				 m == M_EVALS ? col[base].eval : "");
			snprintf(nb, sizeof nb, "%s%s%s", col[k].cond, m == M_EVALS ? "/" : "",
				 m == M_EVALS ? col[k].eval : "");
			cmp_row(f, tsv, model, na, model, nb, &o);
		}
	}
	fprintf(f, "\n");
}

static void md_holdout(FILE *f, FILE *tsv, const struct fd_results *rs)
{
	char b[8][40];
	fprintf(f, "## Source hold-out\n\nHeld-out AUC: reals vs the fakes of the source left out of "
		   "training; in-source AUC: reals vs the fakes of the trained sources (all fakes for "
		   "the baseline); Δ = in-source - held-out, paired by fold.\n\n"
		   "| Model | Condition | Held-out source | Folds | Held-out AUC | In-source AUC | "
		   "Δ (in - held-out) | p (corrected t) |\n|---|---|---|---|---|---|---|---|\n");
	fprintf(tsv, "model\tcondition\texcluded\tfolds\theld_out_auc\tin_source_auc\tdelta\tt\tdf\tp\n");
	for (int m = 0; m < rs->nmodel; m++)
		for (int k = 0; k < rs->ncond; k++) {
			const char *model = rs->model[m], *cond = rs->cond[k];
			struct cell c;
			cell_make(&c, rs, cond, model, "val");
			if (c.nf == 0)
				continue;
			const struct fd_result *r0 = fd_results_find(rs, cond, model, c.fold[0], "val", "all");
			int none = !strcmp(r0->excluded, "-");
			double out[MAXF], in[MAXF];
			if (none) {
				for (int i = 0; i < c.nf; i++)
					out[i] = NAN;
				memcpy(in, c.auc, sizeof(double) * (size_t)c.nf);
			} else {
				fd_results_aucs(rs, cond, model, "val", "held-out", c.fold, c.nf, out);
				fd_results_aucs(rs, cond, model, "val", "in-source", c.fold, c.nf, in);
			}
			struct cmp o;
			memset(&o, 0, sizeof o);
			o.t.p = o.t.stat = NAN;
			o.delta = NAN;
			if (!none) {
				struct cell ci = c, co = c;
				memcpy(ci.auc, in, sizeof in);
				memcpy(co.auc, out, sizeof out);
				compare(&o, rs, &co, &ci, cond, model, out, in);
			}
			fprintf(f, "| %s | %s | %s | %d | %s | %s | %s | %s |\n", model, cond,
				none ? "none" : r0->excluded, c.nf,
				none ? "-" : f3(b[0], nanmean(out, c.nf)), f3(b[1], nanmean(in, c.nf)),
				none ? "-" : fsig(b[2], o.delta), none ? "-" : fp(b[3], o.t.p));
			fprintf(tsv, "%s\t%s\t%s\t%d\t%s\t", model, cond, r0->excluded, c.nf,
				g17(b[0], nanmean(out, c.nf)));
			fprintf(tsv, "%s\t%s\t%s\t", g17(b[0], nanmean(in, c.nf)), g17(b[1], o.delta),
				g17(b[2], o.t.stat));
			fprintf(tsv, "%s\t%s\n", o.defined ? g17(b[0], o.t.df) : "NA", g17(b[1], o.t.p));
		}
	fprintf(f, "\n");
}

/* Mean over models of the mean validation AUC of a condition; NAN if absent. */
static double cond_score(const struct fd_results *rs, const char *cond)
{
	double s = 0;
	int k = 0;
	for (int m = 0; m < rs->nmodel; m++) {
		struct cell c;
		cell_make(&c, rs, cond, rs->model[m], "val");
		double mu = nanmean(c.auc, c.nf);
		if (!isnan(mu)) {
			s += mu;
			k++;
		}
	}
	return k ? s / k : NAN;
}

static int has_cond(const struct fd_results *rs, const char *cond)
{
	for (int k = 0; k < rs->ncond; k++)
		if (!strcmp(rs->cond[k], cond))
			return 1;
	return 0;
}

/* "chosen (AUC x) over other (AUC y); per model: m delta (p ...)". */
static void reason(char *buf, size_t cap, const struct fd_results *rs, const char *what,
		   const char *chosen, const char *other)
{
	char b[4][40];
	size_t n = (size_t)snprintf(buf, cap, "%s: %s (mean validation AUC %s) over %s (%s)", what,
				    chosen, f3(b[0], cond_score(rs, chosen)), other,
				    f3(b[1], cond_score(rs, other)));
	int sig = 0;
	for (int m = 0; m < rs->nmodel && n < cap; m++) {
		struct cell a, c;
		cell_make(&a, rs, other, rs->model[m], "val");
		cell_make(&c, rs, chosen, rs->model[m], "val");
		if (a.nf == 0 || c.nf == 0)
			continue;
		struct cmp o;
		compare(&o, rs, &a, &c, chosen, rs->model[m], a.auc, c.auc);
		sig |= o.defined && o.t.p < 0.05;
		n += (size_t)snprintf(buf + n, cap - n, "; %s %s (p %s)", rs->model[m],
				      fsig(b[0], o.delta), fp(b[1], o.t.p));
	}
	if (n < cap)
		snprintf(buf + n, cap - n, "%s",
			 sig ? "" : "; no difference is significant at 0.05, so the choice is weak");
}

static int write_best(const char *out, const struct fd_results *rs, struct fd_err *e)
{
	/* resolution: conditions labelled by an integer size; the best two */
	const char *size = NULL, *size_other = NULL;
	double best = -1, second = -1;
	for (int k = 0; k < rs->ncond; k++) {
		char *end;
		long v = strtol(rs->cond[k], &end, 10);
		double s = cond_score(rs, rs->cond[k]);
		if (*end || v <= 0 || isnan(s))
			continue;
		if (s > best) {
			size_other = size;
			second = best;
			best = s;
			size = rs->cond[k];
		} else if (s > second) {
			second = s;
			size_other = rs->cond[k];
		}
	}
	static const char *const COMBO[4] = { "center", "face", "center-aug", "face-aug" };
	const char *combo = NULL;
	best = -1;
	for (int k = 0; k < 4; k++) {
		double s = has_cond(rs, COMBO[k]) ? cond_score(rs, COMBO[k]) : NAN;
		if (!isnan(s) && s > best) {
			best = s;
			combo = COMBO[k];
		}
	}
	if (!size || !size_other)
		return fd_err_set(e, "section best: need two resolution conditions (labels such as 128 and 224)");
	if (!combo || !has_cond(rs, "center") || !has_cond(rs, "face"))
		return fd_err_set(e, "section best: need conditions center and face (and optionally "
				     "center-aug, face-aug)");
	int face = !strncmp(combo, "face", 4), aug = strstr(combo, "-aug") != NULL;
	char r_size[2048], r_face[2048], r_aug[2048];
	reason(r_size, sizeof r_size, rs, "resolution", size, size_other);
	/* face crop: chosen geometry vs the other at the chosen augmentation */
	const char *fo = face ? (aug ? "center-aug" : "center") : (aug ? "face-aug" : "face");
	if (!has_cond(rs, fo))
		fo = face ? "center" : "face";
	reason(r_face, sizeof r_face, rs, "face crop", combo, fo);
	const char *ao = aug ? (face ? "face" : "center") : (face ? "face-aug" : "center-aug");
	if (has_cond(rs, ao))
		reason(r_aug, sizeof r_aug, rs, "augmentation", combo, ao);
	else
		snprintf(r_aug, sizeof r_aug, "augmentation: no run with augmentation to compare");

	json_t *j = json_object(), *why = json_object(), *auc = json_object();
	json_object_set_new(j, "size", json_integer(strtol(size, NULL, 10)));
	json_object_set_new(j, "geometry", json_string(face ? "face" : "center"));
	json_object_set_new(j, "augment", json_boolean(aug));
	json_object_set_new(why, "size", json_string(r_size));
	json_object_set_new(why, "geometry", json_string(r_face));
	json_object_set_new(why, "augment", json_string(r_aug));
	json_object_set_new(j, "reason", why);
	for (int k = 0; k < rs->ncond; k++) {
		double s = cond_score(rs, rs->cond[k]);
		json_object_set_new(auc, rs->cond[k], isnan(s) ? json_null() : json_real(s));
	}
	json_object_set_new(j, "mean_val_auc", auc);
	json_object_set_new(j, "rule", json_string(
		"each choice is the condition with the highest validation AUC averaged over folds and "
		"models; face crop and augmentation are chosen together among center, face, center-aug, "
		"face-aug; p-values: corrected resampled t-test over folds"));
	char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	json_decref(j);
	if (!txt)
		return fd_err_set(e, "out of memory");
	struct fd_out o;
	if (fd_out_open(&o, out, e) < 0) {
		free(txt);
		return -1;
	}
	fprintf(o.f, "%s\n", txt);
	free(txt);
	return fd_out_commit(&o, e);
}

/* stem of out: without a final ".md". */
static char *stem_of(const char *out)
{
	size_t n = strlen(out);
	if (n > 3 && !strcmp(out + n - 3, ".md"))
		n -= 3;
	char *s = malloc(n + 1);
	if (!s)
		cli_die("out of memory");
	memcpy(s, out, n);
	s[n] = '\0';
	return s;
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-report", SYNOPSIS, HELP);
	const char *section = NULL, *out = NULL;
	const char **cfg = calloc((size_t)argc, sizeof *cfg), **inp = calloc((size_t)argc, sizeof *inp);
	int ncfg = 0, ninp = 0, dashdash = 0;
	if (!cfg || !inp)
		cli_die("out of memory");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!dashdash && a[0] == '-' && a[1]) {
			if (!strcmp(a, "--")) {
				dashdash = 1;
				continue;
			}
			if (!strcmp(a, "-q"))
				continue;
			if (i + 1 >= argc)
				cli_usage("option '%s' needs a value", a);
			if (!strcmp(a, "--section"))
				section = argv[++i];
			else if (!strcmp(a, "--config"))
				cfg[ncfg++] = argv[++i];
			else if (!strcmp(a, "-o"))
				out = argv[++i];
			else
				cli_usage("unknown option '%s'", a);
		} else {
			inp[ninp++] = a;
		}
	}
	if (!section)
		cli_usage("--section is required");
	if (!out || !*out)
		cli_usage("-o FILE is required");
	if (!strcmp(out, "-"))
		cli_usage("-o must name a file (the tables are written beside it)");
	if (ninp == 0)
		cli_usage("no runs or folds tables given");
	size_t si = 0;
	while (si < NSECTIONS && strcmp(SECTIONS[si].name, section))
		si++;
	if (si == NSECTIONS)
		cli_usage("unknown section '%s'", section);
	enum mode mode = SECTIONS[si].mode;

	struct fd_err e;
	struct fd_config conf = { 0 };
	char *conf_txt = NULL;
	if (ncfg) {
		if (fd_config_init(&conf, &e) < 0)
			cli_fail(&e);
		for (int i = 0; i < ncfg; i++)
			if (fd_config_load(&conf, cfg[i], &e) < 0)
				cli_fail(&e);
		if (!(conf_txt = fd_config_dump(&conf, &e)))
			cli_fail(&e);
	}

	char *stem = stem_of(out);
	size_t sl = strlen(stem) + 32;
	char *p_tsv = malloc(sl), *p_cmp = malloc(sl), *p_folds = malloc(sl);
	if (!p_tsv || !p_cmp || !p_folds)
		cli_die("out of memory");
	snprintf(p_tsv, sl, "%s.tsv", stem);
	snprintf(p_cmp, sl, "%s.compare.tsv", stem);
	snprintf(p_folds, sl, "%s.folds.tsv", stem);
	/* no output may be an input, nor a file inside an input run directory */
	const char **ins = calloc((size_t)ninp, sizeof *ins);
	if (!ins)
		cli_die("out of memory");
	for (int i = 0; i < ninp; i++)
		ins[i] = strchr(inp[i], '=') && !strchr(strchr(inp[i], '=') + 1, '=') ? strchr(inp[i], '=') + 1 : inp[i];
	const char *outs[4] = {out, p_tsv, p_cmp, p_folds};
	cli_outputs(ins, ninp, outs, mode == M_BEST ? 1 : 4);
	free(ins);
	struct fd_results rs;
	fd_results_init(&rs);
	for (int i = 0; i < ninp; i++) {
		const char *p = inp[i], *eq = strchr(p, '=');
		char label[256] = "";
		if (eq && eq > p && eq - p < (long)sizeof label && !strchr(eq + 1, '=')) {
			memcpy(label, p, (size_t)(eq - p));
			label[eq - p] = '\0';
			p = eq + 1;
		}
		struct stat st;
		if (stat(p, &st) < 0)
			cli_die("cannot read '%s': no such file or directory", p);
		int rc = S_ISDIR(st.st_mode) ? fd_results_add_run(&rs, p, *label ? label : NULL, &e)
					     : fd_results_add_tsv(&rs, p, &e);
		if (rc < 0)
			cli_fail(&e);
	}

	if (mode == M_BEST) {
		if (write_best(out, &rs, &e) < 0)
			cli_fail(&e);
		cli_info("wrote %s", out);
		fd_results_free(&rs);
		fd_config_free(&conf);
		free(stem), free(p_tsv), free(p_cmp), free(p_folds);
		free(conf_txt);
		free(cfg);
		free(inp);
		return 0;
	}


	struct col col[256];
	int ncol = cols_of(&rs, mode, col, 256);
	struct fd_out om, ot, oc;
	if (fd_out_open(&om, out, &e) < 0)
		cli_fail(&e);
	if (fd_out_open(&ot, p_tsv, &e) < 0 || fd_out_open(&oc, p_cmp, &e) < 0) {
		fd_out_abort(&om);
		cli_fail(&e);
	}
	FILE *f = om.f;
	fprintf(f, "# %s\n\n", SECTIONS[si].title);
	fprintf(f, "AUC is measured on the held-out fold of each cross-validation split (eval "
		   "`val`; other evals score the same fold from another pack) and summarised over "
		   "folds: mean ± standard deviation (ddof 1) and the 95%% Student-t interval. "
		   "Train AUC scores the training rows with the best checkpoint; the gap is train "
		   "minus validation AUC. Per-source AUC: all reals vs one source's fakes; its "
		   "variance is the population variance over sources. p: corrected resampled "
		   "t-test (Nadeau & Bengio 2003) on the per-fold differences.\n\n");
	fprintf(f, "Models: ");
	for (int m = 0; m < rs.nmodel; m++)
		fprintf(f, "%s%s", m ? ", " : "", rs.model[m]);
	fprintf(f, ". Conditions: ");
	for (int k = 0; k < rs.ncond; k++)
		fprintf(f, "%s%s", k ? ", " : "", rs.cond[k]);
	fprintf(f, ".\n\n");
	md_results(f, ot.f, &rs, col, ncol);
	if (mode == M_HOLDOUT)
		md_holdout(f, oc.f, &rs);
	else
		md_compare(f, oc.f, &rs, col, ncol, mode);
	if (conf_txt)
		fprintf(f, "## Configuration\n\nShared config (%d file%s, merged):\n\n```json\n%s\n```\n\n",
			ncfg, ncfg > 1 ? "s" : "", conf_txt);
	fprintf(f, "Tables: `%s`, `%s`, per fold: `%s`.\n\nMade by: `%s`\n", p_tsv, p_cmp, p_folds,
		cli_cmdline());
	/* The Markdown is the target Make watches: commit it last. */
	if (fd_out_commit(&ot, &e) < 0 || fd_out_commit(&oc, &e) < 0 ||
	    fd_results_write(&rs, p_folds, &e) < 0) {
		fd_out_abort(&om);
		cli_fail(&e);
	}
	if (fd_out_commit(&om, &e) < 0)
		cli_fail(&e);
	cli_info("wrote %s", out);
	free(stem);
	free(p_tsv);
	free(p_cmp);
	free(p_folds);
	fd_results_free(&rs);
	fd_config_free(&conf);
	free(conf_txt);
	free(cfg);
	free(inp);
	return 0;
}

/* fd_report: cell summaries, paired comparisons, the section writers and the
 * phase-2 decision rule of fd-report (formats: man/fd-report.1, doc/pipelines.md). */
#include "report/fd_report.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fd_table.h"
#include "eval/fd_metrics.h"

static const struct fd_report_section SECTIONS[] = {
	{ "phase1", "Phase 1: controlled baseline comparison", FD_REPORT_CONDS, NULL, 0 },
	{ "2a-geometry", "Phase 2A, test 1: geometry (letterbox-trained model under letterbox and matched geometry)",
	  FD_REPORT_GEOMETRY, NULL, 0 },
	{ "2a-colour", "Phase 2A, test 2: colour normalisation", FD_REPORT_CONDS, NULL, 0 },
	{ "2a-holdout", "Phase 2A, test 3: source hold-out", FD_REPORT_HOLDOUT, NULL, 0 },
	{ "2b-resolution", "Phase 2B: resolution", FD_REPORT_CONDS, NULL, 0 },
	{ "2c-facecrop", "Phase 2C: face crop", FD_REPORT_CONDS, NULL, 1 },
	{ "2d-augment", "Phase 2D: augmentation (no face crop)", FD_REPORT_CONDS, NULL, 0 },
	{ "2e-augment-facecrop", "Phase 2E: augmentation with face crop", FD_REPORT_CONDS, NULL, 1 },
	{ "phase3", "Phase 3: extended architectures", FD_REPORT_CONDS, NULL, 0 },
	{ "4a-scaling", "Phase 4A: data quantity scaling", FD_REPORT_CONDS, "full", 0 },
	{ "best", "Phase 2 choices", FD_REPORT_BEST, NULL, 0 },
	{ "top", "Phase 4B: the models chosen for the full data", FD_REPORT_TOP, NULL, 0 },
	{ "4b-final", "Phase 4B: the chosen models on the full data, test set", FD_REPORT_FINAL, NULL, 0 },
};
#define NSECTIONS (sizeof SECTIONS / sizeof SECTIONS[0])
#define MAXF FD_REPORT_MAXF

const struct fd_report_section *fd_report_section(const char *name)
{
	for (size_t i = 0; i < NSECTIONS; i++)
		if (!strcmp(SECTIONS[i].name, name))
			return &SECTIONS[i];
	return NULL;
}

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

/* The test-set numbers of c (see struct fd_report_cell). */
static void cell_test(struct fd_report_cell *c, const struct fd_results *rs, const char *cond,
		      const char *model)
{
	struct fd_err e;
	double ta[MAXF];
	int tf[MAXF];
	int nt = fd_results_folds(rs, cond, model, "test", tf, MAXF);
	fd_results_aucs(rs, cond, model, "test", "all", tf, nt, ta);
	c->test_fold_mean = nt ? nanmean(ta, nt) : NAN;
	c->test_fold_sd = nt >= 2 ? fd_std(ta, (size_t)nt) : NAN;
	c->test = (struct fd_auc_ci){ NAN, NAN, NAN, NAN };
	c->test_ap = c->test_eer = NAN;
	struct fd_rows r;
	if (nt == 0 || fd_results_rows(&r, rs, cond, model, "test", "all", tf, nt, FD_ROWS_ENSEMBLE, &e) != 0)
		return;
	c->test_n = r.n;
	if (fd_delong_ci(&c->test, r.score, r.label, r.n, FD_REPORT_LEVEL, FD_AUC_CI_LOGIT, &e) < 0)
		c->test = (struct fd_auc_ci){ NAN, NAN, NAN, NAN };
	if (fd_average_precision(r.score, r.label, r.n, &c->test_ap, &e) != 0)
		c->test_ap = NAN;
	if (fd_eer(r.score, r.label, r.n, FD_EER_INTERP, &c->test_eer, &e) != 0)
		c->test_eer = NAN;
	fd_rows_free(&r);
}

void fd_report_cell(struct fd_report_cell *c, const struct fd_results *rs, const char *cond,
		    const char *model, const char *eval)
{
	struct fd_err e;
	memset(c, 0, sizeof *c);
	c->nf = fd_results_folds(rs, cond, model, eval, c->fold, MAXF);
	fd_results_aucs(rs, cond, model, eval, "all", c->fold, c->nf, c->auc);
	double ratio = fd_results_ratio_eval(rs, cond, model, eval, c->fold, c->nf);
	if (c->nf == 0 || fd_summary_nb(&c->s, c->auc, (size_t)c->nf, ratio, FD_REPORT_LEVEL, &e) < 0)
		c->s.mean = c->s.std = c->s.lo = c->s.hi = NAN;
	if (c->nf == 1 && !isnan(c->auc[0]))
		c->s.mean = c->auc[0];
	fd_summary_clip(&c->s, 0, 1);
	double tr[MAXF] = {0}, ap[MAXF] = {0}, eer[MAXF] = {0}; /* GCC 12 + sanitizers: maybe-uninitialized */
	fd_results_aucs(rs, cond, model, "train", "all", c->fold, c->nf, tr);
	for (int i = 0; i < c->nf; i++) {
		const struct fd_result *r = fd_results_find(rs, cond, model, c->fold[i], eval, "all");
		ap[i] = r ? r->ap : NAN;
		eer[i] = r ? r->eer : NAN;
		/* train AUC leaves out excluded sources: compare with the in-source AUC */
		const struct fd_result *in = r && strcmp(r->excluded, "-")
			? fd_results_find(rs, cond, model, c->fold[i], eval, "in-source") : NULL;
		c->gap[i] = tr[i] - (in ? in->auc : c->auc[i]);
		double sa[256];
		int k = 0;
		for (int s = 0; s < rs->nsource && k < 256; s++) {
			const struct fd_result *q = fd_results_find(rs, cond, model, c->fold[i], eval,
								    rs->source[s]);
			if (q && q->n_fake > 0)
				sa[k++] = q->auc;
		}
		struct fd_spread sp;
		int ok = fd_auc_spread(&sp, sa, (size_t)k, &e) == 0;
		c->var[i] = ok ? sp.var : NAN;
		c->sd[i] = ok ? sp.std : NAN;
	}
	c->train = nanmean(tr, c->nf);
	c->gap_mean = nanmean(c->gap, c->nf);
	c->var_mean = nanmean(c->var, c->nf);
	c->sd_mean = nanmean(c->sd, c->nf);
	c->ap_mean = nanmean(ap, c->nf);
	c->eer_mean = nanmean(eer, c->nf);
	c->test_fold_mean = c->test_fold_sd = c->test_ap = c->test_eer = NAN;
	c->test = (struct fd_auc_ci){ NAN, NAN, NAN, NAN };
	if (c->nf && (!strcmp(eval, "val") || !strcmp(eval, "full")))
		cell_test(c, rs, cond, model);
}

void fd_report_delong(struct fd_report_dl *o, const struct fd_results *rs, const char *cond_a,
		      const char *model_a, const char *eval_a, const char *cond_b,
		      const char *model_b, const char *eval_b, enum fd_rows_mode mode)
{
	struct fd_err e;
	memset(o, 0, sizeof *o);
	o->delta = o->t.p = o->t.stat = NAN;
	int fa[MAXF], fb[MAXF];
	int na = fd_results_folds(rs, cond_a, model_a, eval_a, fa, MAXF);
	int nb = fd_results_folds(rs, cond_b, model_b, eval_b, fb, MAXF);
	struct fd_rows a, b;
	if (na == 0 || nb == 0 ||
	    fd_results_rows(&a, rs, cond_a, model_a, eval_a, "all", fa, na, mode, &e) != 0)
		return;
	if (fd_results_rows(&b, rs, cond_b, model_b, eval_b, "all", fb, nb, mode, &e) != 0) {
		fd_rows_free(&a);
		return;
	}
	/* the rows in both (both sorted by key), with the same label */
	size_t cap = a.n < b.n ? a.n : b.n, n = 0;
	double *sa = malloc((cap + 1) * sizeof *sa), *sb = malloc((cap + 1) * sizeof *sb);
	uint8_t *lab = malloc(cap + 1);
	int agree = sa && sb && lab;
	for (size_t i = 0, j = 0; agree && i < a.n && j < b.n;) {
		int c = strcmp(a.key[i], b.key[j]);
		if (c < 0)
			i++;
		else if (c > 0)
			j++;
		else {
			agree = a.label[i] == b.label[j];
			sa[n] = a.score[i++];
			sb[n] = b.score[j++];
			lab[n++] = b.label[j - 1];
		}
	}
	struct fd_delong d;
	if (agree && n > 0) {
		o->n = n;
		o->defined = fd_delong_test(&o->t, &d, sb, sa, lab, n, &e) == 0;
		if (fd_auc(sb, lab, n, &d.auc[0], &e) == 0 && fd_auc(sa, lab, n, &d.auc[1], &e) == 0)
			o->delta = d.auc[0] - d.auc[1];
	}
	if (!o->defined)
		o->t.p = o->t.stat = NAN;
	free(sa);
	free(sb);
	free(lab);
	fd_rows_free(&a);
	fd_rows_free(&b);
}

void fd_report_compare(struct fd_report_cmp *o, const struct fd_results *rs,
		       const struct fd_report_cell *a, const struct fd_report_cell *b,
		       const char *cond_b, const char *model_b, const double *xa, const double *xb)
{
	double pa[MAXF], pb[MAXF], ga[MAXF], gb[MAXF], va[MAXF], vb[MAXF], sa[MAXF], sb[MAXF];
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
				sa[n] = a->sd[i];
				sb[n] = b->sd[j];
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
	for (int i = 0; i < n; i++)
		d[i] = sb[i] - sa[i];
	o->dsd = nanmean(d, n);
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

static int cols_of(const struct fd_results *rs, const struct fd_report_section *sec, struct col *c,
		   int cap)
{
	enum fd_report_mode m = sec->mode;
	int n = 0;
	if (m == FD_REPORT_EVALS || m == FD_REPORT_GEOMETRY) {
		for (int k = 0; k < rs->ncond; k++)
			for (size_t i = 0; i < rs->n && n < cap; i++) {
				const struct fd_result *r = &rs->r[i];
				/* the test set and 4A's full fold are not evals of the fold */
				if (strcmp(r->cond, rs->cond[k]) || !strcmp(r->eval, "train") ||
				    !strcmp(r->eval, "test") || !strcmp(r->eval, "full"))
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
			c[n++] = (struct col){ rs->cond[k], sec->eval ? sec->eval : "val" };
	}
	return n;
}

static const char *f4(char *buf, double x)
{
	if (isnan(x))
		return "NA";
	snprintf(buf, 32, "%.4f", x);
	return buf;
}

static void md_results(FILE *f, FILE *tsv, const struct fd_results *rs, const struct col *col, int ncol)
{
	char b[8][40];
	fprintf(f, "## Results\n\n| Model | Condition | Eval | Folds | AUC (mean ± sd) | 95%% CI (NB) | "
		   "AP | EER | Test AUC (ensemble) | Test 95%% CI (DeLong) | Test AUC per fold (mean ± sd) | "
		   "Test AP | Test EER | Train AUC | Train/Val gap |");
	fprintf(tsv, "model\tcondition\teval\tfolds\tauc_mean\tauc_std\tci_lo\tci_hi\ttrain_auc\tgap\t"
		     "source_auc_var\tsource_auc_std\tap_mean\teer_mean\ttest_rows\ttest_auc\ttest_ci_lo\t"
		     "test_ci_hi\ttest_ap\ttest_eer\ttest_auc_fold_mean\ttest_auc_fold_sd");
	for (int s = 0; s < rs->nsource; s++) {
		fprintf(f, " AUC %s |", rs->source[s]);
		fprintf(tsv, "\tauc_%s", rs->source[s]);
	}
	fprintf(f, " Per-source AUC var | Per-source AUC sd |\n|---|---|---|---|---|---|---|---|---|---|---|"
		   "---|---|---|---|");
	fprintf(tsv, "\n");
	for (int s = 0; s <= rs->nsource + 1; s++)
		fprintf(f, "---|");
	fprintf(f, "\n");
	for (int m = 0; m < rs->nmodel; m++)
		for (int k = 0; k < ncol; k++) {
			struct fd_report_cell c;
			fd_report_cell(&c, rs, col[k].cond, rs->model[m], col[k].eval);
			if (c.nf == 0)
				continue;
			/* an evaluation-only eval (another geometry's pack) has no training
			 * AUC of its own (the training rows were scored in the training
			 * geometry): no gap */
			int evonly = strcmp(col[k].eval, "val") != 0 && strcmp(col[k].eval, "full") != 0;
			if (evonly)
				c.train = c.gap_mean = NAN;
			fprintf(f, "| %s | %s | %s | %d | %s ± %s | [%s, %s] | ", rs->model[m], col[k].cond,
				col[k].eval, c.nf, f3(b[0], c.s.mean), f3(b[1], c.s.std), f3(b[2], c.s.lo),
				f3(b[3], c.s.hi));
			fprintf(f, "%s | %s | %s | [%s, %s] | %s ± %s | ", f3(b[0], c.ap_mean),
				f3(b[1], c.eer_mean), f3(b[2], c.test.auc), f3(b[3], c.test.lo),
				f3(b[4], c.test.hi), f3(b[5], c.test_fold_mean), f3(b[6], c.test_fold_sd));
			fprintf(f, "%s | %s | %s | %s |", f3(b[0], c.test_ap), f3(b[1], c.test_eer),
				evonly ? "-" : f3(b[2], c.train), evonly ? "-" : fsig(b[3], c.gap_mean));
			fprintf(tsv, "%s\t%s\t%s\t%d\t%s\t%s\t", rs->model[m], col[k].cond, col[k].eval, c.nf,
				g17(b[0], c.s.mean), g17(b[1], c.s.std));
			fprintf(tsv, "%s\t%s\t", g17(b[0], c.s.lo), g17(b[1], c.s.hi));
			fprintf(tsv, "%s\t%s\t%s\t%s\t", g17(b[0], c.train), g17(b[1], c.gap_mean),
				g17(b[2], c.var_mean), g17(b[3], c.sd_mean));
			fprintf(tsv, "%s\t%s\t%zu\t%s\t", g17(b[0], c.ap_mean), g17(b[1], c.eer_mean), c.test_n,
				g17(b[2], c.test.auc));
			fprintf(tsv, "%s\t%s\t%s\t%s\t", g17(b[0], c.test.lo), g17(b[1], c.test.hi),
				g17(b[2], c.test_ap), g17(b[3], c.test_eer));
			fprintf(tsv, "%s\t%s", g17(b[0], c.test_fold_mean), g17(b[1], c.test_fold_sd));
			for (int s = 0; s < rs->nsource; s++) {
				double a[MAXF];
				fd_results_aucs(rs, col[k].cond, rs->model[m], col[k].eval, rs->source[s],
						c.fold, c.nf, a);
				double mu = nanmean(a, c.nf);
				fprintf(f, " %s |", f3(b[0], mu));
				fprintf(tsv, "\t%s", g17(b[0], mu));
			}
			fprintf(f, " %s | %s |\n", f4(b[0], c.var_mean), f4(b[1], c.sd_mean));
			fprintf(tsv, "\n");
		}
	fprintf(f, "\n");
}

/* One row of a comparisons table: b against baseline a. */
struct cmp_line {
	const char *model_a, *model_b;
	char name_a[256], name_b[256];
	struct fd_report_cmp o;
	struct fd_report_dl val, test;
	double holm[3]; /* Holm-adjusted p of o.t, val.t, test.t over the table */
};

static void cmp_line(struct cmp_line *l, const struct fd_results *rs, const char *model_a,
		     const struct col *ca, const char *model_b, const struct col *cb, int evals)
{
	struct fd_report_cell a, c;
	l->model_a = model_a;
	l->model_b = model_b;
	snprintf(l->name_a, sizeof l->name_a, "%s%s%s", ca->cond, evals ? "/" : "", evals ? ca->eval : "");
	snprintf(l->name_b, sizeof l->name_b, "%s%s%s", cb->cond, evals ? "/" : "", evals ? cb->eval : "");
	fd_report_cell(&a, rs, ca->cond, model_a, ca->eval);
	fd_report_cell(&c, rs, cb->cond, model_b, cb->eval);
	fd_report_compare(&l->o, rs, &a, &c, cb->cond, model_b, a.auc, c.auc);
	fd_report_delong(&l->val, rs, ca->cond, model_a, ca->eval, cb->cond, model_b, cb->eval, FD_ROWS_POOL);
	fd_report_delong(&l->test, rs, ca->cond, model_a, "test", cb->cond, model_b, "test", FD_ROWS_ENSEMBLE);
	if (evals) /* evals of one fold share one test set: nothing to compare there */
		l->test = (struct fd_report_dl){ 0, NAN, { NAN, NAN, NAN, NAN, NAN }, 0 };
}

/* Holm over the defined p-values of each test of the table (one family per
 * test: fd_holm); undefined stays NAN. */
static void holm_lines(struct cmp_line *l, int n)
{
	struct fd_err e;
	for (int t = 0; t < 3; t++) {
		double p[512];
		int idx[512], m = 0;
		for (int i = 0; i < n && m < 512; i++) {
			double v = t == 0 ? l[i].o.t.p : t == 1 ? l[i].val.t.p : l[i].test.t.p;
			l[i].holm[t] = NAN;
			if (!isnan(v)) {
				p[m] = v;
				idx[m++] = i;
			}
		}
		if (m && fd_holm(p, NULL, p, (size_t)m, 0.05, &e) == 0)
			for (int i = 0; i < m; i++)
				l[idx[i]].holm[t] = p[i];
	}
}

/* "p (Holm p)" */
static const char *fph(char *buf, double p, double h)
{
	char x[32], y[32];
	if (isnan(p))
		return "NA";
	snprintf(buf, 80, "%s (%s)", fp(x, p), fp(y, h));
	return buf;
}

static void cmp_print(FILE *f, FILE *tsv, const struct cmp_line *l, int n)
{
	fprintf(f, "## Comparisons\n\nEach row: the condition minus the baseline. Δ AUC and the "
		   "corrected t-test: paired by fold (validation AUCs). DeLong (val): DeLong's paired test on the "
		   "pooled out-of-fold validation scores, the rows both sides scored. Δ test AUC and DeLong "
		   "(test): the fold models' averaged scores of the test rows (an ensemble), DeLong's paired "
		   "test on those rows. In brackets: Holm-adjusted p over this table's comparisons (one family "
		   "per test).\n\n"
		   "| Model | Baseline | Condition | Folds | Δ AUC | p corrected t (Holm) | Δ AUC pooled val | "
		   "p DeLong val (Holm) | Δ test AUC | p DeLong test (Holm) | Δ gap | Δ per-source var | "
		   "Δ per-source sd |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	fprintf(tsv, "model\tbaseline\tcondition\tmodel_b\tfolds\tdelta_auc\tt\tdf\tp\t"
		     "test_train_ratio\tdelta_gap\tdelta_source_var\tdelta_source_sd\tp_holm\tdelong_val_rows\t"
		     "delong_val_delta\tdelong_val_z\tdelong_val_p\tdelong_val_p_holm\tdelong_test_rows\t"
		     "delong_test_delta\tdelong_test_z\tdelong_test_p\tdelong_test_p_holm\n");
	for (int i = 0; i < n; i++) {
		const struct cmp_line *c = &l[i];
		const struct fd_report_cmp *o = &c->o;
		char b[8][80], both[600];
		const char *model = c->model_a;
		if (strcmp(c->model_a, c->model_b)) {
			snprintf(both, sizeof both, "%s vs %s", c->model_b, c->model_a);
			model = both;
		}
		fprintf(f, "| %s | %s | %s | %d | %s | %s | %s | %s | ", model, c->name_a, c->name_b, o->n,
			fsig(b[0], o->delta), fph(b[1], o->t.p, c->holm[0]), fsig(b[2], c->val.delta),
			fph(b[3], c->val.t.p, c->holm[1]));
		fprintf(f, "%s | %s | %s | %s | %s |\n", fsig(b[0], c->test.delta),
			fph(b[1], c->test.t.p, c->holm[2]), fsig(b[2], o->dgap),
			isnan(o->dvar) ? "NA" : (snprintf(b[3], 40, "%+.4f", o->dvar), b[3]),
			isnan(o->dsd) ? "NA" : (snprintf(b[4], 40, "%+.4f", o->dsd), b[4]));
		fprintf(tsv, "%s\t%s\t%s\t%s\t%d\t%s\t", c->model_a, c->name_a, c->name_b, c->model_b, o->n,
			g17(b[0], o->delta));
		fprintf(tsv, "%s\t%s\t%s\t", g17(b[0], o->t.stat), o->defined ? g17(b[1], o->t.df) : "NA",
			g17(b[2], o->t.p));
		fprintf(tsv, "%s\t%s\t%s\t%s\t%s\t", g17(b[0], o->ratio), g17(b[1], o->dgap),
			g17(b[2], o->dvar), g17(b[3], o->dsd), g17(b[4], c->holm[0]));
		fprintf(tsv, "%zu\t%s\t%s\t%s\t%s\t", c->val.n, g17(b[0], c->val.delta), g17(b[1], c->val.t.stat),
			g17(b[2], c->val.t.p), g17(b[3], c->holm[1]));
		fprintf(tsv, "%zu\t%s\t%s\t%s\t%s\n", c->test.n, g17(b[0], c->test.delta),
			g17(b[1], c->test.t.stat), g17(b[2], c->test.t.p), g17(b[3], c->holm[2]));
	}
	fprintf(f, "\n");
}

static int md_compare(FILE *f, FILE *tsv, const struct fd_results *rs, const struct col *col, int ncol,
		      enum fd_report_mode m, struct fd_err *e)
{
	struct cmp_line *l = malloc(512 * sizeof *l); /* report tables are small */
	int n = 0;
	if (!l)
		return fd_err_set(e, "out of memory");
	if (ncol == 1) /* one condition: models against the first model */
		for (int k = 1; k < rs->nmodel && n < 512; k++)
			cmp_line(&l[n++], rs, rs->model[0], &col[0], rs->model[k], &col[0], 0);
	for (int mi = 0; mi < rs->nmodel; mi++) {
		const char *model = rs->model[mi];
		for (int k = 1; k < ncol && n < 512; k++) {
			/* evals: each against "val" of its condition; conditions: against the first */
			int base = 0;
			if (m == FD_REPORT_EVALS) {
				base = k;
				while (base > 0 && !strcmp(col[base - 1].cond, col[k].cond))
					base--;
				if (base == k)
					continue;
			}
			struct fd_report_cell a, c;
			fd_report_cell(&a, rs, col[base].cond, model, col[base].eval);
			fd_report_cell(&c, rs, col[k].cond, model, col[k].eval);
			if (a.nf == 0 || c.nf == 0)
				continue;
			cmp_line(&l[n++], rs, model, &col[base], model, &col[k], m == FD_REPORT_EVALS);
		}
	}
	holm_lines(l, n);
	cmp_print(f, tsv, l, n);
	free(l);
	return 0;
}

/* AUC of the test-set ensemble of (cond, model) on subset; NAN without test rows. */
static double ensemble_auc(const struct fd_results *rs, const char *cond, const char *model,
			   const char *subset)
{
	struct fd_err e;
	int tf[MAXF], nt = fd_results_folds(rs, cond, model, "test", tf, MAXF);
	struct fd_rows r;
	double a = NAN;
	if (nt == 0 || fd_results_rows(&r, rs, cond, model, "test", subset, tf, nt, FD_ROWS_ENSEMBLE, &e) != 0)
		return NAN;
	if (fd_auc(r.score, r.label, r.n, &a, &e) != 0)
		a = NAN;
	fd_rows_free(&r);
	return a;
}

/* AUC and DeLong variance of the pooled out-of-fold validation rows of subset;
 * -1 when undefined (no score rows, fewer than 2 of a class). */
static int pooled_auc(double *auc, double *var, size_t *n, const struct fd_results *rs, const char *cond,
		      const char *model, const char *subset, const int *fold, int nf)
{
	struct fd_err e;
	struct fd_rows r;
	struct fd_auc_ci ci;
	*n = 0;
	if (fd_results_rows(&r, rs, cond, model, "val", subset, fold, nf, FD_ROWS_POOL, &e) != 0)
		return -1;
	*n = r.n;
	int rc = fd_delong_ci(&ci, r.score, r.label, r.n, 0.95, FD_AUC_CI_WALD, &e);
	fd_rows_free(&r);
	if (rc != 0)
		return -1;
	*auc = ci.auc;
	*var = ci.se * ci.se;
	return 0;
}

void fd_report_holdout(struct fd_report_holdout *h, const struct fd_results *rs, const char *cond,
		       const char *model)
{
	struct fd_report_cell c;
	double out[MAXF], in[MAXF];
	memset(h, 0, sizeof *h);
	h->out = h->in = h->delta = h->p = NAN;
	h->o.delta = h->o.t.p = h->o.t.stat = NAN;
	h->dl = (struct fd_test){ NAN, NAN, NAN, INFINITY, NAN };
	h->found = -1;
	fd_report_cell(&c, rs, cond, model, "val");
	h->nf = c.nf;
	if (c.nf == 0)
		return;
	const struct fd_result *r0 = fd_results_find(rs, cond, model, c.fold[0], "val", "all");
	if (!strcmp(r0->excluded, "-")) {
		h->in = nanmean(c.auc, c.nf);
		return;
	}
	fd_results_aucs(rs, cond, model, "val", "held-out", c.fold, c.nf, out);
	fd_results_aucs(rs, cond, model, "val", "in-source", c.fold, c.nf, in);
	h->out = nanmean(out, c.nf);
	h->in = nanmean(in, c.nf);
	fd_report_compare(&h->o, rs, &c, &c, cond, model, out, in);
	h->delta = h->o.delta;
	double ai, vi, ao, vo;
	if (pooled_auc(&ai, &vi, &h->n_in, rs, cond, model, "in-source", c.fold, c.nf) == 0 &&
	    pooled_auc(&ao, &vo, &h->n_out, rs, cond, model, "held-out", c.fold, c.nf) == 0) {
		h->dl.diff = ai - ao;
		h->dl.se = sqrt(vi + vo);
		if (h->dl.se > 0) {
			h->dl.stat = h->dl.diff / h->dl.se;
			h->dl.p = 2 * fd_norm_sf(fabs(h->dl.stat));
		}
	}
	h->use_dl = c.nf < 3;
	h->p = h->use_dl ? h->dl.p : h->o.t.p;
	if (!isnan(h->delta) && !isnan(h->p))
		h->found = h->delta > FD_REPORT_HOLDOUT_DROP && h->p < 0.05;
}

static const char *const HOLDOUT_VERDICT[3] = { "undetermined", "no evidence of source-specific features",
						 "source-specific features found" };

static void md_holdout(FILE *f, FILE *tsv, const struct fd_results *rs)
{
	char b[8][40];
	fprintf(f, "## Source hold-out\n\nHeld-out AUC: reals vs the fakes of the source left out of "
		   "training; in-source AUC: reals vs the fakes of the trained sources (all fakes for "
		   "the baseline); Δ = in-source - held-out, paired by fold. On the validation fold "
		   "(mean over folds) and on the test set (the fold models' averaged scores); a run "
		   "with a held-out source neither trains nor selects its checkpoint on that source. "
		   "Test: with 3 or more folds the corrected t-test over folds; with 2 (one degree of "
		   "freedom) DeLong's unpaired comparison of the pooled out-of-fold AUCs (reals + "
		   "in-source fakes vs reals + held-out fakes; conservative: the shared reals' "
		   "covariance is ignored). Verdict: \"source-specific features found\" when Δ > %.2f "
		   "and the test's p < 0.05 (doc/shortcuts.md).\n\n"
		   "| Model | Condition | Held-out source | Folds | Held-out AUC (val) | In-source AUC (val) | "
		   "Δ (in - held-out) | p (corrected t) | Δ pooled | p (DeLong unpaired) | "
		   "Held-out AUC (test) | In-source AUC (test) | Verdict |\n"
		   "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", FD_REPORT_HOLDOUT_DROP);
	fprintf(tsv, "model\tcondition\texcluded\tfolds\theld_out_auc\tin_source_auc\tdelta\tt\tdf\tp\t"
		     "held_out_test_auc\tin_source_test_auc\tpooled_delta\tdelong_z\tdelong_p\ttest\tverdict\n");
	for (int m = 0; m < rs->nmodel; m++)
		for (int k = 0; k < rs->ncond; k++) {
			const char *model = rs->model[m], *cond = rs->cond[k];
			struct fd_report_holdout h;
			fd_report_holdout(&h, rs, cond, model);
			if (h.nf == 0)
				continue;
			struct fd_report_cell c;
			fd_report_cell(&c, rs, cond, model, "val");
			const struct fd_result *r0 = fd_results_find(rs, cond, model, c.fold[0], "val", "all");
			int none = !strcmp(r0->excluded, "-");
			double tin = c.test.auc, tout = NAN;
			if (!none) {
				tin = ensemble_auc(rs, cond, model, "in-source");
				tout = ensemble_auc(rs, cond, model, "held-out");
			}
			fprintf(f, "| %s | %s | %s | %d | %s | %s | %s | %s | ", model, cond,
				none ? "none" : r0->excluded, h.nf, none ? "-" : f3(b[0], h.out), f3(b[1], h.in),
				none ? "-" : fsig(b[2], h.delta), none ? "-" : fp(b[3], h.o.t.p));
			fprintf(f, "%s | %s | %s | %s | %s |\n", none ? "-" : fsig(b[0], h.dl.diff),
				none ? "-" : fp(b[1], h.dl.p), none ? "-" : f3(b[4], tout), f3(b[5], tin),
				none ? "-" : HOLDOUT_VERDICT[h.found + 1]);
			fprintf(tsv, "%s\t%s\t%s\t%d\t%s\t", model, cond, r0->excluded, h.nf, g17(b[0], h.out));
			fprintf(tsv, "%s\t%s\t%s\t", g17(b[0], h.in), g17(b[1], h.delta), g17(b[2], h.o.t.stat));
			fprintf(tsv, "%s\t%s\t", h.o.defined ? g17(b[0], h.o.t.df) : "NA", g17(b[1], h.o.t.p));
			fprintf(tsv, "%s\t%s\t", g17(b[0], tout), g17(b[1], tin));
			fprintf(tsv, "%s\t%s\t%s\t%s\t%s\n", g17(b[0], h.dl.diff), g17(b[1], h.dl.stat),
				g17(b[2], h.dl.p), none ? "-" : h.use_dl ? "delong-unpaired" : "corrected-t",
				none ? "-" : HOLDOUT_VERDICT[h.found + 1]);
		}
	fprintf(f, "\n");
}

/* Path component k from the end of dir (0: the last), "" if none. */
static void path_part(const char *dir, int k, char *out, size_t cap)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	for (;;) {
		size_t end = n;
		while (n > 0 && dir[n - 1] != '/')
			n--;
		if (k-- == 0) {
			size_t len = end - n < cap - 1 ? end - n : cap - 1;
			memcpy(out, dir + n, len);
			out[len] = '\0';
			return;
		}
		while (n > 0 && dir[n - 1] == '/')
			n--;
		if (n == 0) {
			*out = '\0';
			return;
		}
	}
}

/* Append the rows of DIR/preds-val.tsv and DIR/preds-matched.tsv, paired row by
 * row (same path and label), to the growing arrays. */
static int pool_run(const char *dir, double **lb, double **mt, uint8_t **lab, size_t *n, size_t *cap,
		    struct fd_err *e)
{
	char pa[4096], pb[4096];
	snprintf(pa, sizeof pa, "%s/preds-val.tsv", dir);
	snprintf(pb, sizeof pb, "%s/preds-matched.tsv", dir);
	struct fd_table ta, tb;
	fd_table_init(&ta);
	fd_table_init(&tb);
	int rc = -1;
	if (fd_table_read(&ta, pa, e) < 0 || fd_table_read(&tb, pb, e) < 0)
		goto out;
	int ca[3], cb[3];
	static const char *const need[3] = { "path", "label", "score" };
	for (int k = 0; k < 3; k++)
		if ((ca[k] = fd_table_need(&ta, need[k], e)) < 0 || (cb[k] = fd_table_need(&tb, need[k], e)) < 0)
			goto out;
	if (ta.nrow != tb.nrow) {
		fd_err_set(e, "'%s' has %zu rows, '%s' %zu: the two evals must score the same rows", pb,
			   tb.nrow, pa, ta.nrow);
		goto out;
	}
	if (*n + ta.nrow > *cap) {
		size_t c = (*n + ta.nrow) * 2;
		double *x = realloc(*lb, c * sizeof *x), *y = x ? realloc(*mt, c * sizeof *y) : NULL;
		if (x)
			*lb = x;
		if (y)
			*mt = y;
		uint8_t *z = y ? realloc(*lab, c) : NULL;
		if (!z) {
			fd_err_set(e, "out of memory");
			goto out;
		}
		*lab = z;
		*cap = c;
	}
	for (size_t i = 0; i < ta.nrow; i++) {
		const char *l = fd_table_get(&ta, i, ca[1]);
		if (strcmp(fd_table_get(&ta, i, ca[0]), fd_table_get(&tb, i, cb[0])) != 0 ||
		    strcmp(l, fd_table_get(&tb, i, cb[1])) != 0) {
			fd_err_set(e, "'%s': line %zu: path '%s' does not pair with '%s' line %zu ('%s'): the "
				      "two evals must score the same rows in the same order", pb, i + 2,
				   fd_table_get(&tb, i, cb[0]), pa, i + 2, fd_table_get(&ta, i, ca[0]));
			goto out;
		}
		if (strcmp(l, "0") != 0 && strcmp(l, "1") != 0) {
			fd_err_set(e, "'%s': line %zu: label '%s' is not 0 or 1", pa, i + 2, l);
			goto out;
		}
		char *ea, *eb;
		const char *sa = fd_table_get(&ta, i, ca[2]), *sb = fd_table_get(&tb, i, cb[2]);
		double va = strtod(sa, &ea), vb = strtod(sb, &eb);
		if (ea == sa || *ea || eb == sb || *eb) {
			fd_err_set(e, "'%s': line %zu: score is not a number", ea == sa || *ea ? pa : pb, i + 2);
			goto out;
		}
		(*lb)[*n] = va;
		(*mt)[*n] = vb;
		(*lab)[*n] = (uint8_t)(l[0] == '1');
		(*n)++;
	}
	rc = 0;
out:
	fd_table_free(&ta);
	fd_table_free(&tb);
	return rc;
}

int fd_report_geometry(struct fd_report_geometry *g, const struct fd_results *rs, const char *model,
		       const char *const *inputs, int ninputs, struct fd_err *e)
{
	memset(g, 0, sizeof *g);
	struct fd_report_cell a, b, c;
	fd_report_cell(&a, rs, "letterbox", model, "val");
	fd_report_cell(&b, rs, "letterbox", model, "matched");
	fd_report_cell(&c, rs, "matched", model, "val");
	/* per-fold deltas, paired by fold */
	double d[MAXF], xa[MAXF], xb[MAXF];
	int fold[MAXF], n = 0;
	for (int i = 0; i < a.nf; i++)
		for (int j = 0; j < b.nf; j++)
			if (a.fold[i] == b.fold[j] && !isnan(a.auc[i]) && !isnan(b.auc[j])) {
				fold[n] = a.fold[i];
				xa[n] = a.auc[i];
				xb[n] = b.auc[j];
				d[n] = xb[n] - xa[n];
				n++;
			}
	g->n = n;
	g->auc_lb = n ? fd_mean(xa, (size_t)n) : NAN;
	g->auc_m = n ? fd_mean(xb, (size_t)n) : NAN;
	g->d.mean = n ? fd_mean(d, (size_t)n) : NAN;
	g->d.std = g->d.lo = g->d.hi = NAN;
	g->d.n = (size_t)n;
	g->nb.stat = g->nb.p = NAN;
	double ratio = fd_results_ratio(rs, "letterbox", model, fold, n);
	struct fd_err ie;
	if (n >= 2 && fd_summary_nb(&g->d, d, (size_t)n, ratio, FD_REPORT_LEVEL, &ie) == 0)
		fd_summary_clip(&g->d, -1, 1);
	if (n >= 2 && fd_ttest_nadeau_bengio(&g->nb, xb, xa, (size_t)n, ratio, &ie) != 0)
		g->nb.stat = g->nb.p = NAN;
	g->c_folds = c.nf;
	g->auc_c = nanmean(c.auc, c.nf);

	/* DeLong on the pooled out-of-fold scores of G's runs */
	double *lb = NULL, *mt = NULL;
	uint8_t *lab = NULL;
	size_t np = 0, cap = 0;
	for (int i = 0; i < ninputs; i++) {
		const char *in = inputs[i], *eq = strchr(in, '='), *dir = in;
		char label[256] = "", part[256];
		if (eq && !strchr(eq + 1, '=')) {
			size_t k = (size_t)(eq - in) < sizeof label ? (size_t)(eq - in) : sizeof label - 1;
			memcpy(label, in, k);
			label[k] = '\0';
			dir = eq + 1;
		}
		path_part(dir, 0, part, sizeof part);
		if (strncmp(part, "fold", 4) != 0)
			continue; /* a folds table: no scores */
		path_part(dir, 2, part, sizeof part);
		if (strcmp(part, model) != 0)
			continue;
		if (!*label)
			path_part(dir, 1, label, sizeof label);
		if (strcmp(label, "letterbox") != 0)
			continue;
		if (pool_run(dir, &lb, &mt, &lab, &np, &cap, e) < 0) {
			free(lb);
			free(mt);
			free(lab);
			return -1;
		}
	}
	g->pooled = np;
	g->pooled_lb = g->pooled_m = NAN;
	g->delong.stat = g->delong.p = NAN;
	if (np) {
		if (fd_auc(lb, lab, np, &g->pooled_lb, &ie) != 0)
			g->pooled_lb = NAN;
		if (fd_auc(mt, lab, np, &g->pooled_m, &ie) != 0)
			g->pooled_m = NAN;
		if (fd_delong_test(&g->delong, NULL, mt, lb, lab, np, &ie) != 0)
			g->delong.stat = g->delong.p = NAN;
	}
	free(lb);
	free(mt);
	free(lab);
	double p = np ? g->delong.p : g->nb.p;
	if (isnan(g->d.mean))
		g->shortcut = -1;
	else
		g->shortcut = g->d.mean < -FD_REPORT_GEOMETRY_DROP && p < 0.05;
	return 0;
}

static const char *const VERDICT[3] = { "undetermined", "no evidence of a geometry shortcut",
					 "geometry shortcut found" };

static int md_geometry(FILE *f, FILE *tsv, const struct fd_results *rs, const struct fd_report_meta *m,
		       struct fd_err *e)
{
	char b[12][40];
	fprintf(f, "## Geometry shortcut test\n\n"
		   "Model G is trained on letterbox packs (the original geometry visible: reals keep "
		   "their aspect and bars, fakes are as made) and scores its validation fold twice: "
		   "letterboxed (`val`) and from the `matched` pack, where every fake is first cropped "
		   "to its real photo's aspect so both classes carry the same bars. Only a model that "
		   "learnt \"bars mean real\" loses AUC under `matched`: its reals are unchanged and "
		   "the fakes' bars are ones it saw (on reals) in training, so a pure padding shift "
		   "cannot cause the drop. The control C is trained and evaluated on `matched` "
		   "(no class-linked geometry). Δ = AUC_G(matched) − AUC_G(letterbox) per fold: "
		   "mean, Nadeau–Bengio 95%% interval and corrected t-test p; DeLong's paired test "
		   "on the pooled out-of-fold scores (the same rows, the same checkpoints, two "
		   "geometries). Verdict: \"geometry shortcut found\" when Δ < −%.2f and the DeLong "
		   "p < 0.05 (doc/shortcuts.md).\n\n"
		   "| Model | Folds | AUC_G letterbox | AUC_G matched | Δ geometry | 95%% CI (NB) | "
		   "p (corrected t) | Pooled rows | DeLong z | p (DeLong) | AUC_C matched | Verdict |\n"
		   "|---|---|---|---|---|---|---|---|---|---|---|---|\n", FD_REPORT_GEOMETRY_DROP);
	fprintf(tsv, "model\tfolds\tauc_g_letterbox\tauc_g_matched\tdelta\tci_lo\tci_hi\tt\tp\tpooled_rows\t"
		     "pooled_auc_letterbox\tpooled_auc_matched\tdelong_z\tdelong_p\tcontrol_folds\t"
		     "auc_c_matched\tverdict\n");
	for (int k = 0; k < rs->nmodel; k++) {
		struct fd_report_geometry g;
		if (fd_report_geometry(&g, rs, rs->model[k], m->inputs, m->ninputs, e) < 0)
			return -1;
		if (g.n == 0 && g.c_folds == 0)
			continue;
		fprintf(f, "| %s | %d | %s | %s | %s | [%s, %s] | %s | %zu | %s | %s | %s | %s |\n",
			rs->model[k], g.n, f3(b[0], g.auc_lb), f3(b[1], g.auc_m), fsig(b[2], g.d.mean),
			fsig(b[3], g.d.lo), fsig(b[4], g.d.hi), fp(b[5], g.nb.p), g.pooled,
			isnan(g.delong.stat) ? "NA" : (snprintf(b[6], 40, "%.2f", g.delong.stat), b[6]),
			fp(b[7], g.delong.p), f3(b[8], g.auc_c), VERDICT[g.shortcut + 1]);
		fprintf(tsv, "%s\t%d\t%s\t%s\t%s\t", rs->model[k], g.n, g17(b[0], g.auc_lb),
			g17(b[1], g.auc_m), g17(b[2], g.d.mean));
		fprintf(tsv, "%s\t%s\t%s\t%s\t%zu\t", g17(b[0], g.d.lo), g17(b[1], g.d.hi),
			g17(b[2], g.nb.stat), g17(b[3], g.nb.p), g.pooled);
		fprintf(tsv, "%s\t%s\t%s\t%s\t", g17(b[0], g.pooled_lb), g17(b[1], g.pooled_m),
			g17(b[2], g.delong.stat), g17(b[3], g.delong.p));
		fprintf(tsv, "%d\t%s\t%s\n", g.c_folds, g17(b[0], g.auc_c), VERDICT[g.shortcut + 1]);
	}
	fprintf(f, "\n");
	return 0;
}

/* Face-detection counts of one (label, source). */
struct facecount {
	char label[64], model[64], source[64];
	size_t n, found;
};

static int md_faces(FILE *f, const struct fd_report_meta *m, struct fd_err *e)
{
	struct facecount fc[256];
	int nfc = 0;
	char first[256][2][64]; /* label -> the model counted */
	int nfirst = 0;
	for (int i = 0; i < m->ninputs; i++) {
		const char *in = m->inputs[i], *eq = strchr(in, '='), *dir = in;
		char label[64] = "", model[64], part[64], path[4096];
		if (eq && !strchr(eq + 1, '=')) {
			size_t k = (size_t)(eq - in) < sizeof label ? (size_t)(eq - in) : sizeof label - 1;
			memcpy(label, in, k);
			label[k] = '\0';
			dir = eq + 1;
		}
		path_part(dir, 0, part, sizeof part);
		if (strncmp(part, "fold", 4) != 0)
			continue;
		path_part(dir, 2, model, sizeof model);
		if (!*label)
			path_part(dir, 1, label, sizeof label);
		int j = 0;
		while (j < nfirst && strcmp(first[j][0], label))
			j++;
		if (j == nfirst && nfirst < 256) {
			snprintf(first[j][0], 64, "%s", label);
			snprintf(first[j][1], 64, "%s", model);
			nfirst++;
		}
		if (j == nfirst || strcmp(first[j][1], model))
			continue;
		snprintf(path, sizeof path, "%s/preds-val.tsv", dir);
		struct fd_table t;
		fd_table_init(&t);
		if (fd_table_read(&t, path, e) < 0)
			return -1;
		int cn = fd_table_col(&t, "face_note"), cs = fd_table_col(&t, "source");
		for (size_t r = 0; cn >= 0 && cs >= 0 && r < t.nrow; r++) {
			const char *src = fd_table_get(&t, r, cs);
			int k = 0;
			while (k < nfc && (strcmp(fc[k].label, label) || strcmp(fc[k].source, src)))
				k++;
			if (k == nfc) {
				if (nfc == 256)
					continue;
				memset(&fc[k], 0, sizeof fc[k]);
				snprintf(fc[k].label, 64, "%s", label);
				snprintf(fc[k].model, 64, "%s", model);
				snprintf(fc[k].source, 64, "%s", src);
				nfc++;
			}
			fc[k].n++;
			fc[k].found += !strcmp(fd_table_get(&t, r, cn), "ok");
		}
		fd_table_free(&t);
	}
	if (nfc == 0)
		return 0;
	fprintf(f, "## Face detection\n\nShare of each source's images in which fd-facecrop (MTCNN) "
		   "found a face (`face_note` ok), over the validation rows of every fold (each "
		   "non-test row once). An image without a face is packed with the centre crop "
		   "(`NOFACE=keep`, the default) or left out of every condition's pack "
		   "(`NOFACE=drop`, doc/pipelines.md); a rate that differs between reals and fakes "
		   "is a class-linked cue the face crop adds.\n\n"
		   "| Condition | Source | Rows | Face found | Rate |\n|---|---|---|---|---|\n");
	for (int k = 0; k < nfc; k++)
		fprintf(f, "| %s | %s | %zu | %zu | %.1f%% |\n", fc[k].label, fc[k].source, fc[k].n,
			fc[k].found, 100.0 * (double)fc[k].found / (double)fc[k].n);
	fprintf(f, "\n");
	return 0;
}

double fd_report_cond_score(const struct fd_results *rs, const char *cond)
{
	double s = 0;
	int k = 0;
	for (int m = 0; m < rs->nmodel; m++) {
		struct fd_report_cell c;
		fd_report_cell(&c, rs, cond, rs->model[m], "val");
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

int fd_report_shortcuts_read(struct fd_report_shortcuts *sc, const char *path, struct fd_err *e)
{
	memset(sc, 0, sizeof *sc);
	sc->geometry = -1;
	struct fd_table t;
	fd_table_init(&t);
	int c[5], rc = -1;
	static const char *const need[5] = { "model", "delta", "delong_p", "p", "verdict" };
	if (fd_table_read(&t, path, e) < 0)
		goto out;
	for (int k = 0; k < 5; k++)
		if ((c[k] = fd_table_need(&t, need[k], e)) < 0) {
			fd_err_ctx(e, "'%s' (a 2a-geometry test table)", path);
			goto out;
		}
	if (t.nrow == 0) {
		fd_err_set(e, "'%s': no rows (a 2a-geometry test table)", path);
		goto out;
	}
	size_t n = 0;
	sc->geometry = 0;
	for (size_t i = 0; i < t.nrow; i++) {
		const char *v = fd_table_get(&t, i, c[4]);
		if (!strcmp(v, VERDICT[2]))
			sc->geometry = 1;
		else if (strcmp(v, VERDICT[1]) && strcmp(v, VERDICT[0])) {
			fd_err_set(e, "'%s': line %zu: unknown verdict '%s'", path, i + 2, v);
			goto out;
		}
		if (n < sizeof sc->why)
			n += (size_t)snprintf(sc->why + n, sizeof sc->why - n, "%s%s: delta %s, DeLong p %s, "
					      "corrected-t p %s: %s", i ? "; " : "",
					      fd_table_get(&t, i, c[0]), fd_table_get(&t, i, c[1]),
					      fd_table_get(&t, i, c[2]), fd_table_get(&t, i, c[3]), v);
	}
	rc = 0;
out:
	fd_table_free(&t);
	return rc;
}

/* The per-model validation cells of a condition, for the required models. */
static int models_of(const struct fd_results *rs, const char *cond, int *idx)
{
	int n = 0;
	for (int m = 0; m < rs->nmodel; m++) {
		int nf = fd_results_folds(rs, cond, rs->model[m], "val", (int[MAXF]){ 0 }, MAXF);
		if (nf > 0)
			idx[n++] = m;
	}
	return n;
}

/* 1 when cond_a and cond_b have the same validation AUC in every fold of every model of idx. */
static int same_runs(const struct fd_results *rs, const char *a, const char *b, const int *idx, int n)
{
	for (int i = 0; i < n; i++) {
		struct fd_report_cell x, y;
		fd_report_cell(&x, rs, a, rs->model[idx[i]], "val");
		fd_report_cell(&y, rs, b, rs->model[idx[i]], "val");
		if (x.nf == 0 || x.nf != y.nf)
			return 0;
		for (int k = 0; k < x.nf; k++)
			if (x.fold[k] != y.fold[k] || !(x.auc[k] == y.auc[k] || (isnan(x.auc[k]) && isnan(y.auc[k]))))
				return 0;
	}
	return n > 0;
}

/* Score and indicators of candidate c over the required models idx[n]. */
static void cand_measure(struct fd_report_candidate *c, const struct fd_results *rs, const int *idx, int n)
{
	double sc = 0, sd = 0, gp = 0;
	int ks = 0, kd = 0, kg = 0, have = 0;
	for (int i = 0; i < n; i++) {
		struct fd_report_cell x;
		fd_report_cell(&x, rs, c->cond, rs->model[idx[i]], "val");
		if (x.nf == 0)
			continue;
		have++;
		double mu = nanmean(x.auc, x.nf), st[MAXF];
		for (int k = 0; k < x.nf; k++)
			st[k] = isnan(x.var[k]) ? NAN : sqrt(x.var[k]);
		double msd = nanmean(st, x.nf);
		if (!isnan(mu))
			sc += mu, ks++;
		if (!isnan(msd))
			sd += msd, kd++;
		if (!isnan(x.gap_mean))
			gp += x.gap_mean, kg++;
	}
	c->score = ks == n ? sc / ks : NAN;
	c->std = kd == n ? sd / kd : NAN;
	c->gap = kg == n ? gp / kg : NAN;
	if (have < n)
		snprintf(c->excluded, sizeof c->excluded, "not run for every model of the center runs");
	else if (isnan(c->score))
		snprintf(c->excluded, sizeof c->excluded, "validation AUC undefined");
}

/* "chosen (AUC x) over other (AUC y); per model: m delta (p ...)". */
static void reason(char *buf, size_t cap, const struct fd_results *rs, const char *what,
		   const char *chosen, const char *other)
{
	char b[4][40];
	size_t n = (size_t)snprintf(buf, cap, "%s: %s (mean validation AUC %s) over %s (%s)", what,
				    chosen, f3(b[0], fd_report_cond_score(rs, chosen)), other,
				    f3(b[1], fd_report_cond_score(rs, other)));
	int sig = 0;
	for (int m = 0; m < rs->nmodel && n < cap; m++) {
		struct fd_report_cell a, c;
		fd_report_cell(&a, rs, other, rs->model[m], "val");
		fd_report_cell(&c, rs, chosen, rs->model[m], "val");
		if (a.nf == 0 || c.nf == 0)
			continue;
		struct fd_report_cmp o;
		fd_report_compare(&o, rs, &a, &c, chosen, rs->model[m], a.auc, c.auc);
		sig |= o.defined && o.t.p < 0.05;
		n += (size_t)snprintf(buf + n, cap - n, "; %s %s (p %s)", rs->model[m],
				      fsig(b[0], o.delta), fp(b[1], o.t.p));
	}
	if (n < cap)
		snprintf(buf + n, cap - n, "%s",
			 sig ? "" : "; no difference is significant at 0.05");
}

/* The candidate differing from b's choice in one factor only, or NULL. */
static const struct fd_report_candidate *differing(const struct fd_report_best *b, int chosen, int factor)
{
	const struct fd_report_candidate *c = &b->cand[chosen];
	for (int i = 0; i < b->ncand; i++) {
		const struct fd_report_candidate *o = &b->cand[i];
		int ds = o->size != c->size, dg = strcmp(o->geometry, c->geometry) != 0,
		    da = o->augment != c->augment;
		if (i != chosen && ds + dg + da == 1 && ((factor == 0 && ds) || (factor == 1 && dg) ||
							 (factor == 2 && da)))
			return o;
	}
	return NULL;
}

int fd_report_best(struct fd_report_best *b, const struct fd_results *rs,
		   const struct fd_report_shortcuts *sc, struct fd_err *e)
{
	memset(b, 0, sizeof *b);
	int idx[256], nreq = models_of(rs, "center", idx);
	/* sizes: integer labels with a score; the size of the center runs */
	long size_hi = -1, size_center = -1;
	int nsize = 0;
	for (int k = 0; k < rs->ncond; k++) {
		char *end;
		long v = strtol(rs->cond[k], &end, 10);
		if (*end || v <= 0 || isnan(fd_report_cond_score(rs, rs->cond[k])))
			continue;
		nsize++;
		if (v > size_hi)
			size_hi = v;
		if (size_center < 0 && same_runs(rs, rs->cond[k], "center", idx, nreq))
			size_center = v;
	}
	if (nsize < 2)
		return fd_err_set(e, "section best: need two resolution conditions (labels such as 128 and 224)");
	if (!has_cond(rs, "center") || !has_cond(rs, "face"))
		return fd_err_set(e, "section best: need conditions center and face (and optionally "
				     "center-aug, face-aug, letterbox)");
	int found = size_center > 0;
	if (!found)
		size_center = size_hi;
	/* the candidates, in order: sizes, then the geometry/augmentation combinations */
	for (int k = 0; k < rs->ncond && b->ncand < FD_REPORT_MAXCAND; k++) {
		char *end;
		long v = strtol(rs->cond[k], &end, 10);
		if (*end || v <= 0 || isnan(fd_report_cond_score(rs, rs->cond[k])) || v == size_center)
			continue;
		struct fd_report_candidate *c = &b->cand[b->ncand++];
		snprintf(c->cond, sizeof c->cond, "%s", rs->cond[k]);
		c->size = v;
		snprintf(c->geometry, sizeof c->geometry, "center");
	}
	static const struct { const char *cond, *geom; int aug; } COMBO[5] = {
		{ "center", "center", 0 }, { "face", "face", 0 }, { "center-aug", "center", 1 },
		{ "face-aug", "face", 1 }, { "letterbox", "letterbox", 0 },
	};
	for (int k = 0; k < 5 && b->ncand < FD_REPORT_MAXCAND; k++) {
		if (!has_cond(rs, COMBO[k].cond))
			continue;
		struct fd_report_candidate *c = &b->cand[b->ncand++];
		snprintf(c->cond, sizeof c->cond, "%s", COMBO[k].cond);
		c->size = size_center;
		snprintf(c->geometry, sizeof c->geometry, "%s", COMBO[k].geom);
		c->augment = COMBO[k].aug;
	}
	for (int i = 0; i < b->ncand; i++) {
		struct fd_report_candidate *c = &b->cand[i];
		c->p_worse = NAN;
		cand_measure(c, rs, idx, nreq);
		if (!*c->excluded && !strcmp(c->geometry, "letterbox") && sc && sc->geometry == 1)
			snprintf(c->excluded, sizeof c->excluded,
				 "phase 2A found a geometry shortcut: the letterbox geometry shows the aspect "
				 "ratio the model exploits");
	}
	/* the best score among the admissible */
	int top = -1;
	for (int i = 0; i < b->ncand; i++)
		if (!*b->cand[i].excluded && (top < 0 || b->cand[i].score > b->cand[top].score))
			top = i;
	if (top < 0)
		return fd_err_set(e, "section best: no admissible candidate (every one excluded)");
	/* within noise: no required model significantly worse than the best */
	for (int i = 0; i < b->ncand; i++) {
		struct fd_report_candidate *c = &b->cand[i];
		if (*c->excluded)
			continue;
		c->within = 1;
		for (int j = 0; j < nreq && i != top; j++) {
			struct fd_report_cell a, x;
			fd_report_cell(&a, rs, b->cand[top].cond, rs->model[idx[j]], "val");
			fd_report_cell(&x, rs, c->cond, rs->model[idx[j]], "val");
			struct fd_report_cmp o;
			fd_report_compare(&o, rs, &a, &x, c->cond, rs->model[idx[j]], a.auc, x.auc);
			if (o.defined && o.delta < 0 && (isnan(c->p_worse) || o.t.p < c->p_worse))
				c->p_worse = o.t.p;
			if (o.defined && o.delta < 0 && o.t.p < 0.05)
				c->within = 0;
		}
	}
	/* among those, the undominated on (std, gap); of them the highest score */
	int pick = -1;
	for (int i = 0; i < b->ncand; i++) {
		const struct fd_report_candidate *c = &b->cand[i];
		if (!c->within)
			continue;
		int dominated = 0;
		for (int j = 0; j < b->ncand && !dominated; j++) {
			const struct fd_report_candidate *o = &b->cand[j];
			if (j == i || !o->within || isnan(o->std) || isnan(o->gap) || isnan(c->std) ||
			    isnan(c->gap))
				continue;
			dominated = o->std <= c->std && o->gap <= c->gap && (o->std < c->std || o->gap < c->gap);
		}
		if (!dominated && (pick < 0 || c->score > b->cand[pick].score))
			pick = i;
	}
	struct fd_report_candidate *ch = &b->cand[pick];
	ch->chosen = 1;
	b->size = ch->size;
	snprintf(b->geometry, sizeof b->geometry, "%s", ch->geometry);
	b->augment = ch->augment;
	/* the reasons */
	char t[4][40];
	size_t n = (size_t)snprintf(b->choice, sizeof b->choice,
				    "%s (size %ld, %s, %s augmentation; mean validation AUC %s, per-source "
				    "AUC std %s, train/val gap %s)", ch->cond, ch->size, ch->geometry,
				    ch->augment ? "with" : "no", f3(t[0], ch->score), f3(t[1], ch->std),
				    fsig(t[2], ch->gap));
	if (pick == top)
		n += (size_t)snprintf(b->choice + n, sizeof b->choice - n, " has the highest AUC");
	else
		n += (size_t)snprintf(b->choice + n, sizeof b->choice - n,
				      " is within the noise of the best AUC, %s (%s), and not worse on "
				      "the shortcut indicators (std %s, gap %s there)",
				      b->cand[top].cond, f3(t[0], b->cand[top].score),
				      f3(t[1], b->cand[top].std), fsig(t[3], b->cand[top].gap));
	int nw = 0;
	for (int i = 0; i < b->ncand; i++)
		nw += b->cand[i].within;
	if (n < sizeof b->choice)
		n += (size_t)snprintf(b->choice + n, sizeof b->choice - n,
				      "; %d of %d candidates within noise", nw, b->ncand);
	for (int i = 0; i < b->ncand && n < sizeof b->choice; i++)
		if (*b->cand[i].excluded)
			n += (size_t)snprintf(b->choice + n, sizeof b->choice - n, "; %s excluded: %s",
					      b->cand[i].cond, b->cand[i].excluded);
	if (!found && n < sizeof b->choice)
		snprintf(b->choice + n, sizeof b->choice - n, "; the center runs match no size label, "
			 "taken as size %ld (the largest)", size_center);
	static const char *const WHAT[3] = { "resolution", "geometry", "augmentation" };
	for (int f = 0; f < 3; f++) {
		const struct fd_report_candidate *o = differing(b, pick, f);
		if (o)
			reason(b->reason[f], sizeof b->reason[f], rs, WHAT[f], ch->cond, o->cond);
		else
			snprintf(b->reason[f], sizeof b->reason[f], "%s: no run differing in %s alone to "
				 "compare", WHAT[f], WHAT[f]);
	}
	return 0;
}

static json_t *jreal(double x)
{
	return isnan(x) ? json_null() : json_real(x);
}

char *fd_report_best_json(const struct fd_report_best *b, const struct fd_results *rs,
			  const struct fd_report_shortcuts *sc, struct fd_err *e)
{
	json_t *j = json_object(), *why = json_object(), *auc = json_object(), *cands = json_array();
	json_object_set_new(j, "size", json_integer(b->size));
	json_object_set_new(j, "geometry", json_string(b->geometry));
	json_object_set_new(j, "augment", json_boolean(b->augment));
	json_object_set_new(why, "choice", json_string(b->choice));
	json_object_set_new(why, "size", json_string(b->reason[0]));
	json_object_set_new(why, "geometry", json_string(b->reason[1]));
	json_object_set_new(why, "augment", json_string(b->reason[2]));
	json_object_set_new(j, "reason", why);
	for (int i = 0; i < b->ncand; i++) {
		const struct fd_report_candidate *c = &b->cand[i];
		json_t *o = json_object();
		json_object_set_new(o, "condition", json_string(c->cond));
		json_object_set_new(o, "size", json_integer(c->size));
		json_object_set_new(o, "geometry", json_string(c->geometry));
		json_object_set_new(o, "augment", json_boolean(c->augment));
		json_object_set_new(o, "mean_val_auc", jreal(c->score));
		json_object_set_new(o, "per_source_auc_std", jreal(c->std));
		json_object_set_new(o, "train_val_gap", jreal(c->gap));
		json_object_set_new(o, "p_worse_than_best", jreal(c->p_worse));
		json_object_set_new(o, "within_noise", json_boolean(c->within));
		json_object_set_new(o, "excluded", *c->excluded ? json_string(c->excluded) : json_null());
		json_object_set_new(o, "chosen", json_boolean(c->chosen));
		json_array_append_new(cands, o);
	}
	json_object_set_new(j, "candidates", cands);
	json_object_set_new(j, "geometry_test", sc && sc->geometry >= 0 ? json_string(sc->why) : json_null());
	for (int k = 0; k < rs->ncond; k++)
		json_object_set_new(auc, rs->cond[k], jreal(fd_report_cond_score(rs, rs->cond[k])));
	json_object_set_new(j, "mean_val_auc", auc);
	json_object_set_new(j, "rule", json_string(
		"candidates are the (size, geometry, augmentation) combinations that were run: each size "
		"(centre crop), and center, face, center-aug, face-aug, letterbox at the size of the center "
		"runs, for every model of the center runs; letterbox is excluded when phase 2A found a "
		"geometry shortcut, matched never qualifies (its crop depends on the label); the best is the "
		"highest validation AUC (mean over folds, then models); a candidate is within noise when no "
		"model is significantly worse than the best (corrected resampled t-test, p < 0.05); among "
		"those, the candidates no other beats on both shortcut indicators (per-source AUC std, "
		"train/val gap) qualify, and the highest AUC of them is chosen (doc/shortcuts.md)"));
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

void fd_report_best_mk(FILE *f, const struct fd_report_best *b)
{
	/* Only validated values reach make: an integer and fixed words. */
	fprintf(f, "# The phase-2 choices of best.json beside this file, for make's include\n"
		   "# (written by fd-report --section best with best.json; doc/pipelines.md).\n"
		   "BEST_SIZE := %ld\nBEST_GEOMETRY := %s\nBEST_AUGMENT := %s\n",
		b->size, b->geometry, b->augment ? "true" : "false");
}

int fd_report_write(FILE *f, FILE *tsv, FILE *cmp, const struct fd_results *rs,
		    const struct fd_report_section *sec, const struct fd_report_meta *m,
		    struct fd_err *e)
{
	if (sec->mode == FD_REPORT_BEST || sec->mode == FD_REPORT_TOP || sec->mode == FD_REPORT_FINAL)
		return fd_err_set(e, "section %s: not a table of fd_report_write", sec->name);
	struct col col[256];
	int ncol = cols_of(rs, sec, col, 256);
	fprintf(f, "# %s\n\n", sec->title);
	fprintf(f, "AUC is measured on the held-out fold of each cross-validation split (eval "
		   "`%s`; other evals score the same fold from another pack) and summarised over "
		   "folds: mean ± standard deviation (ddof 1) and the 95%% interval with the "
		   "Nadeau–Bengio corrected variance (the folds share training rows), clipped to [0, 1]. "
		   "AP: scikit-learn's average precision; EER: equal error rate, linearly interpolated "
		   "between the two ROC points around FNR = FPR (fd's `eer`; DeepfakeBench's nearest-point "
		   "EER is `eer_nearest` in fd-eval's metrics). Test AUC: the `fold=test` rows, which no "
		   "run trains or selects on, scored by every fold model's selected checkpoint; the fold "
		   "models' scores of each row are averaged (an ensemble) and the 95%% interval is "
		   "DeLong's on the logit scale for that one AUC; beside it the mean ± sd of the fold "
		   "models' own test AUCs. Train AUC scores the training rows with the best checkpoint; the "
		   "gap is train minus validation AUC (for a run with a held-out source: minus the "
		   "in-source AUC, the sources it trained on). Per-source AUC: all reals vs one source's "
		   "fakes; its spread is the population variance and standard deviation over sources. "
		   "p: corrected resampled t-test (Nadeau & Bengio 2003) on the per-fold differences.\n\n",
		sec->eval ? sec->eval : "val");
	/* which choices the validation numbers of this section fed */
	const char *n = sec->name, *chose = "";
	if (!strncmp(n, "2b", 2) || !strncmp(n, "2c", 2) || !strncmp(n, "2d", 2) || !strncmp(n, "2e", 2))
		chose = "; the phase-2 choices (best.json: size, geometry, augmentation) are made from "
			"this table's validation AUCs";
	else if (!strcmp(n, "phase3") || !strcmp(n, "4a-scaling"))
		chose = "; the size, geometry and augmentation of these runs were chosen in phase 2 from "
			"validation AUCs (best.json), so the headline comparison here is the test set's";
	fprintf(f, "**Selection.** Each run's checkpoint is the epoch with the best validation AUC on its "
		   "own validation fold, so the validation numbers below are optimistic (selected on the "
		   "rows they are measured on)%s. The test set was used for no choice: not for "
		   "training, early stopping, checkpoint selection nor the phase-2 choices; its numbers "
		   "are the unbiased ones.%s\n\n", chose,
		sec->eval && !strcmp(sec->eval, "full")
			? " Every fraction's runs are scored on the same rows: the full validation fold of "
			  "the 100% pack (eval `full`, paired by fold) and the test set (paired by row)." : "");
	fprintf(f, "Models: ");
	for (int k = 0; k < rs->nmodel; k++)
		fprintf(f, "%s%s", k ? ", " : "", rs->model[k]);
	fprintf(f, ". Conditions: ");
	for (int k = 0; k < rs->ncond; k++)
		fprintf(f, "%s%s", k ? ", " : "", rs->cond[k]);
	fprintf(f, ".\n\n");
	md_results(f, tsv, rs, col, ncol);
	if (sec->mode == FD_REPORT_HOLDOUT)
		md_holdout(f, cmp, rs);
	else if (sec->mode == FD_REPORT_GEOMETRY) {
		if (md_geometry(f, cmp, rs, m, e) < 0)
			return -1;
	} else if (md_compare(f, cmp, rs, col, ncol, sec->mode, e) < 0)
		return -1;
	if (sec->faces && md_faces(f, m, e) < 0)
		return -1;
	if (m->config)
		fprintf(f, "## Configuration\n\nShared config (%d file%s, merged):\n\n```json\n%s\n```\n\n",
			m->nconfig, m->nconfig > 1 ? "s" : "", m->config);
	fprintf(f, "Tables: `%s`, `%s`, per fold: `%s`.\n\nMade by: `%s`\n", m->tsv, m->compare,
		m->folds, m->cmdline);
	return 0;
}

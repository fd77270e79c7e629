/* fd_report: fd-report's statistics and writers over a results table
 * (fd_results.h): summaries of one cell over folds, paired comparisons, the
 * section tables (Markdown + TSV), and the phase-2 decision rule with its two
 * outputs, best.json and the make fragment best.mk (doc/pipelines.md). */
#ifndef FD_REPORT_H
#define FD_REPORT_H

#include <stdio.h>
#include "core/fd_err.h"
#include "eval/fd_stats.h"
#include "report/fd_results.h"

#define FD_REPORT_MAXF 128 /* folds of one cell */
#define FD_REPORT_LEVEL 0.95 /* level of the t-intervals */

/* What a section puts side by side. */
enum fd_report_mode {
	FD_REPORT_CONDS,   /* conditions per model, each compared with the first */
	FD_REPORT_EVALS,   /* evals of each condition, each compared with "val" */
	FD_REPORT_HOLDOUT, /* held-out vs in-source AUC of each condition */
	FD_REPORT_BEST,    /* the phase-2 decision rule (fd_report_best) */
};

struct fd_report_section {
	const char *name, *title;
	enum fd_report_mode mode;
	const char *eval; /* the validation eval of FD_REPORT_CONDS tables: NULL "val";
			   * 4a-scaling "full" (every fraction scored on the same full fold) */
};

/* The section called name ("phase1", "2a-geometry", ..., "best"; the list is in
 * man/fd-report.1), or NULL. The result points into a static table. */
const struct fd_report_section *fd_report_section(const char *name);

/* One cell of a table: (condition, model, eval) over its folds. auc[i], gap[i]
 * (train AUC - AUC; for a run with excluded sources train AUC - in-source AUC,
 * the same sources on both sides), var[i] and sd[i] (population variance and
 * std of the fake sources' AUCs, fd_auc_spread) belong to fold[i]; NAN where
 * undefined. s: fd_summary_nb of auc at FD_REPORT_LEVEL with the test/train
 * ratio fd_results_ratio_eval, clipped to [0, 1] (one fold: a mean and NAN std
 * and interval; a NAN AUC makes them NAN; no fold: all NAN); train, gap_mean,
 * var_mean, sd_mean, ap_mean, eer_mean are means over the folds where defined
 * (NAN if none).
 * The test set (eval "val" or "full" only; NAN otherwise or without
 * preds-test.tsv): test_fold_mean/sd, the mean and std (ddof 1) of the fold
 * models' own test AUCs; test (auc, se, lo, hi: fd_delong_ci, logit, 95%),
 * test_ap, test_eer of the ensemble: each test row's scores averaged over the
 * fold models (fd_results_rows FD_ROWS_ENSEMBLE), test_n its rows. */
struct fd_report_cell {
	int nf, fold[FD_REPORT_MAXF];
	double auc[FD_REPORT_MAXF], gap[FD_REPORT_MAXF], var[FD_REPORT_MAXF], sd[FD_REPORT_MAXF];
	struct fd_summary s;
	double train, gap_mean, var_mean, sd_mean, ap_mean, eer_mean;
	double test_fold_mean, test_fold_sd;
	struct fd_auc_ci test;
	double test_ap, test_eer;
	size_t test_n;
};

/* Fill c from rs's rows of (cond, model, eval, "all"), the "train" eval of the
 * same folds, the per-source subsets and the "test" eval; overwrites c. A
 * cell with no rows has nf = 0. Numbers as numpy.mean, numpy.std(ddof=1),
 * scipy.stats.t.interval with the Nadeau-Bengio scale, numpy.var/std over
 * sources, sklearn on the averaged test scores and a numpy DeLong
 * (tests/tools/report_ref.py, tests/ref/report.py). */
void fd_report_cell(struct fd_report_cell *c, const struct fd_results *rs, const char *cond,
		    const char *model, const char *eval);

/* Paired comparison of b against baseline a. */
struct fd_report_cmp {
	int n;        /* folds in both, with both values defined */
	double delta; /* mean over those folds of xb - xa (NAN when n = 0) */
	double dgap;  /* mean of b's gap - a's gap, NAN-skipping */
	double dvar;  /* mean of b's per-source variance - a's, NAN-skipping */
	double dsd;   /* the same for the per-source std */
	double ratio; /* test/train ratio: fd_results_ratio(cond_b, model_b) */
	struct fd_test t; /* corrected resampled t-test of xb vs xa; stat, p NAN unless defined */
	int defined;  /* n >= 2 and the test defined (non-zero variance) */
};

/* Compare the values xb[] of cell b (indexed like b->fold) with xa[] of cell a
 * (like a->fold), paired by fold: the Nadeau-Bengio test of
 * fd_ttest_nadeau_bengio(t, xb, xa, n, ratio). xa, xb are usually a->auc and
 * b->auc (the hold-out table passes other subsets). Overwrites o. */
void fd_report_compare(struct fd_report_cmp *o, const struct fd_results *rs,
		       const struct fd_report_cell *a, const struct fd_report_cell *b,
		       const char *cond_b, const char *model_b, const double *xa, const double *xb);

/* DeLong's paired test of b against a on the same rows (rows matched by key;
 * labels must agree): eval_a/eval_b pooled over their folds (FD_ROWS_POOL,
 * the out-of-fold validation scores) or averaged (FD_ROWS_ENSEMBLE, the test
 * set), subset "all". */
struct fd_report_dl {
	size_t n;     /* rows in both */
	double delta; /* AUC_b - AUC_a on those rows */
	struct fd_test t; /* fd_delong_test(b, a); p NAN unless defined */
	int defined;
};
/* Fills o (overwritten); o->defined = 0 when either side has no score rows,
 * fewer than 2 rows of a class, or identical rankings. */
void fd_report_delong(struct fd_report_dl *o, const struct fd_results *rs, const char *cond_a,
		      const char *model_a, const char *eval_a, const char *cond_b,
		      const char *model_b, const char *eval_b, enum fd_rows_mode mode);

/* What a section's Markdown quotes besides the numbers. */
struct fd_report_meta {
	const char *config;  /* the merged config (JSON text) the runs share, or NULL */
	int nconfig;         /* how many config files were merged */
	const char *tsv, *compare, *folds; /* the table files, as named in the Markdown */
	const char *cmdline; /* the "Made by" command line */
};

/* Write section sec of rs (any mode but FD_REPORT_BEST): the Markdown to md,
 * the summary table (one row per model, condition and eval) to tsv, and the
 * comparisons (FD_REPORT_HOLDOUT: the hold-out table) to cmp. Formats are
 * fd-report's (man/fd-report.1): Markdown rounds to 3 decimals, TSV prints
 * %.17g, "NA" marks an undefined value. The streams are the caller's (it
 * checks them when closing). Errors: sec is FD_REPORT_BEST. */
int fd_report_write(FILE *md, FILE *tsv, FILE *cmp, const struct fd_results *rs,
		    const struct fd_report_section *sec, const struct fd_report_meta *m,
		    struct fd_err *e);

/* Mean over models of the mean validation AUC (eval "val", subset "all") of
 * condition cond; models whose mean is NAN are skipped; NAN if none is left. */
double fd_report_cond_score(const struct fd_results *rs, const char *cond);

/* The phase-2 decision. */
struct fd_report_best {
	long size;    /* the chosen resolution (an integer condition label) */
	int face;     /* geometry: 1 face crop, 0 centre crop */
	int augment;  /* 1 with augmentation */
	char reason[3][2048]; /* why size, geometry, augment: scores, per-model delta and p */
};

/* The decision rule: each choice is the condition with the highest
 * fd_report_cond_score. size: among conditions labelled by a positive integer
 * (at least two with a score needed); geometry and augmentation together among
 * center, face, center-aug, face-aug (center and face needed; ties keep the
 * first in that order). Each reason compares the choice with the runner-up
 * (size) or the condition differing in that choice alone, per model with
 * fd_report_compare, and says when no difference is significant at 0.05.
 * Errors: the needed conditions are missing. Overwrites b. */
int fd_report_best(struct fd_report_best *b, const struct fd_results *rs, struct fd_err *e);

/* best.json's text: size, geometry, augment, reason {size, geometry, augment},
 * mean_val_auc (every condition of rs: fd_report_cond_score, null if NAN) and
 * the rule, indented by 2, ending in a newline. Returns a malloc'ed string (the
 * caller frees it) or NULL with e set (out of memory). */
char *fd_report_best_json(const struct fd_report_best *b, const struct fd_results *rs,
			  struct fd_err *e);

/* best.mk: the choices of best.json as make variables, one per key
 * (BEST_SIZE := 224, BEST_GEOMETRY := center|face, BEST_AUGMENT := true|false),
 * so the pipelines read them with `include`. Writes to f; the caller checks f. */
void fd_report_best_mk(FILE *f, const struct fd_report_best *b);

#endif

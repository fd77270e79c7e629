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
	FD_REPORT_GEOMETRY, /* 2A test 1: the geometry shortcut test (fd_report_geometry) */
	FD_REPORT_BEST,    /* the phase-2 decision rule (fd_report_best) */
	FD_REPORT_TOP,     /* the phase-4B models (fd_top_rank, report/fd_final.h) */
	FD_REPORT_FINAL,   /* phase 4B on the test set (fd_final_write, report/fd_final.h) */
};

struct fd_report_section {
	const char *name, *title;
	enum fd_report_mode mode;
	const char *eval; /* the validation eval of FD_REPORT_CONDS tables: NULL "val";
			   * 4a-scaling "full" (every fraction scored on the same full fold) */
	int faces; /* 1: the Markdown adds the face-detection rate per source (2C, 2E) */
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

/* What a section's Markdown quotes besides the numbers, and the inputs. */
struct fd_report_meta {
	const char *config;  /* the merged config (JSON text) the runs share, or NULL */
	int nconfig;         /* how many config files were merged */
	const char *tsv, *compare, *folds; /* the table files, as named in the Markdown */
	const char *cmdline; /* the "Made by" command line */
	const char *const *inputs; /* the inputs as given (LABEL=RUNDIR, RUNDIR or a folds
				    * TSV): 2a-geometry reads the runs' scores from them */
	int ninputs;
};

/* Phase 2A test 1, the geometry shortcut test of one model (doc/shortcuts.md).
 * Condition "letterbox": model G trained on letterbox packs (the original
 * geometry visible), evals "val" (its validation fold, letterbox) and "matched"
 * (the same rows from the matched pack: fakes cropped to their real's aspect
 * and letterboxed, so both classes carry bars). Condition "matched": the
 * control C, trained and evaluated on matched packs. */
struct fd_report_geometry {
	int n;             /* folds with AUC_G under both geometries */
	double auc_lb, auc_m; /* mean over those folds of AUC_G(letterbox), AUC_G(matched) */
	struct fd_summary d;  /* delta = AUC_G(matched) - AUC_G(letterbox) per fold: mean and
			       * the Nadeau-Bengio 95% interval (fd_summary_nb), clipped to [-1, 1] */
	struct fd_test nb;    /* corrected resampled t-test of the deltas (stat, p NAN if undefined) */
	size_t pooled;        /* rows of every fold's validation set, paired across the
			       * two evals (0: no scores, e.g. folds tables only) */
	double pooled_lb, pooled_m; /* AUC of the pooled out-of-fold scores */
	struct fd_test delong; /* DeLong's paired test of pooled_m vs pooled_lb (p NAN if undefined) */
	int c_folds;          /* folds of the control */
	double auc_c;         /* mean AUC_C(matched) (NAN without control runs) */
	int shortcut;         /* 1 "geometry shortcut found", 0 "no evidence of a geometry
			       * shortcut", -1 undetermined (no delta) */
};
#define FD_REPORT_GEOMETRY_DROP 0.05 /* the AUC drop the verdict needs */

/* The geometry test of model in rs. Pooled scores: for every input that names
 * a run directory .../MODEL/SETTING/foldK of this model labelled "letterbox"
 * (LABEL=DIR, or a SETTING folder called so), its preds-val.tsv and
 * preds-matched.tsv, paired row by row (the packs hold the same rows in the
 * same order). Verdict: shortcut found when the mean delta < -FD_REPORT_GEOMETRY_DROP
 * and the DeLong p (pooled scores; the corrected t-test's p when there are no
 * scores) < 0.05; otherwise none, unless the delta is undefined (-1).
 * Overwrites g. Errors: unreadable preds files, rows that do not pair (file and
 * line named). */
int fd_report_geometry(struct fd_report_geometry *g, const struct fd_results *rs, const char *model,
		       const char *const *inputs, int ninputs, struct fd_err *e);

/* The source hold-out verdict of (cond, model), a condition whose runs left
 * a fake source out of training (eval "val", subsets "held-out" and
 * "in-source", fd_results_add_run). delta: mean over folds of in-source AUC -
 * held-out AUC (o: the corrected t-test of it, paired by fold). With >= 3
 * folds the verdict's p is o's. With 2 the corrected t-test has 1 degree of
 * freedom and no power, so the p is DeLong's unpaired comparison of the two
 * pooled out-of-fold AUCs (reals + in-source fakes, reals + held-out fakes):
 * z = (AUC_in - AUC_out) / sqrt(var_in + var_out), the variances of
 * fd_delong_ci, p = 2 norm.sf(|z|). The two sets share their reals, whose
 * positive covariance this ignores: the test is conservative. Verdict:
 * found (1) when delta > FD_REPORT_HOLDOUT_DROP and p < 0.05, else none (0);
 * -1 when delta or p is undefined (no held-out source: excluded "-", or no
 * score rows with 2 folds). */
#define FD_REPORT_HOLDOUT_DROP 0.05
struct fd_report_holdout {
	int nf;             /* folds of (cond, model, "val") */
	double out, in;     /* mean over folds of the held-out and in-source AUCs */
	double delta;       /* mean over folds of in - out (o.delta) */
	struct fd_report_cmp o;
	size_t n_out, n_in; /* pooled rows of each set (0 without score rows) */
	struct fd_test dl;  /* unpaired DeLong: diff = pooled AUC_in - AUC_out; NAN unless defined */
	int use_dl;         /* the verdict's p is dl.p (2 folds), else o.t.p */
	double p;           /* the verdict's p */
	int found;
};
void fd_report_holdout(struct fd_report_holdout *h, const struct fd_results *rs, const char *cond,
		       const char *model);

/* Write section sec of rs (any mode but FD_REPORT_BEST, _TOP, _FINAL): the Markdown to md,
 * the summary table (one row per model, condition and eval) to tsv, and the
 * comparisons (FD_REPORT_HOLDOUT: the hold-out table; FD_REPORT_GEOMETRY: the
 * geometry test, one row per model, fd_report_geometry) to cmp. A section with
 * faces adds, per condition, the face-detection rate per source: the rows of
 * the preds-val.tsv files of m->inputs' run directories (the first model of
 * each label; every fold, so every non-test row once) whose face_note is "ok"
 * (fd-facecrop's column; a file without it is not counted). Rows of an
 * evaluation-only eval (not "val") show no train AUC or gap: the training rows
 * were scored in the training geometry only. Formats are
 * fd-report's (man/fd-report.1): Markdown rounds to 3 decimals, TSV prints
 * %.17g, "NA" marks an undefined value. The streams are the caller's (it
 * checks them when closing). Errors: sec is FD_REPORT_BEST. */
int fd_report_write(FILE *md, FILE *tsv, FILE *cmp, const struct fd_results *rs,
		    const struct fd_report_section *sec, const struct fd_report_meta *m,
		    struct fd_err *e);

/* Mean over models of the mean validation AUC (eval "val", subset "all") of
 * condition cond; models whose mean is NAN are skipped; NAN if none is left. */
double fd_report_cond_score(const struct fd_results *rs, const char *cond);

/* The 2A geometry verdict the phase-2 choice obeys: read back from a
 * 2a-geometry test table (FILE.compare.tsv of section 2a-geometry). */
struct fd_report_shortcuts {
	int geometry;   /* 1: some model's verdict is "geometry shortcut found", 0: every
			 * model's is "no evidence ...", -1: not tested (no table) */
	char why[512];  /* the evidence quoted in best.json ("simplecnn delta -0.436, DeLong p ...") */
};

/* Read the 2a-geometry test table at path into s (overwritten). Errors: an
 * unreadable file, missing columns model/delta/delong_p/p/verdict, no row. */
int fd_report_shortcuts_read(struct fd_report_shortcuts *s, const char *path, struct fd_err *e);

/* One combination (size, geometry, augmentation) that was run: a condition of
 * the results table. */
struct fd_report_candidate {
	char cond[64];   /* its label */
	long size;
	char geometry[16]; /* center, face or letterbox */
	int augment;
	double score;    /* mean over the required models of the mean validation AUC */
	double std;      /* per-source AUC std (population, per fold), mean over folds and models */
	double gap;      /* train - validation AUC, mean over folds and models */
	double p_worse;  /* smallest corrected-t p over models where it is below the best (NAN: none) */
	int within;      /* within the noise of the best: no model significantly worse at 0.05 */
	int chosen;
	char excluded[192]; /* why it may not be chosen ("" if it may) */
};
#define FD_REPORT_MAXCAND 32

/* The phase-2 decision. */
struct fd_report_best {
	long size;           /* the chosen resolution */
	char geometry[16];   /* center, face or letterbox (fd-pack's names) */
	int augment;         /* 1 with augmentation */
	char reason[3][2048]; /* the chosen combination against the one differing only in
			       * size, geometry or augmentation (per-model delta and p) */
	char choice[2048];   /* why this candidate: best, within noise, indicators, exclusions */
	int ncand;
	struct fd_report_candidate cand[FD_REPORT_MAXCAND];
};

/* The decision rule (doc/shortcuts.md), among combinations actually run:
 *  - candidates: each size label N (centre crop, no augmentation, size N);
 *    center, face, center-aug, face-aug and letterbox (no augmentation) at the
 *    size of the runs labelled center: the size label whose validation AUCs
 *    equal center's fold for fold for every model (the same runs), else the
 *    largest size. center replaces that size label (one combination).
 *    Required models: those with runs labelled center; a candidate without
 *    every one of them is excluded. "matched" is never a candidate: its crop
 *    depends on the label (an evaluation device, not a preprocessing).
 *  - letterbox is excluded when sc->geometry == 1 (2A found the shortcut).
 *  - best = the highest score among the others; a candidate is within noise
 *    when no required model is significantly worse than the best's by the
 *    corrected resampled t-test (paired by fold, p < 0.05 with a negative delta).
 *  - among those within noise, the ones no other dominates on the shortcut
 *    indicators (per-source AUC std and train/val gap, both lower is better,
 *    dominance needing both defined: <= on both and < on one); of them the
 *    highest score (ties: candidate order) is chosen.
 * sc may be NULL (not tested). Errors: fewer than two sizes with a score, no
 * center or face condition, no candidate left. Overwrites b. */
int fd_report_best(struct fd_report_best *b, const struct fd_results *rs,
		   const struct fd_report_shortcuts *sc, struct fd_err *e);

/* best.json's text: size, geometry, augment, reason {choice, size, geometry,
 * augment}, candidates (every field of fd_report_candidate, null for NAN),
 * geometry_test (sc's evidence, or null), mean_val_auc (every condition of rs:
 * fd_report_cond_score, null if NAN) and the rule, indented by 2, ending in a
 * newline. Returns a malloc'ed string (the caller frees it) or NULL with e set
 * (out of memory). */
char *fd_report_best_json(const struct fd_report_best *b, const struct fd_results *rs,
			  const struct fd_report_shortcuts *sc, struct fd_err *e);

/* best.mk: the choices of best.json as make variables, one per key
 * (BEST_SIZE := 224, BEST_GEOMETRY := center|face|letterbox, BEST_AUGMENT := true|false),
 * so the pipelines read them with `include`. Writes to f; the caller checks f. */
void fd_report_best_mk(FILE *f, const struct fd_report_best *b);

#endif

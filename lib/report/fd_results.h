/* fd_results: the per-fold results table behind fd-report. Runs (fd-train's run
 * directories with fd-eval's preds files) become rows of (condition, model,
 * fold, eval, subset) -> AUC and counts; summaries and paired comparisons over
 * folds are computed from these rows (doc/pipelines.md, "fd-report"). */
#ifndef FD_RESULTS_H
#define FD_RESULTS_H

#include <stddef.h>
#include "core/fd_err.h"
#include "eval/fd_stats.h"

#define FD_RESULTS_MAXF 128 /* folds combined by fd_results_rows */

/* One AUC of one fold: condition (the experiment's label, e.g. "224"), model,
 * fold, eval (the preds file: "val", "train", "letterbox"...), subset ("all",
 * a fake source name, "in-source" or "held-out"). auc is NAN when undefined. */
struct fd_result {
	char *cond, *model, *eval, *subset;
	char *excluded; /* sources the run left out of training, comma list; "-" none */
	int fold;
	size_t n_real, n_fake;
	size_t n_train; /* training rows of the fold (0: unknown) */
	double auc;
	double ap, eer; /* fd_average_precision, fd_eer (FD_EER_INTERP); NAN when undefined */
};

/* The scored rows of one preds file (every eval but "train"), kept for the
 * statistics that need scores rather than fold AUCs: the test-set ensemble,
 * DeLong intervals and tests. Rows are sorted by key (the preds file's path
 * column, else its row column), so two runs' rows of the same pack pair up. */
struct fd_scores {
	char *cond, *model, *eval, *excluded;
	int fold;
	size_t n;
	char **key, **source; /* key[i] and source[i] point into one block */
	char *block;
	uint8_t *label;
	double *score;
};

/* Rows selected and combined from fd_scores (fd_results_rows): owned arrays. */
struct fd_rows {
	size_t n;
	const char **key; /* borrowed from the table's fd_scores */
	uint8_t *label;
	double *score;
};
void fd_rows_free(struct fd_rows *r);

struct fd_results {
	struct fd_result *r;
	size_t n, cap;
	char **cond;   /* distinct conditions in order of first appearance */
	int ncond;
	char **model;  /* distinct models in order of first appearance */
	int nmodel;
	char **source; /* distinct fake sources, sorted by name */
	int nsource;
	struct fd_scores *sc; /* score rows of run directories (none from folds TSVs) */
	size_t nsc, capsc;
};

/* An empty table (no allocation). */
void fd_results_init(struct fd_results *rs);
/* Free every row and list and leave rs empty; NULL is a no-op. */
void fd_results_free(struct fd_results *rs);

/* Add one run directory. Layout (made by pipelines/, doc/pipelines.md):
 * DIR = .../<model>/<setting>/fold<K>, holding preds-<eval>.tsv files written by
 * fd-eval (columns label, source, score) and optionally run.json. cond is the
 * label of the condition (NULL: the <setting> folder's name). Every preds file
 * gives subset "all" and one subset per fake source (all reals vs that source's
 * fakes, as fd-eval's per-source metrics). When run.json names
 * exclude_sources (anywhere in its tree), also "in-source" (reals and the fakes
 * of the trained sources) and "held-out" (reals and the excluded fakes), and the
 * "train" eval's "all" leaves out the excluded sources. n_train is the number of
 * rows of preds-train.tsv that were trained on. Errors: no fold<K> name, no
 * preds-*.tsv, no preds-val.tsv (nothing is added), unreadable or malformed files (named), a duplicate row. */
int fd_results_add_run(struct fd_results *rs, const char *dir, const char *cond, struct fd_err *e);

/* Add the rows of a folds TSV written by fd_results_write (columns condition,
 * model, fold, eval, subset, n_real, n_fake, n_train, auc, excluded; ap and
 * eer when present, else NAN). Score rows are not in the TSV. A row already
 * present with the same AUC is skipped (the same run may appear in two
 * phase-2 tables); a different AUC is an error. */
int fd_results_add_tsv(struct fd_results *rs, const char *path, struct fd_err *e);

/* Add one row (strings copied): what fd_results_add_run and _add_tsv do per
 * row, for callers that build a table in memory (tests). A subset other than
 * "all", "in-source" and "held-out" is a fake source and joins rs->source. The
 * same key again with an equal AUC (NAN equals NAN, else within 1e-12) is
 * skipped; with another AUC it is an error, as is running out of memory. */
int fd_results_add(struct fd_results *rs, const struct fd_result *r, struct fd_err *e);

/* How fd_results_rows combines the folds' preds files. */
enum fd_rows_mode {
	FD_ROWS_POOL,     /* concatenate: each fold's own rows (out-of-fold validation) */
	FD_ROWS_ENSEMBLE, /* the same rows in every fold (the test set): average the
			   * fold models' scores per row into one score */
};

/* The rows of (cond, model, eval) over folds fold[n], restricted to subset
 * ("all", a fake source: all reals and its fakes, "in-source", "held-out" as
 * fd_results_add_run), sorted by key, into out (overwritten; fd_rows_free).
 * FD_ROWS_ENSEMBLE: every fold must hold the same keys with the same labels;
 * row i's score is the mean of the folds' scores. Returns 0, or
 * FD_EVAL_UNDEFINED (out empty) when a fold has no score rows (e.g. the
 * table came from a folds TSV), or -1 on different row sets, duplicate keys
 * in a pool, or out of memory. */
int fd_results_rows(struct fd_rows *out, const struct fd_results *rs, const char *cond,
		    const char *model, const char *eval, const char *subset, const int *fold, int n,
		    enum fd_rows_mode mode, struct fd_err *e);

/* Check that every (cond, model)'s folds scored the same rows in eval
 * (FD_ROWS_ENSEMBLE needs it: "test", "full"): -1 naming the condition, model,
 * folds and a differing row otherwise. */
int fd_results_check_same_rows(const struct fd_results *rs, const char *eval, struct fd_err *e);

/* Write every row as the folds TSV (atomically; path "-" is stdout). */
int fd_results_write(const struct fd_results *rs, const char *path, struct fd_err *e);

/* The row for a key, or NULL. */
const struct fd_result *fd_results_find(const struct fd_results *rs, const char *cond,
					const char *model, int fold, const char *eval,
					const char *subset);

/* Folds present for (cond, model, eval, "all"), ascending, into fold[cap];
 * returns their count. */
int fd_results_folds(const struct fd_results *rs, const char *cond, const char *model,
		     const char *eval, int *fold, int cap);

/* The AUCs of (cond, model, eval, subset) over the given folds into auc[n];
 * returns the number of folds where the row exists and is defined (a missing
 * or NAN value is NAN in auc). */
int fd_results_aucs(const struct fd_results *rs, const char *cond, const char *model,
		    const char *eval, const char *subset, const int *fold, int n, double *auc);

/* Mean over folds of n_val / n_train (the test-to-train ratio of the
 * corrected resampled t-test) for (cond, model): n_val from eval "val" subset
 * "all", n_train from the rows. Folds without n_train: 1/(K-1) with K the
 * number of folds. */
double fd_results_ratio(const struct fd_results *rs, const char *cond, const char *model,
			const int *fold, int n);
/* The same with n_val from another eval's rows (4A: "full", the full
 * validation fold scored by a model trained on a subsample). */
double fd_results_ratio_eval(const struct fd_results *rs, const char *cond, const char *model,
			     const char *eval, const int *fold, int n);

#endif

/* fd_stats: the statistics of fd-report: mean, standard deviation, Student-t
 * distribution, t-intervals over folds (plain and Nadeau-Bengio corrected),
 * paired and corrected resampled t-tests, DeLong's test for correlated ROC
 * AUCs and the DeLong interval of one AUC, Holm's step-down correction.
 * Checked against scipy 1.10, statsmodels 0.13 and numpy reference code
 * (doc/eval.md). */
#ifndef FD_STATS_H
#define FD_STATS_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"
#include "eval/fd_metrics.h" /* FD_EVAL_UNDEFINED */

/* Arithmetic mean of x[n] (numpy.mean); NAN when n == 0. */
double fd_mean(const double *x, size_t n);
/* Variance with ddof (numpy.var(x, ddof=ddof)), two-pass; NAN when n <= ddof. */
double fd_var(const double *x, size_t n, int ddof);
/* Sample standard deviation, ddof = 1 (numpy.std(x, ddof=1)); NAN when n < 2. */
double fd_std(const double *x, size_t n);

/* Regularised incomplete beta I_x(a, b), a, b > 0, 0 <= x <= 1, by the
 * continued fraction (DLMF 8.17.22) on whichever of I_x(a,b), 1 - I_{1-x}(b,a)
 * converges; scipy.special.betainc. NAN for arguments outside the domain. */
double fd_betainc(double a, double b, double x);

/* Student-t with df > 0 degrees of freedom (df need not be an integer):
 * CDF P(T <= t) (scipy.stats.t.cdf), survival P(T > t) (t.sf, accurate in the
 * tail), and quantile (t.ppf) for 0 < p < 1 (+-INFINITY at 1 and 0). NAN for
 * df <= 0 or NAN arguments. */
double fd_t_cdf(double t, double df);
double fd_t_sf(double t, double df);
double fd_t_ppf(double p, double df);
/* Standard normal CDF (scipy.stats.norm.cdf), survival and quantile (norm.ppf). */
double fd_norm_cdf(double z);
double fd_norm_sf(double z);
double fd_norm_ppf(double p);

/* Summary of values over folds (or runs). */
struct fd_summary {
	size_t n;
	double mean, std;   /* std with ddof = 1 */
	double lo, hi;      /* the level-confidence t-interval for the mean */
};
/* mean +- t_{(1+level)/2, n-1} * std / sqrt(n), as scipy.stats.t.interval(level,
 * n-1, loc=mean, scale=scipy.stats.sem(x)). n < 2 or zero spread: std, lo, hi
 * are NAN for n < 2 (returns FD_EVAL_UNDEFINED); zero spread gives lo = hi = mean.
 * 0 < level < 1 else -1. For values from cross-validation folds, which share
 * training rows, this interval is too narrow: use fd_summary_nb. */
int fd_summary(struct fd_summary *s, const double *x, size_t n, double level, struct fd_err *e);

/* The interval for the mean of a metric over J cross-validation folds (or
 * J = K*R train/test resamples) with the Nadeau & Bengio (2003) corrected
 * variance: mean +- t_{(1+level)/2, J-1} * sqrt((1/J + test_train_ratio) *
 * var(x, ddof=1)), test_train_ratio = n_test/n_train (1/(K-1) for K-fold).
 * The plain sem-based interval of fd_summary ignores that the folds share
 * training rows and is too narrow; this one matches the corrected resampled
 * t-test (fd_ttest_nadeau_bengio): the interval excludes m0 exactly when that
 * test of mean = m0 rejects at 1 - level. Not clipped: see fd_summary_clip.
 * s->std is the plain ddof = 1 std of x. J < 2: FD_EVAL_UNDEFINED as
 * fd_summary; ratio < 0 or not finite, level outside (0,1): -1. */
int fd_summary_nb(struct fd_summary *s, const double *x, size_t J, double test_train_ratio,
		  double level, struct fd_err *e);

/* Clip an interval to the range of a bounded metric, [min, max] ([0, 1] for
 * AUC, AP, EER, accuracy): lo = max(lo, min), hi = min(hi, max); NAN stays
 * NAN, the mean is untouched. A t-interval over few folds near 1 otherwise
 * claims values a metric cannot take (the demo printed [-0.085, 1.239]). */
void fd_summary_clip(struct fd_summary *s, double min, double max);

/* Result of a two-sided test. */
struct fd_test {
	double diff;   /* mean difference a - b (or AUC_a - AUC_b) */
	double se;     /* its standard error as the test uses it */
	double stat;   /* t or z */
	double df;     /* degrees of freedom; INFINITY for a z test */
	double p;      /* two-sided p-value */
};

/* Paired t-test on a[i] - b[i], i < n: scipy.stats.ttest_rel(a, b). n < 2 or
 * all differences equal (zero variance): FD_EVAL_UNDEFINED, stat and p NAN. */
int fd_ttest_paired(struct fd_test *t, const double *a, const double *b, size_t n,
		    struct fd_err *e);

/* Corrected resampled t-test (Nadeau & Bengio 2003): d = a - b over J
 * train/test resamples (J = K for K-fold CV, K*R for R repeats), t = mean(d) /
 * sqrt((1/J + n_test/n_train) * var(d, ddof=1)), df = J - 1, two-sided p from
 * Student-t. n_test/n_train is the test-to-train size ratio (1/(K-1) for K-fold).
 * J < 2 or zero variance: FD_EVAL_UNDEFINED. Ratio < 0 or not finite: -1. */
int fd_ttest_nadeau_bengio(struct fd_test *t, const double *a, const double *b, size_t J,
			   double test_train_ratio, struct fd_err *e);

/* DeLong (1988) by the fast midrank algorithm of Sun & Xu (2014), O(n log n)
 * per classifier. Rows are shared: label[i] (1 = fake = "positive"), scores of
 * classifier a and b (any real values, higher = more fake; b may be NULL for
 * fd_delong_ci). Variances are S10/m + S01/n from the structural components
 * (covariances with ddof = 1), m fakes, n reals; both classes need >= 2 rows
 * else FD_EVAL_UNDEFINED. */
struct fd_delong {
	double auc[2];
	double var[2];     /* variance of each AUC */
	double cov;        /* covariance of the two AUCs */
};
/* Test AUC_a == AUC_b: z = (AUC_a - AUC_b) / sqrt(var_a + var_b - 2 cov),
 * p = 2 * norm.sf(|z|). Also fills d (may be NULL). Identical rankings (zero
 * variance of the difference): FD_EVAL_UNDEFINED with p NAN. */
int fd_delong_test(struct fd_test *t, struct fd_delong *d, const double *a, const double *b,
		   const uint8_t *label, size_t n, struct fd_err *e);
/* The level-confidence interval of one AUC from its DeLong variance v, z =
 * norm.ppf((1+level)/2):
 * FD_AUC_CI_LOGIT: expit(logit(auc) +- z * sqrt(v) / (auc (1 - auc))), the
 *   delta-method interval on the logit scale (Pepe 2003, sec. 5.2.3): inside
 *   (0,1) by construction and asymmetric near 1, where detectors live; fd's
 *   choice for reporting. auc = 0 or 1 (a perfect split, v = 0): no logit
 *   interval exists, FD_EVAL_UNDEFINED with lo/hi NAN (auc and se set).
 * FD_AUC_CI_WALD: auc +- z * sqrt(v) clipped to [0,1], as pROC's
 *   ci.auc(method="delong"); for comparison with papers that use pROC.
 * ci->se = sqrt(v). Needs 2 rows of each class else FD_EVAL_UNDEFINED
 * (auc set when there is one of each). */
enum fd_auc_ci_method {
	FD_AUC_CI_LOGIT,
	FD_AUC_CI_WALD,
};
struct fd_auc_ci {
	double auc, se, lo, hi;
};
int fd_delong_ci(struct fd_auc_ci *ci, const double *score, const uint8_t *label, size_t n,
		 double level, enum fd_auc_ci_method method, struct fd_err *e);

/* Holm (1979) step-down adjustment of m p-values, as statsmodels 0.13
 * multipletests(p, alpha, method="holm"): with p sorted ascending p_(1..m),
 * adj_(i) = min(1, max_{j <= i} (m - j + 1) p_(j)), written back in the
 * input order into adj[m] (may alias p); reject[m] (may be NULL) is 1 for
 * the hypotheses rejected at family-wise level alpha: p_(j) <= alpha /
 * (m - j + 1) for every j <= i, compared exactly as statsmodels does. Tied
 * p-values get equal adjusted values. Controls the family-wise error rate
 * under any dependence between the tests. m counts only the comparisons
 * actually made: an undefined test is left out by the caller, not passed.
 * p outside [0,1] or NAN, alpha outside (0,1), m == 0: -1. */
int fd_holm(double *adj, int *reject, const double *p, size_t m, double alpha, struct fd_err *e);

/* Spread of per-source AUCs (the plan's "per-source AUC variance"): population
 * variance over the k sources (numpy.var(aucs), ddof = 0: the sources are all
 * there are, not a sample), its square root, the population standard
 * deviation (numpy.std(aucs), ddof = 0, in the AUC's own units), and max - min. Any NAN AUC
 * (undefined for a source) or k == 0: FD_EVAL_UNDEFINED, outputs NAN. */
struct fd_spread {
	double var, std, range;
};
int fd_auc_spread(struct fd_spread *s, const double *auc, size_t k, struct fd_err *e);

#endif

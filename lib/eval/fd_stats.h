/* fd_stats: the statistics of fd-report: mean, standard deviation, Student-t
 * distribution, t-intervals over folds, paired and corrected resampled t-tests,
 * DeLong's test for correlated ROC AUCs. Checked against scipy 1.10 and numpy
 * reference code (doc/eval.md). */
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
 * 0 < level < 1 else -1. */
int fd_summary(struct fd_summary *s, const double *x, size_t n, double level, struct fd_err *e);

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
/* AUC of a with its DeLong interval auc +- norm.ppf((1+level)/2) * sqrt(var),
 * clipped to [0,1] (as pROC's ci.auc(method="delong")). */
int fd_delong_ci(double *auc, double *lo, double *hi, const double *a, const uint8_t *label,
		 size_t n, double level, struct fd_err *e);

/* Spread of per-source AUCs (the plan's "per-source AUC variance"): population
 * variance over the k sources (numpy.var(aucs), ddof = 0: the sources are all
 * there are, not a sample), its square root and max - min. Any NAN AUC
 * (undefined for a source) or k == 0: FD_EVAL_UNDEFINED, outputs NAN. */
struct fd_spread {
	double var, std, range;
};
int fd_auc_spread(struct fd_spread *s, const double *auc, size_t k, struct fd_err *e);

#endif

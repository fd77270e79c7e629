/* fd_stats: Student-t and normal distributions, fold summaries, paired and
 * corrected resampled t-tests, DeLong's test and interval, Holm's correction;
 * references in doc/eval.md. */
#include "eval/fd_stats.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double fd_mean(const double *x, size_t n)
{
	if (n == 0)
		return NAN;
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += x[i];
	return s / (double)n;
}

double fd_var(const double *x, size_t n, int ddof)
{
	if (ddof < 0 || n <= (size_t)ddof)
		return NAN;
	double m = fd_mean(x, n), s = 0;
	for (size_t i = 0; i < n; i++)
		s += (x[i] - m) * (x[i] - m);
	return s / (double)(n - (size_t)ddof);
}

double fd_std(const double *x, size_t n)
{
	return sqrt(fd_var(x, n, 1));
}

static double lgam(double x)
{
	int sign;
	return lgamma_r(x, &sign);
}

/* Tail of Stirling's series for ln Gamma(z), z >= 10: the next term is below 2e-14 there. */
static double stirling_corr(double z)
{
	double r = 1 / z, r2 = r * r;
	return r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260 - r2 * (1.0 / 1680 - r2 / 1188))));
}

/* ln B(a, b). With one argument large, lgamma(big) - lgamma(big + small) is
 * taken from Stirling's series in a form without cancellation, so the t
 * distribution (b = 1/2) stays accurate for large df. */
static double lbeta(double a, double b)
{
	double big = fmax(a, b), small = fmin(a, b);
	if (big < 10)
		return lgam(a) + lgam(b) - lgam(a + b);
	double d = -small * log(big) - (big + small - 0.5) * log1p(small / big) + small +
		   stirling_corr(big) - stirling_corr(big + small);
	return lgam(small) + d;
}

/* Continued fraction of I_x(a, b) / prefactor by the modified Lentz method.
 * Near the switch point x ~ a/(a+b) with large a (the centre of a t
 * distribution with large df) the value is ~1/(1 - x(a+b)/a) and the steps
 * cancel that many digits, so it runs in long double (x87 extended on x86-64:
 * 11 more bits); measured against mpmath in t_eval. */
static double betacf(double a, double b, double x)
{
	const long double tiny = 1e-300L;
	long double c = 1, d = 1 - (a + b) * (long double)x / (a + 1);
	if (fabsl(d) < tiny)
		d = tiny;
	d = 1 / d;
	long double h = d;
	for (int m = 1; m <= 100000; m++) {
		long double m2 = 2.0L * m;
		long double num = m * (b - m) * (long double)x / ((a + m2 - 1) * (a + m2));
		d = 1 + num * d;
		d = fabsl(d) < tiny ? 1 / tiny : 1 / d;
		c = 1 + num / c;
		if (fabsl(c) < tiny)
			c = tiny;
		h *= d * c;
		num = -(a + m) * (a + b + m) * (long double)x / ((a + m2) * (a + m2 + 1));
		d = 1 + num * d;
		d = fabsl(d) < tiny ? 1 / tiny : 1 / d;
		c = 1 + num / c;
		if (fabsl(c) < tiny)
			c = tiny;
		long double del = d * c;
		h *= del;
		if (fabsl(del - 1) < LDBL_EPSILON)
			break;
	}
	return (double)h;
}

/* I_x(a, b) given x, y = 1 - x and their logarithms, each computed by the
 * caller without cancellation. */
static double betainc_xy(double a, double b, double x, double y, double lx, double ly)
{
	if (x <= 0)
		return 0;
	if (y <= 0)
		return 1;
	if (x < (a + 1) / (a + b + 2))
		return exp(a * lx + b * ly - lbeta(a, b)) / a * betacf(a, b, x);
	return 1 - exp(a * lx + b * ly - lbeta(a, b)) / b * betacf(b, a, y);
}

double fd_betainc(double a, double b, double x)
{
	if (!(a > 0 && b > 0 && x >= 0 && x <= 1))
		return NAN;
	return betainc_xy(a, b, x, 1 - x, log(x), log1p(-x));
}

double fd_t_sf(double t, double df)
{
	if (isnan(t) || !(df > 0))
		return NAN;
	if (isinf(df))
		return fd_norm_sf(t);
	if (t < 0)
		return 1 - fd_t_sf(-t, df);
	if (t == 0)
		return 0.5;
	if (isinf(t))
		return 0;
	/* P(T > t) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2); x and 1 - x are
	 * formed from whichever ratio is small, never as 1 - something. */
	double x, y, lx, ly, r = sqrt(df) / t;
	if (r < 1) {
		double u = r * r; /* df / t^2 */
		x = u / (1 + u), y = 1 / (1 + u);
		lx = log(u) - log1p(u), ly = -log1p(u);
	} else {
		double v = 1 / (r * r); /* t^2 / df */
		x = 1 / (1 + v), y = v / (1 + v);
		lx = -log1p(v), ly = log(v) - log1p(v);
	}
	double a = df / 2;
	if (a > 1000 && y * (a + 0.5) < 5) {
		/* Centre of a large-df t: even the long double fraction loses ~1e-10
		 * here, so take 1 - I_y(1/2, a) from its power series, all terms
		 * positive (DLMF 8.17.7 with the roles swapped); sf >= 1e-3 here, so
		 * the subtraction costs nothing. */
		double c = 1, sum = 1;
		for (int n = 0; n < 10000 && c > 1e-17 * sum; n++) {
			c *= y * (a + 0.5 + n) / (1.5 + n);
			sum += c;
		}
		return 0.5 * (1 - exp(0.5 * ly + a * lx - lbeta(a, 0.5)) / 0.5 * sum);
	}
	return 0.5 * betainc_xy(a, 0.5, x, y, lx, ly);
}

double fd_t_cdf(double t, double df)
{
	return fd_t_sf(-t, df);
}

static double t_pdf(double t, double df)
{
	return exp(-(df + 1) / 2 * log1p(t * t / df) - 0.5 * log(df) - lbeta(df / 2, 0.5));
}

double fd_norm_sf(double z)
{
	return 0.5 * erfc(z / sqrt(2.0));
}

double fd_norm_cdf(double z)
{
	return 0.5 * erfc(-z / sqrt(2.0));
}

static double norm_sf2(double z, double df)
{
	(void)df;
	return fd_norm_sf(z);
}

static double norm_pdf2(double z, double df)
{
	(void)df;
	return exp(-z * z / 2) / sqrt(2 * M_PI);
}

/* The t > 0 with sf(t) = q, 0 < q < 1/2: bracket by doubling, then Newton on
 * ln sf (so power-law tails converge too), bisecting whenever a step leaves
 * the bracket. */
static double solve_upper(double q, double df, double (*sf)(double, double),
			  double (*pdf)(double, double))
{
	double lo = 0, hi = 1;
	while (sf(hi, df) > q && hi < 1e300)
		lo = hi, hi *= 2;
	double t = (lo + hi) / 2, lq = log(q);
	for (int it = 0; it < 500; it++) {
		double s = sf(t, df);
		if (s > q)
			lo = t;
		else
			hi = t;
		double f = pdf(t, df), next = t + (log(s) - lq) * s / f;
		if (!(next > lo && next < hi) || !isfinite(next))
			next = lo > 0 && hi / lo > 4 ? sqrt(lo * hi) : (lo + hi) / 2;
		if (fabs(next - t) <= 4 * DBL_EPSILON * t || hi - lo <= 4 * DBL_EPSILON * hi)
			return next;
		t = next;
	}
	return t;
}

static double ppf(double p, double df, double (*sf)(double, double), double (*pdf)(double, double))
{
	if (!(p >= 0 && p <= 1))
		return NAN;
	if (p == 0)
		return -INFINITY;
	if (p == 1)
		return INFINITY;
	if (p == 0.5)
		return 0;
	return p < 0.5 ? -solve_upper(p, df, sf, pdf) : solve_upper(1 - p, df, sf, pdf);
}

double fd_t_ppf(double p, double df)
{
	if (!(df > 0))
		return NAN;
	if (isinf(df))
		return fd_norm_ppf(p);
	return ppf(p, df, fd_t_sf, t_pdf);
}

double fd_norm_ppf(double p)
{
	return ppf(p, 0, norm_sf2, norm_pdf2);
}

/* mean +- t * sqrt(vf * var(x, ddof=1)) for fd_summary (vf = 1/n) and fd_summary_nb. */
static int summary_vf(struct fd_summary *s, const double *x, size_t n, double level, double ratio,
		      struct fd_err *e)
{
	*s = (struct fd_summary){n, NAN, NAN, NAN, NAN};
	if (!(level > 0 && level < 1))
		return fd_err_set(e, "confidence level %g outside (0,1)", level);
	if (n == 0)
		return fd_err_set(e, "no values");
	s->mean = fd_mean(x, n);
	if (n < 2) {
		fd_err_set(e, "interval undefined with %zu value", n);
		return FD_EVAL_UNDEFINED;
	}
	s->std = fd_std(x, n);
	double h = fd_t_ppf((1 + level) / 2, (double)(n - 1)) * s->std * sqrt(1 / (double)n + ratio);
	s->lo = s->mean - h;
	s->hi = s->mean + h;
	return 0;
}

int fd_summary(struct fd_summary *s, const double *x, size_t n, double level, struct fd_err *e)
{
	return summary_vf(s, x, n, level, 0, e);
}

int fd_summary_nb(struct fd_summary *s, const double *x, size_t J, double test_train_ratio,
		  double level, struct fd_err *e)
{
	if (!(test_train_ratio >= 0 && isfinite(test_train_ratio))) {
		*s = (struct fd_summary){J, NAN, NAN, NAN, NAN};
		return fd_err_set(e, "test/train ratio %g is not a finite number >= 0", test_train_ratio);
	}
	return summary_vf(s, x, J, level, test_train_ratio, e);
}

void fd_summary_clip(struct fd_summary *s, double min, double max)
{
	if (s->lo < min)
		s->lo = min;
	if (s->hi > max)
		s->hi = max;
}

/* t-test of the mean of d[J] against 0 with variance factor vf on var(d)
 * (1/J for the plain paired test). */
static int ttest_d(struct fd_test *t, const double *d, size_t J, double vf, struct fd_err *e)
{
	t->diff = fd_mean(d, J);
	double v = fd_var(d, J, 1);
	t->df = (double)J - 1;
	t->se = sqrt(vf * v);
	if (!(v > 0)) {
		fd_err_set(e, "t-test undefined: the %zu differences are all equal", J);
		return FD_EVAL_UNDEFINED;
	}
	t->stat = t->diff / t->se;
	t->p = 2 * fd_t_sf(fabs(t->stat), t->df);
	return 0;
}

static int diffs(double **d, const double *a, const double *b, size_t n, struct fd_err *e)
{
	*d = malloc((n ? n : 1) * sizeof **d);
	if (!*d)
		return fd_err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(a[i]) || !isfinite(b[i])) {
			free(*d);
			*d = NULL;
			return fd_err_set(e, "value %zu is not finite", i);
		}
		(*d)[i] = a[i] - b[i];
	}
	return 0;
}

int fd_ttest_paired(struct fd_test *t, const double *a, const double *b, size_t n, struct fd_err *e)
{
	*t = (struct fd_test){NAN, NAN, NAN, NAN, NAN};
	if (n < 2) {
		fd_err_set(e, "t-test undefined with %zu pairs", n);
		return FD_EVAL_UNDEFINED;
	}
	double *d;
	if (diffs(&d, a, b, n, e) < 0)
		return -1;
	int rc = ttest_d(t, d, n, 1.0 / (double)n, e);
	free(d);
	return rc;
}

int fd_ttest_nadeau_bengio(struct fd_test *t, const double *a, const double *b, size_t J,
			   double test_train_ratio, struct fd_err *e)
{
	*t = (struct fd_test){NAN, NAN, NAN, NAN, NAN};
	if (!(test_train_ratio >= 0 && isfinite(test_train_ratio)))
		return fd_err_set(e, "test/train ratio %g is not a finite number >= 0", test_train_ratio);
	if (J < 2) {
		fd_err_set(e, "t-test undefined with %zu resamples", J);
		return FD_EVAL_UNDEFINED;
	}
	double *d;
	if (diffs(&d, a, b, J, e) < 0)
		return -1;
	int rc = ttest_d(t, d, J, 1.0 / (double)J + test_train_ratio, e);
	free(d);
	return rc;
}

struct vi {
	double v;
	size_t i;
};

static int cmp_vi(const void *a, const void *b)
{
	double x = ((const struct vi *)a)->v, y = ((const struct vi *)b)->v;
	return (x > y) - (x < y);
}

/* 1-based midranks of v[n] into r[n]; tmp has n entries of scratch. */
static void midranks(const double *v, size_t n, double *r, struct vi *tmp)
{
	for (size_t i = 0; i < n; i++)
		tmp[i] = (struct vi){v[i], i};
	qsort(tmp, n, sizeof *tmp, cmp_vi);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && tmp[j].v == tmp[i].v)
			j++;
		for (size_t k = i; k < j; k++)
			r[tmp[k].i] = (double)(i + 1 + j) / 2;
		i = j;
	}
}

/* Structural components of one classifier (Sun & Xu 2014): with positives X
 * (m) and negatives Y (k), V10[i] = (TZ(X_i) - TX(X_i)) / k and V01[j] =
 * 1 - (TZ(Y_j) - TY(Y_j)) / m, where TX, TY, TZ are midranks within X, within Y
 * and over all rows. Returns the AUC (the mean of V10). buf: 3n + n vi. */
static double components(const double *s, const uint8_t *label, size_t n, size_t m,
			 double *v10, double *v01, double *buf, struct vi *tmp)
{
	size_t k = n - m;
	double *xs = buf, *ys = buf + m, *tz = buf + n, *tx = buf + 2 * n, *ty = tx + m;
	for (size_t i = 0, a = 0, b = 0; i < n; i++) {
		if (label[i])
			xs[a++] = s[i];
		else
			ys[b++] = s[i];
	}
	midranks(s, n, tz, tmp);
	midranks(xs, m, tx, tmp);
	midranks(ys, k, ty, tmp);
	double sum = 0;
	for (size_t i = 0, a = 0, b = 0; i < n; i++) {
		if (label[i]) {
			v10[a] = (tz[i] - tx[a]) / (double)k;
			sum += tz[i];
			a++;
		} else {
			v01[b] = 1 - (tz[i] - ty[b]) / (double)m;
			b++;
		}
	}
	return (sum - (double)m * ((double)m + 1) / 2) / ((double)m * (double)k);
}

static double cov(const double *x, const double *y, size_t n, double mx, double my)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (x[i] - mx) * (y[i] - my);
	return s / (double)(n - 1);
}

/* DeLong variances of one or two classifiers (b may be NULL). */
static int delong(struct fd_delong *d, const double *a, const double *b, const uint8_t *label,
		  size_t n, struct fd_err *e)
{
	*d = (struct fd_delong){{NAN, NAN}, {NAN, NAN}, NAN};
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (label[i] > 1)
			return fd_err_set(e, "row %zu: label %u is not 0 or 1", i, (unsigned)label[i]);
		if (!isfinite(a[i]) || (b && !isfinite(b[i])))
			return fd_err_set(e, "row %zu: score is not finite", i);
		m += label[i];
	}
	size_t k = n - m;
	if (m < 2 || k < 2) {
		fd_err_set(e, "DeLong undefined with %zu fake and %zu real rows (needs 2 of each)", m, k);
		return FD_EVAL_UNDEFINED;
	}
	int nc = b ? 2 : 1;
	double *v10 = malloc(2 * m * sizeof *v10), *v01 = malloc(2 * k * sizeof *v01);
	double *buf = malloc(3 * n * sizeof *buf);
	struct vi *tmp = malloc(n * sizeof *tmp);
	if (!v10 || !v01 || !buf || !tmp) {
		free(v10), free(v01), free(buf), free(tmp);
		return fd_err_set(e, "out of memory (%zu rows)", n);
	}
	for (int c = 0; c < nc; c++)
		d->auc[c] = components(c ? b : a, label, n, m, v10 + c * m, v01 + c * k, buf, tmp);
	double mv01[2];
	for (int c = 0; c < nc; c++)
		mv01[c] = fd_mean(v01 + c * k, k);
	for (int c = 0; c < nc; c++)
		d->var[c] = cov(v10 + c * m, v10 + c * m, m, d->auc[c], d->auc[c]) / (double)m +
			    cov(v01 + c * k, v01 + c * k, k, mv01[c], mv01[c]) / (double)k;
	if (b)
		d->cov = cov(v10, v10 + m, m, d->auc[0], d->auc[1]) / (double)m +
			 cov(v01, v01 + k, k, mv01[0], mv01[1]) / (double)k;
	free(v10), free(v01), free(buf), free(tmp);
	return 0;
}

int fd_delong_test(struct fd_test *t, struct fd_delong *d, const double *a, const double *b,
		   const uint8_t *label, size_t n, struct fd_err *e)
{
	struct fd_delong dd;
	*t = (struct fd_test){NAN, NAN, NAN, INFINITY, NAN};
	int rc = delong(&dd, a, b, label, n, e);
	if (d)
		*d = dd;
	if (rc)
		return rc;
	double v = dd.var[0] + dd.var[1] - 2 * dd.cov;
	t->diff = dd.auc[0] - dd.auc[1];
	if (!(v > 0)) {
		fd_err_set(e, "DeLong test undefined: the two AUCs' difference has zero variance");
		return FD_EVAL_UNDEFINED;
	}
	t->se = sqrt(v);
	t->stat = t->diff / t->se;
	t->p = 2 * fd_norm_sf(fabs(t->stat));
	return 0;
}

int fd_delong_ci(struct fd_auc_ci *ci, const double *score, const uint8_t *label, size_t n,
		 double level, enum fd_auc_ci_method method, struct fd_err *e)
{
	*ci = (struct fd_auc_ci){NAN, NAN, NAN, NAN};
	if (!(level > 0 && level < 1))
		return fd_err_set(e, "confidence level %g outside (0,1)", level);
	if (method != FD_AUC_CI_LOGIT && method != FD_AUC_CI_WALD)
		return fd_err_set(e, "AUC interval: unknown method %d", (int)method);
	struct fd_delong d;
	int rc = delong(&d, score, NULL, label, n, e);
	ci->auc = d.auc[0];
	if (rc)
		return rc;
	double a = d.auc[0], z = fd_norm_ppf((1 + level) / 2);
	ci->se = sqrt(d.var[0]);
	if (method == FD_AUC_CI_WALD) {
		ci->lo = fmax(0, a - z * ci->se);
		ci->hi = fmin(1, a + z * ci->se);
		return 0;
	}
	if (!(a > 0 && a < 1)) {
		fd_err_set(e, "logit AUC interval undefined at AUC %g (the classes are split perfectly)", a);
		return FD_EVAL_UNDEFINED;
	}
	double l = log(a / (1 - a)), h = z * ci->se / (a * (1 - a));
	ci->lo = 1 / (1 + exp(-(l - h)));
	ci->hi = 1 / (1 + exp(-(l + h)));
	return 0;
}

struct pi {
	double p;
	size_t i;
};

static int cmp_pi(const void *a, const void *b)
{
	const struct pi *x = a, *y = b;
	if (x->p != y->p)
		return (x->p > y->p) - (x->p < y->p);
	return (x->i > y->i) - (x->i < y->i);
}

int fd_holm(double *adj, int *reject, const double *p, size_t m, double alpha, struct fd_err *e)
{
	if (m == 0)
		return fd_err_set(e, "Holm: no p-values");
	if (!(alpha > 0 && alpha < 1))
		return fd_err_set(e, "Holm: alpha %g outside (0,1)", alpha);
	for (size_t i = 0; i < m; i++)
		if (!(p[i] >= 0 && p[i] <= 1))
			return fd_err_set(e, "Holm: p-value %zu is %g, not in [0,1]", i, p[i]);
	struct pi *v = malloc(m * sizeof *v);
	if (!v)
		return fd_err_set(e, "out of memory (%zu p-values)", m);
	for (size_t i = 0; i < m; i++)
		v[i] = (struct pi){p[i], i};
	qsort(v, m, sizeof *v, cmp_pi);
	/* Step down: the first p_(j) > alpha / (m - j + 1) (0-based j: m - j)
	 * stops the rejections; statsmodels compares p to alpha / k, not p k to alpha. */
	int rejecting = 1;
	double run = 0;
	for (size_t j = 0; j < m; j++) {
		double k = (double)(m - j);
		rejecting = rejecting && !(v[j].p > alpha / k);
		run = fmax(run, v[j].p * k);
		adj[v[j].i] = fmin(run, 1);
		if (reject)
			reject[v[j].i] = rejecting;
	}
	free(v);
	return 0;
}

int fd_auc_spread(struct fd_spread *s, const double *auc, size_t k, struct fd_err *e)
{
	*s = (struct fd_spread){NAN, NAN, NAN};
	if (k == 0) {
		fd_err_set(e, "no per-source AUCs");
		return FD_EVAL_UNDEFINED;
	}
	double mn = INFINITY, mx = -INFINITY;
	for (size_t i = 0; i < k; i++) {
		if (isnan(auc[i])) {
			fd_err_set(e, "per-source AUC %zu is undefined", i);
			return FD_EVAL_UNDEFINED;
		}
		mn = fmin(mn, auc[i]);
		mx = fmax(mx, auc[i]);
	}
	s->var = fd_var(auc, k, 0);
	s->std = sqrt(s->var);
	s->range = mx - mn;
	return 0;
}

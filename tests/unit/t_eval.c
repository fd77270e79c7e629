/* t_eval: lib/eval against tests/ref/eval_metrics.py: metrics vs scikit-learn
 * (AUC, ROC curve, AP, EER interpolated and DeepfakeBench's, confusion,
 * accuracy/precision/recall/F1, log loss), ECE vs the numpy code of Guo et
 * al.'s definition, BCE vs PyTorch, distributions vs scipy, fold intervals and
 * tests vs scipy and the Nadeau-Bengio formulas, DeLong's test and AUC
 * intervals vs the slow and fast (Sun & Xu) numpy DeLong, Holm vs statsmodels. */
#include "eval/fd_metrics.h"
#include "eval/fd_stats.h"
#include "io/fd_safetensors.h"
#include "tap.h"

#include <stdint.h>
#include <string.h>

static struct fd_st st;
static int missing;

static const void *get(const char *name, enum fd_dtype dt, int64_t numel)
{
	const struct fd_st_tensor *t = fd_st_find(&st, name);
	if (!t || t->dtype != dt || (numel >= 0 && t->numel != numel)) {
		ok(0, "fixture tensor %s present with the expected dtype and size", name);
		missing++;
		return NULL;
	}
	return t->data;
}

static int64_t numel(const char *name)
{
	const struct fd_st_tensor *t = fd_st_find(&st, name);
	return t ? t->numel : -1;
}

/* One value within atol + rtol |ref|; NAN only matches NAN. Quiet on success. */
static int near(double a, double r, double atol, double rtol)
{
	if (isnan(r) || isnan(a))
		return isnan(r) && isnan(a);
	if (isinf(r) || isinf(a))
		return a == r;
	return fabs(a - r) <= atol + rtol * fabs(r);
}

/* Compare n doubles and report one TAP line with the worst share of tolerance. */
static int close_f64(const char *what, const double *a, const double *r, size_t n, double atol,
		     double rtol)
{
	double worst = 0, maxerr = 0;
	size_t wi = 0;
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		double err = (isnan(a[i]) || isnan(r[i]) || isinf(r[i])) ? (near(a[i], r[i], 0, 0) ? 0 : INFINITY)
									    : fabs(a[i] - r[i]);
		double share = err == 0 ? 0 : err / (atol + rtol * fabs(r[i]));
		maxerr = tap_worse(maxerr, err);
		if (!(share <= worst))
			wi = i;
		worst = tap_worse(worst, share);
		bad |= !near(a[i], r[i], atol, rtol);
	}
	return ok(!bad && n > 0, "%s: %zu values, max err %.3g, worst [%zu] %.17g vs %.17g = %.2f of tol", what, n,
		  maxerr, wi, n ? a[wi] : 0.0, n ? r[wi] : 0.0, worst);
}

/* Metrics as the reference orders them. */
static void as_ref(const struct fd_metrics *m, double *v)
{
	double x[11] = {m->auc_defined ? m->auc : NAN, m->accuracy, m->precision, m->recall, m->f1,
			m->log_loss, m->ece, (double)m->c.tp, (double)m->c.fp, (double)m->c.tn,
			(double)m->c.fn};
	memcpy(v, x, sizeof x);
}

static void metrics_case(int k, const char *name)
{
	char key[64], what[160];
#define KEY(s) (snprintf(key, sizeof key, "c%d/%s", k, s), key)
	int64_t n = numel(KEY("score"));
	const double *p = get(KEY("score"), FD_DT_F64, -1);
	const uint8_t *y = get(KEY("label"), FD_DT_U8, n);
	const int *src = get(KEY("source"), FD_DT_I32, n);
	const double *ref = get(KEY("ref"), FD_DT_F64, 11);
	const double *bins = get(KEY("bins"), FD_DT_F64, FD_ECE_BINS * 3);
	const double *rank = get(KEY("rank"), FD_DT_F64, 3);
	const double *per = get(KEY("per_source"), FD_DT_F64, 3 * 16);
	const double *logit = get(KEY("logit"), FD_DT_F64, n);
	const double *bce = get(KEY("bce"), FD_DT_F64, 1);
	if (!p || !y || !src || !ref || !rank || !bins || !per || !logit || !bce)
		return;
	struct fd_err e = {{0}};
	struct fd_metrics m;
	double v[11];
	int rc = fd_metrics_compute(&m, p, y, (size_t)n, &e);
	as_ref(&m, v);
	ok(rc == 0 && m.n == (size_t)n && m.n_fake == m.c.tp + m.c.fn, "%s: metrics computed (%s)", name,
	   rc ? e.msg : "ok");
	ok(m.auc_defined == !isnan(ref[0]), "%s: AUC %s as sklearn", name,
	   isnan(ref[0]) ? "undefined" : "defined");
	snprintf(what, sizeof what, "%s: auc", name);
	close_f64(what, v, ref, 1, 1e-9, 0);
	snprintf(what, sizeof what, "%s: acc prec rec f1", name);
	close_f64(what, v + 1, ref + 1, 4, 1e-12, 0);
	snprintf(what, sizeof what, "%s: log loss", name);
	close_f64(what, v + 5, ref + 5, 1, 1e-12, 1e-12);
	snprintf(what, sizeof what, "%s: ece", name);
	close_f64(what, v + 6, ref + 6, 1, 1e-12, 0);
	snprintf(what, sizeof what, "%s: tp fp tn fn", name);
	close_f64(what, v + 7, ref + 7, 4, 0, 0);
	double rk[3] = {m.ap, m.eer, m.eer_nearest};
	snprintf(what, sizeof what, "%s: AP, EER, DeepfakeBench EER", name);
	close_f64(what, rk, rank, 3, 1e-12, 0);

	struct fd_calib_bin cb[FD_ECE_BINS];
	double got[FD_ECE_BINS * 3], ece;
	fd_ece(p, y, (size_t)n, FD_ECE_BINS, &ece, cb, &e);
	for (int b = 0; b < FD_ECE_BINS; b++)
		got[3 * b] = (double)cb[b].count, got[3 * b + 1] = cb[b].conf, got[3 * b + 2] = cb[b].acc;
	snprintf(what, sizeof what, "%s: reliability bins (count, conf, acc)", name);
	close_f64(what, got, bins, FD_ECE_BINS * 3, 1e-12, 0);

	double l;
	rc = fd_bce_logits(logit, y, (size_t)n, &l, &e);
	snprintf(what, sizeof what, "%s: BCE with logits vs torch", name);
	ok(rc == 0, "%s: BCE computed", name);
	close_f64(what, &l, bce, 1, 1e-12, 1e-12);

	for (int drop = 0; drop < 2; drop++) {
		const char *rk = drop ? "roc_drop" : "roc";
		struct fd_roc r;
		rc = fd_roc_curve(&r, p, y, (size_t)n, drop, &e);
		if (numel(KEY(rk)) < 0) {
			ok(rc == FD_EVAL_UNDEFINED && r.n == 0, "%s: %s undefined with one class: %s", name, rk,
			   e.msg);
			continue;
		}
		int64_t pts = numel(key) / 3;
		const double *rr = get(key, FD_DT_F64, -1);
		ok(rc == 0 && (int64_t)r.n == pts, "%s: %s has %zu points (sklearn %lld)", name, rk, r.n,
		   (long long)pts);
		if (rc == 0 && (int64_t)r.n == pts) {
			snprintf(what, sizeof what, "%s: %s fpr", name, rk);
			close_f64(what, r.fpr, rr, r.n, 1e-15, 0);
			snprintf(what, sizeof what, "%s: %s tpr", name, rk);
			close_f64(what, r.tpr, rr + pts, r.n, 1e-15, 0);
			snprintf(what, sizeof what, "%s: %s thresholds", name, rk);
			close_f64(what, r.thr, rr + 2 * pts, r.n, 0, 0);
		}
		fd_roc_free(&r);
	}

	for (int s = 1; s <= 3; s++) {
		const double *pr = per + (s - 1) * 16;
		rc = fd_metrics_source(&m, p, y, src, (size_t)n, s, &e);
		if (pr[11] + pr[12] == 0) {
			ok(rc < 0 && strstr(e.msg, "no rows"), "%s: source %d without rows refused: %s", name, s,
			   e.msg);
			continue;
		}
		as_ref(&m, v);
		snprintf(what, sizeof what, "%s: source %d: all metrics", name, s);
		ok(rc == 0 && (double)m.n_real == pr[11] && (double)m.n_fake == pr[12],
		   "%s: source %d: %zu real, %zu fake", name, s, m.n_real, m.n_fake);
		close_f64(what, v, pr, 11, 1e-9, 1e-12);
		double rs[3] = {m.ap, m.eer, m.eer_nearest};
		snprintf(what, sizeof what, "%s: source %d: AP, EER, DeepfakeBench EER", name, s);
		close_f64(what, rs, pr + 13, 3, 1e-12, 0);
	}
#undef KEY
}

/* AP and both EERs on many small tied cases, one-class ones NA. */
static void rank_cases(void)
{
	int64_t nc = numel("rk/off") - 1;
	const double *p = get("rk/score", FD_DT_F64, -1);
	const uint8_t *y = get("rk/label", FD_DT_U8, numel("rk/score"));
	const int64_t *off = get("rk/off", FD_DT_I64, -1);
	const double *ref = get("rk/ref", FD_DT_F64, 3 * nc);
	if (!p || !y || !off || !ref || nc < 1)
		return;
	double *got = malloc((size_t)nc * 3 * sizeof *got);
	size_t na = 0, bad_rc = 0;
	for (int64_t k = 0; k < nc; k++) {
		struct fd_err e = {{0}};
		size_t n = (size_t)(off[k + 1] - off[k]);
		const double *pk = p + off[k];
		const uint8_t *yk = y + off[k];
		int r0 = fd_average_precision(pk, yk, n, got + 3 * k, &e);
		int r1 = fd_eer(pk, yk, n, FD_EER_INTERP, got + 3 * k + 1, &e);
		int r2 = fd_eer(pk, yk, n, FD_EER_NEAREST, got + 3 * k + 2, &e);
		int want = isnan(ref[3 * k]) ? FD_EVAL_UNDEFINED : 0;
		na += want != 0;
		bad_rc += r0 != want || r1 != want || r2 != want;
	}
	ok(bad_rc == 0 && na > 20 && (size_t)nc - na > 400,
	   "%lld AP/EER cases: %zu one-class ones undefined, return codes as expected (%zu wrong)",
	   (long long)nc, na, bad_rc);
	close_f64("AP vs average_precision_score, EER vs roc_curve interpolated and nearest (abs 1e-12)",
		  got, ref, (size_t)nc * 3, 1e-12, 0);
	free(got);
}

static void bad_input(void)
{
	struct fd_err e = {{0}};
	double p[3] = {0.2, 1.5, 0.1}, auc;
	uint8_t y[3] = {0, 1, 1};
	ok(fd_auc(p, y, 3, &auc, &e) == -1 && strstr(e.msg, "row 1: score 1.5 outside [0,1]"),
	   "score outside [0,1] refused: %s", e.msg);
	p[1] = NAN;
	ok(fd_auc(p, y, 3, &auc, &e) == -1 && strstr(e.msg, "row 1"), "NaN score refused: %s", e.msg);
	p[1] = 0.5, y[2] = 2;
	ok(fd_auc(p, y, 3, &auc, &e) == -1 && strstr(e.msg, "row 2: label 2"), "label 2 refused: %s", e.msg);
	ok(fd_auc(p, y, 0, &auc, &e) == -1 && strstr(e.msg, "no rows"), "no rows refused: %s", e.msg);
	y[2] = 0, y[1] = 0;
	ok(fd_auc(p, y, 3, &auc, &e) == FD_EVAL_UNDEFINED && isnan(auc) && strstr(e.msg, "one class"),
	   "one class: undefined, not a number: %s", e.msg);
	double x[2] = {1, INFINITY}, l;
	ok(fd_bce_logits(x, y, 2, &l, &e) == -1 && strstr(e.msg, "row 1"), "infinite logit refused: %s",
	   e.msg);
	ok(fd_ece(p, y, 3, 0, &l, NULL, &e) == -1, "ECE with 0 bins refused: %s", e.msg);
	double ap, eer;
	ok(fd_average_precision(p, y, 3, &ap, &e) == FD_EVAL_UNDEFINED && isnan(ap) &&
		   fd_eer(p, y, 3, FD_EER_INTERP, &eer, &e) == FD_EVAL_UNDEFINED && isnan(eer),
	   "one class: AP and EER undefined: %s", e.msg);
	p[0] = 7;
	ok(fd_average_precision(p, y, 3, &ap, &e) == -1 && strstr(e.msg, "row 0"),
	   "AP: score outside [0,1] refused: %s", e.msg);
	p[0] = 0.2, y[0] = 1;
	ok(fd_eer(p, y, 3, (enum fd_eer_method)7, &eer, &e) == -1, "EER: unknown method refused: %s", e.msg);
	/* By hand: fakes 0.9 0.4, reals 0.6 0.1. Points (FPR, TPR): (0,0) (0,.5)
	 * (.5,.5) (.5,1) (1,1); FNR - FPR: 1 .5 0 -.5 -1 -> EER .5 at a point.
	 * AP = .5 * 1 + .5 * 2/3. */
	double hp[4] = {0.9, 0.4, 0.6, 0.1};
	uint8_t hy[4] = {1, 1, 0, 0};
	int r1 = fd_eer(hp, hy, 4, FD_EER_INTERP, &eer, &e), r2 = fd_average_precision(hp, hy, 4, &ap, &e);
	ok(r1 == 0 && eer == 0.5 && r2 == 0 && fabs(ap - (0.5 + 1.0 / 3)) < 1e-15,
	   "by hand: EER %g = 0.5, AP %.17g = 5/6", eer, ap);
}

static void distributions(void)
{
	int64_t n = numel("t/args") / 2;
	const double *g = get("t/args", FD_DT_F64, -1), *cdf = get("t/cdf", FD_DT_F64, n),
		     *sf = get("t/sf", FD_DT_F64, n);
	int64_t m = numel("ppf/args") / 2;
	const double *q = get("ppf/args", FD_DT_F64, -1), *tp = get("ppf/t", FD_DT_F64, m),
		     *np_ = get("ppf/norm", FD_DT_F64, m);
	int64_t nz = numel("norm/z");
	const double *z = get("norm/z", FD_DT_F64, -1), *ncdf = get("norm/cdf", FD_DT_F64, nz),
		     *nsf = get("norm/sf", FD_DT_F64, nz);
	int64_t nb = numel("betainc/args") / 3;
	const double *bi = get("betainc/args", FD_DT_F64, -1), *bv = get("betainc/val", FD_DT_F64, nb);
	if (!g || !cdf || !sf || !q || !tp || !np_ || !z || !ncdf || !nsf || !bi || !bv)
		return;
	double *a = malloc((size_t)(n + m + nz + nb) * sizeof *a);
	for (int64_t i = 0; i < n; i++)
		a[i] = fd_t_cdf(g[2 * i], g[2 * i + 1]);
	close_f64("t cdf vs scipy.stats.t.cdf (abs 1e-12)", a, cdf, (size_t)n, 1e-12, 0);
	for (int64_t i = 0; i < n; i++)
		a[i] = fd_t_sf(g[2 * i], g[2 * i + 1]);
	/* The tail is compared relatively: p-values of 1e-30 must be right too. */
	close_f64("t sf vs scipy.stats.t.sf (rel 1e-10)", a, sf, (size_t)n, 1e-300, 1e-10);
	for (int64_t i = 0; i < m; i++)
		a[i] = fd_t_ppf(q[2 * i], q[2 * i + 1]);
	/* scipy's own t.ppf is only good to ~3e-9 (see eval_metrics.py); the
	 * 1e-10 check is against the 30-digit mpmath quantile below. */
	close_f64("t ppf vs scipy.stats.t.ppf (rel 1e-8)", a, tp, (size_t)m, 1e-12, 1e-8);
	int64_t nm = numel("ppf/mp") / 3;
	const double *mq = get("ppf/mp", FD_DT_F64, -1);
	if (mq) {
		double *b = malloc((size_t)nm * 2 * sizeof *b);
		for (int64_t i = 0; i < nm; i++)
			b[i] = fd_t_ppf(mq[3 * i], mq[3 * i + 1]), b[nm + i] = mq[3 * i + 2];
		ok(nm > 100, "%lld mpmath quantiles", (long long)nm);
		close_f64("t ppf vs mpmath, df <= 1000 (rel 1e-12)", b, b + nm, (size_t)nm, 1e-14, 1e-12);
		free(b);
	}
	for (int64_t i = 0; i < m; i++)
		a[i] = fd_norm_ppf(q[2 * i]);
	close_f64("norm ppf vs scipy.stats.norm.ppf (rel 1e-12)", a, np_, (size_t)m, 1e-14, 1e-12);
	for (int64_t i = 0; i < nz; i++)
		a[i] = fd_norm_cdf(z[i]);
	close_f64("norm cdf vs scipy", a, ncdf, (size_t)nz, 1e-300, 1e-12);
	for (int64_t i = 0; i < nz; i++)
		a[i] = fd_norm_sf(z[i]);
	close_f64("norm sf vs scipy", a, nsf, (size_t)nz, 1e-300, 1e-12);
	for (int64_t i = 0; i < nb; i++)
		a[i] = fd_betainc(bi[3 * i], bi[3 * i + 1], bi[3 * i + 2]);
	close_f64("betainc vs scipy.special.betainc (abs 1e-13, rel 1e-10)", a, bv, (size_t)nb, 1e-13,
		  1e-10);
	free(a);
	ok(isnan(fd_t_cdf(1, 0)) && isnan(fd_t_ppf(1.5, 3)) && isnan(fd_betainc(-1, 1, 0.5)) &&
		   fd_t_ppf(0, 4) == -INFINITY && fd_t_ppf(1, 4) == INFINITY,
	   "out-of-domain arguments give NAN, p = 0 and 1 give -inf and inf");
}

static void folds(int nf)
{
	char key[64], what[128];
	int nclip = 0;
	for (int k = 0; k < nf; k++) {
		snprintf(key, sizeof key, "f%d/a", k);
		int64_t J = numel(key);
		const double *a = get(key, FD_DT_F64, -1);
		snprintf(key, sizeof key, "f%d/b", k);
		const double *b = get(key, FD_DT_F64, J);
		snprintf(key, sizeof key, "f%d/ratio", k);
		const double *ratio = get(key, FD_DT_F64, 1);
		snprintf(key, sizeof key, "f%d/ref", k);
		const double *ref = get(key, FD_DT_F64, 15);
		if (!a || !b || !ratio || !ref)
			return;
		struct fd_err e = {{0}};
		struct fd_summary s, nbs, nbc;
		struct fd_test tr, nb;
		struct fd_spread sp;
		int r1 = fd_summary(&s, a, (size_t)J, 0.95, &e);
		int r2 = fd_ttest_paired(&tr, a, b, (size_t)J, &e);
		int r3 = fd_ttest_nadeau_bengio(&nb, a, b, (size_t)J, ratio[0], &e);
		int r4 = fd_auc_spread(&sp, a, (size_t)J, &e);
		int r5 = fd_summary_nb(&nbs, a, (size_t)J, ratio[0], 0.95, &e);
		nbc = nbs;
		fd_summary_clip(&nbc, 0, 1);
		ok(!r1 && !r2 && !r3 && !r4 && !r5 && tr.df == J - 1 && nb.df == J - 1,
		   "folds J=%lld: all defined", (long long)J);
		double v[15] = {s.mean, s.std, s.lo, s.hi, tr.stat, tr.p, nb.stat, nb.p, sp.var, sp.std, sp.range,
				nbs.lo, nbs.hi, nbc.lo, nbc.hi};
		snprintf(what, sizeof what, "folds J=%lld ratio %.3g: summary, tests, spread", (long long)J,
			 ratio[0]);
		close_f64(what, v, ref, 11, 1e-12, 1e-10);
		/* scipy's t.ppf is good to ~3e-9 relative (see distributions). */
		snprintf(what, sizeof what, "folds J=%lld ratio %.3g: Nadeau-Bengio interval, clipped [%.4f, %.4f]",
			 (long long)J, ratio[0], nbc.lo, nbc.hi);
		close_f64(what, v + 11, ref + 11, 4, 1e-12, 1e-9);
		nclip += nbs.lo < 0 || nbs.hi > 1;
	}
	struct fd_err e = {{0}};
	struct fd_summary s;
	struct fd_test t;
	double one[1] = {0.9}, c[3] = {0.5, 0.5, 0.5}, d[3] = {0.25, 0.25, 0.25};
	ok(fd_summary(&s, one, 1, 0.95, &e) == FD_EVAL_UNDEFINED && s.mean == 0.9 && isnan(s.lo),
	   "one fold: mean, interval undefined: %s", e.msg);
	ok(fd_summary(&s, c, 3, 0.95, &e) == 0 && s.std == 0 && s.lo == s.mean && s.hi == s.mean,
	   "equal folds: zero-width interval");
	ok(fd_summary(&s, c, 3, 1.0, &e) == -1, "level 1 refused: %s", e.msg);
	ok(fd_ttest_paired(&t, c, d, 3, &e) == FD_EVAL_UNDEFINED && isnan(t.p),
	   "constant differences: paired t-test undefined: %s", e.msg);
	ok(fd_ttest_nadeau_bengio(&t, c, d, 3, -1, &e) == -1, "negative test/train ratio refused: %s", e.msg);
	ok(nclip >= 3, "%d fold sets whose corrected interval leaves [0,1] before clipping", nclip);
	ok(fd_summary_nb(&s, c, 3, NAN, 0.95, &e) == -1 && fd_summary_nb(&s, one, 1, 0.5, 0.95, &e) ==
		   FD_EVAL_UNDEFINED && isnan(s.lo),
	   "corrected interval: NaN ratio refused, one fold undefined: %s", e.msg);
	fd_summary_clip(&s, 0, 1);
	ok(isnan(s.lo) && isnan(s.hi) && s.mean == 0.9, "clipping leaves an undefined interval NaN");
	double sa[3] = {0.9, NAN, 0.8};
	struct fd_spread sp;
	ok(fd_auc_spread(&sp, sa, 3, &e) == FD_EVAL_UNDEFINED && isnan(sp.var),
	   "spread with an undefined AUC is undefined: %s", e.msg);
}

static void delong(int nd)
{
	char key[64], what[96];
	int ndef = 0;
	for (int k = 0; k < nd; k++) {
		snprintf(key, sizeof key, "d%d/a", k);
		int64_t n = numel(key);
		const double *a = get(key, FD_DT_F64, -1);
		snprintf(key, sizeof key, "d%d/b", k);
		const double *b = get(key, FD_DT_F64, n);
		snprintf(key, sizeof key, "d%d/label", k);
		const uint8_t *y = get(key, FD_DT_U8, n);
		snprintf(key, sizeof key, "d%d/ref", k);
		const double *ref = get(key, FD_DT_F64, 12);
		if (!a || !b || !y || !ref)
			return;
		struct fd_err e = {{0}};
		struct fd_test t;
		struct fd_delong d;
		struct fd_auc_ci w, l;
		int r1 = fd_delong_test(&t, &d, a, b, y, (size_t)n, &e);
		int r2 = fd_delong_ci(&w, a, y, (size_t)n, 0.95, FD_AUC_CI_WALD, &e);
		int r3 = fd_delong_ci(&l, a, y, (size_t)n, 0.95, FD_AUC_CI_LOGIT, &e);
		int want1 = isnan(ref[6]) ? FD_EVAL_UNDEFINED : 0, want3 = isnan(ref[10]) ? FD_EVAL_UNDEFINED : 0;
		ok(r1 == want1 && !r2 && r3 == want3 && isinf(t.df) && w.auc == d.auc[0] && l.auc == d.auc[0],
		   "DeLong n=%lld: defined as the reference (test %d, logit interval %d)", (long long)n, r1, r3);
		double v[12] = {d.auc[0], d.auc[1], d.var[0], d.var[1], d.cov, t.stat, t.p, w.lo, w.hi, w.se,
				l.lo, l.hi};
		snprintf(what, sizeof what, "DeLong n=%lld: aucs, variances, z, p, Wald and logit CI",
			 (long long)n);
		close_f64(what, v, ref, 12, 1e-12, 1e-9);
		ndef += !r1;
	}
	ok(ndef >= 30, "%d DeLong cases with a defined test", ndef);
	struct fd_err e = {{0}};
	struct fd_test t;
	double a[5] = {0.1, 0.4, 0.35, 0.8, 0.7}, b[5] = {1, 4, 3.5, 8, 7};
	struct fd_auc_ci ci;
	uint8_t y[5] = {0, 0, 1, 1, 1};
	ok(fd_delong_test(&t, NULL, a, b, y, 5, &e) == FD_EVAL_UNDEFINED && t.diff == 0 && isnan(t.p),
	   "same ranking: DeLong test undefined: %s", e.msg);
	double sep[5] = {0.1, 0.3, 0.35, 0.8, 0.7};
	ok(fd_delong_ci(&ci, sep, y, 5, 0.95, FD_AUC_CI_LOGIT, &e) == FD_EVAL_UNDEFINED && ci.auc == 1 &&
		   isnan(ci.lo) && fd_delong_ci(&ci, sep, y, 5, 0.95, FD_AUC_CI_WALD, &e) == 0 && ci.lo == 1 &&
		   ci.hi == 1,
	   "perfect split: logit interval undefined, Wald [1, 1]: %s", e.msg);
	y[1] = 1;
	ok(fd_delong_ci(&ci, a, y, 5, 0.95, FD_AUC_CI_WALD, &e) == FD_EVAL_UNDEFINED && isnan(ci.lo),
	   "one real row: DeLong undefined: %s", e.msg);
	ok(fd_delong_ci(&ci, a, y, 5, 1.5, FD_AUC_CI_WALD, &e) == -1, "level 1.5 refused: %s", e.msg);
}

static void holm(int nh)
{
	int64_t np_ = numel("holm/p");
	const double *p = get("holm/p", FD_DT_F64, -1), *adj = get("holm/adj", FD_DT_F64, np_),
		     *alpha = get("holm/alpha", FD_DT_F64, nh);
	const uint8_t *rej = get("holm/reject", FD_DT_U8, np_);
	const int64_t *off = get("holm/off", FD_DT_I64, nh + 1);
	if (!p || !adj || !alpha || !rej || !off || nh < 1)
		return;
	double *got = malloc((size_t)np_ * sizeof *got);
	int *r = malloc((size_t)np_ * sizeof *r);
	size_t bad = 0, nrej = 0, rc = 0;
	struct fd_err e = {{0}};
	for (int k = 0; k < nh; k++)
		rc += fd_holm(got + off[k], r + off[k], p + off[k], (size_t)(off[k + 1] - off[k]), alpha[k], &e) != 0;
	for (int64_t i = 0; i < np_; i++)
		bad += r[i] != rej[i], nrej += rej[i];
	ok(rc == 0 && bad == 0 && nrej > 50 && nrej < (size_t)np_,
	   "Holm: %d families, %lld p-values, %zu rejections as statsmodels (%zu differ)", nh,
	   (long long)np_, nrej, bad);
	close_f64("Holm adjusted p vs statsmodels multipletests(method=holm) (exact)", got, adj, (size_t)np_, 0,
		  0);
	double q[3] = {0.01, 0.04, 0.03};
	int rj[3];
	int hr = fd_holm(q, rj, q, 3, 0.05, &e);
	ok(hr == 0 && q[0] == 0.03 && q[1] == 0.06 && q[2] == 0.06 && rj[0] && !rj[1] && !rj[2],
	   "in place: 0.01 0.04 0.03 -> %g %g %g, only the first rejected", q[0], q[1], q[2]);
	q[1] = NAN;
	ok(fd_holm(q, NULL, q, 3, 0.05, &e) == -1 && strstr(e.msg, "p-value 1"), "NaN p-value refused: %s",
	   e.msg);
	ok(fd_holm(q, NULL, q, 0, 0.05, &e) == -1 && fd_holm(q, NULL, q, 1, 1, &e) == -1,
	   "no p-values or alpha 1 refused: %s", e.msg);
	free(got), free(r);
}

int main(void)
{
	const char *b = getenv("FD_BUILD");
	char path[4096];
	struct fd_err e = {{0}};
	snprintf(path, sizeof path, "%s/ref/eval_metrics/metrics.safetensors", b ? b : "build");
	if (!ok(fd_st_open(&st, path, &e) == 0, "open %s", path)) {
		diag("%s (run make check-build)", e.msg);
		return tap_done();
	}
	const char *nc = fd_st_meta(&st, "ncases"), *names = fd_st_meta(&st, "names");
	int ncases = nc ? atoi(nc) : 0;
	ok(ncases > 20 && names, "%d metric cases", ncases);
	const char *nm = names ? names : "";
	for (int k = 0; k < ncases; k++) {
		char name[96];
		size_t len = strcspn(nm, "|");
		snprintf(name, sizeof name, "%.*s", (int)(len < 90 ? len : 90), nm);
		nm += len + (nm[len] == '|');
		metrics_case(k, name);
	}
	rank_cases();
	fd_st_close(&st);
	bad_input();

	snprintf(path, sizeof path, "%s/ref/eval_metrics/stats.safetensors", b ? b : "build");
	if (!ok(fd_st_open(&st, path, &e) == 0, "open %s", path)) {
		diag("%s", e.msg);
		return tap_done();
	}
	distributions();
	const char *nf = fd_st_meta(&st, "nfold"), *nd = fd_st_meta(&st, "ndelong");
	folds(nf ? atoi(nf) : 0);
	delong(nd ? atoi(nd) : 0);
	const char *nh = fd_st_meta(&st, "nholm");
	holm(nh ? atoi(nh) : 0);
	ok(missing == 0, "every fixture tensor found");
	fd_st_close(&st);
	return tap_done();
}

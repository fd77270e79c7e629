/* fd_metrics: ROC AUC/curve, AP, EER, threshold metrics, log loss and ECE over arrays;
 * definitions and their scikit-learn references are in doc/eval.md. */
#include "eval/fd_metrics.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int fd_eval_check(const double *score, const uint8_t *label, size_t n, struct fd_err *e)
{
	if (n == 0)
		return fd_err_set(e, "no rows");
	for (size_t i = 0; i < n; i++) {
		if (!(score[i] >= 0.0 && score[i] <= 1.0))
			return fd_err_set(e, "row %zu: score %g outside [0,1]", i, score[i]);
		if (label[i] > 1)
			return fd_err_set(e, "row %zu: label %u is not 0 or 1", i, (unsigned)label[i]);
	}
	return 0;
}

struct sy {
	double s;
	uint8_t y;
};

static int cmp_sy_asc(const void *a, const void *b)
{
	double x = ((const struct sy *)a)->s, y = ((const struct sy *)b)->s;
	return (x > y) - (x < y);
}

/* Copy (score, label) pairs sorted by increasing score; NULL on OOM. */
static struct sy *sorted_pairs(const double *score, const uint8_t *label, size_t n, struct fd_err *e)
{
	struct sy *v = malloc(n * sizeof *v);
	if (!v) {
		fd_err_set(e, "out of memory (%zu rows)", n);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = (struct sy){score[i], label[i]};
	qsort(v, n, sizeof *v, cmp_sy_asc);
	return v;
}

static int one_class(size_t n1, size_t n0, struct fd_err *e)
{
	fd_err_set(e, "undefined with one class (%zu fake, %zu real)", n1, n0);
	return FD_EVAL_UNDEFINED;
}

int fd_auc(const double *score, const uint8_t *label, size_t n, double *auc, struct fd_err *e)
{
	*auc = NAN;
	if (fd_eval_check(score, label, n, e) < 0)
		return -1;
	size_t n1 = 0;
	for (size_t i = 0; i < n; i++)
		n1 += label[i];
	size_t n0 = n - n1;
	if (n1 == 0 || n0 == 0)
		return one_class(n1, n0, e);
	struct sy *v = sorted_pairs(score, label, n, e);
	if (!v)
		return -1;
	/* Ranks are 1-based; a tie block at positions [i, j) shares the midrank
	 * (i + 1 + j) / 2, so twice the rank sum is an exact integer. */
	double r2 = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1, k = v[i].y;
		while (j < n && v[j].s == v[i].s)
			k += v[j++].y;
		r2 += (double)k * (double)(i + 1 + j);
		i = j;
	}
	free(v);
	double u = r2 / 2 - (double)n1 * ((double)n1 + 1) / 2;
	*auc = u / ((double)n1 * (double)n0);
	return 0;
}

void fd_roc_free(struct fd_roc *r)
{
	if (!r)
		return;
	free(r->fpr);
	free(r->tpr);
	free(r->thr);
	memset(r, 0, sizeof *r);
}

int fd_roc_curve(struct fd_roc *r, const double *score, const uint8_t *label, size_t n,
		 int drop_intermediate, struct fd_err *e)
{
	memset(r, 0, sizeof *r);
	if (fd_eval_check(score, label, n, e) < 0)
		return -1;
	size_t n1 = 0;
	for (size_t i = 0; i < n; i++)
		n1 += label[i];
	if (n1 == 0 || n1 == n)
		return one_class(n1, n - n1, e);
	struct sy *v = sorted_pairs(score, label, n, e);
	if (!v)
		return -1;
	/* Cumulative counts at the last row of each distinct score, from the top. */
	size_t m = 0, cap = n + 1;
	double *tps = malloc(cap * sizeof *tps), *fps = malloc(cap * sizeof *fps);
	r->thr = malloc(cap * sizeof *r->thr);
	r->fpr = malloc(cap * sizeof *r->fpr);
	r->tpr = malloc(cap * sizeof *r->tpr);
	if (!tps || !fps || !r->thr || !r->fpr || !r->tpr) {
		free(v), free(tps), free(fps), fd_roc_free(r);
		return fd_err_set(e, "out of memory (%zu rows)", n);
	}
	size_t tp = 0, fp = 0;
	for (size_t i = n; i > 0;) {
		double s = v[i - 1].s;
		while (i > 0 && v[i - 1].s == s) {
			tp += v[i - 1].y;
			fp += 1u - v[i - 1].y;
			i--;
		}
		tps[m] = (double)tp, fps[m] = (double)fp, r->thr[m + 1] = s;
		m++;
	}
	free(v);
	/* Keep point k (1..m-2) only where the curve bends: a non-zero second
	 * difference of fps or tps, as sklearn's drop_intermediate. */
	size_t out = 0;
	for (size_t k = 0; k < m; k++) {
		int keep = !drop_intermediate || m <= 2 || k == 0 || k == m - 1 ||
			   fps[k + 1] - 2 * fps[k] + fps[k - 1] != 0 ||
			   tps[k + 1] - 2 * tps[k] + tps[k - 1] != 0;
		if (!keep)
			continue;
		r->fpr[out + 1] = fps[k] / (double)(n - n1);
		r->tpr[out + 1] = tps[k] / (double)n1;
		r->thr[out + 1] = r->thr[k + 1];
		out++;
	}
	free(tps);
	free(fps);
	r->fpr[0] = 0, r->tpr[0] = 0, r->thr[0] = r->thr[1] + 1;
	r->n = out + 1;
	return 0;
}

/* AP and interpolated EER of rows already checked, with both classes, in one
 * pass over the distinct scores from the highest down. */
static int ap_eer(const double *score, const uint8_t *label, size_t n, size_t n1, double *ap,
		  double *eer, struct fd_err *e)
{
	struct sy *v = sorted_pairs(score, label, n, e);
	if (!v)
		return -1;
	double d1 = (double)n1, d0 = (double)(n - n1), sum = 0;
	double fpr0 = 0, g0 = 1; /* the ROC point before this threshold: (0,0), g = FNR - FPR */
	size_t tp = 0, fp = 0;
	*eer = NAN;
	for (size_t i = n; i > 0;) {
		double s = v[i - 1].s;
		size_t dtp = 0;
		while (i > 0 && v[i - 1].s == s) {
			dtp += v[i - 1].y;
			fp += 1u - v[i - 1].y;
			i--;
		}
		tp += dtp;
		/* sklearn: -sum(diff(recall) * precision), recall = tps / tps[-1] */
		if (dtp)
			sum += ((double)tp / d1 - (double)(tp - dtp) / d1) * ((double)tp / (double)(tp + fp));
		double fpr = (double)fp / d0, g = (1 - (double)tp / d1) - fpr;
		if (isnan(*eer) && g <= 0)
			*eer = g == 0 ? fpr : fpr0 + g0 / (g0 - g) * (fpr - fpr0);
		fpr0 = fpr, g0 = g;
	}
	free(v);
	*ap = sum;
	return 0;
}

/* Rows checked; the number of fakes, or FD_EVAL_UNDEFINED (message set) with one class. */
static int two_classes(const double *score, const uint8_t *label, size_t n, size_t *n1,
		       struct fd_err *e)
{
	if (fd_eval_check(score, label, n, e) < 0)
		return -1;
	*n1 = 0;
	for (size_t i = 0; i < n; i++)
		*n1 += label[i];
	if (*n1 == 0 || *n1 == n)
		return one_class(*n1, n - *n1, e);
	return 0;
}

int fd_average_precision(const double *score, const uint8_t *label, size_t n, double *ap,
			 struct fd_err *e)
{
	double eer;
	size_t n1;
	*ap = NAN;
	int rc = two_classes(score, label, n, &n1, e);
	if (rc)
		return rc;
	return ap_eer(score, label, n, n1, ap, &eer, e);
}

/* DeepfakeBench's EER: fpr at the first minimum of |(1 - tpr) - fpr| over the
 * curve with sklearn's intermediate points dropped, in sklearn's float order. */
static int eer_nearest(const double *score, const uint8_t *label, size_t n, double *eer,
		       struct fd_err *e)
{
	struct fd_roc r;
	int rc = fd_roc_curve(&r, score, label, n, 1, e);
	if (rc)
		return rc;
	size_t best = 0;
	for (size_t i = 1; i < r.n; i++)
		if (fabs((1 - r.tpr[i]) - r.fpr[i]) < fabs((1 - r.tpr[best]) - r.fpr[best]))
			best = i;
	*eer = r.fpr[best];
	fd_roc_free(&r);
	return 0;
}

int fd_eer(const double *score, const uint8_t *label, size_t n, enum fd_eer_method method,
	   double *eer, struct fd_err *e)
{
	double ap;
	size_t n1;
	*eer = NAN;
	if (method != FD_EER_INTERP && method != FD_EER_NEAREST)
		return fd_err_set(e, "eer: unknown method %d", (int)method);
	int rc = two_classes(score, label, n, &n1, e);
	if (rc)
		return rc;
	if (method == FD_EER_NEAREST)
		return eer_nearest(score, label, n, eer, e);
	return ap_eer(score, label, n, n1, &ap, eer, e);
}

int fd_confusion(struct fd_confusion *c, const double *score, const uint8_t *label, size_t n,
		 struct fd_err *e)
{
	memset(c, 0, sizeof *c);
	if (fd_eval_check(score, label, n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int pred = score[i] >= FD_EVAL_THRESHOLD;
		if (label[i])
			pred ? c->tp++ : c->fn++;
		else
			pred ? c->fp++ : c->tn++;
	}
	return 0;
}

int fd_log_loss(const double *score, const uint8_t *label, size_t n, double *loss, struct fd_err *e)
{
	*loss = NAN;
	if (fd_eval_check(score, label, n, e) < 0)
		return -1;
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		double p = fmin(fmax(score[i], DBL_EPSILON), 1 - DBL_EPSILON);
		double q = 1 - p, z = q + p; /* z is 1 up to rounding; sklearn divides by it */
		sum -= log((label[i] ? p : q) / z);
	}
	*loss = sum / (double)n;
	return 0;
}

int fd_bce_logits(const double *logit, const uint8_t *label, size_t n, double *loss, struct fd_err *e)
{
	*loss = NAN;
	if (n == 0)
		return fd_err_set(e, "no rows");
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		double x = logit[i];
		if (!isfinite(x))
			return fd_err_set(e, "row %zu: logit %g is not finite", i, x);
		if (label[i] > 1)
			return fd_err_set(e, "row %zu: label %u is not 0 or 1", i, (unsigned)label[i]);
		sum += fmax(x, 0) - x * label[i] + log1p(exp(-fabs(x)));
	}
	*loss = sum / (double)n;
	return 0;
}

int fd_ece(const double *score, const uint8_t *label, size_t n, int nbins, double *ece,
	   struct fd_calib_bin *bins, struct fd_err *e)
{
	*ece = NAN;
	if (nbins < 1)
		return fd_err_set(e, "ece: %d bins", nbins);
	if (fd_eval_check(score, label, n, e) < 0)
		return -1;
	size_t *cnt = calloc((size_t)nbins, sizeof *cnt);
	double *csum = calloc((size_t)nbins, sizeof *csum), *hit = calloc((size_t)nbins, sizeof *hit);
	double *edge = malloc(((size_t)nbins + 1) * sizeof *edge);
	if (!cnt || !csum || !hit || !edge) {
		free(cnt), free(csum), free(hit), free(edge);
		return fd_err_set(e, "out of memory");
	}
	/* numpy.linspace(0, 1, nbins + 1): i * step, last edge exactly 1. */
	double step = 1.0 / nbins;
	for (int i = 0; i < nbins; i++)
		edge[i] = i * step;
	edge[nbins] = 1.0;
	for (size_t i = 0; i < n; i++) {
		int pred = score[i] >= FD_EVAL_THRESHOLD;
		double conf = pred ? score[i] : 1 - score[i];
		/* Bin b with edge[b] < conf <= edge[b+1]; start from the arithmetic
		 * guess and settle on the edges themselves. */
		int b = (int)ceil(conf * nbins) - 1;
		if (b < 0)
			b = 0;
		if (b > nbins - 1)
			b = nbins - 1;
		while (b > 0 && conf <= edge[b])
			b--;
		while (b < nbins - 1 && conf > edge[b + 1])
			b++;
		cnt[b]++;
		csum[b] += conf;
		hit[b] += pred == label[i];
	}
	double sum = 0;
	for (int b = 0; b < nbins; b++) {
		double c = cnt[b] ? csum[b] / (double)cnt[b] : 0, a = cnt[b] ? hit[b] / (double)cnt[b] : 0;
		sum += (double)cnt[b] / (double)n * fabs(a - c);
		if (bins)
			bins[b] = (struct fd_calib_bin){edge[b], edge[b + 1], cnt[b], c, a};
	}
	free(cnt), free(csum), free(hit), free(edge);
	*ece = sum;
	return 0;
}

static double ratio0(double a, double b)
{
	return b > 0 ? a / b : 0;
}

int fd_metrics_compute(struct fd_metrics *m, const double *score, const uint8_t *label, size_t n,
		       struct fd_err *e)
{
	memset(m, 0, sizeof *m);
	m->auc = m->ap = m->eer = m->eer_nearest = NAN;
	if (fd_confusion(&m->c, score, label, n, e) < 0)
		return -1;
	m->n = n;
	m->n_fake = m->c.tp + m->c.fn;
	m->n_real = m->c.tn + m->c.fp;
	double tp = (double)m->c.tp, fp = (double)m->c.fp, fn = (double)m->c.fn;
	m->accuracy = (double)(m->c.tp + m->c.tn) / (double)n;
	m->precision = ratio0(tp, tp + fp);
	m->recall = ratio0(tp, tp + fn);
	m->f1 = ratio0(2 * tp, 2 * tp + fp + fn);
	int rc = fd_auc(score, label, n, &m->auc, e);
	if (rc < 0)
		return -1;
	m->auc_defined = rc == 0;
	if (m->auc_defined && (ap_eer(score, label, n, m->n_fake, &m->ap, &m->eer, e) < 0 ||
			       eer_nearest(score, label, n, &m->eer_nearest, e) != 0))
		return -1;
	if (fd_log_loss(score, label, n, &m->log_loss, e) < 0 ||
	    fd_ece(score, label, n, FD_ECE_BINS, &m->ece, NULL, e) < 0)
		return -1;
	return 0;
}

int fd_metrics_source(struct fd_metrics *m, const double *score, const uint8_t *label,
		      const int *source, size_t n, int src, struct fd_err *e)
{
	memset(m, 0, sizeof *m);
	m->auc = m->ap = m->eer = m->eer_nearest = NAN;
	if (fd_eval_check(score, label, n, e) < 0)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += label[i] == 0 || source[i] == src;
	if (k == 0)
		return fd_err_set(e, "source %d: no rows", src);
	double *s = malloc(k * sizeof *s);
	uint8_t *y = malloc(k);
	if (!s || !y) {
		free(s), free(y);
		return fd_err_set(e, "out of memory (%zu rows)", k);
	}
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (label[i] == 0 || source[i] == src)
			s[k] = score[i], y[k++] = label[i];
	int rc = fd_metrics_compute(m, s, y, k, e);
	free(s), free(y);
	if (rc < 0)
		return fd_err_ctx(e, "source %d", src);
	return 0;
}

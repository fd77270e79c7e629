/* fd_metrics: the classification metrics of fd-eval over plain arrays: ROC AUC
 * and curve, average precision, equal error rate, threshold metrics, log loss,
 * expected calibration error, per fake source. Each matches scikit-learn 1.2.1
 * (Debian 12) as documented in doc/eval.md. */
#ifndef FD_METRICS_H
#define FD_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"

/* Returned (instead of 0) when a value is mathematically undefined for the
 * input, e.g. AUC with one class; the value is then NAN and e says why.
 * Callers print "NA". -1 stays "bad input or out of memory". */
#define FD_EVAL_UNDEFINED 1

/* score >= FD_EVAL_THRESHOLD predicts fake (label 1). */
#define FD_EVAL_THRESHOLD 0.5
#define FD_ECE_BINS 15

/* Inputs everywhere: score[n] = P(fake) in [0,1] (finite), label[n] in {0,1}
 * (1 = fake), n >= 1. fd_eval_check refuses anything else with the first bad
 * row ("row 7: score 1.5 outside [0,1]"); every function below calls it. */
int fd_eval_check(const double *score, const uint8_t *label, size_t n, struct fd_err *e);

/* ROC AUC by the Mann-Whitney statistic with average ranks for ties:
 * (sum of midranks of fakes - n1(n1+1)/2) / (n1 n0), O(n log n), exact
 * half-integer rank sums. Equals sklearn.metrics.roc_auc_score(label, score)
 * to rounding. One class present: returns FD_EVAL_UNDEFINED, *auc = NAN. */
int fd_auc(const double *score, const uint8_t *label, size_t n, double *auc, struct fd_err *e);

/* ROC curve points, as sklearn 1.2.1 roc_curve(label, score,
 * drop_intermediate=...): thr[] holds the distinct scores in decreasing order
 * preceded by max score + 1 (sklearn >= 1.3 uses inf there), fpr/tpr[i] the
 * rates of "score >= thr[i]"; point 0 is (0,0). drop_intermediate drops points
 * collinear with their neighbours (sklearn's second-difference rule). Arrays
 * are owned by r (fd_roc_free). One class: FD_EVAL_UNDEFINED, r empty. */
struct fd_roc {
	size_t n;
	double *fpr, *tpr, *thr;
};
int fd_roc_curve(struct fd_roc *r, const double *score, const uint8_t *label, size_t n,
		 int drop_intermediate, struct fd_err *e);
void fd_roc_free(struct fd_roc *r);

/* Average precision, as sklearn 1.2.1 average_precision_score(label, score):
 * AP = sum over the distinct scores t, from the highest down, of
 * (R(t) - R(t')) * P(t), where "score >= t" predicts fake, R = tp / n_fake,
 * P = tp / (tp + fp) and t' is the next higher distinct score (R = 0 above
 * the top). Tied scores are one threshold: no interpolation inside a tie.
 * One class: FD_EVAL_UNDEFINED, *ap = NAN (sklearn returns 1 with only fakes
 * and -0 with a warning with only reals; neither measures anything). */
int fd_average_precision(const double *score, const uint8_t *label, size_t n, double *ap,
			 struct fd_err *e);

/* Equal error rate from the ROC curve (false positive rate = false negative
 * rate = 1 - TPR). FD_EER_INTERP: where FNR - FPR crosses 0 on the segment
 * between the two ROC points (over all distinct scores, as fd_roc_curve
 * without drop_intermediate) that bracket it, linearly interpolated: with
 * g = FNR - FPR, g(k-1) > 0 >= g(k), EER = FPR(k-1) + g(k-1) / (g(k-1) -
 * g(k)) * (FPR(k) - FPR(k-1)); the same value as the common
 * brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1). Collinear points
 * do not change it. FD_EER_NEAREST: DeepfakeBench's definition
 * (training/metrics/utils.py): fpr[nanargmin(|fnr - fpr|)] over sklearn's
 * roc_curve with its default drop_intermediate=True, the first point on a
 * tie; no interpolation, so it depends on which points the curve keeps.
 * One class: FD_EVAL_UNDEFINED, *eer = NAN. */
enum fd_eer_method {
	FD_EER_INTERP,
	FD_EER_NEAREST,
};
int fd_eer(const double *score, const uint8_t *label, size_t n, enum fd_eer_method method,
	   double *eer, struct fd_err *e);

/* Confusion counts at score >= FD_EVAL_THRESHOLD -> predicted fake. */
struct fd_confusion {
	size_t tp, fp, tn, fn;
};
int fd_confusion(struct fd_confusion *c, const double *score, const uint8_t *label, size_t n,
		 struct fd_err *e);

/* Mean log loss, as sklearn 1.2.1 log_loss(label, score, labels=[0,1]) on
 * float64 scores: p clipped to [DBL_EPSILON, 1 - DBL_EPSILON], the pair
 * (1-p, p) renormalised to sum 1, mean of -log of the true class. Defined with
 * one class too (sklearn needs labels=[0,1] there). */
int fd_log_loss(const double *score, const uint8_t *label, size_t n, double *loss, struct fd_err *e);

/* Mean binary cross-entropy from logits, as torch.nn.BCEWithLogitsLoss()(logit,
 * label.float()) in float64: max(x,0) - x y + log1p(exp(-|x|)). Logits must be
 * finite. This is fd-train's loss; fd_log_loss is the metric on scores. */
int fd_bce_logits(const double *logit, const uint8_t *label, size_t n, double *loss, struct fd_err *e);

/* One reliability-diagram bin: confidences in (lo, hi] (bin 0 also takes lo = 0). */
struct fd_calib_bin {
	double lo, hi;
	size_t count;
	double conf;     /* mean confidence of its rows, 0 when empty */
	double acc;      /* share of its rows predicted correctly, 0 when empty */
};

/* Expected calibration error (Guo et al. 2017) with nbins equal-width bins:
 * prediction = (score >= 0.5), confidence = max(score, 1 - score) (the
 * predicted class's probability, so only bins above 0.5 fill), bin edges
 * i * (1/nbins) as numpy.linspace(0, 1, nbins+1), a row goes to the bin with
 * lo < conf <= hi; ECE = sum over bins count/n * |acc - conf|. bins (nbins
 * entries, may be NULL) receives the reliability diagram. nbins >= 1. */
int fd_ece(const double *score, const uint8_t *label, size_t n, int nbins, double *ece,
	   struct fd_calib_bin *bins, struct fd_err *e);

/* Everything fd-eval reports for one set of rows. With one class the ranking
 * metrics (auc, ap, eer, eer_nearest) are NAN and auc_defined = 0; every
 * other field is always defined (precision, recall and F1 are 0 when their
 * denominator is 0, as sklearn's zero_division=0). */
struct fd_metrics {
	size_t n, n_real, n_fake;
	struct fd_confusion c;
	int auc_defined;
	double auc;
	double ap;          /* fd_average_precision */
	double eer;         /* fd_eer, FD_EER_INTERP */
	double eer_nearest; /* fd_eer, FD_EER_NEAREST (DeepfakeBench's) */
	double accuracy;    /* (tp + tn) / n */
	double precision;   /* tp / (tp + fp) */
	double recall;      /* tp / (tp + fn) */
	double f1;          /* 2 tp / (2 tp + fp + fn) */
	double log_loss;    /* fd_log_loss */
	double ece;         /* fd_ece with FD_ECE_BINS */
};

/* All metrics over all n rows. Returns 0 (also when AUC is undefined, see
 * auc_defined) or -1 on bad input / out of memory. */
int fd_metrics_compute(struct fd_metrics *m, const double *score, const uint8_t *label, size_t n,
		       struct fd_err *e);

/* Metrics of one fake source: every real row (label 0, whatever its source)
 * against the fake rows whose source[i] == src. n_real/n_fake give the counts;
 * no fakes of src leaves AUC undefined. No rows at all is an error. */
int fd_metrics_source(struct fd_metrics *m, const double *score, const uint8_t *label,
		      const int *source, size_t n, int src, struct fd_err *e);

#endif

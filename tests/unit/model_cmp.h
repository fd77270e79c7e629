/* model_cmp.h: one model run on two devices (t_cuda: CUDA against the CPU)
 * compared with a conditioned tolerance, and the CPU-only check that this
 * tolerance is right (t_model_cond).
 *
 * Why not a plain relative tolerance: some tensors of a train-mode BatchNorm
 * net are zero in exact arithmetic and only rounding noise in float32, so
 * two correct float32 runs disagree on them by several times their own RMS.
 * In EfficientNet-B0 and MobileNetV3 every expand conv's input is a block
 * output, which is a train-mode BatchNorm output (zero mean per channel) or
 * such an output plus an earlier block output (zero mean too): the 1x1
 * conv's output then has batch mean sum_c w_kc * 0, so the expand
 * BatchNorm's running_mean (and features.8/12's) is momentum x noise. And a
 * projection BatchNorm's bias shifts a channel of the block output
 * uniformly, which the next block's train-mode BatchNorm removes again: its
 * gradient is zero up to rounding. Both are exactly the tensors the first
 * GPU run flagged (bench/results/gpu.md); t_model_cond shows a CPU run
 * against the same CPU run with 1-ulp changes flags the same ones.
 *
 * The tolerance of a tensor t: max |a - r| <= MC_RTOL x RMS(r) + MC_K x
 * max |p - r|, where r is the reference run, a the run checked and p a third
 * run on the reference's device with every weight and input element moved by
 * 1 ulp at random (mc_perturb): max |p - r| is that tensor's sensitivity to
 * float32 rounding at the inputs, measured, as t_models uses torch's own
 * float32 error (4x) for the CPU's tolerance against torch's float64. A real
 * kernel bug moves a tensor by far more than rounding does; a scaled
 * gradient (x 1.01) or a NaN fails (t_model_cond's negative controls). */
#ifndef MODEL_CMP_H
#define MODEL_CMP_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fd_rng.h"
#include "models/fd_model.h"
#include "nn/fd_backend.h"
#include "tap.h"

#define MC_RTOL 2e-3
#define MC_K 4.0

/* Host copies of what one step of a model produced: the logits, the loss,
 * and per view (state_dict order) the gradient (parameters) or the values
 * (buffers: running statistics); counters are left out (NULL). */
struct mc_snap {
	int n;
	float **v;
	float *logits;
	int64_t nlogits;
	double loss;
};

TAP_UNUSED static void mc_snap_free(struct mc_snap *s)
{
	for (int i = 0; s->v && i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	free(s->logits);
	memset(s, 0, sizeof *s);
}

/* device memory of c's device (or host memory for the CPU) -> a new host
 * array; NULL on failure */
TAP_UNUSED static float *mc_fetch(struct fd_ctx *c, const float *src, int64_t n)
{
	float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof *h);
	if (h && n > 0 && fd_backend_of(c->dev)->copy_d2h(c, h, src, (size_t)n * sizeof *h) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

/* Snapshot m (on c's device) after a forward with these logits and loss
 * (loss: the loss tensor, a scalar on c's device). 0, or -1 when a copy
 * failed (s is then empty). */
TAP_UNUSED static int mc_snap_take(struct mc_snap *s, struct fd_ctx *c, const struct fd_model *m,
			const struct fd_tensor *logits, const struct fd_tensor *loss)
{
	memset(s, 0, sizeof *s);
	s->n = m->p.n;
	s->v = calloc((size_t)s->n, sizeof *s->v);
	s->nlogits = logits->numel;
	s->logits = mc_fetch(c, logits->data, logits->numel);
	float *l = mc_fetch(c, loss->data, 1);
	int bad = !s->v || !s->logits || !l;
	s->loss = l ? l[0] : NAN;
	free(l);
	for (int i = 0; !bad && i < s->n; i++) {
		const struct fd_pview *v = &m->p.v[i];
		if (v->kind == FD_P_COUNTER)
			continue;
		s->v[i] = mc_fetch(c, v->kind == FD_P_PARAM ? v->t.grad : v->t.data, v->t.numel);
		bad = !s->v[i];
	}
	if (bad)
		mc_snap_free(s);
	return bad ? -1 : 0;
}

/* Move each element of x[n] one ulp up or down or leave it, at random. */
TAP_UNUSED static void mc_perturb(struct fd_rng *r, float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		uint32_t u = fd_rng_u32(r);
		if (u & 1)
			x[i] = nextafterf(x[i], (u & 2) ? INFINITY : -INFINITY);
	}
}

/* Every parameter of m (host memory) moved by mc_perturb. */
TAP_UNUSED static void mc_perturb_model(struct fd_rng *r, struct fd_model *m)
{
	for (int i = 0; i < m->p.n; i++)
		if (m->p.v[i].kind == FD_P_PARAM)
			mc_perturb(r, m->p.v[i].t.data, m->p.v[i].t.numel);
}

/* The worst share of the tolerance of a[n] against r[n] given the
 * perturbed run p[n] (INFINITY on a NaN or a missing array); *rel: max
 * |a - r| / RMS(r), the plain relative error, for the message. */
TAP_UNUSED static double mc_share(const float *a, const float *r, const float *p, int64_t n, double *rel)
{
	*rel = INFINITY;
	if (!a || !r || !p || n < 1)
		return INFINITY;
	double ss = 0, err = 0, sens = 0;
	int nan = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - r[i]), q = fabs((double)p[i] - r[i]);
		ss += (double)r[i] * r[i];
		nan |= !(d == d) || !(q == q);
		if (d > err)
			err = d;
		if (q > sens)
			sens = q;
	}
	double rms = sqrt(ss / (double)n), tol = MC_RTOL * rms + MC_K * sens;
	*rel = err / (rms > 1e-30 ? rms : 1e-30);
	if (nan || !(rms == rms)) {
		*rel = INFINITY;
		return INFINITY;
	}
	return tol > 0 ? err / tol : (err > 0 ? INFINITY : 0);
}

/* The same for one scalar (a loss). */
TAP_UNUSED static double mc_share1(double a, double r, double p)
{
	double tol = MC_RTOL * fabs(r) + MC_K * fabs(p - r), err = fabs(a - r);
	if (!(err == err) || !(tol == tol))
		return INFINITY;
	return tol > 0 ? err / tol : (err > 0 ? INFINITY : 0);
}

/* The outcome of comparing snapshot a with the reference r (p: the
 * reference's perturbed run) over the views of m. */
struct mc_cmp {
	double logits, loss;        /* shares of tolerance */
	int nbuf, bbad, ngrad, gbad; /* compared, out of tolerance */
	double bworst, gworst;      /* worst shares */
	char bname[256], gname[256];
	int oldbad;                 /* tensors beyond MC_RTOL x RMS alone (the old test) */
	char oldnames[1024];        /* their names, comma separated (cut at the buffer's end) */
};

/* Compare; `what` prefixes the diagnostics (the first five tensors out of
 * tolerance are printed). */
TAP_UNUSED static void mc_compare(struct mc_cmp *o, const char *what, const struct fd_model *m, const struct mc_snap *a,
		       const struct mc_snap *r, const struct mc_snap *p)
{
	double rel;
	memset(o, 0, sizeof *o);
	strcpy(o->bname, "-");
	strcpy(o->gname, "-");
	o->logits = mc_share(a->logits, r->logits, p->logits, r->nlogits, &rel);
	o->loss = mc_share1(a->loss, r->loss, p->loss);
	for (int i = 0; i < m->p.n; i++) {
		const struct fd_pview *v = &m->p.v[i];
		if (v->kind == FD_P_COUNTER)
			continue;
		double sh = mc_share(a->v[i], r->v[i], p->v[i], v->t.numel, &rel);
		int buf = v->kind == FD_P_BUFFER;
		if (!(rel <= MC_RTOL)) {
			size_t l = strlen(o->oldnames);
			if (l + strlen(v->name) + 3 < sizeof o->oldnames)
				snprintf(o->oldnames + l, sizeof o->oldnames - l, "%s%s", l ? "," : "", v->name);
			o->oldbad++;
		}
		if (!(sh <= 1) && (buf ? o->bbad : o->gbad) < 5)
			diag("%s: %s %s: %.3g of tol (max err / RMS %.3g)", what, buf ? "running statistic" : "gradient",
			     v->name, sh, rel);
		if (buf) {
			o->nbuf++;
			o->bbad += !(sh <= 1);
			if (!(sh <= o->bworst))
				o->bworst = sh, snprintf(o->bname, sizeof o->bname, "%s", v->name);
		} else {
			o->ngrad++;
			o->gbad += !(sh <= 1);
			if (!(sh <= o->gworst))
				o->gworst = sh, snprintf(o->gname, sizeof o->gname, "%s", v->name);
		}
	}
}

/* mc_compare's outcome as TAP lines: logits, loss, running statistics
 * (when the model has any), gradients. */
TAP_UNUSED static void mc_report(const char *what, const struct mc_cmp *o)
{
	ok(o->logits <= 1, "%s: logits %.3g of tol", what, o->logits);
	ok(o->loss <= 1, "%s: loss %.3g of tol", what, o->loss);
	if (o->nbuf)
		ok(o->bbad == 0, "%s: %d running statistics, %d out of tolerance, worst %s %.3g of tol", what, o->nbuf,
		   o->bbad, o->bname, o->bworst);
	ok(o->ngrad > 0 && o->gbad == 0, "%s: %d named gradients, %d out of tolerance, worst %s %.3g of tol", what,
	   o->ngrad, o->gbad, o->gname, o->gworst);
}

#endif

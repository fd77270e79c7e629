/* fd_resize: Pillow's separable resampling (fixed point, 8 bits per channel)
 * reimplemented from its documented behaviour, plus square geometries. */
#include "image/fd_resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

static double filter_eval(enum fd_filter f, double x)
{
	if (x < 0.0)
		x = -x;
	switch (f) {
	case FD_FILTER_BICUBIC: {
		const double a = -0.5; /* Pillow's (and Keys') bicubic */
		if (x < 1.0)
			return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
		if (x < 2.0)
			return (((x - 5) * x + 8) * x - 4) * a;
		return 0.0;
	}
	case FD_FILTER_LANCZOS: {
		if (x >= 3.0)
			return 0.0;
		if (x == 0.0)
			return 1.0;
		double px = x * M_PI, px3 = x / 3 * M_PI;
		return sin(px) / px * (sin(px3) / px3);
	}
	default:
		return x < 1.0 ? 1.0 - x : 0.0;
	}
}

static double filter_support(enum fd_filter f)
{
	return f == FD_FILTER_BICUBIC ? 2.0 : f == FD_FILTER_LANCZOS ? 3.0 : 1.0;
}

/* One axis: for each output index, the first input index, the count, and
 * ksize fixed-point weights. Weights are normalised in double so they sum to 1
 * before rounding, which is what makes a flat region stay flat. */
struct axis {
	int ksize;
	int *bounds;  /* 2 per output: first, count */
	int32_t *k;   /* ksize per output */
};

static int axis_init(struct axis *a, int in_size, float in0, float in1, int out_size,
		     enum fd_filter f, struct fd_err *e)
{
	double scale = (double)(in1 - in0) / out_size; /* float difference, as Pillow */
	double fscale = scale < 1.0 ? 1.0 : scale;
	double support = filter_support(f) * fscale;
	int ksize = (int)ceil(support) * 2 + 1;
	a->ksize = ksize;
	a->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
	a->k = malloc(sizeof(int32_t) * (size_t)ksize * (size_t)out_size);
	double *w = malloc(sizeof(double) * (size_t)ksize);
	if (!a->bounds || !a->k || !w) {
		free(w);
		return fd_err_set(e, "out of memory for resampling coefficients");
	}
	for (int xx = 0; xx < out_size; xx++) {
		double center = in0 + (xx + 0.5) * scale;
		double ss = 1.0 / fscale, ww = 0.0;
		int xmin = (int)(center - support + 0.5);
		if (xmin < 0)
			xmin = 0;
		int xmax = (int)(center + support + 0.5);
		if (xmax > in_size)
			xmax = in_size;
		xmax -= xmin;
		for (int x = 0; x < xmax; x++) {
			w[x] = filter_eval(f, (x + xmin - center + 0.5) * ss);
			ww += w[x];
		}
		int32_t *k = a->k + (size_t)xx * ksize;
		for (int x = 0; x < ksize; x++) {
			double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
			v *= (1 << PRECISION_BITS);
			k[x] = (int32_t)(v < 0 ? -0.5 + v : 0.5 + v);
		}
		a->bounds[2 * xx] = xmin;
		a->bounds[2 * xx + 1] = xmax;
	}
	free(w);
	return 0;
}

static void axis_free(struct axis *a)
{
	free(a->bounds);
	free(a->k);
}

static inline uint8_t clip8(int32_t v)
{
	v >>= PRECISION_BITS;
	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows y0..y0+nrows of src (stride sstride) → out rows (stride ostride). */
static void pass_h(const uint8_t *src, size_t sstride, int y0, int nrows, const struct axis *a,
		   int ow, uint8_t *out, size_t ostride)
{
	for (int y = 0; y < nrows; y++) {
		const uint8_t *row = src + (size_t)(y0 + y) * sstride;
		uint8_t *o = out + (size_t)y * ostride;
		for (int xx = 0; xx < ow; xx++) {
			int xmin = a->bounds[2 * xx], xmax = a->bounds[2 * xx + 1];
			const int32_t *k = a->k + (size_t)xx * a->ksize;
			int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
			const uint8_t *p = row + (size_t)xmin * 3;
			for (int x = 0; x < xmax; x++) {
				s0 += p[3 * x] * k[x];
				s1 += p[3 * x + 1] * k[x];
				s2 += p[3 * x + 2] * k[x];
			}
			o[3 * xx] = clip8(s0);
			o[3 * xx + 1] = clip8(s1);
			o[3 * xx + 2] = clip8(s2);
		}
	}
}

/* Vertical pass; a's first-row bounds are relative to src minus yshift. */
static void pass_v(const uint8_t *src, size_t sstride, int yshift, const struct axis *a, int ow,
		   int oh, uint8_t *out, size_t ostride)
{
	size_t rowlen = (size_t)ow * 3;
	for (int yy = 0; yy < oh; yy++) {
		int ymin = a->bounds[2 * yy] - yshift, ymax = a->bounds[2 * yy + 1];
		const int32_t *k = a->k + (size_t)yy * a->ksize;
		uint8_t *o = out + (size_t)yy * ostride;
		for (size_t i = 0; i < rowlen; i++) {
			int32_t s = 1 << (PRECISION_BITS - 1);
			const uint8_t *p = src + (size_t)ymin * sstride + i;
			for (int y = 0; y < ymax; y++)
				s += p[(size_t)y * sstride] * k[y];
			o[i] = clip8(s);
		}
	}
}

int fd_resize_rgb(const uint8_t *src, int w, int h, const float box[4], uint8_t *dst, int ow,
		  int oh, size_t dst_stride, enum fd_filter filter, struct fd_err *e)
{
	if (w <= 0 || h <= 0 || ow <= 0 || oh <= 0)
		return fd_err_set(e, "cannot resize %dx%d to %dx%d", w, h, ow, oh);
	if (!(box[0] >= 0 && box[1] >= 0 && box[2] <= w && box[3] <= h))
		return fd_err_set(e, "resize box (%g, %g, %g, %g) exceeds the %dx%d image",
				  (double)box[0], (double)box[1], (double)box[2], (double)box[3], w, h);
	if (!(box[2] - box[0] > 0 && box[3] - box[1] > 0))
		return fd_err_set(e, "resize box (%g, %g, %g, %g) is empty", (double)box[0],
				  (double)box[1], (double)box[2], (double)box[3]);
	size_t sstride = (size_t)w * 3;
	int need_h = ow != w || box[0] != 0 || box[2] != ow;
	int need_v = oh != h || box[1] != 0 || box[3] != oh;
	if (!need_h && !need_v) {
		for (int y = 0; y < h; y++)
			memcpy(dst + (size_t)y * dst_stride, src + (size_t)y * sstride, sstride);
		return 0;
	}
	struct axis ah = {0}, av = {0};
	int rc = -1;
	uint8_t *tmp = NULL;
	if (axis_init(&ah, w, box[0], box[2], ow, filter, e) != 0 ||
	    axis_init(&av, h, box[1], box[3], oh, filter, e) != 0)
		goto out;
	if (need_h && !need_v) {
		pass_h(src, sstride, 0, h, &ah, ow, dst, dst_stride);
	} else if (!need_h) {
		pass_v(src, sstride, 0, &av, ow, oh, dst, dst_stride);
	} else {
		int yfirst = av.bounds[0];
		int ylast = av.bounds[2 * oh - 2] + av.bounds[2 * oh - 1];
		tmp = malloc((size_t)ow * 3 * (size_t)(ylast - yfirst));
		if (!tmp) {
			fd_err_set(e, "out of memory for a resize buffer");
			goto out;
		}
		pass_h(src, sstride, yfirst, ylast - yfirst, &ah, ow, tmp, (size_t)ow * 3);
		pass_v(tmp, (size_t)ow * 3, yfirst, &av, ow, oh, dst, dst_stride);
	}
	rc = 0;
out:
	free(tmp);
	axis_free(&ah);
	axis_free(&av);
	return rc;
}

static const char *geom_names[] = {"center", "letterbox", "resize", "face"};

const char *fd_geometry_name(enum fd_geometry g)
{
	return (unsigned)g < 4 ? geom_names[g] : "unknown";
}

int fd_geometry_parse(const char *s, enum fd_geometry *g)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, geom_names[i]) == 0) {
			*g = (enum fd_geometry)i;
			return 0;
		}
	return -1;
}

/* Python's round(d / 2.0) for an integer d >= 0: halves go to even. */
static int half_round_even(int d)
{
	int l = d / 2;
	return (d & 1) && (l & 1) ? l + 1 : l;
}

void fd_geom_center_box(int w, int h, float box[4])
{
	int m = w < h ? w : h;
	int l = half_round_even(w - m), t = half_round_even(h - m);
	box[0] = (float)l;
	box[1] = (float)t;
	box[2] = (float)(l + m);
	box[3] = (float)(t + m);
}

void fd_geom_letterbox(int w, int h, int S, int *nw, int *nh, int *ox, int *oy)
{
	int64_t a, b;
	if (w >= h) {
		*nw = S;
		b = ((int64_t)2 * h * S + w) / (2 * (int64_t)w);
		*nh = b < 1 ? 1 : (int)b;
	} else {
		*nh = S;
		a = ((int64_t)2 * w * S + h) / (2 * (int64_t)h);
		*nw = a < 1 ? 1 : (int)a;
	}
	*ox = (S - *nw) / 2;
	*oy = (S - *nh) / 2;
}

int fd_geom_face_box(int w, int h, double x1, double y1, double x2, double y2, double margin,
		     float box[4])
{
	double bw = x2 - x1, bh = y2 - y1;
	if (!isfinite(bw) || !isfinite(bh) || !(bw > 0) || !(bh > 0) || !(margin >= 0) ||
	    !isfinite(margin))
		return -1;
	double side = (bw > bh ? bw : bh) * (1 + 2 * margin);
	double lim = w < h ? w : h;
	if (side > lim)
		side = lim;
	double x0 = (x1 + x2) / 2 - side / 2, y0 = (y1 + y2) / 2 - side / 2;
	if (x0 > w - side)
		x0 = w - side;
	if (x0 < 0)
		x0 = 0;
	if (y0 > h - side)
		y0 = h - side;
	if (y0 < 0)
		y0 = 0;
	box[0] = (float)x0;
	box[1] = (float)y0;
	box[2] = (float)(x0 + side);
	box[3] = (float)(y0 + side);
	/* float rounding may push the far edge a hair past the image */
	if (box[2] > w)
		box[2] = (float)w;
	if (box[3] > h)
		box[3] = (float)h;
	return 0;
}

int fd_geom_square(const uint8_t *src, int w, int h, enum fd_geometry g, int S,
		   const float face_box[4], const uint8_t fill[3], uint8_t *dst, struct fd_err *e)
{
	float box[4] = {0, 0, (float)w, (float)h};
	size_t stride = (size_t)S * 3;
	switch (g) {
	case FD_GEOM_CENTER:
		fd_geom_center_box(w, h, box);
		break;
	case FD_GEOM_FACE:
		if (!face_box)
			return fd_err_set(e, "face geometry without a face box");
		memcpy(box, face_box, sizeof box);
		break;
	case FD_GEOM_LETTERBOX: {
		int nw, nh, ox, oy;
		fd_geom_letterbox(w, h, S, &nw, &nh, &ox, &oy);
		static const uint8_t black[3] = {0, 0, 0};
		const uint8_t *c = fill ? fill : black;
		for (size_t i = 0; i < (size_t)S * S; i++)
			memcpy(dst + 3 * i, c, 3);
		return fd_resize_rgb(src, w, h, box, dst + (size_t)oy * stride + (size_t)ox * 3, nw,
				     nh, stride, FD_FILTER_BILINEAR, e);
	}
	case FD_GEOM_RESIZE:
		break;
	default:
		return fd_err_set(e, "unknown geometry %d", (int)g);
	}
	return fd_resize_rgb(src, w, h, box, dst, S, S, stride, FD_FILTER_BILINEAR, e);
}

/* fd_resize: Pillow's separable resampling (fixed point, 8 bits per channel)
 * reimplemented from its documented behaviour, plus square geometries. */
#include "image/fd_resize.h"
#include "core/fd_vec.h"

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
 * before rounding, which is what makes a flat region stay flat. The key fields
 * let a context reuse the table when the next image has the same geometry. */
struct axis {
	int in_size, out_size;
	float in0, in1;
	enum fd_filter f;
	int valid;
	int ksize;
	size_t cap_out, cap_k; /* allocated outputs, weights */
	int *bounds;  /* 2 per output: first, count */
	int32_t *k;   /* ksize per output */
};

struct fd_resize_ctx {
	struct axis h, v;
	uint8_t *tmp;     /* horizontal pass output */
	size_t tmp_cap;
	uint8_t *lastrow; /* the source's last row, padded by one byte */
	size_t lastrow_cap;
};

static int axis_init(struct axis *a, int in_size, float in0, float in1, int out_size,
		     enum fd_filter f, struct fd_err *e)
{
	if (a->valid && a->in_size == in_size && a->in0 == in0 && a->in1 == in1 &&
	    a->out_size == out_size && a->f == f)
		return 0;
	a->valid = 0;
	double scale = (double)(in1 - in0) / out_size; /* float difference, as Pillow */
	double fscale = scale < 1.0 ? 1.0 : scale;
	double support = filter_support(f) * fscale;
	int ksize = (int)ceil(support) * 2 + 1;
	size_t nk = (size_t)ksize * (size_t)out_size;
	if ((size_t)out_size > a->cap_out) {
		int *b = realloc(a->bounds, sizeof(int) * 2 * (size_t)out_size);
		if (!b)
			return fd_err_set(e, "out of memory for resampling coefficients");
		a->bounds = b;
		a->cap_out = (size_t)out_size;
	}
	if (nk > a->cap_k) {
		int32_t *k = realloc(a->k, sizeof(int32_t) * nk);
		if (!k)
			return fd_err_set(e, "out of memory for resampling coefficients");
		a->k = k;
		a->cap_k = nk;
	}
	double *w = malloc(sizeof(double) * (size_t)ksize);
	if (!w)
		return fd_err_set(e, "out of memory for resampling coefficients");
	a->ksize = ksize;
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
	a->in_size = in_size;
	a->in0 = in0;
	a->in1 = in1;
	a->out_size = out_size;
	a->f = f;
	a->valid = 1;
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

/* The passes are plain integer C written so compilers vectorise them (4-lane
 * pixels, fixed-width column blocks); integer sums do not depend on order, so
 * any vector width gives Pillow's result bit for bit. x86-64 builds get an AVX2
 * clone chosen at load time (the baseline SSE2 has no 32-bit multiply). */

typedef int32_t v4i __attribute__((vector_size(16)));

/* Rows y0..y0+nrows of src (stride sstride) → out rows (stride ostride). Each
 * tap loads 4 bytes (the pixel and the next pixel's first byte, whose lane is
 * dropped); the image's last row, row h - 1, is read from lastrow instead, a
 * copy with one byte of padding, so that load never leaves the caller's memory. */
FD_VEC_CLONES
static void pass_h(const uint8_t *src, size_t sstride, int h, const uint8_t *lastrow, int y0,
		   int nrows, const struct axis *a, int ow, uint8_t *out, size_t ostride)
{
	for (int y = 0; y < nrows; y++) {
		const uint8_t *row = y0 + y == h - 1 ? lastrow : src + (size_t)(y0 + y) * sstride;
		uint8_t *o = out + (size_t)y * ostride;
		for (int xx = 0; xx < ow; xx++) {
			int xmin = a->bounds[2 * xx], xmax = a->bounds[2 * xx + 1];
			const int32_t *k = a->k + (size_t)xx * a->ksize;
			const int32_t half = 1 << (PRECISION_BITS - 1);
			v4i s = {half, half, half, half};
			const uint8_t *p = row + (size_t)xmin * 3;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
			const v4i shift = {24, 16, 8, 0}, lo = {255, 255, 255, 255};
#else
			const v4i shift = {0, 8, 16, 24}, lo = {255, 255, 255, 255};
#endif
			for (int x = 0; x < xmax; x++) {
				uint32_t u; /* lane c holds byte c (shift follows endianness) */
				memcpy(&u, p + 3 * x, 4);
				v4i b = {(int32_t)u, (int32_t)u, (int32_t)u, (int32_t)u};
				s += ((b >> shift) & lo) * k[x];
			}
			s >>= PRECISION_BITS; /* clip8 on all lanes, branch-free */
			s &= ~(s >> 31);
			s |= (255 - s) >> 31;
			o[3 * xx] = (uint8_t)s[0];
			o[3 * xx + 1] = (uint8_t)s[1];
			o[3 * xx + 2] = (uint8_t)s[2];
		}
	}
}

enum { VBLOCK = 32 };

/* Vertical pass; a's first-row bounds are relative to src minus yshift. */
FD_VEC_CLONES
static void pass_v(const uint8_t *src, size_t sstride, int yshift, const struct axis *a, int ow,
		   int oh, uint8_t *out, size_t ostride)
{
	size_t rowlen = (size_t)ow * 3;
	const int32_t half = 1 << (PRECISION_BITS - 1);
	for (int yy = 0; yy < oh; yy++) {
		int ymin = a->bounds[2 * yy] - yshift, ymax = a->bounds[2 * yy + 1];
		const int32_t *k = a->k + (size_t)yy * a->ksize;
		const uint8_t *p0 = src + (size_t)ymin * sstride;
		uint8_t *o = out + (size_t)yy * ostride;
		size_t i = 0;
		for (; i + VBLOCK <= rowlen; i += VBLOCK) {
			int32_t s[VBLOCK];
			for (int j = 0; j < VBLOCK; j++)
				s[j] = half;
			for (int y = 0; y < ymax; y++) {
				const uint8_t *p = p0 + (size_t)y * sstride + i;
				int32_t ky = k[y];
				for (int j = 0; j < VBLOCK; j++)
					s[j] += p[j] * ky;
			}
			for (int j = 0; j < VBLOCK; j++)
				o[i + j] = clip8(s[j]);
		}
		for (; i < rowlen; i++) {
			int32_t s = half;
			for (int y = 0; y < ymax; y++)
				s += p0[(size_t)y * sstride + i] * k[y];
			o[i] = clip8(s);
		}
	}
}

/* Grow *buf to at least n bytes. */
static int reserve(uint8_t **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return 0;
	uint8_t *b = realloc(*buf, n);
	if (!b)
		return -1;
	*buf = b;
	*cap = n;
	return 0;
}

int fd_resize_ctx_alloc(struct fd_resize_ctx **ctx, struct fd_err *e)
{
	*ctx = calloc(1, sizeof **ctx);
	return *ctx ? 0 : fd_err_set(e, "out of memory for a resize context");
}

void fd_resize_ctx_free(struct fd_resize_ctx *ctx)
{
	if (!ctx)
		return;
	axis_free(&ctx->h);
	axis_free(&ctx->v);
	free(ctx->tmp);
	free(ctx->lastrow);
	free(ctx);
}

static int resize_with(struct fd_resize_ctx *c, const uint8_t *src, int w, int h,
		       const float box[4], uint8_t *dst, int ow, int oh, size_t dst_stride,
		       enum fd_filter filter, struct fd_err *e)
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
	if (axis_init(&c->h, w, box[0], box[2], ow, filter, e) != 0 ||
	    axis_init(&c->v, h, box[1], box[3], oh, filter, e) != 0)
		return -1;
	if (need_h) {
		if (reserve(&c->lastrow, &c->lastrow_cap, sstride + 1) != 0)
			return fd_err_set(e, "out of memory for a resize buffer");
		memcpy(c->lastrow, src + (size_t)(h - 1) * sstride, sstride);
		c->lastrow[sstride] = 0;
	}
	if (need_h && !need_v) {
		pass_h(src, sstride, h, c->lastrow, 0, h, &c->h, ow, dst, dst_stride);
	} else if (!need_h) {
		pass_v(src, sstride, 0, &c->v, ow, oh, dst, dst_stride);
	} else {
		int yfirst = c->v.bounds[0];
		int ylast = c->v.bounds[2 * oh - 2] + c->v.bounds[2 * oh - 1];
		if (reserve(&c->tmp, &c->tmp_cap, (size_t)ow * 3 * (size_t)(ylast - yfirst)) != 0)
			return fd_err_set(e, "out of memory for a resize buffer");
		pass_h(src, sstride, h, c->lastrow, yfirst, ylast - yfirst, &c->h, ow, c->tmp,
		       (size_t)ow * 3);
		pass_v(c->tmp, (size_t)ow * 3, yfirst, &c->v, ow, oh, dst, dst_stride);
	}
	return 0;
}

int fd_resize_rgb_ctx(struct fd_resize_ctx *ctx, const uint8_t *src, int w, int h,
		      const float box[4], uint8_t *dst, int ow, int oh, size_t dst_stride,
		      enum fd_filter filter, struct fd_err *e)
{
	if (ctx)
		return resize_with(ctx, src, w, h, box, dst, ow, oh, dst_stride, filter, e);
	struct fd_resize_ctx c;
	memset(&c, 0, sizeof c);
	int rc = resize_with(&c, src, w, h, box, dst, ow, oh, dst_stride, filter, e);
	axis_free(&c.h);
	axis_free(&c.v);
	free(c.tmp);
	free(c.lastrow);
	return rc;
}

int fd_resize_rgb(const uint8_t *src, int w, int h, const float box[4], uint8_t *dst, int ow,
		  int oh, size_t dst_stride, enum fd_filter filter, struct fd_err *e)
{
	return fd_resize_rgb_ctx(NULL, src, w, h, box, dst, ow, oh, dst_stride, filter, e);
}

static const char *geom_names[] = {"center", "letterbox", "resize", "face", "matched"};
#define NGEOM (int)(sizeof geom_names / sizeof geom_names[0])

const char *fd_geometry_name(enum fd_geometry g)
{
	return (unsigned)g < (unsigned)NGEOM ? geom_names[g] : "unknown";
}

int fd_geometry_parse(const char *s, enum fd_geometry *g)
{
	for (int i = 0; i < NGEOM; i++)
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

void fd_geom_aspect_box(int w, int h, int aw, int ah, float box[4])
{
	int64_t cw = w, ch = h;
	if ((int64_t)w * ah > (int64_t)h * aw)
		cw = ((int64_t)2 * h * aw + ah) / (2 * (int64_t)ah);
	else
		ch = ((int64_t)2 * w * ah + aw) / (2 * (int64_t)aw);
	cw = cw < 1 ? 1 : cw > w ? w : cw;
	ch = ch < 1 ? 1 : ch > h ? h : ch;
	int64_t l = (w - cw) / 2, t = (h - ch) / 2;
	box[0] = (float)l;
	box[1] = (float)t;
	box[2] = (float)(l + cw);
	box[3] = (float)(t + ch);
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
		   const float box[4], const uint8_t fill[3], uint8_t *dst, struct fd_err *e)
{
	return fd_geom_square_ctx(NULL, src, w, h, g, S, box, fill, dst, e);
}

int fd_geom_square_ctx(struct fd_resize_ctx *ctx, const uint8_t *src, int w, int h,
		       enum fd_geometry g, int S, const float region[4], const uint8_t fill[3],
		       uint8_t *dst, struct fd_err *e)
{
	float box[4] = {0, 0, (float)w, (float)h};
	size_t stride = (size_t)S * 3;
	switch (g) {
	case FD_GEOM_CENTER:
		fd_geom_center_box(w, h, box);
		break;
	case FD_GEOM_FACE:
		if (!region)
			return fd_err_set(e, "face geometry without a face box");
		memcpy(box, region, sizeof box);
		break;
	case FD_GEOM_LETTERBOX:
	case FD_GEOM_MATCHED: {
		/* matched letterboxes the given region (whole pixels) like an image */
		if (g == FD_GEOM_MATCHED && region)
			memcpy(box, region, sizeof box);
		int nw, nh, ox, oy;
		fd_geom_letterbox((int)(box[2] - box[0]), (int)(box[3] - box[1]), S, &nw, &nh, &ox, &oy);
		static const uint8_t black[3] = {0, 0, 0};
		const uint8_t *c = fill ? fill : black;
		for (size_t i = 0; i < (size_t)S * S; i++)
			memcpy(dst + 3 * i, c, 3);
		return fd_resize_rgb_ctx(ctx, src, w, h, box,
					 dst + (size_t)oy * stride + (size_t)ox * 3, nw, nh, stride,
					 FD_FILTER_BILINEAR, e);
	}
	case FD_GEOM_RESIZE:
		break;
	default:
		return fd_err_set(e, "unknown geometry %d", (int)g);
	}
	return fd_resize_rgb_ctx(ctx, src, w, h, box, dst, S, S, stride, FD_FILTER_BILINEAR, e);
}

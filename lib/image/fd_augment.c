/* fd_augment: torchvision-on-PIL augmentations of 8-bit RGB images, re-created
 * from Pillow 9.4's and torchvision 0.14's definitions, with Philox-drawn
 * parameters. */
#include "image/fd_augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fd_rng.h"
#include "image/fd_resize.h"
#include "io/fd_image.h"

void fd_aug_cfg_default(struct fd_aug_cfg *a)
{
	memset(a, 0, sizeof *a);
	a->rrc_scale[0] = 0.08;
	a->rrc_scale[1] = 1.0;
	a->rrc_ratio[0] = 3.0 / 4.0;
	a->rrc_ratio[1] = 4.0 / 3.0;
	a->blur_ksize = 3;
	a->blur_sigma[0] = 0.1;
	a->blur_sigma[1] = 2.0;
	a->jpeg_quality[0] = 70;
	a->jpeg_quality[1] = 95;
}

int fd_aug_cfg_any(const struct fd_aug_cfg *a)
{
	return a->hflip_p > 0 || a->rrc_p > 0 || a->rot_p > 0 || a->cj_p > 0 || a->blur_p > 0 ||
	       a->jpeg_p > 0;
}

/* Read an optional number; range-checked by the caller. */
static int opt_num(const struct fd_config *c, const char *key, double *v, struct fd_err *e)
{
	return fd_config_has(c, key) ? fd_config_get_double(c, key, v, e) : 0;
}

static int bad(struct fd_err *e, const char *key, const char *want, double v)
{
	return fd_err_set(e, "config: '%s' must be %s, not %.17g", key, want, v);
}

int fd_aug_cfg_from_config(struct fd_aug_cfg *a, const struct fd_config *c, struct fd_err *e)
{
	fd_aug_cfg_default(a);
	static const char *pk[] = {"augment.hflip.p", "augment.random_resized_crop.p",
				   "augment.rotation.p", "augment.color_jitter.p",
				   "augment.gaussian_blur.p", "augment.jpeg.p"};
	double *pv[] = {&a->hflip_p, &a->rrc_p, &a->rot_p, &a->cj_p, &a->blur_p, &a->jpeg_p};
	for (int i = 0; i < 6; i++) {
		if (opt_num(c, pk[i], pv[i], e) < 0)
			return -1;
		if (!(*pv[i] >= 0 && *pv[i] <= 1))
			return bad(e, pk[i], "in [0, 1]", *pv[i]);
	}
	if (fd_config_has(c, "augment.random_resized_crop.scale") &&
	    fd_config_get_doubles(c, "augment.random_resized_crop.scale", a->rrc_scale, 2, e) < 0)
		return -1;
	if (!(a->rrc_scale[0] > 0 && a->rrc_scale[0] <= a->rrc_scale[1] && a->rrc_scale[1] <= 1))
		return fd_err_set(e, "config: 'augment.random_resized_crop.scale' must be [lo, hi] with "
				     "0 < lo <= hi <= 1");
	if (fd_config_has(c, "augment.random_resized_crop.ratio") &&
	    fd_config_get_doubles(c, "augment.random_resized_crop.ratio", a->rrc_ratio, 2, e) < 0)
		return -1;
	if (!(a->rrc_ratio[0] > 0 && a->rrc_ratio[0] <= a->rrc_ratio[1] && isfinite(a->rrc_ratio[1])))
		return fd_err_set(e, "config: 'augment.random_resized_crop.ratio' must be [lo, hi] with "
				     "0 < lo <= hi");
	if (opt_num(c, "augment.rotation.degrees", &a->rot_degrees, e) < 0)
		return -1;
	if (!(a->rot_degrees >= 0 && a->rot_degrees <= 360))
		return bad(e, "augment.rotation.degrees", "in [0, 360]", a->rot_degrees);
	static const char *jk[] = {"augment.color_jitter.brightness", "augment.color_jitter.contrast",
				   "augment.color_jitter.saturation", "augment.color_jitter.hue"};
	double *jv[] = {&a->cj_brightness, &a->cj_contrast, &a->cj_saturation, &a->cj_hue};
	for (int i = 0; i < 4; i++) {
		if (opt_num(c, jk[i], jv[i], e) < 0)
			return -1;
		double hi = i == 3 ? 0.5 : 1e6;
		if (!(*jv[i] >= 0 && *jv[i] <= hi))
			return bad(e, jk[i], i == 3 ? "in [0, 0.5]" : "a number >= 0", *jv[i]);
	}
	if (fd_config_has(c, "augment.gaussian_blur.kernel_size")) {
		int64_t k;
		if (fd_config_get_int(c, "augment.gaussian_blur.kernel_size", &k, e) < 0)
			return -1;
		if (k <= 0 || k % 2 == 0 || k > 1001)
			return bad(e, "augment.gaussian_blur.kernel_size", "odd, between 1 and 1001",
				   (double)k);
		a->blur_ksize = (int)k;
	}
	if (fd_config_has(c, "augment.gaussian_blur.sigma") &&
	    fd_config_get_doubles(c, "augment.gaussian_blur.sigma", a->blur_sigma, 2, e) < 0)
		return -1;
	if (!(a->blur_sigma[0] > 0 && a->blur_sigma[0] <= a->blur_sigma[1] && isfinite(a->blur_sigma[1])))
		return fd_err_set(e, "config: 'augment.gaussian_blur.sigma' must be [lo, hi] with 0 < lo <= hi");
	if (fd_config_has(c, "augment.jpeg.quality")) {
		double q[2];
		if (fd_config_get_doubles(c, "augment.jpeg.quality", q, 2, e) < 0)
			return -1;
		if (!(q[0] >= 1 && q[0] <= q[1] && q[1] <= 100))
			return fd_err_set(e, "config: 'augment.jpeg.quality' must be [lo, hi] with "
					     "1 <= lo <= hi <= 100");
		a->jpeg_quality[0] = (int)q[0];
		a->jpeg_quality[1] = (int)q[1];
	}
	return 0;
}

/* ---- deterministic transforms ---- */

void fd_aug_hflip(uint8_t *img, int w, int h)
{
	for (int y = 0; y < h; y++) {
		uint8_t *r = img + (size_t)y * w * 3;
		for (int a = 0, b = w - 1; a < b; a++, b--)
			for (int k = 0; k < 3; k++) {
				uint8_t t = r[a * 3 + k];
				r[a * 3 + k] = r[b * 3 + k];
				r[b * 3 + k] = t;
			}
	}
}

int fd_aug_resized_crop(const uint8_t *src, int w, int h, int top, int left, int ch, int cw,
			uint8_t *crop, uint8_t *dst, int ow, int oh, struct fd_err *e)
{
	if (top < 0 || left < 0 || ch <= 0 || cw <= 0 || top + ch > h || left + cw > w)
		return fd_err_set(e, "crop %dx%d at (%d, %d) outside the %dx%d image", cw, ch, left, top,
				  w, h);
	for (int y = 0; y < ch; y++)
		memcpy(crop + (size_t)y * cw * 3, src + ((size_t)(top + y) * w + left) * 3, (size_t)cw * 3);
	const float box[4] = {0, 0, (float)cw, (float)ch};
	return fd_resize_rgb(crop, cw, ch, box, dst, ow, oh, (size_t)ow * 3, FD_FILTER_BILINEAR, e);
}

/* Python's round(x, 15): correctly rounded to 15 decimals (glibc's printf is
 * exact, like CPython's dtoa), read back. */
static double round15(double x)
{
	char b[64];
	snprintf(b, sizeof b, "%.15f", x);
	return strtod(b, NULL);
}

static void rot180(const uint8_t *src, int w, int h, uint8_t *dst)
{
	size_t n = (size_t)w * h;
	for (size_t i = 0; i < n; i++)
		memcpy(dst + (n - 1 - i) * 3, src + i * 3, 3);
}

/* Image.transpose(ROTATE_90) (counter-clockwise) or ROTATE_270 of a square. */
static void rot90(const uint8_t *src, int s, int ccw, uint8_t *dst)
{
	for (int y = 0; y < s; y++)
		for (int x = 0; x < s; x++) {
			int sx = ccw ? s - 1 - y : y, sy = ccw ? x : s - 1 - x;
			memcpy(dst + ((size_t)y * s + x) * 3, src + ((size_t)sy * s + sx) * 3, 3);
		}
}

void fd_aug_rotate(const uint8_t *src, int w, int h, double angle, uint8_t *dst)
{
	/* Image.rotate: angle % 360 (Python's modulo), fast paths for exact quarter turns. */
	double m = fmod(angle, 360.0);
	if (m != 0 && m < 0)
		m += 360.0;
	if (m == 0) {
		memcpy(dst, src, (size_t)w * h * 3);
		return;
	}
	if (m == 180) {
		rot180(src, w, h, dst);
		return;
	}
	if ((m == 90 || m == 270) && w == h) {
		rot90(src, w, m == 90, dst);
		return;
	}
	double t = -(m * (M_PI / 180.0));
	double a0 = round15(cos(t)), a1 = round15(sin(t)), a3 = round15(-sin(t)), a4 = round15(cos(t));
	double cx = w / 2.0, cy = h / 2.0;
	double a2 = a0 * -cx + a1 * -cy + 0.0, a5 = a3 * -cx + a4 * -cy + 0.0;
	a2 += cx;
	a5 += cy;
	memset(dst, 0, (size_t)w * h * 3);
	/* ImagingTransformAffine, nearest: sample at pixel centres. Pillow steps
	 * through the output in 16.16 fixed point whenever the four corners map
	 * inside +-32768 (always, for images below 16k pixels), else in double;
	 * coordinates advance by repeated addition in both, as here. */
	int fixed = 1;
	for (int k = 0; k < 4; k++) {
		double x = (k & 1) ? w : 0, y = (k & 2) ? h : 0;
		fixed &= fabs(x * a0 + y * a1 + a2) < 32768.0 && fabs(x * a3 + y * a4 + a5) < 32768.0;
	}
	if (fixed) {
		int32_t f0 = (int32_t)floor(a0 * 65536.0 + 0.5), f1 = (int32_t)floor(a1 * 65536.0 + 0.5);
		int32_t f3 = (int32_t)floor(a3 * 65536.0 + 0.5), f4 = (int32_t)floor(a4 * 65536.0 + 0.5);
		int32_t rx = (int32_t)floor((a2 + a0 * 0.5 + a1 * 0.5) * 65536.0 + 0.5);
		int32_t ry = (int32_t)floor((a5 + a3 * 0.5 + a4 * 0.5) * 65536.0 + 0.5);
		for (int y = 0; y < h; y++, rx += f1, ry += f4) {
			int32_t xx = rx, yy = ry;
			uint8_t *out = dst + (size_t)y * w * 3;
			for (int x = 0; x < w; x++, out += 3, xx += f0, yy += f3) {
				int xin = (int)(xx >> 16), yin = (int)(yy >> 16); /* arithmetic: floor */
				if (xin >= 0 && xin < w && yin >= 0 && yin < h)
					memcpy(out, src + ((size_t)yin * w + xin) * 3, 3);
			}
		}
		return;
	}
	double xo = a2 + a1 * 0.5 + a0 * 0.5, yo = a5 + a4 * 0.5 + a3 * 0.5;
	for (int y = 0; y < h; y++) {
		double xx = xo, yy = yo;
		uint8_t *out = dst + (size_t)y * w * 3;
		for (int x = 0; x < w; x++, out += 3) {
			int xin = xx < 0.0 ? -1 : (int)xx;
			if (xin >= 0 && xin < w) {
				int yin = yy < 0.0 ? -1 : (int)yy;
				if (yin >= 0 && yin < h)
					memcpy(out, src + ((size_t)yin * w + xin) * 3, 3);
			}
			xx += a0;
			yy += a3;
		}
		xo += a1;
		yo += a4;
	}
}

/* ImagingBlend(im1, im2, alpha): im1 + alpha * (im2 - im1) in float, truncated;
 * clipped only when extrapolating (alpha outside [0, 1]). */
static inline uint8_t blend(int in1, int in2, float alpha)
{
	float v = (float)in1 + alpha * (float)(in2 - in1);
	if (alpha >= 0 && alpha <= 1.0f)
		return (uint8_t)v;
	if (v <= 0.0f)
		return 0;
	if (v >= 255.0f)
		return 255;
	return (uint8_t)v;
}

/* Pillow's RGB -> L (rgb2l). */
static inline int luma(const uint8_t *p)
{
	return (int)(((unsigned)p[0] * 19595u + (unsigned)p[1] * 38470u + (unsigned)p[2] * 7471u +
		      0x8000u) >> 16);
}

void fd_aug_brightness(uint8_t *img, size_t n, double factor)
{
	float a = (float)factor;
	for (size_t i = 0; i < n * 3; i++)
		img[i] = blend(0, img[i], a);
}

void fd_aug_contrast(uint8_t *img, size_t n, double factor)
{
	if (n == 0)
		return;
	/* ImageStat mean of the L image, int(mean + 0.5). */
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (uint64_t)luma(img + i * 3);
	int mean = (int)((double)sum / (double)n + 0.5);
	float a = (float)factor;
	for (size_t i = 0; i < n * 3; i++)
		img[i] = blend(mean, img[i], a);
}

void fd_aug_saturation(uint8_t *img, size_t n, double factor)
{
	float a = (float)factor;
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = img + i * 3;
		int l = luma(p);
		for (int k = 0; k < 3; k++)
			p[k] = blend(l, p[k], a);
	}
}

static inline uint8_t clip8(int v)
{
	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void fd_aug_rgb2hsv(const uint8_t in[3], uint8_t out[3])
{
	/* Pillow's rgb2hsv_row (after colorsys): float and double mixed as there. */
	int r = in[0], g = in[1], b = in[2];
	int maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
	int minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
	if (minc == maxc) {
		out[0] = 0;
		out[1] = 0;
		out[2] = (uint8_t)maxc;
		return;
	}
	float cr = (float)(maxc - minc);
	float s = cr / (float)maxc;
	float rc = (float)(maxc - r) / cr, gc = (float)(maxc - g) / cr, bc = (float)(maxc - b) / cr;
	float h;
	if (r == maxc)
		h = bc - gc;
	else if (g == maxc)
		h = (float)(2.0 + rc - bc);
	else
		h = (float)(4.0 + gc - rc);
	h = (float)fmod(h / 6.0 + 1.0, 1.0);
	out[0] = clip8((int)(h * 255.0));
	out[1] = clip8((int)(s * 255.0));
	out[2] = (uint8_t)maxc;
}

void fd_aug_hsv2rgb(const uint8_t in[3], uint8_t out[3])
{
	/* Pillow's hsv2rgb. */
	int h = in[0], s = in[1], v = in[2];
	if (s == 0) {
		out[0] = out[1] = out[2] = (uint8_t)v;
		return;
	}
	int i = (int)floor((float)h * 6.0 / 255.0);
	float f = (float)((float)h * 6.0 / 255.0 - (float)i);
	float fs = f * s;
	int p = (int)round((float)v * (255.0 - s) / 255.0);
	int q = (int)round((float)v * (255.0 - fs) / 255.0);
	int t = (int)round((float)v * (255.0 - s + fs) / 255.0);
	uint8_t up = clip8(p), uq = clip8(q), ut = clip8(t), uv = (uint8_t)v;
	switch (i % 6) {
	case 0: out[0] = uv; out[1] = ut; out[2] = up; break;
	case 1: out[0] = uq; out[1] = uv; out[2] = up; break;
	case 2: out[0] = up; out[1] = uv; out[2] = ut; break;
	case 3: out[0] = up; out[1] = uq; out[2] = uv; break;
	case 4: out[0] = ut; out[1] = up; out[2] = uv; break;
	default: out[0] = uv; out[1] = up; out[2] = uq; break;
	}
}

void fd_aug_hue(uint8_t *img, size_t n, double hue)
{
	/* np.uint8(hue * 255): truncation toward zero, then modulo 256. */
	uint8_t shift = (uint8_t)(int)(hue * 255.0);
	for (size_t i = 0; i < n; i++) {
		uint8_t hsv[3];
		fd_aug_rgb2hsv(img + i * 3, hsv);
		hsv[0] = (uint8_t)(hsv[0] + shift);
		fd_aug_hsv2rgb(hsv, img + i * 3);
	}
}

static inline int reflect(int i, int n)
{
	return i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;
}

void fd_aug_gaussian_blur(const uint8_t *src, int w, int h, int ksize, double sigma, float *tmp,
			  uint8_t *dst)
{
	/* torchvision _get_gaussian_kernel1d in float32. */
	enum { KMAX = 1001 };
	float k[KMAX];
	int half = ksize / 2;
	float sum = 0, sg = (float)sigma;
	for (int i = 0; i < ksize; i++) {
		float x = (float)(i - half) / sg;
		k[i] = expf(-0.5f * (x * x));
		sum += k[i];
	}
	for (int i = 0; i < ksize; i++)
		k[i] /= sum;
	for (int y = 0; y < h; y++) {
		const uint8_t *r = src + (size_t)y * w * 3;
		float *o = tmp + (size_t)y * w * 3;
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++) {
				float acc = 0;
				for (int j = 0; j < ksize; j++)
					acc += k[j] * (float)r[reflect(x + j - half, w) * 3 + c];
				o[x * 3 + c] = acc;
			}
	}
	for (int y = 0; y < h; y++) {
		uint8_t *o = dst + (size_t)y * w * 3;
		for (int x = 0; x < w * 3; x++) {
			float acc = 0;
			for (int i = 0; i < ksize; i++)
				acc += k[i] * tmp[(size_t)reflect(y + i - half, h) * w * 3 + x];
			float v = nearbyintf(acc);
			o[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		}
	}
}

int fd_aug_jpeg(uint8_t *img, int w, int h, int quality, struct fd_err *e)
{
	struct fd_image in = {w, h, img, 1}, out = {0};
	uint8_t *buf = NULL;
	size_t n = 0;
	if (fd_image_encode_jpeg(&in, quality, &buf, &n, e) < 0)
		return -1;
	int rc = fd_image_decode_mem(buf, n, NULL, &out, e);
	free(buf);
	if (rc < 0)
		return -1;
	if (out.w != w || out.h != h) {
		fd_image_free(&out);
		return fd_err_set(e, "jpeg round trip changed the size");
	}
	memcpy(img, out.px, (size_t)w * h * 3);
	fd_image_free(&out);
	return 0;
}

/* ---- random parameters ---- */

uint64_t fd_aug_stream(uint64_t epoch, uint64_t row, unsigned t)
{
	return (1ull << 63) | ((epoch & ((1ull << 23) - 1)) << 40) | ((row & ((1ull << 37) - 1)) << 3) |
	       (t & 7u);
}

static double unif(struct fd_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * fd_rng_uniform(r);
}

void fd_aug_rrc_params(struct fd_rng *r, int w, int h, const double scale[2], const double ratio[2],
		       int out[4])
{
	double area = (double)w * h, lr0 = log(ratio[0]), lr1 = log(ratio[1]);
	for (int k = 0; k < 10; k++) {
		double ta = area * unif(r, scale[0], scale[1]);
		double ar = exp(unif(r, lr0, lr1));
		int cw = (int)rint(sqrt(ta * ar)), ch = (int)rint(sqrt(ta / ar));
		if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
			out[0] = (int)fd_rng_below(r, (uint64_t)(h - ch + 1));
			out[1] = (int)fd_rng_below(r, (uint64_t)(w - cw + 1));
			out[2] = ch;
			out[3] = cw;
			return;
		}
	}
	double in_ratio = (double)w / h;
	int cw = w, ch = h;
	if (in_ratio < ratio[0]) {
		ch = (int)rint(cw / ratio[0]);
	} else if (in_ratio > ratio[1]) {
		cw = (int)rint(ch * ratio[1]);
	}
	out[0] = (h - ch) / 2;
	out[1] = (w - cw) / 2;
	out[2] = ch;
	out[3] = cw;
}

enum { T_RRC, T_FLIP, T_ROT, T_CJ, T_BLUR, T_JPEG };

void fd_aug_sample(const struct fd_aug_cfg *a, uint64_t seed, uint64_t epoch, uint64_t row, int w,
		   int h, struct fd_aug_params *p)
{
	struct fd_rng r;
	memset(p, 0, sizeof *p);
	p->bright = p->contrast = p->sat = 1;
	for (int i = 0; i < 4; i++)
		p->order[i] = i;

	fd_rng_init(&r, seed, fd_aug_stream(epoch, row, T_RRC));
	if (a->rrc_p > 0 && fd_rng_uniform(&r) < a->rrc_p) {
		p->rrc = 1;
		fd_aug_rrc_params(&r, w, h, a->rrc_scale, a->rrc_ratio, p->crop);
	}
	fd_rng_init(&r, seed, fd_aug_stream(epoch, row, T_FLIP));
	p->flip = a->hflip_p > 0 && fd_rng_uniform(&r) < a->hflip_p;
	fd_rng_init(&r, seed, fd_aug_stream(epoch, row, T_ROT));
	if (a->rot_p > 0 && fd_rng_uniform(&r) < a->rot_p) {
		p->rot = 1;
		p->angle = unif(&r, -a->rot_degrees, a->rot_degrees);
	}
	fd_rng_init(&r, seed, fd_aug_stream(epoch, row, T_CJ));
	if (a->cj_p > 0 && fd_rng_uniform(&r) < a->cj_p) {
		p->cj = 1;
		uint32_t ord[4] = {0, 1, 2, 3};
		fd_rng_shuffle(&r, ord, 4);
		for (int i = 0; i < 4; i++)
			p->order[i] = (int)ord[i];
		const double f[3] = {a->cj_brightness, a->cj_contrast, a->cj_saturation};
		double *o[3] = {&p->bright, &p->contrast, &p->sat};
		for (int i = 0; i < 3; i++)
			if (f[i] > 0)
				*o[i] = unif(&r, fmax(0.0, 1 - f[i]), 1 + f[i]);
		if (a->cj_hue > 0)
			p->hue = unif(&r, -a->cj_hue, a->cj_hue);
	}
	fd_rng_init(&r, seed, fd_aug_stream(epoch, row, T_BLUR));
	if (a->blur_p > 0 && fd_rng_uniform(&r) < a->blur_p) {
		p->blur = 1;
		p->sigma = unif(&r, a->blur_sigma[0], a->blur_sigma[1]);
	}
	fd_rng_init(&r, seed, fd_aug_stream(epoch, row, T_JPEG));
	if (a->jpeg_p > 0 && fd_rng_uniform(&r) < a->jpeg_p) {
		p->jpeg = 1;
		p->quality = a->jpeg_quality[0] +
			     (int)fd_rng_below(&r, (uint64_t)(a->jpeg_quality[1] - a->jpeg_quality[0] + 1));
	}
}

int fd_aug_work_init(struct fd_aug_work *w, int S, struct fd_err *e)
{
	size_t n = (size_t)S * S * 3;
	w->S = S;
	w->a = malloc(n);
	w->b = malloc(n);
	w->f = malloc(n * sizeof(float));
	if (!w->a || !w->b || !w->f) {
		fd_aug_work_free(w);
		return fd_err_set(e, "out of memory");
	}
	return 0;
}

void fd_aug_work_free(struct fd_aug_work *w)
{
	if (!w)
		return;
	free(w->a);
	free(w->b);
	free(w->f);
	memset(w, 0, sizeof *w);
}

int fd_aug_apply(const struct fd_aug_cfg *a, const struct fd_aug_params *p, uint8_t *img, int S,
		 struct fd_aug_work *w, struct fd_err *e)
{
	size_t n = (size_t)S * S;
	if (w->S != S)
		return fd_err_set(e, "augment: work buffers are for %d x %d images, not %d", w->S, w->S, S);
	if (p->rrc) {
		if (fd_aug_resized_crop(img, S, S, p->crop[0], p->crop[1], p->crop[2], p->crop[3], w->b,
					w->a, S, S, e) < 0)
			return -1;
		memcpy(img, w->a, n * 3);
	}
	if (p->flip)
		fd_aug_hflip(img, S, S);
	if (p->rot) {
		fd_aug_rotate(img, S, S, p->angle, w->a);
		memcpy(img, w->a, n * 3);
	}
	if (p->cj) {
		for (int i = 0; i < 4; i++) {
			switch (p->order[i]) {
			case 0:
				if (a->cj_brightness > 0)
					fd_aug_brightness(img, n, p->bright);
				break;
			case 1:
				if (a->cj_contrast > 0)
					fd_aug_contrast(img, n, p->contrast);
				break;
			case 2:
				if (a->cj_saturation > 0)
					fd_aug_saturation(img, n, p->sat);
				break;
			default:
				if (a->cj_hue > 0)
					fd_aug_hue(img, n, p->hue);
				break;
			}
		}
	}
	if (p->blur && a->blur_ksize / 2 >= S)
		return fd_err_set(e, "augment: blur kernel %d too large for %d x %d images", a->blur_ksize, S,
				  S);
	if (p->blur)
		fd_aug_gaussian_blur(img, S, S, a->blur_ksize, p->sigma, w->f, img);
	if (p->jpeg && fd_aug_jpeg(img, S, S, p->quality, e) < 0)
		return -1;
	return 0;
}

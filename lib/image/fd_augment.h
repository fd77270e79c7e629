/* fd_augment: training-time augmentation of 8-bit RGB images (HWC, row-major),
 * with the semantics of torchvision.transforms on PIL images, and the random
 * parameters drawn from Philox streams keyed by (seed, epoch, row), so an
 * augmented batch never depends on thread count or timing. See doc/augment.md. */
#ifndef FD_AUGMENT_H
#define FD_AUGMENT_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_config.h"
#include "core/fd_err.h"

/* The config's `augment` block. A transform with p == 0 is off. Ranges are
 * those of the torchvision classes named beside each field. */
struct fd_aug_cfg {
	double hflip_p;                       /* RandomHorizontalFlip(p) */
	double rrc_p, rrc_scale[2], rrc_ratio[2]; /* RandomResizedCrop(S, scale, ratio), bilinear */
	double rot_p, rot_degrees;            /* RandomRotation(degrees): angle in [-d, d], nearest, fill 0 */
	double cj_p, cj_brightness, cj_contrast, cj_saturation, cj_hue; /* ColorJitter(b, c, s, h) */
	double blur_p;                        /* GaussianBlur(kernel_size, sigma) */
	int blur_ksize;
	double blur_sigma[2];
	double jpeg_p;                        /* re-encode as JPEG, quality uniform in [q0, q1] */
	int jpeg_quality[2];
};

/* Every p = 0 (no augmentation); ranges at torchvision's defaults: scale
 * (0.08, 1), ratio (3/4, 4/3), degrees 0, jitter 0, kernel 3, sigma (0.1, 2),
 * quality (70, 95). */
void fd_aug_cfg_default(struct fd_aug_cfg *a);

/* Fill a from the config's `augment.*` keys (absent keys keep the defaults
 * above; absent `augment` means no augmentation) and validate: p in [0, 1];
 * 0 < scale0 <= scale1 <= 1; 0 < ratio0 <= ratio1; degrees >= 0; brightness,
 * contrast, saturation >= 0; hue in [0, 0.5]; kernel_size odd and positive;
 * 0 < sigma0 <= sigma1; 1 <= q0 <= q1 <= 100. Errors: "config: 'augment.hflip.p'
 * must be in [0, 1], not 1.5". */
int fd_aug_cfg_from_config(struct fd_aug_cfg *a, const struct fd_config *c, struct fd_err *e);

/* 1 when some transform has p > 0. */
int fd_aug_cfg_any(const struct fd_aug_cfg *a);

/* ---- deterministic transforms (torchvision.transforms.functional on PIL) ---- */

/* Mirror in place. F.hflip (PIL FLIP_LEFT_RIGHT); exact. */
void fd_aug_hflip(uint8_t *img, int w, int h);

/* Crop rows top..top+ch-1, columns left..left+cw-1 of the w x h image src (the
 * box must lie inside), then resize that crop to ow x oh with Pillow's bilinear
 * filter into dst (ow*oh*3 bytes, overwritten). crop is caller scratch of at
 * least cw*ch*3 bytes. F.resized_crop(img, top, left, ch, cw, [oh, ow],
 * BILINEAR) on a PIL image: the resize sees only the cropped pixels, as after
 * PIL's crop; exact. Errors: a box outside the image, out of memory (the
 * resize's temporary). */
int fd_aug_resized_crop(const uint8_t *src, int w, int h, int top, int left, int ch, int cw,
			uint8_t *crop, uint8_t *dst, int ow, int oh, struct fd_err *e);

/* Rotate by angle degrees counter-clockwise about the centre (w/2, h/2), same
 * size, nearest neighbour, black outside: F.rotate(img, angle, NEAREST,
 * expand=False, fill=0), which is Pillow's Image.rotate (matrix entries rounded
 * to 15 decimals, half-pixel offsets, 16.16 fixed-point stepping as Pillow
 * affine loop); exact. src and dst must not overlap. */
void fd_aug_rotate(const uint8_t *src, int w, int h, double angle, uint8_t *dst);

/* Colour adjustments of n RGB pixels in place, as F.adjust_brightness /
 * adjust_contrast / adjust_saturation (PIL ImageEnhance: Image.blend of the
 * image with a degenerate image, factor as float32, truncation; contrast's
 * degenerate is the rounded mean of the L image, saturation's is the L image,
 * L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16) and F.adjust_hue (via PIL
 * HSV: hue byte += uint8(hue * 255) mod 256, back to RGB). Exact.
 * factor >= 0; hue in [-0.5, 0.5]. */
void fd_aug_brightness(uint8_t *img, size_t n, double factor);
void fd_aug_contrast(uint8_t *img, size_t n, double factor);
void fd_aug_saturation(uint8_t *img, size_t n, double factor);
void fd_aug_hue(uint8_t *img, size_t n, double hue);
/* Pillow's RGB <-> HSV conversions of one pixel (Image.convert("HSV") and back). */
void fd_aug_rgb2hsv(const uint8_t rgb[3], uint8_t hsv[3]);
void fd_aug_hsv2rgb(const uint8_t hsv[3], uint8_t rgb[3]);

/* Gaussian blur with an odd ksize x ksize kernel of standard deviation sigma,
 * reflect padding (torch's "reflect": the edge pixel is not repeated), result
 * rounded half to even: F.gaussian_blur(img, [k, k], [sigma, sigma]) on a PIL
 * image (which runs torchvision's tensor implementation in float32). fd applies
 * the same normalised float32 1-D kernel separably (rows, then columns) in
 * float32, where torch convolves with the 2-D outer product, so sums differ in
 * the last bits: outputs agree exactly except where a value lies within float
 * rounding of .5 (then by one grey level). tmp: caller scratch of w*h*3 floats.
 * Requires ksize / 2 < min(w, h). src and dst may be the same buffer. */
void fd_aug_gaussian_blur(const uint8_t *src, int w, int h, int ksize, double sigma, float *tmp,
			  uint8_t *dst);

/* JPEG round trip in place at the given quality (4:2:0) through lib/io/fd_image,
 * as Pillow's img.save(buf, "JPEG", quality=q) then Image.open(buf).convert("RGB").
 * Errors: codec failures, out of memory. */
int fd_aug_jpeg(uint8_t *img, int w, int h, int quality, struct fd_err *e);

/* ---- random parameters ---- */

/* RandomResizedCrop.get_params on a w x h image with our generator: up to 10
 * attempts of area fraction ~ U(scale), log aspect ~ U(log ratio), cw =
 * round(sqrt(A * r)), ch = round(sqrt(A / r)) (half to even, as Python's
 * round), accepted when 0 < cw <= w and 0 < ch <= h, then top ~ U{0..h-ch},
 * left ~ U{0..w-cw}; otherwise the centre-crop fallback (clamped aspect).
 * out = {top, left, ch, cw}. */
struct fd_rng;
void fd_aug_rrc_params(struct fd_rng *r, int w, int h, const double scale[2], const double ratio[2],
		       int out[4]);

/* Everything drawn for one image. */
struct fd_aug_params {
	int rrc, flip, rot, cj, blur, jpeg; /* 1: apply */
	int crop[4];                        /* top, left, ch, cw */
	double angle;
	int order[4];                       /* 0 brightness, 1 contrast, 2 saturation, 3 hue */
	double bright, contrast, sat, hue;  /* factors; a disabled one is 1 (hue 0) */
	double sigma;
	int quality;
};

/* Draw image `row`'s parameters for `epoch`: each transform draws from its own
 * Philox stream (key seed, stream fd_aug_stream(epoch, row, transform)), first
 * the coin (uniform < p), then its parameters, so a transform's draws do not
 * depend on which other transforms are on. ColorJitter: the order is a random
 * permutation, factors uniform in [max(0, 1 - b), 1 + b] (b, c, s) and
 * [-h, h] (hue); a zero range leaves that adjustment out, as torchvision. */
void fd_aug_sample(const struct fd_aug_cfg *a, uint64_t seed, uint64_t epoch, uint64_t row, int w,
		   int h, struct fd_aug_params *p);

/* The stream of transform t (0..7) of image row in epoch: bit 63 set (other
 * users of the seed, such as the loader's shuffle, keep it clear), epoch in bits
 * 40..62, row in bits 3..39, t in bits 0..2. */
uint64_t fd_aug_stream(uint64_t epoch, uint64_t row, unsigned t);

/* Scratch for fd_aug_apply on S x S images; allocated once, reused. */
struct fd_aug_work {
	int S;
	uint8_t *a, *b;
	float *f;
};
int fd_aug_work_init(struct fd_aug_work *w, int S, struct fd_err *e);
void fd_aug_work_free(struct fd_aug_work *w);

/* Apply p to the S x S image img in place, in torchvision Compose order:
 * RandomResizedCrop (to S x S), horizontal flip, rotation, colour jitter,
 * Gaussian blur, JPEG. Errors: from the JPEG codec or the resize. */
int fd_aug_apply(const struct fd_aug_cfg *a, const struct fd_aug_params *p, uint8_t *img, int S,
		 struct fd_aug_work *w, struct fd_err *e);

#endif

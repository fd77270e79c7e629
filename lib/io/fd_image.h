/* fd_image: decoding and encoding images through libjpeg-turbo's TurboJPEG API
 * and libpng. Every decoded image is 8-bit RGB; gray, palette, alpha, 16-bit
 * PNG and CMYK/YCCK JPEG are converted. Sizes are checked against a pixel
 * limit before any allocation (decompression bombs). */
#ifndef FD_IMAGE_H
#define FD_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"

enum fd_imgfmt { FD_IMG_UNKNOWN = 0, FD_IMG_JPEG, FD_IMG_PNG };

struct fd_image {
	int w, h;
	uint8_t *px;   /* RGB, row-major, w*h*3 bytes, owned; free with fd_image_free */
	int scale;     /* JPEG DCT-domain scale the pixels were decoded at: 1, 2, 4 or 8
			* (1/scale of the stored size, rounded up); 1 for PNG and full size */
};

struct fd_image_info {
	int w, h;
	enum fd_imgfmt fmt;
	char color[16];   /* "rgb", "gray", "cmyk", "ycck", "palette", "gray+alpha", "rgba" */
	int bit_depth;    /* bits per sample as stored: 8 or 16 (PNG also 1, 2, 4; JPEG 12) */
};

#define FD_IMAGE_MAX_PIXELS_DEFAULT (200LL * 1000 * 1000)

struct fd_decode_opts {
	int64_t max_pixels;   /* refuse larger images (0: FD_IMAGE_MAX_PIXELS_DEFAULT) */
	/* JPEG only: when both are > 0, decode with the smallest DCT-domain scale
	 * (1/8 .. 1) whose output is still at least min_w x min_h, exactly as
	 * Pillow's Image.draft('RGB', (min_w, min_h)) picks it. 0: full size. */
	int min_w, min_h;
};

/* The DCT scale denominator (8, 4, 2 or 1) Pillow's Image.draft('RGB', (min_w, min_h))
 * picks for a w x h JPEG: the largest s with s <= min(w / min_w, h / min_h) (integer
 * division); the decoded size is then ceil(w / s) x ceil(h / s). 1 when min_w or
 * min_h is <= 0. */
int fd_image_draft_scale(int w, int h, int min_w, int min_h);

/* Format from the magic bytes (not the extension). */
enum fd_imgfmt fd_image_sniff(const uint8_t *buf, size_t n);
const char *fd_imgfmt_name(enum fd_imgfmt f);   /* "jpeg", "png", "unknown" */

/* Read only the header: size, format, colour type. Errors name the reason
 * ("not a JPEG or PNG file", "truncated header", ...). */
int fd_image_probe_mem(const uint8_t *buf, size_t n, struct fd_image_info *info, struct fd_err *e);

/* Decode to RGB, pixel for pixel what Pillow 9.4's Image.open(f).convert('RGB')
 * gives (after im.draft('RGB', (min_w, min_h)) when those are set), with these
 * rules: alpha is dropped, not composited (RGBA, gray+alpha, tRNS); 16-bit PNG
 * keeps the high byte of each sample (Pillow does this for RGB, RGBA and LA; for
 * 16-bit gray Pillow's convert clips to 255 instead, which fd does not copy);
 * gray and palette expand to RGB; CMYK/YCCK JPEG is read as Adobe inverted CMYK
 * and converted as Pillow's cmyk2rgb does; EXIF orientation is ignored (as
 * Pillow does without ImageOps.exif_transpose). The format comes from the magic
 * bytes, never the name. Size is checked against the pixel limit from the
 * header before anything is allocated. A truncated or corrupt file is an error,
 * never a partial image: every libjpeg warning (premature end of data, corrupt
 * data) counts as an error. On error img is zeroed. Thread-safe. */
int fd_image_decode_mem(const uint8_t *buf, size_t n, const struct fd_decode_opts *o,
			struct fd_image *img, struct fd_err *e);
int fd_image_load(const char *path, const struct fd_decode_opts *o, struct fd_image *img,
		  struct fd_err *e);

/* A reusable decoder for one thread: keeps the TurboJPEG handle and grows its
 * file, pixel and CMYK buffers instead of allocating them per image (each fresh
 * large malloc is a fresh mmap, i.e. page faults on every image). alloc: 0, or
 * -1 (out of memory) with *d NULL; free(NULL) is a no-op. Not for two threads
 * at once. */
struct fd_decoder;
int fd_decoder_alloc(struct fd_decoder **d, struct fd_err *e);
void fd_decoder_free(struct fd_decoder *d);

/* Read the whole file at path into d's file buffer; *buf, *n stay valid until
 * the next fd_decoder_read on d. A path that is not a regular file (a FIFO,
 * a device) is refused without blocking (fd_open_regular). Errors: "cannot
 * read 'PATH': reason". */
int fd_decoder_read(struct fd_decoder *d, const char *path, const uint8_t **buf, size_t *n,
		    struct fd_err *e);

/* fd_image_decode_mem with d's buffers: same pixels, rules and errors, but
 * img->px is lent by d, valid until the next fd_decoder_decode on d or its
 * free, and must not be passed to fd_image_free. buf may be d's file buffer. */
int fd_decoder_decode(struct fd_decoder *d, const uint8_t *buf, size_t n,
		      const struct fd_decode_opts *o, struct fd_image *img, struct fd_err *e);

/* Encode. *out is malloc'ed (caller frees). quality 1..100, 4:2:0 subsampling. */
int fd_image_encode_jpeg(const struct fd_image *img, int quality, uint8_t **out, size_t *n,
			 struct fd_err *e);
int fd_image_encode_png(const struct fd_image *img, uint8_t **out, size_t *n, struct fd_err *e);
/* Encode and write atomically; the format follows the extension (.jpg/.jpeg/.png). */
int fd_image_save(const struct fd_image *img, const char *path, int quality, struct fd_err *e);

int fd_image_alloc(struct fd_image *img, int w, int h, struct fd_err *e);
void fd_image_free(struct fd_image *img);

#endif

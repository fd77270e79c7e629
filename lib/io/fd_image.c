/* fd_image: JPEG (TurboJPEG) and PNG (libpng) decode/encode to 8-bit RGB, with
 * our own header walkers for probing and the pixel limit (see fd_image.h). */
#include "io/fd_image.h"
#include "core/fd_root.h"
#include "core/fd_out.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

enum fd_imgfmt fd_image_sniff(const uint8_t *buf, size_t n)
{
	if (n >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
		return FD_IMG_JPEG;
	if (n >= 8 && memcmp(buf, png_magic, 8) == 0)
		return FD_IMG_PNG;
	return FD_IMG_UNKNOWN;
}

const char *fd_imgfmt_name(enum fd_imgfmt f)
{
	switch (f) {
	case FD_IMG_JPEG: return "jpeg";
	case FD_IMG_PNG: return "png";
	default: return "unknown";
	}
}

int fd_image_draft_scale(int w, int h, int min_w, int min_h)
{
	if (min_w <= 0 || min_h <= 0)
		return 1;
	int r = w / min_w < h / min_h ? w / min_w : h / min_h;
	for (int s = 8; s > 1; s /= 2)
		if (r >= s)
			return s;
	return 1;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walk JPEG markers up to the first SOF; an Adobe APP14 segment before it tells
 * YCCK from CMYK. Only lengths are trusted after a bounds check. */
static int jpeg_probe(const uint8_t *b, size_t n, struct fd_image_info *info, struct fd_err *e)
{
	size_t i = 2;
	int adobe_transform = -1;
	for (;;) {
		while (i < n && b[i] != 0xff)
			i++; /* tolerate garbage between segments, as libjpeg does (with a warning) */
		while (i < n && b[i] == 0xff)
			i++;
		if (i >= n)
			return fd_err_set(e, "truncated header");
		int m = b[i++];
		if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7))
			continue;
		if (m == 0xd9 || m == 0xda)
			return fd_err_set(e, "no frame header before image data");
		if (i + 2 > n)
			return fd_err_set(e, "truncated header");
		size_t len = (size_t)b[i] << 8 | b[i + 1];
		if (len < 2)
			return fd_err_set(e, "bad marker length");
		if (i + len > n)
			return fd_err_set(e, "truncated header");
		const uint8_t *p = b + i + 2;
		size_t pl = len - 2;
		int sof = (m >= 0xc0 && m <= 0xcf) && m != 0xc4 && m != 0xc8 && m != 0xcc;
		if (m == 0xee && pl >= 12 && memcmp(p, "Adobe", 5) == 0)
			adobe_transform = p[11];
		if (sof) {
			if (pl < 6)
				return fd_err_set(e, "truncated frame header");
			info->fmt = FD_IMG_JPEG;
			info->bit_depth = p[0];
			info->h = p[1] << 8 | p[2];
			info->w = p[3] << 8 | p[4];
			int nc = p[5];
			if (info->w == 0 || info->h == 0)
				return fd_err_set(e, "image has zero width or height");
			if (nc == 1)
				strcpy(info->color, "gray");
			else if (nc == 3)
				strcpy(info->color, "rgb");
			else if (nc == 4)
				strcpy(info->color, adobe_transform == 2 ? "ycck" : "cmyk");
			else
				return fd_err_set(e, "unsupported JPEG with %d components", nc);
			return 0;
		}
		i += len;
	}
}

static int png_probe(const uint8_t *b, size_t n, struct fd_image_info *info, struct fd_err *e)
{
	if (n < 33)
		return fd_err_set(e, "truncated header");
	if (be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) != 0)
		return fd_err_set(e, "PNG does not start with an IHDR chunk");
	uint32_t w = be32(b + 16), h = be32(b + 20);
	if (w == 0 || h == 0)
		return fd_err_set(e, "image has zero width or height");
	if (w > 0x7fffffffu || h > 0x7fffffffu)
		return fd_err_set(e, "image size %ux%u is invalid", w, h);
	info->fmt = FD_IMG_PNG;
	info->w = (int)w;
	info->h = (int)h;
	info->bit_depth = b[24];
	static const char *names[7] = {"gray", NULL, "rgb", "palette", "gray+alpha", NULL, "rgba"};
	int ct = b[25];
	if (ct > 6 || !names[ct])
		return fd_err_set(e, "invalid PNG colour type %d", ct);
	strcpy(info->color, names[ct]);
	return 0;
}

int fd_image_probe_mem(const uint8_t *buf, size_t n, struct fd_image_info *info, struct fd_err *e)
{
	memset(info, 0, sizeof *info);
	if (n == 0)
		return fd_err_set(e, "empty file");
	switch (fd_image_sniff(buf, n)) {
	case FD_IMG_JPEG: return jpeg_probe(buf, n, info, e);
	case FD_IMG_PNG: return png_probe(buf, n, info, e);
	default: return fd_err_set(e, "not a JPEG or PNG file");
	}
}

/* Read the whole file (images are small next to memory; one read is fastest). */
static int slurp(const char *path, uint8_t **buf, size_t *n, struct fd_err *e)
{
	*buf = NULL;
	*n = 0;
	int fd = fd_open_regular(path, e); /* a FIFO would hang fopen */
	FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
	if (!f) {
		if (fd >= 0)
			close(fd);
		return fd < 0 ? -1 : fd_err_sys(e, errno, "cannot read '%s'", path);
	}
	size_t cap = 1 << 16, len = 0;
	uint8_t *b = malloc(cap);
	for (;;) {
		if (!b) {
			fclose(f);
			return fd_err_set(e, "cannot read '%s': out of memory", path);
		}
		len += fread(b + len, 1, cap - len, f);
		if (len < cap)
			break;
		uint8_t *nb = realloc(b, cap * 2);
		if (!nb)
			free(b);
		b = nb;
		cap *= 2;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(b);
		return fd_err_sys(e, EIO, "cannot read '%s'", path);
	}
	*buf = b;
	*n = len;
	return 0;
}

int fd_image_alloc(struct fd_image *img, int w, int h, struct fd_err *e)
{
	memset(img, 0, sizeof *img);
	if (w <= 0 || h <= 0)
		return fd_err_set(e, "bad image size %dx%d", w, h);
	img->px = malloc((size_t)w * (size_t)h * 3);
	if (!img->px)
		return fd_err_set(e, "out of memory for a %dx%d image", w, h);
	img->w = w;
	img->h = h;
	img->scale = 1;
	return 0;
}

void fd_image_free(struct fd_image *img)
{
	if (!img)
		return;
	free(img->px);
	memset(img, 0, sizeof *img);
}

/* Pillow's MULDIV255: a*b/255 rounded, in integers. */
static inline int muldiv255(int a, int b)
{
	int t = a * b + 128;
	return ((t >> 8) + t) >> 8;
}

/* Everything a decode needs that can outlive one image: one per thread. */
struct fd_decoder {
	tjhandle tj;      /* created on the first JPEG */
	uint8_t *px;      /* decoded RGB, lent to the caller's fd_image */
	uint8_t *cmyk;    /* 4-channel JPEG scratch */
	uint8_t *file;    /* fd_decoder_read's buffer */
	size_t px_cap, cmyk_cap, file_cap;
};

/* Grow *buf to at least n bytes (contents not kept). */
static int reserve(uint8_t **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return 0;
	free(*buf);
	*buf = malloc(n);
	*cap = *buf ? n : 0;
	return *buf ? 0 : -1;
}

/* Point img at d's pixel buffer, grown to w x h RGB. */
static int lend_pixels(struct fd_decoder *d, struct fd_image *img, int w, int h, struct fd_err *e)
{
	memset(img, 0, sizeof *img);
	if (reserve(&d->px, &d->px_cap, (size_t)w * (size_t)h * 3) != 0)
		return fd_err_set(e, "out of memory for a %dx%d image", w, h);
	img->px = d->px;
	img->w = w;
	img->h = h;
	img->scale = 1;
	return 0;
}

static int jpeg_decode(struct fd_decoder *d, const uint8_t *buf, size_t n,
		       const struct fd_image_info *in, int scale, struct fd_image *img,
		       struct fd_err *e)
{
	if (!d->tj && !(d->tj = tjInitDecompress()))
		return fd_err_set(e, "cannot start the JPEG decoder: %s", tjGetErrorStr2(NULL));
	tjhandle tj = d->tj;
	int w, h, subsamp, cs, rc = -1;
	if (tjDecompressHeader3(tj, buf, (unsigned long)n, &w, &h, &subsamp, &cs) != 0) {
		fd_err_set(e, "%s", tjGetErrorStr2(tj));
		goto out;
	}
	if (w != in->w || h != in->h) {
		fd_err_set(e, "inconsistent frame headers");
		goto out;
	}
	int sw = (w + scale - 1) / scale, sh = (h + scale - 1) / scale;
	if (lend_pixels(d, img, sw, sh, e) != 0)
		goto out;
	img->scale = scale;
	/* Every warning (truncation, corrupt data) stops the decode and fails it. */
	int flags = TJFLAG_STOPONWARNING;
	int four = cs == TJCS_CMYK || cs == TJCS_YCCK;
	uint8_t *cmyk = NULL;
	if (four) {
		if (reserve(&d->cmyk, &d->cmyk_cap, (size_t)sw * (size_t)sh * 4) != 0) {
			fd_err_set(e, "out of memory for a %dx%d image", sw, sh);
			goto out;
		}
		cmyk = d->cmyk;
	}
	if (tjDecompress2(tj, buf, (unsigned long)n, four ? cmyk : img->px, sw, 0, sh,
			  four ? TJPF_CMYK : TJPF_RGB, flags) != 0) {
		fd_err_set(e, "%s", tjGetErrorStr2(tj));
		goto out;
	}
	if (four) {
		/* Stored Adobe-inverted: Pillow reads "CMYK;I" (c = 255 - raw) and
		 * converts with r = nk - c*nk/255 where nk = 255 - k = raw k. */
		size_t np = (size_t)sw * (size_t)sh;
		for (size_t i = 0; i < np; i++) {
			const uint8_t *q = cmyk + 4 * i;
			int nk = q[3];
			for (int c = 0; c < 3; c++) {
				int v = nk - muldiv255(255 - q[c], nk);
				img->px[3 * i + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
			}
		}
	}
	rc = 0;
out:
	if (rc) {
		memset(img, 0, sizeof *img);
		/* A failed decode can leave the handle mid-file: the next
		 * tjDecompressHeader3 then reports the old image's header, and a good
		 * JPEG after a corrupt one would fail. Start the next one afresh. */
		tjDestroy(d->tj);
		d->tj = NULL;
	}
	return rc;
}

struct png_src {
	const uint8_t *p;
	size_t n, off;
	char msg[256];
};

static void png_rd(png_structp pp, png_bytep out, size_t len)
{
	struct png_src *s = png_get_io_ptr(pp);
	if (len > s->n - s->off)
		png_error(pp, "truncated file");
	memcpy(out, s->p + s->off, len);
	s->off += len;
}

static void png_on_error(png_structp pp, png_const_charp msg)
{
	struct png_src *s = png_get_error_ptr(pp);
	snprintf(s->msg, sizeof s->msg, "%s", msg);
	png_longjmp(pp, 1);
}

static void png_on_warning(png_structp pp, png_const_charp msg)
{
	(void)pp;
	(void)msg; /* benign (ancillary chunk CRC, extra zlib data): Pillow ignores them too */
}

static int png_decode(struct fd_decoder *d, const uint8_t *buf, size_t n,
		      const struct fd_image_info *in, struct fd_image *img, struct fd_err *e)
{
	struct png_src src = {buf, n, 0, "corrupt PNG"};
	png_structp pp = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
	if (!pp)
		return fd_err_set(e, "cannot start the PNG decoder");
	png_infop ip = png_create_info_struct(pp);
	png_bytep *volatile rows = NULL;
	if (!ip || setjmp(png_jmpbuf(pp))) {
		png_destroy_read_struct(&pp, ip ? &ip : NULL, NULL);
		free(rows);
		memset(img, 0, sizeof *img);
		return fd_err_set(e, "%s", src.msg);
	}
	png_set_read_fn(pp, &src, png_rd);
	png_set_user_limits(pp, (png_uint_32)in->w, (png_uint_32)in->h);
	png_read_info(pp, ip);
	png_uint_32 w, h;
	int depth, ct;
	png_get_IHDR(pp, ip, &w, &h, &depth, &ct, NULL, NULL, NULL);
	if (depth == 16)
		png_set_strip_16(pp); /* high byte, as Pillow's ";16B" unpackers */
	if (ct == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(pp);
	if (ct == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(pp);
	/* palette expansion also turns tRNS into alpha; drop it like real alpha */
	if ((ct & PNG_COLOR_MASK_ALPHA) || png_get_valid(pp, ip, PNG_INFO_tRNS))
		png_set_strip_alpha(pp);
	if (!(ct & PNG_COLOR_MASK_COLOR))
		png_set_gray_to_rgb(pp);
	png_set_interlace_handling(pp);
	png_read_update_info(pp, ip);
	if (png_get_rowbytes(pp, ip) != (size_t)w * 3)
		png_error(pp, "unexpected row layout after conversion");
	if (reserve(&d->px, &d->px_cap, (size_t)w * h * 3) != 0)
		png_error(pp, "out of memory");
	uint8_t *px = d->px;
	rows = malloc(sizeof(png_bytep) * h);
	if (!rows)
		png_error(pp, "out of memory");
	for (png_uint_32 y = 0; y < h; y++)
		rows[y] = px + (size_t)y * w * 3;
	png_read_image(pp, rows);
	png_read_end(pp, NULL); /* checks the rest up to IEND: a cut file fails here */
	png_destroy_read_struct(&pp, &ip, NULL);
	free(rows);
	img->w = (int)w;
	img->h = (int)h;
	img->px = px;
	img->scale = 1;
	return 0;
}

int fd_decoder_alloc(struct fd_decoder **d, struct fd_err *e)
{
	*d = calloc(1, sizeof **d);
	return *d ? 0 : fd_err_set(e, "out of memory for a decoder");
}

static void decoder_release(struct fd_decoder *d)
{
	if (d->tj)
		tjDestroy(d->tj);
	free(d->px);
	free(d->cmyk);
	free(d->file);
}

void fd_decoder_free(struct fd_decoder *d)
{
	if (!d)
		return;
	decoder_release(d);
	free(d);
}

int fd_decoder_read(struct fd_decoder *d, const char *path, const uint8_t **buf, size_t *n,
		    struct fd_err *e)
{
	*buf = NULL;
	*n = 0;
	int fd = fd_open_regular(path, e);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int er = errno;
		close(fd);
		return fd_err_sys(e, er, "cannot read '%s'", path);
	}
	/* the size is a hint (a file may grow or be a pipe): read until EOF */
	size_t len = 0, want = st.st_size > 0 ? (size_t)st.st_size + 1 : 65536;
	for (;;) {
		if (len == d->file_cap) {
			size_t cap = d->file_cap > want ? d->file_cap * 2 : want;
			uint8_t *b = realloc(d->file, cap);
			if (!b) {
				close(fd);
				return fd_err_set(e, "cannot read '%s': out of memory", path);
			}
			d->file = b;
			d->file_cap = cap;
		}
		ssize_t r = read(fd, d->file + len, d->file_cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int er = errno;
			close(fd);
			return fd_err_sys(e, er, "cannot read '%s'", path);
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	*buf = d->file;
	*n = len;
	return 0;
}

int fd_decoder_decode(struct fd_decoder *d, const uint8_t *buf, size_t n,
		      const struct fd_decode_opts *o, struct fd_image *img, struct fd_err *e)
{
	memset(img, 0, sizeof *img);
	struct fd_image_info info;
	if (fd_image_probe_mem(buf, n, &info, e) != 0)
		return -1;
	int64_t lim = o && o->max_pixels > 0 ? o->max_pixels : FD_IMAGE_MAX_PIXELS_DEFAULT;
	if ((int64_t)info.w * info.h > lim)
		return fd_err_set(e, "image of %dx%d pixels exceeds the limit of %lld pixels", info.w,
				  info.h, (long long)lim);
	if (info.fmt == FD_IMG_PNG)
		return png_decode(d, buf, n, &info, img, e);
	if (info.bit_depth != 8)
		return fd_err_set(e, "unsupported %d-bit JPEG", info.bit_depth);
	int s = o ? fd_image_draft_scale(info.w, info.h, o->min_w, o->min_h) : 1;
	return jpeg_decode(d, buf, n, &info, s, img, e);
}

int fd_image_decode_mem(const uint8_t *buf, size_t n, const struct fd_decode_opts *o,
			struct fd_image *img, struct fd_err *e)
{
	struct fd_decoder d;
	memset(&d, 0, sizeof d);
	int rc = fd_decoder_decode(&d, buf, n, o, img, e);
	if (rc == 0)
		d.px = NULL; /* the caller owns it now */
	decoder_release(&d);
	return rc;
}

int fd_image_load(const char *path, const struct fd_decode_opts *o, struct fd_image *img,
		  struct fd_err *e)
{
	memset(img, 0, sizeof *img);
	uint8_t *buf;
	size_t n;
	if (slurp(path, &buf, &n, e) != 0)
		return -1;
	int rc = fd_image_decode_mem(buf, n, o, img, e);
	free(buf);
	return rc ? fd_err_ctx(e, "cannot read '%s'", path) : 0;
}

int fd_image_encode_jpeg(const struct fd_image *img, int quality, uint8_t **out, size_t *n,
			 struct fd_err *e)
{
	*out = NULL;
	*n = 0;
	if (quality < 1 || quality > 100)
		return fd_err_set(e, "JPEG quality %d is outside 1..100", quality);
	unsigned long cap = tjBufSize(img->w, img->h, TJSAMP_420);
	if (cap == (unsigned long)-1)
		return fd_err_set(e, "image too large to encode");
	uint8_t *b = malloc(cap);
	if (!b)
		return fd_err_set(e, "out of memory");
	tjhandle tj = tjInitCompress();
	if (!tj) {
		free(b);
		return fd_err_set(e, "cannot start the JPEG encoder: %s", tjGetErrorStr2(NULL));
	}
	unsigned long len = cap;
	unsigned char *p = b;
	if (tjCompress2(tj, img->px, img->w, 0, img->h, TJPF_RGB, &p, &len, TJSAMP_420, quality,
			TJFLAG_NOREALLOC | TJFLAG_ACCURATEDCT) != 0) {
		fd_err_set(e, "cannot encode JPEG: %s", tjGetErrorStr2(tj));
		tjDestroy(tj);
		free(b);
		return -1;
	}
	tjDestroy(tj);
	*out = b;
	*n = len;
	return 0;
}

struct png_sink {
	uint8_t *p;
	size_t n, cap;
	char msg[256];
};

static void png_wr(png_structp pp, png_bytep data, size_t len)
{
	struct png_sink *s = png_get_io_ptr(pp);
	if (len > s->cap - s->n) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap - s->n < len)
			cap *= 2;
		uint8_t *np = realloc(s->p, cap);
		if (!np)
			png_error(pp, "out of memory");
		s->p = np;
		s->cap = cap;
	}
	memcpy(s->p + s->n, data, len);
	s->n += len;
}

static void png_flush_nop(png_structp pp)
{
	(void)pp;
}

static void png_on_werror(png_structp pp, png_const_charp msg)
{
	struct png_sink *s = png_get_error_ptr(pp);
	snprintf(s->msg, sizeof s->msg, "%s", msg);
	png_longjmp(pp, 1);
}

int fd_image_encode_png(const struct fd_image *img, uint8_t **out, size_t *n, struct fd_err *e)
{
	*out = NULL;
	*n = 0;
	struct png_sink sink = {NULL, 0, 0, ""};
	png_structp pp = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_on_werror, NULL);
	if (!pp)
		return fd_err_set(e, "cannot start the PNG encoder");
	png_infop ip = png_create_info_struct(pp);
	if (!ip || setjmp(png_jmpbuf(pp))) {
		png_destroy_write_struct(&pp, ip ? &ip : NULL);
		free(sink.p);
		return fd_err_set(e, "cannot encode PNG: %s", sink.msg);
	}
	png_set_write_fn(pp, &sink, png_wr, png_flush_nop);
	png_set_IHDR(pp, ip, (png_uint_32)img->w, (png_uint_32)img->h, 8, PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(pp, ip);
	for (int y = 0; y < img->h; y++)
		png_write_row(pp, img->px + (size_t)y * img->w * 3);
	png_write_end(pp, NULL);
	png_destroy_write_struct(&pp, &ip);
	*out = sink.p;
	*n = sink.n;
	return 0;
}

int fd_image_save(const struct fd_image *img, const char *path, int quality, struct fd_err *e)
{
	const char *dot = strrchr(path, '.');
	uint8_t *buf;
	size_t n;
	int rc;
	if (dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0))
		rc = fd_image_encode_jpeg(img, quality, &buf, &n, e);
	else if (dot && strcasecmp(dot, ".png") == 0)
		rc = fd_image_encode_png(img, &buf, &n, e);
	else
		return fd_err_set(e, "cannot write '%s': unknown image extension (use .jpg, .jpeg or .png)", path);
	if (rc != 0)
		return fd_err_ctx(e, "cannot write '%s'", path);
	struct fd_out o;
	if (fd_out_open(&o, path, e) != 0) {
		free(buf);
		return -1;
	}
	if (fwrite(buf, 1, n, o.f) != n) {
		int er = errno;
		fd_out_abort(&o);
		free(buf);
		return fd_err_sys(e, er, "cannot write '%s'", path);
	}
	free(buf);
	return fd_out_commit(&o, e);
}

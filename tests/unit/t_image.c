/* t_image: fd_image decode and fd_resize against Pillow (fixtures from
 * tests/ref/pil_image.py), plus bad input: empty, truncated, corrupt, bombs. */
#include "core/fd_table.h"
#include "image/fd_resize.h"
#include "io/fd_image.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[1024];

static uint8_t *slurp(const char *name, size_t *n)
{
	char p[1200];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
	*n = fread(b, 1, (size_t)len, f);
	fclose(f);
	return b;
}

static void parse4(const char *s, double v[4])
{
	sscanf(s, "%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3]);
}

/* Compare with Pillow: the goal is bit-exactness; report what differs. */
static int compare(const char *name, const uint8_t *a, int w, int h, const uint8_t *r, int rw,
		   int rh)
{
	if (w != rw || h != rh)
		return ok(0, "%s: size %dx%d, Pillow %dx%d", name, w, h, rw, rh);
	size_t n = (size_t)w * h * 3, diff = 0, over1 = 0, worst = 0;
	int maxd = 0;
	for (size_t i = 0; i < n; i++) {
		int d = abs((int)a[i] - (int)r[i]);
		if (d) {
			diff++;
			if (d > 1)
				over1++;
			if (d > maxd)
				maxd = d, worst = i;
		}
	}
	if (diff)
		diag("%s: %zu of %zu values differ, max %d at pixel %zu (%d vs %d)", name, diff, n,
		     maxd, worst / 3, a[worst], r[worst]);
	return ok(diff == 0, "%s: %dx%d equals Pillow", name, w, h);
}

/* One fixture case; with dec and rs (reused across all cases, so buffers and
 * coefficient caches see every size in turn) through the per-thread APIs,
 * else through the standalone ones. */
static void run_case(const struct fd_table *t, size_t r, struct fd_decoder *dec,
		     struct fd_resize_ctx *rs)
{
#define C(col) fd_table_get(t, r, fd_table_col(t, col))
	char name[300];
	snprintf(name, sizeof name, "%s%s", C("name"), dec ? " (reused decoder+resizer)" : "");
	const char *op = C("op");
	size_t n, en;
	uint8_t *buf = slurp(C("file"), &n), *ref = slurp(C("expect"), &en);
	int ew = atoi(C("ew")), eh = atoi(C("eh"));
	if (!buf || !ref || en != (size_t)ew * eh * 3) {
		ok(0, "%s: fixture files readable", name);
		free(buf);
		free(ref);
		return;
	}
	struct fd_decode_opts o = {0, atoi(C("min_w")), atoi(C("min_h"))};
	struct fd_image img;
	struct fd_err e = {""};
	if ((dec ? fd_decoder_decode(dec, buf, n, &o, &img, &e)
		 : fd_image_decode_mem(buf, n, &o, &img, &e)) != 0) {
		ok(0, "%s: decode: %s", name, e.msg);
		goto out;
	}
	if (strcmp(op, "decode") == 0) {
		compare(name, img.px, img.w, img.h, ref, ew, eh);
	} else if (strcmp(op, "resize") == 0) {
		double b[4];
		parse4(C("box"), b);
		float box[4] = {(float)b[0], (float)b[1], (float)b[2], (float)b[3]};
		int ow = atoi(C("ow")), oh = atoi(C("oh"));
		const char *fl = C("filter");
		enum fd_filter f = strcmp(fl, "bicubic") == 0   ? FD_FILTER_BICUBIC
				   : strcmp(fl, "lanczos") == 0 ? FD_FILTER_LANCZOS
								: FD_FILTER_BILINEAR;
		uint8_t *dst = malloc((size_t)ow * oh * 3);
		if (fd_resize_rgb_ctx(rs, img.px, img.w, img.h, box, dst, ow, oh, (size_t)ow * 3, f,
				      &e) != 0)
			ok(0, "%s: resize: %s", name, e.msg);
		else
			compare(name, dst, ow, oh, ref, ew, eh);
		free(dst);
	} else {
		enum fd_geometry g;
		fd_geometry_parse(C("geometry"), &g);
		int S = atoi(C("size"));
		float fb[4];
		if (g == FD_GEOM_FACE) {
			double v[4];
			parse4(C("face"), v);
			for (int i = 0; i < 4; i++)
				v[i] /= img.scale;
			if (fd_geom_face_box(img.w, img.h, v[0], v[1], v[2], v[3], atof(C("margin")), fb))
				ok(0, "%s: face box refused", name);
		}
		uint8_t *dst = malloc((size_t)S * S * 3);
		if (fd_geom_square_ctx(rs, img.px, img.w, img.h, g, S, fb, NULL, dst, &e) != 0)
			ok(0, "%s: square: %s", name, e.msg);
		else
			compare(name, dst, S, S, ref, ew, eh);
		free(dst);
	}
	if (!dec)
		fd_image_free(&img);
out:
	free(buf);
	free(ref);
#undef C
}

/* Decoding must fail with a message containing want, leaving img zeroed. */
static void bad(const char *what, const uint8_t *b, size_t n, int64_t maxpx, const char *want)
{
	struct fd_decode_opts o = {maxpx, 0, 0};
	struct fd_image img = {1, 1, (uint8_t *)1, 1};
	struct fd_err e = {""};
	int rc = fd_image_decode_mem(b, n, &o, &img, &e);
	ok(rc != 0 && img.px == NULL && img.w == 0 && strstr(e.msg, want), "%s: refused ('%s')",
	   what, e.msg);
}

static void bad_inputs(void)
{
	size_t n;
	uint8_t *jpg = slurp("china.jpg", &n);
	bad("zero-byte file", jpg, 0, 0, "empty file");
	bad("text file", (const uint8_t *)"hello world", 11, 0, "not a JPEG or PNG");
	bad("truncated JPEG header", jpg, 100, 0, "truncated header");
	bad("truncated JPEG (half the data)", jpg, n / 2, 0, "");
	bad("truncated JPEG (last 2 bytes cut)", jpg, n - 2, 0, "");
	/* corrupt entropy-coded data (libjpeg only warns; it must be an error) */
	uint8_t *cj = malloc(n);
	memcpy(cj, jpg, n);
	for (size_t i = n / 2; i < n / 2 + 64; i++)
		cj[i] = 0xff & (cj[i] * 7 + 13);
	bad("corrupt JPEG data", cj, n, 0, "");
	free(cj);
	/* decompression bomb: patch the SOF to claim 60000x60000 */
	struct fd_image_info info;
	struct fd_err e;
	ok(fd_image_probe_mem(jpg, n, &info, &e) == 0 && info.w == 640 && info.h == 427 &&
		   info.fmt == FD_IMG_JPEG && strcmp(info.color, "rgb") == 0,
	   "probe china.jpg: 640x427 jpeg rgb");
	for (size_t i = 2; i + 9 < n; i++)
		if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
			jpg[i + 5] = jpg[i + 7] = 0xea, jpg[i + 6] = jpg[i + 8] = 0x60;
			break;
		}
	bad("JPEG header claiming 60000x60000", jpg, n, 0, "exceeds the limit");
	free(jpg);

	uint8_t *png = slurp("rgb_31x17.png", &n);
	bad("truncated PNG header", png, 20, 0, "truncated header");
	bad("truncated PNG (half)", png, n / 2, 0, "");
	bad("truncated PNG (no IEND)", png, n - 12, 0, "");
	bad("PNG over a 100-pixel limit", png, n, 100, "exceeds the limit");
	uint8_t *bomb = malloc(n);
	memcpy(bomb, png, n);
	const uint8_t big[8] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0}; /* 100000 x 100000 */
	memcpy(bomb + 16, big, 8);
	bad("PNG header claiming 100000x100000", bomb, n, 0, "exceeds the limit");
	ok(fd_image_probe_mem(bomb, n, &info, &e) == 0 && info.w == 100000,
	   "probe reads the bomb's header without decoding");
	memcpy(bomb, png, n);
	bomb[40] ^= 0x55; /* inside IDAT: CRC mismatch */
	bad("PNG with a corrupt IDAT", bomb, n, 0, "");
	free(bomb);
	free(png);

	size_t m;
	uint8_t *pj = slurp("png_named.jpg", &m);
	ok(fd_image_probe_mem(pj, m, &info, &e) == 0 && info.fmt == FD_IMG_PNG,
	   "a PNG named .jpg is probed as PNG (magic bytes decide)");
	free(pj);
	const char *probes[][3] = {{"cmyk_33x27.jpg", "cmyk", "8"},
				   {"gray_41x29.jpg", "gray", "8"},
				   {"gray16_25x17.png", "gray", "16"},
				   {"rgb16_19x13.png", "rgb", "16"},
				   {"pal_35x21.png", "palette", "8"},
				   {"rgba_23x19.png", "rgba", "8"},
				   {"la_21x15.png", "gray+alpha", "8"},
				   {"gray4_17x11.png", "gray", "4"}};
	for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
		uint8_t *b = slurp(probes[i][0], &m);
		int rc = b ? fd_image_probe_mem(b, m, &info, &e) : -1;
		ok(rc == 0 && strcmp(info.color, probes[i][1]) == 0 &&
			   info.bit_depth == atoi(probes[i][2]),
		   "probe %s: %s, %s bits (got %s, %d)", probes[i][0], probes[i][1], probes[i][2],
		   rc ? "-" : info.color, info.bit_depth);
		free(b);
	}
}

/* Encode round trips: PNG is lossless; JPEG decodes back close to the source. */
static void encode(void)
{
	struct fd_image img;
	struct fd_err e;
	char p[1200];
	snprintf(p, sizeof p, "%s/china.jpg", dir);
	if (fd_image_load(p, NULL, &img, &e) != 0) {
		ok(0, "load china.jpg: %s", e.msg);
		return;
	}
	uint8_t *b;
	size_t n;
	struct fd_image back;
	ok(fd_image_encode_png(&img, &b, &n, &e) == 0 && fd_image_decode_mem(b, n, NULL, &back, &e) == 0 &&
		   back.w == img.w && memcmp(back.px, img.px, (size_t)img.w * img.h * 3) == 0,
	   "PNG encode/decode round trip is exact");
	free(b);
	fd_image_free(&back);
	ok(fd_image_encode_jpeg(&img, 95, &b, &n, &e) == 0 && fd_image_decode_mem(b, n, NULL, &back, &e) == 0,
	   "JPEG encode/decode");
	double se = 0;
	for (size_t i = 0; back.px && i < (size_t)img.w * img.h * 3; i++)
		se += (double)(back.px[i] - img.px[i]) * (back.px[i] - img.px[i]);
	double rmse = back.px ? sqrt(se / ((double)img.w * img.h * 3)) : 1e9;
	ok(rmse < 5, "JPEG q95 round trip RMSE %.2f < 5 (4:2:0 chroma loss)", rmse);
	free(b);
	fd_image_free(&back);
	snprintf(p, sizeof p, "%s/no-such-dir/x.png", dir);
	ok(fd_image_save(&img, p, 90, &e) != 0 && strstr(e.msg, "no-such-dir"),
	   "save into a missing directory fails: %s", e.msg);
	ok(fd_image_encode_jpeg(&img, 0, &b, &n, &e) != 0, "JPEG quality 0 refused");
	fd_image_free(&img);
}

int main(void)
{
	const char *b = getenv("FD_BUILD");
	snprintf(dir, sizeof dir, "%s/ref/pil_image", b ? b : "build");
	char p[1200];
	snprintf(p, sizeof p, "%s/cases.tsv", dir);
	struct fd_table t;
	struct fd_err e;
	fd_table_init(&t);
	if (fd_table_read(&t, p, &e) != 0) {
		ok(0, "read fixtures: %s (run make check-build)", e.msg);
		return tap_done();
	}
	for (size_t r = 0; r < t.nrow; r++)
		run_case(&t, r, NULL, NULL);
	struct fd_decoder *dec;
	struct fd_resize_ctx *rs;
	if (fd_decoder_alloc(&dec, &e) != 0 || fd_resize_ctx_alloc(&rs, &e) != 0)
		return ok(0, "alloc: %s", e.msg), tap_done();
	/* every case twice, the second time in reverse order (buffers shrink and
	 * grow, caches change and repeat) */
	for (size_t r = 0; r < t.nrow; r++)
		run_case(&t, r, dec, rs);
	for (size_t r = t.nrow; r-- > 0;)
		run_case(&t, r, dec, rs);
	/* fd_decoder_read: the same bytes as stdio, twice (buffer reuse), and a
	 * missing file named in the error */
	for (int k = 0; k < 2 && t.nrow; k++) {
		const char *f = fd_table_get(&t, k % t.nrow, fd_table_col(&t, "file"));
		char fp[1200];
		snprintf(fp, sizeof fp, "%s/%s", dir, f);
		size_t n, m;
		const uint8_t *got;
		uint8_t *want = slurp(f, &n);
		int rc = fd_decoder_read(dec, fp, &got, &m, &e);
		ok(rc == 0 && want && m == n && memcmp(got, want, n) == 0, "fd_decoder_read '%s': %zu bytes", f, n);
		free(want);
	}
	{
		const uint8_t *got;
		size_t m;
		int rc = fd_decoder_read(dec, "/nonexistent/x.jpg", &got, &m, &e);
		ok(rc < 0 && strstr(e.msg, "cannot read '/nonexistent/x.jpg'") && !got && m == 0,
		   "fd_decoder_read: missing file: %s", e.msg);
	}
	fd_decoder_free(dec);
	fd_resize_ctx_free(rs);
	fd_table_free(&t);
	bad_inputs();
	encode();
	ok(fd_image_draft_scale(640, 427, 100, 100) == 4 && fd_image_draft_scale(512, 512, 224, 224) == 2 &&
		   fd_image_draft_scale(100, 100, 0, 0) == 1 && fd_image_draft_scale(4000, 4000, 10, 10) == 8,
	   "draft scale as Pillow picks it");
	return tap_done();
}

/* t_pth: the .pt/.pth reader against files written by torch.save (tests/ref/pth.py):
 * every tensor's dtype, shape and bytes (SHA-256 of tensor.contiguous()), the
 * float32 conversion (SHA-256 of tensor.float()), and every hostile file
 * refused with its message; then truncation and byte-flip sweeps. */
#include "core/fd_sha256.h"
#include "core/fd_table.h"
#include "io/fd_pth.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[4096];

static const char *fx(const char *name)
{
	static char buf[8192];
	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static void sha_hex(const void *p, size_t n, char out[65])
{
	struct fd_sha256 s;
	fd_sha256_init(&s);
	if (n)
		fd_sha256_update(&s, p, n);
	fd_sha256_hex(&s, out);
}

static void shape_str(const struct fd_pth_tensor *t, char *buf, size_t n)
{
	size_t at = 0;
	buf[0] = 0;
	for (int d = 0; d < t->ndim && at < n; d++)
		at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? "," : "", (long long)t->shape[d]);
}

/* Compare one file with its rows of good.tsv; returns the number of problems (each diag'ed). */
static int check_file(const struct fd_table *g, const char *file, struct fd_pth *p)
{
	int cf = fd_table_col(g, "file"), cn = fd_table_col(g, "name"), cd = fd_table_col(g, "dtype"),
	    cs = fd_table_col(g, "shape"), ch = fd_table_col(g, "sha256"), c32 = fd_table_col(g, "f32_sha256");
	int bad = 0, k = 0;
	for (size_t r = 0; r < g->nrow; r++) {
		if (strcmp(fd_table_get(g, r, cf), file) != 0)
			continue;
		const char *name = fd_table_get(g, r, cn);
		const struct fd_pth_tensor *t = fd_pth_find(p, name);
		char shape[256], hex[65];
		if (!t) {
			diag("%s: '%s' missing", file, name);
			bad++;
			continue;
		}
		if (k >= p->n || t != &p->t[k]) {
			diag("%s: '%s' not in position %d", file, name, k);
			bad++;
		}
		k++;
		shape_str(t, shape, sizeof(shape));
		sha_hex(t->data, t->nbytes, hex);
		if (strcmp(fd_dtype_name(t->dtype), fd_table_get(g, r, cd)) || strcmp(shape, fd_table_get(g, r, cs)) ||
		    strcmp(hex, fd_table_get(g, r, ch))) {
			diag("%s: '%s': got %s [%s] %.12s, want %s [%s] %.12s", file, name, fd_dtype_name(t->dtype),
			     shape, hex, fd_table_get(g, r, cd), fd_table_get(g, r, cs), fd_table_get(g, r, ch));
			bad++;
		}
		if (strcmp(fd_table_get(g, r, c32), "-") != 0) {
			struct fd_err e = {{0}};
			float *f = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
			if (fd_pth_to_f32(t, f, t->numel, &e) < 0) {
				diag("%s: '%s': %s", file, name, e.msg);
				bad++;
			} else {
				sha_hex(f, (size_t)t->numel * sizeof(float), hex);
				if (strcmp(hex, fd_table_get(g, r, c32))) {
					diag("%s: '%s': float32 conversion differs", file, name);
					bad++;
				}
			}
			free(f);
		}
	}
	if (k != p->n) {
		diag("%s: %d tensors read, %d expected", file, p->n, k);
		bad++;
	}
	return bad;
}

int main(void)
{
	struct fd_err e = {{0}};
	struct fd_table g, h, sk;
	struct fd_pth p;
	const char *b = getenv("FD_BUILD");
	snprintf(dir, sizeof(dir), "%s/ref/pth", b ? b : "build");

	if (!ok(fd_table_read(&g, fx("good.tsv"), &e) == 0 && fd_table_read(&h, fx("hostile.tsv"), &e) == 0 &&
			fd_table_read(&sk, fx("skipped.tsv"), &e) == 0,
		"fixtures present (%s)", e.msg))
		return tap_done();

	/* every good file, tensor by tensor */
	int cf = fd_table_col(&g, "file");
	for (size_t r = 0; r < g.nrow; r++) {
		const char *file = fd_table_get(&g, r, cf);
		if (r && strcmp(file, fd_table_get(&g, r - 1, cf)) == 0)
			continue;
		int rc = fd_pth_load(&p, fx(file), &e);
		if (!ok(rc == 0, "%s loads: %s", file, rc ? e.msg : "ok"))
			continue;
		enum fd_pth_format want = strstr(file, "legacy") ? FD_PTH_LEGACY : FD_PTH_ZIP;
		int bad = check_file(&g, file, &p);
		ok(bad == 0 && p.format == want, "%s: %d tensors match torch (dtype, shape, bytes, float32)%s", file,
		   p.n, p.format == want ? "" : "; wrong format");
		fd_pth_free(&p);
	}

	ok(fd_pth_load(&p, fx("empty_dict.pth"), &e) == 0 && p.n == 0 && p.nskipped == 0, "empty state dict");
	fd_pth_free(&p);

	/* a checkpoint: non-tensor values are listed, not loaded */
	ok(fd_pth_load(&p, fx("nested.pth"), &e) == 0, "nested checkpoint loads");
	int nsk = 0;
	for (size_t r = 0; r < sk.nrow; r++)
		for (int i = 0; i < p.nskipped; i++)
			nsk += strcmp(p.skipped[i], fd_table_get(&sk, r, 1)) == 0;
	ok(nsk == (int)sk.nrow && p.nskipped == (int)sk.nrow, "skipped keys listed: %d of %zu", nsk, sk.nrow);
	ok(fd_pth_find(&p, "model.0.weight") && !fd_pth_find(&p, "0.weight"), "nested names joined with '.'");
	fd_pth_free(&p);

	/* a hand-built file of the hostile files' shape loads (so they fail for their one flaw) */
	ok(fd_pth_load(&p, fx("crafted_ok.pth"), &e) == 0 && p.n == 1 && p.t[0].ndim == 2 &&
		   ((float *)p.t[0].data)[3] == 1234.5f,
	   "crafted file loads%s%s", p.n ? "" : ": ", p.n ? "" : e.msg);
	fd_pth_free(&p);

	/* hostile files: refused, with the file named and the reason */
	for (size_t r = 0; r < h.nrow; r++) {
		const char *file = fd_table_get(&h, r, 0), *want = fd_table_get(&h, r, 1);
		char prefix[8300];
		snprintf(prefix, sizeof(prefix), "cannot read '%s': ", fx(file));
		int rc = fd_pth_load(&p, fx(file), &e);
		ok(rc < 0 && strncmp(e.msg, prefix, strlen(prefix)) == 0 && strstr(e.msg, want) && p.n == 0 &&
			   p.t == NULL,
		   "%s refused: %s", file, rc < 0 ? e.msg + strlen(prefix) : "loaded");
	}
	ok(fd_pth_load(&p, fx("no-such.pth"), &e) < 0 && strstr(e.msg, "cannot open") &&
		   strstr(e.msg, "no-such.pth"),
	   "missing file: %s", e.msg);

	/* a pickle of a million Nones: refused before it costs memory */
	size_t big = (1u << 20) + 8;
	unsigned char *nn = malloc(big);
	memset(nn, 'N', big);
	nn[0] = 0x80;
	nn[1] = 2;
	nn[big - 1] = '.';
	ok(fd_pth_parse(&p, nn, big, "n.pth", &e) < 0 && strstr(e.msg, "pickle 1: more than 1048576 pickle objects"),
	   "object cap: %s", e.msg);
	free(nn);

	/* every truncation of a small file in each format is refused */
	const char *small[] = {"small_legacy.pth", "small_zip.pth"};
	for (int f = 0; f < 2; f++) {
		FILE *fp = fopen(fx(small[f]), "rb");
		static unsigned char buf[1 << 16];
		size_t n = fp ? fread(buf, 1, sizeof(buf), fp) : 0;
		if (fp)
			fclose(fp);
		size_t refused = 0;
		for (size_t len = 0; len < n; len++) {
			unsigned char *cp = malloc(len ? len : 1); /* exact size: ASan sees overreads */
			memcpy(cp, buf, len);
			if (fd_pth_parse(&p, cp, len, "t", &e) < 0)
				refused++;
			fd_pth_free(&p);
			free(cp);
		}
		ok(n > 0 && refused == n, "%s: all %zu truncations refused (%zu)", small[f], n, refused);
		/* flipping any one byte never crashes; a refusal always carries a message */
		int incoherent = 0, loaded = 0;
		for (size_t i = 0; i < n; i++) {
			unsigned char *cp = malloc(n);
			memcpy(cp, buf, n);
			cp[i] ^= 0xa5;
			e.msg[0] = 0;
			int rc = fd_pth_parse(&p, cp, n, "t", &e);
			if (rc < 0 ? strncmp(e.msg, "cannot read 't': ", 17) != 0 || p.n : p.n > 1)
				incoherent++;
			loaded += rc == 0;
			fd_pth_free(&p);
			free(cp);
		}
		ok(incoherent == 0, "%s: %zu one-byte corruptions handled (%d still load)", small[f], n, loaded);
	}

	/* conversions refused where they make no sense */
	ok(fd_pth_load(&p, fx("zip.pth"), &e) == 0, "zip.pth again");
	const struct fd_pth_tensor *t = fd_pth_find(&p, "i64");
	float f8[8];
	ok(t && fd_pth_to_f32(t, f8, t->numel, &e) < 0 && strstr(e.msg, "'i64' is I64, not floating point"),
	   "to_f32 of an int tensor: %s", e.msg);
	t = fd_pth_find(&p, "f16");
	ok(t && fd_pth_to_f32(t, f8, 3, &e) < 0 && strstr(e.msg, "has 8 elements, not 3"), "to_f32 count: %s",
	   e.msg);
	ok(t && fd_pth_to_f32(t, f8, 8, &e) == 0 && f8[2] == 65504.0f && f8[5] == INFINITY &&
		   f8[3] == 5.9604644775390625e-08f && signbit(f8[7]),
	   "half: max, inf, smallest subnormal, -0");
	fd_pth_free(&p);
	fd_pth_free(&p); /* twice: no-op on a zeroed p */

	fd_table_free(&g);
	fd_table_free(&h);
	fd_table_free(&sk);
	return tap_done();
}

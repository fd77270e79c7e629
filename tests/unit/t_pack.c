/* t_pack: lib/data/fd_pack on hand-made images in a temporary folder: the
 * sidecar name rule; select, make and commit a pack, then read it back with
 * fd_pack_open (pixels of S x S PNGs packed at S are the PNGs' own, labels,
 * `row`, metadata, the input's hash); failing and skipped rows; an uncommitted
 * pack leaves no file; the reader refuses a sidecar whose row count or `row`
 * column disagrees with the tensors, naming the file. Pixel equality with
 * Pillow for every geometry is tests/tools/pack.t's job. */
#include "core/fd_sha256.h"
#include "core/fd_table.h"
#include "data/fd_pack.h"
#include "io/fd_image.h"
#include "tap.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		printf("Bail out! cannot write '%s'\n", path);
		exit(1);
	}
}

static void write_text(const char *name, const char *s)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	write_file(p, s, strlen(s));
}

/* A w x h RGB image with a seeded, position-dependent pattern. */
static void make_image(struct fd_image *im, int w, int h, unsigned seed)
{
	struct fd_err e;
	if (fd_image_alloc(im, w, h, &e) != 0) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < (size_t)w * h * 3; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		im->px[i] = (uint8_t)(x >> 24);
	}
}

static void save(const struct fd_image *im, const char *name)
{
	char p[512];
	struct fd_err e;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	if (fd_image_save(im, p, 90, &e) != 0) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
}

static int count_files(void)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."));
	if (d)
		closedir(d);
	return n;
}

static void sidecar(void)
{
	static const char *good[][2] = {
		{"pack.safetensors", "pack.tsv"},
		{"dir/p.224.safetensors", "dir/p.224.tsv"},
		{"/a/b/x.safetensors", "/a/b/x.tsv"},
	};
	for (int i = 0; i < 3; i++) {
		char *t = NULL;
		struct fd_err e = {{0}};
		int rc = fd_pack_sidecar(good[i][0], &t, &e);
		ok(rc == 0 && t && strcmp(t, good[i][1]) == 0, "sidecar of '%s' is '%s' (%s)", good[i][0],
		   good[i][1], t ? t : e.msg);
		free(t);
	}
	static const char *bad[] = {"pack.tsv", "pack.safetensor", ".safetensors", "dir/.safetensors",
				    "x.safetensors.tsv", ""};
	for (int i = 0; i < 6; i++) {
		char *t = (char *)1;
		struct fd_err e = {{0}};
		int rc = fd_pack_sidecar(bad[i], &t, &e);
		char want[128];
		snprintf(want, sizeof want, "'%s' must be a file name ending in .safetensors", bad[i]);
		ok(rc < 0 && t == NULL && strcmp(e.msg, want) == 0, "'%s' refused: %s", bad[i], e.msg);
	}
}

/* Pack the folder's images, read the pack back and check it. */
static void round_trip(void)
{
	int S = 16;
	struct fd_image a, b, c, big;
	make_image(&a, S, S, 1);
	make_image(&b, S, S, 2);
	make_image(&c, S, S, 3);
	make_image(&big, 64, 40, 4);
	save(&a, "a.png");
	save(&b, "b.png");
	save(&c, "c.png");
	save(&big, "big.jpg");
	write_text("empty.jpg", "");
	/* line 2 a, 3 bad status, 4 empty file, 5 filtered out, 6 b, 7 big jpeg, 8 c */
	const char *tsv = "path\tlabel\tstatus\tfold\n"
			  "a.png\t0\tok\t0\n"
			  "b.png\t1\tbad:x\t0\n"
			  "empty.jpg\t1\tok\t1\n"
			  "c.png\t1\tok\t2\n"
			  "b.png\t1\tok\t1\n"
			  "big.jpg\t0\tok\t1\n"
			  "c.png\t1\tok\t0\n";
	write_text("in.tsv", tsv);
	char in[512], out[512], side[512];
	snprintf(in, sizeof in, "%s/in.tsv", dir);
	snprintf(out, sizeof out, "%s/p.safetensors", dir);
	snprintf(side, sizeof side, "%s/p.tsv", dir);

	struct fd_only only;
	struct fd_err e = {{0}};
	if (fd_only_parse(&only, "fold=0,1", &e) != 0) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
	struct fd_pack_opts o = {.root = dir, .size = S, .geom = FD_GEOM_CENTER, .margin = 0.2,
				 .threads = 1, .only = &only, .nonly = 1, .tool = "t_pack",
				 .cmdline = "t_pack round_trip"};
	struct fd_pack_input pi;
	int rc = fd_pack_select(&pi, in, &o, &e);
	ok(rc == 0 && pi.n == 5 && pi.not_ok == 1 && pi.filtered == 1, "select: 5 rows, 1 not ok, 1 filtered (%s)",
	   rc ? e.msg : "ok");
	if (rc)
		return;
	char sha[65];
	ok(fd_sha256_file(in, sha, &e) == 0 && strcmp(sha, pi.sha256) == 0, "input hash is the file's SHA-256");

	/* made but never committed: nothing stays behind */
	int before = count_files();
	struct fd_pack_made m;
	rc = fd_pack_make(&m, &pi, &o, out, NULL, &e);
	ok(rc == 0 && m.packed == 4 && m.nfail == 1, "make: 4 packed, 1 failed (%s)", rc ? e.msg : "ok");
	fd_pack_made_free(&m);
	ok(count_files() == before && access(out, F_OK) != 0, "an uncommitted pack leaves no file");

	rc = fd_pack_make(&m, &pi, &o, out, NULL, &e);
	ok(rc == 0 && m.nfail == 1 && m.fail_line[0] == 4 && strstr(m.fail_msg[0], "empty.jpg': empty file"),
	   "the empty file is reported with its line: %zu: %s", m.nfail ? m.fail_line[0] : 0,
	   m.nfail ? m.fail_msg[0] : "none");
	ok(rc == 0 && fd_pack_commit(&m, out, &e) == 0, "commit (%s)", e.msg);
	fd_pack_made_free(&m);
	fd_pack_input_free(&pi);
	fd_only_free(&only, 1);

	struct fd_pack p;
	rc = fd_pack_open(&p, out, 1, &e);
	ok(rc == 0 && p.n == 4 && p.S == S && strcmp(p.tsv, side) == 0, "read back: 4 images of %d, sidecar %s (%s)",
	   S, p.tsv ? p.tsv : "-", rc ? e.msg : "ok");
	if (rc)
		return;
	static const uint8_t want_label[4] = {0, 1, 0, 1};
	static const char *want_path[4] = {"a.png", "b.png", "big.jpg", "c.png"};
	int pc = fd_table_col(&p.tab, "path"), fc = fd_table_col(&p.tab, "fold"), rcol = fd_table_col(&p.tab, "row");
	int good = pc >= 0 && fc >= 0 && rcol == p.tab.ncol - 1 && p.tab.ncol == 5;
	for (int i = 0; i < 4 && good; i++)
		good = p.labels[i] == want_label[i] && strcmp(fd_table_get(&p.tab, i, pc), want_path[i]) == 0;
	ok(good, "labels, paths and every input column plus `row`, in input order");
	/* an S x S PNG packed at S is its own pixels, whatever the geometry code does around it */
	size_t isz = (size_t)S * S * 3;
	const struct fd_image *same[3] = {&a, &b, &c};
	const int at[3] = {0, 1, 3};
	int eq = 0;
	for (int k = 0; k < 3; k++)
		eq += memcmp(p.images + isz * at[k], same[k]->px, isz) == 0;
	ok(eq == 3, "S x S PNGs packed at S keep their pixels (%d of 3)", eq);
	ok(memcmp(p.images, b.px, isz) != 0, "negative control: image 0 differs from b.png");
	const char *kind = fd_st_meta(&p.st, "fd.kind"), *size = fd_st_meta(&p.st, "fd.size"),
		   *geom = fd_st_meta(&p.st, "fd.geometry"), *src = fd_st_meta(&p.st, "fd.source_sha256"),
		   *tool = fd_st_meta(&p.st, "fd.tool"), *mar = fd_st_meta(&p.st, "fd.margin");
	ok(kind && strcmp(kind, "pack") == 0 && size && strcmp(size, "16") == 0 && geom &&
		   strcmp(geom, "center") == 0 && src && strcmp(src, sha) == 0 && tool &&
		   strcmp(tool, "t_pack") == 0 && !mar,
	   "metadata: kind, size, geometry, source hash, tool; no margin outside the face geometry");
	fd_pack_close(&p);
	ok(fd_pack_open(&p, out, 0, &e) < 0 && strstr(e.msg, "label of row 1 is 1, not in 0..0"),
	   "labels above max_label refused: %s", e.msg);

	/* the sidecar must be the pack's */
	write_text("p.tsv", "path\tlabel\trow\na.png\t0\t0\n");
	ok(fd_pack_open(&p, out, 1, &e) < 0 && strstr(e.msg, "p.tsv' has 1 rows, the pack 4 images") &&
		   strstr(e.msg, side) && p.tsv == NULL,
	   "row count mismatch refused, naming the sidecar: %s", e.msg);
	write_text("p.tsv", "path\trow\na\t0\nb\t2\nc\t1\nd\t3\n");
	ok(fd_pack_open(&p, out, 1, &e) < 0 && strstr(e.msg, "p.tsv': line 3: 'row' is '2', expected 1"),
	   "rows out of order refused: %s", e.msg);
	/* labels 0 1 0 1 in the tensor: the sidecar must say the same */
	write_text("p.tsv", "path\tlabel\trow\na\t0\t0\nb\t1\t1\nc\t0\t2\nd\t1\t3\n");
	rc = fd_pack_open(&p, out, 1, &e);
	ok(rc == 0, "a sidecar whose labels agree is taken (%s)", rc ? e.msg : "ok");
	fd_pack_close(&p);
	write_text("p.tsv", "path\tlabel\trow\na\t0\t0\nb\t1\t1\nc\t0\t2\nd\t0\t3\n");
	ok(fd_pack_open(&p, out, 1, &e) < 0 &&
		   strstr(e.msg, "p.tsv': line 5: label is '0', the pack's 'label' tensor has 1"),
	   "a sidecar label that disagrees with the tensor refused, naming line and both values: %s", e.msg);
	write_text("p.tsv", "path\tlabel\trow\na\t0\t0\nb\t1x\t1\nc\t0\t2\nd\t1\t3\n");
	ok(fd_pack_open(&p, out, 1, &e) < 0 && strstr(e.msg, "p.tsv': line 3: label is '1x'"),
	   "a sidecar label that is not an integer refused: %s", e.msg);
	write_text("p.tsv", "path\trow\na\t0\nb\t1\nc\t2\nd\t3\n");
	ok(fd_pack_open(&p, out, 1, &e) < 0 && strstr(e.msg, "p.tsv': missing column 'label'"),
	   "no `label` column refused: %s", e.msg);
	write_text("p.tsv", "path\nA\nb\nc\nd\n");
	ok(fd_pack_open(&p, out, 1, &e) < 0 && strstr(e.msg, "p.tsv': missing column 'row'"),
	   "no `row` column refused: %s", e.msg);
	unlink(side);
	ok(fd_pack_open(&p, out, 1, &e) < 0 && strstr(e.msg, "p.tsv"), "missing sidecar refused: %s", e.msg);
	ok(fd_pack_open(&p, in, 1, &e) < 0 && strstr(e.msg, "in.tsv' must be a file name ending in"),
	   "a name without .safetensors refused: %s", e.msg);
	unlink(out);
	fd_image_free(&a);
	fd_image_free(&b);
	fd_image_free(&c);
	fd_image_free(&big);
}

/* Errors of the input, each naming the file. */
static void bad_input(void)
{
	char in[512];
	struct fd_err e = {{0}};
	struct fd_pack_input pi;
	struct fd_pack_opts o = {.root = dir, .size = 8, .geom = FD_GEOM_CENTER, .threads = 1};
	snprintf(in, sizeof in, "%s/bad.tsv", dir);
	write_text("bad.tsv", "path\tstatus\na.png\tok\n");
	ok(fd_pack_select(&pi, in, &o, &e) < 0 && strstr(e.msg, "bad.tsv': missing column 'label'"),
	   "missing label: %s", e.msg);
	write_text("bad.tsv", "path\tlabel\na.png\t0\nb.png\t256\n");
	ok(fd_pack_select(&pi, in, &o, &e) < 0 && strstr(e.msg, "bad.tsv': line 3: label '256'"),
	   "label out of range names the line: %s", e.msg);
	o.geom = FD_GEOM_FACE;
	write_text("bad.tsv", "path\tlabel\na.png\t0\n");
	ok(fd_pack_select(&pi, in, &o, &e) < 0 && strstr(e.msg, "missing column 'face_x1'"),
	   "face geometry needs face columns: %s", e.msg);
	o.geom = FD_GEOM_CENTER;
	write_text("bad.tsv", "path\tlabel\tstatus\na.png\t0\tbad:x\n");
	ok(fd_pack_select(&pi, in, &o, &e) < 0 && strstr(e.msg, "no rows to pack (1 rows, 1 not ok"),
	   "nothing to pack: %s", e.msg);
	write_text("bad.tsv", "path\tlabel\nempty.jpg\t0\nnone.png\t1\n");
	char out[512];
	snprintf(out, sizeof out, "%s/q.safetensors", dir);
	struct fd_pack_made m;
	int before = count_files();
	int rc = fd_pack_select(&pi, in, &o, &e);
	ok(rc == 0 && fd_pack_make(&m, &pi, &o, out, NULL, &e) < 0 &&
		   strstr(e.msg, "bad.tsv': no image could be decoded (2 failed)") && m.nfail == 2 &&
		   strstr(m.fail_msg[1], "none.png"),
	   "every row failing is an error that still lists the rows: %s", e.msg);
	fd_pack_made_free(&m);
	fd_pack_input_free(&pi);
	ok(count_files() == before, "and leaves no file");
}

/* A JPEG cut short must not spoil the next image decoded on the same thread:
 * one thread packs cut, good, cut short, good; both goods must equal the good
 * image packed alone. */
static void after_a_bad_file(void)
{
	struct fd_image g;
	make_image(&g, 48, 40, 5);
	save(&g, "g.jpg");
	fd_image_free(&g);
	char p[512];
	snprintf(p, sizeof p, "%s/g.jpg", dir);
	FILE *f = fopen(p, "rb");
	uint8_t buf[4096];
	size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
	if (f)
		fclose(f);
	snprintf(p, sizeof p, "%s/cut1.jpg", dir);
	write_file(p, buf, 300 < n ? 300 : n); /* inside the headers */
	snprintf(p, sizeof p, "%s/cut2.jpg", dir);
	write_file(p, buf, n / 2);             /* inside the scan */
	write_text("seq.tsv", "path\tlabel\ncut1.jpg\t1\ng.jpg\t0\ncut2.jpg\t1\ng.jpg\t0\n");
	write_text("one.tsv", "path\tlabel\ng.jpg\t0\n");
	struct fd_pack_opts o = {.root = dir, .size = 12, .geom = FD_GEOM_CENTER, .threads = 1};
	const char *name[2] = {"seq", "one"};
	struct fd_pack_made m[2];
	struct fd_err e = {{0}};
	int rc = 0;
	memset(m, 0, sizeof m);
	for (int k = 0; k < 2; k++) {
		char in[512], out[512];
		struct fd_pack_input pi;
		snprintf(in, sizeof in, "%s/%s.tsv", dir, name[k]);
		snprintf(out, sizeof out, "%s/%s.safetensors", dir, name[k]);
		if (fd_pack_select(&pi, in, &o, &e) != 0 || fd_pack_make(&m[k], &pi, &o, out, NULL, &e) != 0)
			rc = -1;
		if (pi.n)
			fd_pack_input_free(&pi);
	}
	ok(rc == 0 && n > 600 && m[0].nfail == 2 && m[0].packed == 2 && m[1].packed == 1,
	   "2 of 4 packed after 2 cut files (%s; %zu failed%s%s)", rc ? e.msg : "ok", m[0].nfail,
	   m[0].nfail > 1 ? "; second: " : "", m[0].nfail > 1 ? m[0].fail_msg[1] : "");
	if (rc == 0 && m[0].packed == 2) {
		const uint8_t *seq = fd_stw_data(&m[0].w, 0), *one = fd_stw_data(&m[1].w, 0);
		size_t isz = 12 * 12 * 3;
		ok(memcmp(seq, one, isz) == 0 && memcmp(seq + isz, one, isz) == 0,
		   "each good image after a cut one equals it packed alone");
	}
	fd_pack_made_free(&m[0]);
	fd_pack_made_free(&m[1]);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/t_pack.XXXXXX");
	if (!mkdtemp(dir)) {
		printf("Bail out! cannot make a temporary folder\n");
		return 1;
	}
	sidecar();
	round_trip();
	bad_input();
	after_a_bad_file();
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cannot remove %s", dir);
	return tap_done();
}

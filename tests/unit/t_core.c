/* t_core: TSV tables, atomic output, Philox, SHA-256. Philox and SHA-256 are
 * checked against their published known-answer vectors. */
#include "core/fd_out.h"
#include "core/fd_rng.h"
#include "core/fd_sha256.h"
#include "core/fd_table.h"
#include "tap.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse(const char *s, struct fd_table *t, struct fd_err *e)
{
	return fd_table_parse(t, s, strlen(s), "x.tsv", e);
}

int main(void)
{
	struct fd_err e = {{0}};
	struct fd_table t;

	ok(parse("a\tb\n1\t2\n3\t\n", &t, &e) == 0, "parse a small table");
	ok(t.ncol == 2 && t.nrow == 2, "2 columns, 2 rows");
	ok(strcmp(fd_table_get(&t, 1, 0), "3") == 0 && strcmp(fd_table_get(&t, 1, 1), "") == 0,
	   "cells by position, empty cell is empty string");
	ok(fd_table_col(&t, "b") == 1 && fd_table_col(&t, "z") == -1, "columns by name");
	int c = fd_table_add_col(&t, "new", &e);
	ok(c == 2 && fd_table_set(&t, 0, c, "v", &e) == 0, "add a column");
	ok(fd_table_set(&t, 0, c, "a\tb", &e) < 0 && strstr(e.msg, "contains a tab"), "tab refused: %s",
	   e.msg);
	ok(fd_table_set(&t, 0, c, "a\nb", &e) < 0 && strstr(e.msg, "newline"), "newline refused");
	ok(fd_table_need(&t, "fold", &e) < 0 && strcmp(e.msg, "'x.tsv': missing column 'fold'") == 0,
	   "missing column message: %s", e.msg);
	fd_table_free(&t);

	ok(parse("a\tb\n1\t2\n3\n", &t, &e) < 0 &&
		   strcmp(e.msg, "cannot read 'x.tsv': line 3: expected 2 fields, found 1") == 0,
	   "field count error names file and line: %s", e.msg);
	ok(parse("", &t, &e) < 0 && strstr(e.msg, "empty file"), "empty file refused");
	ok(parse("a\ta\n", &t, &e) < 0 && strstr(e.msg, "duplicate column 'a'"), "duplicate column");
	ok(parse("a\n\xff\n", &t, &e) < 0 && strstr(e.msg, "line 2: invalid UTF-8"), "bad UTF-8: %s",
	   e.msg);
	ok(parse("a\r\nx\r\n", &t, &e) == 0 && strcmp(fd_table_get(&t, 0, 0), "x") == 0, "CRLF accepted");
	fd_table_free(&t);
	ok(parse("a\tb\n1\t2", &t, &e) == 0 && t.nrow == 1, "no final newline");
	fd_table_free(&t);

	/* grow rows and columns past the initial capacities */
	fd_table_init(&t);
	for (int i = 0; i < 40; i++) {
		char nm[16];
		snprintf(nm, sizeof nm, "c%d", i);
		fd_table_add_col(&t, nm, &e);
		if (i == 3)
			for (int r = 0; r < 1000; r++)
				fd_table_setf(&t, fd_table_add_row(&t), 0, &e, "%d", r);
	}
	ok(t.ncol == 40 && t.nrow == 1000 && strcmp(fd_table_get(&t, 999, 0), "999") == 0 &&
		   strcmp(fd_table_get(&t, 999, 39), "") == 0,
	   "grow to 40 columns x 1000 rows");

	/* --only filters */
	struct fd_only o;
	ok(fd_only_parse(&o, "c0=5,7", &e) == 0 && fd_only_bind(&o, 1, &t, &e) == 0, "parse filter");
	int hits = 0;
	for (size_t r = 0; r < t.nrow; r++)
		hits += fd_only_match(&o, 1, &t, r);
	ok(hits == 2, "filter matches 2 rows");
	fd_only_free(&o, 1);
	ok(fd_only_parse(&o, "c0", &e) < 0, "filter without '=' refused");

	/* atomic save */
	char dir[] = "/tmp/fdcoreXXXXXX";
	ok(mkdtemp(dir) != NULL, "scratch dir");
	char path[256];
	snprintf(path, sizeof path, "%s/out.tsv", dir);
	ok(fd_table_save(&t, path, &e) == 0, "save");
	struct fd_table u;
	ok(fd_table_read(&u, path, &e) == 0 && u.nrow == 1000 && u.ncol == 40, "round trip");
	fd_table_free(&u);
	struct fd_out out;
	ok(fd_out_open(&out, path, &e) == 0, "open over an existing file");
	fputs("partial", out.f);
	fd_out_abort(&out);
	ok(fd_table_read(&u, path, &e) == 0 && u.nrow == 1000, "abort leaves the old file intact");
	fd_table_free(&u);
	unlink(path);
	rmdir(dir);
	snprintf(path, sizeof path, "%s/nodir/x.tsv", dir);
	ok(fd_table_save(&t, path, &e) < 0 && strstr(e.msg, "cannot write"), "missing dir: %s", e.msg);
	fd_table_free(&t);

	/* Philox4x32-10 known answers (Random123 kat_vectors). */
	uint32_t b[4];
	fd_philox(0, 0, 0, b);
	ok(b[0] == 0x6627e8d5 && b[1] == 0xe169c58d && b[2] == 0xbc57ac4c && b[3] == 0x9b00dbd8,
	   "philox zero vector: %08x %08x %08x %08x", b[0], b[1], b[2], b[3]);
	fd_philox(0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffffffffffull, b);
	ok(b[0] == 0x408f276d && b[1] == 0x41c83b0e && b[2] == 0xa20bc7c6 && b[3] == 0x6d5451fd,
	   "philox ones vector: %08x %08x %08x %08x", b[0], b[1], b[2], b[3]);
	struct fd_rng r;
	fd_rng_init(&r, 42, 7);
	double s = 0, s2 = 0;
	for (int i = 0; i < 100000; i++) {
		double u = fd_rng_uniform(&r);
		s += u;
		s2 += u * u;
	}
	ok(fabs(s / 1e5 - 0.5) < 0.01 && fabs(s2 / 1e5 - 1.0 / 3) < 0.01, "uniform moments");

	/* SHA-256 (FIPS 180-4 examples) */
	struct fd_sha256 h;
	char hex[65];
	fd_sha256_init(&h);
	fd_sha256_update(&h, "abc", 3);
	fd_sha256_hex(&h, hex);
	ok(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0, "sha256 abc");
	fd_sha256_init(&h);
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	fd_sha256_update(&h, m, strlen(m));
	fd_sha256_hex(&h, hex);
	ok(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0,
	   "sha256 two blocks");
	return tap_done();
}

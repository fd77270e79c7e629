/* t_safetensors: writer/reader round trips (in memory and mmap'ed create), layout
 * (64-byte data start, element alignment), and hostile headers, each refused with
 * a message naming the file and the tensor. Interop with the real Python package
 * is tests/tools/safetensors.t. */
#include "io/fd_safetensors.h"
#include "tap.h"

#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/t_st.XXXXXX";

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	*len = fread(b, 1, (size_t)n, f);
	fclose(f);
	return b;
}

/* A file image: 8-byte length, header text, then dlen bytes of 0xab. */
static size_t mk(char *buf, const char *hdr, size_t dlen)
{
	uint64_t hl = strlen(hdr);
	for (int i = 0; i < 8; i++)
		buf[i] = (char)(hl >> (8 * i));
	memcpy(buf + 8, hdr, hl);
	memset(buf + 8 + hl, 0xab, dlen);
	return 8 + hl + dlen;
}

/* Parse must fail with a message containing every one of the given parts. */
static void bad(const char *what, const char *hdr, size_t dlen, const char *p1, const char *p2)
{
	static char buf[4096];
	struct fd_err e = {{0}};
	struct fd_st s;
	size_t n = mk(buf, hdr, dlen);
	int rc = fd_st_parse(&s, buf, n, "h.safetensors", &e);
	ok(rc < 0 && strstr(e.msg, "cannot read 'h.safetensors'") && strstr(e.msg, p1) &&
		   (!p2 || strstr(e.msg, p2)) && s.n == 0 && s.t == NULL,
	   "%s refused: %s", what, e.msg);
}

static int count_files(void)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

int main(void)
{
	struct fd_err e = {{0}};
	if (!mkdtemp(dir))
		return 1;
	char p1[64], p2[64], p3[64];
	snprintf(p1, sizeof p1, "%s/a.safetensors", dir);
	snprintf(p2, sizeof p2, "%s/b.safetensors", dir);
	snprintf(p3, sizeof p3, "%s/c.safetensors", dir);

	/* dtype table */
	enum fd_dtype t;
	ok(fd_dtype_parse("BF16", &t) == 0 && t == FD_DT_BF16 && fd_dtype_size(t) == 2 &&
		   strcmp(fd_dtype_name(FD_DT_BOOL), "BOOL") == 0 && fd_dtype_parse("f32", &t) < 0,
	   "dtype names and sizes");

	/* round trip through fd_stw_write */
	uint8_t lab[5] = {1, 0, 1, 1, 0};
	float w[6] = {1.5f, -2, 3, 4, 5, 6.25f};
	int64_t step = -7;
	int64_t s_lab[] = {5}, s_w[] = {2, 3}, s_empty[] = {0, 4};
	struct fd_stw wr;
	fd_stw_init(&wr);
	ok(fd_stw_add(&wr, "label", FD_DT_U8, 1, s_lab, lab, &e) == 0 &&
		   fd_stw_add(&wr, "w", FD_DT_F32, 2, s_w, w, &e) == 0 &&
		   fd_stw_add(&wr, "step", FD_DT_I64, 0, NULL, &step, &e) == 0 &&
		   fd_stw_add(&wr, "empty", FD_DT_BOOL, 2, s_empty, NULL, &e) == 0 &&
		   fd_stw_meta(&wr, "fd.kind", "pack", &e) == 0 &&
		   fd_stw_meta(&wr, "note", "tab\there \"quoted\" é", &e) == 0,
	   "declare tensors and metadata");
	ok(fd_stw_add(&wr, "w", FD_DT_F32, 2, s_w, w, &e) < 0 && strstr(e.msg, "duplicate tensor 'w'"),
	   "duplicate tensor refused: %s", e.msg);
	ok(fd_stw_add(&wr, "__metadata__", FD_DT_F32, 2, s_w, w, &e) < 0, "__metadata__ as a name refused");
	ok(fd_stw_add(&wr, "bad\xff", FD_DT_F32, 2, s_w, w, &e) < 0, "non-UTF-8 name refused");
	int64_t huge[] = {INT64_MAX / 2, 3};
	ok(fd_stw_add(&wr, "huge", FD_DT_F32, 2, huge, NULL, &e) < 0 && strstr(e.msg, "overflows"),
	   "overflowing shape refused: %s", e.msg);
	ok(fd_stw_meta(&wr, "fd.kind", "x", &e) < 0 && strstr(e.msg, "duplicate metadata key"),
	   "duplicate metadata key refused");
	ok(fd_stw_write(&wr, p1, &e) == 0, "write: %s", e.msg);
	fd_stw_free(&wr);

	struct fd_st s;
	ok(fd_st_open(&s, p1, &e) == 0, "read back: %s", e.msg);
	const struct fd_st_tensor *tl = fd_st_find(&s, "label"), *tw = fd_st_find(&s, "w"),
				  *ts = fd_st_find(&s, "step"), *te = fd_st_find(&s, "empty");
	ok(s.n == 4 && tl && tw && ts && te && !fd_st_find(&s, "nope"), "four tensors found by name");
	ok(tl && tl->dtype == FD_DT_U8 && tl->ndim == 1 && tl->shape[0] == 5 && tl->numel == 5 &&
		   memcmp(tl->data, lab, 5) == 0,
	   "u8 [5] bytes equal");
	ok(tw && tw->dtype == FD_DT_F32 && tw->ndim == 2 && tw->shape[1] == 3 && tw->nbytes == 24 &&
		   memcmp(tw->data, w, 24) == 0,
	   "f32 [2,3] bytes equal");
	ok(ts && ts->ndim == 0 && ts->numel == 1 && *(const int64_t *)ts->data == -7, "0-dim i64");
	ok(te && te->numel == 0 && te->nbytes == 0 && te->shape[0] == 0 && te->shape[1] == 4,
	   "empty [0,4] tensor");
	ok(fd_st_meta(&s, "fd.kind") && strcmp(fd_st_meta(&s, "fd.kind"), "pack") == 0 &&
		   strcmp(fd_st_meta(&s, "note"), "tab\there \"quoted\" é") == 0 && !fd_st_meta(&s, "x"),
	   "metadata round trip (escapes, UTF-8)");
	uint64_t hl;
	memcpy(&hl, s.map, 8);
	ok((8 + hl) % 64 == 0 && ((const char *)s.map)[8 + hl - 1] == ' ', "data starts 64-byte aligned (header %llu bytes, space padded)",
	   (unsigned long long)hl);
	int aligned = 1;
	for (int i = 0; i < s.n; i++)
		aligned &= ((uintptr_t)s.t[i].data % fd_dtype_size(s.t[i].dtype)) == 0;
	ok(aligned && tw && ts && (const char *)ts->data < (const char *)tl->data &&
		   (const char *)tw->data < (const char *)tl->data,
	   "every tensor aligned to its element size (8-byte types first)");
	for (int i = 1; i < s.n; i++)
		aligned &= s.t[i - 1].data <= s.t[i].data;
	ok(aligned, "tensors listed in offset order");
	fd_st_close(&s);
	fd_st_close(&s);
	ok(s.n == 0 && s.map == NULL, "close twice is harmless");

	/* the same through create / data / commit: byte-identical file */
	fd_stw_init(&wr);
	fd_stw_add(&wr, "label", FD_DT_U8, 1, s_lab, NULL, &e);
	fd_stw_add(&wr, "w", FD_DT_F32, 2, s_w, NULL, &e);
	fd_stw_add(&wr, "step", FD_DT_I64, 0, NULL, NULL, &e);
	fd_stw_add(&wr, "empty", FD_DT_BOOL, 2, s_empty, NULL, &e);
	fd_stw_meta(&wr, "fd.kind", "pack", &e);
	fd_stw_meta(&wr, "note", "tab\there \"quoted\" é", &e);
	ok(fd_stw_create(&wr, p2, &e) == 0, "create mapped: %s", e.msg);
	ok(access(p2, F_OK) != 0, "final name absent before commit");
	memcpy(fd_stw_data(&wr, 0), lab, 5);
	memcpy(fd_stw_data(&wr, 1), w, 24);
	memcpy(fd_stw_data(&wr, 2), &step, 8);
	ok(fd_stw_data(&wr, 4) == NULL && fd_stw_data(&wr, -1) == NULL, "fd_stw_data out of range is NULL");
	ok(fd_stw_commit(&wr, &e) == 0, "commit: %s", e.msg);
	fd_stw_free(&wr);
	size_t la, lb;
	char *a = slurp(p1, &la), *b = slurp(p2, &lb);
	ok(a && b && la == lb && memcmp(a, b, la) == 0, "mapped writer output equals fd_stw_write's (%zu bytes)", la);
	free(a);

	/* abandoned create leaves nothing */
	int before = count_files();
	fd_stw_init(&wr);
	fd_stw_add(&wr, "w", FD_DT_F32, 2, s_w, NULL, &e);
	ok(fd_stw_create(&wr, p3, &e) == 0 && count_files() == before + 1, "temporary exists while filling");
	fd_stw_free(&wr);
	ok(count_files() == before && access(p3, F_OK) != 0, "free without commit removes the temporary");
	fd_stw_init(&wr);
	fd_stw_add(&wr, "w", FD_DT_F32, 2, s_w, NULL, &e);
	ok(fd_stw_write(&wr, p3, &e) < 0 && strstr(e.msg, "tensor 'w' has no data") && access(p3, F_OK) != 0,
	   "write without data refused, no file: %s", e.msg);
	fd_stw_free(&wr);

	/* truncated and zero-byte files */
	FILE *f = fopen(p3, "wb");
	fwrite(b, 1, lb - 3, f);
	fclose(f);
	ok(fd_st_open(&s, p3, &e) < 0 && strstr(e.msg, p3) && strstr(e.msg, "tensor 'label'") &&
		   strstr(e.msg, "past the end"),
	   "truncated file: %s", e.msg);
	f = fopen(p3, "wb");
	fwrite(b, 1, 40, f);
	fclose(f);
	ok(fd_st_open(&s, p3, &e) < 0 && strstr(e.msg, "header length") && strstr(e.msg, "past the end of the file"),
	   "file cut inside the header: %s", e.msg);
	f = fopen(p3, "wb");
	fclose(f);
	ok(fd_st_open(&s, p3, &e) < 0 && strstr(e.msg, p3) && strstr(e.msg, "0 bytes"), "zero-byte file: %s",
	   e.msg);
	ok(fd_st_open(&s, dir, &e) < 0 && strstr(e.msg, "not a regular file"), "directory refused");
	unlink(p3);
	ok(fd_st_open(&s, p3, &e) < 0 && strstr(e.msg, "No such file"), "missing file: %s", e.msg);
	free(b);

	/* hostile headers */
	{
		static char buf[64];
		size_t n = mk(buf, "{}", 0);
		buf[0] = 100;
		struct fd_st s2;
		ok(fd_st_parse(&s2, buf, n, "h.safetensors", &e) < 0 && strstr(e.msg, "header length 100 past the end"),
		   "header length past EOF: %s", e.msg);
		buf[0] = 2;
		buf[7] = (char)0x80;
		ok(fd_st_parse(&s2, buf, n, "h.safetensors", &e) < 0 && strstr(e.msg, "past the end"),
		   "header length near 2^64: %s", e.msg);
		n = mk(buf, "{}", 0);
		ok(fd_st_parse(&s2, buf, n, "h.safetensors", &e) == 0 && s2.n == 0, "empty header {} is a valid file");
		fd_st_close(&s2);
	}
	bad("offsets past the end", "{\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 4,
	    "tensor 'x'", "past the end of the data (4 bytes)");
	bad("offsets past 2^63", "{\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,18446744073709551615]}}", 8,
	    "header JSON", NULL);
	bad("shape product overflow",
	    "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
	    "tensor 'x'", "overflows");
	bad("byte size overflow",
	    "{\"x\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 0,
	    "tensor 'x'", "overflows");
	bad("dtype/size disagreement", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
	    "tensor 'x'", "hold 4 bytes but shape [2] of F32 needs 8");
	bad("overlapping tensors",
	    "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
	    "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
	    6, "tensor 'b' overlaps tensor 'a'", NULL);
	bad("two tensors on the same bytes",
	    "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
	    "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	    4, "overlaps", NULL);
	bad("gap between tensors",
	    "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
	    "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}",
	    6, "tensor 'b'", "2 unused bytes");
	bad("bytes after the last tensor", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 5,
	    "3 bytes after", NULL);
	bad("non-object JSON (array)", "[1,2]", 0, "not a JSON object", NULL);
	bad("non-object JSON (number)", "12", 0, "not a JSON object", NULL);
	bad("leading space", " {}", 0, "not a JSON object", NULL);
	bad("invalid JSON", "{\"a\":", 0, "header JSON: line 1", NULL);
	bad("duplicate key",
	    "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
	    "\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
	    0, "duplicate", NULL);
	bad("unknown dtype", "{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
	    "tensor 'x'", "unsupported dtype 'F8_E4M3'");
	bad("negative dim", "{\"x\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0,
	    "tensor 'x'", "shape entry 0");
	bad("fractional dim", "{\"x\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", 1,
	    "tensor 'x'", "shape entry 0");
	bad("too many dims", "{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
	    "tensor 'x'", "9 dimensions");
	bad("decreasing offsets", "{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,1]}}", 2,
	    "tensor 'x'", "decrease");
	bad("missing data_offsets", "{\"x\":{\"dtype\":\"U8\",\"shape\":[0]}}", 0, "tensor 'x'",
	    "missing 'data_offsets'");
	bad("unknown field", "{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"y\":1}}", 0,
	    "tensor 'x'", "unknown field 'y'");
	bad("entry not an object", "{\"x\":3}", 0, "tensor 'x'", "not an object");
	bad("metadata value not a string", "{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ 'k'", NULL);
	bad("metadata not an object", "{\"__metadata__\":[]}", 0, "__metadata__ is not an object", NULL);
	bad("invalid UTF-8 in header", "{\"\xc3\":{}}", 0, "header JSON", NULL);

	rmdir(dir);
	return tap_done();
}

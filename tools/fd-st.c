/* fd-st: list, check and rewrite safetensors files (packs, checkpoints), so a
 * person can see what a file holds without Python. */
#include "cli.h"
#include "core/fd_sha256.h"
#include "io/fd_safetensors.h"

#include <stdio.h>
#include <string.h>

static const char synopsis[] = "fd-st [--meta] [-o OUT.safetensors] FILE";
static const char help[] =
	"List the tensors of a safetensors FILE as TSV on stdout: name, dtype, shape\n"
	"(comma-separated, empty for a scalar), offset (within the data area), nbytes\n"
	"and the SHA-256 of the tensor's bytes. The whole header is validated first.\n"
	"  --meta      list the __metadata__ entries instead (key, value)\n"
	"  -o FILE     rewrite FILE through fd's writer (data 64-byte aligned, each\n"
	"              tensor aligned to its element size), keeping tensors and metadata\n"
	"Exit status: 0 ok, 1 bad file, 2 usage.\n";

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-st", synopsis, help);
	int meta = 0;
	const char *out = NULL;
	enum { O_META, O_OUT };
	static const struct cli_option opts[] = {
		[O_META] = { "--meta", CLI_FLAG },
		[O_OUT] = { "-o", CLI_VALUE },
	};
	const char *path = NULL, *v;
	int nfile = 0, k;
	struct cli_args args;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((k = cli_next(&args, &v)) != CLI_DONE) {
		switch (k) {
		case O_META: meta = 1; break;
		case O_OUT: out = v; break;
		default:
			path = v;
			nfile++;
		}
	}
	if (nfile != 1)
		cli_usage("expected one FILE");
	if (meta && out)
		cli_usage("--meta and -o do not combine");
	struct fd_err e = {{0}};
	struct fd_st s;
	cli_outputs((const char *[]){path}, 1, (const char *[]){out}, 1);
	if (fd_st_open(&s, path, &e) < 0)
		cli_fail(&e);
	if (out) {
		struct fd_stw w;
		fd_stw_init(&w);
		for (int i = 0; i < s.n && e.msg[0] == 0; i++)
			fd_stw_add(&w, s.t[i].name, s.t[i].dtype, s.t[i].ndim, s.t[i].shape, s.t[i].data, &e);
		for (int i = 0; i < s.nmeta && e.msg[0] == 0; i++)
			fd_stw_meta(&w, s.meta_key[i], s.meta_val[i], &e);
		if (e.msg[0] || fd_stw_write(&w, out, &e) < 0)
			cli_fail(&e);
		fd_stw_free(&w);
		fd_st_close(&s);
		return 0;
	}
	if (meta) {
		for (int i = 0; i < s.nmeta; i++) {
			if (strpbrk(s.meta_key[i], "\t\n") || strpbrk(s.meta_val[i], "\t\n"))
				cli_die("'%s': metadata '%s' holds a tab or newline, not listable as TSV",
					path, s.meta_key[i]);
		}
		printf("key\tvalue\n");
		for (int i = 0; i < s.nmeta; i++)
			printf("%s\t%s\n", s.meta_key[i], s.meta_val[i]);
	} else {
		printf("name\tdtype\tshape\toffset\tnbytes\tsha256\n");
		uint64_t hl = 0; /* the data area starts after 8 + header length bytes */
		for (int k = 7; k >= 0; k--)
			hl = hl << 8 | ((const unsigned char *)s.map)[k];
		const char *base = (const char *)s.map + 8 + hl;
		for (int i = 0; i < s.n; i++) {
			const struct fd_st_tensor *t = &s.t[i];
			struct fd_sha256 h;
			char hex[65];
			fd_sha256_init(&h);
			fd_sha256_update(&h, t->data, t->nbytes);
			fd_sha256_hex(&h, hex);
			printf("%s\t%s\t", t->name, fd_dtype_name(t->dtype));
			for (int d = 0; d < t->ndim; d++)
				printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
			printf("\t%zu\t%zu\t%s\n", (size_t)((const char *)t->data - base), t->nbytes, hex);
		}
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		cli_die("cannot write standard output");
	fd_st_close(&s);
	return 0;
}

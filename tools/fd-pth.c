/* fd-pth: list the tensors of a PyTorch .pt/.pth state dict, or convert it to
 * safetensors (so torchvision or facenet-pytorch weights can be inspected and
 * used without Python). Loading never runs code: see lib/io/fd_pth.h. */
#include "cli.h"
#include "core/fd_sha256.h"
#include "core/fd_version.h"
#include "io/fd_pth.h"
#include "io/fd_safetensors.h"

#include <libgen.h>
#include <stdio.h>
#include <string.h>

static const char synopsis[] = "fd-pth [-o OUT.safetensors] FILE";
static const char help[] =
	"Read the PyTorch state dict FILE (torch.save's zip format or the legacy\n"
	"format) and list its tensors as TSV on stdout: name, dtype, shape\n"
	"(comma-separated, empty for a scalar), nbytes and the SHA-256 of the\n"
	"tensor's bytes in C order. Nested dicts give dotted names; keys holding\n"
	"other values (numbers, strings) are reported on stderr and skipped. Only\n"
	"tensors, dicts and torch's rebuild functions are accepted: any other pickle\n"
	"global is refused, so no code from the file runs.\n"
	"  -o FILE     write the tensors to a safetensors FILE instead (names, dtypes,\n"
	"              shapes and bytes kept; metadata fd.source, fd.source_sha256,\n"
	"              fd.tool, fd.cmdline). The output is atomic.\n"
	"  -q          no messages about skipped keys\n"
	"Exit status: 0 ok, 1 bad file, 2 usage.\n";

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-pth", synopsis, help);
	const char *out = NULL;
	enum { O_OUT };
	static const struct cli_option opts[] = {
		[O_OUT] = { "-o", CLI_VALUE },
	};
	const char *path = NULL, *v;
	int nfile = 0, k;
	struct cli_args args;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((k = cli_next(&args, &v)) != CLI_DONE) {
		if (k == O_OUT) {
			out = v;
		} else {
			path = v;
			nfile++;
		}
	}
	if (nfile != 1)
		cli_usage("expected one FILE");
	if (out && strcmp(out, "-") == 0)
		cli_usage("-o needs a file name (safetensors is not written to stdout)");
	struct fd_err e = {{0}};
	struct fd_pth p;
	cli_outputs((const char *[]){path}, 1, (const char *[]){out}, 1);
	if (fd_pth_load(&p, path, &e) < 0)
		cli_fail(&e);
	for (int i = 0; i < p.nskipped; i++)
		cli_info("'%s': skipped '%s' (not a tensor)", path, p.skipped[i]);
	if (out) {
		char hex[65], base[4096];
		if (fd_sha256_file(path, hex, &e) < 0)
			cli_fail(&e);
		snprintf(base, sizeof(base), "%s", path);
		struct fd_stw w;
		fd_stw_init(&w);
		int rc = 0;
		for (int i = 0; i < p.n && rc == 0; i++)
			rc = fd_stw_add(&w, p.t[i].name, p.t[i].dtype, p.t[i].ndim, p.t[i].shape, p.t[i].data, &e);
		if (rc == 0)
			rc = fd_stw_meta(&w, "fd.source", basename(base), &e);
		if (rc == 0)
			rc = fd_stw_meta(&w, "fd.source_sha256", hex, &e);
		if (rc == 0)
			rc = fd_stw_meta(&w, "fd.tool", "fd-pth " FD_VERSION, &e);
		if (rc == 0)
			rc = fd_stw_meta(&w, "fd.cmdline", cli_cmdline(), &e);
		if (rc < 0 || fd_stw_write(&w, out, &e) < 0)
			cli_fail(&e);
		fd_stw_free(&w);
		cli_info("wrote %d tensors to '%s'", p.n, out);
		fd_pth_free(&p);
		return 0;
	}
	for (int i = 0; i < p.n; i++)
		if (strpbrk(p.t[i].name, "\t\n"))
			cli_die("'%s': tensor name '%s' holds a tab or newline, not listable as TSV", path,
				p.t[i].name);
	printf("name\tdtype\tshape\tnbytes\tsha256\n");
	for (int i = 0; i < p.n; i++) {
		const struct fd_pth_tensor *t = &p.t[i];
		struct fd_sha256 h;
		char hex[65];
		fd_sha256_init(&h);
		if (t->nbytes)
			fd_sha256_update(&h, t->data, t->nbytes);
		fd_sha256_hex(&h, hex);
		printf("%s\t%s\t", t->name, fd_dtype_name(t->dtype));
		for (int d = 0; d < t->ndim; d++)
			printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
		printf("\t%zu\t%s\n", t->nbytes, hex);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		cli_die("cannot write standard output");
	fd_pth_free(&p);
	return 0;
}

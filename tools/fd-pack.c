/* fd-pack: decode the images a TSV names, make each an S x S RGB square
 * (centre crop, letterbox, stretch or face box), and write them as one u8
 * tensor, PACK.safetensors, with PACK.tsv describing its rows
 * (lib/data/fd_pack.h does the work). */
#include "cli.h"
#include "core/fd_progress.h"
#include "core/fd_table.h"
#include "data/fd_pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char synopsis[] =
	"fd-pack --root DIR --size S [--geometry center|letterbox|resize|face|matched] [--only COL=V[,V..]]... -o PACK.safetensors [FILE|-]";
static const char help[] =
	"Read TSV rows (columns path, label, status; from FILE or stdin), decode each\n"
	"image under DIR, make it an S x S RGB square and write PACK.safetensors\n"
	"(images u8 [N,S,S,3], label u8 [N]) and PACK.tsv beside it (the kept rows,\n"
	"every column in order, plus 'row', the image's index in the pack).\n"
	"Rows whose status is not 'ok' are skipped; images that fail to decode are\n"
	"skipped with a warning. Resizing is Pillow's antialiased bilinear.\n"
	"  --root DIR       folder the 'path' column is relative to; a path leaving it\n"
	"                   (.., absolute, a symlink pointing out) is an error\n"
	"  --allow-outside-root  accept such paths\n"
	"  --size S         output side in pixels (1..4096)\n"
	"  --geometry G     center (default): largest centred square; letterbox: whole\n"
	"                   image on black, centred; resize: stretch; face: the face box\n"
	"                   (face_x1 face_y1 face_x2 face_y2 face_score, from\n"
	"                   fd-facecrop) plus --margin, squared; no face -> center;\n"
	"                   matched: a fake (label != 0) centre-cropped to the aspect\n"
	"                   of its group's real (label 0, same 'group'; fd-index's\n"
	"                   'width' and 'height'), then letterboxed; reals as\n"
	"                   letterbox; a fake without a real: 1:1, counted in the\n"
	"                   pack's fd.unmatched\n"
	"  --margin F       face margin, fraction of the box's longer side added on\n"
	"                   each side (default 0.2)\n"
	"  --only COL=V,..  keep rows whose COL is one of the values (repeatable; all\n"
	"                   must hold)\n"
	"  --exact          decode JPEGs at full size (default: DCT-domain downscale to\n"
	"                   at least what the output needs, as Pillow's Image.draft)\n"
	"  --threads N      decoding threads (default: all cores)\n"
	"  -o FILE          output, must end in .safetensors\n"
	"  -q               no progress\n"
	"Exit status: 0 ok, 1 bad input or no image packed, 2 usage.\n";

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-pack", synopsis, help);
	struct fd_pack_opts o = {.geom = FD_GEOM_CENTER, .margin = 0.2, .tool = "fd-pack"};
	const char *out = NULL;
	struct fd_only only[64];
	struct fd_err e = {{0}};
	enum { O_ROOT, O_SIZE, O_GEOMETRY, O_ONLY, O_MARGIN, O_EXACT, O_THREADS, O_OUTSIDE, O_OUT };
	static const struct cli_option opts[] = {
		[O_ROOT] = { "--root", CLI_VALUE },
		[O_SIZE] = { "--size", CLI_VALUE },
		[O_GEOMETRY] = { "--geometry", CLI_VALUE },
		[O_ONLY] = { "--only", CLI_VALUE },
		[O_MARGIN] = { "--margin", CLI_VALUE },
		[O_EXACT] = { "--exact", CLI_FLAG },
		[O_THREADS] = { "--threads", CLI_VALUE },
		[O_OUTSIDE] = { "--allow-outside-root", CLI_FLAG },
		[O_OUT] = { "-o", CLI_VALUE },
	};
	const char *in = NULL, *v;
	struct cli_args args;
	int k;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((k = cli_next(&args, &v)) != CLI_DONE) {
		switch (k) {
		case O_ROOT: o.root = v; break;
		case O_SIZE: o.size = (int)cli_int("--size", v, 1, 4096); break;
		case O_GEOMETRY:
			if (fd_geometry_parse(v, &o.geom) != 0)
				cli_usage("--geometry: '%s' is not one of center, letterbox, resize, face, matched", v);
			break;
		case O_ONLY:
			if (o.nonly == 64)
				cli_usage("--only: at most 64 filters");
			if (fd_only_parse(&only[o.nonly], v, &e) != 0)
				cli_usage("--only: %s", e.msg);
			o.nonly++;
			break;
		case O_MARGIN: o.margin = cli_double("--margin", v, 0, 10); break;
		case O_EXACT: o.exact = 1; break;
		case O_THREADS: o.threads = (int)cli_int("--threads", v, 1, 1024); break;
		case O_OUTSIDE: o.allow_outside_root = 1; break;
		case O_OUT: out = v; break;
		default:
			if (in)
				cli_usage("expected at most one input FILE");
			in = v;
		}
	}
	if (!o.root)
		cli_usage("--root is required");
	if (!o.size)
		cli_usage("--size is required");
	if (!out)
		cli_usage("-o is required");
	char *tsv_out;
	if (fd_pack_sidecar(out, &tsv_out, &e) != 0)
		cli_usage("-o: %s", e.msg);
	if (!in)
		in = "-";
	/* no output may be an input (or the input's sidecar): exit 2 before reading */
	cli_outputs((const char *[]){in}, 1, (const char *[]){out, tsv_out}, 2);
	free(tsv_out);
	o.only = only;
	o.cmdline = cli_cmdline();

	struct fd_pack_input pi;
	if (fd_pack_select(&pi, in, &o, &e) != 0)
		cli_fail(&e);
	if (pi.not_ok)
		cli_info("skipping %zu rows whose status is not 'ok'", pi.not_ok);
	struct fd_progress pr;
	fd_progress_init(&pr, cli_quiet ? NULL : stderr, "fd-pack", pi.n);
	struct fd_pack_made m;
	int rc = fd_pack_make(&m, &pi, &o, out, &pr, &e);
	fd_progress_end(&pr);
	for (size_t i = 0; i < m.nfail; i++)
		cli_warn("skipping line %zu: %s", m.fail_line[i], m.fail_msg[i]);
	if (rc != 0)
		cli_fail(&e);
	if (m.no_face)
		cli_info("%zu rows have no face: packed with the centre crop", m.no_face);
	if (pi.unmatched)
		cli_info("%zu fakes have no real in their group: cropped 1:1 (fd.unmatched)", pi.unmatched);
	if (fd_pack_commit(&m, out, &e) != 0)
		cli_fail(&e);
	cli_info("packed %zu images of %dx%d (%zu failed to decode, %zu not ok, %zu filtered out) into '%s'",
		 m.packed, o.size, o.size, m.nfail, pi.not_ok, pi.filtered, out);
	fd_pack_made_free(&m);
	fd_pack_input_free(&pi);
	fd_only_free(only, o.nonly);
	return 0;
}

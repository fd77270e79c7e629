/* fd-gradcam: Grad-CAM heat maps of chosen pack rows for a checkpoint, at
 * any layer the model taps: heatmaps.safetensors, gradcam.tsv, overlay PNGs
 * and a contact sheet, written to a directory atomically. Notes:
 * doc/gradcam.md. */
#include "cli.h"
#include "core/fd_progress.h"
#include "core/fd_table.h"
#include "data/fd_loader.h"
#include "data/fd_pack.h"
#include "io/fd_image.h"
#include "io/fd_safetensors.h"
#include "models/fd_model_file.h"
#include "train/fd_gradcam.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char SYNOPSIS[] =
	"fd-gradcam --model CKPT --pack PACK [--only COL=V[,V..]]... [--rows R[,R..]] [--layer NAME] "
	"[--target fake|real|N] [-n N] [--device DEV] -o DIR";

static const char HELP[] =
	"Grad-CAM heat maps (as the grad-cam package's GradCAM) of pack rows for a\n"
	"model, at a layer named as in torchvision's state dict. Writes into DIR:\n"
	"  heatmaps.safetensors  'cam' [N,h,w] (ReLU of the weighted activations, at the\n"
	"                        layer's resolution), 'heatmap' [N,S,S] (upsampled and\n"
	"                        min-max normalised, as GradCAM returns it), 'row' [N]\n"
	"  gradcam.tsv           the rows (every column of PACK.tsv) + score, logit,\n"
	"                        target, layer, peak_x, peak_y (heat map maximum, pixels),\n"
	"                        and face_share (share of the heat map inside the face box,\n"
	"                        when the pack has face_* columns) or center_share (inside\n"
	"                        the central S/2 x S/2 square)\n"
	"  ROW.png               heat map over the image as the model saw it (jet, 0.5)\n"
	"  sheet.png             the overlays side by side\n"
	"\n"
	"  --model CKPT       fd checkpoint or torchvision state dict (then --arch)\n"
	"  --pack PACK        the pack (.safetensors; PACK.tsv beside it)\n"
	"  --only COL=V,..    keep rows whose column COL is one of the values; repeatable\n"
	"  --rows R,..        keep these pack rows (the 'row' column)\n"
	"  --layer NAME       target layer (default: the last convolutional stage:\n"
	"                     layer4 for resnets, features otherwise); --list-layers\n"
	"  --target T         fake (default: the fake logit, or class 1), real (its\n"
	"                     negation, or class 0), or a class index\n"
	"  -n N               at most the first N selected rows (default 16)\n"
	"  -o DIR             output directory (must not exist, or be empty)\n"
	"  --list-layers      print the model's layers (name, output shape) and exit\n"
	"  --arch NAME        architecture of a checkpoint without fd metadata\n"
	"  --num-classes N    its number of outputs (default 1)\n"
	"  --normalize N      imagenet, or M1,M2,M3,S1,S2,S3; default: the checkpoint's\n"
	"  --batch N          images per forward (default 16)\n"
	"  --threads N        compute threads (default: all CPUs)\n"
	"  --device DEV       cpu (default), cuda or cuda:0 (an NVIDIA GPU, in a build with CUDA)\n"
	"  -q                 no progress or info lines\n"
	"\n"
	"Exit status: 0 success, 1 bad data, model or layer, 2 bad usage.\n";

/* The temporary output directory, removed at exit unless committed. */
static char tmpdir[4096];
static int committed;

static void remove_tmpdir(void)
{
	if (committed || !tmpdir[0])
		return;
	DIR *d = opendir(tmpdir);
	if (d) {
		struct dirent *de;
		char p[8192];
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
				snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
				unlink(p);
			}
		closedir(d);
	}
	rmdir(tmpdir);
}

static int nprocs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

static void save_png(const uint8_t *px, int w, int h, const char *path)
{
	struct fd_image img = { .w = w, .h = h, .px = (uint8_t *)px, .scale = 1 };
	struct fd_err e;
	if (fd_image_save(&img, path, 0, &e) < 0)
		cli_fail(&e);
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-gradcam", SYNOPSIS, HELP);
	const char *model = NULL, *pack = NULL, *out = NULL, *arch = NULL, *normalize = NULL, *layer = NULL,
		   *rows_arg = NULL, *target_arg = "fake";
	struct fd_only only[34];
	int nonly = 0, threads = 0, batch = 16, nclass = 0, nmax = 16, list = 0, dev_index = 0;
	enum fd_dev dev = FD_DEV_CPU;
	const char *dev_name = "cpu";
	struct fd_err e;
	e.msg[0] = '\0';
	enum { O_MODEL, O_PACK, O_ONLY, O_ROWS, O_LAYER, O_TARGET, O_N, O_OUT, O_ARCH, O_NUM_CLASSES, O_NORMALIZE,
	       O_BATCH, O_THREADS, O_LIST_LAYERS, O_DEVICE };
	static const struct cli_option opts[] = {
		[O_MODEL] = { "--model", CLI_VALUE },
		[O_PACK] = { "--pack", CLI_VALUE },
		[O_ONLY] = { "--only", CLI_VALUE },
		[O_ROWS] = { "--rows", CLI_VALUE },
		[O_LAYER] = { "--layer", CLI_VALUE },
		[O_TARGET] = { "--target", CLI_VALUE },
		[O_N] = { "-n", CLI_VALUE },
		[O_OUT] = { "-o", CLI_VALUE },
		[O_ARCH] = { "--arch", CLI_VALUE },
		[O_NUM_CLASSES] = { "--num-classes", CLI_VALUE },
		[O_NORMALIZE] = { "--normalize", CLI_VALUE },
		[O_BATCH] = { "--batch", CLI_VALUE },
		[O_THREADS] = { "--threads", CLI_VALUE },
		[O_LIST_LAYERS] = { "--list-layers", CLI_FLAG },
		[O_DEVICE] = { "--device", CLI_VALUE },
	};
	struct cli_args args;
	const char *val;
	int k;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((k = cli_next(&args, &val)) != CLI_DONE) {
		switch (k) {
		case O_MODEL: model = val; break;
		case O_PACK: pack = val; break;
		case O_ONLY:
			if (nonly == 32)
				cli_usage("more than 32 --only filters");
			if (fd_only_parse(&only[nonly], val, &e) < 0)
				cli_usage("--only: %s", e.msg);
			nonly++;
			break;
		case O_ROWS: rows_arg = val; break;
		case O_LAYER: layer = val; break;
		case O_TARGET: target_arg = val; break;
		case O_N: nmax = (int)cli_int("-n", val, 1, 100000); break;
		case O_OUT: out = val; break;
		case O_ARCH: arch = val; break;
		case O_NUM_CLASSES: nclass = (int)cli_int("--num-classes", val, 1, 256); break;
		case O_NORMALIZE: normalize = val; break;
		case O_BATCH: batch = (int)cli_int("--batch", val, 1, 4096); break;
		case O_THREADS: threads = (int)cli_int("--threads", val, 1, 1024); break;
		case O_LIST_LAYERS: list = 1; break;
		case O_DEVICE:
			dev = cli_device("--device", val, &dev_index);
			dev_name = val;
			break;
		default: cli_usage("unexpected argument '%s'", val);
		}
	}
	if (!model)
		cli_usage("--model is required");
	if (!pack && !list)
		cli_usage("--pack is required");
	if (!out && !list)
		cli_usage("-o DIR is required");
	if (arch && !fd_model_arch_find(arch))
		cli_usage("--arch: unknown model '%s' (fd-train --list-models names them)", arch);
	cli_device_check(dev, dev_name);
	if (rows_arg) {
		char spec[4096];
		snprintf(spec, sizeof spec, "row=%s", rows_arg);
		if (fd_only_parse(&only[nonly], spec, &e) < 0)
			cli_usage("--rows: %s", e.msg);
		nonly++;
	}
	int target = -1;
	if (strcmp(target_arg, "fake") == 0)
		target = 1;
	else if (strcmp(target_arg, "real") == 0)
		target = 0;
	else
		target = (int)cli_int("--target", target_arg, 0, 255);
	double mean[3] = { 0.485, 0.456, 0.406 }, std[3] = { 0.229, 0.224, 0.225 };
	if (normalize && strcmp(normalize, "imagenet") != 0) {
		double v[6];
		char *p = (char *)normalize, *end;
		for (int k = 0; k < 6; k++) {
			v[k] = strtod(p, &end);
			if (end == p || (k < 5 && *end != ',') || (k == 5 && *end) || !isfinite(v[k]) ||
			    (k >= 3 && !(v[k] > 0)))
				cli_usage("--normalize: '%s' is neither imagenet nor six numbers M1,M2,M3,S1,S2,S3 "
					  "(std > 0)", normalize);
			p = end + 1;
		}
		memcpy(mean, v, sizeof mean);
		memcpy(std, v + 3, sizeof std);
	}
	static char outbuf[4096];
	if (out && !list) {
		/* "DIR/" names DIR: the temporary goes beside it, not inside */
		size_t ol = strlen(out);
		if (ol >= sizeof outbuf)
			cli_usage("-o: path too long");
		memcpy(outbuf, out, ol + 1);
		while (ol > 1 && outbuf[ol - 1] == '/')
			outbuf[--ol] = '\0';
		out = outbuf;
		struct stat st;
		if (stat(out, &st) == 0) {
			DIR *d = S_ISDIR(st.st_mode) ? opendir(out) : NULL;
			int empty = d != NULL;
			struct dirent *de;
			while (d && (de = readdir(d)))
				if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
					empty = 0;
			if (d)
				closedir(d);
			if (!empty)
				cli_die("'%s' exists and is not an empty directory", out);
		}
	}
	if (!threads)
		threads = nprocs();

	struct fd_model_open_opts mo = { .arch = arch, .num_classes = nclass, .norm_given = normalize != NULL };
	memcpy(mo.mean, mean, sizeof mean);
	memcpy(mo.std, std, sizeof std);
	struct fd_model_file mf;
	int rc = fd_model_open(&mf, model, &mo, &e);
	if (rc == FD_MODEL_NEED_ARCH)
		cli_usage("--arch is required for '%s' (it has no fd.arch metadata)", model);
	if (rc < 0)
		cli_fail(&e);
	struct fd_model *m = mf.m;
	const int K = m->num_classes;
	if (K == 1 && strcmp(target_arg, "fake") && strcmp(target_arg, "real"))
		cli_die("--target %s: '%s' has one output (a logit), not classes: use fake or real", target_arg, model);
	if (K > 1 && target > K - 1)
		cli_die("--target %s: '%s' has %d outputs (classes 0..%d)", target_arg, model, K, K - 1);

	struct fd_model_ctx mc;
	if (fd_model_ctx_init(&mc, dev, threads, 0, &e) < 0 || fd_params_move(&m->p, &mc.c, dev, &e) < 0)
		cli_fail(&e);
	if (list) {
		struct fd_gradcam_layers ls;
		int S = mf.input_size ? mf.input_size : 224;
		if (fd_gradcam_layers(m, &mc.c, S, &ls, &e) < 0)
			cli_fail(&e);
		printf("layer\tshape\n");
		for (int i = 0; i < ls.n; i++) {
			char sh[64];
			struct fd_tensor t = { .ndim = ls.v[i].ndim };
			memcpy(t.shape, ls.v[i].shape, sizeof t.shape);
			printf("%s\t%s\n", ls.v[i].name, fd_tensor_shape_str(&t, sh, sizeof sh));
		}
		fd_gradcam_layers_free(&ls);
		fd_model_file_free(&mf);
		fd_model_ctx_free(&mc);
		return 0;
	}

	/* the rows: the filters, then the first N of them */
	struct fd_loader_opts lo = { .fold = -1, .only = only, .nonly = nonly, .batch = batch, .threads = 2,
				     .norm = FD_NORM_IMAGENET, .norm_given = 1, .max_label = K > 2 ? K - 1 : 1 };
	fd_aug_cfg_default(&lo.aug);
	memcpy(lo.mean, mf.mean, sizeof mf.mean);
	memcpy(lo.std, mf.std, sizeof mf.std);
	struct fd_loader *L;
	if (fd_loader_open(&L, pack, &lo, &e) < 0)
		cli_fail(&e);
	size_t n = fd_loader_count(L, FD_SET_VAL);
	if (n == 0)
		cli_die("'%s': no rows selected", pack);
	if (n > (size_t)nmax) {
		const uint32_t *r = fd_loader_rows(L, FD_SET_VAL);
		size_t len = 16 * (size_t)nmax + 8;
		char *spec = malloc(len);
		if (!spec)
			cli_die("out of memory");
		size_t k = (size_t)snprintf(spec, len, "row=");
		for (int i = 0; i < nmax; i++)
			k += (size_t)snprintf(spec + k, len - k, "%s%u", i ? "," : "", r[i]);
		fd_loader_close(L);
		if (fd_only_parse(&only[nonly], spec, &e) < 0)
			cli_fail(&e);
		free(spec);
		lo.nonly = ++nonly;
		if (fd_loader_open(&L, pack, &lo, &e) < 0)
			cli_fail(&e);
		n = fd_loader_count(L, FD_SET_VAL);
	}
	const int S = fd_loader_size(L);
	const struct fd_table *tab = fd_loader_table(L);
	const uint32_t *rows = fd_loader_rows(L, FD_SET_VAL);
	const struct fd_pack *pk = fd_loader_pack(L);

	struct fd_gradcam_layers ls;
	if (fd_gradcam_layers(m, &mc.c, S, &ls, &e) < 0)
		cli_fail(&e);
	if (!layer)
		layer = fd_gradcam_default_layer(m->arch);
	int li = fd_gradcam_find(&ls, m, layer, &e);
	if (li < 0)
		cli_die("%s (--list-layers prints them with their shapes)", e.msg);
	const int h = (int)ls.v[li].shape[2], w = (int)ls.v[li].shape[3];
	cli_info("%s, layer %s [%d,%d], target %s, %zu rows at %d px", m->arch->name, layer, h, w, target_arg, n, S);

	double *logit = calloc(n * (size_t)K, sizeof *logit);
	float *cam = calloc(n * (size_t)h * w, sizeof *cam), *up = calloc(n * (size_t)S * S, sizeof *up);
	int64_t *rowv = calloc(n, sizeof *rowv);
	if (!logit || !cam || !up || !rowv)
		cli_die("out of memory");
	struct fd_progress pg;
	fd_progress_init(&pg, cli_quiet ? NULL : stderr, "grad-cam", n);
	if (fd_gradcam_rows(m, &mc.c, L, FD_SET_VAL, layer, h, w, target, logit, cam, up, &pg, &e) < 0)
		cli_fail(&e);
	fd_progress_end(&pg);

	/* outputs into .DIR.tmp.PID beside DIR (fd_out's naming), renamed to DIR at the end */
	{
		const char *slash = strrchr(out, '/');
		int dl = slash ? (int)(slash - out + 1) : 0;
		snprintf(tmpdir, sizeof tmpdir, "%.*s.%s.tmp.%ld", dl, out, out + dl, (long)getpid());
	}
	if (mkdir(tmpdir, 0777) < 0)
		cli_die("cannot create '%s': %s", tmpdir, strerror(errno));
	atexit(remove_tmpdir);
	char path[8192];

	/* gradcam.tsv */
	struct fd_table o;
	fd_table_init(&o);
	if (fd_table_copy_header(&o, tab, &e) < 0)
		cli_fail(&e);
	int fx[4] = { fd_table_col(tab, "face_x1"), fd_table_col(tab, "face_y1"), fd_table_col(tab, "face_x2"),
		      fd_table_col(tab, "face_y2") };
	int cw = fd_table_col(tab, "width"), chh = fd_table_col(tab, "height");
	int has_face = fx[0] >= 0 && fx[1] >= 0 && fx[2] >= 0 && fx[3] >= 0 && cw >= 0 && chh >= 0;
	enum fd_geometry geom = FD_GEOM_CENTER;
	const char *gm = fd_st_meta(&pk->st, "fd.geometry"), *mg = fd_st_meta(&pk->st, "fd.margin");
	if (has_face && (!gm || fd_geometry_parse(gm, &geom) < 0))
		cli_die("'%s': fd.geometry is %s%s%s: cannot place the face box", pack, gm ? "'" : "missing",
			gm ? gm : "", gm ? "'" : "");
	double margin = mg ? atof(mg) : 0;
	static const char *const add[] = { "score", "logit", "target", "layer", "peak_x", "peak_y" };
	int col[7];
	for (int i = 0; i < 6; i++)
		if ((col[i] = fd_table_add_col(&o, add[i], &e)) < 0)
			cli_fail(&e);
	if ((col[6] = fd_table_add_col(&o, has_face ? "face_share" : "center_share", &e)) < 0)
		cli_fail(&e);
	uint8_t *ov = malloc((size_t)n * S * S * 3);
	if (!ov)
		cli_die("out of memory");
	for (size_t i = 0; i < n; i++) {
		double lg, sc = fd_gradcam_score(logit + i * (size_t)K, K, target, &lg);
		const float *u = up + i * (size_t)S * S;
		double box[4] = { S / 4.0, S / 4.0, 3 * S / 4.0, 3 * S / 4.0 };
		int box_ok = 1;
		if (has_face) {
			double f[4];
			for (int k = 0; k < 4; k++) {
				const char *v = fd_table_get(tab, rows[i], fx[k]);
				char *end;
				f[k] = v && *v ? strtod(v, &end) : NAN;
				if (v && *v && *end)
					f[k] = NAN;
			}
			int iw = atoi(fd_table_get(tab, rows[i], cw)), ih = atoi(fd_table_get(tab, rows[i], chh));
			box_ok = fd_gradcam_face_box(geom, margin, iw, ih, f, S, box) == 0;
		}
		struct fd_gradcam_stats st;
		fd_gradcam_stats(u, S, S, box, &st);
		rowv[i] = rows[i];
		if (fd_table_copy_row(&o, tab, rows[i], &e) < 0 || fd_table_setf(&o, i, col[0], &e, "%.17g", sc) < 0 ||
		    fd_table_setf(&o, i, col[1], &e, "%.17g", lg) < 0 ||
		    fd_table_setf(&o, i, col[2], &e, "%s", target_arg) < 0 ||
		    fd_table_set(&o, i, col[3], layer, &e) < 0 || fd_table_setf(&o, i, col[4], &e, "%d", st.peak_x) < 0 ||
		    fd_table_setf(&o, i, col[5], &e, "%d", st.peak_y) < 0)
			cli_fail(&e);
		if (box_ok && !isnan(st.share)) {
			if (fd_table_setf(&o, i, col[6], &e, "%.6f", st.share) < 0)
				cli_fail(&e);
		} else if (fd_table_set(&o, i, col[6], "NA", &e) < 0)
			cli_fail(&e);
		uint8_t *oi = ov + i * (size_t)S * S * 3;
		fd_gradcam_overlay(pk->images + (size_t)rows[i] * S * S * 3, u, S, S, oi);
		snprintf(path, sizeof path, "%s/%u.png", tmpdir, rows[i]);
		save_png(oi, S, S, path);
	}
	snprintf(path, sizeof path, "%s/gradcam.tsv", tmpdir);
	if (fd_table_save(&o, path, &e) < 0)
		cli_fail(&e);
	fd_table_free(&o);

	/* the contact sheet */
	int SW, SH;
	uint8_t *sheet = fd_gradcam_sheet(ov, n, S, &SW, &SH);
	if (!sheet)
		cli_die("out of memory");
	snprintf(path, sizeof path, "%s/sheet.png", tmpdir);
	save_png(sheet, SW, SH, path);

	/* heatmaps.safetensors */
	struct fd_stw sw;
	fd_stw_init(&sw);
	int64_t cs[3] = { (int64_t)n, h, w }, us[3] = { (int64_t)n, S, S }, rs[1] = { (int64_t)n };
	snprintf(path, sizeof path, "%s/heatmaps.safetensors", tmpdir);
	if (fd_stw_add(&sw, "cam", FD_DT_F32, 3, cs, cam, &e) < 0 || fd_stw_add(&sw, "heatmap", FD_DT_F32, 3, us, up, &e) < 0 ||
	    fd_stw_add(&sw, "row", FD_DT_I64, 1, rs, rowv, &e) < 0 || fd_stw_meta(&sw, "fd.kind", "gradcam", &e) < 0 ||
	    fd_stw_meta(&sw, "fd.arch", m->arch->name, &e) < 0 || fd_stw_meta(&sw, "fd.layer", layer, &e) < 0 ||
	    fd_stw_meta(&sw, "fd.target", target_arg, &e) < 0 || fd_stw_meta(&sw, "fd.model", model, &e) < 0 ||
	    fd_stw_meta(&sw, "fd.pack", pack, &e) < 0 || fd_stw_meta(&sw, "fd.command", cli_cmdline(), &e) < 0 ||
	    fd_stw_write(&sw, path, &e) < 0)
		cli_fail(&e);
	fd_stw_free(&sw);

	/* commit: an empty DIR left by the caller is replaced */
	rmdir(out);
	if (rename(tmpdir, out) < 0)
		cli_die("cannot rename '%s' to '%s': %s", tmpdir, out, strerror(errno));
	committed = 1;
	fd_gradcam_layers_free(&ls);
	fd_loader_close(L);
	fd_model_file_free(&mf);
	fd_model_ctx_free(&mc);
	fd_only_free(only, nonly);
	free(logit);
	free(cam);
	free(up);
	free(rowv);
	free(ov);
	free(sheet);
	return 0;
}

/* fd-eval: score pack rows with a checkpoint (preds.tsv: the rows + score +
 * logit) and optionally write the metrics of lib/eval/fd_metrics.h, overall
 * and per fake source. Notes: doc/train.md. */
#include "cli.h"
#include "core/fd_progress.h"
#include "core/fd_table.h"
#include "data/fd_loader.h"
#include "eval/fd_metrics.h"
#include "models/fd_model_file.h"
#include "train/fd_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char SYNOPSIS[] =
	"fd-eval --model CKPT --pack PACK [--only COL=V[,V..]]... [--metrics FILE] [--device DEV] -o FILE";

static const char HELP[] =
	"Score the rows of a pack with a model and write them (every column of\n"
	"PACK.tsv) plus 'score' (P(fake), or P(class 1)) and 'logit' (the log-odds of\n"
	"that probability). A model with more than two classes writes 'pred' (the\n"
	"arg-max class), 'score' (its probability) and 'logit' (its logit) instead.\n"
	"The pack may have any size and geometry: the models pool globally.\n"
	"\n"
	"  --model CKPT       fd checkpoint (.safetensors from fd-train: architecture,\n"
	"                     classes and normalisation come from its metadata) or a\n"
	"                     torchvision state dict (.pth/.pt/.safetensors; then --arch)\n"
	"  --pack PACK        the pack (.safetensors; PACK.tsv beside it)\n"
	"  --only COL=V,..    keep rows whose column COL is one of the values; repeatable,\n"
	"                     all must hold (e.g. --only fold=test)\n"
	"  --metrics FILE     also write metrics (TSV): AUC, accuracy, precision, recall,\n"
	"                     F1 at 0.5, log loss, ECE (15 bins), counts; overall and per\n"
	"                     fake source (every real row against that source's fakes);\n"
	"                     last columns ap (sklearn's average precision), eer (equal\n"
	"                     error rate, interpolated on the ROC) and eer_nearest\n"
	"                     (DeepfakeBench's: the nearest ROC point, no interpolation)\n"
	"  -o FILE            predictions TSV ('-': standard output)\n"
	"  --arch NAME        architecture of a checkpoint without fd metadata\n"
	"  --num-classes N    its number of outputs (default 1)\n"
	"  --normalize N      imagenet, or M1,M2,M3,S1,S2,S3 (mean and std in [0,1]\n"
	"                     units); default: the checkpoint's, else imagenet\n"
	"  --batch N          images per forward (default 64)\n"
	"  --threads N        compute threads (default: all CPUs)\n"
	"  --precision P      fp32 (default) or bf16: convolutions and linear layers on\n"
	"                     bf16 operands with fp32 accumulation (a CPU with\n"
	"                     AVX512-BF16; scores then differ from fp32's in the 3rd digit)\n"
	"  --winograd         fp32 3x3 stride-1 convolutions by Winograd F(4x4,3x3) on the\n"
	"                     CPU (oneDNN's, or fd's own): faster, rounds differently (1e-6-1e-5)\n"
	"  --device DEV       cpu (default), cuda or cuda:0 (an NVIDIA GPU, in a build with CUDA)\n"
	"                     only and refuses cuda (exit 1, nothing written)\n"
	"  -q                 no progress or info lines\n"
	"\n"
	"A subset with one class gets NA for AUC and a note, not an error.\n"
	"Exit status: 0 success, 1 bad data or model, 2 bad usage.\n";

static void fmt_metric(char *buf, size_t n, double v)
{
	if (isnan(v))
		snprintf(buf, n, "NA");
	else
		snprintf(buf, n, "%.17g", v);
}

/* One metrics row: subset name, the counts and every metric (NA when undefined). */
static int metrics_row(struct fd_table *t, const char *subset, const struct fd_metrics *m, const char *note,
		       struct fd_err *e)
{
	size_t r = fd_table_add_row(t);
	if (r == (size_t)-1)
		return fd_err_set(e, "out of memory");
	char buf[64];
	double v[] = { m->auc_defined ? m->auc : NAN, m->accuracy, m->precision, m->recall, m->f1, m->log_loss,
		       m->ece };
	if (fd_table_set(t, r, 0, subset, e) < 0 || fd_table_setf(t, r, 1, e, "%zu", m->n) < 0 ||
	    fd_table_setf(t, r, 2, e, "%zu", m->n_real) < 0 || fd_table_setf(t, r, 3, e, "%zu", m->n_fake) < 0)
		return -1;
	for (int i = 0; i < 7; i++) {
		fmt_metric(buf, sizeof buf, v[i]);
		if (fd_table_set(t, r, 4 + i, buf, e) < 0)
			return -1;
	}
	if (fd_table_set(t, r, 11, note, e) < 0)
		return -1;
	/* appended after note so that readers of the older columns keep working */
	double w[] = { m->auc_defined ? m->ap : NAN, m->auc_defined ? m->eer : NAN,
		       m->auc_defined ? m->eer_nearest : NAN };
	for (int i = 0; i < 3; i++) {
		fmt_metric(buf, sizeof buf, w[i]);
		if (fd_table_set(t, r, 12 + i, buf, e) < 0)
			return -1;
	}
	return 0;
}

static const char *const MCOLS[] = { "subset", "n", "n_real", "n_fake", "auc", "accuracy", "precision",
				     "recall", "f1", "log_loss", "ece", "note", "ap", "eer",
				     "eer_nearest" };
#define NMCOLS 15

static void one_class_note(char *note, size_t n, const struct fd_metrics *m)
{
	if (m->auc_defined)
		note[0] = '\0';
	else
		snprintf(note, n, "AUC undefined: only %s", m->n_real ? "real rows" : "fake rows");
}

static int write_metrics(const char *path, const struct fd_table *tab, const uint32_t *rows, size_t n,
			 const double *score, const uint8_t *label, int K, struct fd_err *e)
{
	struct fd_table t;
	fd_table_init(&t);
	int rc = 0;
	for (int i = 0; i < NMCOLS && rc == 0; i++)
		rc = fd_table_add_col(&t, MCOLS[i], e) < 0 ? -1 : 0;
	char note[128];
	if (rc == 0 && K > 2) {
		/* multi-class: accuracy of the arg-max; the binary metrics do not apply */
		size_t correct = 0;
		for (size_t i = 0; i < n; i++)
			correct += score[i] == 1.0; /* set by the caller: 1 when pred == label */
		size_t r = fd_table_add_row(&t);
		char acc[64];
		snprintf(acc, sizeof acc, "%.17g", (double)correct / (double)n);
		const char *v[] = { "all", NULL, "NA", "NA", "NA", acc, "NA", "NA", "NA", "NA", "NA",
				    "multi-class model: accuracy of the arg-max only", "NA", "NA", "NA" };
		rc = r == (size_t)-1 ? fd_err_set(e, "out of memory") : fd_table_setf(&t, r, 1, e, "%zu", n);
		for (int i = 0; i < NMCOLS && rc == 0; i++)
			if (v[i])
				rc = fd_table_set(&t, r, i, v[i], e);
	} else if (rc == 0) {
		struct fd_metrics m;
		rc = fd_metrics_compute(&m, score, label, n, e);
		if (rc == 0) {
			one_class_note(note, sizeof note, &m);
			rc = metrics_row(&t, "all", &m, note, e);
		}
		int cs = fd_table_col(tab, "source");
		if (rc == 0 && cs >= 0) {
			/* fake sources in order of first appearance among the rows */
			const char **names = calloc(n + 1, sizeof *names);
			int *src = calloc(n + 1, sizeof *src), ns = 0;
			if (!names || !src)
				rc = fd_err_set(e, "out of memory");
			for (size_t i = 0; rc == 0 && i < n; i++) {
				const char *s = fd_table_get(tab, rows[i], cs);
				int k = 0;
				while (k < ns && strcmp(names[k], s) != 0)
					k++;
				if (k == ns && label[i] == 1)
					names[ns++] = s;
				src[i] = k < ns ? k : -1;
			}
			for (int k = 0; rc == 0 && k < ns; k++) {
				rc = fd_metrics_source(&m, score, label, src, n, k, e);
				if (rc == FD_EVAL_UNDEFINED)
					rc = 0;
				if (rc == 0) {
					one_class_note(note, sizeof note, &m);
					rc = metrics_row(&t, names[k], &m, note, e);
				}
			}
			free(names);
			free(src);
		}
	}
	if (rc == 0)
		rc = fd_table_save(&t, path, e);
	fd_table_free(&t);
	return rc;
}

static int nprocs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-eval", SYNOPSIS, HELP);
	const char *model = NULL, *pack = NULL, *out = NULL, *metrics = NULL, *arch = NULL, *normalize = NULL;
	struct fd_only only[32];
	int nonly = 0, threads = 0, batch = 64, nclass = 0, dev_index;
	enum fd_dev dev = FD_DEV_CPU;
	enum fd_precision prec = FD_PREC_FP32;
	int wino = 0;
	const char *dev_name = "cpu";
	struct fd_err e;
	e.msg[0] = '\0';
	enum { O_MODEL, O_PACK, O_ONLY, O_METRICS, O_OUT, O_ARCH, O_NORMALIZE, O_BATCH, O_THREADS, O_NUM_CLASSES,
	       O_DEVICE, O_PRECISION, O_WINOGRAD };
	static const struct cli_option opts[] = {
		[O_MODEL] = { "--model", CLI_VALUE },
		[O_PACK] = { "--pack", CLI_VALUE },
		[O_ONLY] = { "--only", CLI_VALUE },
		[O_METRICS] = { "--metrics", CLI_VALUE },
		[O_OUT] = { "-o", CLI_VALUE },
		[O_ARCH] = { "--arch", CLI_VALUE },
		[O_NORMALIZE] = { "--normalize", CLI_VALUE },
		[O_BATCH] = { "--batch", CLI_VALUE },
		[O_THREADS] = { "--threads", CLI_VALUE },
		[O_NUM_CLASSES] = { "--num-classes", CLI_VALUE },
		[O_DEVICE] = { "--device", CLI_VALUE },
		[O_PRECISION] = { "--precision", CLI_VALUE },
		[O_WINOGRAD] = { "--winograd", CLI_FLAG },
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
		case O_METRICS: metrics = val; break;
		case O_OUT: out = val; break;
		case O_ARCH: arch = val; break;
		case O_NORMALIZE: normalize = val; break;
		case O_BATCH: batch = (int)cli_int("--batch", val, 1, 4096); break;
		case O_THREADS: threads = (int)cli_int("--threads", val, 1, 1024); break;
		case O_NUM_CLASSES: nclass = (int)cli_int("--num-classes", val, 1, 256); break;
		case O_DEVICE:
			dev = cli_device("--device", val, &dev_index);
			dev_name = val;
			break;
		case O_PRECISION:
			if (strcmp(val, "fp32") && strcmp(val, "bf16"))
				cli_usage("--precision: '%s' is neither fp32 nor bf16", val);
			prec = strcmp(val, "bf16") ? FD_PREC_FP32 : FD_PREC_BF16;
			break;
		case O_WINOGRAD: wino = 1; break;
		default: cli_usage("unexpected argument '%s'", val);
		}
	}
	if (!model)
		cli_usage("--model is required");
	if (!pack)
		cli_usage("--pack is required");
	if (!out)
		cli_usage("-o FILE is required");
	if (arch && !fd_model_arch_find(arch))
		cli_usage("--arch: unknown model '%s' (fd-train --list-models names them)", arch);
	double mean[3] = { 0.485, 0.456, 0.406 }, std[3] = { 0.229, 0.224, 0.225 };
	int norm_given = 0;
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
	if (normalize)
		norm_given = 1;
	cli_device_check(dev, dev_name);
	char *side = cli_sidecar(pack);
	cli_outputs((const char *[]){model, pack, side}, 3, (const char *[]){out, metrics}, 2);
	free(side);
	if (!threads)
		threads = nprocs();

	/* the checkpoint: fd metadata when present */
	struct fd_model_open_opts mo = { .arch = arch, .num_classes = nclass, .norm_given = norm_given };
	memcpy(mo.mean, mean, sizeof mean);
	memcpy(mo.std, std, sizeof std);
	struct fd_model_file mf;
	int rc = fd_model_open(&mf, model, &mo, &e);
	if (rc == FD_MODEL_NEED_ARCH)
		cli_usage("--arch is required for '%s' (it has no fd.arch metadata)", model);
	if (rc < 0)
		cli_fail(&e);
	struct fd_model *m = mf.m;
	int K = m->num_classes;

	struct fd_loader *L;
	struct fd_loader_opts lo = { .fold = -1, .only = only, .nonly = nonly, .batch = batch, .threads = 2,
				     .seed = 0, .norm = FD_NORM_IMAGENET, .norm_given = 1,
				     .max_label = K > 2 ? K - 1 : 1 };
	fd_aug_cfg_default(&lo.aug);
	memcpy(lo.mean, mf.mean, sizeof mf.mean);
	memcpy(lo.std, mf.std, sizeof mf.std);
	if (fd_loader_open(&L, pack, &lo, &e) < 0)
		cli_fail(&e);
	size_t n = fd_loader_count(L, FD_SET_VAL);
	if (n == 0)
		cli_die("'%s': no rows selected", pack);
	const struct fd_table *tab = fd_loader_table(L);
	const uint32_t *rows = fd_loader_rows(L, FD_SET_VAL);
	double *score = calloc(n, sizeof *score), *logit = calloc(n, sizeof *logit);
	double *x = calloc(n * (size_t)K, sizeof *x);
	uint8_t *label = calloc(n, 1);
	int *pred = calloc(n, sizeof *pred);
	if (!score || !logit || !x || !label || !pred)
		cli_die("out of memory");

	struct fd_model_ctx mc;
	if (fd_model_ctx_init(&mc, dev, threads, 0, &e) < 0)
		cli_fail(&e);
	if (fd_ctx_set_precision(&mc.c, prec, &e) < 0) {
		fd_err_ctx(&e, "--precision");
		cli_fail(&e);
	}
	mc.c.winograd = wino;
	if (fd_params_move(&m->p, &mc.c, dev, &e) < 0)
		cli_fail(&e);
	cli_info("%s (%d outputs) on %zu rows at %d px", m->arch->name, K, n, fd_loader_size(L));
	struct fd_progress pg;
	fd_progress_init(&pg, cli_quiet ? NULL : stderr, "scoring", n);
	if (fd_score_rows(m, &mc.c, L, FD_SET_VAL, 0, x, label, &pg, NULL, &e) < 0)
		cli_fail(&e);
	fd_progress_end(&pg);
	for (size_t k = 0; k < n; k++) {
		const double *xk = x + k * (size_t)K;
		if (K == 1) {
			logit[k] = xk[0];
			score[k] = 1.0 / (1.0 + exp(-logit[k]));
		} else if (K == 2) {
			logit[k] = xk[1] - xk[0];
			score[k] = 1.0 / (1.0 + exp(-logit[k]));
		} else {
			int a = 0;
			double mx, s = 0;
			for (int j = 1; j < K; j++)
				if (xk[j] > xk[a])
					a = j;
			mx = xk[a];
			for (int j = 0; j < K; j++)
				s += exp(xk[j] - mx);
			pred[k] = a;
			logit[k] = xk[a];
			score[k] = 1.0 / s;
		}
	}

	/* the predictions: every column of the selected rows, plus ours */
	struct fd_table o;
	fd_table_init(&o);
	if (fd_table_copy_header(&o, tab, &e) < 0)
		cli_fail(&e);
	int cp = K > 2 ? fd_table_add_col(&o, "pred", &e) : -1, csc = fd_table_add_col(&o, "score", &e),
	    clg = fd_table_add_col(&o, "logit", &e);
	if (csc < 0 || clg < 0 || (K > 2 && cp < 0))
		cli_fail(&e);
	for (size_t i = 0; i < n; i++) {
		char buf[64];
		if (fd_table_copy_row(&o, tab, rows[i], &e) < 0 ||
		    (K > 2 && fd_table_setf(&o, i, cp, &e, "%d", pred[i]) < 0))
			cli_fail(&e);
		snprintf(buf, sizeof buf, "%.17g", score[i]);
		if (fd_table_set(&o, i, csc, buf, &e) < 0)
			cli_fail(&e);
		snprintf(buf, sizeof buf, "%.17g", logit[i]);
		if (fd_table_set(&o, i, clg, buf, &e) < 0)
			cli_fail(&e);
	}
	if (metrics) {
		if (K > 2)
			for (size_t i = 0; i < n; i++)
				score[i] = pred[i] == label[i];
		if (write_metrics(metrics, tab, rows, n, score, label, K, &e) < 0)
			cli_fail(&e);
	}
	if (fd_table_save(&o, out, &e) < 0)
		cli_fail(&e);
	fd_table_free(&o);
	fd_loader_close(L);
	fd_model_file_free(&mf);
	fd_model_ctx_free(&mc);
	fd_only_free(only, nonly);
	free(score);
	free(logit);
	free(x);
	free(label);
	free(pred);
	return 0;
}

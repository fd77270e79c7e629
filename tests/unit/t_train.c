/* t_train: lib/train's run on a tiny synthetic pack (24 images at 32 px,
 * simplecnn, 1 thread): 3 epochs straight = stop after 5 steps (mid-epoch 2)
 * + resume = interrupted by the stop flag + resume, bit for bit (log.tsv but
 * its timing columns, best and last checkpoints byte for byte); a different
 * seed differs (the comparison can fail); fd_model_open reads the
 * checkpoint's metadata back and fd_score_rows reproduces the logged
 * validation loss; bad metadata is refused naming the file and key. */
#include "core/fd_table.h"
#include "io/fd_safetensors.h"
#include "models/fd_model_file.h"
#include "eval/fd_metrics.h"
#include "train/fd_train.h"
#include "tap.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 24
#define S 32

static char dir[256], pack[512], cfg[512];

/* The pack: seeded noise, fakes (odd rows) brighter in red; folds 0,1,2. */
static void write_pack(void)
{
	static uint8_t img[N * S * S * 3], lab[N];
	uint64_t x = 12345;
	for (int i = 0; i < N; i++) {
		lab[i] = (uint8_t)(i % 2);
		for (int p = 0; p < S * S * 3; p++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			int v = (int)(x >> 57) + (lab[i] && p % 3 == 0 ? 96 : 32);
			img[(size_t)i * S * S * 3 + p] = (uint8_t)v;
		}
	}
	struct fd_stw w;
	struct fd_err e;
	int64_t is[4] = { N, S, S, 3 }, ls[1] = { N };
	fd_stw_init(&w);
	snprintf(pack, sizeof pack, "%s/pack.safetensors", dir);
	if (fd_stw_add(&w, "images", FD_DT_U8, 4, is, img, &e) < 0 || fd_stw_add(&w, "label", FD_DT_U8, 1, ls, lab, &e) < 0 ||
	    fd_stw_meta(&w, "fd.kind", "pack", &e) < 0 || fd_stw_write(&w, pack, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
	fd_stw_free(&w);
	char p[600];
	snprintf(p, sizeof p, "%s/pack.tsv", dir);
	FILE *f = fopen(p, "w");
	fprintf(f, "row\tlabel\tfold\n");
	for (int i = 0; i < N; i++)
		fprintf(f, "%d\t%d\t%d\n", i, lab[i], (i / 2) % 3);
	fclose(f);
	snprintf(cfg, sizeof cfg, "%s/cfg.json", dir);
	f = fopen(cfg, "w");
	fprintf(f, "{\"model\": \"simplecnn\", \"epochs\": 3, \"batch_size\": 4, \"num_workers\": 1,\n"
		   " \"optimizer\": {\"lr\": 0.003}, \"scheduler\": {\"type\": \"cosine_annealing\"}}\n");
	fclose(f);
}

/* The stop flag, raised by the message that ends epoch 1 when armed. */
static volatile sig_atomic_t stop_flag;
static int arm;

static void say(void *arg, enum fd_run_say kind, const char *msg)
{
	if (arm && strncmp(msg, "epoch 1:", 8) == 0)
		stop_flag = SIGTERM;
}

/* One invocation (fd-train's loop): the last status, or -1. */
static int invoke(const char *run, const char *set, int resume, int64_t stop_after)
{
	const char *configs[] = { cfg }, *sets[] = { "threads=1", set };
	char d[600];
	snprintf(d, sizeof d, "%s/%s", dir, run);
	struct fd_run_opts o = { .pack = pack, .fold = 0, .configs = configs, .nconfigs = 1, .sets = sets,
				 .nsets = set ? 2 : 1, .dir = d, .resume = resume, .stop_after = stop_after,
				 .cmdline = "t_train", .stop = &stop_flag, .say = say };
	struct fd_run *r;
	struct fd_err e;
	int rc = fd_run_open(&r, &o, &e);
	if (rc == 0)
		rc = fd_run_start(r, &e);
	while (rc == FD_RUN_MORE)
		rc = fd_run_epoch(r, &e);
	if (rc < 0)
		diag("%s: %s", run, e.msg);
	fd_run_close(r);
	return rc;
}

static char *slurp(const char *run, const char *name, size_t *n)
{
	char p[700];
	snprintf(p, sizeof p, "%s/%s/%s", dir, run, name);
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	char *b = malloc(1 << 22);
	*n = fread(b, 1, 1 << 22, f);
	fclose(f);
	return b;
}

/* Same log (all but the timing columns seconds, images_per_s) and the same
 * bytes of best and last checkpoints: 1, else 0 with a note. *rows: epochs compared. */
static int same_run(const char *a, const char *b, size_t *rows)
{
	struct fd_table ta, tb;
	struct fd_err e;
	char pa[600], pb[600];
	*rows = 0;
	snprintf(pa, sizeof pa, "%s/%s/log.tsv", dir, a);
	snprintf(pb, sizeof pb, "%s/%s/log.tsv", dir, b);
	if (fd_table_read(&ta, pa, &e) < 0 || fd_table_read(&tb, pb, &e) < 0) {
		diag("%s", e.msg);
		return 0;
	}
	int same = ta.nrow == tb.nrow && ta.ncol == tb.ncol && ta.ncol == 9;
	for (size_t i = 0; same && i < ta.nrow; i++, ++*rows)
		for (int c = 0; c < 7; c++)
			if (strcmp(fd_table_get(&ta, i, c), fd_table_get(&tb, i, c)) != 0) {
				diag("log %s vs %s: epoch %zu column %d: %s vs %s", a, b, i + 1, c,
				     fd_table_get(&ta, i, c), fd_table_get(&tb, i, c));
				same = 0;
			}
	fd_table_free(&ta);
	fd_table_free(&tb);
	const char *ck[] = { "best.safetensors", "last.safetensors" };
	for (int k = 0; k < 2 && same; k++) {
		size_t na, nb;
		char *x = slurp(a, ck[k], &na), *y = slurp(b, ck[k], &nb);
		same = x && y && na == nb && na > 0 && memcmp(x, y, na) == 0;
		if (!same)
			diag("%s differs between %s and %s", ck[k], a, b);
		free(x);
		free(y);
	}
	return same;
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/fdtrainXXXXXX");
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	write_pack();
	size_t rows = 0;

	ok(invoke("A", NULL, 0, 0) == FD_RUN_DONE, "3 epochs straight");
	ok(invoke("A", NULL, 1, 0) == FD_RUN_COMPLETE, "resuming a complete run does nothing");

	ok(invoke("B", NULL, 0, 5) == FD_RUN_STOPPED, "stop after 5 steps (epoch 2, step 1)");
	char rj[600];
	snprintf(rj, sizeof rj, "%s/B/run.json", dir);
	ok(access(rj, F_OK) != 0, "no run.json after a stop");
	ok(invoke("B", NULL, 1, 0) == FD_RUN_DONE, "resume to the end");
	int same = same_run("A", "B", &rows);
	ok(same && rows == 3, "stop + resume = straight (%zu epochs compared)", rows);

	arm = 1;
	ok(invoke("C", NULL, 0, 0) == FD_RUN_INTERRUPTED, "stop flag after epoch 1: interrupted, state saved");
	arm = 0;
	stop_flag = 0;
	ok(invoke("C", NULL, 1, 0) == FD_RUN_DONE, "resume after the interruption");
	same = same_run("A", "C", &rows);
	ok(same && rows == 3, "interrupt + resume = straight (%zu epochs compared)", rows);

	/* negative control: the comparison sees a different seed */
	ok(invoke("D", "seed=43", 0, 0) == FD_RUN_DONE, "a run with seed 43");
	ok(!same_run("A", "D", &rows), "seed 43 differs from seed 42 (the comparison can fail)");

	/* the checkpoint read back, and scoring = the logged validation loss */
	struct fd_model_file mf;
	struct fd_model_open_opts mo = { 0 };
	struct fd_err e;
	char p[600];
	snprintf(p, sizeof p, "%s/A/last.safetensors", dir);
	int rc = fd_model_open(&mf, p, &mo, &e);
	ok(rc == 0 && mf.has_meta && mf.input_size == S && mf.epoch == 3 && mf.m->num_classes == 1 &&
		   strcmp(mf.m->arch->name, "simplecnn") == 0,
	   "fd_model_open: simplecnn, 1 class, %d px, epoch 3 (%s)", S, rc ? e.msg : "ok");
	if (rc == 0) {
		struct fd_loader *L;
		struct fd_loader_opts lo = { .fold = 0, .batch = 5, .threads = 1, .norm_given = 1, .max_label = 1 };
		fd_aug_cfg_default(&lo.aug);
		memcpy(lo.mean, mf.mean, sizeof lo.mean);
		memcpy(lo.std, mf.std, sizeof lo.std);
		struct fd_model_ctx mc;
		size_t n = 0;
		double logit[N], loss = NAN;
		uint8_t lab[N];
		if (fd_loader_open(&L, pack, &lo, &e) == 0 && fd_model_ctx_init(&mc, FD_DEV_CPU, 1, 0, &e) == 0) {
			n = fd_loader_count(L, FD_SET_VAL);
			if (fd_score_rows(mf.m, &mc.c, L, FD_SET_VAL, 0, logit, lab, NULL, NULL, &e) == 0)
				fd_bce_logits(logit, lab, n, &loss, &e);
			fd_model_ctx_free(&mc);
			fd_loader_close(L);
		}
		struct fd_table t;
		snprintf(p, sizeof p, "%s/A/log.tsv", dir);
		char buf[64];
		snprintf(buf, sizeof buf, "%.17g", loss);
		int ok_read = fd_table_read(&t, p, &e) == 0;
		ok(ok_read && n == 8 && strcmp(fd_table_get(&t, 2, 3), buf) == 0,
		   "fd_score_rows of last.safetensors: val_loss %s = log's %s (%zu rows)", buf,
		   ok_read ? fd_table_get(&t, 2, 3) : "?", n);
		if (ok_read)
			fd_table_free(&t);
		fd_model_file_free(&mf);
	}

	/* strict metadata: errors name the file and the key */
	struct fd_model *m;
	const char *bad[][2] = { { "fd.input_size", "32px" }, { "fd.norm_mean", "[0.5,0.5]" } };
	for (int i = 0; i < 2; i++) {
		const char *meta[] = { bad[i][0], bad[i][1], i ? "fd.norm_std" : NULL, "[1,1,1]", NULL };
		snprintf(p, sizeof p, "%s/bad%d.safetensors", dir, i);
		rc = fd_model_new("simplecnn", 1, 1, &m, &e) == 0 && fd_model_save(m, p, meta, &e) == 0 ? 0 : -1;
		fd_model_free(m);
		e.msg[0] = '\0';
		rc = rc == 0 ? fd_model_open(&mf, p, &mo, &e) : 0;
		ok(rc < 0 && strstr(e.msg, p) && strstr(e.msg, bad[i][0]), "bad %s refused: %s", bad[i][0], e.msg);
	}
	snprintf(p, sizeof p, "%s/A/last.safetensors", dir);
	mo.arch = "resnet18";
	ok(fd_model_open(&mf, p, &mo, &e) < 0 && strstr(e.msg, "simplecnn checkpoint, not resnet18"),
	   "another --arch refused: %s", e.msg);

	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cannot remove %s", dir);
	return tap_done();
}

/* t_report: lib/report's cell summaries, paired comparisons and table writers
 * against tests/ref/report.py (numpy / SciPy on a small in-memory table with
 * missing folds, a NaN train AUC and a source without fakes), and the phase-2
 * decision rule with its best.json / best.mk writers on hand-made tables. */
#include "core/fd_table.h"
#include "io/fd_safetensors.h"
#include "report/fd_report.h"
#include "tap.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const COND[2] = { "A", "B" }, *const MODEL[2] = { "m0", "m1" },
		  *const SRC[3] = { "s1", "s2", "s3" };
#define K 5

static struct fd_st st;

static const void *get(const char *name, enum fd_dtype dt, int64_t numel)
{
	const struct fd_st_tensor *t = fd_st_find(&st, name);
	if (!ok(t && t->dtype == dt && t->numel == numel, "fixture %s: dtype and size", name))
		return NULL;
	return t->data;
}

/* n doubles within atol + rtol |r|; a NaN on either side fails. One TAP line
 * with the worst value as a share of its tolerance. */
static int close_f64(const char *what, const double *a, const double *r, size_t n, double atol,
		     double rtol)
{
	double worst = 0;
	size_t wi = 0;
	int bad = n == 0;
	for (size_t i = 0; i < n; i++) {
		double tol = atol + rtol * fabs(r[i]), err = fabs(a[i] - r[i]);
		double share = err <= tol ? err / tol : INFINITY; /* NaN lands here too */
		bad |= share == INFINITY;
		if (share > worst)
			worst = share, wi = i;
	}
	return ok(!bad, "%s: %zu values, worst [%zu] %.17g vs %.17g = %.2f of tol", what, n, wi,
		  n ? a[wi] : 0.0, n ? r[wi] : 0.0, worst);
}

/* The fixture's table as fd_results rows. */
static int load_table(struct fd_results *rs)
{
	const double *auc = get("in/auc", FD_DT_F64, 2 * 2 * K * 5);
	const int64_t *cnt = get("in/count", FD_DT_I64, 2 * 2 * K * 3);
	const uint8_t *present = get("in/present", FD_DT_U8, 2 * 2 * K);
	const int64_t *nfs = get("in/nfake_source", FD_DT_I64, 2 * 2 * K * 3);
	if (!auc || !cnt || !present || !nfs)
		return -1;
	struct fd_err e = { { 0 } };
	int rows = 0;
	for (int c = 0; c < 2; c++)
		for (int m = 0; m < 2; m++)
			for (int k = 0; k < K; k++) {
				int i = (c * 2 + m) * K + k;
				if (!present[i])
					continue;
				const int64_t *n = cnt + 3 * i;
				struct fd_result r = { (char *)COND[c], (char *)MODEL[m], "val", "all", "-", k,
						       (size_t)n[0], (size_t)n[1], (size_t)n[2], auc[5 * i], NAN, NAN };
				int rc = fd_results_add(rs, &r, &e);
				r.eval = "train";
				r.auc = auc[5 * i + 1];
				rc |= fd_results_add(rs, &r, &e);
				r.eval = "val";
				for (int s = 0; s < 3; s++) {
					r.subset = (char *)SRC[s];
					r.n_fake = (size_t)nfs[3 * i + s];
					r.auc = auc[5 * i + 2 + s];
					rc |= fd_results_add(rs, &r, &e);
				}
				if (rc < 0) {
					ok(0, "add rows: %s", e.msg);
					return -1;
				}
				rows += 5;
			}
	ok(rows > 0 && rs->n == (size_t)rows && rs->ncond == 2 && rs->nmodel == 2 && rs->nsource == 3,
	   "in-memory table: %d rows, 2 conditions, 2 models, 3 sources", rows);
	return 0;
}

static void cells(const struct fd_results *rs)
{
	char key[64];
	for (int c = 0; c < 2; c++)
		for (int m = 0; m < 2; m++) {
			snprintf(key, sizeof key, "cell/%s/%s", COND[c], MODEL[m]);
			const double *ref = get(key, FD_DT_F64, 12);
			if (!ref)
				continue;
			struct fd_report_cell cl;
			fd_report_cell(&cl, rs, COND[c], MODEL[m], "val");
			double v[12] = { cl.nf, cl.s.mean, cl.s.std, cl.s.lo, cl.s.hi, cl.train, cl.gap_mean,
					 cl.var_mean, 0, 0, 0, cl.sd_mean };
			for (int s = 0; s < 3; s++) {
				double a[FD_REPORT_MAXF], sum = 0;
				int n = 0;
				fd_results_aucs(rs, COND[c], MODEL[m], "val", SRC[s], cl.fold, cl.nf, a);
				for (int i = 0; i < cl.nf; i++)
					if (!isnan(a[i]))
						sum += a[i], n++;
				v[8 + s] = n ? sum / n : NAN;
			}
			char what[128];
			snprintf(what, sizeof what, "cell %s %s: folds, mean, std, corrected interval (clipped), "
				 "train, gap, source var and std vs numpy/scipy", COND[c], MODEL[m]);
			close_f64(what, v, ref, 12, 1e-12, 1e-10);
		}
	struct fd_report_cell none;
	fd_report_cell(&none, rs, "A", "nope", "val");
	ok(none.nf == 0 && isnan(none.s.mean) && isnan(none.train), "a cell without rows: 0 folds, NAN");
}

static void cmp_check(const struct fd_results *rs, const char *key, const char *ca, const char *ma,
		      const char *cb, const char *mb)
{
	const double *ref = get(key, FD_DT_F64, 9);
	if (!ref)
		return;
	struct fd_report_cell a, b;
	struct fd_report_cmp o;
	fd_report_cell(&a, rs, ca, ma, "val");
	fd_report_cell(&b, rs, cb, mb, "val");
	fd_report_compare(&o, rs, &a, &b, cb, mb, a.auc, b.auc);
	double v[9] = { o.n, o.delta, o.dgap, o.dvar, o.ratio, o.t.stat, o.t.df, o.t.p, o.dsd };
	char what[128];
	snprintf(what, sizeof what, "%s: folds, delta, delta gap, var, ratio, t, df, p, delta sd vs scipy", key);
	close_f64(what, v, ref, 9, 1e-12, 1e-9);
	ok(o.defined, "%s: test defined", key);
}

/* A file's text (malloc'ed). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *s = malloc(1 << 16);
	size_t n = s ? fread(s, 1, (1 << 16) - 1, f) : 0;
	fclose(f);
	if (s)
		s[n] = '\0';
	return s;
}

static void writers(const struct fd_results *rs, const char *dir)
{
	char pm[4096], pt[4096], pc[4096];
	snprintf(pm, sizeof pm, "%s/r.md", dir);
	snprintf(pt, sizeof pt, "%s/r.tsv", dir);
	snprintf(pc, sizeof pc, "%s/r.compare.tsv", dir);
	FILE *fm = fopen(pm, "w"), *ft = fopen(pt, "w"), *fc = fopen(pc, "w");
	struct fd_err e = { { 0 } };
	struct fd_report_meta meta = { "{\"seed\": 1}", 1, "r.tsv", "r.compare.tsv", "r.folds.tsv", "t_report", NULL, 0 };
	const struct fd_report_section *sec = fd_report_section("2b-resolution");
	int rc = fm && ft && fc && sec ? fd_report_write(fm, ft, fc, rs, sec, &meta, &e) : -1;
	if (fm)
		fclose(fm);
	if (ft)
		fclose(ft);
	if (fc)
		fclose(fc);
	if (!ok(rc == 0, "fd_report_write 2b-resolution: %s", rc ? e.msg : "ok"))
		return;

	/* TSV summary: every number against the reference, by (model, condition) */
	struct fd_table t;
	fd_table_init(&t);
	int checked = 0;
	if (ok(fd_table_read(&t, pt, &e) == 0 && t.nrow == 4, "summary TSV: 4 rows")) {
		static const char *const cols[12] = { "folds", "auc_mean", "auc_std", "ci_lo", "ci_hi",
						      "train_auc", "gap", "source_auc_var", "auc_s1",
						      "auc_s2", "auc_s3", "source_auc_std" };
		int ci[12], cm = fd_table_need(&t, "model", &e), cc = fd_table_need(&t, "condition", &e);
		int have = cm >= 0 && cc >= 0;
		for (int j = 0; j < 12; j++)
			have &= (ci[j] = fd_table_need(&t, cols[j], &e)) >= 0;
		for (size_t i = 0; have && i < t.nrow; i++) {
			char key[64];
			snprintf(key, sizeof key, "cell/%s/%s", fd_table_get(&t, i, cc), fd_table_get(&t, i, cm));
			const double *ref = get(key, FD_DT_F64, 12);
			if (!ref)
				continue;
			double v[12];
			for (int j = 0; j < 12; j++)
				v[j] = strtod(fd_table_get(&t, i, ci[j]), NULL);
			close_f64(key, v, ref, 12, 1e-12, 1e-10);
			checked++;
		}
	}
	fd_table_free(&t);
	ok(checked == 4, "summary TSV: %d rows checked", checked);

	/* comparisons TSV: B against A per model */
	fd_table_init(&t);
	checked = 0;
	if (ok(fd_table_read(&t, pc, &e) == 0 && t.nrow == 2, "comparisons TSV: 2 rows")) {
		static const char *const cols[9] = { "folds", "delta_auc", "delta_gap", "delta_source_var",
						     "test_train_ratio", "t", "df", "p", "delta_source_sd" };
		int ci[9], cm = fd_table_need(&t, "model", &e), have = cm >= 0;
		for (int j = 0; j < 9; j++)
			have &= (ci[j] = fd_table_need(&t, cols[j], &e)) >= 0;
		for (size_t i = 0; have && i < t.nrow; i++) {
			char key[64];
			snprintf(key, sizeof key, "cmp/%s/B-A", fd_table_get(&t, i, cm));
			const double *ref = get(key, FD_DT_F64, 9);
			if (!ref)
				continue;
			double v[9];
			for (int j = 0; j < 9; j++)
				v[j] = strtod(fd_table_get(&t, i, ci[j]), NULL);
			close_f64(key, v, ref, 9, 1e-12, 1e-9);
			checked++;
		}
	}
	fd_table_free(&t);
	ok(checked == 2, "comparisons TSV: %d rows checked", checked);

	/* Markdown: the rows as Python formats the reference values */
	char *md = slurp(pm);
	const char *rows = fd_st_meta(&st, "md_rows");
	int n = 0, found = 0;
	for (const char *p = rows; md && p && *p;) {
		size_t len = strcspn(p, "\n");
		char line[512];
		snprintf(line, sizeof line, "\n%.*s\n", (int)len, p);
		n++;
		if (!ok(strstr(md, line) != NULL, "Markdown row %d as Python formats it", n))
			diag("expected %s", line + 1);
		else
			found++;
		p += len + (p[len] == '\n');
	}
	ok(n == 6 && found == n, "Markdown: %d of %d reference rows found", found, n);
	ok(md && strstr(md, "# Phase 2B: resolution\n") == md && strstr(md, "```json\n{\"seed\": 1}\n```") &&
		   strstr(md, "Made by: `t_report`\n"),
	   "Markdown: title, quoted config, provenance");
	ok(md && strstr(md, "**Selection.** Each run's checkpoint is the epoch with the best validation AUC") &&
		   strstr(md, "best.json: size, geometry, augmentation) are made from this table's validation") &&
		   strstr(md, "The test set was used for no choice"),
	   "Markdown: the Selection note names what was selected on (best epoch, best.json) and the test set");
	free(md);
	struct fd_report_section best = *fd_report_section("best");
	ok(fd_report_write(stdout, stdout, stdout, rs, &best, &meta, &e) == -1 && strstr(e.msg, "not a table"),
	   "section best is not a table: %s", e.msg);
	unlink(pm);
	unlink(pt);
	unlink(pc);
}

/* --- the decision rule on hand-made tables: one AUC per (cond, model, fold) */
struct row {
	const char *cond, *model;
	double auc[3];
};

static void add(struct fd_results *rs, const char *cond, const char *model, int k, const char *eval,
		const char *subset, double auc)
{
	struct fd_err e = { { 0 } };
	struct fd_result x = { (char *)cond, (char *)model, (char *)eval, (char *)subset, "-", k,
			       30, 10, 80, auc, NAN, NAN };
	if (fd_results_add(rs, &x, &e) < 0)
		ok(0, "add %s: %s", cond, e.msg);
}

static void make(struct fd_results *rs, const struct row *r, int n)
{
	fd_results_init(rs);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 3; k++)
			add(rs, r[i].cond, r[i].model, k, "val", "all", r[i].auc[k]);
}

static const struct fd_report_candidate *cand(const struct fd_report_best *b, const char *cond)
{
	for (int i = 0; i < b->ncand; i++)
		if (!strcmp(b->cand[i].cond, cond))
			return &b->cand[i];
	return NULL;
}

static void decide(void)
{
	struct fd_results rs;
	struct fd_report_best b;
	struct fd_err e = { { 0 } };

	/* sizes 96 < 128 < 224 (the center runs match none: taken as 224, the
	 * largest); face-aug the best combination, every other significantly worse */
	static const struct row r1[] = {
		{ "128", "m", { 0.70, 0.72, 0.71 } },       { "224", "m", { 0.80, 0.83, 0.81 } },
		{ "96", "m", { 0.60, 0.61, 0.63 } },        { "center", "m", { 0.70, 0.71, 0.72 } },
		{ "face", "m", { 0.75, 0.77, 0.76 } },      { "center-aug", "m", { 0.72, 0.74, 0.73 } },
		{ "face-aug", "m", { 0.85, 0.88, 0.86 } },
	};
	make(&rs, r1, 7);
	int rc = fd_report_best(&b, &rs, NULL, &e);
	ok(rc == 0 && b.size == 224 && !strcmp(b.geometry, "face") && b.augment == 1,
	   "rule: face-aug at 224, the best combination run");
	ok(b.ncand == 6 && cand(&b, "128") && cand(&b, "96") && !cand(&b, "224") &&
		   cand(&b, "face-aug")->chosen && cand(&b, "face-aug")->within &&
		   !cand(&b, "face")->within && cand(&b, "face")->p_worse < 0.05,
	   "rule: candidates are the combinations run (224 is center's size), the rest significantly worse");
	ok(strstr(b.choice, "face-aug (size 224, face, with augmentation; mean validation AUC 0.863") &&
		   strstr(b.choice, "has the highest AUC") && strstr(b.choice, "1 of 6 candidates within noise") &&
		   strstr(b.choice, "taken as size 224 (the largest)"),
	   "rule: the choice explained: %s", b.choice);
	ok(strstr(b.reason[1], "geometry: face-aug") && strstr(b.reason[1], "over center-aug"),
	   "rule: geometry compared at the chosen augmentation: %s", b.reason[1]);
	ok(strstr(b.reason[2], "augmentation: face-aug") && strstr(b.reason[2], "over face ("),
	   "rule: augmentation compared at the chosen geometry: %s", b.reason[2]);
	ok(strstr(b.reason[0], "no run differing in resolution alone"),
	   "rule: no face-aug run at another size: %s", b.reason[0]);

	/* best.json and best.mk from it */
	char *js = fd_report_best_json(&b, &rs, NULL, &e);
	const char *head = "{\n  \"size\": 224,\n  \"geometry\": \"face\",\n  \"augment\": true,\n";
	json_error_t je;
	json_t *j = js ? json_loads(js, 0, &je) : NULL;
	json_t *c5 = j ? json_array_get(json_object_get(j, "candidates"), 5) : NULL;
	ok(j && json_integer_value(json_object_get(j, "size")) == 224 &&
		   !strcmp(json_string_value(json_object_get(j, "geometry")), "face") &&
		   json_is_true(json_object_get(j, "augment")) &&
		   !strcmp(json_string_value(json_object_get(json_object_get(j, "reason"), "choice")), b.choice) &&
		   fabs(json_real_value(json_object_get(json_object_get(j, "mean_val_auc"), "96")) -
			(0.60 + 0.61 + 0.63) / 3) < 1e-15 &&
		   c5 && !strcmp(json_string_value(json_object_get(c5, "condition")), "face-aug") &&
		   json_is_true(json_object_get(c5, "chosen")) && json_is_null(json_object_get(c5, "excluded")) &&
		   json_is_null(json_object_get(c5, "per_source_auc_std")) &&
		   json_is_null(json_object_get(j, "geometry_test")) &&
		   js[strlen(js) - 1] == '\n' && !strncmp(js, head, strlen(head)),
	   "best.json: the choices, the reasons, the candidates, each condition's mean AUC");
	json_decref(j);
	free(js);
	char *mk = NULL;
	size_t mklen = 0;
	FILE *f = open_memstream(&mk, &mklen);
	fd_report_best_mk(f, &b);
	fclose(f);
	ok(mk && strstr(mk, "\nBEST_SIZE := 224\nBEST_GEOMETRY := face\nBEST_AUGMENT := true\n") &&
		   mk[0] == '#' && !strchr(mk, '$'),
	   "best.mk: the choices as make variables");
	free(mk);
	fd_results_free(&rs);

	/* the demo's case: letterbox (G's runs, 2A test 1) has the best AUC because
	 * of the bars; 2A flagged the geometry, so the centre crop is chosen; 32
	 * and center are the same runs (size 32) */
	static const struct row r2[] = {
		{ "24", "m", { 0.80, 0.82, 0.81 } },        { "32", "m", { 0.86, 0.88, 0.87 } },
		{ "center", "m", { 0.86, 0.88, 0.87 } },    { "face", "m", { 0.70, 0.72, 0.71 } },
		{ "center-aug", "m", { 0.75, 0.78, 0.76 } }, { "face-aug", "m", { 0.66, 0.70, 0.69 } },
		{ "letterbox", "m", { 1.0, 0.999, 1.0 } },   { "matched", "m", { 0.99, 0.99, 1.0 } },
	};
	make(&rs, r2, 8);
	struct fd_report_shortcuts sc = { 1, "m: delta -0.436, DeLong p 2.9e-30: geometry shortcut found" };
	rc = fd_report_best(&b, &rs, &sc, &e);
	ok(rc == 0 && b.size == 32 && !strcmp(b.geometry, "center") && b.augment == 0,
	   "rule, geometry flagged: centre crop at 32, not letterbox");
	ok(cand(&b, "letterbox") && strstr(cand(&b, "letterbox")->excluded, "geometry shortcut") &&
		   !cand(&b, "letterbox")->chosen && !cand(&b, "matched") && !cand(&b, "32") &&
		   strstr(b.choice, "letterbox excluded: phase 2A found a geometry shortcut"),
	   "rule: letterbox excluded and said so, matched never a candidate: %s", b.choice);
	js = fd_report_best_json(&b, &rs, &sc, &e);
	j = js ? json_loads(js, 0, &je) : NULL;
	ok(j && !strcmp(json_string_value(json_object_get(j, "geometry_test")), sc.why),
	   "best.json: the 2A evidence quoted");
	json_decref(j);
	free(js);
	sc.geometry = 0;
	rc = fd_report_best(&b, &rs, &sc, &e);
	ok(rc == 0 && !strcmp(b.geometry, "letterbox") && b.size == 32,
	   "rule, no geometry shortcut found: letterbox may win");
	rc = fd_report_best(&b, &rs, NULL, &e);
	ok(rc == 0 && !strcmp(b.geometry, "letterbox"), "rule, geometry not tested: letterbox may win");
	fd_results_free(&rs);

	/* within noise, the better shortcut indicators win: A (0.90) has a large
	 * per-source spread and gap, B (0.88, not significantly worse) small ones;
	 * C (0.70, significantly worse) would be better still but is out */
	fd_results_init(&rs);
	static const double va[3] = { 0.90, 0.93, 0.87 }, vb[3] = { 0.89, 0.88, 0.87 },
			    vc[3] = { 0.70, 0.71, 0.72 };
	for (int k = 0; k < 3; k++) {
		add(&rs, "128", "m", k, "val", "all", 0.6);
		add(&rs, "224", "m", k, "val", "all", va[k]);
		add(&rs, "center", "m", k, "val", "all", va[k]);
		add(&rs, "face", "m", k, "val", "all", vb[k]);
		add(&rs, "face-aug", "m", k, "val", "all", vc[k]);
		add(&rs, "center", "m", k, "train", "all", 1.0);
		add(&rs, "face", "m", k, "train", "all", 0.92);
		add(&rs, "face-aug", "m", k, "train", "all", 0.72);
		add(&rs, "center", "m", k, "val", "s1", 0.99);
		add(&rs, "center", "m", k, "val", "s2", 0.79);
		add(&rs, "face", "m", k, "val", "s1", 0.90);
		add(&rs, "face", "m", k, "val", "s2", 0.86);
		add(&rs, "face-aug", "m", k, "val", "s1", 0.71);
		add(&rs, "face-aug", "m", k, "val", "s2", 0.70);
	}
	rc = fd_report_best(&b, &rs, NULL, &e);
	const struct fd_report_candidate *ca = cand(&b, "center"), *cb = cand(&b, "face"),
					  *cc = cand(&b, "face-aug");
	ok(rc == 0 && !strcmp(b.geometry, "face") && b.size == 224 && b.augment == 0 && cb->chosen,
	   "rule: within noise, face (lower spread and gap) over center (higher AUC)");
	ok(ca && cb && cc && fabs(ca->std - 0.10) < 1e-12 && fabs(cb->std - 0.02) < 1e-12 &&
		   fabs(ca->gap - 0.10) < 1e-12 && fabs(cb->gap - (0.92 - 0.88)) < 1e-12 && ca->within &&
		   cb->within && !cc->within && cb->p_worse >= 0.05 && cc->p_worse < 0.05,
	   "rule: indicators (std of per-source AUCs, gap) and noise as computed by hand");
	ok(strstr(b.choice, "is within the noise of the best AUC, center (0.900)") != NULL,
	   "rule: the choice says it traded AUC within noise: %s", b.choice);
	fd_results_free(&rs);

	/* a candidate without every model of the center runs is excluded */
	static const struct row r3[] = {
		{ "224", "m0", { 0.8, 0.8, 0.8 } },   { "224", "m1", { 0.7, 0.7, 0.7 } },
		{ "128", "m0", { 0.7, 0.7, 0.8 } },   { "128", "m1", { 0.6, 0.6, 0.7 } },
		{ "center", "m0", { 0.8, 0.8, 0.8 } }, { "center", "m1", { 0.7, 0.7, 0.7 } },
		{ "face", "m0", { 0.7, 0.6, 0.7 } },  { "face", "m1", { 0.6, 0.6, 0.7 } },
		{ "letterbox", "m1", { 0.99, 0.99, 0.99 } },
	};
	make(&rs, r3, 9);
	rc = fd_report_best(&b, &rs, NULL, &e);
	ok(rc == 0 && !strcmp(b.geometry, "center") && b.size == 224 &&
		   strstr(cand(&b, "letterbox")->excluded, "not run for every model"),
	   "rule: letterbox run for one model only is no candidate; center at 224 (the same runs)");
	fd_results_free(&rs);

	/* a size whose AUCs are all undefined does not count; too few sizes is an error */
	static const struct row r4[] = {
		{ "224", "m", { NAN, NAN, NAN } }, { "128", "m", { 0.7, 0.7, 0.8 } },
		{ "center", "m", { 0.7, 0.7, 0.7 } }, { "face", "m", { 0.6, 0.8, 0.7 } },
	};
	make(&rs, r4, 4);
	ok(fd_report_best(&b, &rs, NULL, &e) == -1 && strstr(e.msg, "need two resolution conditions"),
	   "rule: an undefined size is no candidate: %s", e.msg);
	fd_results_free(&rs);
	static const struct row r5[] = {
		{ "224", "m", { 0.8, 0.8, 0.9 } }, { "128", "m", { 0.7, 0.7, 0.8 } },
		{ "center", "m", { 0.7, 0.7, 0.7 } }, { "face-aug", "m", { 0.9, 0.9, 0.9 } },
	};
	make(&rs, r5, 4);
	ok(fd_report_best(&b, &rs, NULL, &e) == -1 && strstr(e.msg, "need conditions center and face"),
	   "rule: face missing is an error: %s", e.msg);
	fd_results_free(&rs);
}

/* --- the hold-out verdict on hand-made tables (no score rows): the rule, not
 * the numbers (tests/tools/report_ref.py checks those against SciPy) */
static void hadd(struct fd_results *rs, const char *cond, int k, const char *subset, double auc)
{
	struct fd_err e = { { 0 } };
	struct fd_result x = { (char *)cond, "m", "val", (char *)subset, "src", k, 30, 10, 80, auc, NAN, NAN };
	if (fd_results_add(rs, &x, &e) < 0)
		ok(0, "add %s: %s", cond, e.msg);
}

static void holdout(void)
{
	static const struct {
		const char *cond;
		int nf;
		double in[3], out[3];
		int found, use_dl;
	} c[] = {
		{ "drop", 3, { 0.9, 0.9, 0.9 }, { 0.7, 0.72, 0.69 }, 1, 0 },     /* large, consistent */
		{ "small", 3, { 0.9, 0.9, 0.9 }, { 0.87, 0.865, 0.87 }, 0, 0 },  /* p < 0.05, delta < 0.05 */
		{ "noisy", 3, { 0.9, 0.9, 0.9 }, { 0.5, 0.88, 0.89 }, 0, 0 },    /* 0.14, p large */
		{ "rise", 3, { 0.7, 0.72, 0.69 }, { 0.9, 0.9, 0.9 }, 0, 0 },     /* held-out better */
		{ "twofold", 2, { 0.9, 0.9 }, { 0.7, 0.72 }, -1, 1 },            /* DeLong: no scores */
	};
	struct fd_results rs;
	struct fd_report_holdout h;
	fd_results_init(&rs);
	for (size_t i = 0; i < sizeof c / sizeof *c; i++)
		for (int k = 0; k < c[i].nf; k++) {
			hadd(&rs, c[i].cond, k, "all", (c[i].in[k] + c[i].out[k]) / 2);
			hadd(&rs, c[i].cond, k, "in-source", c[i].in[k]);
			hadd(&rs, c[i].cond, k, "held-out", c[i].out[k]);
		}
	for (int k = 0; k < 3; k++)
		add(&rs, "base", "m", k, "val", "all", 0.9);
	int n = 0;
	for (size_t i = 0; i < sizeof c / sizeof *c; i++, n++) {
		fd_report_holdout(&h, &rs, c[i].cond, "m");
		double d = 0;
		for (int k = 0; k < c[i].nf; k++)
			d += (c[i].in[k] - c[i].out[k]) / c[i].nf;
		ok(h.nf == c[i].nf && fabs(h.delta - d) < 1e-12 && h.found == c[i].found &&
			   h.use_dl == c[i].use_dl && (h.use_dl ? isnan(h.p) && h.n_in == 0 : h.p == h.o.t.p),
		   "hold-out %s: delta %.4f (want %.4f), p %g, found %d (want %d)", c[i].cond, h.delta, d, h.p,
		   h.found, c[i].found);
	}
	fd_report_holdout(&h, &rs, "base", "m");
	ok(h.nf == 3 && h.found == -1 && isnan(h.delta) && fabs(h.in - 0.9) < 1e-12,
	   "hold-out: a baseline has no verdict");
	fd_report_holdout(&h, &rs, "absent", "m");
	ok(h.nf == 0 && h.found == -1, "hold-out: no rows, no verdict");
	ok(n == 5, "hold-out: %d tables checked", n);
	fd_results_free(&rs);
}

int main(void)
{
	const char *b = getenv("FD_BUILD");
	char path[4096];
	struct fd_err e = { { 0 } };
	snprintf(path, sizeof path, "%s/ref/report/report.safetensors", b ? b : "build");
	if (ok(fd_st_open(&st, path, &e) == 0, "open %s", path)) {
		struct fd_results rs;
		fd_results_init(&rs);
		if (load_table(&rs) == 0) {
			cells(&rs);
			cmp_check(&rs, "cmp/m0/B-A", "A", "m0", "B", "m0");
			cmp_check(&rs, "cmp/m1/B-A", "A", "m1", "B", "m1");
			cmp_check(&rs, "cmp/A/m1-m0", "A", "m0", "A", "m1");
			char dir[] = "/tmp/t_report.XXXXXX";
			if (ok(mkdtemp(dir) != NULL, "scratch directory")) {
				writers(&rs, dir);
				rmdir(dir);
			}
		}
		fd_results_free(&rs);
		fd_st_close(&st);
	} else {
		diag("%s (run make check-build)", e.msg);
	}
	decide();
	holdout();
	return tap_done();
}

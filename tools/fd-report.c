/* fd-report: aggregate a phase's runs into the plan's tables (Markdown + TSV),
 * or best.json and best.mk, the phase-2 choices phases 3 and 4 read; the
 * statistics and writers are lib/report's (fd_report.h). */
#include "cli.h"
#include "core/fd_out.h"
#include "report/fd_html.h"
#include "report/fd_final.h"
#include "report/fd_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char SYNOPSIS[] =
	"fd-report --section NAME [--config FILE] [--geometry TSV] [--top K] [-n N] -o FILE RUN_OR_TSV... | "
	"fd-report --html DIR --page NAME [--index TSV] [--pack PACK] [--config FILE]... [--table TSV]... [INPUT...]";

static const char HELP[] =
	"Aggregate cross-validation runs into one section of the plan's report.\n"
	"Each RUN is a run directory .../MODEL/SETTING/foldK holding fd-eval's\n"
	"preds-EVAL.tsv files (val: the held-out fold, train: the training rows scored\n"
	"with the best checkpoint, test: the test set, full: fold K of the 100% pack,\n"
	"others: the fold under another pack such as letterbox) and fd-train's\n"
	"run.json; LABEL=RUN names its condition (default: SETTING). A TSV is a folds\n"
	"table written by an earlier fd-report.\n"
	"\n"
	"Sections: phase1, 2a-geometry, 2a-colour, 2a-holdout, 2b-resolution,\n"
	"2c-facecrop, 2d-augment, 2e-augment-facecrop, phase3, 4a-scaling (FILE.md,\n"
	"with FILE.tsv, FILE.compare.tsv and FILE.folds.tsv beside it), and best\n"
	"(FILE is best.json: one combination of size, geometry and augmentation among\n"
	"those run: conditions labelled by size (centre crop), center, face, center-aug,\n"
	"face-aug, letterbox; within the noise of the best AUC, the one not worse on the\n"
	"shortcut indicators; FILE.mk beside it, FILE without .json, holds the same\n"
	"choices as make variables BEST_SIZE, BEST_GEOMETRY, BEST_AUGMENT for the\n"
	"pipelines' include). 2a-geometry scores its runs' preds-val.tsv against\n"
	"preds-matched.tsv (conditions letterbox and matched).\n"
	"\n"
	"  --section NAME   which table to make (above)\n"
	"  --config FILE    experiment config(s) the runs share, merged in order and\n"
	"                   quoted in the report (repeatable)\n"
	"  --geometry TSV   --section best: the 2a-geometry test table\n"
	"                   (2a-geometry.compare.tsv); letterbox is excluded when it\n"
	"                   found a geometry shortcut\n"
	"  --top K          --section top: how many models (default 3)\n"
	"  -n N             --section 4b-final: hard examples per model, source and\n"
	"                   kind; gradcam-rows: rows per category (default 10)\n"
	"  -o FILE          output (Markdown, or best.json / top.json for --section\n"
	"                   best / top)\n"
	"  --allow-missing  a RUN that does not exist or has no preds-val.tsv is left\n"
	"                   out with a warning, on stderr and in the Markdown's\n"
	"                   Warnings section (default: an error, exit 1; not with\n"
	"                   --section best)\n"
	"\n"
	"AUC mean +- std (ddof 1) and 95% Nadeau-Bengio interval over folds, clipped to\n"
	"[0, 1]; AP and EER (interpolated); test set (preds-test.tsv): the fold models'\n"
	"scores averaged per row, one AUC with a DeLong logit 95% interval, and the mean\n"
	"+- sd of the per-fold test AUCs; gap = train AUC - validation AUC per fold\n"
	"(in-source AUC for hold-out runs), averaged; per-source variance and std\n"
	"(ddof 0) of the fake sources' AUCs; p = corrected resampled t-test (Nadeau &\n"
	"Bengio 2003) on per-fold differences, and DeLong's paired test on pooled\n"
	"out-of-fold validation scores and on the averaged test scores, each with\n"
	"Holm's adjustment over the table. 4a-scaling uses eval full (preds-full.tsv).\n"
	"\n"
	"gradcam-rows (FILE.tsv, from one preds TSV: the -n most confident rows of\n"
	"each category true_real, true_fake, false_positive, false_negative; the rows\n"
	"the pipelines run fd-gradcam on).\n"
	"\n"
	"HTML pages (doc/report.md): --html DIR --page NAME writes DIR/NAME.html, its\n"
	"figures as DIR/figures/*.svg, and DIR/index.html linking the pages made so\n"
	"far. Pages: 01-eda (--index: fd-index's TSV, with --stats for colour; --pack:\n"
	"a sample grid per source); 02-preprocessing (INPUT: packs of one split under\n"
	"several geometries; --index: fd-facecrop's TSV, detection rate per source;\n"
	"--config: the augment block shown on examples, and the seed); 03-phase1,\n"
	"04-phase2, 05-phase3, 06-phase4 (INPUT: RUN directories, or LABEL=RUN with\n"
	"the label unused: ROC, learning curves, score histograms, confusion matrices,\n"
	"per-source AUC, train/val gap, parameters vs AUC, data scaling over settings\n"
	"inN-...; --table: TSV tables shown first, 4b-final's hard.tsv with its images\n"
	"from --pack and confidence.tsv as histograms); 07-gradcam (INPUT: fd-gradcam\n"
	"folders, LABEL=DIR titles each); index (the index alone).\n"
	"\n"
	"Exit status: 0 success, 1 bad or missing run files, 2 bad usage.\n";

/* out without a final suffix ext, plus add (malloc'ed). */
static char *beside(const char *out, const char *ext, const char *add)
{
	size_t n = strlen(out), k = strlen(ext);
	if (n > k && !strcmp(out + n - k, ext))
		n -= k;
	char *s = malloc(n + strlen(add) + 1);
	if (!s)
		cli_die("out of memory");
	memcpy(s, out, n);
	strcpy(s + n, add);
	return s;
}

/* --section best: best.json at out and best.mk beside it; best.json, the file
 * Make watches, is renamed into place last. */
static void write_best(const char *out, const struct fd_results *rs, const char *geometry)
{
	struct fd_err e;
	struct fd_report_shortcuts sc = { -1, "" };
	if (geometry && fd_report_shortcuts_read(&sc, geometry, &e) < 0)
		cli_fail(&e);
	struct fd_report_best b;
	if (fd_report_best(&b, rs, &sc, &e) < 0)
		cli_fail(&e);
	char *json = fd_report_best_json(&b, rs, &sc, &e), *p_mk = beside(out, ".json", ".mk");
	if (!json)
		cli_fail(&e);
	struct fd_out oj = { 0 }, om = { 0 };
	if (fd_out_open(&oj, out, &e) < 0)
		cli_fail(&e);
	if (fd_out_open(&om, p_mk, &e) < 0) {
		fd_out_abort(&oj);
		cli_fail(&e);
	}
	fputs(json, oj.f);
	fd_report_best_mk(om.f, &b);
	if (fd_out_commit(&om, &e) < 0) {
		fd_out_abort(&oj);
		cli_fail(&e);
	}
	if (fd_out_commit(&oj, &e) < 0)
		cli_fail(&e);
	free(json);
	free(p_mk);
}

/* A table section: the Markdown at out, FILE.tsv, FILE.compare.tsv and
 * FILE.folds.tsv beside it (FILE: out without ".md"); the Markdown, the target
 * Make watches, is renamed into place last. */
static void write_tables(const char *out, const struct fd_results *rs,
			 const struct fd_report_section *sec, const char *conf_txt, int ncfg,
			 const char *const *inp, int ninp, char **warn, int nwarn)
{
	struct fd_err e;
	char *p_tsv = beside(out, ".md", ".tsv"), *p_cmp = beside(out, ".md", ".compare.tsv"),
	     *p_folds = beside(out, ".md", ".folds.tsv");
	struct fd_report_meta m = { conf_txt, ncfg, p_tsv, p_cmp, p_folds, cli_cmdline(), inp, ninp };
	struct fd_out om = { 0 }, ot = { 0 }, oc = { 0 };
	if (fd_out_open(&om, out, &e) < 0)
		cli_fail(&e);
	if (fd_out_open(&ot, p_tsv, &e) < 0 || fd_out_open(&oc, p_cmp, &e) < 0) {
		fd_out_abort(&om);
		fd_out_abort(&ot);
		cli_fail(&e);
	}
	if (fd_report_write(om.f, ot.f, oc.f, rs, sec, &m, &e) < 0 || fd_out_commit(&ot, &e) < 0 ||
	    fd_out_commit(&oc, &e) < 0 || fd_results_write(rs, p_folds, &e) < 0) {
		fd_out_abort(&om);
		fd_out_abort(&ot);
		fd_out_abort(&oc);
		cli_fail(&e);
	}
	/* --allow-missing: what was left out is part of the report */
	if (nwarn)
		fprintf(om.f, "\n## Warnings\n\n");
	for (int i = 0; i < nwarn; i++)
		fprintf(om.f, "- %s\n", warn[i]);
	if (fd_out_commit(&om, &e) < 0)
		cli_fail(&e);
	free(p_tsv);
	free(p_cmp);
	free(p_folds);
}

/* --html DIR --page NAME: one page and the index (fd_html.h); --page index:
 * the index alone (written last by the pipelines, after every page). */
static int write_html(const char *dir, const char *page, const char *index, const char *pack,
		      const char **tab, int ntab, const char **run, int nrun, const char **cfg, int ncfg,
		      int table_opts)
{
	if (table_opts)
		cli_usage("--html does not take --section or -o");
	if (!page)
		cli_usage("--html needs --page NAME");
	int pi = fd_html_page(page);
	if (pi < 0 && strcmp(page, "index"))
		cli_usage("unknown page '%s'", page);
	if (ncfg && pi != 1)
		cli_usage("--config is for --page 02-preprocessing (its augmentation)");
	if (pack && pi != 0 && pi != 5)
		cli_usage("--pack is for --page 01-eda and 06-phase4");
	if (index && pi > 1)
		cli_usage("--index is for --page 01-eda and 02-preprocessing");
	if (ntab && (pi < 2 || pi > 5))
		cli_usage("--table is for --page 03-phase1 .. 06-phase4");
	struct fd_err e;
	int rc = 0;
	/* LABEL=RUN as the table forms take it: the label is used by 07 only */
	char **label = calloc((size_t)nrun + 1, sizeof *label);
	if (!label)
		cli_die("out of memory");
	for (int i = 0; i < nrun; i++) {
		const char *eq = strchr(run[i], '=');
		int lab = eq && eq > run[i] && !strchr(eq + 1, '=');
		if (!(label[i] = strndup(run[i], lab ? (size_t)(eq - run[i]) : strlen(run[i]))))
			cli_die("out of memory");
		if (lab)
			run[i] = eq + 1;
	}
	if (pi < 0) {
		if (nrun || index || pack)
			cli_usage("--page index takes no inputs");
	} else if (pi == 0) {
		if (!index)
			cli_usage("--page 01-eda needs --index TSV");
		if (nrun)
			cli_usage("--page 01-eda takes no runs");
		rc = fd_page_eda(dir, index, pack, cli_cmdline(), &e);
	} else if (pi == 1) {
		if (nrun == 0)
			cli_usage("--page 02-preprocessing needs packs");
		rc = fd_page_preproc_configs(dir, index, run, nrun, cfg, ncfg, cli_cmdline(), &e);
	} else if (pi <= 5) {
		if (nrun == 0)
			cli_usage("--page %s needs run directories", page);
		rc = fd_page_runs(dir, page, run, nrun, tab, ntab, pi == 5 ? pack : NULL, cli_cmdline(), &e);
	} else {
		if (nrun == 0)
			cli_usage("--page 07-gradcam needs fd-gradcam folders");
		rc = fd_page_gradcam(dir, run, (const char *const *)label, nrun, cli_cmdline(), &e);
	}
	if (rc < 0 || fd_html_index(dir, NULL, &e) < 0)
		cli_fail(&e);
	cli_info("wrote %s/%s.html", dir, pi < 0 ? "index" : page);
	for (int i = 0; i < nrun; i++)
		free(label[i]);
	free(label);
	return 0;
}

/* --section gradcam-rows: fd_gradcam_pick of one preds TSV into out. */
static void write_pick(const char *out, const char *preds, int n)
{
	struct fd_err e;
	struct fd_out o = { 0 };
	if (fd_out_open(&o, out, &e) < 0)
		cli_fail(&e);
	if (fd_gradcam_pick(o.f, preds, n, &e) < 0) {
		fd_out_abort(&o);
		cli_fail(&e);
	}
	if (fd_out_commit(&o, &e) < 0)
		cli_fail(&e);
}

/* --section top, --section 4b-final: fd_top_save, fd_final_save (fd_final.h) */
static void write_top(const char *out, const struct fd_results *rs, int k)
{
	struct fd_err e;
	if (fd_top_save(out, rs, k, cli_cmdline(), &e) < 0)
		cli_fail(&e);
}

static void write_final(const char *out, const struct fd_results *rs, int nhard,
			const char *const *inp, int ninp)
{
	struct fd_err e;
	if (fd_final_save(out, rs, nhard, cli_cmdline(), inp, ninp, &e) < 0)
		cli_fail(&e);
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-report", SYNOPSIS, HELP);
	const char *section = NULL, *out = NULL, *geometry = NULL, *html = NULL, *page = NULL, *index = NULL, *pack = NULL, *top_k = NULL, *n_hard = NULL;
	const char **cfg = calloc((size_t)argc, sizeof *cfg), **inp = calloc((size_t)argc, sizeof *inp),
		   **tab = calloc((size_t)argc, sizeof *tab);
	int ncfg = 0, ninp = 0, ntab = 0, allow_missing = 0;
	if (!cfg || !inp || !tab)
		cli_die("out of memory");
	enum { O_SECTION, O_CONFIG, O_OUT, O_GEOMETRY, O_HTML, O_PAGE, O_INDEX, O_PACK, O_TABLE, O_TOP, O_N,
	       O_ALLOW_MISSING };
	static const struct cli_option opts[] = {
		[O_SECTION] = { "--section", CLI_VALUE },
		[O_CONFIG] = { "--config", CLI_VALUE },
		[O_OUT] = { "-o", CLI_VALUE },
		[O_GEOMETRY] = { "--geometry", CLI_VALUE },
		[O_HTML] = { "--html", CLI_VALUE },
		[O_PAGE] = { "--page", CLI_VALUE },
		[O_INDEX] = { "--index", CLI_VALUE },
		[O_PACK] = { "--pack", CLI_VALUE },
		[O_TABLE] = { "--table", CLI_VALUE },
		[O_TOP] = { "--top", CLI_VALUE },
		[O_N] = { "-n", CLI_VALUE },
		[O_ALLOW_MISSING] = { "--allow-missing", CLI_FLAG },
	};
	struct cli_args args;
	const char *v;
	int which;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((which = cli_next(&args, &v)) != CLI_DONE) {
		switch (which) {
		case O_SECTION: section = v; break;
		case O_CONFIG: cfg[ncfg++] = v; break;
		case O_OUT: out = v; break;
		case O_GEOMETRY: geometry = v; break;
		case O_HTML: html = v; break;
		case O_PAGE: page = v; break;
		case O_INDEX: index = v; break;
		case O_PACK: pack = v; break;
		case O_TABLE: tab[ntab++] = v; break;
		case O_TOP: top_k = v; break;
		case O_N: n_hard = v; break;
		case O_ALLOW_MISSING: allow_missing = 1; break;
		default: inp[ninp++] = v;
		}
	}
	if (html) {
		int rc = write_html(html, page, index, pack, tab, ntab, inp, ninp, cfg, ncfg, section || out);
		free(cfg);
		free(inp);
		free(tab);
		return rc;
	}
	if (!section)
		cli_usage("--section is required");
	if (!out || !*out)
		cli_usage("-o FILE is required");
	if (!strcmp(out, "-"))
		cli_usage("-o must name a file (the tables are written beside it)");
	if (ninp == 0)
		cli_usage("no runs or folds tables given");
	if (!strcmp(section, "gradcam-rows")) {
		if (ninp != 1 || ncfg || geometry || top_k || allow_missing)
			cli_usage("--section gradcam-rows takes one preds TSV, -n and -o only");
		cli_outputs(inp, 1, (const char *[]){ out }, 1);
		write_pick(out, inp[0], n_hard ? (int)cli_int("-n", n_hard, 1, 100000) : 10);
		cli_info("wrote %s", out);
		free(cfg);
		free(inp);
		free(tab);
		return 0;
	}
	const struct fd_report_section *sec = fd_report_section(section);
	if (!sec)
		cli_usage("unknown section '%s'", section);
	if (geometry && sec->mode != FD_REPORT_BEST)
		cli_usage("--geometry is for --section best");
	if (allow_missing && sec->mode == FD_REPORT_BEST)
		cli_usage("--allow-missing is not for --section best (best.json has no place for a warning)");
	if (top_k && sec->mode != FD_REPORT_TOP)
		cli_usage("--top is for --section top");
	if (n_hard && sec->mode != FD_REPORT_FINAL)
		cli_usage("-n is for --section 4b-final");
	int k = top_k ? (int)cli_int("--top", top_k, 1, 1000) : 3;
	int nhard = n_hard ? (int)cli_int("-n", n_hard, 1, 100000) : 10;

	struct fd_err e;
	struct fd_config conf = { 0 };
	char *conf_txt = NULL;
	if (ncfg) {
		if (fd_config_init(&conf, &e) < 0)
			cli_fail(&e);
		for (int i = 0; i < ncfg; i++)
			if (fd_config_load(&conf, cfg[i], &e) < 0)
				cli_fail(&e);
		if (!(conf_txt = fd_config_dump(&conf, &e)))
			cli_fail(&e);
	}

	/* no output may be an input, nor a file inside an input run directory:
	 * refused (exit 2) before anything is read */
	char *p_tsv = beside(out, ".md", ".tsv"), *p_cmp = beside(out, ".md", ".compare.tsv"),
	     *p_folds = beside(out, ".md", ".folds.tsv"), *p_mk = beside(out, ".json", ".mk"),
	     *p_tmd = beside(out, ".json", ".md"), *p_hard = beside(out, ".md", ".hard.tsv"),
	     *p_conf = beside(out, ".md", ".confidence.tsv");
	const char **ins = calloc((size_t)ninp, sizeof *ins);
	if (!ins)
		cli_die("out of memory");
	for (int i = 0; i < ninp; i++)
		ins[i] = strchr(inp[i], '=') && !strchr(strchr(inp[i], '=') + 1, '=') ? strchr(inp[i], '=') + 1 : inp[i];
	const char *outs[6] = {out, p_tsv, p_cmp, p_folds, p_hard, p_conf}, *outs_best[3] = {out, p_mk, p_tmd};
	if (sec->mode == FD_REPORT_BEST || sec->mode == FD_REPORT_TOP)
		cli_outputs(ins, ninp, outs_best, sec->mode == FD_REPORT_TOP ? 3 : 2);
	else
		cli_outputs(ins, ninp, outs, sec->mode == FD_REPORT_FINAL ? 6 : 4);
	free(ins);
	free(p_tsv), free(p_cmp), free(p_folds), free(p_mk), free(p_tmd), free(p_hard), free(p_conf);
	struct fd_results rs;
	fd_results_init(&rs);
	char **warn = calloc((size_t)ninp, sizeof *warn);
	int nwarn = 0;
	if (!warn)
		cli_die("out of memory");
	for (int i = 0; i < ninp; i++) {
		const char *p = inp[i], *eq = strchr(p, '=');
		char label[256] = "";
		if (eq && eq > p && eq - p < (long)sizeof label && !strchr(eq + 1, '=')) {
			memcpy(label, p, (size_t)(eq - p));
			label[eq - p] = '\0';
			p = eq + 1;
		}
		struct stat st;
		const char *missing = NULL;
		char val[4096];
		snprintf(val, sizeof val, "%s/preds-val.tsv", p);
		int exists = stat(p, &st) == 0;
		if (!exists)
			missing = "no such file or directory";
		else if (S_ISDIR(st.st_mode) && access(val, F_OK) != 0)
			missing = "no preds-val.tsv (fd-eval of the held-out fold)";
		if (missing && allow_missing) {
			if (asprintf(&warn[nwarn], "run '%s' left out: %s", p, missing) < 0)
				cli_die("out of memory");
			cli_warn("%s", warn[nwarn++]);
			continue;
		}
		if (!exists)
			cli_die("cannot read '%s': no such file or directory", p);
		int rc = S_ISDIR(st.st_mode) ? fd_results_add_run(&rs, p, *label ? label : NULL, &e)
					     : fd_results_add_tsv(&rs, p, &e);
		if (rc < 0)
			cli_fail(&e);
	}

	/* the test set is one set of rows for every fold model (the ensemble) */
	if (fd_results_check_same_rows(&rs, "test", &e) < 0)
		cli_fail(&e);
	if (sec->mode == FD_REPORT_BEST)
		write_best(out, &rs, geometry);
	else if (nwarn == ninp)
		cli_die("nothing to report: every run was left out (%d)", nwarn);
	else if (sec->mode == FD_REPORT_TOP)
		write_top(out, &rs, k);
	else if (sec->mode == FD_REPORT_FINAL)
		write_final(out, &rs, nhard, inp, ninp);
	else
		write_tables(out, &rs, sec, conf_txt, ncfg, inp, ninp, warn, nwarn);
	cli_info("wrote %s", out);
	fd_results_free(&rs);
	fd_config_free(&conf);
	free(conf_txt);
	for (int i = 0; i < nwarn; i++)
		free(warn[i]);
	free(warn);
	free(cfg);
	free(inp);
	free(tab);
	return 0;
}

/* t_config: merge order, --set, schema errors with file and line, bad JSON with
 * line and column, typed getters; the resolved canonical JSON is compared with
 * Python's json.dumps(sort_keys=True) (fixtures from tests/ref/config.py). */
#include "core/fd_config.h"
#include "tap.h"

#include <string.h>

static char dir[512];

static char *slurp(const char *name)
{
	char p[600];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return strdup(buf);
}

/* Merge text as file name; expect failure with exactly msg. */
static void bad(const char *what, const char *text, const char *msg)
{
	struct fd_config c;
	struct fd_err e = {{0}};
	fd_config_init(&c, &e);
	int rc = fd_config_merge(&c, text, strlen(text), "configs/x.json", &e);
	ok(rc < 0 && strcmp(e.msg, msg) == 0, "%s: %s", what, e.msg);
	if (rc == 0 || strcmp(e.msg, msg) != 0)
		diag("expected: %s", msg);
	char *d = fd_config_dump(&c, &e);
	ok(d && strcmp(d, "{}") == 0, "%s: config unchanged", what);
	free(d);
	fd_config_free(&c);
}

static void badset(const char *assign, const char *msg)
{
	struct fd_config c;
	struct fd_err e = {{0}};
	fd_config_init(&c, &e);
	int rc = fd_config_set(&c, assign, &e);
	ok(rc < 0 && strcmp(e.msg, msg) == 0, "--set %s refused: %s", assign, e.msg);
	fd_config_free(&c);
}

int main(void)
{
	struct fd_err e = {{0}};
	const char *b = getenv("FD_BUILD");
	snprintf(dir, sizeof dir, "%s/ref/config", b ? b : "build");
	struct fd_config c;
	char path[600];

	/* files, then sets; canonical dump equals Python's */
	ok(fd_config_init(&c, &e) == 0, "init");
	snprintf(path, sizeof path, "%s/shared.json", dir);
	ok(fd_config_load(&c, path, &e) == 0, "load shared.json: %s", e.msg);
	snprintf(path, sizeof path, "%s/exp.json", dir);
	ok(fd_config_load(&c, path, &e) == 0, "load exp.json over it: %s", e.msg);
	char *sets = slurp("sets.txt"), *want = slurp("expected.json");
	ok(sets && want, "fixtures present in %s", dir);
	int nset = 0, setok = 1;
	for (char *line = sets ? strtok(sets, "\n") : NULL; line; line = strtok(NULL, "\n"), nset++)
		if (fd_config_set(&c, line, &e) < 0)
			setok = 0, diag("%s", e.msg);
	ok(setok && nset == 6, "%d --set overrides applied", nset);
	char *got = fd_config_dump(&c, &e);
	ok(got && want && strcmp(got, want) == 0, "resolved config equals Python's merge + json.dumps");
	if (got && want && strcmp(got, want) != 0)
		diag("got  %s\nwant %s", got, want);
	free(got);
	free(sets);
	free(want);

	/* where each value was set: the last file (with the key's line) or --set */
	char wseed[700], wepochs[700];
	snprintf(wseed, sizeof wseed, "%s/shared.json: line 2", dir);
	snprintf(wepochs, sizeof wepochs, "%s/exp.json: line 16", dir);
	ok(strcmp(fd_config_where(&c, "seed"), wseed) == 0, "where seed: %s", fd_config_where(&c, "seed"));
	ok(strcmp(fd_config_where(&c, "epochs"), wepochs) == 0, "where epochs (exp.json over shared.json): %s",
	   fd_config_where(&c, "epochs"));
	ok(strcmp(fd_config_where(&c, "optimizer.lr"), "--set 'optimizer.lr=1e-5'") == 0, "where optimizer.lr: %s",
	   fd_config_where(&c, "optimizer.lr"));
	ok(strcmp(fd_config_where(&c, "augment.jpeg.p"), "--set 'augment.jpeg={\"p\":1}'") == 0 &&
		   strcmp(fd_config_where(&c, "scheduler.warmup_epochs"), "config") == 0,
	   "where: a leaf of a --set object; a default: %s", fd_config_where(&c, "augment.jpeg.p"));

	/* getters */
	double lr = 0, betas[2] = {0}, eta = 0;
	int64_t seed = 0;
	int nest = 1, ns = -1;
	const char *model = NULL, *srcs[4];
	ok(fd_config_get_double(&c, "optimizer.lr", &lr, &e) == 0 && lr == 1e-5, "get optimizer.lr (set wins)");
	ok(fd_config_get_int(&c, "seed", &seed, &e) == 0 && seed == 42, "get seed (shared)");
	ok(fd_config_get_bool(&c, "optimizer.nesterov", &nest, &e) == 0 && nest == 0, "get bool (exp)");
	ok(fd_config_get_str(&c, "model", &model, &e) == 0 && strcmp(model, "efficientnet_b0") == 0,
	   "--set without quotes is a string");
	ok(fd_config_get_doubles(&c, "optimizer.betas", betas, 2, &e) == 0 && betas[0] == 0.5 && betas[1] == 0.75,
	   "get betas");
	ok(fd_config_get_double(&c, "scheduler.eta_min", &eta, &e) == 0 && eta == 100, "integer read as double");
	ok(fd_config_get_strs(&c, "exclude_sources", srcs, 4, &ns, &e) == 0 && ns == 0, "array replaced by []");
	ok(fd_config_get_double(&c, "scheduler.warmup_epochs", &lr, &e) < 0 &&
		   strcmp(e.msg, "config: missing 'scheduler.warmup_epochs'") == 0 &&
		   !fd_config_has(&c, "scheduler.warmup_epochs") && fd_config_has(&c, "scheduler.T_max"),
	   "missing key: %s", e.msg);
	ok(fd_config_get_int(&c, "optimizer.lr", &seed, &e) < 0 && strstr(e.msg, "not an integer"),
	   "wrong getter type: %s", e.msg);
	ok(fd_config_set(&c, "init=null", &e) == 0 && fd_config_get_str(&c, "init", &model, &e) < 0,
	   "init may be null");
	fd_config_free(&c);
	fd_config_free(&c);

	/* canonical reals: shortest round trip, as Python's repr */
	char *reals = slurp("reals.txt");
	int nr = 0, rbad = 0;
	for (char *line = reals ? strtok(reals, "\n") : NULL; line; line = strtok(NULL, "\n"), nr++) {
		char *tab = strchr(line, '\t');
		*tab = 0;
		fd_config_init(&c, &e);
		char *d = NULL;
		if (fd_config_merge(&c, line, strlen(line), "r.json", &e) < 0 || !(d = fd_config_dump(&c, &e)) ||
		    strcmp(d, tab + 1) != 0) {
			if (rbad++ < 5)
				diag("%s: got %s want %s", line, d ? d : e.msg, tab + 1);
		}
		free(d);
		fd_config_free(&c);
	}
	ok(nr > 100 && rbad == 0, "%d reals written as Python's json.dumps writes them (%d differ)", nr, rbad);
	free(reals);

	/* schema and syntax errors */
	bad("unknown key with line", "{\n  \"seed\": 1,\n  \"optimizer\": {\n    \"lr_max\": 0.1\n  }\n}\n",
	    "configs/x.json: line 4: unknown key 'optimizer.lr_max'");
	bad("unknown top-level key", "{\"seed\": 1,\n\"sed\": 2}", "configs/x.json: line 2: unknown key 'sed'");
	bad("same name, other level",
	    "{\"augment\": {\"hflip\": {\"p\": 0.5}},\n \"optimizer\": {\"type\": \"sgd\",\n  \"p\": 1}}",
	    "configs/x.json: line 3: unknown key 'optimizer.p'");
	bad("wrong type", "{\n\"seed\": \"42\"}", "configs/x.json: line 2: 'seed' must be an integer");
	bad("real for an integer", "{\"epochs\": 3.0}", "configs/x.json: line 1: 'epochs' must be an integer");
	bad("bad enum", "{\"optimizer\": {\n\"type\": \"adam\"}}",
	    "configs/x.json: line 2: 'optimizer.type' must be one of adamw|sgd, not 'adam'");
	bad("array length", "{\"optimizer\": {\"betas\": [0.9]}}",
	    "configs/x.json: line 1: 'optimizer.betas' must be an array of 2 numbers");
	bad("array of objects", "{\"augment\": {\"jpeg\": {\"quality\": [\n{\"seed\": 1}, 2]}},\n\"x\": 1}",
	    "configs/x.json: line 1: 'augment.jpeg.quality' must be an array of 2 integers");
	bad("object expected", "{\"augment\": [1]}", "configs/x.json: line 1: 'augment' must be an object");
	bad("strings expected", "{\"exclude_sources\": \"wiki\"}",
	    "configs/x.json: line 1: 'exclude_sources' must be an array of strings");
	bad("bad JSON with line and column", "{\n  \"seed\": 1,\n  \"epochs\": ,\n}",
	    "configs/x.json: line 3, column 13: invalid JSON: unexpected token near ','");
	bad("duplicate key", "{\"seed\": 1,\n \"seed\": 2}",
	    "configs/x.json: line 2, column 7: invalid JSON: duplicate object key near '\"seed\"'");
	bad("not an object", "[1]", "configs/x.json: not a JSON object");
	bad("empty file", "", "configs/x.json: line 1, column 0: invalid JSON: '[' or '{' expected near end of file");
	fd_config_init(&c, &e);
	ok(fd_config_load(&c, "/nonexistent/x.json", &e) < 0 &&
		   strcmp(e.msg, "cannot read '/nonexistent/x.json': No such file or directory") == 0,
	   "missing file: %s", e.msg);
	fd_config_free(&c);

	badset("optimizer.lr_max=1", "--set 'optimizer.lr_max=1': unknown key 'optimizer.lr_max'");
	badset("optimizer.lr=fast", "--set 'optimizer.lr=fast': 'optimizer.lr' must be a number");
	badset("seed", "--set 'seed': expected KEY=VALUE");
	badset("=3", "--set '=3': expected KEY=VALUE");
	badset("optimizer..lr=3", "--set 'optimizer..lr=3': empty key component");
	badset("augment.hflip={\"q\":1}", "--set 'augment.hflip={\"q\":1}': unknown key 'augment.hflip.q'");
	badset("precision=fp16", "--set 'precision=fp16': 'precision' must be one of fp32|bf16, not 'fp16'");
	return tap_done();
}

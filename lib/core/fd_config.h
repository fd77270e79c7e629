/* fd_config: experiment configs. JSON files deep-merged in order, then
 * `--set a.b=value` overrides, every key checked against the schema compiled
 * into the library (DESIGN.md "JSON configs"), so a typo is an error with file
 * and line, never a silently ignored setting. */
#ifndef FD_CONFIG_H
#define FD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"

struct fd_config {
	void *root;   /* json_t object (jansson), owned */
	void *origin; /* json_t object: dotted key -> where its value was set, owned */
};

/* An empty config ({}). Errors: out of memory. */
int fd_config_init(struct fd_config *c, struct fd_err *e);
/* Free; no-op on a zeroed c. */
void fd_config_free(struct fd_config *c);

/* Parse the JSON object in buf (name is used in messages), validate it against
 * the schema and deep-merge it over c: objects merge key by key, recursively;
 * any other value (numbers, strings, arrays, null) replaces. Nothing in c changes
 * on error. Errors: "x.json: line 3, column 5: invalid JSON: ..." (also for
 * duplicate keys), "x.json: line 4: unknown key 'optimizer.lr_max'",
 * "x.json: line 2: 'seed' must be an integer", enum values out of range. */
int fd_config_merge(struct fd_config *c, const char *buf, size_t len, const char *name,
		    struct fd_err *e);
/* fd_config_merge of a file's contents. */
int fd_config_load(struct fd_config *c, const char *path, struct fd_err *e);
/* Apply "a.b=value": value is taken as JSON when it parses as JSON (1e-3, true,
 * [0.9,0.999], {"p":0.5}, null, "quoted"), else as a string (resnet18).
 * Objects merge as in fd_config_merge. Errors name the assignment:
 * "--set 'optimizer.lr_max=1': unknown key 'optimizer.lr_max'". */
int fd_config_set(struct fd_config *c, const char *assign, struct fd_err *e);

/* Where the value of a dotted key was set, for messages about its value:
 * "x.json: line 3" (the last file that set it; no line when the scanner
 * cannot place it), "--set 'seed=-1'", or "config" when it was never set
 * (a default). Borrowed from c, valid until c changes. */
const char *fd_config_where(const struct fd_config *c, const char *key);

/* Typed getters by dotted key. 0 and *out set; -1 with e set when the key is
 * absent ("config: missing 'optimizer.lr'") or of another type. Integers are
 * accepted by get_double. Returned strings are borrowed from c. */
int fd_config_has(const struct fd_config *c, const char *key);
int fd_config_get_int(const struct fd_config *c, const char *key, int64_t *out, struct fd_err *e);
int fd_config_get_double(const struct fd_config *c, const char *key, double *out, struct fd_err *e);
int fd_config_get_bool(const struct fd_config *c, const char *key, int *out, struct fd_err *e);
int fd_config_get_str(const struct fd_config *c, const char *key, const char **out, struct fd_err *e);
/* A numeric array of exactly n entries (betas, scale, ratio, sigma, quality). */
int fd_config_get_doubles(const struct fd_config *c, const char *key, double *out, int n,
			  struct fd_err *e);
/* A string array; *n its length, out[i] borrowed (at most cap entries). */
int fd_config_get_strs(const struct fd_config *c, const char *key, const char **out, int cap, int *n,
		       struct fd_err *e);

/* The resolved config as canonical JSON: sorted keys, no spaces, reals in the
 * shortest form that reads back to the same double (0.1, 3e-05, 100.0), so
 * equal configs give equal bytes (for run.json and the checkpoint's fd.config).
 * Byte-identical to Python's json.dumps(cfg, sort_keys=True, ensure_ascii=False,
 * separators=(",", ":")).
 * Returns a malloc'ed string, or NULL with e set. */
char *fd_config_dump(const struct fd_config *c, struct fd_err *e);

#endif

/* fd_model_file: checkpoint metadata written and read in one place, a
 * checkpoint opened into a model, and the engine + context set-up. */
#include "models/fd_model_file.h"
#include "io/fd_safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The metadata keys besides fd.arch and fd.num_classes (fd_model_save). */
#define K_MEAN "fd.norm_mean"
#define K_STD "fd.norm_std"
#define K_NORMALIZE "fd.normalize"
#define K_SIZE "fd.input_size"
#define K_CONFIG "fd.config"
#define K_EPOCH "fd.epoch"
#define K_ARCH "fd.arch"
#define K_CLASSES "fd.num_classes"

int fd_model_ctx_init(struct fd_model_ctx *mc, enum fd_dev dev, int threads, uint64_t seed,
		      struct fd_err *e)
{
	memset(mc, 0, sizeof *mc);
	return fd_ctx_open(&mc->c, dev, threads, seed, e);
}

void fd_model_ctx_free(struct fd_model_ctx *mc)
{
	fd_ctx_free(&mc->c);
	memset(mc, 0, sizeof *mc);
}

static void fmt_vec(char *buf, size_t n, const double v[3])
{
	snprintf(buf, n, "[%.17g,%.17g,%.17g]", v[0], v[1], v[2]);
}

int fd_model_file_save(const struct fd_model *m, const char *path, const struct fd_model_meta *meta,
		       struct fd_err *e)
{
	char mean[128], std[128], size[32], ep[32];
	fmt_vec(mean, sizeof mean, meta->mean);
	fmt_vec(std, sizeof std, meta->std);
	snprintf(size, sizeof size, "%d", meta->input_size);
	snprintf(ep, sizeof ep, "%lld", (long long)meta->epoch);
	const char *kv[] = { K_MEAN, mean, K_STD, std, K_NORMALIZE, meta->normalize, K_SIZE, size,
			     K_CONFIG, meta->config, K_EPOCH, ep, NULL };
	return fd_model_save(m, path, kv, e);
}

/* An integer metadata value in lo..hi; absent: *v untouched, 0. */
static int meta_int(const struct fd_st *st, const char *path, const char *key, long long lo, long long hi,
		    int64_t *v, struct fd_err *e)
{
	const char *s = fd_st_meta(st, key);
	if (!s)
		return 0;
	char *end;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (!*s || *end || errno || x < lo || x > hi)
		return fd_err_set(e, "'%s': %s is '%s', not an integer in %lld..%lld", path, key, s, lo, hi);
	*v = x;
	return 0;
}

/* A JSON array of three finite numbers (positive when pos). */
static int meta_vec3(const char *path, const char *key, const char *s, int pos, double v[3], struct fd_err *e)
{
	json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
	int ok = j && json_is_array(j) && json_array_size(j) == 3;
	for (int i = 0; ok && i < 3; i++) {
		json_t *x = json_array_get(j, (size_t)i);
		ok = json_is_number(x) && isfinite(json_number_value(x)) && (!pos || json_number_value(x) > 0);
		if (ok)
			v[i] = json_number_value(x);
	}
	json_decref(j);
	if (!ok)
		return fd_err_set(e, "'%s': %s is '%s', not an array of three finite numbers%s", path, key, s,
				  pos ? " > 0" : "");
	return 0;
}

/* Read the fd metadata of a safetensors file into f and *arch / *nclass.
 * A file that is not safetensors (a .pth) has none: 0, nothing set. */
static int read_meta(struct fd_model_file *f, const char *path, const struct fd_model_open_opts *o,
		     const char **arch, int64_t *nclass, struct fd_err *e)
{
	struct fd_st st;
	struct fd_err ign;
	ign.msg[0] = '\0';
	if (fd_st_open(&st, path, &ign) < 0)
		return 0; /* fd_model_load reads a .pth, or says what is wrong with the file */
	int rc = 0;
	const char *a = fd_st_meta(&st, K_ARCH), *m = fd_st_meta(&st, K_MEAN), *s = fd_st_meta(&st, K_STD);
	if (a) {
		const struct fd_model_arch *fa = fd_model_arch_find(a);
		if (o->arch && strcmp(o->arch, a) != 0)
			rc = fd_err_set(e, "'%s' is a %s checkpoint, not %s", path, a, o->arch);
		else if (!fa)
			rc = fd_err_set(e, "'%s': unknown architecture '%s'", path, a);
		else
			*arch = fa->name, f->has_meta = 1;
	}
	int64_t nc = 0, size = 0, epoch = -1;
	if (rc == 0 && (meta_int(&st, path, K_CLASSES, 1, 256, &nc, e) < 0 ||
			meta_int(&st, path, K_SIZE, 1, 65536, &size, e) < 0 ||
			meta_int(&st, path, K_EPOCH, 0, INT64_MAX, &epoch, e) < 0))
		rc = -1;
	if (rc == 0 && !m != !s)
		rc = fd_err_set(e, "'%s': %s without %s", path, m ? K_MEAN : K_STD, m ? K_STD : K_MEAN);
	if (rc == 0 && !o->norm_given && m &&
	    (meta_vec3(path, K_MEAN, m, 0, f->mean, e) < 0 || meta_vec3(path, K_STD, s, 1, f->std, e) < 0))
		rc = -1;
	if (rc == 0) {
		*nclass = nc;
		f->input_size = (int)size;
		f->epoch = epoch;
	}
	fd_st_close(&st);
	return rc;
}

int fd_model_open(struct fd_model_file *f, const char *path, const struct fd_model_open_opts *o,
		  struct fd_err *e)
{
	static const double IMNET_MEAN[3] = { 0.485, 0.456, 0.406 }, IMNET_STD[3] = { 0.229, 0.224, 0.225 };
	memset(f, 0, sizeof *f);
	f->epoch = -1;
	memcpy(f->mean, o->norm_given ? o->mean : IMNET_MEAN, sizeof f->mean);
	memcpy(f->std, o->norm_given ? o->std : IMNET_STD, sizeof f->std);
	const char *arch = o->arch;
	int64_t meta_nc = 0;
	if (read_meta(f, path, o, &arch, &meta_nc, e) < 0)
		return -1;
	if (!arch) {
		fd_err_set(e, "'%s' has no fd.arch metadata", path);
		return FD_MODEL_NEED_ARCH;
	}
	int nclass = o->num_classes > 0 ? o->num_classes : meta_nc > 0 ? (int)meta_nc : 1;
	char note[1024];
	if (fd_model_new(arch, nclass, 1, &f->m, e) < 0)
		return -1;
	if (fd_model_load(f->m, path, note, sizeof note, e) < 0) {
		fd_model_file_free(f);
		return -1;
	}
	if (*note) {
		fd_model_file_free(f);
		return fd_err_set(e, "cannot use '%s' with %d output(s): %s (--num-classes)", path, nclass, note);
	}
	return 0;
}

void fd_model_file_free(struct fd_model_file *f)
{
	fd_model_free(f->m);
	memset(f, 0, sizeof *f);
	f->epoch = -1;
}

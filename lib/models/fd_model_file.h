/* fd_model_file: a model as a file. The one place that writes and reads the
 * fd checkpoint metadata (fd.arch, fd.num_classes, fd.norm_mean, fd.norm_std,
 * fd.normalize, fd.input_size, fd.config, fd.epoch; DESIGN.md "checkpoint"),
 * opens a checkpoint into a ready model with its normalisation, and sets up
 * the compute context (engine + threads) every tool that runs a model uses.
 * Notes: doc/train.md. */
#ifndef FD_MODEL_FILE_H
#define FD_MODEL_FILE_H

#include <stdint.h>
#include "core/fd_err.h"
#include "models/fd_model.h"
#include "nn/fd_tensor.h"

/* ---- the compute context ---- */

/* A context with its engine: what a forward or a training step runs on
 * (fd_ctx_open's context, which owns the engine). */
struct fd_model_ctx {
	struct fd_ctx c;
};

/* The one set-up of engine and threads for fd-train, fd-eval and what
 * scores rows: fd_ctx_open(dev, threads, seed) — on the CPU oneDNN's engine
 * and every CPU kernel on max(threads, 1) OpenMP threads, set per call; on
 * CUDA the device's stream and handles; training on, gradients on. Errors:
 * the engine's (mc is then zeroed and need not be freed). */
int fd_model_ctx_init(struct fd_model_ctx *mc, enum fd_dev dev, int threads, uint64_t seed,
		      struct fd_err *e);
/* Free the context and its engine. Plans made on this engine (a model's
 * conv ops) must be freed first, or not used again. No-op on a zeroed mc. */
void fd_model_ctx_free(struct fd_model_ctx *mc);

/* ---- writing a checkpoint ---- */

/* What fd-train records beside the weights. */
struct fd_model_meta {
	double mean[3], std[3];  /* normalisation, [0, 1] units, as the loader used it */
	const char *normalize;   /* its name in the config ("imagenet", "real-train") */
	int input_size;          /* S of the training pack */
	const char *config;      /* resolved canonical config JSON */
	int64_t epoch;           /* epochs trained */
};

/* Save m's views atomically to path (fd_model_save: fd.arch, fd.num_classes)
 * with fd.norm_mean, fd.norm_std (JSON arrays of %.17g, exact), fd.normalize,
 * fd.input_size, fd.config and fd.epoch. Errors: fd_model_save's. */
int fd_model_file_save(const struct fd_model *m, const char *path, const struct fd_model_meta *meta,
		       struct fd_err *e);

/* ---- opening a checkpoint ---- */

struct fd_model_open_opts {
	const char *arch;       /* NULL: fd.arch of the file (required then); else must equal it */
	int num_classes;        /* 0: fd.num_classes of the file, else 1 */
	int norm_given;         /* 1: mean/std below override the file's */
	double mean[3], std[3];
};

/* A model opened from a file, with what its metadata said. */
struct fd_model_file {
	struct fd_model *m;     /* owned: weights loaded, num_classes outputs */
	double mean[3], std[3]; /* the override, else fd.norm_mean/std, else ImageNet's */
	int input_size;         /* fd.input_size; 0 when the file does not say */
	int64_t epoch;          /* fd.epoch; -1 when the file does not say */
	int has_meta;           /* 1: the file carried fd.arch (an fd checkpoint) */
};

/* fd_model_open returns this when the file has no fd.arch and o->arch is
 * NULL: a usage matter for a tool (--arch), not a bad file. e says so. */
#define FD_MODEL_NEED_ARCH (-2)

/* Open path: an fd checkpoint (.safetensors with fd metadata) or a
 * torchvision state dict (.pth/.pt, or safetensors without fd.arch; then
 * o->arch names the architecture, num_classes defaults to 1 and the
 * normalisation to ImageNet's unless o says otherwise; DESIGN.md). Metadata
 * is parsed strictly: fd.num_classes an integer 1..256, fd.norm_mean and
 * fd.norm_std JSON arrays of three finite numbers (std > 0), both or neither,
 * fd.input_size 1..65536, fd.epoch >= 0. The weights must fill the model
 * exactly (fd_model_load; values checked by fd_ckpt_check), head included: a head of another size is an error
 * (scoring with a fresh head would be meaningless). f is filled and owns the
 * model (fd_model_file_free). Errors name the file and the key: "'x': fd.arch
 * is 'vgg': unknown architecture", "'x' is a simplecnn checkpoint, not
 * resnet18", fd_model_load's; FD_MODEL_NEED_ARCH (above). On error f holds
 * nothing. */
int fd_model_open(struct fd_model_file *f, const char *path, const struct fd_model_open_opts *o,
		  struct fd_err *e);
/* Free the model; no-op on a zeroed f. */
void fd_model_file_free(struct fd_model_file *f);

#endif

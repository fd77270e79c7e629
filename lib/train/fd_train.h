/* fd_train: one training run (DESIGN.md "train"): config resolution, the
 * data, model, optimizer and schedule, the epoch loop with validation and
 * early stopping, RUNDIR (config.json, log.tsv, best/last checkpoints,
 * state.safetensors, run.json) and resume; plus the one scoring loop over a
 * loader's rows that validation and fd-eval share. fd-train is an option
 * parser around it. The module never prints, exits or handles signals: the
 * caller passes a message callback, a progress stream and a stop flag.
 * Notes: doc/train.md. */
#ifndef FD_TRAIN_H
#define FD_TRAIN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include "core/fd_err.h"
#include "core/fd_progress.h"
#include "data/fd_loader.h"
#include "models/fd_model.h"
#include "nn/fd_tensor.h"

/* ---- scoring rows ---- */

/* Forward every row of set s of L in pack order (one pass begun with
 * fd_loader_begin(L, s, epoch, 0): never augmented) through m in eval mode
 without gradients (torch: model.eval(); with torch.no_grad(): model(x)).
 * c->training and c->grad_enabled are restored afterwards; c->step advances
 * once per batch (fd_ctx_step), so a caller whose random streams must not
 * move (training's dropout) restores it. c's tensors are valid until its
 * next step. Writes logits[i * K + j] (float32 values as double; K = m->num_classes)
 * and labels[i] (the pack's label) for the n = fd_loader_count(L, s) rows;
 * both are caller-owned arrays of that size. pg (may be NULL) advances by
 * each batch. stop (may be NULL) is polled before each batch: non-zero ends
 * the pass early, returning 1. Returns 0 when every row is scored. Errors
 * (-1): the loader's, the forward's (its message as is). */
int fd_score_rows(struct fd_model *m, struct fd_ctx *c, struct fd_loader *L, enum fd_set s, int epoch,
		  double *logits, uint8_t *labels, struct fd_progress *pg, volatile sig_atomic_t *stop,
		  struct fd_err *e);

/* ---- a training run ---- */

/* What the caller tells the library to say: INFO lines (a tool shows them
 * unless -q) and WARN lines (always shown). */
enum fd_run_say { FD_RUN_INFO = 0, FD_RUN_WARN };

struct fd_run_opts {
	const char *pack;                    /* PACK.safetensors (PACK.tsv beside it) */
	int fold;                            /* validation fold K, 0..999 */
	const char *const *configs;          /* JSON config files merged in order */
	int nconfigs;
	const char *const *sets;             /* KEY=VAL overrides applied after them */
	int nsets;
	const char *dir;                     /* RUNDIR */
	int threads;                         /* compute threads; 0: config 'threads', else all CPUs */
	enum fd_dev dev;                     /* where the model trains (FD_DEV_CPU, FD_DEV_CUDA) */
	int resume;                          /* continue the run in dir (fd_run_start) */
	int64_t stop_after;                  /* > 0: save and stop after this many training steps */
	const char *cmdline;                 /* provenance for run.json ("" if none) */
	volatile sig_atomic_t *stop;         /* may be NULL; non-zero: save at the next step and stop */
	FILE *progress;                      /* per-epoch progress stream; NULL: none */
	void (*say)(void *arg, enum fd_run_say kind, const char *msg); /* may be NULL */
	void *say_arg;
	/* folders searched in order for config init "imagenet" (the file named
	 * by fd_model_arch.imagenet); the error names the first as the place to
	 * put it. fd-train: $FD_WEIGHTS_DIR, else <exe>/../../models/torchvision
	 * and <exe>/../share/fd/torchvision. Borrowed. */
	const char *const *weights_dirs;
	int nweights_dirs;
};

/* What fd_run_start and fd_run_epoch return besides errors (< 0). */
enum fd_run_status {
	FD_RUN_MORE = 0,        /* an epoch was trained, validated and saved; call again */
	FD_RUN_DONE,            /* training ended (epochs done or early stopping): run.json written */
	FD_RUN_COMPLETE,        /* fd_run_start: the run in dir was already complete; nothing written */
	FD_RUN_STOPPED,         /* stop_after steps reached: state saved, no run.json */
	FD_RUN_INTERRUPTED,     /* *stop became non-zero: state saved, no run.json */
};

struct fd_run;

/* Resolve the config (configs in order, then sets; unknown keys and bad
 * values are errors naming the key or file and line), open the pack's
 * loader (every row check; a training or validation set of one class is
 * an error naming the counts and exclude_sources), hash PACK.tsv, build the
 * model (with `init`
 * weights: "scratch" or null, "imagenet" (weights_dirs) or a checkpoint's
 * path; a head of another size keeps its torchvision initialisation; what
 * was loaded and re-initialised is said as an INFO line and in run.json),
 * the optimizer, the schedule and the context (fd_model_ctx_init). Nothing
 * is written: RUNDIR may not exist. *out is owned by the caller
 * (fd_run_close). Errors: those named, each one line. */
int fd_run_open(struct fd_run **out, const struct fd_run_opts *o, struct fd_err *e);

/* Refuse a RUNDIR that would lose a result, before anything is read or
 * written: dir is fine when it does not exist or holds only what a run puts
 * there (run.json, log.tsv, config.json, *.safetensors, preds-*.tsv,
 * metrics-*.tsv, temporaries, locks). Errors: not a directory; a file that is
 * not a run's ("holds 'x', which is not part of a run"); a run without
 * resume; with resume, a finished run (run.json) whose state.safetensors is
 * gone (it cannot be continued, and starting afresh would overwrite it). */
int fd_run_check_dir(const char *dir, int resume, struct fd_err *e);

/* Prepare RUNDIR: without o->resume, a dir holding a state is an error
 * ("holds a run already"); with it, the state (if any) is restored after
 * checking it belongs to this config (only 'epochs' may differ), pack and
 * fold, and that every field and tensor is one this run could have written
 * (doc/train.md "Resume"; "cannot resume from 'RUNDIR/state.safetensors':
 * fd.epoch is ..."; nothing is touched then), and a complete run (all epochs and run.json) returns FD_RUN_COMPLETE
 * untouched. Otherwise RUNDIR is created, run.json removed (an extended run is
 * not complete), log.tsv truncated to the state's epochs, config.json written
 * and 0 (FD_RUN_MORE) returned. A thread count other than the state's is a
 * WARN (results not bit-identical). */
int fd_run_start(struct fd_run *r, struct fd_err *e);

/* Train one epoch (from mid-epoch after a resume), validate, and write in
 * this order log.tsv, best.safetensors (validation metric improved, or epoch
 * 1), last.safetensors, state.safetensors; returns FD_RUN_MORE. When no
 * epoch is left (epochs done, or early stopping's patience used up) it writes
 * run.json and returns FD_RUN_DONE instead. FD_RUN_STOPPED and
 * FD_RUN_INTERRUPTED save the state at a step boundary (an interrupted
 * validation is redone on resume). Bit for bit: N epochs = any sequence of
 * stops and resumes to N, given the same threads. Errors: a NaN/inf loss
 * ("epoch E step S: loss is nan: stopping (the state of epoch E-1 is kept in
 * 'RUNDIR')"; in epoch 1 "(no epoch was completed: 'RUNDIR' holds no
 * checkpoint)"), the loader's, the model's, write failures. */
int fd_run_epoch(struct fd_run *r, struct fd_err *e);

/* Save state.safetensors now (what fd_run_epoch does at each stop). */
int fd_run_save(struct fd_run *r, struct fd_err *e);

/* Epochs completed and training batches done in the current epoch (for the
 * caller's messages). */
void fd_run_position(const struct fd_run *r, int64_t *epoch, int64_t *batch);

/* Free everything; no-op on NULL. Files written stay. */
void fd_run_close(struct fd_run *r);

#endif

/* ckpt: save and load an fd_params as a safetensors checkpoint under
 * torchvision's state_dict names, with the fd metadata of DESIGN.md. */
#ifndef FD_CKPT_H
#define FD_CKPT_H

#include "core/fd_err.h"
#include "nn/fd_params.h"

/* Write every view (parameters and buffers, F32; counters as I64 scalars,
 * like torch's num_batches_tracked) and the metadata pairs meta[0], meta[1],
 * ... (key, value; NULL-terminated, e.g. "fd.arch", "resnet18", "fd.epoch",
 * "3") atomically to path. Loads in PyTorch with load_state_dict. */
int fd_ckpt_save(const struct fd_params *p, const char *path, const char *const *meta,
		 struct fd_err *e);

/* Copy every view's values from path. The file must hold exactly the views'
 * names with their shapes (F32, or I64 for counters) and values that pass
 * fd_ckpt_check: otherwise nothing is copied and the error says which names are missing, which are extra and
 * which shapes differ ("cannot load 'x.safetensors': missing fc.bias; extra
 * head.weight; conv1.weight is [64,3,7,7] in the file, [64,3,3,3] here").
 * Metadata is left to the caller (fd_st_meta). */
int fd_ckpt_load(struct fd_params *p, const char *path, struct fd_err *e);

/* Check the values every loader must refuse (the loaders call it on what
 * they loaded): every parameter and buffer finite, every view named
 * "*running_var" >= 0, every counter (num_batches_tracked) >= 0. path names
 * the file in the message: "'x.safetensors': conv1.weight[12] is nan (weights
 * must be finite)", "'x': bn1.running_var[3] is -0.5 (a variance must be >=
 * 0)", "'x': bn1.num_batches_tracked is -1 (a counter must be >= 0)". */
int fd_ckpt_check(const struct fd_params *p, const char *path, struct fd_err *e);

#endif

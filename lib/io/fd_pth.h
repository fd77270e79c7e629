/* fd_pth: a reader for PyTorch .pt/.pth files holding state dicts of tensors,
 * in the zip container of torch >= 1.6 and in the older legacy format (a run
 * of pickles followed by raw storages; facenet-pytorch's MTCNN weights use it).
 * The pickle is interpreted by a small stack machine that knows only the
 * opcodes torch.save emits and an allow-list of globals (collections.OrderedDict,
 * torch._utils._rebuild_tensor{,_v2}, _rebuild_parameter, torch.*Storage);
 * any other global is refused when it is named, so loading never runs code. */
#ifndef FD_PTH_H
#define FD_PTH_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"
#include "io/fd_safetensors.h"

enum fd_pth_format { FD_PTH_ZIP, FD_PTH_LEGACY };

/* One tensor, copied out of the file into its own contiguous row-major
 * (C-order) buffer in its stored dtype and little-endian byte order, whatever
 * the strides and storage sharing in the file were (what tensor.contiguous()
 * gives in PyTorch). ndim 0 is a scalar (numel 1). */
struct fd_pth_tensor {
	char *name;         /* state-dict key; nested dicts joined with '.' */
	enum fd_dtype dtype;
	int ndim;
	int64_t shape[FD_ST_MAXDIM];
	int64_t numel;
	void *data;         /* owned; NULL when numel is 0 */
	size_t nbytes;
};

struct fd_pth {
	enum fd_pth_format format;
	int n;
	struct fd_pth_tensor *t;  /* in the file's (state-dict) order */
	int nskipped;
	char **skipped;           /* keys whose values were not tensors (ints, strings, None...) */
};

/* Read path (see fd_pth_parse). The file is mmap'ed while reading and
 * released before returning; p owns copies of everything it keeps.
 * Errors name the file and where in it: "cannot read 'x.pth': data.pkl:
 * byte 13: refusing pickle global 'posix.system' (only state dicts of
 * tensors are loaded)"; "cannot open 'x.pth': No such file or directory". */
int fd_pth_load(struct fd_pth *p, const char *path, struct fd_err *e);

/* Read a .pth image from buf (len bytes; name is used in messages). Like
 * torch.load(f, map_location="cpu", weights_only=True) followed by flattening:
 * the top-level object must be a dict (or OrderedDict) with string keys; a
 * tensor value (or nn.Parameter) becomes an entry, a nested dict's entries are
 * named "outer.inner" (so {"model": state_dict, "epoch": 3} loads), other
 * plain values (None, bools, numbers, strings, lists and tuples without
 * tensors) are listed in p->skipped. Refused with -1 and a message: any
 * pickle global outside the allow-list, any opcode outside torch.save's
 * protocol-2..5 subset, a tensor inside a list, duplicate flattened names,
 * big-endian files, zip entries read that are compressed, encrypted or fail their
 * CRC-32, storages whose stored size disagrees with their declared element
 * count, tensor views reaching outside their storage, more than FD_ST_MAXDIM
 * dimensions, more than 2^20 pickle objects, truncation anywhere. On failure
 * p is left zeroed. */
int fd_pth_parse(struct fd_pth *p, const void *buf, size_t len, const char *name,
		 struct fd_err *e);

/* Tensor by (flattened) name, or NULL. */
const struct fd_pth_tensor *fd_pth_find(const struct fd_pth *p, const char *name);

/* Convert a tensor of any floating dtype (F32, F64, F16, BF16) to n float32
 * values in dst; n must equal t->numel. F64 rounds to nearest like
 * tensor.float(). Errors: non-float dtype, n mismatch (naming the tensor). */
int fd_pth_to_f32(const struct fd_pth_tensor *t, float *dst, int64_t n, struct fd_err *e);

/* Free everything; no-op on a zeroed p. */
void fd_pth_free(struct fd_pth *p);

#endif

/* fuzz_pth: fd_pth_parse on arbitrary bytes (in an exact-size heap copy, so
 * ASan sees any read past the end); every accepted tensor is checked for
 * consistency, read in full, and converted to float32 when floating. */
#include "io/fd_pth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct fd_pth p;
	struct fd_err e;
	if (fd_pth_parse(&p, buf, size, "fuzz.pth", &e) == 0) {
		unsigned sum = 0;
		for (int i = 0; i < p.n; i++) {
			const struct fd_pth_tensor *t = &p.t[i];
			int64_t numel = 1;
			for (int d = 0; d < t->ndim; d++)
				numel *= t->shape[d];
			if (fd_pth_find(&p, t->name) != t || numel != t->numel ||
			    (size_t)t->numel * fd_dtype_size(t->dtype) != t->nbytes || (t->nbytes && !t->data))
				abort();
			for (size_t k = 0; k < t->nbytes; k++)
				sum += ((const uint8_t *)t->data)[k];
			if (t->numel < (1 << 20)) {
				float *f = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
				if (f && fd_pth_to_f32(t, f, t->numel, &e) == 0 && t->numel)
					sum += (unsigned)(f[0] == f[0]);
				free(f);
			}
		}
		fd_pth_free(&p);
		if (sum == 0xdeadbeef)
			buf[0] ^= 1;
	}
	free(buf);
	return 0;
}

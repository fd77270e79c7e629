/* fuzz_safetensors: fd_st_parse on arbitrary bytes (in an exact-size heap copy,
 * so ASan sees any read past the end); every accepted tensor's bytes are read. */
#include "io/fd_safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct fd_st s;
	struct fd_err e;
	if (fd_st_parse(&s, buf, size, "fuzz.safetensors", &e) == 0) {
		unsigned sum = 0;
		for (int i = 0; i < s.n; i++) {
			const struct fd_st_tensor *t = &s.t[i];
			if (fd_st_find(&s, t->name) == NULL || (size_t)t->numel * fd_dtype_size(t->dtype) != t->nbytes)
				abort();
			for (size_t k = 0; k < t->nbytes; k++)
				sum += ((const uint8_t *)t->data)[k];
		}
		for (int i = 0; i < s.nmeta; i++)
			if (fd_st_meta(&s, s.meta_key[i]) == NULL)
				abort();
		fd_st_close(&s);
		if (sum == 0xdeadbeef)
			buf[0] ^= 1;
	}
	free(buf);
	return 0;
}

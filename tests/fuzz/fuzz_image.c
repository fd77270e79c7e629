/* fuzz_image: fd_image_probe_mem and fd_image_decode_mem (full size and DCT
 * downscaled) on arbitrary bytes, in an exact-size heap copy so ASan sees any
 * read past the end; a small pixel limit keeps every run fast. A decoded
 * image must have the size the probe announced (or its draft-scaled size). */
#include "io/fd_image.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct fd_image_info info;
	struct fd_err e;
	int probed = fd_image_probe_mem(buf, size, &info, &e) == 0;
	for (int draft = 0; draft < 2; draft++) {
		struct fd_decode_opts o = {1 << 16, draft ? 7 : 0, draft ? 5 : 0};
		struct fd_image img;
		if (fd_image_decode_mem(buf, size, &o, &img, &e) != 0) {
			if (img.px || img.w || img.h)
				abort(); /* an error never leaves a partial image */
			continue;
		}
		if (!probed || (int64_t)info.w * info.h > o.max_pixels)
			abort();
		int s = img.scale;
		if (img.w != (info.w + s - 1) / s || img.h != (info.h + s - 1) / s)
			abort();
		unsigned sum = 0;
		for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++)
			sum += img.px[i];
		fd_image_free(&img);
		if (sum == 0xdeadbeef)
			abort(); /* keeps the reads */
	}
	free(buf);
	return 0;
}

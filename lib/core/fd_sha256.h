/* fd_sha256: SHA-256 (FIPS 180-4), for provenance hashes of inputs and for
 * checking downloaded files. */
#ifndef FD_SHA256_H
#define FD_SHA256_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"

struct fd_sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
	size_t nbuf;
};

void fd_sha256_init(struct fd_sha256 *s);
void fd_sha256_update(struct fd_sha256 *s, const void *data, size_t n);
/* Writes 65 bytes: 64 lowercase hex digits and a NUL. */
void fd_sha256_hex(struct fd_sha256 *s, char out[65]);
/* Hash a whole file. */
int fd_sha256_file(const char *path, char out[65], struct fd_err *e);

#endif

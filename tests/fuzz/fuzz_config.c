/* fuzz_config: the first line of the input is KEY=VALUE for fd_config_set, the
 * rest a config file for fd_config_merge. An accepted config must dump to
 * canonical JSON that merges back to the same dump. */
#include "core/fd_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t n1 = nl ? (size_t)(nl - (const char *)data) : size;
	char *set = strndup((const char *)data, n1);
	const char *text = nl ? nl + 1 : "";
	size_t tlen = nl ? size - n1 - 1 : 0;
	struct fd_config c;
	struct fd_err e;
	if (!set || fd_config_init(&c, &e) < 0) {
		free(set);
		return 0;
	}
	int ok = fd_config_merge(&c, text, tlen, "fuzz.json", &e) == 0;
	ok |= fd_config_set(&c, set, &e) == 0;
	if (ok) {
		char *d = fd_config_dump(&c, &e);
		struct fd_config c2;
		if (!d || fd_config_init(&c2, &e) < 0)
			abort();
		if (fd_config_merge(&c2, d, strlen(d), "dump.json", &e) < 0)
			abort(); /* our own canonical output must be a valid config */
		char *d2 = fd_config_dump(&c2, &e);
		if (!d2 || strcmp(d, d2) != 0)
			abort(); /* canonical form is a fixed point */
		free(d);
		free(d2);
		fd_config_free(&c2);
	}
	fd_config_free(&c);
	free(set);
	return 0;
}

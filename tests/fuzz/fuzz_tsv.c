/* fuzz_tsv: fd_table_parse on arbitrary bytes; a parsed table is read cell by
 * cell and written back, which must succeed (values cannot hold tabs/newlines). */
#include "core/fd_table.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fd_table t;
	struct fd_err e;
	if (fd_table_parse(&t, (const char *)data, size, "fuzz.tsv", &e) < 0)
		return 0;
	size_t sum = 0;
	for (size_t r = 0; r < t.nrow; r++)
		for (int c = 0; c < t.ncol; c++)
			sum += strlen(fd_table_get(&t, r, c));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f && fd_table_write(&t, f, &e) < 0)
		abort(); /* whatever parsed must be writable */
	if (f)
		fclose(f);
	free(buf);
	fd_table_free(&t);
	return sum == (size_t)-1;
}

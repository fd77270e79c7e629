/* cli_nn: the --device option of the tools that run a network (linked only
 * into NN_TOOLS, with libfdnn.a: it asks the op table which devices exist). */
#include "cli.h"
#include "nn/fd_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum fd_dev cli_device(const char *opt, const char *val, int *index)
{
	*index = 0;
	if (strcmp(val, "cpu") == 0)
		return FD_DEV_CPU;
	if (strncmp(val, "cuda", 4) == 0 && (val[4] == '\0' || val[4] == ':')) {
		if (val[4] == ':') {
			char *end;
			errno = 0;
			long n = strtol(val + 5, &end, 10);
			if (val[5] < '0' || val[5] > '9' || *end || errno || n > 63)
				cli_usage("%s: '%s': expected cuda:N with N in 0..63", opt, val);
			*index = (int)n;
		}
		return FD_DEV_CUDA;
	}
	cli_usage("%s: '%s' is not a device (cpu, cuda or cuda:N)", opt, val);
}

void cli_device_check(enum fd_dev dev, const char *val)
{
	if (dev == FD_DEV_CPU)
		return;
	if (!fd_backend_of(dev))
		cli_die("--device %s: this build of fd has no %s backend (only cpu)", val, fd_dev_name(dev));
	cli_die("--device %s: %s does not run on %s yet (only cpu)", val, cli_prog, fd_dev_name(dev));
}

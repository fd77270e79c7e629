/* cli_nn: the --device option of the tools that run a network (linked only
 * into NN_TOOLS, with libfdnn.a: it asks the op table which devices exist). */
#include "cli.h"
#include "nn/fd_backend.h"
#ifdef FD_HAVE_CUDA
#include "nn/fd_cuda.h"
#endif

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
#ifdef FD_HAVE_CUDA
	/* the one strong reference to the CUDA backend (fd_backend.c's is weak):
	 * it links the backend, and cuDNN/cuBLAS/cudart, into the NN tools */
	if (dev == FD_DEV_CUDA && fd_backend_of(dev) == &fd_backend_cuda) {
		struct fd_err e = {{0}};
		if (strcmp(val, "cuda") != 0 && strcmp(val, "cuda:0") != 0)
			cli_die("--device %s: only device 0 is used (cuda or cuda:0)", val);
		if (fd_cuda_device_count(&e) < 1)
			cli_die("--device %s: %s", val, e.msg);
		return;
	}
#endif
	if (!fd_backend_of(dev))
		cli_die("--device %s: this build of fd has no %s backend (only cpu)", val, fd_dev_name(dev));
	cli_die("--device %s: %s does not run on %s yet (only cpu)", val, cli_prog, fd_dev_name(dev));
}

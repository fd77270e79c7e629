/* fd-train: train one model on one fold of a pack, with per-epoch
 * checkpoints, resumable state and a log: an option parser around
 * lib/train/fd_train.h (the run). Notes: doc/train.md. */
#include "cli.h"
#include "core/fd_out.h"
#include "models/fd_model.h"
#include "train/fd_train.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char SYNOPSIS[] = "fd-train --pack PACK --fold K --config FILE... [--set KEY=VAL]... [--device DEV] -o RUNDIR";

static const char HELP[] =
	"Train one model on one fold of a pack (fd-pack's PACK.safetensors + PACK.tsv):\n"
	"training rows are those whose fold is a number other than K, validation rows\n"
	"those of fold K; 'test' and 'excluded' rows are never read. Configs are merged\n"
	"in order, then --set; unknown keys are errors (configs/README.md).\n"
	"\n"
	"  --pack PACK        the pack (.safetensors; PACK.tsv beside it)\n"
	"  --fold K           validation fold, 0..999\n"
	"  --config FILE      JSON config, repeatable (later files merge over earlier)\n"
	"  --set KEY=VAL      override one key (a.b=value; JSON or a plain string)\n"
	"  -o RUNDIR          run directory (created; must not hold another run)\n"
	"  --resume           continue the run in RUNDIR from its last saved state\n"
	"                     (only 'epochs' may differ from the saved config)\n"
	"  --device DEV       cpu (default), cuda or cuda:0 (an NVIDIA GPU, in a build with CUDA)\n"
	"                     only and refuses cuda (exit 1, nothing written)\n"
	"  --threads N        compute threads (default: config 'threads', else all CPUs);\n"
	"                     loader threads come from 'num_workers'\n"
	"  --stop-after N     save the state and exit 0 after N training steps of this\n"
	"                     invocation (time-sliced jobs; --resume continues)\n"
	"  --list-models      print name, parameters (1 logit), forward GFLOPs at 224\n"
	"                     (multiply-adds, torchvision's convention) and exit\n"
	"  -q                 no progress or info lines\n"
	"\n"
	"RUNDIR receives config.json (resolved config, at start), log.tsv (one row per\n"
	"epoch), best.safetensors (best validation AUC; accuracy when num_classes > 2),\n"
	"last.safetensors, state.safetensors (everything --resume needs) and, last of\n"
	"all when training ends, run.json: a run is complete when run.json exists.\n"
	"Config 'init': \"scratch\" (the default), \"imagenet\" (torchvision's ImageNet\n"
	"weights of the model, looked for in $FD_WEIGHTS_DIR, else <exe>/../../models/\n"
	"torchvision, else <exe>/../share/fd/torchvision; 'make weights' fetches them)\n"
	"or a checkpoint's path; a head of another size is re-initialised (run.json\n"
	"'init' says what was loaded and what re-initialised).\n"
	"SIGINT/SIGTERM save the state at the next step boundary and exit 130/143.\n"
	"\n"
	"Exit status: 0 success, 1 bad data, bad config or NaN loss, 2 bad usage,\n"
	"130/143 interrupted (state saved).\n";

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

/* The run's messages: info lines unless -q, warnings always. */
static void say(void *arg, enum fd_run_say kind, const char *msg)
{
	if (kind == FD_RUN_WARN)
		cli_warn("%s", msg);
	else
		cli_info("%s", msg);
}

/* Where config init "imagenet" looks: $FD_WEIGHTS_DIR alone when set, else
 * models/torchvision of the source tree the executable was built in (make
 * weights puts the files there), then share/fd/torchvision of an install
 * prefix. dirs[] point into buf. */
#define WDIR_MAX (PATH_MAX + 64)
static int weights_dirs(const char *dirs[2], char buf[2][WDIR_MAX])
{
	const char *env = getenv("FD_WEIGHTS_DIR");
	if (env && *env) {
		dirs[0] = env;
		return 1;
	}
	char exe[PATH_MAX], top[PATH_MAX + 16];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (k <= 0)
		return 0;
	exe[k] = 0;
	*strrchr(exe, '/') = 0;
	snprintf(top, sizeof top, "%s/../..", exe);
	char *real = realpath(top, NULL);
	snprintf(buf[0], WDIR_MAX, "%s/models/torchvision", real ? real : top);
	free(real);
	snprintf(top, sizeof top, "%s/..", exe);
	real = realpath(top, NULL);
	snprintf(buf[1], WDIR_MAX, "%s/share/fd/torchvision", real ? real : top);
	free(real);
	dirs[0] = buf[0];
	dirs[1] = buf[1];
	return 2;
}

static void list_models(void)
{
	printf("name\tparams\tgflops_224\tsummary\n");
	for (int i = 0; i < fd_model_count(); i++) {
		const struct fd_model_arch *a = fd_model_arch_at(i);
		struct fd_model *m;
		struct fd_err e;
		uint64_t macs = 0;
		e.msg[0] = '\0';
		if (fd_model_new(a->name, 1, 1, &m, &e) < 0 || fd_model_macs(m, 224, &macs, &e) < 0)
			cli_fail(&e);
		printf("%s\t%lld\t%.3f\t%s\n", a->name, (long long)fd_model_params(m), (double)macs / 1e9, a->summary);
		fd_model_free(m);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		cli_die("cannot write to standard output");
	exit(0);
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-train", SYNOPSIS, HELP);
	const char *pack = NULL, *dir = NULL, *configs[64], *sets[256];
	int nconf = 0, nset = 0, fold = -1, threads = 0, resume = 0;
	int64_t stop_after = -1;
	enum fd_dev dev = FD_DEV_CPU;
	const char *dev_name = "cpu";
	int dev_index;
	enum { O_PACK, O_FOLD, O_CONFIG, O_SET, O_OUT, O_THREADS, O_STOP_AFTER, O_DEVICE, O_RESUME, O_LIST_MODELS };
	static const struct cli_option opts[] = {
		[O_PACK] = { "--pack", CLI_VALUE },
		[O_FOLD] = { "--fold", CLI_VALUE },
		[O_CONFIG] = { "--config", CLI_VALUE },
		[O_SET] = { "--set", CLI_VALUE },
		[O_OUT] = { "-o", CLI_VALUE },
		[O_THREADS] = { "--threads", CLI_VALUE },
		[O_STOP_AFTER] = { "--stop-after", CLI_VALUE },
		[O_DEVICE] = { "--device", CLI_VALUE },
		[O_RESUME] = { "--resume", CLI_FLAG },
		[O_LIST_MODELS] = { "--list-models", CLI_FLAG },
	};
	struct cli_args args;
	const char *val;
	int k;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((k = cli_next(&args, &val)) != CLI_DONE) {
		switch (k) {
		case O_PACK: pack = val; break;
		case O_FOLD: fold = (int)cli_int("--fold", val, 0, 999); break;
		case O_CONFIG:
			if (nconf == 64)
				cli_usage("more than 64 --config files");
			configs[nconf++] = val;
			break;
		case O_SET:
			if (nset == 256)
				cli_usage("more than 256 --set");
			sets[nset++] = val;
			break;
		case O_OUT: dir = val; break;
		case O_THREADS: threads = (int)cli_int("--threads", val, 1, 1024); break;
		case O_STOP_AFTER: stop_after = cli_int("--stop-after", val, 1, INT64_MAX); break;
		case O_DEVICE:
			dev = cli_device("--device", val, &dev_index);
			dev_name = val;
			break;
		case O_RESUME: resume = 1; break;
		case O_LIST_MODELS: list_models(); break;
		default: cli_usage("unexpected argument '%s'", val);
		}
	}
	if (!pack)
		cli_usage("--pack is required");
	if (fold < 0)
		cli_usage("--fold is required");
	if (!nconf)
		cli_usage("--config is required");
	if (!dir || !*dir)
		cli_usage("-o RUNDIR is required");
	cli_device_check(dev, dev_name);
	/* the run directory is no input's, is locked for this writer, and holds
	 * nothing a new run would lose (before anything is read) */
	char *side = cli_sidecar(pack);
	{
		/* RUNDIR.lock lives beside RUNDIR: its parent must exist (fd-train
		 * makes RUNDIR with its parents anyway) */
		struct fd_err pe = {{0}};
		char *parent = strdup(dir), *slash = parent ? strrchr(parent, '/') : NULL;
		if (slash && slash != parent) {
			*slash = '\0';
			if (fd_mkdir_p(parent, &pe) < 0)
				cli_fail(&pe);
		}
		free(parent);
	}
	cli_outputs((const char *[]){pack, side}, 2, (const char *[]){dir}, 1);
	free(side);
	{
		struct fd_err de = {{0}};
		if (fd_run_check_dir(dir, resume, &de) < 0)
			cli_fail(&de);
	}

	const char *wdirs[2];
	static char wbuf[2][WDIR_MAX];
	int nwdirs = weights_dirs(wdirs, wbuf);
	struct fd_run_opts o = {
		.pack = pack, .fold = fold, .configs = configs, .nconfigs = nconf, .sets = sets, .nsets = nset,
		.dir = dir, .threads = threads, .dev = dev, .resume = resume, .stop_after = stop_after,
		.cmdline = cli_cmdline(), .stop = &got_signal, .progress = cli_quiet ? NULL : stderr, .say = say,
		.weights_dirs = wdirs, .nweights_dirs = nwdirs,
	};
	struct fd_run *r;
	struct fd_err e;
	e.msg[0] = '\0';
	if (fd_run_open(&r, &o, &e) < 0)
		cli_fail(&e);
	int rc = fd_run_start(r, &e);
	if (rc < 0)
		cli_fail(&e);
	if (rc == FD_RUN_COMPLETE) {
		fd_run_close(r);
		return 0;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND; /* a second signal kills at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	while ((rc = fd_run_epoch(r, &e)) == FD_RUN_MORE)
		;
	if (rc < 0)
		cli_fail(&e);
	int64_t epoch, batch;
	fd_run_position(r, &epoch, &batch);
	if (rc == FD_RUN_STOPPED)
		cli_info("stopped after the requested steps in epoch %lld: state saved in '%s'", (long long)epoch + 1,
			 dir);
	if (rc == FD_RUN_INTERRUPTED) {
		cli_info("interrupted by %s in epoch %lld after %lld batches: state saved in '%s' (fd-train --resume continues)",
			 got_signal == SIGINT ? "SIGINT" : "SIGTERM", (long long)epoch + 1, (long long)batch, dir);
		rc = 128 + got_signal;
	} else {
		rc = 0;
	}
	fd_run_close(r);
	return rc;
}

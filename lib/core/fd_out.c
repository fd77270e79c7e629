/* fd_out: temp-then-rename output files and their signal-time cleanup. */
#include "core/fd_out.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIVE_MAX 64
/* Registry of temporaries to remove on a fatal signal (see the header). */
static char *volatile live[LIVE_MAX];

static void live_add(char *p)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (!live[i]) {
			live[i] = p;
			return;
		}
}

static void live_del(const char *p)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live[i] == p)
			live[i] = NULL;
}

static void on_signal(int sig)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live[i])
			unlink(live[i]);
	signal(sig, SIG_DFL);
	raise(sig);
}

void fd_out_install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

int fd_out_open(struct fd_out *o, const char *path, struct fd_err *e)
{
	memset(o, 0, sizeof *o);
	if (!path || strcmp(path, "-") == 0) {
		o->f = stdout;
		return 0;
	}
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path + 1) : 0;
	size_t n = strlen(path) + 32;
	char *tmp = malloc(n);
	char *final = strdup(path);
	if (!tmp || !final) {
		free(tmp);
		free(final);
		return fd_err_set(e, "cannot write '%s': out of memory", path);
	}
	snprintf(tmp, n, "%.*s.%s.tmp.XXXXXX", (int)dlen, path, path + dlen);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		int er = errno;
		free(tmp);
		free(final);
		return fd_err_sys(e, er, "cannot write '%s'", path);
	}
	mode_t um = umask(0);
	umask(um);
	fchmod(fd, 0666 & ~um);
	o->f = fdopen(fd, "wb");
	if (!o->f) {
		int er = errno;
		close(fd);
		unlink(tmp);
		free(tmp);
		free(final);
		return fd_err_sys(e, er, "cannot write '%s'", path);
	}
	o->path = final;
	o->tmp = tmp;
	live_add(tmp);
	return 0;
}

int fd_out_commit(struct fd_out *o, struct fd_err *e)
{
	if (!o->tmp) { /* stdout */
		int bad = o->f && (fflush(o->f) != 0 || ferror(o->f));
		o->f = NULL;
		if (bad)
			return fd_err_sys(e, errno, "cannot write standard output");
		return 0;
	}
	int rc = 0, er = 0;
	if (fflush(o->f) != 0 || ferror(o->f))
		rc = -1, er = errno ? errno : EIO;
	if (rc == 0 && fsync(fileno(o->f)) != 0 && errno != EINVAL)
		rc = -1, er = errno;
	if (fclose(o->f) != 0 && rc == 0)
		rc = -1, er = errno;
	o->f = NULL;
	if (rc == 0 && rename(o->tmp, o->path) != 0)
		rc = -1, er = errno;
	if (rc != 0) {
		unlink(o->tmp);
		fd_err_sys(e, er, "cannot write '%s'", o->path);
	}
	live_del(o->tmp);
	free(o->tmp);
	free(o->path);
	o->tmp = o->path = NULL;
	return rc;
}

void fd_out_abort(struct fd_out *o)
{
	if (!o)
		return;
	if (o->tmp) {
		if (o->f)
			fclose(o->f);
		unlink(o->tmp);
		live_del(o->tmp);
		free(o->tmp);
		free(o->path);
	} else if (o->f && o->f != stdout) {
		fclose(o->f);
	}
	memset(o, 0, sizeof *o);
}

int fd_mkdir_p(const char *path, struct fd_err *e)
{
	char *p = strdup(path);
	if (!p)
		return fd_err_set(e, "cannot create '%s': out of memory", path);
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0777) != 0 && errno != EEXIST) {
				int er = errno;
				free(p);
				return fd_err_sys(e, er, "cannot create directory '%s'", path);
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return fd_err_set(e, "cannot create directory '%s': not a directory", path);
	return 0;
}

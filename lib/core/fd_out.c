/* fd_out: temp-then-rename output files and their signal-time cleanup. */
#include "core/fd_out.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIVE_MAX 64
/* Registry of temporaries and locks to remove on a fatal signal or at exit
 * (see the header). */
static char *volatile live[LIVE_MAX];
static char *volatile locks[LIVE_MAX];

static void reg_add(char *volatile *r, char *p)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (!r[i]) {
			r[i] = p;
			return;
		}
}

static void reg_del(char *volatile *r, const char *p)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (r[i] == p)
			r[i] = NULL;
}

static void on_signal(int sig)
{
	for (int i = 0; i < LIVE_MAX; i++) {
		if (live[i])
			unlink(live[i]);
		if (locks[i])
			unlink(locks[i]);
	}
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

void fd_out_cleanup(void)
{
	for (int i = 0; i < LIVE_MAX; i++) {
		char *t = live[i], *l = locks[i];
		live[i] = locks[i] = NULL;
		if (t)
			unlink(t); /* the string belongs to its fd_out */
		if (l) {
			unlink(l);
			free(l);
		}
	}
}

/* 1 when process pid certainly no longer exists. */
static int pid_gone(long pid)
{
	return pid > 0 && pid <= INT_MAX && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Remove ".<base>.tmp.<pid>.XXXXXX" in dir whose pid is gone. Best effort: a
 * temporary that cannot be removed is only litter, not an error. */
static void remove_stale_tmps(const char *dir, const char *base)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	size_t bl = strlen(base);
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (n[0] != '.' || strncmp(n + 1, base, bl) != 0 || strncmp(n + 1 + bl, ".tmp.", 5) != 0)
			continue;
		char *end;
		long pid = strtol(n + bl + 6, &end, 10);
		if (end == n + bl + 6 || *end != '.' || strlen(end + 1) != 6 || !pid_gone(pid))
			continue;
		unlinkat(dirfd(d), n, 0);
	}
	closedir(d);
}

int fd_out_is_special(const char *path)
{
	struct stat st;
	return path && strcmp(path, "-") != 0 && stat(path, &st) == 0 &&
	       (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

/* Open an existing device or FIFO for writing in place. */
static int open_direct(struct fd_out *o, const char *path, struct fd_err *e)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fd_err_sys(e, errno, "cannot write '%s'", path);
	o->f = fdopen(fd, "wb");
	if (!o->f) {
		int er = errno;
		close(fd);
		return fd_err_sys(e, er, "cannot write '%s'", path);
	}
	o->direct = 1;
	return 0;
}

int fd_out_open(struct fd_out *o, const char *path, struct fd_err *e)
{
	memset(o, 0, sizeof *o);
	if (!path || strcmp(path, "-") == 0) {
		o->f = stdout;
		return 0;
	}
	struct stat st;
	char *final = NULL;
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		/* a link is kept: the file it names is what gets replaced */
		final = realpath(path, NULL);
		if (!final)
			return fd_err_set(e, "cannot write '%s': a symbolic link to a missing file", path);
	} else {
		final = strdup(path);
	}
	if (!final)
		return fd_err_set(e, "cannot write '%s': out of memory", path);
	if (stat(final, &st) == 0) {
		if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
			int rc = open_direct(o, final, e);
			free(final);
			return rc;
		}
		if (!S_ISREG(st.st_mode)) {
			free(final);
			return fd_err_set(e, "cannot write '%s': %s", path,
					  S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
		}
	}
	const char *slash = strrchr(final, '/');
	size_t dlen = slash ? (size_t)(slash - final + 1) : 0;
	size_t n = strlen(final) + 48;
	char *tmp = malloc(n);
	char *dir = strndup(dlen ? final : "./", dlen ? dlen : 2);
	if (!tmp || !dir) {
		free(tmp);
		free(dir);
		free(final);
		return fd_err_set(e, "cannot write '%s': out of memory", path);
	}
	remove_stale_tmps(dir, final + dlen);
	free(dir);
	snprintf(tmp, n, "%.*s.%s.tmp.%ld.XXXXXX", (int)dlen, final, final + dlen, (long)getpid());
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
	reg_add(live, tmp);
	return 0;
}

int fd_out_commit(struct fd_out *o, struct fd_err *e)
{
	if (o->direct) {
		int bad = fflush(o->f) != 0 || ferror(o->f);
		int er = errno ? errno : EIO;
		if (fclose(o->f) != 0 && !bad)
			bad = 1, er = errno;
		o->f = NULL;
		o->direct = 0;
		return bad ? fd_err_sys(e, er, "cannot write the output device or FIFO") : 0;
	}
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
	reg_del(live, o->tmp);
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
		reg_del(live, o->tmp);
		free(o->tmp);
		free(o->path);
	} else if (o->f && o->f != stdout) {
		fclose(o->f); /* a device or FIFO: closed, never unlinked */
	}
	memset(o, 0, sizeof *o);
}

/* Resolved form of path for comparison: realpath when it exists, else
 * realpath(dirname) + "/" + basename; NULL when neither resolves. */
static char *resolve(const char *path)
{
	char *r = realpath(path, NULL);
	if (r)
		return r;
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	char *rd = dir ? realpath(dir, NULL) : NULL;
	free(dir);
	if (!rd)
		return NULL;
	const char *base = slash ? slash + 1 : path;
	size_t n = strlen(rd) + strlen(base) + 2;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s/%s", strcmp(rd, "/") ? rd : "", base);
	free(rd);
	return out;
}

/* 1 when a and b (b existing or not) are the same file. */
static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
	if (ea && eb)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	if (ea != eb)
		return 0;
	char *ra = resolve(a), *rb = resolve(b);
	int same = ra && rb && strcmp(ra, rb) == 0;
	free(ra);
	free(rb);
	return same;
}

/* 1 when path (existing or not) resolves to a file under directory dir. */
static int inside(const char *dir, const char *path)
{
	char *rd = realpath(dir, NULL), *rp = resolve(path);
	size_t l = rd ? strlen(rd) : 0;
	int in = rd && rp && strncmp(rd, rp, l) == 0 && (rp[l] == '/' || l == 1);
	free(rd);
	free(rp);
	return in;
}

static int skip_io(const char *p)
{
	return !p || !*p || strcmp(p, "-") == 0 || fd_out_is_special(p);
}

int fd_out_check_io(const char *const *in, int nin, const char *const *out, int nout,
		    struct fd_err *e)
{
	for (int j = 0; j < nout; j++) {
		if (skip_io(out[j]))
			continue;
		for (int i = 0; i < nin; i++) {
			struct stat st;
			if (skip_io(in[i]) || stat(in[i], &st) != 0)
				continue;
			if (same_file(in[i], out[j]))
				return fd_err_set(e, "output '%s' is the input '%s': refusing to write over an input",
						  out[j], in[i]);
			if (S_ISDIR(st.st_mode) && inside(in[i], out[j]))
				return fd_err_set(e, "output '%s' is inside the input directory '%s': refusing to "
						  "write among the files being read", out[j], in[i]);
		}
		for (int k = 0; k < j; k++)
			if (!skip_io(out[k]) && same_file(out[k], out[j]))
				return fd_err_set(e, "output '%s' is given twice (also as '%s')", out[j], out[k]);
	}
	return 0;
}

/* Create lp holding "<pid>\n", atomically: the PID is written to a private
 * temporary first and the temporary hard-linked to lp, so no other writer ever
 * reads an empty lock (with a plain O_EXCL create it could, between the create
 * and the write, and would then report the lock without its holder). Where the
 * file system has no hard links, the O_EXCL create is used instead. Returns 0
 * (made), -1 with errno EEXIST or another create error, or a positive errno
 * when writing the PID failed. */
static int make_lock(const char *lp)
{
	char buf[32];
	int k = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	size_t n = strlen(lp) + 32;
	char *tmp = malloc(n);
	if (tmp) {
		snprintf(tmp, n, "%s.%ld.new", lp, (long)getpid());
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
		if (fd >= 0) {
			int bad = write(fd, buf, (size_t)k) != k;
			int er = errno;
			if (close(fd) != 0 && !bad)
				bad = 1, er = errno;
			if (bad) {
				unlink(tmp);
				free(tmp);
				return er ? er : EIO;
			}
			int r = link(tmp, lp), ler = errno;
			unlink(tmp);
			free(tmp);
			if (r == 0)
				return 0;
			if (ler != EPERM && ler != ENOTSUP && ler != EOPNOTSUPP && ler != EXDEV) {
				errno = ler;
				return -1;
			}
		} else {
			free(tmp);
		}
	}
	int fd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return -1;
	int bad = write(fd, buf, (size_t)k) != k;
	int er = errno;
	if (close(fd) != 0 && !bad)
		bad = 1, er = errno;
	if (bad) {
		unlink(lp);
		return er ? er : EIO;
	}
	return 0;
}

int fd_out_lock(const char *target, long *stale, struct fd_err *e)
{
	*stale = 0;
	size_t n = strlen(target) + 6;
	char *lp = malloc(n);
	if (!lp)
		return fd_err_set(e, "cannot lock '%s': out of memory", target);
	size_t tl = strlen(target);
	while (tl > 1 && target[tl - 1] == '/') /* "runs/x/" locks as "runs/x.lock" */
		tl--;
	snprintf(lp, n, "%.*s.lock", (int)tl, target);
	for (int i = 0; i < LIVE_MAX; i++)
		if (locks[i] && strcmp(locks[i], lp) == 0) {
			free(lp);
			return 0;
		}
	/* a lock that vanishes between the failed create and the read (its
	 * holder just finished) is tried again; a stale one is taken over once */
	for (int tries = 0, took = 0; tries < 64; tries++) {
		int made = make_lock(lp);
		if (made == 0) {
			reg_add(locks, lp);
			return 0;
		}
		if (made > 0) {
			free(lp);
			return fd_err_sys(e, made, "cannot lock '%s'", target);
		}
		if (errno != EEXIST) {
			int er = errno;
			fd_err_sys(e, er, "cannot lock '%s': cannot create '%s'", target, lp);
			free(lp);
			return -1;
		}
		char buf[32] = {0};
		long pid = 0;
		int rfd = open(lp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (rfd < 0 && errno == ENOENT)
			continue;
		if (rfd >= 0) {
			ssize_t r = read(rfd, buf, sizeof buf - 1);
			close(rfd);
			if (r > 0)
				pid = strtol(buf, NULL, 10);
		}
		if (!took && pid_gone(pid) && unlink(lp) == 0) {
			*stale = pid;
			took = 1;
			continue;
		}
		if (pid > 0)
			fd_err_set(e, "cannot write '%s': '%s' is held by process %ld (another writer of the "
				      "same output; if that process is gone, remove the lock)", target, lp, pid);
		else
			fd_err_set(e, "cannot write '%s': '%s' exists (another writer of the same output; "
				      "if none is running, remove the lock)", target, lp);
		free(lp);
		return -1;
	}
	free(lp);
	return fd_err_set(e, "cannot lock '%s'", target);
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

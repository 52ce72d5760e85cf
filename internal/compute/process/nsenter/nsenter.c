// nsenter joins the namespaces that a multi-threaded Go program cannot join:
// the user namespace and the mount namespace (the kernel refuses setns(2)
// for those once a process has more than one thread). It runs as a
// constructor, before the Go runtime starts its threads, and does nothing
// unless the parent runsilo process asked for it through the environment.
//
// _SILO_NSENTER="user:/proc/1/ns/user,mnt:/proc/1/ns/mnt" joins those
// namespaces in that order; _SILO_UNSHARE=<decimal clone flags> then unshares
// new ones (used when a user namespace is joined, so that the new namespaces
// are owned by it), and a time namespace, whose offsets
// (_SILO_TIMENS_OFFSETS) must be written before any process enters it: the
// container's process does at its execve. Any failure is fatal: a
// half-entered process must not run the container's code.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
	fprintf(stderr, "runsilo nsenter: %s %s: %s\n", what, arg, strerror(errno));
	_exit(1);
}

__attribute__((constructor)) static void silo_nsenter(void) {
	const char *spec = getenv("_SILO_NSENTER");
	const char *unsh = getenv("_SILO_UNSHARE");
	const char *offsets = getenv("_SILO_TIMENS_OFFSETS");
	if (spec == NULL && unsh == NULL)
		return;
	if (spec != NULL) {
		char buf[4096];
		if (strlen(spec) >= sizeof(buf)) {
			errno = ENAMETOOLONG;
			die("parse", "_SILO_NSENTER");
		}
		strcpy(buf, spec);
		for (char *save = NULL, *item = strtok_r(buf, ",", &save); item != NULL;
		     item = strtok_r(NULL, ",", &save)) {
			char *path = strchr(item, ':');
			if (path == NULL) {
				errno = EINVAL;
				die("parse", item);
			}
			*path++ = '\0';
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				die("open namespace", path);
			if (setns(fd, 0) < 0)
				die("setns", path);
			close(fd);
		}
	}
	if (unsh != NULL) {
		int flags = atoi(unsh);
		if (flags != 0 && unshare(flags) < 0)
			die("unshare", unsh);
	}
	if (offsets != NULL) {
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", "/proc/self/timens_offsets");
		size_t n = strlen(offsets);
		if (write(fd, offsets, n) != (ssize_t)n)
			die("write", "/proc/self/timens_offsets");
		close(fd);
	}
	unsetenv("_SILO_NSENTER");
	unsetenv("_SILO_UNSHARE");
	unsetenv("_SILO_TIMENS_OFFSETS");
}

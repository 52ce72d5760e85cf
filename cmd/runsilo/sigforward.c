// The signal forwarder of `runsilo run`: every signal runsilo receives is
// the container's, as with runc. It is C, not os/signal, because
// signal.Notify enables each signal with a round trip to the runtime's
// signal-mask thread: for all 60-odd signals that was ~250 context
// switches per container, on the start path, where a sigaction each does.
//
// The handler only calls kill(2) and uses lock-free atomics, so it is
// async-signal-safe; SA_ONSTACK runs it on the Go thread's signal stack, as
// the Go runtime requires of handlers installed by C code. Signals that
// arrive before the container's pid is known are kept in a bit set and
// sent once it is.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "sigforward.h"

// target: 0 = not yet known (keep signals), > 0 = forward, < 0 = drop.
static int target;
// pending has bit (sig - 1) set for each signal kept while target was 0.
static uint64_t pending;

static void flush(int pid) {
	uint64_t p = __atomic_exchange_n(&pending, 0, __ATOMIC_SEQ_CST);
	for (int sig = 1; sig <= 64; sig++)
		if (p & (UINT64_C(1) << (sig - 1)))
			kill(pid, sig);
}

static void forward(int sig) {
	int saved = errno;
	int pid = __atomic_load_n(&target, __ATOMIC_SEQ_CST);
	if (pid == 0) {
		__atomic_fetch_or(&pending, UINT64_C(1) << (sig - 1), __ATOMIC_SEQ_CST);
		// The pid may have been published since the load above; whoever
		// exchanges the set first sends it.
		pid = __atomic_load_n(&target, __ATOMIC_SEQ_CST);
		if (pid > 0)
			flush(pid);
	} else if (pid > 0) {
		kill(pid, sig);
	}
	errno = saved;
}

int silo_forward_install(const int *sigs, int n) {
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (int i = 0; i < n; i++) {
		if (sigs[i] < 1 || sigs[i] > 64)
			return EINVAL;
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return errno;
	}
	return 0;
}

void silo_forward_to(int pid) {
	__atomic_store_n(&target, pid, __ATOMIC_SEQ_CST);
	if (pid > 0)
		flush(pid);
	else if (pid < 0)
		__atomic_store_n(&pending, 0, __ATOMIC_SEQ_CST);
}

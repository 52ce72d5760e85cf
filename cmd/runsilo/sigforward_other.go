//go:build !amd64

package main

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// installForwarder makes every forwarded signal runsilo receives from now
// on go to the pid given to forwardTo; until then they are kept. Outside
// amd64 it uses os/signal: correct, but each signal costs a round trip to
// the runtime's signal thread when installed (see sigforward.go).
func installForwarder() error {
	sigs := forwardedSignals()
	ch := make(chan os.Signal, len(sigs))
	osSigs := make([]os.Signal, len(sigs))
	for i, s := range sigs {
		osSigs[i] = s
	}
	signal.Notify(ch, osSigs...)
	go func() {
		for s := range ch {
			sig := s.(syscall.Signal)
			switch pid := int(atomic.LoadInt32(&forwardTarget)); {
			case pid > 0:
				_ = syscall.Kill(pid, sig)
			case pid == 0:
				atomic.OrUint64(&forwardPending, 1<<(uint(sig)-1))
				if pid := int(atomic.LoadInt32(&forwardTarget)); pid > 0 {
					sendPending(pid, atomic.SwapUint64(&forwardPending, 0))
				}
			}
		}
	}()
	return nil
}

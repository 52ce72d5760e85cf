package process

import (
	"fmt"
	"os"
	"time"
)

// Debug turns on step timing on stderr (runsilo --debug): each line has
// the monotonic time, so the parent's and init's lines interleave in order.
var Debug = os.Getenv("_SILO_DEBUG") == "1"

// Trace logs one step of the start path when Debug is on (for callers
// outside the package, such as the CLI's own steps).
func Trace(step string) { trace(step) }

// trace logs one step of the start path when Debug is on.
func trace(step string) {
	if Debug {
		fmt.Fprintf(os.Stderr, "runsilo[%d] %.3fms %s\n", os.Getpid(), float64(time.Now().UnixNano()%1e9)/1e6, step)
	}
}

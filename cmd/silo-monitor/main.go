// Command silo-monitor is the per-container monitor (the role conmon or a
// containerd shim plays): started by silod with the flags of
// monitor.Config, it detaches, runs the container through the OCI runtime,
// writes its output to the json-file log, serves a control socket and
// records the exit status. See internal/engine/monitor.
//
// It is built static and without cgo, and kept free of heavy imports: one
// of it stays resident per running container.
package main

import (
	"os"

	"github.com/silo-containers/silo/internal/engine/monitor"
)

func main() {
	os.Exit(monitor.Main(os.Args[1:]))
}

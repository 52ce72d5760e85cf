// Package nsenter links a small C constructor into the binary that joins
// user and mount namespaces before the Go runtime starts. Importing it for
// its side effect is enough; the environment variables below drive it.
package nsenter

// #cgo CFLAGS: -Wall -O2
import "C"

const (
	// EnvJoin lists "type:path" pairs, comma separated, joined in order.
	EnvJoin = "_SILO_NSENTER"
	// EnvUnshare holds clone flags (decimal) to unshare after joining.
	EnvUnshare = "_SILO_UNSHARE"
	// EnvTimeOffsets holds /proc/self/timens_offsets lines for a new time
	// namespace ("boottime 1000 0\n…").
	EnvTimeOffsets = "_SILO_TIMENS_OFFSETS"
)

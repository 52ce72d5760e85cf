// Package nsenter links a small C constructor into runsilo-helper that
// joins user, mount and time namespaces before the Go runtime starts its
// threads (the kernel refuses setns(2) of a user or time namespace to a
// process with more than one). Importing it for its side effect is enough;
// the environment variables the runtime sets (process.nsPlan.env) drive it.
package nsenter

// #cgo CFLAGS: -Wall -O2
import "C"

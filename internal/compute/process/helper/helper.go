// Package helper finds runsilo-helper, the binary that does, for runsilo
// (built without cgo), the two things Go cannot do alone: compile seccomp
// profiles with libseccomp (package seccomp, on a cache miss) and join
// user and time namespaces, which the kernel refuses to a process with more
// than one thread (package process). Keeping C out of runsilo itself spares
// every container start the C library's start-up and ~1 MB of resident
// memory, twice: runsilo and its init.
package helper

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Name is the helper's file name.
const Name = "runsilo-helper"

// Path returns where runsilo-helper is: beside this binary (bin/ of a
// build, or where make install put both), else the first in $PATH. When
// neither exists it returns the path beside this binary, so that the error
// of whatever needed it names where it was looked for. Tests replace it.
var Path = sync.OnceValue(func() string {
	beside := Name
	if exe, err := os.Executable(); err == nil {
		beside = filepath.Join(filepath.Dir(exe), Name)
		if _, err := os.Stat(beside); err == nil {
			return beside
		}
	}
	if p, err := exec.LookPath(Name); err == nil {
		return p
	}
	return beside
})

package engine

import (
	"fmt"
	"os"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
)

// --init: Docker runs a tiny init (tini) as the container's process 1,
// which reaps zombies and forwards signals to the real command. silo uses
// Debian's static tini (package tini), bind-mounted read-only at Docker's
// path, /sbin/docker-init, so that images see what they see under Docker.

// initBinary is the static tini on the host; a variable for tests.
var initBinary = "/usr/bin/tini-static"

// initPath is where the init appears in the container.
const initPath = "/sbin/docker-init"

// applyInit makes spec run its process under the init when host asks for
// it.
func applyInit(spec *specs.Spec, host *container.HostConfig) error {
	if host == nil || host.Init == nil || !*host.Init {
		return nil
	}
	fi, err := os.Stat(initBinary)
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("--init: %s is not installed (apt-get install tini): %w", initBinary, errdefs.ErrInvalidArgument)
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return fmt.Errorf("--init: no command to run: %w", errdefs.ErrInvalidArgument)
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: initPath, Type: "bind", Source: initBinary,
		Options: []string{"rbind", "rprivate", "ro", "nosuid", "nodev"},
	})
	spec.Process.Args = append([]string{initPath, "--"}, spec.Process.Args...)
	return nil
}

// withoutInit is the container's own command: args without the init
// applyInit put first (inspect's Path and Args and ps show it, as
// Docker's do).
func withoutInit(args []string, host *container.HostConfig) []string {
	if host != nil && host.Init != nil && *host.Init && len(args) >= 2 && args[0] == initPath && args[1] == "--" {
		return args[2:]
	}
	return args
}

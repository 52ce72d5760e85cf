//go:build integration

package build

import (
	"testing"

	"github.com/silo-containers/silo/test/harness"
)

const cgroupParent = "/silo-itest-build"

// daemon is one silod under test (test/harness), with this package's
// helpers.
type daemon struct{ *harness.Daemon }

func newDaemon(t *testing.T) *daemon {
	return &daemon{harness.NewDaemon(t, cgroupParent)}
}

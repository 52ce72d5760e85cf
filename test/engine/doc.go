// Package engine holds root-only integration tests of silod and the silo
// CLI (and the stock docker CLI against silod): build tag "integration".
//
//	go test -tags integration -count=1 -v ./test/engine/
//
// They use the repository's bin/silod, bin/silo, bin/silo-monitor and
// bin/runsilo (make builds them all); they skip when one is missing. Each test runs its
// own silod on a socket, data root and exec root in t.TempDir(), with
// containers under the cgroup /silo-itest-engine, and checks in its cleanup
// that no mount, loop device, cgroup or process is left behind.
package engine

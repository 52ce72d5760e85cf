// Package integration holds root-only integration tests for an OCI runtime with
// runc's command line (runsilo, or runc/crun for comparison).
//
// The tests live in files guarded by the "integration" build tag and must run
// as root:
//
//	go test -tags integration -count=1 ./test/...
//
// The runtime under test is taken from the RUNTIME environment variable; by
// default it is the repository's bin/runsilo, and the tests skip when that does
// not exist. Examples:
//
//	RUNTIME=$(command -v runc) go test -tags integration -count=1 ./test/...
//	go test -tags integration -count=1 -run 'TestLifecycle' -v ./test/runtime/
//
// Every test uses its own --root state directory and bundle in t.TempDir(), a
// unique container id and a unique cgroupsPath under /silo-itest, and checks
// in its cleanup that the runtime left no mount, cgroup or process behind.
package integration

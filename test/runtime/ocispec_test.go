//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/engine/ocispec"
)

// TestDockerDefaultsRun: the spec the engine generates with Docker's
// defaults (capabilities, the default seccomp profile, masked paths, /dev
// and /dev/shm) runs under the runtime, with a memory limit and a user.
func TestDockerDefaultsRun(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"true"})
	mem := int64(64 << 20)
	s, err := ocispec.Generate(&ocispec.Input{
		ID:           c.ID,
		Rootfs:       c.Rootfs,
		Image:        &imagespec.ImageConfig{Cmd: []string{"sh"}},
		Config:       &container.Config{Cmd: []string{"sh", "-c", "id -u; grep -c . /proc/self/status >/dev/null && echo proc-ok; df /dev/shm | tail -1; cat /proc/self/status | grep -i seccomp:"}, User: "1000"},
		Host:         &container.HostConfig{Resources: container.Resources{Memory: mem}},
		CgroupParent: cgroupParent,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Spec = s
	c.WriteSpec()
	res := c.Run()
	if res.ExitCode != 0 {
		t.Fatalf("generated spec: %s", res)
	}
	for _, want := range []string{"1000\n", "proc-ok", "Seccomp:\t2"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.Stdout)
		}
	}
}

package process

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// Features describes what this backend implements, as `runsilo features`
// prints it (the OCI features document).
func Features() *features.Features {
	yes := true
	var opts []string
	for o := range mountFlagOpts {
		opts = append(opts, o)
	}
	for o := range propagationOpts {
		opts = append(opts, o)
	}
	for o := range recursiveAttrOpts {
		opts = append(opts, o)
	}
	var ns []string
	for t := range nsFlags {
		ns = append(ns, string(t))
	}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: CapabilityNames(),
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: new(bool), SystemdUser: new(bool)},
			Seccomp:      seccomp.Features(),
			Apparmor:     &features.Apparmor{Enabled: new(bool)},
			Selinux:      &features.Selinux{Enabled: new(bool)},
		},
		Annotations: map[string]string{"org.opencontainers.runc.version": "compatible", "io.silo.runtime": "runsilo"},
	}
}

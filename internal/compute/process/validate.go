package process

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// validateSpec checks a config.json before anything is created, so that a
// bad document fails with the field named and nothing on the host touched.
func validateSpec(s *specs.Spec) error {
	if s == nil {
		return invalid("config.json: empty")
	}
	if s.Version == "" {
		return invalid("ociVersion: missing")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return invalid("ociVersion: unsupported version %q (want 1.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return invalid("root.path: missing")
	}
	if s.Process == nil {
		return invalid("process: missing")
	}
	if err := validateProcess(s.Process, false); err != nil {
		return err
	}
	if s.Linux == nil {
		return invalid("linux: missing (only Linux containers run here)")
	}
	if s.Hostname != "" && !hasNamespace(s.Linux.Namespaces, specs.UTSNamespace) {
		return invalid("hostname: setting it needs a uts namespace")
	}
	if s.Domainname != "" && !hasNamespace(s.Linux.Namespaces, specs.UTSNamespace) {
		return invalid("domainname: setting it needs a uts namespace")
	}
	newUser := false
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.UserNamespace && n.Path == "" {
			newUser = true
		}
	}
	if newUser && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return invalid("linux.uidMappings/gidMappings: a new user namespace needs both")
	}
	if !newUser && (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) {
		return invalid("linux.uidMappings: given without a new user namespace")
	}
	for i, m := range s.Mounts {
		if !path.IsAbs(m.Destination) {
			return invalid("mounts[%d].destination: %q is not absolute", i, m.Destination)
		}
		for _, o := range m.Options {
			switch o {
			case "idmap", "ridmap":
				return fmt.Errorf("mounts[%d].options: %q: %w", i, o, errdefs.ErrNotImplemented)
			}
		}
	}
	for i, p := range s.Linux.MaskedPaths {
		if !path.IsAbs(p) {
			return invalid("linux.maskedPaths[%d]: %q is not absolute", i, p)
		}
	}
	for i, p := range s.Linux.ReadonlyPaths {
		if !path.IsAbs(p) {
			return invalid("linux.readonlyPaths[%d]: %q is not absolute", i, p)
		}
	}
	for i, d := range s.Linux.Devices {
		if !path.IsAbs(d.Path) {
			return invalid("linux.devices[%d].path: %q is not absolute", i, d.Path)
		}
		if _, ok := deviceTypes[d.Type]; !ok {
			return invalid("linux.devices[%d].type: unknown type %q", i, d.Type)
		}
	}
	for k := range s.Linux.Sysctl {
		if err := checkSysctl(k, s.Linux.Namespaces); err != nil {
			return err
		}
	}
	if p := s.Linux.RootfsPropagation; p != "" {
		if _, ok := propagationOpts[p]; !ok {
			return invalid("linux.rootfsPropagation: unknown value %q", p)
		}
	}
	for clock := range s.Linux.TimeOffsets {
		if clock != "monotonic" && clock != "boottime" {
			return invalid("linux.timeOffsets: unknown clock %q (monotonic or boottime)", clock)
		}
	}
	if len(s.Linux.TimeOffsets) > 0 && !hasNamespace(s.Linux.Namespaces, specs.TimeNamespace) {
		return invalid("linux.timeOffsets: given without a time namespace")
	}
	if s.Linux.IntelRdt != nil {
		return fmt.Errorf("linux.intelRdt: %w", errdefs.ErrNotImplemented)
	}
	if p := s.Linux.Personality; p != nil {
		if _, ok := personalities[p.Domain]; !ok {
			return invalid("linux.personality.domain: unknown domain %q", p.Domain)
		}
	}
	if h := s.Hooks; h != nil {
		for stage, hs := range map[string][]specs.Hook{
			//lint:ignore SA1019 prestart is deprecated, yet runtime-spec 1.x still requires running it
			"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
			"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
		} {
			for i, hook := range hs {
				if !path.IsAbs(hook.Path) {
					return invalid("hooks.%s[%d].path: %q is not absolute", stage, i, hook.Path)
				}
				if hook.Timeout != nil && *hook.Timeout <= 0 {
					return invalid("hooks.%s[%d].timeout: must be positive", stage, i)
				}
			}
		}
	}
	return nil
}

// validateProcess checks a process object (the spec's or an exec's).
func validateProcess(p *specs.Process, exec bool) error {
	if p == nil {
		return invalid("process: missing")
	}
	if len(p.Args) == 0 || p.Args[0] == "" {
		return invalid("process.args: empty")
	}
	if p.Cwd == "" || !path.IsAbs(p.Cwd) {
		return invalid("process.cwd: %q is not an absolute path", p.Cwd)
	}
	if _, err := newCredentials(p); err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkSysctl refuses sysctls that would change the host because the
// container lacks the namespace that scopes them.
func checkSysctl(key string, ns []specs.LinuxNamespace) error {
	need := specs.LinuxNamespaceType("")
	switch {
	case strings.HasPrefix(key, "net."):
		need = specs.NetworkNamespace
	case strings.HasPrefix(key, "fs.mqueue."), key == "kernel.msgmax", key == "kernel.msgmnb",
		key == "kernel.msgmni", key == "kernel.sem", key == "kernel.shmall", key == "kernel.shmmax",
		key == "kernel.shmmni", key == "kernel.shm_rmid_forced":
		need = specs.IPCNamespace
	case key == "kernel.hostname", key == "kernel.domainname":
		need = specs.UTSNamespace
	default:
		return invalid("linux.sysctl: %q is not namespaced; refusing to change it for the host", key)
	}
	if !hasNamespace(ns, need) {
		return invalid("linux.sysctl: %q needs a %s namespace", key, need)
	}
	if strings.Contains(key, "/") || strings.Contains(key, "..") {
		return invalid("linux.sysctl: bad key %q", key)
	}
	return nil
}

// mergeResources records an update in the saved spec, so a later update or
// state read sees the limits in force.
func mergeResources(s *specs.Spec, r *specs.LinuxResources) {
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	cur := s.Linux.Resources
	if r.Memory != nil {
		cur.Memory = r.Memory
	}
	if r.CPU != nil {
		cur.CPU = r.CPU
	}
	if r.Pids != nil {
		cur.Pids = r.Pids
	}
	if r.BlockIO != nil {
		cur.BlockIO = r.BlockIO
	}
	if len(r.HugepageLimits) > 0 {
		cur.HugepageLimits = r.HugepageLimits
	}
	if r.Unified != nil {
		cur.Unified = r.Unified
	}
}

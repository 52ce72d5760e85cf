// Package ocispec turns what a Docker user asks for — an image's config
// plus `docker run`'s container and host settings — into the OCI runtime
// spec that the compute backends run. It is a pure function of its inputs
// and the rootfs's /etc/passwd and /etc/group: no host state changes.
//
// The defaults are Docker's, so a container behaves the same under silo as
// under dockerd: the default capability set, the default seccomp profile
// (github.com/moby/profiles/seccomp), masked and read-only /proc paths,
// /dev with a 64 MiB /dev/shm, and private pid, ipc, uts, mount, network
// and cgroup namespaces.
package ocispec

import (
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	seccompprofile "github.com/moby/profiles/seccomp"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
)

// DefaultCapabilities is Docker's default capability set.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Docker's masked and read-only paths.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Input is everything the spec is made from.
type Input struct {
	// ID is the container id; CgroupParent/ID is its cgroup.
	ID string
	// Rootfs is the container's mounted root file system (for user lookup).
	Rootfs string
	// Image is the image's config (may be nil for a scratch container).
	Image *imagespec.ImageConfig
	// Config and Host are the docker API's container and host config.
	Config *container.Config
	Host   *container.HostConfig
	// Mounts are the container's mounts as the engine resolved them
	// from -v, --mount, --tmpfs and the image's volumes (Host's Binds,
	// Mounts and Tmpfs are not read: the engine owns their meaning).
	Mounts []specs.Mount
	// CgroupParent is the cgroup under which containers go ("/silo").
	CgroupParent string
	// NetnsPath is the network namespace the engine made for the
	// container; empty for a private namespace (--network none) or the
	// host's (--network host).
	NetnsPath string
	// EtcFiles are files the engine writes for the container
	// (/etc/hostname, /etc/hosts, /etc/resolv.conf) by their path inside
	// it; they are bind-mounted over the image's unless a volume or bind
	// mount of the user's covers the same path.
	EtcFiles map[string]string
}

// Generate builds the runtime spec for in. Errors name the setting.
func Generate(in *Input) (*specs.Spec, error) {
	cfg := in.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	host := in.Host
	if host == nil {
		host = &container.HostConfig{}
	}
	img := in.Image
	if img == nil {
		img = &imagespec.ImageConfig{}
	}
	args := processArgs(img, cfg)
	if len(args) == 0 {
		return nil, fmt.Errorf("no command specified: the image has no Cmd or Entrypoint and none was given: %w", errdefs.ErrInvalidArgument)
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = img.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, fmt.Errorf("working directory %q is not absolute: %w", cwd, errdefs.ErrInvalidArgument)
	}
	userStr := cfg.User
	if userStr == "" {
		userStr = img.User
	}
	user, err := resolveUser(in.Rootfs, userStr, host.GroupAdd)
	if err != nil {
		return nil, err
	}
	user.Umask = host.Umask
	hostname := cfg.Hostname
	if hostname == "" && len(in.ID) >= 12 {
		hostname = in.ID[:12]
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Hostname: hostname,
		Root:     &specs.Root{Path: in.Rootfs, Readonly: host.ReadonlyRootfs},
		Process: &specs.Process{
			Terminal: cfg.Tty,
			Args:     args,
			Env:      mergeEnv(img.Env, cfg.Env, cfg.Tty, hostname),
			Cwd:      cwd,
			User:     user,
		},
		Mounts:      defaultMounts(host.ShmSize),
		Annotations: host.Annotations,
		Linux: &specs.Linux{
			CgroupsPath:   path.Join("/", orDefault(in.CgroupParent, "/silo"), in.ID),
			Sysctl:        host.Sysctls,
			MaskedPaths:   append([]string{}, defaultMaskedPaths...),
			ReadonlyPaths: append([]string{}, defaultReadonlyPaths...),
		},
	}
	if cfg.Tty && host.ConsoleSize[0] > 0 {
		s.Process.ConsoleSize = &specs.Box{Height: host.ConsoleSize[0], Width: host.ConsoleSize[1]}
	}
	if host.OomScoreAdj != 0 {
		adj := host.OomScoreAdj
		s.Process.OOMScoreAdj = &adj
	}
	if err := setNamespaces(s, host, in.NetnsPath); err != nil {
		return nil, err
	}
	if err := setSecurity(s, host); err != nil {
		return nil, err
	}
	if err := setResources(s, host); err != nil {
		return nil, err
	}
	// The engine's etc files first: a user's mount on the same path
	// replaces them.
	s.Mounts = append(s.Mounts, etcMounts(in.EtcFiles)...)
	if err := addMounts(s, in.Mounts); err != nil {
		return nil, err
	}
	return s, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// processArgs is Docker's rule: the container's entrypoint replaces the
// image's (and then the image's Cmd is dropped), the container's Cmd
// replaces the image's.
func processArgs(img *imagespec.ImageConfig, cfg *container.Config) []string {
	entry, cmd := img.Entrypoint, img.Cmd
	if len(cfg.Entrypoint) > 0 {
		entry, cmd = cfg.Entrypoint, nil
		if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
			entry = nil // --entrypoint "" clears it
		}
	}
	if len(cfg.Cmd) > 0 {
		cmd = cfg.Cmd
	}
	return append(append([]string{}, entry...), cmd...)
}

// mergeEnv lays the container's variables over the image's (by name), and
// supplies PATH, HOSTNAME and, with a terminal, TERM as Docker does.
func mergeEnv(image, ctr []string, tty bool, hostname string) []string {
	var out []string
	index := map[string]int{}
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range image {
		add(kv)
	}
	for _, kv := range ctr {
		add(kv)
	}
	if _, ok := index["PATH"]; !ok {
		add(defaultPath)
	}
	if _, ok := index["TERM"]; !ok && tty {
		add("TERM=xterm")
	}
	if _, ok := index["HOSTNAME"]; !ok && hostname != "" {
		add("HOSTNAME=" + hostname)
	}
	return out
}

// defaultMounts are Docker's: /proc, /dev (tmpfs), devpts, /dev/shm,
// mqueue, /sys read-only and the container's cgroups read-only.
func defaultMounts(shmSize int64) []specs.Mount {
	if shmSize <= 0 {
		shmSize = 64 << 20
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shmSize, 10)}},
	}
}

// setNamespaces applies the pid/ipc/uts/network/cgroup modes ("host" shares
// the host's namespace; "container:ID" is resolved by the engine first).
func setNamespaces(s *specs.Spec, host *container.HostConfig, netnsPath string) error {
	type nsMode struct {
		t    specs.LinuxNamespaceType
		mode string
	}
	modes := []nsMode{
		{specs.PIDNamespace, string(host.PidMode)},
		{specs.IPCNamespace, string(host.IpcMode)},
		{specs.UTSNamespace, string(host.UTSMode)},
		{specs.MountNamespace, ""},
		{specs.NetworkNamespace, string(host.NetworkMode)},
		{specs.CgroupNamespace, string(host.CgroupnsMode)},
	}
	for _, m := range modes {
		switch {
		case m.mode == "host":
			if m.t == specs.UTSNamespace {
				s.Hostname = ""
			}
			continue
		case m.t == specs.NetworkNamespace && netnsPath != "":
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: m.t, Path: netnsPath})
			continue
		case strings.HasPrefix(m.mode, "container:"):
			return fmt.Errorf("%s mode %q: sharing another container's namespace is not supported yet: %w", m.t, m.mode, errdefs.ErrNotImplemented)
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: m.t})
	}
	return nil
}

// setSecurity applies capabilities, privileged mode, seccomp and
// no-new-privileges.
func setSecurity(s *specs.Spec, host *container.HostConfig) error {
	caps, err := capabilities(host.CapAdd, host.CapDrop, host.Privileged)
	if err != nil {
		return err
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if s.Process.User.UID != 0 {
		// A non-root user gets the bounding set only, as with Docker.
		s.Process.Capabilities.Effective, s.Process.Capabilities.Permitted = nil, nil
	}
	seccompMode := "default"
	for _, opt := range host.SecurityOpt {
		k, v, _ := strings.Cut(opt, "=")
		if !strings.Contains(opt, "=") {
			k, v, _ = strings.Cut(opt, ":")
		}
		switch k {
		case "no-new-privileges":
			s.Process.NoNewPrivileges = v == "" || v == "true"
		case "seccomp":
			seccompMode = v
		case "apparmor", "label":
			// No AppArmor or SELinux on silo's hosts: accepted, not applied.
		default:
			return fmt.Errorf("security-opt %q: unknown option: %w", opt, errdefs.ErrInvalidArgument)
		}
	}
	if host.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		for i := range s.Mounts {
			if s.Mounts[i].Type == "sysfs" || s.Mounts[i].Type == "cgroup" {
				s.Mounts[i].Options = dropOption(s.Mounts[i].Options, "ro")
			}
		}
		s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}
		return nil
	}
	if len(host.MaskedPaths) > 0 {
		s.Linux.MaskedPaths = host.MaskedPaths
	}
	if len(host.ReadonlyPaths) > 0 {
		s.Linux.ReadonlyPaths = host.ReadonlyPaths
	}
	switch seccompMode {
	case "unconfined":
	case "default", "":
		prof, err := seccompprofile.GetDefaultProfile(s)
		if err != nil {
			return fmt.Errorf("default seccomp profile: %w", err)
		}
		s.Linux.Seccomp = prof
	default:
		data, err := os.ReadFile(seccompMode)
		if err != nil {
			return fmt.Errorf("security-opt seccomp=%s: %w", seccompMode, err)
		}
		prof, err := seccompprofile.LoadProfile(string(data), s)
		if err != nil {
			return fmt.Errorf("security-opt seccomp=%s: %w", seccompMode, err)
		}
		s.Linux.Seccomp = prof
	}
	return nil
}

func dropOption(opts []string, o string) []string {
	var out []string
	for _, x := range opts {
		if x != o {
			out = append(out, x)
		}
	}
	return out
}

// allCapabilities lists every capability, for --privileged and "ALL".
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// capabilities applies --cap-add/--cap-drop (names with or without CAP_,
// any case, "ALL") to Docker's default set.
func capabilities(add, drop []string, privileged bool) ([]string, error) {
	norm := func(flag string, names []string) ([]string, error) {
		var out []string
		for _, n := range names {
			n = strings.ToUpper(n)
			if n != "ALL" && !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if n != "ALL" && !contains(allCapabilities, n) {
				return nil, fmt.Errorf("%s: unknown capability %q: %w", flag, n, errdefs.ErrInvalidArgument)
			}
			out = append(out, n)
		}
		return out, nil
	}
	addN, err := norm("cap-add", add)
	if err != nil {
		return nil, err
	}
	dropN, err := norm("cap-drop", drop)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	base := DefaultCapabilities
	if privileged || contains(addN, "ALL") {
		base = allCapabilities
	}
	for _, c := range base {
		set[c] = true
	}
	if contains(dropN, "ALL") {
		set = map[string]bool{}
	}
	for _, c := range dropN {
		delete(set, c)
	}
	for _, c := range addN {
		if c != "ALL" {
			set[c] = true
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// setResources maps docker's resource settings to linux.resources and
// rlimits.
func setResources(s *specs.Spec, host *container.HostConfig) error {
	r := s.Linux.Resources
	if r == nil {
		r = &specs.LinuxResources{}
		s.Linux.Resources = r
	}
	if err := setLimits(r, &host.Resources); err != nil {
		return err
	}
	res := host.Resources
	if len(res.Devices) > 0 || len(res.DeviceCgroupRules) > 0 {
		return fmt.Errorf("devices: passing host devices is not supported yet: %w", errdefs.ErrNotImplemented)
	}
	for _, u := range res.Ulimits {
		if u == nil {
			continue
		}
		if u.Soft < 0 || u.Hard < 0 || u.Soft > u.Hard {
			return fmt.Errorf("ulimit %s: soft %d, hard %d: %w", u.Name, u.Soft, u.Hard, errdefs.ErrInvalidArgument)
		}
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{
			Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard),
		})
	}
	return nil
}

// UpdateLimits replaces the memory, CPU, pids and block I/O limits of an
// existing spec with those of res (docker update); the device rules stay.
func UpdateLimits(s *specs.Spec, res *container.Resources) error {
	if s.Linux == nil {
		return fmt.Errorf("spec without a linux section: %w", errdefs.ErrInvalidArgument)
	}
	r := &specs.LinuxResources{}
	if old := s.Linux.Resources; old != nil {
		r.Devices = old.Devices
	}
	if err := setLimits(r, res); err != nil {
		return err
	}
	s.Linux.Resources = r
	return nil
}

// minMemory is Docker's smallest memory limit and reservation: below it
// the kernel would reclaim or kill the container's first process at once.
const minMemory = 6 << 20

// setLimits maps docker's memory, CPU, pids and block I/O settings to r,
// refusing what Docker refuses.
func setLimits(r *specs.LinuxResources, res *container.Resources) error {
	if res.Memory > 0 && res.Memory < minMemory {
		return fmt.Errorf("minimum memory limit allowed is 6MB: %w", errdefs.ErrInvalidArgument)
	}
	if res.MemoryReservation > 0 && res.MemoryReservation < minMemory {
		return fmt.Errorf("minimum memory reservation allowed is 6MB: %w", errdefs.ErrInvalidArgument)
	}
	if res.BlkioWeight != 0 && (res.BlkioWeight < 10 || res.BlkioWeight > 1000) {
		return fmt.Errorf("range of blkio weight is from 10 to 1000: %w", errdefs.ErrInvalidArgument)
	}
	if res.Memory > 0 || res.MemoryReservation > 0 || res.MemorySwap != 0 || res.MemorySwappiness != nil || res.OomKillDisable != nil {
		m := &specs.LinuxMemory{Swappiness: nil, DisableOOMKiller: res.OomKillDisable}
		if res.Memory > 0 {
			m.Limit = ptr(res.Memory)
		}
		if res.MemoryReservation > 0 {
			m.Reservation = ptr(res.MemoryReservation)
		}
		if res.MemorySwap != 0 {
			if res.MemorySwap > 0 && res.MemorySwap < res.Memory {
				return fmt.Errorf("memory-swap %d is below memory %d: %w", res.MemorySwap, res.Memory, errdefs.ErrInvalidArgument)
			}
			m.Swap = ptr(res.MemorySwap)
		}
		if res.MemorySwappiness != nil && *res.MemorySwappiness >= 0 {
			sw := uint64(*res.MemorySwappiness)
			m.Swappiness = &sw
		}
		r.Memory = m
	}
	if res.NanoCPUs > 0 && (res.CPUQuota > 0 || res.CPUPeriod > 0) {
		return fmt.Errorf("cpus and cpu-quota/cpu-period are mutually exclusive: %w", errdefs.ErrInvalidArgument)
	}
	cpu := &specs.LinuxCPU{Cpus: res.CpusetCpus, Mems: res.CpusetMems}
	if res.NanoCPUs > 0 {
		const period = 100000
		cpu.Period = ptr(uint64(period))
		cpu.Quota = ptr(res.NanoCPUs * period / 1e9)
	}
	if res.CPUQuota > 0 {
		cpu.Quota = ptr(res.CPUQuota)
	}
	if res.CPUPeriod > 0 {
		cpu.Period = ptr(uint64(res.CPUPeriod))
	}
	if res.CPUShares > 0 {
		cpu.Shares = ptr(uint64(res.CPUShares))
	}
	if *cpu != (specs.LinuxCPU{}) {
		r.CPU = cpu
	}
	if res.PidsLimit != nil && *res.PidsLimit != 0 {
		// Negative is unlimited ("max"), which docker update uses to lift
		// a limit.
		r.Pids = &specs.LinuxPids{Limit: ptr(max(*res.PidsLimit, -1))}
	}
	if res.BlkioWeight > 0 {
		r.BlockIO = &specs.LinuxBlockIO{Weight: ptr(res.BlkioWeight)}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// etcMounts binds the engine's etc files, in a stable order.
func etcMounts(files map[string]string) []specs.Mount {
	var ms []specs.Mount
	for _, dest := range slices.Sorted(maps.Keys(files)) {
		ms = append(ms, specs.Mount{Destination: dest, Type: "bind", Source: files[dest],
			Options: []string{"rbind", "rprivate", "nosuid", "nodev", "noexec"}})
	}
	return ms
}

// addMounts adds the container's mounts (volumes, binds, tmpfs), as the
// engine resolved them from -v, --mount, --tmpfs and the image's
// volumes. A later mount on the same destination replaces an earlier
// one, as in Docker.
func addMounts(s *specs.Spec, mounts []specs.Mount) error {
	for _, m := range mounts {
		if !path.IsAbs(m.Destination) {
			return fmt.Errorf("mount destination %q: must be absolute: %w", m.Destination, errdefs.ErrInvalidArgument)
		}
		dest := path.Clean(m.Destination)
		replaced := false
		for i := range s.Mounts {
			if path.Clean(s.Mounts[i].Destination) == dest {
				s.Mounts[i], replaced = m, true
			}
		}
		if !replaced {
			s.Mounts = append(s.Mounts, m)
		}
	}
	return nil
}

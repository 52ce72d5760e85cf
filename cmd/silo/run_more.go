package main

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/spf13/pflag"
)

// runMoreFlags are run/create's mount, init and healthcheck flags.
type runMoreFlags struct {
	volumes, mounts, tmpfs, volumesFrom []string
	init                                bool
	healthCmd                           string
	healthInterval, healthTimeout       time.Duration
	healthStartPeriod                   time.Duration
	healthStartInterval                 time.Duration
	healthRetries                       int
	noHealthcheck                       bool
}

func (f *runMoreFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a volume (SRC:DST[:OPTS], NAME:DST[:OPTS] or DST)")
	fl.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount to the container (type=bind|volume|tmpfs,...)")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory (DST[:OPTIONS])")
	fl.StringArrayVar(&f.volumesFrom, "volumes-from", nil, "mount volumes from the specified container(s) (CONTAINER[:ro|rw])")
	fl.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fl.StringVar(&f.healthCmd, "health-cmd", "", "command to run to check health")
	fl.DurationVar(&f.healthInterval, "health-interval", 0, "time between running the check (ms|s|m|h) (default 0s)")
	fl.DurationVar(&f.healthTimeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fl.DurationVar(&f.healthStartPeriod, "health-start-period", 0, "start period for the container to initialize before starting health-retries countdown")
	fl.DurationVar(&f.healthStartInterval, "health-start-interval", 0, "time between running the check during the start period")
	fl.IntVar(&f.healthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	fl.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
}

// apply sets the flags' settings on the container and host config.
func (f *runMoreFlags) apply(cfg *container.Config, host *container.HostConfig) error {
	for _, v := range f.volumes {
		if v == "" {
			return fmt.Errorf("invalid empty volume spec")
		}
		if !strings.Contains(v, ":") {
			if !path.IsAbs(v) {
				return fmt.Errorf("invalid volume %q: a single path must be absolute", v)
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
			continue
		}
		host.Binds = append(host.Binds, v)
	}
	for _, m := range f.mounts {
		mm, err := parseMount(m)
		if err != nil {
			return err
		}
		host.Mounts = append(host.Mounts, mm)
	}
	for _, t := range f.tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		if host.Tmpfs == nil {
			host.Tmpfs = map[string]string{}
		}
		host.Tmpfs[dst] = opts
	}
	host.VolumesFrom = append(host.VolumesFrom, f.volumesFrom...)
	if f.init {
		on := true
		host.Init = &on
	}
	return f.applyHealth(cfg)
}

func (f *runMoreFlags) applyHealth(cfg *container.Config) error {
	set := f.healthCmd != "" || f.healthInterval != 0 || f.healthTimeout != 0 || f.healthStartPeriod != 0 ||
		f.healthStartInterval != 0 || f.healthRetries != 0
	if f.noHealthcheck {
		if set {
			return fmt.Errorf("--no-healthcheck conflicts with --health-* options")
		}
		cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		return nil
	}
	if !set {
		return nil
	}
	for name, d := range map[string]time.Duration{"--health-interval": f.healthInterval, "--health-timeout": f.healthTimeout,
		"--health-start-period": f.healthStartPeriod, "--health-start-interval": f.healthStartInterval} {
		if d < 0 {
			return fmt.Errorf("%s cannot be negative", name)
		}
	}
	if f.healthRetries < 0 {
		return fmt.Errorf("--health-retries cannot be negative")
	}
	hc := &container.HealthConfig{Interval: f.healthInterval, Timeout: f.healthTimeout, StartPeriod: f.healthStartPeriod,
		StartInterval: f.healthStartInterval, Retries: f.healthRetries}
	if f.healthCmd != "" {
		hc.Test = []string{"CMD-SHELL", f.healthCmd}
	}
	cfg.Healthcheck = hc
	return nil
}

// parseMount reads --mount's comma-separated key=value list, as docker.
func parseMount(spec string) (mount.Mount, error) {
	m := mount.Mount{Type: mount.TypeVolume}
	bad := func(format string, args ...any) (mount.Mount, error) {
		return mount.Mount{}, fmt.Errorf("invalid argument %q for \"--mount\" flag: "+format, append([]any{spec}, args...)...)
	}
	boolOf := func(k, v string, hasVal bool) (bool, error) {
		if !hasVal {
			return true, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("invalid value for %s: %s", k, v)
		}
		return b, nil
	}
	for _, field := range strings.Split(spec, ",") {
		if field == "" {
			continue
		}
		k, v, hasVal := strings.Cut(field, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "type":
			m.Type = mount.Type(strings.ToLower(v))
		case "source", "src":
			m.Source = v
		case "target", "dst", "destination":
			m.Target = v
		case "readonly", "ro":
			b, err := boolOf(k, v, hasVal)
			if err != nil {
				return bad("%v", err)
			}
			m.ReadOnly = b
		case "bind-propagation":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			m.BindOptions.Propagation = mount.Propagation(strings.ToLower(v))
		case "bind-nonrecursive", "bind-recursive":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			if k == "bind-nonrecursive" {
				b, err := boolOf(k, v, hasVal)
				if err != nil {
					return bad("%v", err)
				}
				m.BindOptions.NonRecursive = b
			} else {
				m.BindOptions.NonRecursive = v == "disabled"
			}
		case "volume-nocopy":
			b, err := boolOf(k, v, hasVal)
			if err != nil {
				return bad("%v", err)
			}
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			m.VolumeOptions.NoCopy = b
		case "volume-label":
			lk, lv, _ := strings.Cut(v, "=")
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			if m.VolumeOptions.Labels == nil {
				m.VolumeOptions.Labels = map[string]string{}
			}
			m.VolumeOptions.Labels[lk] = lv
		case "volume-driver":
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			if m.VolumeOptions.DriverConfig == nil {
				m.VolumeOptions.DriverConfig = &mount.Driver{}
			}
			m.VolumeOptions.DriverConfig.Name = v
		case "volume-subpath":
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			m.VolumeOptions.Subpath = v
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return bad("invalid tmpfs-size %q", v)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return bad("invalid tmpfs-mode %q", v)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.Mode = fileMode(uint32(n))
		default:
			return bad("unknown option %q", k)
		}
	}
	if m.Target == "" {
		return bad("target is required")
	}
	return m, nil
}

// fileMode turns chmod bits into an os.FileMode.
func fileMode(n uint32) os.FileMode {
	m := os.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

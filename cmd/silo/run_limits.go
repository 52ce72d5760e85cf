package main

import (
	"fmt"
	"os"

	"github.com/docker/cli/pkg/kvfile"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// runLimitFlags are run/create's environment-file, resource and security
// flags.
type runLimitFlags struct {
	envFiles                      []string
	readOnly, privileged          bool
	memorySwap, memoryReservation string
	cpuShares                     int64
	cpusetCpus, cpusetMems        string
	capAdd, capDrop, securityOpt  []string
	ulimits                       []string
	oomScoreAdj                   int
}

func (f *runLimitFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read in a file of environment variables")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	fl.BoolVar(&f.privileged, "privileged", false, "give extended privileges to this container")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fl.StringVar(&f.memoryReservation, "memory-reservation", "", "memory soft limit")
	fl.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&f.cpusetMems, "cpuset-mems", "", "memory nodes in which to allow execution (0-3, 0,1)")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fl.StringArrayVar(&f.securityOpt, "security-opt", nil, "security options (no-new-privileges, seccomp=unconfined|PROFILE.json, …)")
	fl.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options (nofile=1024:2048)")
	fl.IntVar(&f.oomScoreAdj, "oom-score-adj", 0, "tune the host's OOM preferences (-1000 to 1000)")
}

// apply sets the flags' settings on the container and host config.
func (f *runLimitFlags) apply(cfg *container.Config, host *container.HostConfig) error {
	for _, file := range f.envFiles {
		// docker's own parser: KEY=VALUE lines, comments, a bare KEY
		// taken from silo's environment.
		env, err := kvfile.Parse(file, os.LookupEnv)
		if err != nil {
			return fmt.Errorf("env file: %w", err)
		}
		// The file's variables come first: -e given on the command line
		// win, as in docker.
		cfg.Env = append(env, cfg.Env...)
	}
	host.ReadonlyRootfs, host.Privileged = f.readOnly, f.privileged
	host.CapAdd, host.CapDrop, host.SecurityOpt = f.capAdd, f.capDrop, f.securityOpt
	host.OomScoreAdj = f.oomScoreAdj
	r := &host.Resources
	if err := setMemoryFlags(memoryFlag{"memory-swap", f.memorySwap, &r.MemorySwap},
		memoryFlag{"memory-reservation", f.memoryReservation, &r.MemoryReservation}); err != nil {
		return err
	}
	r.CPUShares, r.CpusetCpus, r.CpusetMems = f.cpuShares, f.cpusetCpus, f.cpusetMems
	for _, u := range f.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return fmt.Errorf("invalid --ulimit %q: %w", u, err)
		}
		r.Ulimits = append(r.Ulimits, &container.Ulimit{Name: ul.Name, Soft: ul.Soft, Hard: ul.Hard})
	}
	return nil
}

// memoryFlag is a memory size flag's name, value and destination.
type memoryFlag struct {
	name, value string
	dst         *int64
}

// setMemoryFlags parses each given size (docker's units: 64m, 1g) into
// its destination; "-1" is unlimited swap for --memory-swap.
func setMemoryFlags(flags ...memoryFlag) error {
	for _, m := range flags {
		switch {
		case m.value == "":
		case m.name == "memory-swap" && m.value == "-1":
			*m.dst = -1
		default:
			n, err := units.RAMInBytes(m.value)
			if err != nil {
				return fmt.Errorf("invalid --%s %q: %w", m.name, m.value, err)
			}
			*m.dst = n
		}
	}
	return nil
}

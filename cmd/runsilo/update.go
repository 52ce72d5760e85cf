package main

import (
	"fmt"
	"math"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func newUpdateCommand(g *globals) *command {
	var resources string
	f := map[string]*string{}
	cmd := &command{
		Use:   "update [flags] CONTAINER_ID",
		Short: "change the resource limits of a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *command, args []string) error {
			var r specs.LinuxResources
			if resources != "" {
				if err := readJSON(resources, &r); err != nil {
					return err
				}
			}
			if err := applyUpdateFlags(cmd, f, &r); err != nil {
				return err
			}
			sys, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			return sys.Update(cmd.Context(), &r)
		},
	}
	cmd.Flags().StringVarP(&resources, "resources", "r", "", "path to a resources.json (\"-\" for stdin)")
	for _, name := range []string{
		"blkio-weight", "cpu-period", "cpu-quota", "cpu-share", "cpu-rt-period", "cpu-rt-runtime",
		"cpuset-cpus", "cpuset-mems", "memory", "memory-reservation", "memory-swap", "pids-limit",
		"l3-cache-schema", "mem-bw-schema", "cpu-idle", "cpu-burst",
	} {
		f[name] = cmd.Flags().String(name, "", "set "+name)
	}
	return cmd
}

// applyUpdateFlags merges runc's update flags into r.
func applyUpdateFlags(cmd *command, f map[string]*string, r *specs.LinuxResources) error {
	set := func(name string) (string, bool) {
		return *f[name], cmd.Flags().Changed(name)
	}
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	for _, name := range []string{"memory", "memory-reservation", "memory-swap"} {
		v, ok := set(name)
		if !ok {
			continue
		}
		n, err := parseBytes(v)
		if err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
		switch name {
		case "memory":
			mem().Limit = &n
		case "memory-reservation":
			mem().Reservation = &n
		case "memory-swap":
			mem().Swap = &n
		}
	}
	uints := map[string]func(uint64){
		"cpu-period":    func(n uint64) { cpu().Period = &n },
		"cpu-share":     func(n uint64) { cpu().Shares = &n },
		"cpu-rt-period": func(n uint64) { cpu().RealtimePeriod = &n },
		"cpu-burst":     func(n uint64) { cpu().Burst = &n },
	}
	for name, apply := range uints {
		if v, ok := set(name); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("--%s: %q is not a number", name, v)
			}
			apply(n)
		}
	}
	if v, ok := set("blkio-weight"); ok {
		// blkio.weight takes 10-1000; io.weight (v2) takes 1-10000.
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n < 1 || n > 10000 {
			return fmt.Errorf("--blkio-weight: %q is not a weight (1-10000)", v)
		}
		w := uint16(n)
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		r.BlockIO.Weight = &w
	}
	ints := map[string]func(int64){
		"cpu-quota":      func(n int64) { cpu().Quota = &n },
		"cpu-rt-runtime": func(n int64) { cpu().RealtimeRuntime = &n },
		"cpu-idle":       func(n int64) { cpu().Idle = &n },
		"pids-limit": func(n int64) {
			r.Pids = &specs.LinuxPids{Limit: &n}
		},
	}
	for name, apply := range ints {
		if v, ok := set(name); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("--%s: %q is not a number", name, v)
			}
			apply(n)
		}
	}
	if v, ok := set("cpuset-cpus"); ok {
		cpu().Cpus = v
	}
	if v, ok := set("cpuset-mems"); ok {
		cpu().Mems = v
	}
	for _, name := range []string{"l3-cache-schema", "mem-bw-schema"} {
		if _, ok := set(name); ok {
			return fmt.Errorf("--%s: Intel RDT is not supported", name)
		}
	}
	return nil
}

// parseBytes reads "-1", "1024", "64k", "64m", "1g" as bytes.
func parseBytes(in string) (int64, error) {
	if in == "-1" {
		return -1, nil
	}
	s, mult := in, int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, s = 1<<10, s[:n-1]
		case 'm', 'M':
			mult, s = 1<<20, s[:n-1]
		case 'g', 'G':
			mult, s = 1<<30, s[:n-1]
		case 'b', 'B':
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size", in)
	}
	if v > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", in)
	}
	return v * mult, nil
}

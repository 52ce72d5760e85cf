package main

import (
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// logFlags are `silo run`'s logging flags, as docker spells them.
type logFlags struct {
	driver string
	opts   []string
}

func (f *logFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.driver, "log-driver", "", "logging driver for the container (json-file)")
	fl.StringArrayVar(&f.opts, "log-opt", nil, "log driver options (max-size, max-file, capture-files, capture-syslog)")
}

// apply sets the host config's LogConfig; the daemon checks the values.
func (f *logFlags) apply(host *container.HostConfig) error {
	host.LogConfig.Type = f.driver
	for _, o := range f.opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return fmt.Errorf("invalid log option %q: want key=value", o)
		}
		if host.LogConfig.Config == nil {
			host.LogConfig.Config = map[string]string{}
		}
		host.LogConfig.Config[k] = v
	}
	return nil
}

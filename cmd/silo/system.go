package main

import (
	"fmt"
	"os"
	"runtime"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/apiversion"
)

func versionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the silo version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
			fmt.Fprintln(tw, "Client:")
			fmt.Fprintf(tw, " Version:\t%s\n API version:\t%s\n Go version:\t%s\n OS/Arch:\t%s/%s\n",
				version, apiversion.Max, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			c, err := g.connect(cmd.Context())
			if err != nil {
				tw.Flush()
				return err
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				tw.Flush()
				return err
			}
			fmt.Fprintln(tw, "\nServer:")
			fmt.Fprintf(tw, " Version:\t%s\n API version:\t%s (minimum version %s)\n Go version:\t%s\n OS/Arch:\t%s/%s\n Kernel:\t%s\n",
				v.Version, v.APIVersion, v.MinAPIVersion, v.GoVersion, v.Os, v.Arch, v.KernelVersion)
			return tw.Flush()
		},
	}
}

func infoCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			i, err := c.Info(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Printf("Server:\n Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n Images: %d\n Server Version: %s\n Storage Driver: %s\n Logging Driver: %s\n Cgroup Driver: %s\n Cgroup Version: %s\n Default Runtime: %s\n Default Isolation: %s\n Kernel Version: %s\n Operating System: %s\n OSType: %s\n Architecture: %s\n CPUs: %d\n Total Memory: %d\n Name: %s\n Docker Root Dir: %s\n",
				i.Containers, i.ContainersRunning, i.ContainersPaused, i.ContainersStopped, i.Images,
				i.ServerVersion, i.Driver, i.LoggingDriver, i.CgroupDriver, i.CgroupVersion, i.DefaultRuntime,
				i.Isolation, i.KernelVersion, i.OperatingSystem, i.OSType, i.Architecture, i.NCPU, i.MemTotal,
				i.Name, i.DockerRootDir)
			return nil
		},
	}
}

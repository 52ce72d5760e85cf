package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/client"
)

// opsCommands are pause, unpause, restart, rename, update, top, stats,
// events, history, cp, export, diff and the container, system, volume
// groups.
func opsCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{
		startCommand(g), pauseCommand(g), unpauseCommand(g), restartCommand(g), renameCommand(g), updateCommand(g), topCommand(g), statsCommand(g), eventsCommand(g),
		historyCommand(g), containerCommand(g), systemCommand(g), volumeCommand(g), cpCommand(g),
		exportCommand(g), diffCommand(g),
	}
}

func startCommand(g *globals) *cobra.Command {
	return simpleCommand(g, "start CONTAINER [CONTAINER...]", "Start one or more stopped containers",
		func(ctx context.Context, c *client.Client, id string) error { return c.ContainerStart(ctx, id) })
}

func pauseCommand(g *globals) *cobra.Command {
	return simpleCommand(g, "pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
		func(ctx context.Context, c *client.Client, id string) error { return c.ContainerPause(ctx, id) })
}

func unpauseCommand(g *globals) *cobra.Command {
	return simpleCommand(g, "unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
		func(ctx context.Context, c *client.Client, id string) error { return c.ContainerUnpause(ctx, id) })
}

// imageOpsCommands are added to `silo image`.
func imageOpsCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{historyCommand(g), imagePruneCommand(g)}
}

func simpleCommand(g *globals, use, short string, fn func(ctx context.Context, c *client.Client, id string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(g, cmd, args, func(c *client.Client, id string) error { return fn(cmd.Context(), c, id) })
		},
	}
}

func restartCommand(g *globals) *cobra.Command {
	return timedCommand(g, "restart [OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers",
		func(ctx context.Context, c *client.Client, id, sig string, t *int) error {
			return c.ContainerRestart(ctx, id, sig, t)
		})
}

func renameCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			return c.ContainerRename(cmd.Context(), args[0], args[1])
		},
	}
}

// updateCommand is `silo update`: docker update's limits and restart
// policy; only the flags given change.
func updateCommand(g *globals) *cobra.Command {
	var (
		memory, memorySwap, memoryReservation, restart string
		cpus                                           float64
		res                                            container.Resources
		pidsLimit                                      int64
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			upd := container.UpdateConfig{Resources: res}
			err := setMemoryFlags(memoryFlag{"memory", memory, &upd.Memory},
				memoryFlag{"memory-reservation", memoryReservation, &upd.MemoryReservation},
				memoryFlag{"memory-swap", memorySwap, &upd.MemorySwap})
			if err != nil {
				return err
			}
			if cpus < 0 {
				return fmt.Errorf("invalid --cpus %v: must be positive", cpus)
			}
			upd.NanoCPUs = int64(cpus * 1e9)
			if cmd.Flags().Changed("pids-limit") {
				upd.PidsLimit = &pidsLimit
			}
			if restart != "" {
				p, err := parseRestartPolicy(restart)
				if err != nil {
					return err
				}
				upd.RestartPolicy = p
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			var errs []error
			for _, id := range args {
				resp, err := c.ContainerUpdate(cmd.Context(), id, upd)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, w := range resp.Warnings {
					fmt.Fprintln(os.Stderr, "WARNING:", w)
				}
				fmt.Println(id)
			}
			return errors.Join(errs...)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&memory, "memory", "m", "", "memory limit")
	f.StringVar(&memorySwap, "memory-swap", "", "memory plus swap limit (-1: unlimited swap)")
	f.StringVar(&memoryReservation, "memory-reservation", "", "memory soft limit")
	f.Float64Var(&cpus, "cpus", 0, "number of CPUs")
	f.Int64VarP(&res.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&res.CPUPeriod, "cpu-period", 0, "CFS period (microseconds)")
	f.Int64Var(&res.CPUQuota, "cpu-quota", 0, "CFS quota (microseconds)")
	f.StringVar(&res.CpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&res.CpusetMems, "cpuset-mems", "", "memory nodes in which to allow execution (0-3, 0,1)")
	f.Uint16Var(&res.BlkioWeight, "blkio-weight", 0, "block IO weight (10-1000)")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "tune the container's pids limit (-1: unlimited)")
	f.StringVar(&restart, "restart", "", "restart policy: no, always, on-failure[:max-retries], unless-stopped")
	return cmd
}

func topCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			top, err := c.ContainerTop(cmd.Context(), args[0], strings.Join(args[1:], " "))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
			for _, p := range top.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
	// ps options after the container are ps's, not silo's.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// statsRow is one line of `silo stats`, computed as the docker CLI does.
type statsRow struct {
	id, name                 string
	cpu, mem, memLimit, memP float64
	netRx, netTx, blkR, blkW float64
	pids                     uint64
}

func statsRowOf(s *container.StatsResponse) statsRow {
	r := statsRow{id: s.ID, name: strings.TrimPrefix(s.Name, "/"), pids: s.PidsStats.Current}
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	if cpuDelta > 0 && sysDelta > 0 {
		cpus := float64(s.CPUStats.OnlineCPUs)
		if cpus == 0 {
			cpus = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
		}
		r.cpu = cpuDelta / sysDelta * cpus * 100
	}
	// Page cache that can be dropped is not counted, as docker does.
	mem := s.MemoryStats.Usage
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && v < mem {
		mem -= v
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && v < mem {
		mem -= v
	}
	r.mem, r.memLimit = float64(mem), float64(s.MemoryStats.Limit)
	if r.memLimit > 0 {
		r.memP = r.mem / r.memLimit * 100
	}
	for _, n := range s.Networks {
		r.netRx += float64(n.RxBytes)
		r.netTx += float64(n.TxBytes)
	}
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			r.blkR += float64(e.Value)
		case "write":
			r.blkW += float64(e.Value)
		}
	}
	return r
}

func printStats(rows []statsRow) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%s / %s\t%d\n",
			shortID(r.id, false), r.name, r.cpu,
			units.BytesSize(r.mem), units.BytesSize(r.memLimit), r.memP,
			units.HumanSizeWithPrecision(r.netRx, 3), units.HumanSizeWithPrecision(r.netTx, 3),
			units.HumanSizeWithPrecision(r.blkR, 3), units.HumanSizeWithPrecision(r.blkW, 3), r.pids)
	}
	tw.Flush()
}

func statsCommand(g *globals) *cobra.Command {
	var noStream bool
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.connect(ctx)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				list, err := c.ContainerList(ctx, false, false, nil)
				if err != nil {
					return err
				}
				for _, s := range list {
					args = append(args, s.ID)
				}
			}
			rows := make([]statsRow, len(args))
			var mu sync.Mutex
			var wg sync.WaitGroup
			errs := make([]error, len(args))
			for i, id := range args {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dec, body, err := c.ContainerStats(ctx, id, !noStream)
					if err != nil {
						errs[i] = err
						return
					}
					defer body.Close()
					for {
						var s container.StatsResponse
						if err := dec.Decode(&s); err != nil {
							return
						}
						mu.Lock()
						rows[i] = statsRowOf(&s)
						mu.Unlock()
						if noStream {
							return
						}
					}
				}()
			}
			if noStream {
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						return err
					}
				}
				printStats(rows)
				return nil
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return nil
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				mu.Lock()
				fmt.Print("\033[2J\033[H")
				printStats(rows)
				mu.Unlock()
			}
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	return cmd
}

func eventsCommand(g *globals) *cobra.Command {
	var since, until string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, f, err := connectFiltered(cmd, g, filters)
			if err != nil {
				return err
			}
			opts := client.EventsOptions{Since: relTime(since), Until: relTime(until), Filters: f}
			return c.Events(cmd.Context(), opts, func(m events.Message) error {
				var attrs []string
				for _, k := range sortedKeys(m.Actor.Attributes) {
					attrs = append(attrs, k+"="+m.Actor.Attributes[k])
				}
				fmt.Printf("%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00"),
					m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "show all events created since timestamp or relative time (10m)")
	cmd.Flags().StringVar(&until, "until", "", "stream events until this timestamp or relative time")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}

// relTime turns a relative time ("10m": ten minutes ago) into unix
// seconds; anything else goes to the daemon as given.
func relTime(v string) string {
	if d, err := time.ParseDuration(v); err == nil && v != "" {
		t := time.Now().Add(-d)
		return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
	}
	return v
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func historyCommand(g *globals) *cobra.Command {
	var noTrunc, quiet bool
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			h, err := c.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if quiet {
				for _, i := range h {
					fmt.Println(shortID(i.ID, noTrunc))
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			for _, i := range h {
				created := "N/A"
				if i.Created > 0 {
					created = units.HumanDuration(time.Since(time.Unix(i.Created, 0))) + " ago"
				}
				by := i.CreatedBy
				if !noTrunc && len(by) > 45 {
					by = by[:44] + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortID(i.ID, noTrunc), created, by,
					units.HumanSizeWithPrecision(float64(i.Size), 3), i.Comment)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	return cmd
}

func imagePruneCommand(g *globals) *cobra.Command {
	var all, yes bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseKV("filter", filters)
			if err != nil {
				return err
			}
			f["dangling"] = []string{fmt.Sprint(!all)}
			if !yes && !confirm("WARNING! This will remove images without at least one container associated to them.") {
				return nil
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			rep, err := c.ImagesPrune(cmd.Context(), f)
			if err != nil {
				return err
			}
			printPruned("Images", imagePruneLines(rep), rep.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&yes, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. 'until=<timestamp>')")
	return cmd
}

// imagePruneLines are an image prune's "untagged:" and "deleted:" lines.
func imagePruneLines(rep image.PruneReport) []string {
	var lines []string
	for _, d := range rep.ImagesDeleted {
		if d.Untagged != "" {
			lines = append(lines, "untagged: "+d.Untagged)
		}
		if d.Deleted != "" {
			lines = append(lines, "deleted: "+d.Deleted)
		}
	}
	return lines
}

// systemPruneCommand is `silo system prune`: stopped containers, unused
// networks, dangling (-a: unused) images and the build cache; with
// --volumes, unused anonymous volumes too.
func systemPruneCommand(g *globals) *cobra.Command {
	var all, yes, volumes bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseKV("filter", filters)
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n"
			if volumes {
				warning += "  - all anonymous volumes not used by at least one container\n"
			}
			if all {
				warning += "  - all images without at least one container associated to them\n"
			} else {
				warning += "  - all dangling images\n"
			}
			warning += "  - unused build cache\n"
			if !yes && !confirm(warning) {
				return nil
			}
			ctx := cmd.Context()
			c, err := g.connect(ctx)
			if err != nil {
				return err
			}
			ctrs, err := c.ContainersPrune(ctx, f)
			if err != nil {
				return err
			}
			reclaimed := ctrs.SpaceReclaimed
			printDeleted("Containers", ctrs.ContainersDeleted)
			nets, err := c.NetworkPrune(ctx, f)
			if err != nil {
				return err
			}
			printDeleted("Networks", nets)
			if volumes {
				vols, err := c.VolumePrune(ctx, f)
				if err != nil {
					return err
				}
				reclaimed += vols.SpaceReclaimed
				printDeleted("Volumes", vols.VolumesDeleted)
			}
			imgFilters := maps.Clone(f)
			imgFilters["dangling"] = []string{fmt.Sprint(!all)}
			imgs, err := c.ImagesPrune(ctx, imgFilters)
			if err != nil {
				return err
			}
			reclaimed += imgs.SpaceReclaimed
			printDeleted("Images", imagePruneLines(imgs))
			caches, err := c.BuildPrune(ctx)
			if err != nil {
				return err
			}
			printDeleted("build cache objects", caches)
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(float64(reclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&yes, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "prune anonymous volumes")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. 'label=<key>=<value>')")
	return cmd
}

func containerCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers"}
	var yes bool
	var filters []string
	prune := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseKV("filter", filters)
			if err != nil {
				return err
			}
			if !yes && !confirm("WARNING! This will remove all stopped containers.") {
				return nil
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			rep, err := c.ContainersPrune(cmd.Context(), f)
			if err != nil {
				return err
			}
			printPruned("Containers", rep.ContainersDeleted, rep.SpaceReclaimed)
			return nil
		},
	}
	prune.Flags().BoolVarP(&yes, "force", "f", false, "do not prompt for confirmation")
	prune.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. 'until=<timestamp>')")
	ls := psCommand(g)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list", "ps"}
	// docker container VERB: the same commands as the top-level verbs.
	cmd.AddCommand(prune, ls, createCommand(g), runCommand(g), startCommand(g), pauseCommand(g), unpauseCommand(g),
		rmCommand(g), inspectCommand(g), logsCommand(g),
		stopCommand(g), killCommand(g), waitCommand(g), execCommand(g), attachCommand(g), restartCommand(g),
		renameCommand(g), updateCommand(g), topCommand(g), statsCommand(g), cpCommand(g), exportCommand(g), diffCommand(g))
	return cmd
}

func systemCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage silo"}
	df := &cobra.Command{
		Use:   "df",
		Short: "Show silo disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			du, err := c.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			line := func(kind string, total, active, size, reclaim int64) {
				pct := ""
				if size > 0 {
					pct = fmt.Sprintf(" (%d%%)", reclaim*100/size)
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s%s\n", kind, total, active,
					units.HumanSize(float64(size)), units.HumanSize(float64(reclaim)), pct)
			}
			if u := du.ImageUsage; u != nil {
				line("Images", u.TotalCount, u.ActiveCount, u.TotalSize, u.Reclaimable)
			}
			if u := du.ContainerUsage; u != nil {
				line("Containers", u.TotalCount, u.ActiveCount, u.TotalSize, u.Reclaimable)
			}
			if u := du.VolumeUsage; u != nil {
				line("Local Volumes", u.TotalCount, u.ActiveCount, u.TotalSize, u.Reclaimable)
			}
			return tw.Flush()
		},
	}
	info := infoCommand(g)
	cmd.AddCommand(df, systemPruneCommand(g), info)
	return cmd
}

// addOpsCommands registers the commands of this file on root, and
// history and prune under `silo image`.
func addOpsCommands(root *cobra.Command, g *globals) {
	root.AddCommand(opsCommands(g)...)
	for _, c := range root.Commands() {
		if c.Name() == "image" {
			c.AddCommand(imageOpsCommands(g)...)
		}
	}
}

// printPruned reports a prune as docker does: what went, then the space.
func printPruned(kind string, deleted []string, reclaimed uint64) {
	printDeleted(kind, deleted)
	fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(float64(reclaimed)))
}

// printDeleted lists what a prune deleted, under a title (nothing when
// it deleted nothing).
func printDeleted(kind string, deleted []string) {
	if len(deleted) == 0 {
		return
	}
	fmt.Printf("Deleted %s:\n", kind)
	for _, d := range deleted {
		fmt.Println(d)
	}
	fmt.Println()
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/client"
)

// runFlags are `silo run`'s flags, as docker spells them.
type runFlags struct {
	detach, rm, tty, interactive bool
	name, workdir, user          string
	entrypoint                   string
	entrypointSet                bool
	env, labels, storageOpts     []string
	memory, isolation            string
	cpus                         float64
	pidsLimit                    int64
	hostname                     string
	restart                      string        // restart.go
	more                         runMoreFlags  // run_more.go: mounts, --init, healthchecks
	limits                       runLimitFlags // run_limits.go: env files, resources, security
	net                          netFlags      // network.go
	logs                         logFlags      // logflags.go
	detachKeys                   string        // detachkeys.go
	pull                         string        // missing, always or never
}

func runCommand(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.entrypointSet = cmd.Flags().Changed("entrypoint")
			return runContainer(cmd.Context(), g, &f, args)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&f.detach, "detach", "d", false, "run the container in the background and print its ID")
	cmd.Flags().StringVar(&f.detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}

// createCommand is `silo create`: run's container, created and not
// started; it prints the id.
func createCommand(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.entrypointSet = cmd.Flags().Changed("entrypoint")
			_, id, err := createFromFlags(cmd.Context(), g, &f, args)
			if err != nil {
				return err
			}
			fmt.Println(id)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// register adds the flags run and create share.
func (f *runFlags) register(cmd *cobra.Command) {
	cmd.Flags().SetInterspersed(false)
	fl := cmd.Flags()
	fl.BoolVar(&f.rm, "rm", false, "remove the container when it exits")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.StringVar(&f.name, "name", "", "assign a name to the container")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fl.Float64Var(&f.cpus, "cpus", 0, "number of CPUs")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (-1 for unlimited)")
	fl.StringArrayVar(&f.storageOpts, "storage-opt", nil, "storage driver options (size=20G)")
	fl.StringVar(&f.isolation, "isolation", "", "container isolation technology (process, hyperv)")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set meta data on a container")
	fl.StringVar(&f.hostname, "hostname", "", "container host name")
	fl.StringVar(&f.restart, "restart", "no", "restart policy: no, always, on-failure[:max-retries], unless-stopped")
	fl.StringVar(&f.pull, "pull", "missing", `pull the image before creating ("always", "missing", "never")`)
	f.more.register(fl)
	f.limits.register(fl)
	f.net.register(cmd)
	f.logs.register(fl)
}

// configs turns the flags into the API's container and host config.
func (f *runFlags) configs(args []string) (*container.Config, *container.HostConfig, error) {
	cfg := &container.Config{
		Image: args[0], Cmd: args[1:], Env: f.env, WorkingDir: f.workdir, User: f.user,
		Hostname: f.hostname, Labels: map[string]string{},
		AttachStdout: !f.detach, AttachStderr: !f.detach,
		Tty: f.tty, OpenStdin: f.interactive,
		AttachStdin: f.interactive && !f.detach, StdinOnce: f.interactive && !f.detach,
	}
	if f.entrypointSet {
		cfg.Entrypoint = []string{f.entrypoint}
	}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, nil, fmt.Errorf("invalid label %q", l)
		}
		cfg.Labels[k] = v
	}
	host := &container.HostConfig{AutoRemove: f.rm, Isolation: container.Isolation(f.isolation)}
	var err error
	if host.RestartPolicy, err = parseRestartPolicy(f.restart); err != nil {
		return nil, nil, err
	}
	if err := f.more.apply(cfg, host); err != nil {
		return nil, nil, err
	}
	if err := f.limits.apply(cfg, host); err != nil {
		return nil, nil, err
	}
	if err := f.logs.apply(host); err != nil {
		return nil, nil, err
	}
	if f.tty && !f.detach {
		if h, w := terminalSize(); h > 0 {
			host.ConsoleSize = [2]uint{uint(h), uint(w)}
		}
	}
	if err := setMemoryFlags(memoryFlag{"memory", f.memory, &host.Memory}); err != nil {
		return nil, nil, err
	}
	if f.cpus != 0 {
		if f.cpus < 0 {
			return nil, nil, fmt.Errorf("invalid --cpus %v: must be positive", f.cpus)
		}
		host.NanoCPUs = int64(f.cpus * 1e9)
	}
	if f.pidsLimit != 0 {
		n := f.pidsLimit
		host.PidsLimit = &n
	}
	if len(f.storageOpts) > 0 {
		host.StorageOpt = map[string]string{}
		for _, o := range f.storageOpts {
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				return nil, nil, fmt.Errorf("invalid storage option %q: want key=value", o)
			}
			host.StorageOpt[k] = v
		}
	}
	return cfg, host, nil
}

// createFromFlags creates the container run's or create's flags describe
// and returns its id; errors exit 125, as docker's.
func createFromFlags(ctx context.Context, g *globals, f *runFlags, args []string) (*client.Client, string, error) {
	cfg, host, err := f.configs(args)
	if err != nil {
		return nil, "", &exitError{code: 125, err: err}
	}
	c, err := g.connect(ctx)
	if err != nil {
		return nil, "", &exitError{code: 125, err: err}
	}
	netCfg, err := f.net.apply(cfg, host)
	if err != nil {
		return nil, "", &exitError{code: 125, err: err}
	}
	switch f.pull {
	case "always":
		if err := registryOp(ctx, c, (*client.Client).ImagePull, cfg.Image, os.Stderr); err != nil {
			return nil, "", &exitError{code: 125, err: err}
		}
	case "missing", "never":
	default:
		return nil, "", &exitError{code: 125, err: fmt.Errorf(`invalid pull option %q: must be "always", "missing" or "never"`, f.pull)}
	}
	created, err := c.ContainerCreate(ctx, f.name, cfg, host, netCfg)
	if err != nil && f.pull == "missing" && isImageNotFound(err) {
		// As docker run: pull what is not here, then create.
		fmt.Fprintf(os.Stderr, "Unable to find image '%s' locally\n", cfg.Image)
		if perr := registryOp(ctx, c, (*client.Client).ImagePull, cfg.Image, os.Stderr); perr != nil {
			return nil, "", &exitError{code: 125, err: perr}
		}
		created, err = c.ContainerCreate(ctx, f.name, cfg, host, netCfg)
	}
	if err != nil {
		if isImageNotFound(err) {
			err = fmt.Errorf("unable to find image '%s' locally (`silo pull` it, `silo load` a saved image, or `silo image build-busybox`): %w", cfg.Image, err)
		}
		return nil, "", &exitError{code: 125, err: err}
	}
	for _, w := range created.Warnings {
		fmt.Fprintln(os.Stderr, "WARNING:", w)
	}
	return c, created.ID, nil
}

// runContainer is `silo run`: create, then either start and print the id
// (-d), or wait-register, follow the logs, start, print the output and
// exit with the container's code. Errors of silo or silod exit 125, a
// command that cannot be invoked 126, one not found 127, as docker.
func runContainer(ctx context.Context, g *globals, f *runFlags, args []string) error {
	if f.tty && f.interactive && !f.detach && !isConsole(os.Stdin) {
		return &exitError{code: 125, err: errors.New("the input device is not a TTY")}
	}
	c, id, err := createFromFlags(ctx, g, f, args)
	if err != nil {
		return err
	}
	if f.detach {
		if err := c.ContainerStart(ctx, id); err != nil {
			if f.rm {
				_ = c.ContainerRemove(context.WithoutCancel(ctx), id, true)
			}
			return &exitError{code: startExitCode(err), err: err}
		}
		fmt.Println(id)
		return nil
	}

	cond := container.WaitConditionNextExit
	if f.rm {
		cond = container.WaitConditionRemoved
	}
	if f.tty || f.interactive {
		return runAttached(ctx, g, c, f, id, cond)
	}
	// The wait and the log follower are independent requests, both to be
	// in place before the start: send them at once.
	logCtx, cancelLogs := context.WithCancel(ctx)
	defer cancelLogs()
	type opened struct {
		logs io.ReadCloser
		err  error
	}
	logsCh := make(chan opened, 1)
	go func() {
		l, err := c.OpenLogs(logCtx, id, client.LogsOptions{Follow: true})
		logsCh <- opened{l, err}
	}()
	wait, werr := c.ContainerWait(ctx, id, cond)
	o := <-logsCh
	if err := errors.Join(werr, o.err); err != nil {
		if o.logs != nil {
			o.logs.Close()
		}
		return &exitError{code: 125, err: err}
	}
	logs := o.logs
	if err := c.ContainerStart(ctx, id); err != nil {
		logs.Close()
		if f.rm {
			_ = c.ContainerRemove(context.WithoutCancel(ctx), id, true)
		}
		return &exitError{code: startExitCode(err), err: err}
	}
	stopProxy := proxySignals(ctx, c, id)
	defer stopProxy()
	copied := make(chan error, 1)
	go func() { copied <- client.CopyLogs(logs, false, os.Stdout, os.Stderr) }()
	res := <-wait
	// The log ends when the monitor closes it, right after the exit.
	if err := <-copied; err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "silo: logs:", err)
	}
	if res.Err != nil {
		return &exitError{code: 125, err: res.Err}
	}
	if res.Code != 0 {
		return &exitError{code: res.Code}
	}
	return nil
}

// startExitCode is docker's exit status for a failed start.
func startExitCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "exec format error"):
		return 126
	}
	return 125
}

// proxySignals forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
// SIGUSR2 to the container, as docker's --sig-proxy does.
func proxySignals(ctx context.Context, c *client.Client, id string) func() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				sig := s.(syscall.Signal)
				_ = c.ContainerKill(context.WithoutCancel(ctx), id, strconv.Itoa(int(sig)))
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// isImageNotFound tells a create's "no such image" from its other
// not-found errors (a network, a volume source).
func isImageNotFound(err error) bool {
	return client.IsNotFound(err) && strings.Contains(err.Error(), "no such image")
}

// Command silod is silo's daemon: it serves the Docker Engine API on a
// unix socket (and TCP on loopback when asked), keeps containers and
// images under the data root, and runs containers through per-container
// monitors, so that stopping or killing silod leaves them running.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/silo-containers/silo/internal/api"
	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/storage"
	"github.com/silo-containers/silo/internal/storage/baseimage"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

type options struct {
	hosts        []string
	dataRoot     string
	execRoot     string
	cgroupParent string
	runtime      string
	monitor      string
	hostNetns    string
	debug        bool
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var o options
	var hosts listFlag
	fs := flag.NewFlagSet("silod", flag.ExitOnError)
	fs.Var(&hosts, "host", "address to listen on: unix:///path or tcp://127.0.0.1:PORT (repeatable; default unix:///run/silo/silo.sock)")
	fs.Var(&hosts, "H", "same as --host")
	fs.StringVar(&o.dataRoot, "data-root", "/var/lib/silo", "directory of persistent state")
	fs.StringVar(&o.execRoot, "exec-root", "/run/silo", "directory of runtime state")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "/silo", "cgroup under which containers go")
	fs.StringVar(&o.runtime, "runtime", "", "path of runsilo (default: next to silod, then PATH)")
	fs.StringVar(&o.monitor, "monitor", "", "path of silo-monitor (default: next to silod, then PATH; else the interim monitor in silod)")
	fs.StringVar(&o.hostNetns, "host-netns", os.Getenv("SILO_HOST_NETNS"),
		"network namespace (a path) where silo's networks, bridges and published ports live (default: silod's own; env SILO_HOST_NETNS)")
	fs.BoolVar(&o.debug, "debug", false, "log every request")
	showVersion := fs.Bool("version", false, "print the version and exit")
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println("silod version " + version)
		return
	}
	o.hosts = hosts
	if len(o.hosts) == 0 {
		o.hosts = []string{"unix://" + filepath.Join(o.execRoot, "silo.sock")}
	}
	level := slog.LevelInfo
	if o.debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(o, log); err != nil {
		log.Error("silod", "err", err)
		os.Exit(1)
	}
}

func run(o options, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := os.MkdirAll(o.execRoot, 0o711); err != nil {
		return err
	}
	if err := writePidFile(filepath.Join(o.execRoot, "silod.pid")); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(o.execRoot, "silod.pid"))

	images, err := storage.Open(ctx, filepath.Join(o.dataRoot, "image"))
	if err != nil {
		return err
	}
	defer images.Close()
	mons, err := newMonitors(o, log)
	if err != nil {
		return err
	}
	nets, err := openNetworks(ctx, o, log)
	if err != nil {
		return err
	}
	defer nets.Close()
	// debootstrap trees of builds a crashed daemon left behind.
	debianTmp := filepath.Join(o.dataRoot, "debootstrap")
	if err := os.RemoveAll(debianTmp); err != nil {
		return err
	}
	svc, err := engine.New(ctx, engine.Config{
		DataRoot:     filepath.Join(o.dataRoot, "engine"),
		ExecRoot:     filepath.Join(o.execRoot, "engine"),
		Images:       images,
		Monitors:     mons,
		Networks:     nets,
		CgroupParent: o.cgroupParent,
		Logger:       log,
		Busybox: func(ctx context.Context, ref string) (storage.ImageInfo, error) {
			return baseimage.Busybox(ctx, images, "", ref)
		},
		Debian: func(ctx context.Context, opts baseimage.DebianOptions) (storage.ImageInfo, error) {
			opts.TmpDir, opts.Debootstrap = debianTmp, ""
			opts.Unmount = resolvedRoots(o.dataRoot, o.execRoot)
			return baseimage.Debian(ctx, images, opts)
		},
	})
	if err != nil {
		return err
	}
	defer svc.Close()

	// Requests end with the daemon: streams (logs -f, wait) would hold
	// Shutdown for ever otherwise.
	reqCtx, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	srv := &http.Server{
		Handler:           api.New(svc, api.Options{Version: version, DataRoot: o.dataRoot, Logger: log}),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	errc := make(chan error, len(o.hosts))
	for _, h := range o.hosts {
		l, err := listen(h)
		if err != nil {
			return err
		}
		log.Info("listening", "host", h)
		go func() { errc <- srv.Serve(l) }()
	}
	log.Info("silod started", "version", version, "data-root", o.dataRoot, "exec-root", o.execRoot)
	select {
	case <-ctx.Done():
		log.Info("shutting down; containers keep running")
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	endRequests()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// listen opens a unix socket (mode 0660, owned by root) or a TCP listener.
func listen(host string) (net.Listener, error) {
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
			return nil, err
		}
		// A socket left by a killed daemon: remove it, but only a socket.
		if fi, err := os.Lstat(path); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("listen on %s: exists and is not a socket", path)
			}
			if c, err := net.Dial("unix", path); err == nil {
				c.Close()
				return nil, fmt.Errorf("listen on %s: another daemon is listening", path)
			}
			os.Remove(path)
		}
		old := syscall.Umask(0o177)
		l, err := net.Listen("unix", path)
		syscall.Umask(old)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", path, err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			l.Close()
			return nil, err
		}
		if err := os.Chown(path, 0, 0); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	case strings.HasPrefix(host, "tcp://"):
		addr := strings.TrimPrefix(host, "tcp://")
		h, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", host, err)
		}
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("listen on %s: only loopback addresses are allowed (the API has no authentication)", host)
		}
		return net.Listen("tcp", addr)
	}
	return nil, fmt.Errorf("listen on %q: want unix:///path or tcp://127.0.0.1:PORT", host)
}

func writePidFile(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// findBinary looks for name next to silod, then on PATH.
func findBinary(flagValue, name string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := lookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found next to silod or on PATH", name)
}

// resolvedRoots returns the directories with symlinks resolved, as the
// mount table names them (a directory that cannot be resolved as given).
func resolvedRoots(dirs ...string) []string {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			d = r
		}
		if a, err := filepath.Abs(d); err == nil {
			d = a
		}
		out = append(out, d)
	}
	return out
}

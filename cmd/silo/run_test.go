package main

import (
	"errors"
	"strings"
	"testing"
)

func TestRunConfigs(t *testing.T) {
	tests := []struct {
		name  string
		flags runFlags
		args  []string
		check func(t *testing.T, f *runFlags)
		err   string
	}{
		{name: "bad memory", flags: runFlags{memory: "lots"}, args: []string{"busybox"}, err: "invalid --memory"},
		{name: "negative cpus", flags: runFlags{cpus: -1}, args: []string{"busybox"}, err: "--cpus"},
		{name: "bad storage opt", flags: runFlags{storageOpts: []string{"size"}}, args: []string{"busybox"}, err: "key=value"},
		{name: "bad label", flags: runFlags{labels: []string{"=x"}}, args: []string{"busybox"}, err: "invalid label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.flags.configs(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
		})
	}

	f := runFlags{rm: true, memory: "64m", cpus: 1.5, pidsLimit: 20, isolation: "process", entrypoint: "sh", entrypointSet: true,
		env: []string{"A=1"}, labels: []string{"tier=web", "flag"}, storageOpts: []string{"size=1G"}, workdir: "/tmp", user: "1000"}
	cfg, host, err := f.configs([]string{"busybox", "-c", "true"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Image != "busybox" || strings.Join(cfg.Cmd, " ") != "-c true" || cfg.Entrypoint[0] != "sh" ||
		cfg.Labels["tier"] != "web" || cfg.Labels["flag"] != "" || cfg.WorkingDir != "/tmp" || cfg.User != "1000" || cfg.Env[0] != "A=1" {
		t.Errorf("config %+v", cfg)
	}
	if !host.AutoRemove || host.Memory != 64<<20 || host.NanoCPUs != 1.5e9 || *host.PidsLimit != 20 ||
		host.StorageOpt["size"] != "1G" || host.Isolation != "process" {
		t.Errorf("host config %+v", host)
	}
}

func TestRunConfigsAttach(t *testing.T) {
	f := runFlags{tty: true, interactive: true}
	cfg, _, err := f.configs([]string{"busybox", "sh"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Tty || !cfg.OpenStdin || !cfg.AttachStdin || !cfg.StdinOnce || !cfg.AttachStdout {
		t.Errorf("-it: %+v", cfg)
	}
	f = runFlags{interactive: true, detach: true}
	if cfg, _, err = f.configs([]string{"busybox"}); err != nil || !cfg.OpenStdin || cfg.AttachStdin || cfg.StdinOnce {
		t.Errorf("-di: %+v, %v", cfg, err)
	}
}

func TestStartExitCode(t *testing.T) {
	tests := []struct {
		msg  string
		want int
	}{
		{`exec: "x": executable file not found in $PATH`, 127},
		{"open /bin/x: no such file or directory", 127},
		{"exec /bin/x: permission denied", 126},
		{"the monitor is not available", 125},
	}
	for _, tt := range tests {
		if got := startExitCode(errors.New(tt.msg)); got != tt.want {
			t.Errorf("startExitCode(%q) = %d, want %d", tt.msg, got, tt.want)
		}
	}
}

func TestSplitTag(t *testing.T) {
	tests := []struct{ in, repo, tag string }{
		{"busybox:latest", "busybox", "latest"},
		{"docker.io/library/busybox:1.36", "busybox", "1.36"},
		{"localhost:5000/app", "localhost:5000/app", "<none>"},
		{"localhost:5000/app:v1", "localhost:5000/app", "v1"},
	}
	for _, tt := range tests {
		if r, tg := splitTag(tt.in); r != tt.repo || tg != tt.tag {
			t.Errorf("splitTag(%q) = %q %q", tt.in, r, tg)
		}
	}
}

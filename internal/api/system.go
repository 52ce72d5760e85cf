package api

import (
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Builder-Version", "1")
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", "0")
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("OK"))
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "silo"},
		Version:       s.opts.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: kernelVersion(),
		Components: []system.ComponentVersion{{
			Name: "Engine", Version: s.opts.Version,
			Details: map[string]string{
				"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion,
				"Os": runtime.GOOS, "Arch": runtime.GOARCH, "GoVersion": runtime.Version(),
				"KernelVersion": kernelVersion(),
			},
		}},
	}
	writeJSON(w, http.StatusOK, v)
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "linux"
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	n := s.b.Count()
	images := 0
	if list, err := s.b.Images(r.Context()); err == nil {
		images = len(list)
	}
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	host, _ := os.Hostname()
	cgroupVersion := "1"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgroupVersion = "2"
	}
	info := system.Info{
		ID:                host,
		Containers:        n.Containers,
		ContainersRunning: n.Running,
		ContainersPaused:  n.Paused,
		ContainersStopped: n.Stopped,
		Images:            images,
		Driver:            "overlay",
		DriverStatus:      [][2]string{{"Sandbox", "ext4 image on a loop device, size-limited"}},
		MemoryLimit:       true,
		SwapLimit:         true,
		CPUCfsPeriod:      true,
		CPUCfsQuota:       true,
		CPUShares:         true,
		CPUSet:            true,
		PidsLimit:         true,
		NGoroutines:       runtime.NumGoroutine(),
		SystemTime:        time.Now().Format(time.RFC3339Nano),
		LoggingDriver:     "json-file",
		CgroupDriver:      "cgroupfs",
		CgroupVersion:     cgroupVersion,
		KernelVersion:     kernelVersion(),
		OperatingSystem:   osName(),
		OSType:            runtime.GOOS,
		Architecture:      runtime.GOARCH,
		NCPU:              runtime.NumCPU(),
		MemTotal:          int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:     s.opts.DataRoot,
		Name:              host,
		Labels:            []string{},
		ServerVersion:     s.opts.Version,
		Runtimes:          map[string]system.RuntimeWithStatus{"runsilo": {}},
		DefaultRuntime:    "runsilo",
		Isolation:         container.IsolationProcess,
		SecurityOptions:   []string{"name=seccomp,profile=builtin"},
		Warnings:          []string{},
	}
	writeJSON(w, http.StatusOK, info)
}

package api

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	mobynet "github.com/moby/moby/api/types/network"

	"github.com/silo-containers/silo/internal/api/apiversion"
	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/engine/logs"
	"github.com/silo-containers/silo/internal/errdefs"
)

// Versions of the Engine API served.
const (
	// APIVersion is the newest API version served (the moby api module's).
	APIVersion = apiversion.Max
	// MinAPIVersion is the oldest version accepted.
	MinAPIVersion = apiversion.Min
)

// Backend is what the handlers call; *engine.Service implements it.
type Backend interface {
	Create(ctx context.Context, req engine.CreateRequest) (engine.CreateResponse, error)
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref, signal string, timeout *int) error
	Kill(ctx context.Context, ref, signal string) error
	Wait(ctx context.Context, ref string, cond container.WaitCondition) (int, error)
	Remove(ctx context.Context, ref string, opts engine.RemoveOptions) error
	List(ctx context.Context, opts engine.ListOptions) ([]container.Summary, error)
	Inspect(ctx context.Context, ref string) (container.InspectResponse, error)
	Logs(ctx context.Context, ref string, opts engine.LogsOptions) (bool, iter.Seq2[logs.Entry, error], error)
	Attach(ctx context.Context, ref string, opts engine.AttachOptions) (bool, engine.Attachment, error)
	Resize(ctx context.Context, ref string, height, width uint16) error
	Count() engine.Counts

	Images(ctx context.Context) ([]image.Summary, error)
	ImageInspect(ctx context.Context, ref string) (image.InspectResponse, error)
	LoadImages(ctx context.Context, r io.Reader) ([]string, error)
	RemoveImage(ctx context.Context, ref string, force bool) ([]image.DeleteResponse, error)
	BuildBusybox(ctx context.Context, ref string) (string, error)

	NetworkList(ctx context.Context, f engine.Filters) ([]mobynet.Summary, error)
	NetworkInspect(ctx context.Context, ref string) (engine.NetworkDetail, error)
	NetworkCreate(ctx context.Context, req mobynet.CreateRequest) (mobynet.CreateResponse, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworkConnect(ctx context.Context, ref, ctr string, es *mobynet.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, ref, ctr string) error
	NetworkPrune(ctx context.Context, f engine.Filters) ([]string, error)
	SetEndpointPolicies(ctx context.Context, ctr, network string, p engine.EndpointPolicies) error
}

var _ Backend = (*engine.Service)(nil)

// Options describe the daemon for /version and /info.
type Options struct {
	// Version is silod's version.
	Version string
	// DataRoot is shown as DockerRootDir.
	DataRoot string
	// Logger receives request logs and recovered panics.
	Logger *slog.Logger
}

// Server is the Engine API's HTTP handler.
type Server struct {
	b    Backend
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
}

// New returns the handler serving b.
func New(b Backend, opts Options) *Server {
	s := &Server{b: b, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.Version == "" {
		s.opts.Version = "0.0.0-dev"
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /_ping", s.ping)
	m.HandleFunc("HEAD /_ping", s.ping)
	m.HandleFunc("GET /version", s.version)
	m.HandleFunc("GET /info", s.info)

	m.HandleFunc("POST /containers/create", s.containerCreate)
	m.HandleFunc("GET /containers/json", s.containerList)
	m.HandleFunc("GET /containers/{id}/json", s.containerInspect)
	m.HandleFunc("POST /containers/{id}/start", s.containerStart)
	m.HandleFunc("POST /containers/{id}/stop", s.containerStop)
	m.HandleFunc("POST /containers/{id}/kill", s.containerKill)
	m.HandleFunc("POST /containers/{id}/wait", s.containerWait)
	m.HandleFunc("DELETE /containers/{id}", s.containerRemove)
	m.HandleFunc("GET /containers/{id}/logs", s.containerLogs)
	m.HandleFunc("POST /containers/{id}/attach", s.containerAttach)     // attach.go
	m.HandleFunc("GET /containers/{id}/attach/ws", s.containerAttachWS) // attach_ws.go
	m.HandleFunc("POST /containers/{id}/resize", s.containerResize)
	m.HandleFunc("POST /containers/{id}/exec", s.containerExec) // exec.go
	m.HandleFunc("POST /exec/{id}/start", s.execStart)
	m.HandleFunc("POST /exec/{id}/resize", s.execResize)
	m.HandleFunc("GET /exec/{id}/json", s.execInspect)

	m.HandleFunc("GET /images/json", s.imageList)
	m.HandleFunc("POST /images/load", s.imageLoad)
	// Image names hold slashes: /images/{name...}/json is parsed by hand.
	m.HandleFunc("GET /images/{rest...}", s.imageGetOrSave)
	m.HandleFunc("DELETE /images/{rest...}", s.imageRemove)
	// Pull, push, tag, save: images_dist.go.
	m.HandleFunc("POST /images/create", s.imageCreate)
	m.HandleFunc("POST /images/{rest...}", s.imagePost)
	m.HandleFunc("GET /images/get", s.imageSaveMany)
	m.HandleFunc("GET /networks", s.networkList) // networks.go
	m.HandleFunc("GET /networks/{id}", s.networkInspect)
	m.HandleFunc("POST /networks/create", s.networkCreate)
	m.HandleFunc("DELETE /networks/{id}", s.networkRemove)
	m.HandleFunc("POST /networks/{id}/connect", s.networkConnect)
	m.HandleFunc("POST /networks/{id}/disconnect", s.networkDisconnect)
	m.HandleFunc("POST /networks/prune", s.networkPrune)
	m.HandleFunc("POST /silo/containers/{id}/networks/{net}/policies", s.endpointPolicies)
	m.HandleFunc("POST /auth", s.auth) // auth.go

	// silo's own: build busybox:latest offline from the host's busybox-static.
	m.HandleFunc("POST /silo/images/busybox", s.imageBusybox)
	// … and a Debian image with debootstrap (images_debian.go).
	m.HandleFunc("POST /silo/images/debian", s.imageDebian)
	// Builds and commits: build.go.
	m.HandleFunc("POST /build", s.build)
	m.HandleFunc("POST /commit", s.commit)
	m.HandleFunc("POST /build/prune", s.buildPrune)

	s.volumeRoutes()  // volumes.go
	s.opsRoutes()     // containers_ops.go
	s.systemRoutes()  // events.go
	s.archiveRoutes() // archive.go

	for _, ep := range notImplemented {
		m.HandleFunc(ep, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, fmt.Errorf("%s: not implemented yet: %w", ep, errdefs.ErrNotImplemented))
		})
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("page not found: %s %s: %w", r.Method, r.URL.Path, errdefs.ErrNotFound))
	})
}

// optional returns the backend as T, one of the optional groups of
// endpoints (ops, volumes, archive…), or answers 501 when the backend
// does not serve that group.
func optional[T any](s *Server, w http.ResponseWriter, r *http.Request) (T, bool) {
	b, ok := s.b.(T)
	if !ok {
		writeError(w, fmt.Errorf("%s %s: not implemented yet: %w", r.Method, r.URL.Path, errdefs.ErrNotImplemented))
	}
	return b, ok
}

// notImplemented are the Docker API endpoints silo does not serve yet.
var notImplemented = []string{
	"POST /images/build",
	"GET /images/search",
	"GET /plugins", "GET /distribution/{name...}",
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+)\.([0-9]+)(/|$)`)

// ServeHTTP strips the version prefix, checks the version, sets docker's
// headers, recovers from panics and logs the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if !rw.wrote {
				writeError(rw, fmt.Errorf("internal error serving %s %s", r.Method, r.URL.Path))
			}
		}
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rw.status, "duration", time.Since(start))
	}()
	h := w.Header()
	h.Set("Api-Version", APIVersion)
	h.Set("Server", "silo/"+s.opts.Version+" (linux)")
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		v := m[1] + "." + m[2]
		if compareVersions(v, APIVersion) > 0 {
			writeError(rw, fmt.Errorf("client version %s is too new. Maximum supported API version is %s: %w", v, APIVersion, errdefs.ErrInvalidArgument))
			return
		}
		if compareVersions(v, MinAPIVersion) < 0 {
			writeError(rw, fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version: %w", v, MinAPIVersion, errdefs.ErrInvalidArgument))
			return
		}
		r2 := *r
		u := *r.URL
		u.Path = strings.TrimPrefix(r.URL.Path, "/v"+v)
		if u.Path == "" {
			u.Path = "/"
		}
		u.RawPath = ""
		r2.URL = &u
		r = &r2
	}
	s.mux.ServeHTTP(rw, r)
}

// compareVersions compares "1.51"-style versions.
func compareVersions(a, b string) int {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// statusWriter records the status for the log and whether anything was
// written (after which a recovered panic cannot change the answer).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data (streams: logs, wait).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

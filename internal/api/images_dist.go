package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
	"github.com/silo-containers/silo/internal/storage/image"
)

// DistBackend is what pull, push, tag and save call; *engine.Service
// implements it. A Backend without it answers 501 for those endpoints.
type DistBackend interface {
	PullImage(ctx context.Context, ref string, auth engine.RegistryAuth, progress storage.ProgressFunc) (engine.PullResult, error)
	PushImage(ctx context.Context, ref string, auth engine.RegistryAuth) (storage.ImageInfo, error)
	TagImage(ctx context.Context, src, dst string) error
	CheckImages(ctx context.Context, refs []string) error
	SaveImages(ctx context.Context, refs []string, w io.Writer) error
}

var _ DistBackend = (*engine.Service)(nil)

func (s *Server) dist(w http.ResponseWriter, what string) (DistBackend, bool) {
	d, ok := s.b.(DistBackend)
	if !ok {
		writeError(w, fmt.Errorf("%s: not implemented yet: %w", what, errdefs.ErrNotImplemented))
	}
	return d, ok
}

// wireMessage is docker's JSON progress message with the legacy top-level
// "error" string that docker clients still read.
type wireMessage struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// progressStream writes docker's JSON message stream. Nothing is sent
// until the first real event: an error before it is answered with an
// HTTP status (docker does the same), one after it as an error line.
type progressStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	enc     *json.Encoder
	started bool
	queued  []wireMessage
	seen    map[string]time.Time
}

func newProgressStream(w http.ResponseWriter) *progressStream {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &progressStream{w: w, enc: enc, seen: map[string]time.Time{}}
}

func (p *progressStream) startLocked() {
	if p.started {
		return
	}
	p.started = true
	p.w.Header().Set("Content-Type", "application/json")
	p.w.WriteHeader(http.StatusOK)
	for _, m := range p.queued {
		_ = p.enc.Encode(m)
	}
	p.queued = nil
}

func (p *progressStream) flushLocked() {
	if f, ok := p.w.(http.Flusher); ok {
		f.Flush()
	}
}

// queue holds m back until the stream starts.
func (p *progressStream) queue(m jsonstream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		_ = p.enc.Encode(wireMessage{Message: m})
		p.flushLocked()
		return
	}
	p.queued = append(p.queued, wireMessage{Message: m})
}

// send starts the stream if needed and writes m.
func (p *progressStream) send(m jsonstream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startLocked()
	_ = p.enc.Encode(wireMessage{Message: m})
	p.flushLocked()
}

// fail reports err: as the HTTP answer before the stream started, as
// docker's error line after.
func (p *progressStream) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		p.started = true
		writeError(p.w, err)
		return
	}
	msg := err.Error()
	_ = p.enc.Encode(wireMessage{Message: jsonstream.Message{Error: &jsonstream.Error{Message: msg}}, ErrorMessage: msg})
	p.flushLocked()
}

// layerID is docker's short layer id in progress lines.
func layerID(d fmt.Stringer) string {
	s := d.String()
	if _, hex, ok := strings.Cut(s, ":"); ok {
		s = hex
	}
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// pullProgress turns store progress into docker's per-layer lines,
// at most one "Downloading" line per layer every 100ms.
func (p *progressStream) pullProgress(ev storage.Progress) {
	id := layerID(ev.Digest)
	p.mu.Lock()
	last, seen := p.seen[id]
	now := time.Now()
	if !ev.Done && seen && now.Sub(last) < 100*time.Millisecond {
		p.mu.Unlock()
		return
	}
	p.seen[id] = now
	p.mu.Unlock()
	switch {
	case ev.Done && !seen:
		p.send(jsonstream.Message{Status: "Already exists", ID: id, Progress: &jsonstream.Progress{}})
	case ev.Done:
		p.send(jsonstream.Message{Status: "Pull complete", ID: id, Progress: &jsonstream.Progress{}})
	default:
		p.send(jsonstream.Message{Status: "Downloading", ID: id, Progress: &jsonstream.Progress{Current: ev.Current, Total: ev.Total}})
	}
}

// decodeAuth reads docker's X-Registry-Auth header: base64url JSON of a
// registry.AuthConfig ("auth" may hold base64 "user:password").
func decodeAuth(h string) (engine.RegistryAuth, error) {
	if h == "" {
		return engine.RegistryAuth{}, nil
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.StdEncoding, base64.RawURLEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(strings.TrimSpace(h)); err == nil {
			break
		}
	}
	if err != nil {
		return engine.RegistryAuth{}, fmt.Errorf("X-Registry-Auth: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		return engine.RegistryAuth{}, fmt.Errorf("X-Registry-Auth: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth != "" {
		if up, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
			ac.Username, ac.Password, _ = strings.Cut(string(up), ":")
		}
	}
	return engine.RegistryAuth{Username: ac.Username, Password: ac.Password}, nil
}

// withTag joins docker's separate name and tag parameters; a tag that is
// a digest makes a digest reference.
func withTag(name, tag string) string {
	switch {
	case tag == "":
		return name
	case strings.Contains(tag, ":"):
		return name + "@" + tag
	}
	return name + ":" + tag
}

// repoAndTag splits a normalized reference into its repository and its
// tag or digest.
func repoAndTag(n string) (string, string) {
	if r, d, ok := strings.Cut(n, "@"); ok {
		return r, d
	}
	if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
		return n[:i], n[i+1:]
	}
	return n, "latest"
}

// imageCreate serves POST /images/create?fromImage=&tag= (docker pull).
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("fromSrc") != "" {
		s.imageImport(w, r) // images_import.go
		return
	}
	from := q.Get("fromImage")
	if from == "" {
		writeError(w, fmt.Errorf("fromImage is required: %w", errdefs.ErrInvalidArgument))
		return
	}
	n, err := image.Normalize(withTag(from, q.Get("tag")))
	if err != nil {
		writeError(w, err)
		return
	}
	d, ok := s.dist(w, "POST /images/create")
	if !ok {
		return
	}
	auth, _ := decodeAuth(r.Header.Get("X-Registry-Auth")) // docker ignores a bad one on pull
	ps := newProgressStream(w)
	repo, tag := repoAndTag(n)
	// Docker names the repository by its path, without the registry.
	_, path, _ := strings.Cut(repo, "/")
	ps.queue(jsonstream.Message{Status: "Pulling from " + path, ID: tag})
	res, err := d.PullImage(r.Context(), n, auth, ps.pullProgress)
	if err != nil {
		ps.fail(err)
		return
	}
	ps.send(jsonstream.Message{Status: "Digest: " + res.Image.Manifest.String()})
	if res.Updated {
		ps.send(jsonstream.Message{Status: "Status: Downloaded newer image for " + image.Familiar(n)})
	} else {
		ps.send(jsonstream.Message{Status: "Status: Image is up to date for " + image.Familiar(n)})
	}
}

// imagePost serves POST /images/{name}/push and /images/{name}/tag (the
// name may hold slashes).
func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	if name, ok := strings.CutSuffix(rest, "/push"); ok && name != "" {
		s.imagePush(w, r, name)
		return
	}
	if name, ok := strings.CutSuffix(rest, "/tag"); ok && name != "" {
		s.imageTag(w, r, name)
		return
	}
	writeError(w, fmt.Errorf("page not found: POST /images/%s: %w", rest, errdefs.ErrNotFound))
}

func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, name string) {
	n, err := image.Normalize(withTag(name, r.URL.Query().Get("tag")))
	if err != nil {
		writeError(w, err)
		return
	}
	auth, err := decodeAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		writeError(w, err)
		return
	}
	d, ok := s.dist(w, "POST /images/{name}/push")
	if !ok {
		return
	}
	// Held back until the push is done: an image that is not here is a 404.
	ps := newProgressStream(w)
	repo, tag := repoAndTag(n)
	ps.queue(jsonstream.Message{Status: "The push refers to repository [" + repo + "]"})
	info, err := d.PushImage(r.Context(), n, auth)
	if err != nil {
		ps.fail(err)
		return
	}
	for _, l := range info.DiffIDs {
		ps.send(jsonstream.Message{Status: "Pushed", ID: layerID(l), Progress: &jsonstream.Progress{}})
	}
	ps.send(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s", tag, info.Manifest)})
}

func (s *Server) imageTag(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	repo := q.Get("repo")
	if repo == "" {
		writeError(w, fmt.Errorf("repo is required: %w", errdefs.ErrInvalidArgument))
		return
	}
	dst, err := image.Normalize(withTag(repo, q.Get("tag")))
	if err != nil {
		writeError(w, err)
		return
	}
	d, ok := s.dist(w, "POST /images/{name}/tag")
	if !ok {
		return
	}
	if err := d.TagImage(r.Context(), name, dst); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// imageGetOrSave serves GET /images/{name}/get (docker save of one image)
// and hands every other GET /images/… to imageGet.
func (s *Server) imageGetOrSave(w http.ResponseWriter, r *http.Request) {
	if name, ok := strings.CutSuffix(r.PathValue("rest"), "/get"); ok && name != "" {
		s.saveImages(w, r, []string{name})
		return
	}
	if name, ok := strings.CutSuffix(r.PathValue("rest"), "/history"); ok && name != "" {
		s.imageHistory(w, r, name) // containers_ops.go
		return
	}
	s.imageGet(w, r)
}

// imageSaveMany serves GET /images/get?names=a&names=b.
func (s *Server) imageSaveMany(w http.ResponseWriter, r *http.Request) {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		writeError(w, fmt.Errorf("no image names given: %w", errdefs.ErrInvalidArgument))
		return
	}
	s.saveImages(w, r, names)
}

func (s *Server) saveImages(w http.ResponseWriter, r *http.Request, refs []string) {
	for _, ref := range refs {
		if _, err := image.Normalize(ref); err != nil && !strings.HasPrefix(ref, "sha256:") {
			writeError(w, err)
			return
		}
	}
	d, ok := s.dist(w, "GET /images/get")
	if !ok {
		return
	}
	if err := d.CheckImages(r.Context(), refs); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := d.SaveImages(r.Context(), refs, w); err != nil {
		s.log.Error("save images", "refs", refs, "err", err)
		// The tar is half sent: break the connection so that the client
		// does not take it for a whole one.
		panic(http.ErrAbortHandler)
	}
}

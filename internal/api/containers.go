package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// maxCreateBody bounds a create request (docker's are a few KiB).
const maxCreateBody = 4 << 20

// decodeBody reads one JSON document into v; an empty or malformed body
// is an invalid argument.
func decodeBody(r *http.Request, v any, limit int64) error {
	if r.Body == nil {
		return fmt.Errorf("empty request body: %w", errdefs.ErrInvalidArgument)
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, limit))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("empty request body: %w", errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("malformed request body: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// boolValue reads docker's boolean query values: "", "0", "no", "false",
// "none" are false; anything else is true.
func boolValue(r *http.Request, key string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) {
	var req container.CreateRequest
	if err := decodeBody(r, &req, maxCreateBody); err != nil {
		writeError(w, err)
		return
	}
	if req.Config == nil {
		writeError(w, fmt.Errorf("config cannot be empty in order to create a container: %w", errdefs.ErrInvalidArgument))
		return
	}
	if p := r.URL.Query().Get("platform"); p != "" && p != "linux" && !strings.HasPrefix(p, "linux/") {
		writeError(w, fmt.Errorf("platform %q: only linux is supported: %w", p, errdefs.ErrInvalidArgument))
		return
	}
	resp, err := s.b.Create(r.Context(), engine.CreateRequest{
		Name: r.URL.Query().Get("name"), Config: req.Config, HostConfig: req.HostConfig,
		NetworkingConfig: req.NetworkingConfig,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: resp.ID, Warnings: resp.Warnings})
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("checkpoint") != "" {
		writeError(w, fmt.Errorf("start from a checkpoint: not implemented yet: %w", errdefs.ErrNotImplemented))
		return
	}
	if err := s.b.Start(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) {
	var timeout *int
	if t := r.URL.Query().Get("t"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			writeError(w, fmt.Errorf("invalid value for t %q: %w", t, errdefs.ErrInvalidArgument))
			return
		}
		timeout = &n
	}
	if err := s.b.Stop(r.Context(), r.PathValue("id"), r.URL.Query().Get("signal"), timeout); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Kill(r.Context(), r.PathValue("id"), r.URL.Query().Get("signal")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// containerWait answers the headers at once (the client then knows the
// wait is in place, and may start the container), the body at the exit.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		writeError(w, fmt.Errorf("invalid condition %q: %w", cond, errdefs.ErrInvalidArgument))
		return
	}
	id := r.PathValue("id")
	// Not found is an error status, not a body, so look first.
	if _, err := s.b.Inspect(r.Context(), id); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	code, err := s.b.Wait(r.Context(), id, cond)
	resp := container.WaitResponse{StatusCode: int64(code)}
	if err != nil {
		resp.Error = &container.WaitExitError{Message: err.Error()}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request) {
	if boolValue(r, "link") {
		writeError(w, fmt.Errorf("remove links: not implemented yet: %w", errdefs.ErrNotImplemented))
		return
	}
	if err := s.b.Remove(r.Context(), r.PathValue("id"), engine.RemoveOptions{Force: boolValue(r, "force"), RemoveVolumes: boolValue(r, "v")}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseFilters reads docker's filters parameter: {"key":{"value":true}}
// or the older {"key":["value"]}.
func parseFilters(raw string) (engine.Filters, error) {
	f := engine.Filters{}
	if raw == "" {
		return f, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("invalid filters %q: %v: %w", raw, err, errdefs.ErrInvalidArgument)
	}
	for k, v := range m {
		var set map[string]bool
		if err := json.Unmarshal(v, &set); err == nil {
			for val, on := range set {
				if on {
					f[k] = append(f[k], val)
				}
			}
			continue
		}
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, fmt.Errorf("invalid filter %q: want an object or a list of strings: %w", k, errdefs.ErrInvalidArgument)
		}
		f[k] = append(f[k], list...)
	}
	return f, nil
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filters, err := parseFilters(q.Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	opts := engine.ListOptions{All: boolValue(r, "all"), Filters: filters, Size: boolValue(r, "size")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeError(w, fmt.Errorf("invalid limit %q: %w", l, errdefs.ErrInvalidArgument))
			return
		}
		if n > 0 {
			opts.Limit, opts.All = n, true
		}
	}
	list, err := s.b.List(r.Context(), opts)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) {
	resp, err := s.b.Inspect(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// parseTime reads since/until: unix seconds with an optional fraction
// ("1700000000.123456789", what the docker CLI sends) or RFC 3339.
func parseTime(key, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	if n, err := strconv.ParseInt(sec, 10, 64); err == nil {
		var nsec int64
		if frac != "" {
			if len(frac) > 9 {
				frac = frac[:9]
			}
			f, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("invalid %s %q: %w", key, v, errdefs.ErrInvalidArgument)
			}
			nsec = f
		}
		if n == 0 && nsec == 0 {
			return time.Time{}, nil
		}
		return time.Unix(n, nsec), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid %s %q: want unix seconds or RFC 3339: %w", key, v, errdefs.ErrInvalidArgument)
	}
	return t, nil
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := engine.LogsOptions{
		Follow: boolValue(r, "follow"), Timestamps: boolValue(r, "timestamps"),
		Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Tail: -1,
		Details: boolValue(r, "details"),
	}
	if !opts.Stdout && !opts.Stderr {
		writeError(w, fmt.Errorf("bad parameters: you must choose at least one stream: %w", errdefs.ErrInvalidArgument))
		return
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			writeError(w, fmt.Errorf("invalid tail %q: want a number or all: %w", t, errdefs.ErrInvalidArgument))
			return
		}
		opts.Tail = n
	}
	var err error
	if opts.Since, err = parseTime("since", q.Get("since")); err != nil {
		writeError(w, err)
		return
	}
	if opts.Until, err = parseTime("until", q.Get("until")); err != nil {
		writeError(w, err)
		return
	}
	tty, entries, err := s.b.Logs(r.Context(), r.PathValue("id"), opts)
	if err != nil {
		writeError(w, err)
		return
	}
	if tty {
		w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
	} else {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	out := &streamWriter{w: w, mux: !tty}
	for e, err := range entries {
		if err != nil {
			// Headers are sent: the error can only end the stream.
			s.log.Warn("read logs", "container", r.PathValue("id"), "err", err)
			return
		}
		if err := out.write(e.Stream, e.Line); err != nil {
			return
		}
		if opts.Follow {
			_ = rc.Flush()
		}
	}
}

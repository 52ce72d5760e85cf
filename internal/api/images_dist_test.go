package api

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
)

// distFake adds pull/push/tag/save to fakeBackend. The registry knows
// "busybox" (pulls fine) and "broken" (fails after a layer started).
type distFake struct {
	fakeBackend
	auth   engine.RegistryAuth
	pulled string
	tagged [2]string
	saved  []string
}

var layer = digest.FromString("layer")

func (f *distFake) PullImage(_ context.Context, ref string, auth engine.RegistryAuth, progress storage.ProgressFunc) (engine.PullResult, error) {
	f.auth, f.pulled = auth, ref
	switch ref {
	case "docker.io/library/busybox:latest":
		progress(storage.Progress{Digest: layer, Current: 5, Total: 10})
		progress(storage.Progress{Digest: layer, Current: 10, Total: 10, Done: true})
		return engine.PullResult{Image: storage.ImageInfo{Manifest: digest.FromString("m")}, Updated: true}, nil
	case "docker.io/library/broken:latest":
		progress(storage.Progress{Digest: layer, Current: 5, Total: 10})
		return engine.PullResult{}, errors.New("pull broken: unexpected EOF")
	}
	return engine.PullResult{}, fmt.Errorf("pull %s: manifest unknown: %w", ref, errdefs.ErrNotFound)
}

func (f *distFake) PushImage(ctx context.Context, ref string, auth engine.RegistryAuth) (storage.ImageInfo, error) {
	f.auth = auth
	if err := f.CheckImages(ctx, []string{ref}); err != nil {
		return storage.ImageInfo{}, err
	}
	return storage.ImageInfo{Manifest: digest.FromString("m"), DiffIDs: []digest.Digest{layer}}, nil
}

func (f *distFake) TagImage(_ context.Context, src, dst string) error {
	if src != "busybox" {
		return fmt.Errorf("no such image: %s: %w", src, errdefs.ErrNotFound)
	}
	f.tagged = [2]string{src, dst}
	return nil
}

func (f *distFake) CheckImages(_ context.Context, refs []string) error {
	for _, r := range refs {
		if r != "busybox" && r != "docker.io/library/busybox:latest" {
			return fmt.Errorf("no such image: %s: %w", r, errdefs.ErrNotFound)
		}
	}
	return nil
}

func (f *distFake) SaveImages(_ context.Context, refs []string, w io.Writer) error {
	f.saved = refs
	_, err := io.WriteString(w, "TAR")
	return err
}

func serveDist(f *distFake, req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	New(f, Options{Version: "test"}).ServeHTTP(w, req)
	return w
}

func messages(t *testing.T, body string) []wireMessage {
	t.Helper()
	var out []wireMessage
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var m wireMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestDistStatus(t *testing.T) {
	tests := []struct {
		method, path string
		status       int
	}{
		{"POST", "/v1.45/images/create?fromImage=busybox&tag=latest", 200},
		{"POST", "/images/create?fromImage=Bad%20Name", 400},
		{"POST", "/images/create", 400},
		{"POST", "/images/create?fromImage=busybox&tag=b%40d", 400},
		{"POST", "/images/create?fromImage=nothing", 404},
		{"POST", "/images/create?fromSrc=-", 501},
		{"POST", "/images/busybox/push", 200},
		{"POST", "/images/nothing/push?tag=1", 404},
		{"POST", "/images/BAD/push", 400},
		{"POST", "/images/busybox/tag?repo=127.0.0.1:5000/a/b&tag=1", 201},
		{"POST", "/images/busybox/tag?repo=a&tag=b%40d", 400},
		{"POST", "/images/busybox/tag", 400},
		{"POST", "/images/nothing/tag?repo=a", 404},
		{"POST", "/images/busybox/frob", 404},
		{"GET", "/images/busybox/get", 200},
		{"GET", "/images/nothing/get", 404},
		{"GET", "/images/get?names=busybox&names=docker.io/library/busybox:latest", 200},
		{"GET", "/images/get?names=busybox&names=nothing", 404},
		{"GET", "/images/get", 400},
		{"GET", "/images/get?names=BAD", 400},
		{"GET", "/images/busybox/json", 200},
	}
	for _, tc := range tests {
		w := serveDist(&distFake{}, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, w.Code, w.Body, tc.status)
		}
	}
	// A backend without the registry side answers 501.
	w := serve(t, &fakeBackend{}, "POST", "/images/create?fromImage=busybox", "")
	if w.Code != 501 {
		t.Errorf("plain backend: %d", w.Code)
	}
}

func TestPullStream(t *testing.T) {
	f := &distFake{}
	req := httptest.NewRequest("POST", "/images/create?fromImage=busybox&tag=latest", nil)
	auth, _ := json.Marshal(map[string]string{"username": "u", "password": "p:w"})
	req.Header.Set("X-Registry-Auth", base64.URLEncoding.EncodeToString(auth))
	w := serveDist(f, req)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", w.Code, w.Header())
	}
	if f.auth != (engine.RegistryAuth{Username: "u", Password: "p:w"}) || f.pulled != "docker.io/library/busybox:latest" {
		t.Fatalf("auth %+v ref %q", f.auth, f.pulled)
	}
	ms := messages(t, w.Body.String())
	if len(ms) != 5 {
		t.Fatalf("messages: %s", w.Body)
	}
	id := layer.Encoded()[:12]
	if ms[0].Status != "Pulling from library/busybox" || ms[0].ID != "latest" ||
		ms[1].Status != "Downloading" || ms[1].ID != id || ms[1].Progress.Current != 5 || ms[1].Progress.Total != 10 ||
		ms[2].Status != "Pull complete" || ms[2].ID != id ||
		!strings.HasPrefix(ms[3].Status, "Digest: sha256:") ||
		ms[4].Status != "Status: Downloaded newer image for busybox:latest" {
		t.Fatalf("messages: %s", w.Body)
	}
}

func TestPullStreamError(t *testing.T) {
	w := serveDist(&distFake{}, httptest.NewRequest("POST", "/images/create?fromImage=broken", nil))
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	lines := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
	last := lines[len(lines)-1]
	if last != `{"errorDetail":{"message":"pull broken: unexpected EOF"},"error":"pull broken: unexpected EOF"}` {
		t.Fatalf("error line %q", last)
	}
}

func TestPushStreamAndTag(t *testing.T) {
	f := &distFake{}
	w := serveDist(f, httptest.NewRequest("POST", "/images/127.0.0.1:5000/a/busybox/push?tag=1", nil))
	// The fake knows only busybox: 404 before any stream.
	if w.Code != 404 {
		t.Fatalf("push of unknown: %d %s", w.Code, w.Body)
	}
	w = serveDist(f, httptest.NewRequest("POST", "/images/busybox/push?tag=latest", nil))
	ms := messages(t, w.Body.String())
	if w.Code != 200 || len(ms) != 3 || ms[0].Status != "The push refers to repository [docker.io/library/busybox]" ||
		!strings.HasPrefix(ms[2].Status, "latest: digest: sha256:") {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	w = serveDist(f, httptest.NewRequest("POST", "/images/busybox/tag?repo=127.0.0.1:5000/a/b&tag=1", nil))
	if w.Code != 201 || f.tagged != [2]string{"busybox", "127.0.0.1:5000/a/b:1"} {
		t.Fatalf("tag: %d %v", w.Code, f.tagged)
	}
	req := httptest.NewRequest("POST", "/images/busybox/push", nil)
	req.Header.Set("X-Registry-Auth", "!!!")
	if w := serveDist(f, req); w.Code != 400 {
		t.Fatalf("push with a bad auth header: %d", w.Code)
	}
}

func TestSave(t *testing.T) {
	f := &distFake{}
	w := serveDist(f, httptest.NewRequest("GET", "/images/get?names=busybox&names=docker.io/library/busybox:latest", nil))
	if w.Code != 200 || w.Body.String() != "TAR" || w.Header().Get("Content-Type") != "application/x-tar" || len(f.saved) != 2 {
		t.Fatalf("save: %d %q %v", w.Code, w.Body, f.saved)
	}
}

func TestDecodeAuth(t *testing.T) {
	enc := func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }
	for in, want := range map[string]engine.RegistryAuth{
		"":                                     {},
		enc("{}"):                              {},
		enc(`{"username":"a","password":"b"}`): {Username: "a", Password: "b"},
		enc(`{"auth":"` + base64.StdEncoding.EncodeToString([]byte("x:y")) + `"}`): {Username: "x", Password: "y"},
	} {
		got, err := decodeAuth(in)
		if err != nil || got != want {
			t.Errorf("decodeAuth(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := decodeAuth(enc("not json")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad json: %v", err)
	}
}

package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/storage"
)

type importFake struct {
	fakeBackend
	ref, body, msg string
}

func (f *importFake) ImportImage(_ context.Context, r io.Reader, ref string, opts engine.ImportOptions) (storage.ImageInfo, error) {
	b, _ := io.ReadAll(r)
	f.ref, f.body, f.msg = ref, string(b), opts.Message
	return storage.ImageInfo{ID: digest.FromString("img")}, nil
}

func TestImageImport(t *testing.T) {
	f := &importFake{}
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/images/create?fromSrc=-&repo=example/rootfs&tag=v1&message=hi", strings.NewReader("TAR"))
	New(f, Options{Version: "test"}).ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if f.ref != "docker.io/example/rootfs:v1" || f.body != "TAR" || f.msg != "hi" {
		t.Fatalf("backend got %q %q %q", f.ref, f.body, f.msg)
	}
	if ms := messages(t, w.Body.String()); len(ms) != 1 || ms[0].Status != digest.FromString("img").String() {
		t.Fatalf("answer %q", w.Body)
	}
	// From a URL: not yet.
	w = httptest.NewRecorder()
	New(f, Options{Version: "test"}).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/images/create?fromSrc=http://x/y.tar", nil))
	if w.Code != http.StatusNotImplemented {
		t.Fatalf("fromSrc URL: %d", w.Code)
	}
}

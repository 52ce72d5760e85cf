package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	mobyvolume "github.com/moby/moby/api/types/volume"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// featureBackend adds the optional backends to fakeBackend.
type featureBackend struct {
	*fakeBackend
	filters engine.Filters
	extract engine.ExtractOptions
	put     string
}

func (f *featureBackend) VolumeCreate(_ context.Context, req mobyvolume.CreateRequest) (mobyvolume.Volume, error) {
	return mobyvolume.Volume{Name: req.Name, Driver: "local"}, nil
}
func (f *featureBackend) VolumeInspect(_ context.Context, name string) (mobyvolume.Volume, error) {
	return mobyvolume.Volume{}, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
}
func (f *featureBackend) VolumeList(_ context.Context, fl engine.Filters) (mobyvolume.ListResponse, error) {
	f.filters = fl
	return mobyvolume.ListResponse{Volumes: []mobyvolume.Volume{}}, nil
}
func (f *featureBackend) VolumeRemove(_ context.Context, name string, force bool) error {
	return fmt.Errorf("remove volume %s: volume is in use: %w", name, errdefs.ErrConflict)
}
func (f *featureBackend) VolumePrune(_ context.Context, fl engine.Filters) (mobyvolume.PruneReport, error) {
	f.filters = fl
	return mobyvolume.PruneReport{VolumesDeleted: []string{"a"}}, nil
}
func (f *featureBackend) Pause(_ context.Context, ref string) error   { return f.known(ref) }
func (f *featureBackend) Unpause(_ context.Context, ref string) error { return f.known(ref) }
func (f *featureBackend) Restart(_ context.Context, ref, _ string, _ *int) error {
	return f.known(ref)
}
func (f *featureBackend) Rename(_ context.Context, ref, name string) error { return f.known(ref) }
func (f *featureBackend) Update(_ context.Context, ref string, upd container.UpdateConfig) error {
	if err := f.known(ref); err != nil {
		return err
	}
	if upd.Memory < 0 {
		return fmt.Errorf("negative limit: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}
func (f *featureBackend) Export(_ context.Context, ref string, w io.Writer) error {
	if err := f.known(ref); err != nil {
		return err
	}
	_, err := io.WriteString(w, "EXPORT")
	return err
}
func (f *featureBackend) Changes(_ context.Context, ref string) ([]container.FilesystemChange, error) {
	return []container.FilesystemChange{{Path: "/tmp", Kind: container.ChangeModify}}, f.known(ref)
}
func (f *featureBackend) Top(_ context.Context, ref, ps string) (container.TopResponse, error) {
	return container.TopResponse{Titles: []string{"PID", ps}}, f.known(ref)
}
func (f *featureBackend) Stats(_ context.Context, ref string, o engine.StatsOptions) (iter.Seq2[container.StatsResponse, error], error) {
	if err := f.known(ref); err != nil {
		return nil, err
	}
	return func(yield func(container.StatsResponse, error) bool) {
		n := 1
		if o.Stream {
			n = 3
		}
		for i := 0; i < n; i++ {
			if !yield(container.StatsResponse{Name: "/web", PidsStats: container.PidsStats{Current: uint64(i)}}, nil) {
				return
			}
		}
	}, nil
}
func (f *featureBackend) ContainersPrune(_ context.Context, fl engine.Filters) (engine.PruneReport, error) {
	f.filters = fl
	return engine.PruneReport{Deleted: []string{"x"}, SpaceReclaimed: 7}, nil
}
func (f *featureBackend) ImagesPrune(_ context.Context, fl engine.Filters) (image.PruneReport, error) {
	return image.PruneReport{}, nil
}
func (f *featureBackend) ImageHistory(_ context.Context, ref string) ([]image.HistoryResponseItem, error) {
	return []image.HistoryResponseItem{{ID: ref}}, nil
}
func (f *featureBackend) Events(_ context.Context, o engine.EventsOptions) (iter.Seq[events.Message], error) {
	return func(yield func(events.Message) bool) {
		yield(events.Message{Action: "start", Actor: events.Actor{ID: "web"}})
	}, nil
}
func (f *featureBackend) DiskUsage(context.Context) (engine.DiskUsage, error) {
	return engine.DiskUsage{Volumes: []mobyvolume.Volume{{Name: "v", UsageData: &mobyvolume.UsageData{Size: 10}}}}, nil
}
func (f *featureBackend) StatPath(_ context.Context, ref, p string) (container.PathStat, error) {
	return container.PathStat{Name: "x", Size: 3}, f.known(ref)
}
func (f *featureBackend) ArchivePath(_ context.Context, ref, p string, head func(container.PathStat) io.Writer) error {
	if err := f.known(ref); err != nil {
		return err
	}
	_, err := io.WriteString(head(container.PathStat{Name: "x"}), "TAR")
	return err
}
func (f *featureBackend) ExtractToDir(_ context.Context, ref, p string, r io.Reader, o engine.ExtractOptions) error {
	b, _ := io.ReadAll(r)
	f.put, f.extract = p+":"+string(b), o
	return f.known(ref)
}

// The fake must keep up with the optional backends, or their routes
// answer 501 in the test.
var (
	_ OpsBackend     = (*featureBackend)(nil)
	_ ArchiveBackend = (*featureBackend)(nil)
)

func TestFeatureHandlers(t *testing.T) {
	fb := &featureBackend{fakeBackend: &fakeBackend{}}
	do := func(b Backend, method, path, body string) *httptest.ResponseRecorder {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		w := httptest.NewRecorder()
		New(b, Options{Version: "test"}).ServeHTTP(w, httptest.NewRequest(method, path, r))
		return w
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"POST", "/v1.44/volumes/create", `{"Name":"a"}`, http.StatusCreated, `"Name":"a"`},
		{"POST", "/volumes/create", `{`, http.StatusBadRequest, "malformed"},
		{"GET", "/volumes/zz", "", http.StatusNotFound, "no such volume"},
		{"DELETE", "/volumes/a", "", http.StatusConflict, "in use"},
		{"GET", "/volumes?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D", "", http.StatusOK, `"Volumes":[]`},
		{"GET", "/volumes?filters=nope", "", http.StatusBadRequest, "invalid filters"},
		{"POST", "/volumes/prune", "", http.StatusOK, `"VolumesDeleted":["a"]`},
		{"POST", "/containers/web/pause", "", http.StatusNoContent, ""},
		{"POST", "/containers/nope/unpause", "", http.StatusNotFound, "no such container"},
		{"POST", "/containers/web/restart?t=x", "", http.StatusBadRequest, "invalid value for t"},
		{"POST", "/containers/web/rename", "", http.StatusBadRequest, "no new name"},
		{"POST", "/containers/web/rename?name=b", "", http.StatusNoContent, ""},
		{"GET", "/containers/web/top?ps_args=aux", "", http.StatusOK, `"Titles":["PID","aux"]`},
		{"GET", "/containers/web/stats?stream=0", "", http.StatusOK, `"name":"/web"`},
		{"GET", "/containers/web/stats?stream=1&one-shot=1", "", http.StatusBadRequest, "one-shot"},
		{"POST", "/containers/prune", "", http.StatusOK, `"ContainersDeleted":["x"],"SpaceReclaimed":7`},
		{"GET", "/images/busybox/history", "", http.StatusOK, `"Id":"busybox"`},
		{"GET", "/events?since=yesterday", "", http.StatusBadRequest, "invalid since"},
		{"GET", "/events", "", http.StatusOK, `"Action":"start"`},
		{"GET", "/system/df", "", http.StatusOK, `"LayersSize":0`},
		{"GET", "/containers/web/archive", "", http.StatusBadRequest, "no path"},
		{"GET", "/containers/web/archive?path=/x", "", http.StatusOK, "TAR"},
		{"GET", "/containers/nope/archive?path=/x", "", http.StatusNotFound, "no such container"},
		{"PUT", "/containers/web/archive?path=/d&copyUIDGID=1", "BODY", http.StatusOK, ""},
		{"POST", "/containers/web/update", `{"Memory":67108864}`, http.StatusOK, `"Warnings":[]`},
		{"POST", "/containers/web/update", `{"Memory":-1}`, http.StatusBadRequest, "negative"},
		{"POST", "/containers/web/update", `{`, http.StatusBadRequest, "malformed"},
		{"POST", "/containers/nope/update", `{}`, http.StatusNotFound, "no such container"},
		{"GET", "/containers/web/export", "", http.StatusOK, "EXPORT"},
		{"GET", "/containers/nope/export", "", http.StatusNotFound, "no such container"},
		{"GET", "/containers/web/changes", "", http.StatusOK, `[{"Kind":0,"Path":"/tmp"}]`},
	} {
		w := do(fb, tc.method, tc.path, tc.body)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, w.Code, w.Body.String(), tc.status, tc.contains)
		}
	}
	if fb.put != "/d:BODY" || !fb.extract.CopyUIDGID || fb.extract.NoOverwriteDirNonDir {
		t.Errorf("put %q %+v", fb.put, fb.extract)
	}
	// A stream gives one document per sample.
	if w := do(fb, "GET", "/containers/web/stats", ""); strings.Count(w.Body.String(), "\n") != 3 {
		t.Errorf("stats stream: %q", w.Body.String())
	}
	// df: both the new and the legacy shapes.
	w := do(fb, "GET", "/system/df", "")
	var df map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &df); err != nil || df["VolumeUsage"] == nil || df["Volumes"] == nil {
		t.Errorf("df %s %v", w.Body.String(), err)
	}
	w = do(fb, "HEAD", "/containers/web/archive?path=/x", "")
	raw, err := base64.StdEncoding.DecodeString(w.Header().Get(pathStatHeader))
	var st container.PathStat
	if err != nil || json.Unmarshal(raw, &st) != nil || st.Name != "x" || st.Size != 3 {
		t.Errorf("path stat header %q: %v", w.Header().Get(pathStatHeader), err)
	}
	// Without the optional backends: 501.
	if w := do(fb.fakeBackend, "GET", "/volumes", ""); w.Code != http.StatusNotImplemented {
		t.Errorf("volumes without a backend: %d", w.Code)
	}
	// rm -v reaches the engine.
	if w := do(fb.fakeBackend, "DELETE", "/containers/web?v=1&force=1", ""); w.Code != http.StatusNoContent {
		t.Fatalf("rm -v: %d %s", w.Code, w.Body.String())
	}
	if got := fb.fakeBackend.removed; len(got) != 1 || !got[0].RemoveVolumes || !got[0].Force {
		t.Errorf("remove options %+v", got)
	}
}

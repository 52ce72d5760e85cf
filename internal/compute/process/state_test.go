package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestCheckID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"abc123", true},
		{"ABC", true},
		{"9", true},
		{"my-container_1.2+x", true},
		{"a..b", true}, // a plain name: no separator, not "." or ".."
		{"a.", true},
		{strings.Repeat("x", 255), true},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"/abs", false},
		{".hidden", false},
		{"-flag", false},
		{"_x", false},
		{"+x", false},
		{"a b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a:b", false},
		{"a\\b", false},
		{"ünïcode", false},
		{strings.Repeat("x", 256), false},
		{strings.Repeat("x", 100000), false},
	}
	for _, tt := range tests {
		name := tt.id
		if len(name) > 20 {
			name = name[:20] + "..."
		}
		err := checkID(tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("checkID(%q) (len %d) = %v, want ok=%v", name, len(tt.id), err, tt.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("checkID(%q) error %v does not wrap ErrInvalidArgument", name, err)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := writeFileAtomic(p, []byte(`{"id":"a"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != `{"id":"a"}` {
		t.Fatalf("read back %q, %v", got, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
	// Replace with shorter content and another mode: no torn tail.
	if err := writeFileAtomic(p, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(p)
	if string(got) != "{}" {
		t.Errorf("after overwrite read %q", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode after overwrite %o, want 644", fi.Mode().Perm())
	}
	// Empty and binary data.
	bin := []byte{0, 1, 2, 0xff, '\n'}
	if err := writeFileAtomic(p, bin, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, bin) {
		t.Errorf("binary data read back as %q", got)
	}
	if err := writeFileAtomic(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); len(got) != 0 {
		t.Errorf("empty data read back as %q", got)
	}
	// No temporary files left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "state.json" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only state.json", names)
	}
}

func TestWriteFileAtomicErrors(t *testing.T) {
	dir := t.TempDir()
	// Missing directory.
	p := filepath.Join(dir, "missing", "state.json")
	if err := writeFileAtomic(p, []byte("x"), 0o600); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("writeFileAtomic into a missing directory = %v, want an error naming %s", err, p)
	}
	// Target is a directory: rename fails and the temp file is removed.
	target := filepath.Join(dir, "isdir")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "child"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(target, []byte("x"), 0o600); err == nil {
		t.Error("writeFileAtomic over a non-empty directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestPidStartTime(t *testing.T) {
	self, err := pidStartTime(os.Getpid())
	if err != nil {
		t.Fatalf("pidStartTime(self): %v", err)
	}
	if self == 0 {
		t.Fatal("pidStartTime(self) = 0")
	}
	again, err := pidStartTime(os.Getpid())
	if err != nil || again != self {
		t.Errorf("pidStartTime(self) changed: %d then %d (%v)", self, again, err)
	}
	// pid_max is at most 2^22: this pid cannot exist.
	if st, err := pidStartTime(1 << 30); err == nil {
		t.Errorf("pidStartTime(1<<30) = %d, want an error", st)
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidStartTime(1<<30) = %v, want ErrNotExist", err)
	}
	if _, err := pidStartTime(-1); err == nil {
		t.Error("pidStartTime(-1) succeeded")
	}
	// init (or whatever is pid 1 here) started before us.
	if one, err := pidStartTime(1); err == nil && one > self {
		t.Errorf("pid 1 start %d after ours %d", one, self)
	}
}

// A child that exited but was not reaped (a zombie) counts as gone.
func TestPidStartTimeZombie(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start /bin/true: %v", err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Skip("child did not become a zombie in time")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := pidStartTime(pid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidStartTime(zombie) = %v, want ErrNotExist", err)
	}
	st := &containerState{Pid: pid}
	if st.initAlive() {
		t.Error("initAlive() for a zombie")
	}
}

func TestInitAlive(t *testing.T) {
	start, err := pidStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		st   containerState
		want bool
	}{
		{"self", containerState{Pid: os.Getpid(), PidStart: start}, true},
		{"recycled pid", containerState{Pid: os.Getpid(), PidStart: start + 1}, false},
		{"no pid", containerState{Pid: 0, PidStart: start}, false},
		{"negative pid", containerState{Pid: -1}, false},
		{"gone", containerState{Pid: 1 << 30, PidStart: 1}, false},
	}
	for _, tt := range tests {
		if got := tt.st.initAlive(); got != tt.want {
			t.Errorf("%s: initAlive() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLoadSaveState(t *testing.T) {
	b := New(t.TempDir())
	if _, err := b.loadState("nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("loadState(nosuch) = %v, want ErrNotFound", err)
	}
	if _, err := b.loadState("../x"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("loadState(../x) = %v, want ErrInvalidArgument", err)
	}
	st := &containerState{ID: "c1", Bundle: "/b", Pid: 42, PidStart: 7, Annotations: map[string]string{"k": "v"}}
	if err := os.MkdirAll(b.dir(st.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.saveState(st); err != nil {
		t.Fatal(err)
	}
	got, err := b.loadState("c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "c1" || got.Bundle != "/b" || got.Pid != 42 || got.PidStart != 7 || got.Annotations["k"] != "v" {
		t.Errorf("loaded %+v", got)
	}
	if err := os.WriteFile(filepath.Join(b.dir("c1"), stateFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := b.loadState("c1"); err == nil || errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("loadState of a corrupt file = %v", err)
	}
}

// TestStateSpec checks that the spec travels through state.json: kept as
// the caller's JSON when given, encoded from the struct otherwise, decoded
// on demand, and its hooks readable without decoding the rest.
func TestStateSpec(t *testing.T) {
	hooks := &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true", Args: []string{"true", "x"}}}}
	spec := &specs.Spec{Version: specs.Version, Hostname: "h", Hooks: hooks, Linux: &specs.Linux{CgroupsPath: "/c"}}
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		rawSpec json.RawMessage
	}{
		{"spec as given", append(append([]byte("\n "), raw...), '\n')},
		{"spec encoded", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(t.TempDir())
			st := &containerState{ID: "c", RawSpec: tt.rawSpec, spec: spec}
			if err := os.MkdirAll(b.dir("c"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := b.saveState(st); err != nil {
				t.Fatal(err)
			}
			got, err := b.loadState("c")
			if err != nil {
				t.Fatal(err)
			}
			if got.spec != nil {
				t.Fatal("loadState decoded the spec")
			}
			h, err := got.hooks()
			if err != nil || !reflect.DeepEqual(h, hooks) {
				t.Fatalf("hooks() = %+v, %v; want %+v", h, err, hooks)
			}
			if got.spec != nil {
				t.Fatal("hooks() decoded the whole spec")
			}
			s, err := got.specOf()
			if err != nil || !reflect.DeepEqual(s, spec) {
				t.Fatalf("specOf() = %+v, %v; want %+v", s, err, spec)
			}
		})
	}
}

func TestStateSpecBroken(t *testing.T) {
	st := &containerState{ID: "c", RawSpec: json.RawMessage(`{"hooks": 3}`)}
	if _, err := st.hooks(); err == nil {
		t.Error("hooks() of a spec whose hooks do not parse succeeded")
	}
	if _, err := st.specOf(); err == nil {
		t.Error("specOf() of a spec that does not parse succeeded")
	}
}

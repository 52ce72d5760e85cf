package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"http://127.0.0.1:5000/v2/", "127.0.0.1:5000"},
		{"https://Registry.Example.com", "registry.example.com"},
		{"localhost:5000/", "localhost:5000"},
		{"docker.io", hubKey},
		{"index.docker.io", hubKey},
		{"registry-1.docker.io", hubKey},
		{"https://index.docker.io/v1/", hubKey},
		{"", hubKey},
	} {
		if got := Key(tc.in); got != tc.want {
			t.Errorf("Key(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRegistryOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"busybox", hubKey},
		{"library/busybox:1", hubKey},
		{"docker.io/library/busybox@sha256:" + strings.Repeat("a", 64), hubKey},
		{"127.0.0.1:5000/a/b:1", "127.0.0.1:5000"},
		{"localhost:5000/a", "localhost:5000"},
		{"registry.example.com/team/app", "registry.example.com"},
	} {
		got, err := RegistryOf(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("RegistryOf(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := RegistryOf("UPPER/case"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("RegistryOf of a bad reference: %v", err)
	}
}

func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "config.json")
	f, err := Load(path)
	if err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if _, ok := f.Get("127.0.0.1:5000"); ok {
		t.Fatal("empty file has credentials")
	}
	f.Set("http://127.0.0.1:5000/", Credentials{Username: "u", Password: "p:with:colons"})
	f.Set("docker.io", Credentials{Username: "hub", Password: "secret"})
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("credential file mode %v, want 0600", st.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	var doc struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("saved file is not docker's format: %v\n%s", err, raw)
	}
	if doc.Auths["127.0.0.1:5000"].Auth != "dTpwOndpdGg6Y29sb25z" || doc.Auths[hubKey].Auth == "" {
		t.Errorf("saved auths: %s", raw)
	}

	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		reg  string
		want Credentials
		ok   bool
	}{
		{"127.0.0.1:5000", Credentials{"u", "p:with:colons"}, true},
		{"https://127.0.0.1:5000/v2/", Credentials{"u", "p:with:colons"}, true},
		{"index.docker.io", Credentials{"hub", "secret"}, true},
		{"127.0.0.1:5001", Credentials{}, false},
	} {
		c, ok := g.Get(tc.reg)
		if ok != tc.ok || c != tc.want {
			t.Errorf("Get(%q) = %+v, %v; want %+v, %v", tc.reg, c, ok, tc.want, tc.ok)
		}
	}
	if !g.Delete("127.0.0.1:5000") || g.Delete("127.0.0.1:5000") {
		t.Error("Delete does not report what it removed")
	}
	if err := g.Save(); err != nil {
		t.Fatal(err)
	}
	h, _ := Load(path)
	if _, ok := h.Get("127.0.0.1:5000"); ok {
		t.Error("deleted credentials came back")
	}
	if _, ok := h.Get("docker.io"); !ok {
		t.Error("other credentials lost")
	}
}

// A file written by other tools keeps the keys silo does not know.
func TestFileKeepsUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	in := `{"auths":{"https://127.0.0.1:5000":{"auth":"YTpi","identitytoken":"tok"}},"psFormat":"table {{.ID}}"}`
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := f.Get("127.0.0.1:5000"); !ok || c != (Credentials{"a", "b"}) {
		t.Fatalf("Get = %+v, %v", c, ok)
	}
	f.Set("10.0.0.1:5000", Credentials{"x", "y"})
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(path)
	for _, want := range []string{`"psFormat"`, `"identitytoken": "tok"`, `"10.0.0.1:5000"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("saved file lacks %s:\n%s", want, out)
		}
	}
}

func TestLoadBad(t *testing.T) {
	for name, body := range map[string]string{
		"not json":        "{",
		"auths not a map": `{"auths":[1]}`,
		"auth not string": `{"auths":{"h":{"auth":1}}}`,
	} {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: Load = %v, want invalid argument", name, err)
		}
	}
	path := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv(ConfigEnv, "/x/y")
	if p, err := DefaultPath(); err != nil || p != "/x/y/config.json" {
		t.Errorf("with %s: %q, %v", ConfigEnv, p, err)
	}
	t.Setenv(ConfigEnv, "")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	if p, err := DefaultPath(); err != nil || p != "/cfg/silo/config.json" {
		t.Errorf("with XDG_CONFIG_HOME: %q, %v", p, err)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/u")
	if p, err := DefaultPath(); err != nil || p != "/home/u/.config/silo/config.json" {
		t.Errorf("from HOME: %q, %v", p, err)
	}
}

// basicRegistry answers /v2/ with 200 for user:pass and 401 with a basic
// challenge otherwise, as docker-registry with htpasswd does.
func basicRegistry() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "user" && p == "pass" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
}

// bearerRegistry sends clients to its token endpoint, which hands a token
// for user:pass only.
func bearerRegistry() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "pass" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`)
			return
		}
		fmt.Fprint(w, `{"token":"good-token"}`)
	})
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer good-token" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, r.Host))
		w.WriteHeader(http.StatusUnauthorized)
	})
	return mux
}

func TestCheck(t *testing.T) {
	open := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	for _, tc := range []struct {
		name    string
		h       http.Handler
		c       Credentials
		wantErr error // nil: success; errdefs class otherwise
		other   bool  // an error of no class
	}{
		{"basic good", basicRegistry(), Credentials{"user", "pass"}, nil, false},
		{"basic wrong password", basicRegistry(), Credentials{"user", "nope"}, errdefs.ErrForbidden, false},
		{"basic unknown user", basicRegistry(), Credentials{"who", "pass"}, errdefs.ErrForbidden, false},
		{"bearer good", bearerRegistry(), Credentials{"user", "pass"}, nil, false},
		{"bearer wrong password", bearerRegistry(), Credentials{"user", "nope"}, errdefs.ErrForbidden, false},
		{"no auth needed", open, Credentials{"user", "pass"}, nil, false},
		{"empty password", basicRegistry(), Credentials{"user", ""}, errdefs.ErrInvalidArgument, false},
		{"server error", broken, Credentials{"user", "pass"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			err := Check(context.Background(), host, tc.c, srv.Client().Transport)
			switch {
			case tc.other:
				if err == nil || errors.Is(err, errdefs.ErrForbidden) || errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("Check = %v, want an unclassified error", err)
				}
			case tc.wantErr == nil && err != nil:
				t.Errorf("Check = %v, want success", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("Check = %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), host) {
				t.Errorf("error does not name the registry: %v", err)
			}
		})
	}
}

func TestCheckUnreachable(t *testing.T) {
	srv := httptest.NewServer(basicRegistry())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	err := Check(context.Background(), host, Credentials{"user", "pass"}, nil)
	if err == nil || errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("Check of a closed port = %v", err)
	}
}

package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/silo-containers/silo/internal/errdefs"
)

// ConfigEnv names the environment variable that overrides the directory
// of the credential file (docker's DOCKER_CONFIG).
const ConfigEnv = "SILO_CONFIG"

// hubKey is the key docker uses for Docker Hub in config.json.
const hubKey = "https://index.docker.io/v1/"

// Credentials are a username and password for one registry.
type Credentials struct {
	Username, Password string
}

// File is a credential file read into memory; Save writes it back.
type File struct {
	path string
	// raw keeps every top-level key, so that a file shared with other
	// tools keeps what silo does not know.
	raw   map[string]json.RawMessage
	auths map[string]entry
}

// entry is one registry's record, as docker writes it: "auth" is
// base64("user:password").
type entry struct {
	Auth string `json:"auth,omitempty"`
	// Other fields of the record (identitytoken…) are kept as read.
	Extra map[string]json.RawMessage `json:"-"`
}

// DefaultPath is $SILO_CONFIG/config.json when set, else
// config.json in silo's directory of the user's configuration
// (~/.config/silo, or $XDG_CONFIG_HOME/silo).
func DefaultPath() (string, error) {
	if d := os.Getenv(ConfigEnv); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("locate credential file: %w", err)
	}
	return filepath.Join(d, "silo", "config.json"), nil
}

// LoadDefault loads the credential file at DefaultPath.
func LoadDefault() (*File, error) {
	path, err := DefaultPath()
	if err != nil {
		return nil, err
	}
	return Load(path)
}

// Load reads the credential file at path; a missing file is an empty one.
func Load(path string) (*File, error) {
	f := &File{path: path, raw: map[string]json.RawMessage{}, auths: map[string]entry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read credential file %s: %w", path, err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f.raw); err != nil {
		return nil, fmt.Errorf("read credential file %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	if a, ok := f.raw["auths"]; ok {
		var recs map[string]map[string]json.RawMessage
		if err := json.Unmarshal(a, &recs); err != nil {
			return nil, fmt.Errorf("read credential file %s: auths: %v: %w", path, err, errdefs.ErrInvalidArgument)
		}
		for k, rec := range recs {
			e := entry{Extra: map[string]json.RawMessage{}}
			for field, v := range rec {
				if field == "auth" {
					if err := json.Unmarshal(v, &e.Auth); err != nil {
						return nil, fmt.Errorf("read credential file %s: auths[%q]: %v: %w", path, k, err, errdefs.ErrInvalidArgument)
					}
					continue
				}
				e.Extra[field] = v
			}
			f.auths[k] = e
		}
	}
	return f, nil
}

// Path is where the file is read from and saved to.
func (f *File) Path() string { return f.path }

// Get returns the credentials kept for registry (a host, a URL or docker's
// Hub key: see Key).
func (f *File) Get(registry string) (Credentials, bool) {
	want := Key(registry)
	for k, e := range f.auths {
		if Key(k) != want || e.Auth == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			continue
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			continue
		}
		return Credentials{Username: user, Password: pass}, true
	}
	return Credentials{}, false
}

// Set keeps c for registry, replacing what was kept for it.
func (f *File) Set(registry string, c Credentials) {
	f.Delete(registry)
	auth := base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
	f.auths[Key(registry)] = entry{Auth: auth}
}

// Delete forgets the credentials of registry and reports whether there
// were any.
func (f *File) Delete(registry string) bool {
	want, found := Key(registry), false
	for k := range f.auths {
		if Key(k) == want {
			delete(f.auths, k)
			found = true
		}
	}
	return found
}

// Save writes the file atomically (temporary file, fsync, rename),
// readable by its owner only: it holds passwords.
func (f *File) Save() error {
	auths := map[string]map[string]any{}
	for k, e := range f.auths {
		rec := map[string]any{}
		for field, v := range e.Extra {
			rec[field] = v
		}
		if e.Auth != "" {
			rec["auth"] = e.Auth
		}
		auths[k] = rec
	}
	a, err := json.Marshal(auths)
	if err != nil {
		return fmt.Errorf("save credential file %s: %w", f.path, err)
	}
	f.raw["auths"] = a
	b, err := json.MarshalIndent(f.raw, "", "\t")
	if err != nil {
		return fmt.Errorf("save credential file %s: %w", f.path, err)
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("save credential file %s: %w", f.path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("save credential file %s: %w", f.path, err)
	}
	defer os.Remove(tmp.Name()) // fails once renamed
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// CreateTemp makes the file 0600 already; a umask cannot widen it.
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		return fmt.Errorf("save credential file %s: %w", f.path, err)
	}
	return nil
}

// Key is the form under which a registry's credentials are kept: its
// host[:port] without scheme or path ("https://127.0.0.1:5000/v2/" →
// "127.0.0.1:5000"), and docker's key for Docker Hub under any of its
// names.
func Key(server string) string {
	s := strings.TrimSpace(server)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	s = strings.ToLower(s)
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return hubKey
	}
	return s
}

// RegistryOf returns the registry host of an image reference, as Key
// names it ("busybox" → Docker Hub, "127.0.0.1:5000/a/b:1" →
// "127.0.0.1:5000").
func RegistryOf(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return Key(r.Context().RegistryStr()), nil
}

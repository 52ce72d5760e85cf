//go:build integration

package storage

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-containers/silo/internal/storage/auth"
	"github.com/silo-containers/silo/test/harness"
)

// TestBasicAuth: against docker-registry with htpasswd auth, push and
// pull without credentials fail with a clear error; `silo login`
// refuses a wrong password, keeps the right one in the credential file,
// and pull and push then work; `silo logout` forgets it.
func TestBasicAuth(t *testing.T) {
	const user, password = "silo", "s3cret pass"
	addr := startAuthRegistry(t, user, password)
	cfgDir := t.TempDir()
	t.Setenv(auth.ConfigEnv, cfgDir) // every silo the test runs reads it
	d := harness.NewDaemon(t, cgroupParent)
	d.Must("image", "build-busybox")
	ref := addr + "/test/auth:1"
	d.Must("tag", "busybox", ref)

	// Without credentials.
	_, errOut, code := d.Silo("push", ref)
	if code == 0 {
		t.Fatal("push without credentials succeeded")
	}
	t.Logf("push without credentials: %s", strings.TrimSpace(errOut))
	checkAuthError(t, "push", errOut, addr)

	// A wrong password is refused by login itself and not kept.
	_, errOut, code = siloIn(t, d, "wrong\n", "login", "-u", user, "--password-stdin", addr)
	if code == 0 {
		t.Fatal("login with a wrong password succeeded")
	}
	if !strings.Contains(errOut, "incorrect username or password") || !strings.Contains(errOut, addr) {
		t.Errorf("login with a wrong password: %q", errOut)
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "config.json")); !os.IsNotExist(err) {
		t.Errorf("a failed login wrote the credential file: %v", err)
	}

	out, errOut, code := siloIn(t, d, password+"\n", "login", "--username", user, "--password-stdin", addr)
	if code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: exit %d: %s%s", code, out, errOut)
	}
	st, err := os.Stat(filepath.Join(cfgDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("credential file mode %v, want 0600", st.Mode().Perm())
	}
	raw, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if want := base64.StdEncoding.EncodeToString([]byte(user + ":" + password)); !strings.Contains(string(raw), want) {
		t.Errorf("credential file lacks %s's credentials:\n%s", addr, raw)
	}

	d.Must("push", ref)
	d.Must("image", "rm", ref)
	d.Must("image", "rm", "busybox")

	// Logged out: the pull is refused.
	if out := d.Must("logout", addr); !strings.Contains(out, "Removing login credentials for "+addr) {
		t.Errorf("logout: %q", out)
	}
	_, errOut, code = d.Silo("pull", ref)
	if code == 0 {
		t.Fatal("pull without credentials succeeded")
	}
	t.Logf("pull without credentials: %s", strings.TrimSpace(errOut))
	checkAuthError(t, "pull", errOut, addr)
	if out := d.Must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("a refused pull left images: %q", out)
	}

	// Logged in: it works. The username and password are read from a
	// pipe this time (the prompts' path when stdin is no terminal), then
	// given with -p.
	if out, errOut, code := siloIn(t, d, user+"\n"+password+"\n", "login", addr); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login with prompts: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := siloIn(t, d, "", "login", "-u", user, "-p", password, addr); code != 0 {
		t.Fatalf("login -p: exit %d: %s%s", code, out, errOut)
	}
	d.Must("pull", ref)
	if out := d.Must("run", "--rm", ref, "echo", "pulled with auth"); out != "pulled with auth\n" {
		t.Errorf("run of the pulled image: %q", out)
	}

	// The docker CLI: `docker login` (POST /auth: silod checks the
	// credentials with the registry, the CLI stores them), then its pull
	// sends them (X-Registry-Auth).
	if !harness.HaveDocker() {
		return
	}
	d.Must("image", "rm", ref)
	if out, errOut, code := d.Run(harness.DockerCLI, []string{"pull", ref}, d.DockerEnv()); code == 0 {
		t.Errorf("docker pull without credentials succeeded: %s%s", out, errOut)
	}
	if out, errOut, code := d.Run(harness.DockerCLI, []string{"login", "-u", user, "-p", "wrong", addr}, d.DockerEnv()); code == 0 {
		t.Errorf("docker login with a wrong password succeeded: %s%s", out, errOut)
	}
	if out := d.DockerOK(t, "login", "-u", user, "-p", password, addr); !strings.Contains(out, "Login Succeeded") {
		t.Errorf("docker login: %q", out)
	}
	cfg, err := os.ReadFile(filepath.Join(d.Root, "docker-config", "config.json")) // DockerEnv's DOCKER_CONFIG
	if want := base64.StdEncoding.EncodeToString([]byte(user + ":" + password)); err != nil || !strings.Contains(string(cfg), want) {
		t.Errorf("docker's config after login: %s, %v", cfg, err)
	}
	d.DockerOK(t, "pull", ref)
	if out := d.Must("run", "--rm", ref, "echo", "docker pulled"); out != "docker pulled\n" {
		t.Errorf("run of the image docker pulled: %q", out)
	}
}

// checkAuthError wants the error of a refused pull or push to say that
// the registry wants credentials and how to give them.
func checkAuthError(t *testing.T, op, errOut, addr string) {
	t.Helper()
	for _, want := range []string{addr, "authentication required", "silo login " + addr} {
		if !strings.Contains(errOut, want) {
			t.Errorf("%s without credentials: error lacks %q: %q", op, want, errOut)
		}
	}
}

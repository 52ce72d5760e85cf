package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

// Pull and push carry the credentials as X-Registry-Auth, and none when
// there are none.
func TestImagePullPushAuth(t *testing.T) {
	got := map[string]string{}
	c := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, present := r.Header["X-Registry-Auth"]
		v := r.Header.Get("X-Registry-Auth")
		if !present {
			v = "<none>"
		}
		got[r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery] = v
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	}))
	enc, err := EncodeAuth("user", "p:ss", "127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.URLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("X-Registry-Auth is not base64url: %v", err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		t.Fatal(err)
	}
	if ac.Username != "user" || ac.Password != "p:ss" || ac.ServerAddress != "127.0.0.1:5000" {
		t.Fatalf("decoded auth: %+v", ac)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		call func() (io.ReadCloser, error)
		key  string
		want string
	}{
		{func() (io.ReadCloser, error) { return c.ImagePull(ctx, "a/b:1", enc) }, "POST /images/create?fromImage=a%2Fb%3A1", enc},
		{func() (io.ReadCloser, error) { return c.ImagePull(ctx, "a/c:1", "") }, "POST /images/create?fromImage=a%2Fc%3A1", "<none>"},
		{func() (io.ReadCloser, error) { return c.ImagePush(ctx, "a/b:1", enc) }, "POST /images/a/b:1/push?", enc},
		{func() (io.ReadCloser, error) { return c.ImagePush(ctx, "a/c:1", "") }, "POST /images/a/c:1/push?", "<none>"},
	} {
		body, err := tc.call()
		if err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		if err := ReadProgress(body, func(ProgressMessage) {}); err != nil {
			t.Fatal(err)
		}
		body.Close()
		if got[tc.key] != tc.want {
			t.Errorf("%s sent X-Registry-Auth %q, want %q (all: %v)", tc.key, got[tc.key], tc.want, got)
		}
	}
}

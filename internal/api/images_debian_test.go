package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/api/client"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/baseimage"
)

// debianBackend records the options of BuildDebian and plays a build:
// suite "bad" fails before any output, "late" after some, "block" waits
// for its context to end.
type debianBackend struct {
	*fakeBackend
	mu       sync.Mutex
	got      baseimage.DebianOptions
	canceled chan struct{}
}

func (d *debianBackend) BuildDebian(ctx context.Context, o baseimage.DebianOptions) (string, error) {
	d.mu.Lock()
	d.got = o
	d.mu.Unlock()
	switch o.Suite {
	case "bad":
		return "", fmt.Errorf("suite %q: %w", o.Suite, errdefs.ErrInvalidArgument)
	case "late":
		fmt.Fprintln(o.Progress, "I: Retrieving InRelease")
		return "", errors.New("debootstrap: exit status 1: Couldn't find these debs: nope")
	case "block":
		fmt.Fprintln(o.Progress, "I: Retrieving InRelease")
		<-ctx.Done()
		close(d.canceled)
		return "", ctx.Err()
	}
	fmt.Fprintln(o.Progress, "I: Retrieving InRelease")
	fmt.Fprintln(o.Progress, "I: Base system installed successfully.")
	return "sha256:deb", nil
}

func (d *debianBackend) options() baseimage.DebianOptions {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.got
}

func TestImageDebian(t *testing.T) {
	b := &debianBackend{fakeBackend: &fakeBackend{}, canceled: make(chan struct{})}
	srv := httptest.NewServer(New(b, Options{Version: "test"}))
	defer srv.Close()
	c, err := client.New("tcp://" + strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	read := func(o client.DebianOptions) (string, error) {
		body, err := c.BuildDebian(ctx, o)
		if err != nil {
			return "", err
		}
		defer body.Close()
		var out strings.Builder
		err = client.ReadProgress(body, func(m client.ProgressMessage) { out.WriteString(m.Stream) })
		return out.String(), err
	}

	tests := []struct {
		name    string
		in      client.DebianOptions
		want    baseimage.DebianOptions
		out     string
		status  int
		errText string
	}{
		{name: "defaults", want: baseimage.DebianOptions{Suite: "bookworm", Ref: "debian:bookworm"},
			out: "I: Retrieving InRelease\nI: Base system installed successfully.\nLoaded image: debian:bookworm\n"},
		{name: "everything", in: client.DebianOptions{Suite: "trixie", Include: []string{"gcc", "libc6-dev"}, Mirror: "http://m/debian", Ref: "deb:gcc"},
			want: baseimage.DebianOptions{Suite: "trixie", Include: []string{"gcc", "libc6-dev"}, Mirror: "http://m/debian", Ref: "deb:gcc"},
			out:  "I: Retrieving InRelease\nI: Base system installed successfully.\nLoaded image: deb:gcc\n"},
		{name: "error before output is an HTTP error", in: client.DebianOptions{Suite: "bad"}, status: http.StatusBadRequest, errText: "suite \"bad\""},
		{name: "error after output is an error line", in: client.DebianOptions{Suite: "late"}, out: "I: Retrieving InRelease\n", errText: "Couldn't find these debs: nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := read(tt.in)
			if out != tt.out {
				t.Errorf("output %q, want %q", out, tt.out)
			}
			if tt.errText == "" {
				if err != nil {
					t.Fatal(err)
				}
				got := b.options()
				if got.Suite != tt.want.Suite || got.Ref != tt.want.Ref || got.Mirror != tt.want.Mirror ||
					strings.Join(got.Include, ",") != strings.Join(tt.want.Include, ",") || got.TmpDir != "" || got.Debootstrap != "" {
					t.Errorf("backend got %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("err %v, want %q", err, tt.errText)
			}
			var ce *client.Error
			if tt.status != 0 && (!errors.As(err, &ce) || ce.Status != tt.status) {
				t.Errorf("err %#v, want status %d", err, tt.status)
			}
		})
	}

	// A client that goes away ends the build's context.
	body, err := c.BuildDebian(ctx, client.DebianOptions{Suite: "block"})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := bufio.NewReader(body).ReadString('\n'); err != nil || !strings.Contains(l, "Retrieving") {
		t.Fatalf("first line %q %v", l, err)
	}
	body.Close()
	select {
	case <-b.canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the build's context did not end when the client went away")
	}

	// A backend without the builder answers 501.
	w := serve(t, &fakeBackend{}, "POST", "/silo/images/debian", "")
	if w.Code != http.StatusNotImplemented {
		t.Errorf("no builder: %d %s", w.Code, w.Body)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

func TestWritePs(t *testing.T) {
	list := []container.Summary{{
		ID: strings.Repeat("ab", 32), Names: []string{"/web"}, Image: "busybox", Command: "sleep 10000000000000000",
		Created: time.Now().Add(-time.Hour).Unix(), State: container.StateRunning, Status: "Up 1 hour",
		Labels: map[string]string{"tier": "web", "a": "b"}, SizeRw: 4096, SizeRootFs: 2 << 20,
	}}
	for _, tc := range []struct {
		format string
		want   string
	}{
		{`{{.Names}} {{.Status}} {{.Label "tier"}}`, "web Up 1 hour web\n"},
		{`{{.ID}}\t{{.Labels}}`, "abababababab\ta=b,tier=web\n"},
		{`{{.Command}} {{.State}} {{.Size}}`, `"sleep 1000000000000…" running 4.1kB (virtual 2.1MB)` + "\n"},
		{`table {{.ID}}\t{{.Names}}`, "CONTAINER ID   NAMES\nabababababab   web\n"},
		{`table {{.State}}\t{{.Label "tier"}}`, "STATE     LABEL\nrunning   web\n"},
	} {
		var buf bytes.Buffer
		if err := writePs(&buf, list, tc.format, false); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if buf.String() != tc.want {
			t.Errorf("%q:\n%q\nwant\n%q", tc.format, buf.String(), tc.want)
		}
	}
	var buf bytes.Buffer
	if err := writePs(&buf, list, "json", true); err != nil {
		t.Fatal(err)
	}
	var obj map[string]string
	if err := json.Unmarshal(buf.Bytes(), &obj); err != nil || obj["ID"] != list[0].ID || obj["Names"] != "web" || obj["State"] != "running" {
		t.Fatalf("json: %s %v", buf.String(), err)
	}
	if err := writePs(&buf, list, "{{.Nope", false); err == nil {
		t.Fatal("a broken template was accepted")
	}
}

func TestWriteImages(t *testing.T) {
	list := []image.Summary{
		{ID: "sha256:" + strings.Repeat("c", 64), RepoTags: []string{"docker.io/library/busybox:latest", "127.0.0.1:5000/app:2"}, Size: 2 << 20, Created: time.Now().Add(-2 * time.Hour).Unix()},
		{ID: "sha256:" + strings.Repeat("d", 64)},
	}
	for _, tc := range []struct {
		images int // how many of list
		format string
		want   string
	}{
		{2, `{{.Repository}}:{{.Tag}} {{.ID}}`, "busybox:latest cccccccccccc\n127.0.0.1:5000/app:2 cccccccccccc\n<none>:<none> dddddddddddd\n"},
		{2, `table {{.Repository}}\t{{.Size}}`, "REPOSITORY           SIZE\nbusybox              2.1MB\n127.0.0.1:5000/app   2.1MB\n<none>               0B\n"},
		{1, `{{.CreatedSince}}`, "2 hours ago\n2 hours ago\n"},
	} {
		var buf bytes.Buffer
		if err := writeImages(&buf, list[:tc.images], tc.format, false); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if buf.String() != tc.want {
			t.Errorf("%q:\n%q\nwant\n%q", tc.format, buf.String(), tc.want)
		}
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/silo-containers/silo/internal/api/client"
)

func msg(id, status string, cur, total int64) client.ProgressMessage {
	m := client.ProgressMessage{Message: jsonstream.Message{ID: id, Status: status}}
	if total > 0 {
		m.Progress = &jsonstream.Progress{Current: cur, Total: total}
	}
	return m
}

func TestProgressDisplay(t *testing.T) {
	stream := []client.ProgressMessage{
		msg("1", "Pulling from test/busybox", 0, 0),
		msg("aaa", "Downloading", 1, 2048),
		msg("bbb", "Downloading", 1, 2048),
		msg("aaa", "Pull complete", 0, 0),
		msg("", "Status: Downloaded newer image for x:1", 0, 0),
	}
	var plain bytes.Buffer
	d := &progressDisplay{out: &plain, lines: map[string]string{}}
	for _, m := range stream {
		d.show(m)
	}
	if want := "1: Pulling from test/busybox\naaa: Pull complete\nStatus: Downloaded newer image for x:1\n"; plain.String() != want {
		t.Fatalf("plain: %q", plain.String())
	}
	var tty bytes.Buffer
	d = &progressDisplay{out: &tty, tty: true, lines: map[string]string{}}
	for _, m := range stream {
		d.show(m)
	}
	// aaa's line is two lines up when it completes (bbb came after it).
	if !strings.Contains(tty.String(), "\x1b[2A\r\x1b[2Kaaa: Pull complete\r\x1b[2B") || !strings.Contains(tty.String(), "bbb: Downloading 1B/2.05kB\n") {
		t.Fatalf("tty: %q", tty.String())
	}
}

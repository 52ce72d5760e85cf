package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/silo-containers/silo/internal/storage/auth"
)

func TestReadPasswordStdin(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"secret\n", "secret", true},
		{"secret\r\n", "secret", true},
		{"secret", "secret", true},
		{"with space \n", "with space ", true},
		{"\n", "", false},
		{"", "", false},
	} {
		got, err := readPasswordStdin(bufio.NewReader(strings.NewReader(tc.in)))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("readPasswordStdin(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestRegistryAuth(t *testing.T) {
	t.Setenv(auth.ConfigEnv, t.TempDir())
	path, err := auth.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	f, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Set("127.0.0.1:5000", auth.Credentials{Username: "u", Password: "p"})
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref, user string
		ok        bool
	}{
		{"127.0.0.1:5000/a/b:1", "u", true},
		{"127.0.0.1:5000/a@sha256:" + strings.Repeat("0", 64), "u", true},
		{"127.0.0.1:5001/a/b:1", "", true},
		{"busybox", "", true},
		{"Bad//ref", "", false},
	} {
		enc, err := registryAuth(tc.ref)
		if (err == nil) != tc.ok {
			t.Errorf("registryAuth(%q): %v", tc.ref, err)
			continue
		}
		if tc.user == "" {
			if enc != "" {
				t.Errorf("registryAuth(%q) = %q, want none", tc.ref, enc)
			}
			continue
		}
		raw, _ := base64.URLEncoding.DecodeString(enc)
		var ac struct{ Username, Password, ServerAddress string }
		if err := json.Unmarshal(raw, &ac); err != nil || ac.Username != tc.user || ac.Password != "p" || ac.ServerAddress != "127.0.0.1:5000" {
			t.Errorf("registryAuth(%q) decodes to %+v, %v", tc.ref, ac, err)
		}
	}
}

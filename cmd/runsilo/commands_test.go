package main

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in     string
		want   unix.Signal
		errHas string
	}{
		{in: "KILL", want: unix.SIGKILL},
		{in: "SIGKILL", want: unix.SIGKILL},
		{in: "9", want: unix.SIGKILL},
		{in: "sigterm", want: unix.SIGTERM},
		{in: "term", want: unix.SIGTERM},
		{in: "SigHup", want: unix.SIGHUP},
		{in: "USR1", want: unix.SIGUSR1},
		{in: "SIGWINCH", want: unix.SIGWINCH},
		{in: "1", want: unix.SIGHUP},
		{in: "15", want: unix.SIGTERM},
		{in: "34", want: unix.Signal(34)}, // real-time signals by number
		{in: "64", want: unix.Signal(64)},
		{in: "0", errHas: "out of range"},
		{in: "-9", errHas: "out of range"},
		{in: "65", errHas: "out of range"},
		{in: "FOO", errHas: "unknown signal"},
		{in: "SIGFOO", errHas: "unknown signal"},
		{in: "", errHas: "unknown signal"},
		{in: "SIG", errHas: "unknown signal"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSignal(tt.in)
			if tt.errHas != "" {
				if err == nil {
					t.Fatalf("parseSignal(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), tt.in) {
					t.Errorf("parseSignal(%q) error %q, want it to mention %q and the input", tt.in, err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSignal(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("parseSignal(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

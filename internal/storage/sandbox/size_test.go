package sandbox

import (
	"errors"
	"testing"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "1G", want: 1 << 30},
		{in: "1g", want: 1 << 30},
		{in: "20GB", want: 20 << 30},
		{in: "20gb", want: 20 << 30},
		{in: "20GiB", want: 20 << 30},
		{in: "20 G", want: 20 << 30},
		{in: "512m", want: 512 << 20},
		{in: "512M", want: 512 << 20},
		{in: "64k", want: 64 << 10},
		{in: "2t", want: 2 << 40},
		{in: "1p", want: 1 << 50},
		{in: "1.5g", want: 3 << 29},
		{in: "0.5k", want: 512},
		{in: "1048576", want: 1 << 20},
		{in: "100b", want: 100},
		{in: " 1G ", want: 1 << 30},
		{in: "0", want: 0},
		{in: "", bad: true},
		{in: "G", bad: true},
		{in: "-1G", bad: true},
		{in: "1X", bad: true},
		{in: "1GG", bad: true},
		{in: "1 GB extra", bad: true},
		{in: "1..5G", bad: true},
		{in: "8192P", bad: true},
		{in: "99999999999999999999", bad: true},
		{in: "1e9", bad: true},
	} {
		got, err := ParseSize(tc.in)
		if tc.bad {
			if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParseSize(%q) = %d, %v; want an invalid-argument error", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1G", "512m", "20GB", "1.5 GiB", "0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

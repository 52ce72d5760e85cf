package cgroups

import "testing"

func TestValidPageSize(t *testing.T) {
	for s, want := range map[string]bool{
		"2MB": true, "1GB": true, "64KB": true, "16TB": true, "1PB": true,
		"": false, "MB": false, "2M": false, "2mb": false, "2XB": false, "x2MB": false,
		"../MB": false, "2MB/": false, "2 MB": false,
	} {
		if got := validPageSize(s); got != want {
			t.Errorf("validPageSize(%q) = %v, want %v", s, got, want)
		}
	}
}

package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestFilterImages(t *testing.T) {
	list := []image.Summary{
		{ID: "sha256:aaaa1111", Created: 100, RepoTags: []string{"docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"}, Labels: map[string]string{"tier": "base"}},
		{ID: "sha256:bbbb2222", Created: 200, RepoTags: []string{"127.0.0.1:5000/test/app:2"}, Labels: map[string]string{"tier": "app", "x": ""}},
		{ID: "sha256:cccc3333", Created: 300, RepoTags: []string{}},
	}
	for _, tc := range []struct {
		name string
		f    Filters
		want string
		err  error
	}{
		{"none", Filters{}, "aaaa bbbb cccc", nil},
		{"dangling", Filters{"dangling": {"true"}}, "cccc", nil},
		{"not dangling", Filters{"dangling": {"false"}}, "aaaa bbbb", nil},
		{"reference name", Filters{"reference": {"busybox"}}, "aaaa", nil},
		{"reference tag glob", Filters{"reference": {"busybox:1.*"}}, "aaaa", nil},
		{"reference with a registry port", Filters{"reference": {"127.0.0.1:5000/test/*"}}, "bbbb", nil},
		{"reference alternatives", Filters{"reference": {"nothing", "busybox:latest"}}, "aaaa", nil},
		{"reference in full", Filters{"reference": {"docker.io/library/busybox"}}, "aaaa", nil},
		{"label key", Filters{"label": {"x"}}, "bbbb", nil},
		{"label value", Filters{"label": {"tier=base"}}, "aaaa", nil},
		{"labels and", Filters{"label": {"tier=app", "x"}}, "bbbb", nil},
		{"before", Filters{"before": {"busybox"}}, "", nil},
		{"since", Filters{"since": {"busybox:1.36"}}, "bbbb cccc", nil},
		{"before by id", Filters{"before": {"cccc3333"}}, "aaaa bbbb", nil},
		{"keys and", Filters{"dangling": {"false"}, "since": {"aaaa"}}, "bbbb", nil},
		{"bad dangling", Filters{"dangling": {"maybe"}}, "", errdefs.ErrInvalidArgument},
		{"bad pattern", Filters{"reference": {"[x"}}, "", errdefs.ErrInvalidArgument},
		{"unknown image", Filters{"since": {"nosuch"}}, "", errdefs.ErrNotFound},
		{"unknown key", Filters{"color": {"red"}}, "", errdefs.ErrInvalidArgument},
	} {
		got, err := FilterImages(list, tc.f)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.name == "reference tag glob" && (len(got) != 1 || len(got[0].RepoTags) != 1 || got[0].RepoTags[0] != "docker.io/library/busybox:1.36") {
			t.Errorf("%s: names %v, want only the matching one", tc.name, got)
		}
		var ids []string
		for _, i := range got {
			ids = append(ids, strings.TrimPrefix(i.ID, "sha256:")[:4])
		}
		if strings.Join(ids, " ") != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, strings.Join(ids, " "), tc.want)
		}
	}
}

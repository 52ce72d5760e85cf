package engine

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/moby/api/types/image"

	"github.com/silo-containers/silo/internal/errdefs"
)

// FilterImages keeps the images of list that pass docker's image list
// filters (`docker images --filter`, and `docker images NAME`, which
// sends a reference filter):
//
//	dangling=true|false   without / with a name
//	reference=PATTERN     a name ("busybox") or name:tag ("busy*:1.*") glob
//	label=KEY[=VALUE]     an image label
//	before=IMAGE, since=IMAGE   created before / after that image
//
// Values of one key are alternatives; keys must all hold. With a
// reference filter an image lists only its matching names.
func FilterImages(list []image.Summary, f Filters) ([]image.Summary, error) {
	var preds []func(image.Summary) bool
	var patterns []string // reference filter
	for key, vals := range f {
		if len(vals) == 0 {
			continue
		}
		switch key {
		case "dangling":
			want := map[string]bool{}
			for _, v := range vals {
				if v != "true" && v != "false" && v != "1" && v != "0" {
					return nil, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
				}
				want[v] = true
			}
			preds = append(preds, func(i image.Summary) bool {
				if len(i.RepoTags) == 0 {
					return want["true"] || want["1"]
				}
				return want["false"] || want["0"]
			})
		case "reference":
			for _, v := range vals {
				if _, err := path.Match(v, ""); err != nil {
					return nil, fmt.Errorf("invalid filter 'reference=%s': %v: %w", v, err, errdefs.ErrInvalidArgument)
				}
			}
			patterns = vals
		case "label":
			preds = append(preds, func(i image.Summary) bool { return labelsMatch(i.Labels, vals) })
		case "before", "since":
			var limits []int64
			for _, v := range vals {
				created, ok := imageCreated(list, v)
				if !ok {
					return nil, fmt.Errorf("invalid filter '%s=%s': no such image: %w", key, v, errdefs.ErrNotFound)
				}
				limits = append(limits, created)
			}
			before := key == "before"
			preds = append(preds, func(i image.Summary) bool {
				for _, l := range limits {
					if (before && i.Created < l) || (!before && i.Created > l) {
						return true
					}
				}
				return false
			})
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", key, errdefs.ErrInvalidArgument)
		}
	}
	out := []image.Summary{}
	for _, i := range list {
		keep := true
		for _, p := range preds {
			if !p(i) {
				keep = false
				break
			}
		}
		if keep && patterns != nil {
			// As dockerd: only the names that match are listed, and an
			// image without one is left out.
			i.RepoTags = matchingRefs(i.RepoTags, patterns)
			i.RepoDigests = matchingRefs(i.RepoDigests, patterns)
			keep = len(i.RepoTags)+len(i.RepoDigests) > 0
		}
		if keep {
			out = append(out, i)
		}
	}
	return out, nil
}

// matchingRefs are the refs that a pattern matches (referenceMatch; a
// name@digest is matched by its name).
func matchingRefs(refs, patterns []string) []string {
	out := []string{}
	for _, r := range refs {
		nameTag, _, _ := strings.Cut(r, "@")
		for _, p := range patterns {
			if referenceMatch(p, nameTag) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// referenceMatch matches a reference filter against an image's
// name:tag, in its full ("docker.io/library/busybox:latest") and its
// familiar form ("busybox:latest"), as docker does: the whole of it, or
// the name alone when the pattern has no tag.
func referenceMatch(pattern, nameTag string) bool {
	familiar := strings.TrimPrefix(strings.TrimPrefix(nameTag, "docker.io/"), "library/")
	for _, nt := range []string{nameTag, familiar} {
		if ok, _ := path.Match(pattern, nt); ok {
			return true
		}
		name := nt
		if i := strings.LastIndex(nt, ":"); i > strings.LastIndex(nt, "/") {
			name = nt[:i]
		}
		if ok, _ := path.Match(pattern, name); ok {
			return true
		}
	}
	return false
}

// labelsMatch reports whether labels hold every KEY or KEY=VALUE of want.
func labelsMatch(labels map[string]string, want []string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// imageCreated finds ref (an id, an id prefix or a name[:tag]) in list.
func imageCreated(list []image.Summary, ref string) (int64, bool) {
	tagged := ref
	if i := strings.LastIndex(ref, ":"); i <= strings.LastIndex(ref, "/") {
		tagged = ref + ":latest"
	}
	for _, i := range list {
		id := strings.TrimPrefix(i.ID, "sha256:")
		if i.ID == ref || (len(ref) >= 4 && strings.HasPrefix(id, strings.TrimPrefix(ref, "sha256:"))) {
			return i.Created, true
		}
		for _, t := range i.RepoTags {
			if t == tagged || strings.TrimPrefix(strings.TrimPrefix(t, "docker.io/"), "library/") == tagged {
				return i.Created, true
			}
		}
	}
	return 0, false
}

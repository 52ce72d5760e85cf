package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

// psRow is one container as `ps --format` templates see it: the fields and
// methods of docker's container formatter ({{.ID}}, {{.Names}},
// {{.Status}}, {{.Label "k"}}…).
type psRow struct {
	s       container.Summary
	noTrunc bool
}

// ID is the container's short id (the whole one with --no-trunc).
func (r psRow) ID() string { return shortID(r.s.ID, r.noTrunc) }

// Names are the container's names, comma separated, without the slash.
func (r psRow) Names() string {
	names := make([]string, len(r.s.Names))
	for i, n := range r.s.Names {
		names[i] = strings.TrimPrefix(n, "/")
	}
	return strings.Join(names, ",")
}

// Image is the image as the user named it.
func (r psRow) Image() string { return r.s.Image }

// Command is the command, quoted, shortened unless --no-trunc.
func (r psRow) Command() string {
	command := r.s.Command
	if !r.noTrunc && len(command) > 20 {
		command = command[:19] + "…"
	}
	return strconv.Quote(command)
}

// CreatedAt is the creation time, as docker prints it.
func (r psRow) CreatedAt() string {
	return time.Unix(r.s.Created, 0).Format("2006-01-02 15:04:05 -0700 MST")
}

// RunningFor is how long ago the container was created.
func (r psRow) RunningFor() string {
	return units.HumanDuration(time.Since(time.Unix(r.s.Created, 0))) + " ago"
}

// Ports are the published ports.
func (r psRow) Ports() string { return portsColumn(r.s.Ports) }

// State is created, running, exited….
func (r psRow) State() string { return string(r.s.State) }

// Status is the human status ("Up 3 minutes").
func (r psRow) Status() string { return r.s.Status }

// Size is the writable layer's size and, in brackets, the whole root
// file system's (with ps -s; "0B" without it).
func (r psRow) Size() string {
	rw := units.HumanSizeWithPrecision(float64(r.s.SizeRw), 3)
	if r.s.SizeRootFs > 0 {
		return rw + " (virtual " + units.HumanSizeWithPrecision(float64(r.s.SizeRootFs), 3) + ")"
	}
	return rw
}

// Labels are the labels as k=v, comma separated, sorted.
func (r psRow) Labels() string {
	var kv []string
	for k, v := range r.s.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// Label is the value of one label.
func (r psRow) Label(name string) string { return r.s.Labels[name] }

// Mounts are the names (volumes) or sources of the container's mounts.
func (r psRow) Mounts() string {
	var ms []string
	for _, m := range r.s.Mounts {
		if m.Name != "" {
			ms = append(ms, m.Name)
		} else {
			ms = append(ms, m.Source)
		}
	}
	return strings.Join(ms, ",")
}

// Networks are the names of the networks the container is on.
func (r psRow) Networks() string {
	if r.s.NetworkSettings == nil {
		return ""
	}
	var ns []string
	for n := range r.s.NetworkSettings.Networks {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return strings.Join(ns, ",")
}

// psHeaders are the column titles of a "table" format, by field.
var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
	"CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
	"Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
	"Networks": "NETWORKS",
}

// psFields are the fields `--format json` prints.
var psFields = []string{"Command", "CreatedAt", "ID", "Image", "Labels", "Mounts", "Names", "Networks", "Ports", "RunningFor", "Size", "State", "Status"}

// writePs prints containers through a docker-style --format (formatRows).
func writePs(w io.Writer, list []container.Summary, format string, noTrunc bool) error {
	rows := make([]any, len(list))
	for i, s := range list {
		rows[i] = psRow{s: s, noTrunc: noTrunc}
	}
	return formatRows(w, rows, format, psHeaders, psFields)
}

// formatRows prints rows (values whose methods are the template's fields)
// through a docker-style --format: a Go template per row; "table TEMPLATE"
// adds a header row (headers: column titles by field) and aligns columns;
// "json" prints one JSON object of fields per row.
func formatRows(w io.Writer, rows []any, format string, headers map[string]string, fields []string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			obj := map[string]string{}
			for _, f := range fields {
				obj[f] = fieldOf(r, f)
			}
			if err := enc.Encode(obj); err != nil {
				return err
			}
		}
		return nil
	}
	table := strings.HasPrefix(format, "table")
	if table {
		format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err := template.New("row").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0) // docker's table layout
		out = tw
		header, err := template.New("header").Funcs(templateFuncs).Parse(headerTemplate(format, headers))
		if err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		if err := header.Execute(out, nil); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(out)
	}
	for _, r := range rows {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(out, buf.String())
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// fieldOf is one field of row by name (for --format json): the method of
// that name.
func fieldOf(row any, name string) string {
	return reflect.ValueOf(row).MethodByName(name).Call(nil)[0].String()
}

// headerTemplate turns a row template into its header: each {{.Field}}
// (or {{.Label "k"}}) becomes the field's column title from headers, as
// docker prints them; anything else in the template stays.
func headerTemplate(format string, headers map[string]string) string {
	var b strings.Builder
	for {
		i := strings.Index(format, "{{")
		if i < 0 {
			b.WriteString(format)
			return b.String()
		}
		j := strings.Index(format[i:], "}}")
		if j < 0 {
			b.WriteString(format)
			return b.String()
		}
		b.WriteString(format[:i])
		action := strings.TrimSpace(format[i+2 : i+j])
		name := strings.TrimPrefix(strings.Fields(action + " ")[0], ".")
		if h, ok := headers[name]; ok {
			b.WriteString(h)
		} else {
			b.WriteString(strings.ToUpper(name))
		}
		format = format[i+j+2:]
	}
}

// imageRow is one name of an image as `images --format` templates see it
// (docker's image formatter: {{.Repository}}, {{.Tag}}, {{.ID}}…).
type imageRow struct {
	repo, tag string
	s         image.Summary
	noTrunc   bool
}

// ID is the image's short id (the whole one with --no-trunc).
func (r imageRow) ID() string {
	if r.noTrunc {
		return r.s.ID
	}
	return shortID(r.s.ID, false)
}

// Repository is the name without its tag ("<none>" for an untagged image).
func (r imageRow) Repository() string { return r.repo }

// Tag is the tag ("<none>" for an untagged image).
func (r imageRow) Tag() string { return r.tag }

// Digest is the image's digest reference, if it was pulled by digest.
func (r imageRow) Digest() string {
	for _, d := range r.s.RepoDigests {
		if _, dg, ok := strings.Cut(d, "@"); ok {
			return dg
		}
	}
	return "<none>"
}

// CreatedSince is how long ago the image was made.
func (r imageRow) CreatedSince() string {
	return units.HumanDuration(time.Since(time.Unix(r.s.Created, 0))) + " ago"
}

// CreatedAt is the creation time, as docker prints it.
func (r imageRow) CreatedAt() string {
	return time.Unix(r.s.Created, 0).Format("2006-01-02 15:04:05 -0700 MST")
}

// Size is the unpacked size.
func (r imageRow) Size() string { return units.HumanSizeWithPrecision(float64(r.s.Size), 3) }

// imageHeaders and imageFields are images' counterparts of psHeaders and
// psFields.
var (
	imageHeaders = map[string]string{"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
		"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE"}
	imageFields = []string{"CreatedAt", "CreatedSince", "Digest", "ID", "Repository", "Size", "Tag"}
)

// writeImages prints images through a docker-style --format, one row per
// name (formatRows).
func writeImages(w io.Writer, list []image.Summary, format string, noTrunc bool) error {
	var rows []any
	for _, i := range list {
		tags := i.RepoTags
		if len(tags) == 0 {
			tags = []string{"<none>:<none>"}
		}
		for _, t := range tags {
			repo, tag := splitTag(t)
			rows = append(rows, imageRow{repo: repo, tag: tag, s: i, noTrunc: noTrunc})
		}
	}
	return formatRows(w, rows, format, imageHeaders, imageFields)
}

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

// writePs prints containers through a docker-style --format: a Go
// template per container; "table TEMPLATE" adds a header row and aligns
// columns; "json" prints one JSON object per container.
func writePs(w io.Writer, list []container.Summary, format string, noTrunc bool) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, s := range list {
			r := psRow{s: s, noTrunc: noTrunc}
			obj := map[string]string{}
			for _, f := range psFields {
				obj[f] = psField(r, f)
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
	tmpl, err := template.New("ps").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0) // docker's table layout
		out = tw
		header, err := template.New("header").Funcs(templateFuncs).Parse(headerTemplate(format))
		if err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		if err := header.Execute(out, nil); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(out)
	}
	for _, s := range list {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, psRow{s: s, noTrunc: noTrunc}); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(out, buf.String())
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// psField is one field of r by name (for --format json): the method of
// that name.
func psField(r psRow, name string) string {
	return reflect.ValueOf(r).MethodByName(name).Call(nil)[0].String()
}

// headerTemplate turns a row template into its header: each {{.Field}}
// (or {{.Label "k"}}) becomes the field's column title, as docker prints
// them; anything else in the template stays.
func headerTemplate(format string) string {
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
		if h, ok := psHeaders[name]; ok {
			b.WriteString(h)
		} else {
			b.WriteString(strings.ToUpper(name))
		}
		format = format[i+j+2:]
	}
}

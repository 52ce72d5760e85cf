package logs

import (
	"path"
	"strconv"
	"strings"

	"github.com/silo-containers/silo/internal/errdefs"
)

// The log options of silo's LogMonitor counterpart: besides the
// container's stdout and stderr, the monitor can copy log files inside
// the container and the container's syslog socket into the same log.
const (
	// OptCaptureFiles is a comma-separated list of absolute paths inside
	// the container; the last element of each may be a glob
	// (/var/log/app/*.log).
	OptCaptureFiles = "capture-files"
	// OptCaptureSyslog ("true") gives the container a /dev/log socket
	// whose messages go to the log.
	OptCaptureSyslog = "capture-syslog"
)

// maxCapturePatterns bounds capture-files: each pattern costs a directory
// scan per poll.
const maxCapturePatterns = 32

// Capture is what the capture options ask for.
type Capture struct {
	// Files are the cleaned absolute patterns of capture-files.
	Files []string
	// Syslog is capture-syslog.
	Syslog bool
}

// Enabled reports whether anything is to be captured.
func (c Capture) Enabled() bool { return len(c.Files) > 0 || c.Syslog }

// SplitCapture takes the capture options out of opts: it returns them,
// checked, and the other options (for the log driver). opts is not
// changed.
func SplitCapture(opts map[string]string) (Capture, map[string]string, error) {
	var c Capture
	rest := make(map[string]string, len(opts))
	for k, v := range opts {
		switch k {
		case OptCaptureFiles:
			files, err := parseCaptureFiles(v)
			if err != nil {
				return Capture{}, nil, err
			}
			c.Files = files
		case OptCaptureSyslog:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Capture{}, nil, &Error{Op: "log option", Object: OptCaptureSyslog + "=" + strconv.Quote(v), Err: classed("want true or false", errdefs.ErrInvalidArgument)}
			}
			c.Syslog = b
		default:
			rest[k] = v
		}
	}
	return c, rest, nil
}

func parseCaptureFiles(v string) ([]string, error) {
	bad := func(p, why string) error {
		return &Error{Op: "log option", Object: OptCaptureFiles + " " + strconv.Quote(p), Err: classed(why, errdefs.ErrInvalidArgument)}
	}
	var files []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.HasPrefix(p, "/") {
			return nil, bad(p, "want an absolute path inside the container")
		}
		clean := path.Clean(p)
		dir, base := path.Split(clean)
		if base == "" || base == "." || base == ".." {
			return nil, bad(p, "names no file")
		}
		if strings.ContainsAny(dir, `*?[\`) {
			return nil, bad(p, "only the last element of a path may be a glob")
		}
		if _, err := path.Match(base, ""); err != nil {
			return nil, bad(p, "malformed glob")
		}
		files = append(files, clean)
	}
	if len(files) == 0 {
		return nil, bad(v, "no path given")
	}
	if len(files) > maxCapturePatterns {
		return nil, bad(v, "more than "+strconv.Itoa(maxCapturePatterns)+" paths")
	}
	return files, nil
}

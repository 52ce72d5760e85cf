package sandbox

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/silo-containers/silo/internal/errdefs"
)

const (
	// DefaultSize is the sandbox size when Options.SizeBytes is zero:
	// 20 GiB, like the C: drive of a Windows container.
	DefaultSize int64 = 20 << 30
	// MinSize is the smallest sandbox Create accepts. Below it the ext4
	// metadata (journal, group descriptors) leaves little room for files.
	MinSize int64 = 16 << 20
)

// ParseSize parses a size the way docker's --storage-opt size= does:
// a non-negative number (a fraction is allowed), an optional space, an
// optional unit k, m, g, t or p (any case), an optional "i" and an
// optional "b". Units are binary, so "1G", "1g", "1GB" and "1GiB" are all
// 1<<30 bytes; a bare number or a number with only "b" is bytes. Errors
// wrap errdefs.ErrInvalidArgument.
func ParseSize(s string) (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("parse size %q: %s: %w", s, why, errdefs.ErrInvalidArgument)
	}
	str := strings.TrimSpace(s)
	i := 0
	for i < len(str) && (str[i] >= '0' && str[i] <= '9' || str[i] == '.') {
		i++
	}
	num, rest := str[:i], strings.TrimPrefix(str[i:], " ")
	if num == "" {
		return bad("no number")
	}
	rest = strings.ToLower(rest)
	shift := 0
	if rest != "" {
		if k := strings.IndexByte("kmgtp", rest[0]); k >= 0 {
			shift = 10 * (k + 1)
			rest = rest[1:]
			rest = strings.TrimPrefix(rest, "i")
		}
	}
	rest = strings.TrimPrefix(rest, "b")
	if rest != "" {
		return bad("unknown unit")
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64>>shift {
			return bad("out of range")
		}
		return n << shift, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return bad("malformed number")
	}
	f *= float64(int64(1) << shift)
	if f >= math.MaxInt64 {
		return bad("out of range")
	}
	return int64(f), nil
}

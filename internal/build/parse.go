package build

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/silo-containers/silo/internal/errdefs"
)

// maxDockerfileSize caps the Dockerfile read from a context.
const maxDockerfileSize = 4 << 20

// Dockerfile is a parsed Dockerfile.
type Dockerfile struct {
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	// Escape is the escape character (the "# escape=" directive).
	Escape rune
	// Warnings are the parser's (empty continuation lines).
	Warnings []string
}

// Parse parses a Dockerfile. Errors wrap errdefs.ErrInvalidArgument and
// name the line: "dockerfile line 3: unknown instruction: FOO".
func Parse(src []byte) (*Dockerfile, error) {
	if len(src) > maxDockerfileSize {
		return nil, fmt.Errorf("dockerfile: larger than %d bytes: %w", maxDockerfileSize, errdefs.ErrInvalidArgument)
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, dockerfileError(err, 0)
	}
	stages, meta, err := instructions.Parse(res.AST, nil)
	if err != nil {
		line := 0
		if len(res.AST.Children) > 0 {
			line = res.AST.Children[0].StartLine
		}
		return nil, dockerfileError(err, line)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("dockerfile: no FROM instruction: %w", errdefs.ErrInvalidArgument)
	}
	df := &Dockerfile{Stages: stages, MetaArgs: meta, Escape: res.EscapeToken}
	for _, w := range res.Warnings {
		df.Warnings = append(df.Warnings, w.Short)
	}
	// What the instruction parser lets through but no builder can run.
	for _, s := range stages {
		for _, c := range s.Commands {
			if err := checkCommand(c); err != nil {
				return nil, dockerfileError(err, lineOf(c))
			}
		}
	}
	return df, nil
}

// checkCommand refuses instructions that parse but cannot be built.
func checkCommand(c instructions.Command) error {
	switch c := c.(type) {
	case *instructions.RunCommand:
		if len(c.CmdLine) == 0 && len(c.Files) == 0 {
			return errors.New("RUN requires at least one argument")
		}
		if len(c.FlagsUsed) > 0 {
			return fmt.Errorf("RUN --%s is a BuildKit feature the classic builder does not support", c.FlagsUsed[0])
		}
	case *instructions.CopyCommand:
		if c.Link || c.Parents || len(c.ExcludePatterns) > 0 {
			return errors.New("COPY --link, --parents and --exclude are BuildKit features the classic builder does not support")
		}
	case *instructions.AddCommand:
		if c.Link || len(c.ExcludePatterns) > 0 || c.Checksum != "" || c.KeepGitDir != nil {
			return errors.New("ADD --link, --exclude, --checksum and --keep-git-dir are BuildKit features the classic builder does not support")
		}
	}
	return nil
}

// lineOf is the first line of a command, 0 if unknown.
func lineOf(c instructions.Command) int {
	if loc := c.Location(); len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

// dockerfileError turns a parser error into "dockerfile line N: reason".
func dockerfileError(err error, fallbackLine int) error {
	line := fallbackLine
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line = le.Locations[0][0].Start.Line
	}
	msg := err.Error()
	// instructions.Parse says "dockerfile parse error on line N: …"
	// itself; keep one line number.
	if i := strings.Index(msg, "dockerfile parse error on line "); i >= 0 {
		rest := msg[i+len("dockerfile parse error on line "):]
		if j := strings.Index(rest, ": "); j >= 0 {
			fmt.Sscanf(rest[:j], "%d", &line)
			msg = rest[j+2:]
		}
	}
	if line > 0 {
		return fmt.Errorf("dockerfile line %d: %s: %w", line, msg, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("dockerfile: %s: %w", msg, errdefs.ErrInvalidArgument)
}

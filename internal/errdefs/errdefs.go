// Package errdefs holds silo's error classes. Packages wrap these with
// context (fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)); the
// outermost adapter (CLI exit status, HTTP status, gRPC code) maps them once.
package errdefs

import "errors"

var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an object with that id or name exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: the request or document is malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrConflict: the object is in a state that forbids the operation.
	ErrConflict = errors.New("conflict")
	// ErrNotImplemented: the operation is not supported here.
	ErrNotImplemented = errors.New("not implemented")
	// ErrForbidden: the operation is refused by rule, whatever the
	// object's state (removing a pre-defined network).
	ErrForbidden = errors.New("forbidden")
)

// IsNotFound reports whether err is, or wraps, ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err is, or wraps, ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// Package logs is the engine's json-file log driver: the on-disk format
// Docker's json-file driver writes, so that the files under a container's
// log directory are interchangeable with Docker's.
//
// One entry per line:
//
//	{"log":"hello\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}
//
// The Writer (used by the per-container monitor) splits a stream into
// entries the way Docker's copier does: at every newline and every 16 KiB;
// a chunk that does not end a line carries no "\n". It rotates by size:
// container-json.log is renamed to container-json.log.1, .1 to .2 and so
// on, the oldest beyond max-file dropped. Writes are not fsynced one by
// one; Close syncs the file and leaves a marker (container-json.log.closed)
// that tells followers no more entries will come.
//
// Read (used by the daemon, usually another process than the writer)
// returns the entries selected by Options; with Follow it keeps reading
// across rotations: it holds the file it reads open, and when the name
// moves on, it finishes that file and continues with the next newer one,
// found by inode, so a rotation never loses or repeats an entry (unless
// the reader falls more than max-file files behind, when the files it has
// not reached yet are gone).
//
// Entries may carry attributes (Docker's "attrs": the capture options name
// a captured entry's source there); Options.Details shows them as
// `docker logs --details` does. The capture options themselves
// (capture-files, capture-syslog) are parsed here (capture.go) and served
// by the monitor. local.go is the local driver: a binary framing of its
// own, rotated files gzipped.
//
// Seams: the directory is the only thing writer and readers share; a
// reader learns of new data through inotify, with polling as a fallback.
package logs

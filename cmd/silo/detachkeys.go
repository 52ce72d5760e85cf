package main

import (
	"github.com/silo-containers/silo/internal/api/detachkeys"
)

// detachKeysFor resolves --detach-keys for an attachment: the sequence
// to send to the daemon (which watches for it too) and the bytes the CLI
// watches for on a terminal's input, as docker's CLI does. Without a
// terminal and input there is nothing to type the keys on: keys is nil.
func detachKeysFor(flag string, tty, stdin bool) (seq string, keys []byte, err error) {
	seq = flag
	if seq == "" {
		seq = detachkeys.Default
	}
	keys, err = detachkeys.Parse(seq)
	if err != nil {
		return "", nil, err
	}
	if !tty || !stdin {
		keys = nil
	}
	return seq, keys, nil
}

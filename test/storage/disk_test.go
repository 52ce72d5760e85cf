//go:build integration

package storage

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeBytes is the space available to root on the file system holding
// path (statfs f_bfree, which counts the reserved blocks too).
func freeBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	return int64(st.Bfree) * st.Bsize
}

// allocated is the disk space of one file (st_blocks), whatever its
// apparent size: a sparse image counts only what was written into it.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Blocks * 512
}

// diskUsage is `du -sx` of root in bytes: the allocated blocks of every
// inode under it, each counted once, without crossing into other file
// systems (the sandboxes' loop-mounted ext4 and overlay mounts).
func diskUsage(t *testing.T, root string) int64 {
	t.Helper()
	var rootSt syscall.Stat_t
	if err := syscall.Lstat(root, &rootSt); err != nil {
		t.Fatalf("lstat %s: %v", root, err)
	}
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // removed meanwhile (the engine's trash)
				return nil
			}
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if st.Dev != rootSt.Dev {
			return filepath.SkipDir
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatalf("du %s: %v", root, err)
	}
	return total
}

// settledUsage waits until the daemon's background deletions (the
// engine's and the layer store's trash) are done and the data root's disk
// usage holds still, and returns it.
func settledUsage(t *testing.T, data string) int64 {
	t.Helper()
	trashes := []string{filepath.Join(data, "engine", "trash"), filepath.Join(data, "image", "layers", ".trash")}
	last := int64(-1)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		busy := false
		for _, d := range trashes {
			if ents, err := os.ReadDir(d); err == nil && len(ents) > 0 {
				busy = true
			}
		}
		if busy {
			continue
		}
		u := diskUsage(t, data)
		if u == last {
			return u
		}
		last = u
	}
	t.Fatalf("disk usage of %s does not settle", data)
	return 0
}

// overlayLowers returns the lower directories of the overlay mounted at
// target, top-most first, from /proc/self/mountinfo: "lowerdir=a:b" or,
// for mounts made with fsconfig, one "lowerdir+=a" option per layer.
func overlayLowers(t *testing.T, target string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 10 || unescapeMount(fields[4]) != target {
			continue
		}
		sep := 6
		for sep < len(fields) && fields[sep] != "-" {
			sep++
		}
		if sep+3 >= len(fields) || fields[sep+1] != "overlay" {
			t.Fatalf("%s is not an overlay mount: %s", target, s.Text())
		}
		var lowers []string
		for _, o := range strings.Split(fields[sep+3], ",") {
			switch {
			case strings.HasPrefix(o, "lowerdir+="):
				lowers = append(lowers, unescapeMount(strings.TrimPrefix(o, "lowerdir+=")))
			case strings.HasPrefix(o, "lowerdir="):
				for _, l := range strings.Split(strings.TrimPrefix(o, "lowerdir="), ":") {
					lowers = append(lowers, unescapeMount(l))
				}
			}
		}
		if len(lowers) == 0 {
			t.Fatalf("overlay at %s shows no lower directories: %s", target, s.Text())
		}
		return lowers
	}
	t.Fatalf("no mount at %s", target)
	return nil
}

// unescapeMount undoes the octal escapes of mountinfo (\040 for a space…).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

package ocispec

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
)

// passwdEntry is one line of /etc/passwd or /etc/group that matters here.
type passwdEntry struct {
	name    string
	id      uint32
	gid     uint32   // passwd only
	members []string // group only
}

// readDB reads etc/passwd or etc/group of the rootfs. The file is opened
// through os.Root: a symlinked /etc/passwd in a hostile image cannot make
// us read the host's. A missing file is an empty database.
func readDB(rootfs, name string, group bool) ([]passwdEntry, error) {
	if rootfs == "" {
		return nil, nil
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read /%s in the image: %w", name, err)
	}
	defer f.Close()
	var out []passwdEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) < 3 {
			continue
		}
		id, err := strconv.ParseUint(fields[2], 10, 32)
		if err != nil {
			continue
		}
		e := passwdEntry{name: fields[0], id: uint32(id)}
		if group {
			if len(fields) >= 4 && fields[3] != "" {
				e.members = strings.Split(fields[3], ",")
			}
		} else if len(fields) >= 4 {
			if gid, err := strconv.ParseUint(fields[3], 10, 32); err == nil {
				e.gid = uint32(gid)
			}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /%s in the image: %w", name, err)
	}
	return out, nil
}

// resolveUser turns docker's "user[:group]" (names or numbers) into ids,
// with the user's supplementary groups from the image's /etc/group and
// --group-add, as Docker does.
func resolveUser(rootfs, spec string, groupAdd []string) (specs.User, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	passwd, err := readDB(rootfs, "etc/passwd", false)
	if err != nil {
		return specs.User{}, err
	}
	groups, err := readDB(rootfs, "etc/group", true)
	if err != nil {
		return specs.User{}, err
	}
	u := specs.User{}
	name := ""
	switch {
	case userPart == "":
		// root
		for _, e := range passwd {
			if e.id == 0 {
				name = e.name
				break
			}
		}
	default:
		found := false
		for _, e := range passwd {
			if e.name == userPart || strconv.FormatUint(uint64(e.id), 10) == userPart {
				u.UID, u.GID, name, found = e.id, e.gid, e.name, true
				break
			}
		}
		if !found {
			n, err := strconv.ParseUint(userPart, 10, 32)
			if err != nil {
				return specs.User{}, fmt.Errorf("user %q: no such user in the image's /etc/passwd: %w", userPart, errdefs.ErrInvalidArgument)
			}
			u.UID, u.GID = uint32(n), uint32(n)
		}
	}
	if hasGroup {
		gid, err := lookupGroup(groups, groupPart)
		if err != nil {
			return specs.User{}, err
		}
		u.GID = gid
	} else if name != "" {
		for _, g := range groups {
			if g.id != u.GID && contains(g.members, name) {
				u.AdditionalGids = append(u.AdditionalGids, g.id)
			}
		}
	}
	for _, g := range groupAdd {
		gid, err := lookupGroup(groups, g)
		if err != nil {
			return specs.User{}, fmt.Errorf("group-add: %w", err)
		}
		u.AdditionalGids = append(u.AdditionalGids, gid)
	}
	return u, nil
}

func lookupGroup(groups []passwdEntry, g string) (uint32, error) {
	for _, e := range groups {
		if e.name == g {
			return e.id, nil
		}
	}
	n, err := strconv.ParseUint(g, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("group %q: no such group in the image's /etc/group: %w", g, errdefs.ErrInvalidArgument)
	}
	return uint32(n), nil
}

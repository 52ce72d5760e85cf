package ocispec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// ResolveUser turns docker's "user[:group]" (names or numbers) into ids
// from the rootfs's /etc/passwd and /etc/group, as for the container's own
// process (docker exec -u).
func ResolveUser(rootfs, spec string) (specs.User, error) {
	return resolveUser(rootfs, spec, nil)
}

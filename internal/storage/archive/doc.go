// Package archive unpacks layer tarballs into a directory. Its one job is to
// turn an untrusted tar stream into files, safely and fast.
//
// Seams: Unpack takes an uncompressed tar stream (Decompress sniffs and
// undoes gzip or zstd) and a target directory; it returns the digest of the
// uncompressed stream (the layer's DiffID) so the caller can verify it. It
// knows nothing about layer stores, images or registries.
//
// Safety model. The target directory is treated like a chroot: every path is
// resolved by the kernel with openat2(RESOLVE_IN_ROOT), and every final
// component is created, replaced or changed through *at syscalls that do not
// follow symlinks (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, O_EXCL). So absolute
// names, symlinked parents and absolute symlinks all stay inside the
// directory, even if something races with the unpack. Names with ".."
// components, hardlinks to paths that do not exist (yet) in the layer,
// device nodes when not allowed, overlay xattrs smuggled in the tar, and
// streams beyond the size or entry caps are refused with an error naming the
// entry. The unpack is not transactional: on error the directory holds a
// partial tree and the caller (the layer store) throws it away.
//
// Whiteouts follow the OCI image spec and are stored the way overlayfs reads
// them: ".wh.NAME" becomes a 0/0 character device NAME, and ".wh..wh..opq"
// sets trusted.overlay.opaque=y on its directory.
package archive

// Package image holds what silo knows about images apart from their bytes:
// reference names (normalized like docker), the manifest, index and config
// formats (OCI and Docker schema2, platform selection), and the metadata
// database (bbolt) mapping references to manifests and recording each
// image's config and layers.
//
// Seams: DB stores records and answers "what is still referenced" for GC;
// it never touches blobs or layer directories. The parse functions take raw
// bytes that the caller has already verified against their digests.
package image

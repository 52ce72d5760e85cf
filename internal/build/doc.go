// Package build is silo's Dockerfile builder (the classic builder's
// behaviour: one image per step, a step cache, the text progress stream).
//
// Seams: a Builder reads a build context (a directory, or a tar through
// FromTar), parses the Dockerfile with buildkit's parser and instruction
// packages, and drives a Backend for everything that touches images and
// containers: resolving and pulling images, a container per RUN step, a
// mounted sandbox per COPY/ADD/WORKDIR step, config-only commits for
// metadata steps, tagging. internal/engine implements Backend over its
// container service and the image store; this package imports neither.
//
// Steps:
//
//	FROM                 resolve (or pull) the base image, or an earlier stage
//	RUN                  container on the step image, output streamed, diff → layer
//	COPY, ADD, WORKDIR   sandbox on the step image, files written with the
//	                     hardened unpacker (contained in the root), diff → layer
//	                     (WORKDIR of an existing directory adds no layer)
//	ENV LABEL CMD …      config-only image: no container, no layer
//
// Cache (cache.go): a step's key hashes its parent image ID, its
// instruction after ARG/ENV expansion (with the build args RUN sees) and,
// for COPY/ADD, the content and metadata of its inputs. Keys map to image
// IDs in files under the cache directory; a hit is used only if the image
// still exists. Each step image is held by the store under the holder
// "build-cache:KEY" (taken atomically with the commit), so GC keeps it; the
// final image of a tagged build is released after tagging, so removing its
// tags frees it as usual.
//
// Hostile input: the context is unpacked with internal/storage/archive
// (no "..", no escaping symlinks at unpack time); sources of COPY/ADD are
// resolved inside the context and refused, naming the path, when they or a
// symlink on their way lead out of it. Dockerfile errors carry the line.
package build

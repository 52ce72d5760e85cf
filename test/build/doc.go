// Package build holds root integration tests of Dockerfile builds through
// silod: silo build, the docker CLI's classic builder, the step cache,
// multi-stage builds and failures (build tag integration).
package build

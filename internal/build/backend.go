package build

import (
	"context"
	"io"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Image is an image as the builder sees it.
type Image struct {
	// ID is the image ID (config digest, "sha256:…").
	ID string
	// Config is the runtime configuration with docker's extension
	// (Healthcheck, OnBuild, Shell).
	Config dockerspec.DockerOCIImageConfig
}

// ContainerConfig describes the container of one step.
type ContainerConfig struct {
	// Image is the step's parent image ID.
	Image string
	// Cmd is the process of a RUN step (shell already prepended). Nil for
	// a file-system-only step (COPY, ADD, WORKDIR): then no process runs
	// and the backend may give a bare mounted sandbox.
	Cmd []string
	// Env, User and WorkingDir are the process's (the step image's config
	// plus the build args RUN sees).
	Env        []string
	User       string
	WorkingDir string
	// NetworkMode is "none" or "" (the default network).
	NetworkMode string
}

// Container is one step's container. Remove must always be called.
type Container interface {
	// ID names the container in the progress (" ---> Running in ID").
	ID() string
	// Rootfs is the mounted root file system (the merged overlay).
	Rootfs() string
	// Run starts the process, copies its output (stdout and stderr) to
	// out and returns its exit code once it has exited.
	Run(ctx context.Context, out io.Writer) (int, error)
	// Commit makes an image of the parent plus the container's changes
	// (one layer, none if nothing changed) with cfg and a history entry,
	// held for holder (the build cache's hold; see Backend.Release).
	Commit(ctx context.Context, cfg dockerspec.DockerOCIImageConfig, createdBy, holder string) (Image, error)
	// Remove deletes the container and everything it holds.
	Remove(ctx context.Context) error
}

// Backend is what the builder needs of the engine.
type Backend interface {
	// Image resolves a reference or ID in the local store.
	Image(ctx context.Context, ref string) (Image, error)
	// Pull fetches ref into the local store (--pull).
	Pull(ctx context.Context, ref string) (Image, error)
	// NewContainer creates the container of a step, its root mounted.
	NewContainer(ctx context.Context, cfg ContainerConfig) (Container, error)
	// CommitConfig makes an image from parent ("" for scratch) with cfg
	// and one empty-layer history entry, held for holder.
	CommitConfig(ctx context.Context, parent string, cfg dockerspec.DockerOCIImageConfig, createdBy, holder string) (Image, error)
	// Tag points ref at image id.
	Tag(ctx context.Context, id, ref string) error
	// LayerDirs returns the unpacked layers of image id, top-most first
	// (a WORKDIR that exists needs no sandbox: see dirInLayers).
	LayerDirs(ctx context.Context, id string) ([]string, error)
	// Release drops holder's hold on its image (idempotent).
	Release(ctx context.Context, holder string) error
}

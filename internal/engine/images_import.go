package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
)

// ImportStore is what `docker import` needs of the image store
// (*storage.Store satisfies it).
type ImportStore interface {
	Import(ctx context.Context, rootfs io.Reader, ref string, opts storage.ImportOptions) (storage.ImageInfo, error)
}

var _ ImportStore = (*storage.Store)(nil)

// ImportOptions tune ImportImage.
type ImportOptions struct {
	// Message is the history comment (docker import --message).
	Message string
}

// ImportImage makes a one-layer image from a rootfs tarball (plain, gzip
// or zstd) and tags it ref (docker import).
func (s *Service) ImportImage(ctx context.Context, rootfs io.Reader, ref string, opts ImportOptions) (storage.ImageInfo, error) {
	st, ok := s.cfg.Images.(ImportStore)
	if !ok {
		return storage.ImageInfo{}, fmt.Errorf("import: the image store cannot import: %w", errdefs.ErrNotImplemented)
	}
	if ref == "" {
		return storage.ImageInfo{}, fmt.Errorf("import: an image without a repository name is not supported: give REPOSITORY[:TAG]: %w", errdefs.ErrInvalidArgument)
	}
	info, err := st.Import(ctx, rootfs, ref, storage.ImportOptions{Comment: opts.Message})
	if err != nil {
		return storage.ImageInfo{}, err
	}
	return info, nil
}

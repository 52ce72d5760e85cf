package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
)

// DistStore is what pull, push, tag and save need of the image store
// (*storage.Store satisfies it). It is kept apart from ImageStore so that
// stores without a registry side still serve the rest.
type DistStore interface {
	Pull(ctx context.Context, ref string, opts storage.RegistryOptions) (storage.ImageInfo, error)
	Push(ctx context.Context, ref string, opts storage.RegistryOptions) error
	Tag(ctx context.Context, src, dst string) error
	Save(ctx context.Context, refs []string, w io.Writer) error
}

var _ DistStore = (*storage.Store)(nil)

// RegistryAuth are the credentials of one registry request (from docker's
// X-Registry-Auth header); empty for anonymous access.
type RegistryAuth struct {
	Username, Password string
}

// PullResult says what a pull did.
type PullResult struct {
	Image storage.ImageInfo
	// Updated is false when the reference already named the pulled manifest.
	Updated bool
}

func (s *Service) dist() (DistStore, error) {
	d, ok := s.cfg.Images.(DistStore)
	if !ok {
		return nil, fmt.Errorf("the image store cannot talk to registries: %w", errdefs.ErrNotImplemented)
	}
	return d, nil
}

// registryError gives registry answers their error class: an unknown
// repository or manifest is not found, bad credentials are refused.
func registryError(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
			}
		}
	}
	return err
}

// PullImage fetches ref from its registry. progress, when set, receives
// layer download progress from several goroutines.
func (s *Service) PullImage(ctx context.Context, ref string, auth RegistryAuth, progress storage.ProgressFunc) (PullResult, error) {
	d, err := s.dist()
	if err != nil {
		return PullResult{}, err
	}
	before, berr := s.cfg.Images.Image(ctx, ref)
	info, err := d.Pull(ctx, ref, storage.RegistryOptions{Username: auth.Username, Password: auth.Password, Progress: progress})
	if err != nil {
		return PullResult{}, registryError(err)
	}
	return PullResult{Image: info, Updated: berr != nil || before.Manifest != info.Manifest}, nil
}

// PushImage uploads ref to its registry and returns what it pushed.
func (s *Service) PushImage(ctx context.Context, ref string, auth RegistryAuth) (storage.ImageInfo, error) {
	d, err := s.dist()
	if err != nil {
		return storage.ImageInfo{}, err
	}
	info, err := s.cfg.Images.Image(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return storage.ImageInfo{}, fmt.Errorf("an image does not exist locally with the tag: %s: %w", ref, errdefs.ErrNotFound)
		}
		return storage.ImageInfo{}, err
	}
	if err := d.Push(ctx, ref, storage.RegistryOptions{Username: auth.Username, Password: auth.Password}); err != nil {
		return storage.ImageInfo{}, registryError(err)
	}
	return info, nil
}

// TagImage gives image src the reference dst.
func (s *Service) TagImage(ctx context.Context, src, dst string) error {
	d, err := s.dist()
	if err != nil {
		return err
	}
	if _, err := s.cfg.Images.Image(ctx, src); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("no such image: %s: %w", src, errdefs.ErrNotFound)
		}
		return err
	}
	return d.Tag(ctx, src, dst)
}

// CheckImages returns a not-found error naming the first of refs that is
// not in the store (callers check before they start a stream).
func (s *Service) CheckImages(ctx context.Context, refs []string) error {
	for _, r := range refs {
		if _, err := s.cfg.Images.Image(ctx, r); err != nil {
			if errdefs.IsNotFound(err) {
				return fmt.Errorf("no such image: %s: %w", r, errdefs.ErrNotFound)
			}
			return err
		}
	}
	return nil
}

// SaveImages writes refs as one `docker save` tar.
func (s *Service) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	d, err := s.dist()
	if err != nil {
		return err
	}
	return d.Save(ctx, refs, w)
}

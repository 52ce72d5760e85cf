package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Names inside a sandbox directory.
const (
	metaFile       = "sandbox.json"    // sandboxMeta
	layerChainFile = "layerchain.json" // lower layers, top-most first (windowsfilter's file)
	imageFile      = "sandbox.img"     // sparse ext4 image, the sandbox.vhdx counterpart
	scratchDir     = "scratch"         // mount point of the image
	rootfsDir      = "rootfs"          // mount point of the overlay
	emptyDir       = "empty"           // lower layer of a sandbox without image layers
	upperName      = "upper"           // inside scratch: overlay upperdir
	workName       = "work"            // inside scratch: overlay workdir
)

// metaVersion is written into sandbox.json; Open refuses newer versions.
const metaVersion = 1

// sandboxMeta is sandbox.json.
type sandboxMeta struct {
	Version   int   `json:"version"`
	SizeBytes int64 `json:"sizeBytes"`
}

// writeFileSync writes v as JSON to a temporary file beside path, fsyncs
// it and renames it to path. The rename is durable once the caller
// fsyncs the directory.
func writeFileSync(path string, v any) (err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readMeta reads sandbox.json and layerchain.json of dir. A missing
// sandbox.json means dir is not a sandbox (or Create never got that far):
// errdefs.ErrNotFound. A missing layerchain.json (Create crashed) gives
// chain == false.
func readMeta(dir string) (m sandboxMeta, layers []string, chain bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if os.IsNotExist(err) {
		return m, nil, false, fmt.Errorf("open sandbox %s: no %s: %w", dir, metaFile, errdefs.ErrNotFound)
	}
	if err != nil {
		return m, nil, false, fmt.Errorf("open sandbox %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, nil, false, fmt.Errorf("open sandbox %s: parse %s: %v: %w", dir, metaFile, err, errdefs.ErrInvalidArgument)
	}
	if m.Version < 1 || m.Version > metaVersion || m.SizeBytes < MinSize {
		return m, nil, false, fmt.Errorf("open sandbox %s: %s: version %d size %d: %w", dir, metaFile, m.Version, m.SizeBytes, errdefs.ErrInvalidArgument)
	}
	b, err = os.ReadFile(filepath.Join(dir, layerChainFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil, false, nil
	}
	if err != nil {
		return m, nil, false, fmt.Errorf("open sandbox %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &layers); err != nil {
		return m, nil, false, fmt.Errorf("open sandbox %s: parse %s: %v: %w", dir, layerChainFile, err, errdefs.ErrInvalidArgument)
	}
	for _, l := range layers {
		if !filepath.IsAbs(l) {
			return m, nil, false, fmt.Errorf("open sandbox %s: %s: layer %q is not absolute: %w", dir, layerChainFile, l, errdefs.ErrInvalidArgument)
		}
	}
	return m, layers, true, nil
}

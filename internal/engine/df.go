package engine

import (
	"context"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	mobyvolume "github.com/moby/moby/api/types/volume"
)

// DiskUsage is what `docker system df` shows.
type DiskUsage struct {
	// LayersSize is the unpacked size of every image's layers.
	LayersSize int64
	// Images, with Containers set to how many containers use each.
	Images []image.Summary
	// Containers, with SizeRw the space their writable layers take.
	Containers []container.Summary
	// Volumes, with their size and reference count.
	Volumes []mobyvolume.Volume
}

// DiskUsage reports the space images, containers and volumes take.
func (s *Service) DiskUsage(ctx context.Context) (DiskUsage, error) {
	var du DiskUsage
	imgs, err := s.Images(ctx)
	if err != nil {
		return du, err
	}
	uses := map[string]int64{}
	for _, e := range s.sortedEntries() {
		c := s.snapshot(e)
		sum := summary(&c)
		sum.SizeRw = allocatedBytes(s.sandboxDir(c.ID))
		du.Containers = append(du.Containers, sum)
		uses[c.ImageID]++
	}
	for _, i := range imgs {
		i.Containers = uses[i.ID]
		du.LayersSize += i.Size
		du.Images = append(du.Images, i)
	}
	if du.Volumes, err = s.VolumesUsage(ctx); err != nil {
		return du, err
	}
	if du.Images == nil {
		du.Images = []image.Summary{}
	}
	if du.Containers == nil {
		du.Containers = []container.Summary{}
	}
	return du, nil
}

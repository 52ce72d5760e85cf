// Package sandbox is the writable layer of a container, the counterpart of
// windowsfilter's sandbox.vhdx under wcifs: a size-limited file system for
// the container's changes, merged over the read-only image layers by
// overlayfs. Callers (the engine, the layer store) pass unpacked layer
// directories, top-most first, and get back a root file system path to
// hand to the compute backend.
//
// # Layout
//
//	DIR/sandbox.json      size and format version            (atomic, fsynced)
//	DIR/layerchain.json   the lower layers, top-most first   (atomic, fsynced)
//	DIR/sandbox.img       sparse ext4 image of SizeBytes (default 20 GiB)
//	DIR/scratch/          the image, mounted through a loop device
//	    upper/ work/      overlay upper and work directories
//	DIR/rootfs/           overlay: lowerdir = layers, upper/work in scratch
//	DIR/empty/            the lower layer of a sandbox without image layers
//
// # States
//
//	state     image  loop device  scratch  rootfs   reached by
//	created   yes    -            -        -        Create, Unmount
//	mounted   yes    bound        mounted  mounted  Mount
//	half      yes    maybe        maybe    -        a crash inside Mount or Unmount
//	removed   -      -            -        -        Remove
//
// The state is read from the mount table and /sys/block/loop*/loop/
// backing_file every time, never cached. Open turns "half" into "created";
// Unmount and Remove accept every state. Create attaches and mounts
// nothing, so a stopped container costs no loop device.
//
// # Why an ext4 image on a loop device
//
// The limit must hold on any backing file system, including the ext4
// without project quota that silo runs on. An image file is the one
// mechanism that needs nothing from the host file system: the container's
// ext4 runs out of blocks (ENOSPC) at SizeBytes whatever is underneath,
// and the sparse image never takes more host space than that. The
// alternatives fail the brief: project quotas need the "project" feature
// in the host file system (mkfs or an offline tune2fs), tmpfs holds the
// data in memory, usage polling does not enforce. One shared ext4 image
// with project quota per sandbox would create faster, but brings a shared
// pool to size and repair, and removing a sandbox would delete its files
// one by one, slow on this host's journal-less ext4 (see DESIGN.md); here
// it is one unlink whatever the container wrote.
//
// Costs, measured on the development VM (2 vCPU, ext4 on virtio, Linux
// 6.18), 20 GiB sandbox over two layers, medians of 100 cycles of
// BenchmarkCreateMountRemove. The VM was shared with other test runs; the
// quietest run is shown, busy runs were up to 2x slower:
//
//	                    create  mount   unmount  remove  total
//	mkfs per sandbox    5.6 ms  2.7 ms  3.9 ms   3.7 ms  15.9 ms
//	template copy       2.9 ms  2.9 ms  4.3 ms   3.9 ms  14.1 ms
//
// mkfs.ext4 of a 20 GiB image runs in about 5 ms and allocates 328 KiB
// with the options in mkfsArgs (18 ms and 132 MiB with the defaults); a
// sparse copy (SEEK_DATA/SEEK_HOLE, copy_file_range) of a formatted
// template takes 0.4 ms plus 1.7 ms to fsync it. Options.TemplateDir
// turns the template on; without it every Create runs mkfs.ext4.
// Attaching the loop device takes under 1 ms, mounting the ext4 about
// 1.3 ms.
//
// The loop device is configured in one LOOP_CONFIGURE ioctl with direct
// I/O (the container's data is cached once, not once per file system) and
// LO_FLAGS_AUTOCLEAR: the kernel unbinds it when its last user goes away,
// so after the scratch mount holds it, no path (failure, crash, unmount)
// can leave it bound. Remove and Open still look for devices bound to the
// image, for those bound by other tools.
//
// # Overlay
//
// Layers are passed one per fsconfig(2) call ("lowerdir+"): by file
// descriptor on Linux 6.13 and later, by path on 6.8 and later (each path
// under 256 bytes), else in one mount(2) option string, which must fit a
// page. The first two have no limit on the number of layers but
// overlay's own (500).
//
// # Concurrency and crashes
//
// A Sandbox serialises its own methods. Two processes must not work on the
// same directory at once; the engine owns that. Metadata files are
// written to a temporary name, fsynced and renamed; the image is renamed
// into place only when complete. A directory without sandbox.json has no
// mount and no loop device and may be deleted with os.RemoveAll.
package sandbox

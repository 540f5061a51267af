/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VFIO transport: a real VFIO device file descriptor.
 *
 * Device strings (keys after the path or alone, comma-separated):
 *   vfio:/dev/vfio/GROUP/DEVICE-NAME[,type=N][,iommu=auto|type1v2|type1|noiommu]
 *   vfio:fd=N[,type=N]
 * The first form opens the group, puts it in a new container with the
 * IOMMU type the device needs (type1v2, else type1, else no-IOMMU for a
 * /dev/vfio/noiommu-N group) and asks the group for the device.  The
 * second borrows a device fd the caller already has and never closes it
 * (devstate_device_open_vfio_fd() with DEVSTATE_OPEN_CLOSE_FD hands it
 * over).
 *
 * At open every region is described (VFIO_DEVICE_GET_REGION_INFO with the
 * argsz retry) and its capability chain walked with every offset checked
 * against the buffer the kernel filled.  The device-state regions (SPEC 2)
 * are the regions whose VFIO_REGION_INFO_CAP_TYPE has the device-state
 * type (2 unless type=N says otherwise) and subtype CTL=1, DATA_CONFIG=2,
 * DATA_MEMORY=3 or DATA_DIRTYBITMAP=4; on a CCW device type 2 is
 * VFIO_REGION_TYPE_CCW, so none is searched for there.
 *
 * Data regions are mapped where the kernel allows it (the whole region,
 * or the areas of a sparse mmap capability with pread/pwrite for the
 * gaps) and read/written otherwise; the control region is only ever
 * pread/pwrite, one field at its width.  This file moves bytes: what the
 * bytes mean is the core's business.
 *
 * The kernel's migration uAPI v2 (the mig2_* ops) is the other protocol:
 * VFIO_DEVICE_FEATURE MIGRATION / MIG_DEVICE_STATE / MIG_DATA_SIZE on the
 * device fd and the data fd a state change returns (see the section
 * "Protocol family 2" below for its lifetime).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef HAVE_LINUX_VFIO_H
#error "the VFIO transport needs <linux/vfio.h> (Debian: linux-libc-dev)"
#endif
#include <linux/vfio.h>

#include "libdevstate/core.h"
#include "libdevstate/device.h"
#include "libdevstate/mig2.h"
#include "transports/transport.h"
#include "transports/vfio-sys.h"

/* What older uapi headers may lack. */
#ifndef VFIO_DEVICE_FLAGS_CCW
#define VFIO_DEVICE_FLAGS_CCW			(1 << 4)
#endif
#ifndef VFIO_REGION_INFO_FLAG_CAPS
#define VFIO_REGION_INFO_FLAG_CAPS		(1 << 3)
#endif
#ifndef VFIO_REGION_INFO_CAP_SPARSE_MMAP
#define VFIO_REGION_INFO_CAP_SPARSE_MMAP	1
#endif
#ifndef VFIO_REGION_INFO_CAP_TYPE
#define VFIO_REGION_INFO_CAP_TYPE		2
#endif
#ifndef VFIO_REGION_INFO_CAP_MSIX_MAPPABLE
#define VFIO_REGION_INFO_CAP_MSIX_MAPPABLE	3
#endif
#ifndef VFIO_NOIOMMU_IOMMU
#define VFIO_NOIOMMU_IOMMU			8
#endif

/* The proposal's region type and subtypes (SPEC 2). */
#define VFIO_STATE_TYPE_DEFAULT		2u
#define VFIO_STATE_SUBTYPE_CTL		1u
#define VFIO_STATE_SUBTYPE_CONFIG	2u
#define VFIO_STATE_SUBTYPE_MEMORY	3u
#define VFIO_STATE_SUBTYPE_BITMAP	4u

/* Sizes of the uapi structures as laid out in the info buffer (fixed by
 * the ABI, independent of the header's struct versions). */
#define REGION_INFO_MINSZ	32u	/* struct vfio_region_info */
#define CAP_HDR_SZ		8u	/* struct vfio_info_cap_header */
#define CAP_TYPE_SZ		16u	/* header + type + subtype */
#define CAP_SPARSE_SZ		16u	/* header + nr_areas + reserved */
#define SPARSE_AREA_SZ		16u	/* offset + size */

/* Limits on what the kernel may ask of us. */
#define REGION_INFO_MAX		(64u * 1024)	/* bytes of region info */
#define REGION_INFO_TRIES	4		/* argsz growths accepted */
#define REGIONS_MAX		4096u		/* num_regions */

_Static_assert(sizeof(struct vfio_region_info) == REGION_INFO_MINSZ,
	       "struct vfio_region_info is 32 bytes in the uapi");

/* ---------------------------------------------------------------- */
/* The system-call seam.                                            */

static int sys_open_real(const char *path, int flags)
{
	return open(path, flags);
}

static int sys_ioctl_real(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg);
}

static int sys_ioctl_int_real(int fd, unsigned long req, unsigned long arg)
{
	return ioctl(fd, req, arg);
}

static const struct devstate_vfio_sys sys_real = {
	.open = sys_open_real,
	.close = close,
	.ioctl = sys_ioctl_real,
	.pread = pread,
	.pwrite = pwrite,
	.mmap = mmap,
	.munmap = munmap,
	.ioctl_int = sys_ioctl_int_real,
	.read = read,
	.write = write,
};

static const struct devstate_vfio_sys *sys = &sys_real;

void devstate_vfio_set_sys(const struct devstate_vfio_sys *s)
{
	sys = s ? s : &sys_real;
}

/* ---------------------------------------------------------------- */
/* State.                                                           */

struct vfio_area {
	uint64_t offset;	/* within the region */
	uint64_t size;
	void *map;		/* NULL: not mapped, use pread/pwrite */
};

struct vfio_region {
	uint32_t index;
	int status;		/* 0 or -errno from GET_REGION_INFO */
	uint32_t flags;
	uint64_t size;
	uint64_t offset;
	bool has_type;
	uint32_t type;
	uint32_t subtype;
	int state;		/* enum devstate_region, or -1 */
	bool msix_mappable;
	bool sparse;
	uint32_t nr_areas;
	struct vfio_area *areas;
	uint32_t other_caps;
	/* mapping, done on first use */
	bool map_tried;
	void *map;		/* the whole region (not sparse) */
	int map_prot;
};

struct vfio_dev {
	int fd;			/* the device */
	bool own_fd;
	int group;		/* -1 when opened from an fd */
	int container;		/* -1 when opened from an fd */
	const char *iommu;	/* "" when opened from an fd */
	char name[128];		/* for messages: the device name or fd=N */
	uint32_t flags;
	uint32_t num_regions;
	uint32_t num_irqs;
	uint32_t state_type;
	bool state_searched;
	struct vfio_region *regions;
	int state_index[DEVSTATE_REGION_COUNT];	/* region index or -1 */
	/* uAPI v2: the migration data fd the kernel returned (ours: closed
	 * when its state is left), and the state it belongs to */
	int data_fd;
	uint32_t data_state;
};

#define verr(err, errlen, rc, ...) \
	devstate_transport_err(err, errlen, rc, "vfio: ", __VA_ARGS__)


static const char *state_subtype_name(int state)
{
	return state >= 0 ? devstate_region_name((enum devstate_region)state) :
			    "other";
}

/* ioctl with EINTR retried; the result or -errno. */
static int vioctl(int fd, unsigned long req, void *arg)
{
	int rc;

	do {
		rc = sys->ioctl(fd, req, arg);
	} while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : rc;
}

static int vioctl_int(int fd, unsigned long req, unsigned long arg)
{
	int rc;

	do {
		rc = sys->ioctl_int(fd, req, arg);
	} while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : rc;
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* ---------------------------------------------------------------- */
/* Region discovery.                                                */

/*
 * Walk the capability chain of region r in buf[0, limit).  The chain
 * starts at first; every capability header and body must lie inside
 * [REGION_INFO_MINSZ, limit), every next offset too, and no offset may be
 * visited twice.
 */
static int walk_caps(struct vfio_region *r, const uint8_t *buf, size_t limit,
		     uint32_t first, char *err, size_t errlen)
{
	uint8_t *seen;
	uint32_t off = first;
	size_t steps = 0;
	bool seen_sparse = false;
	int rc = 0;

	seen = calloc(limit / 8 + 1, 1);
	if (!seen)
		return verr(err, errlen, -ENOMEM, "region %u: out of memory",
			    r->index);
	while (off) {
		uint16_t id, version;
		uint32_t next;

		if (off < REGION_INFO_MINSZ || off >= limit ||
		    limit - off < CAP_HDR_SZ) {
			rc = verr(err, errlen, -EPROTO,
				  "region %u: capability at offset %u is outside the %zu-byte region info (%s)",
				  r->index, off, limit,
				  off < REGION_INFO_MINSZ ?
				  "inside the fixed part" :
				  "its header runs past the end");
			break;
		}
		if (seen[off / 8] & (1u << (off % 8))) {
			rc = verr(err, errlen, -ELOOP,
				  "region %u: capability chain loops back to offset %u",
				  r->index, off);
			break;
		}
		seen[off / 8] |= (uint8_t)(1u << (off % 8));
		if (++steps > limit / CAP_HDR_SZ) {
			/* cannot happen without a revisit; a second guard */
			rc = verr(err, errlen, -ELOOP,
				  "region %u: capability chain longer than the region info",
				  r->index);
			break;
		}
		id = get16(buf + off);
		version = get16(buf + off + 2);
		next = get32(buf + off + 4);

		switch (id) {
		case VFIO_REGION_INFO_CAP_TYPE:
			if (limit - off < CAP_TYPE_SZ) {
				rc = verr(err, errlen, -EPROTO,
					  "region %u: type capability at offset %u is truncated (%zu of %u bytes)",
					  r->index, off, limit - off,
					  CAP_TYPE_SZ);
				break;
			}
			if (r->has_type) {
				rc = verr(err, errlen, -EPROTO,
					  "region %u: second type capability at offset %u",
					  r->index, off);
				break;
			}
			r->has_type = true;
			r->type = get32(buf + off + 8);
			r->subtype = get32(buf + off + 12);
			break;
		case VFIO_REGION_INFO_CAP_SPARSE_MMAP: {
			uint32_t nr, i;

			if (limit - off < CAP_SPARSE_SZ) {
				rc = verr(err, errlen, -EPROTO,
					  "region %u: sparse mmap capability at offset %u is truncated (%zu of %u bytes)",
					  r->index, off, limit - off,
					  CAP_SPARSE_SZ);
				break;
			}
			if (seen_sparse) {
				rc = verr(err, errlen, -EPROTO,
					  "region %u: second sparse mmap capability at offset %u",
					  r->index, off);
				break;
			}
			seen_sparse = true;
			nr = get32(buf + off + 8);
			if (nr > (limit - off - CAP_SPARSE_SZ) / SPARSE_AREA_SZ) {
				rc = verr(err, errlen, -EPROTO,
					  "region %u: sparse mmap capability at offset %u has %u areas, more than the region info holds",
					  r->index, off, nr);
				break;
			}
			r->sparse = true;
			r->areas = nr ? calloc(nr, sizeof(*r->areas)) : NULL;
			if (nr && !r->areas) {
				rc = verr(err, errlen, -ENOMEM,
					  "region %u: out of memory", r->index);
				break;
			}
			r->nr_areas = nr;
			for (i = 0; i < nr; i++) {
				const uint8_t *a = buf + off + CAP_SPARSE_SZ +
						   (size_t)i * SPARSE_AREA_SZ;
				uint64_t ao = get64(a), as = get64(a + 8);

				if (ao > r->size || as > r->size - ao) {
					rc = verr(err, errlen, -EPROTO,
						  "region %u: sparse mmap area %u (offset 0x%llx, size 0x%llx) lies outside the 0x%llx-byte region",
						  r->index, i,
						  (unsigned long long)ao,
						  (unsigned long long)as,
						  (unsigned long long)r->size);
					break;
				}
				r->areas[i].offset = ao;
				r->areas[i].size = as;
			}
			break;
		}
		case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
			r->msix_mappable = true;
			break;
		default:
			r->other_caps++;
			break;
		}
		(void)version;	/* every version extends version 1 */
		if (rc < 0)
			break;
		off = next;
	}
	free(seen);
	return rc;
}

/*
 * VFIO_DEVICE_GET_REGION_INFO for index i, growing the buffer when the
 * kernel asks for more (argsz) so that the capability chain fits.
 */
static int region_info(struct vfio_dev *v, uint32_t i, char *err,
		       size_t errlen)
{
	struct vfio_region *r = &v->regions[i];
	size_t sz = REGION_INFO_MINSZ;
	struct vfio_region_info ri;
	uint8_t *buf = NULL;
	unsigned tries;
	size_t limit;
	int rc;

	r->index = i;
	r->state = -1;
	for (tries = 0;; tries++) {
		uint8_t *nb = realloc(buf, sz);

		if (!nb) {
			free(buf);
			return verr(err, errlen, -ENOMEM,
				    "region %u: out of memory", i);
		}
		buf = nb;
		memset(buf, 0, sz);
		memset(&ri, 0, sizeof(ri));
		ri.argsz = (uint32_t)sz;
		ri.index = i;
		memcpy(buf, &ri, REGION_INFO_MINSZ);
		rc = vioctl(v->fd, VFIO_DEVICE_GET_REGION_INFO, buf);
		if (rc == -EINVAL) {
			/* no such region (VGA on a device without VGA):
			 * recorded, not an error */
			r->status = rc;
			free(buf);
			return 0;
		}
		if (rc < 0) {
			free(buf);
			return verr(err, errlen, rc,
				    "region %u: VFIO_DEVICE_GET_REGION_INFO failed: %s",
				    i, strerror(-rc));
		}
		memcpy(&ri, buf, REGION_INFO_MINSZ);
		if (!(ri.flags & VFIO_REGION_INFO_FLAG_CAPS) || ri.argsz <= sz)
			break;
		if (ri.argsz > REGION_INFO_MAX) {
			free(buf);
			return verr(err, errlen, -EPROTO,
				    "region %u: the kernel asks for %u bytes of region info (at most %u accepted)",
				    i, ri.argsz, REGION_INFO_MAX);
		}
		if (tries + 1 >= REGION_INFO_TRIES) {
			free(buf);
			return verr(err, errlen, -EPROTO,
				    "region %u: region info grew on each of %u tries (last %u bytes)",
				    i, REGION_INFO_TRIES, ri.argsz);
		}
		sz = ri.argsz;
	}
	r->flags = ri.flags;
	r->size = ri.size;
	r->offset = ri.offset;
	if (r->offset > (uint64_t)INT64_MAX ||
	    r->size > (uint64_t)INT64_MAX - r->offset) {
		free(buf);
		return verr(err, errlen, -EPROTO,
			    "region %u: offset 0x%llx size 0x%llx do not fit a file offset",
			    i, (unsigned long long)r->offset,
			    (unsigned long long)r->size);
	}
	/* only what both we and the kernel say was filled */
	limit = ri.argsz < sz ? ri.argsz : sz;
	rc = 0;
	if ((ri.flags & VFIO_REGION_INFO_FLAG_CAPS) && ri.cap_offset)
		rc = walk_caps(r, buf, limit, ri.cap_offset, err, errlen);
	free(buf);
	return rc;
}

static int find_state_regions(struct vfio_dev *v, char *err, size_t errlen)
{
	uint32_t i;

	if (!v->state_searched)
		return 0;
	for (i = 0; i < v->num_regions; i++) {
		struct vfio_region *r = &v->regions[i];
		int which;

		if (r->status || !r->has_type || r->type != v->state_type)
			continue;
		switch (r->subtype) {
		case VFIO_STATE_SUBTYPE_CTL:
			which = DEVSTATE_REGION_CTL;
			break;
		case VFIO_STATE_SUBTYPE_CONFIG:
			which = DEVSTATE_REGION_CONFIG;
			break;
		case VFIO_STATE_SUBTYPE_MEMORY:
			which = DEVSTATE_REGION_MEMORY;
			break;
		case VFIO_STATE_SUBTYPE_BITMAP:
			which = DEVSTATE_REGION_BITMAP;
			break;
		default:
			continue;
		}
		if (v->state_index[which] >= 0)
			return verr(err, errlen, -EPROTO,
				    "regions %d and %u both have type %u subtype %u (%s)",
				    v->state_index[which], i, v->state_type,
				    r->subtype, state_subtype_name(which));
		v->state_index[which] = (int)i;
		r->state = which;
	}
	return 0;
}

static int discover(struct vfio_dev *v, char *err, size_t errlen)
{
	struct vfio_device_info di;
	uint32_t i;
	int rc;

	memset(&di, 0, sizeof(di));
	di.argsz = sizeof(di);
	rc = vioctl(v->fd, VFIO_DEVICE_GET_INFO, &di);
	if (rc < 0)
		return verr(err, errlen, rc,
			    "%s: VFIO_DEVICE_GET_INFO failed: %s%s", v->name,
			    strerror(-rc),
			    rc == -ENOTTY ? " (not a VFIO device fd)" : "");
	if (di.num_regions > REGIONS_MAX)
		return verr(err, errlen, -EPROTO,
			    "%s: the device reports %u regions (at most %u accepted)",
			    v->name, di.num_regions, REGIONS_MAX);
	v->flags = di.flags;
	v->num_regions = di.num_regions;
	v->num_irqs = di.num_irqs;
	v->state_searched = !(di.flags & VFIO_DEVICE_FLAGS_CCW);
	v->regions = calloc(di.num_regions ? di.num_regions : 1,
			    sizeof(*v->regions));
	if (!v->regions)
		return verr(err, errlen, -ENOMEM, "out of memory");
	for (i = 0; i < v->num_regions; i++) {
		rc = region_info(v, i, err, errlen);
		if (rc < 0)
			return rc;
	}
	return find_state_regions(v, err, errlen);
}

/* ---------------------------------------------------------------- */
/* Container and group.                                             */

static const struct {
	const char *name;
	unsigned long type;
} iommu_types[] = {
	{ "type1v2", VFIO_TYPE1v2_IOMMU },
	{ "type1", VFIO_TYPE1_IOMMU },
	{ "noiommu", VFIO_NOIOMMU_IOMMU },
};
#define N_IOMMU_TYPES (sizeof(iommu_types) / sizeof(iommu_types[0]))

/* Pick and set the IOMMU type: the one asked for, or the first the
 * container supports (a noiommu-N group takes only no-IOMMU). */
static int set_iommu(struct vfio_dev *v, const char *want, bool noiommu_group,
		     char *err, size_t errlen)
{
	unsigned i;
	int rc;

	for (i = 0; i < N_IOMMU_TYPES; i++) {
		bool is_noiommu = iommu_types[i].type == VFIO_NOIOMMU_IOMMU;

		if (want && strcmp(want, iommu_types[i].name))
			continue;
		if (!want && is_noiommu != noiommu_group)
			continue;
		rc = vioctl_int(v->container, VFIO_CHECK_EXTENSION,
				iommu_types[i].type);
		if (rc <= 0)
			continue;
		rc = vioctl_int(v->container, VFIO_SET_IOMMU,
				iommu_types[i].type);
		if (rc < 0)
			return verr(err, errlen, rc,
				    "%s: VFIO_SET_IOMMU %s failed: %s", v->name,
				    iommu_types[i].name, strerror(-rc));
		v->iommu = iommu_types[i].name;
		return 0;
	}
	if (want)
		return verr(err, errlen, -ENODEV,
			    "%s: the VFIO container does not offer IOMMU type %s",
			    v->name, want);
	return verr(err, errlen, -ENODEV,
		    "%s: the VFIO container offers none of the IOMMU types %s (is vfio_iommu_type1 loaded?)",
		    v->name, noiommu_group ? "noiommu" : "type1v2, type1");
}

static int open_group(struct vfio_dev *v, const char *path, const char *want,
		      char *err, size_t errlen)
{
	struct vfio_group_status st;
	const char *slash = strrchr(path, '/');
	char group_path[256];
	const char *dev_name;
	size_t glen;
	int rc;

	if (!slash || slash == path || !slash[1])
		return verr(err, errlen, -EINVAL,
			    "'%s' is not /dev/vfio/GROUP/DEVICE-NAME", path);
	glen = (size_t)(slash - path);
	if (glen >= sizeof(group_path))
		return verr(err, errlen, -ENAMETOOLONG,
			    "group path in '%s' is too long", path);
	memcpy(group_path, path, glen);
	group_path[glen] = '\0';
	dev_name = slash + 1;
	if (strstr(group_path, "/vfio/devices"))
		return verr(err, errlen, -EOPNOTSUPP,
			    "'%s': iommufd device files are not supported; use /dev/vfio/GROUP/DEVICE-NAME",
			    path);
	snprintf(v->name, sizeof(v->name), "%s", dev_name);

	v->container = sys->open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0)
		return verr(err, errlen, -errno,
			    "cannot open /dev/vfio/vfio: %s (is the vfio module loaded?)",
			    strerror(errno));
	rc = vioctl(v->container, VFIO_GET_API_VERSION, NULL);
	if (rc < 0)
		return verr(err, errlen, rc,
			    "/dev/vfio/vfio: VFIO_GET_API_VERSION failed: %s",
			    strerror(-rc));
	if (rc != VFIO_API_VERSION)
		return verr(err, errlen, -EPROTO,
			    "/dev/vfio/vfio: API version %d, expected %d", rc,
			    VFIO_API_VERSION);
	v->group = sys->open(group_path, O_RDWR | O_CLOEXEC);
	if (v->group < 0)
		return verr(err, errlen, -errno, "cannot open group %s: %s%s",
			    group_path, strerror(errno),
			    errno == EBUSY ? " (another process holds it)" : "");
	memset(&st, 0, sizeof(st));
	st.argsz = sizeof(st);
	rc = vioctl(v->group, VFIO_GROUP_GET_STATUS, &st);
	if (rc < 0)
		return verr(err, errlen, rc,
			    "group %s: VFIO_GROUP_GET_STATUS failed: %s",
			    group_path, strerror(-rc));
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return verr(err, errlen, -EBUSY,
			    "group %s is not viable: bind every device in it to vfio-pci (or unbind it)",
			    group_path);
	rc = vioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container);
	if (rc < 0)
		return verr(err, errlen, rc,
			    "group %s: VFIO_GROUP_SET_CONTAINER failed: %s",
			    group_path, strerror(-rc));
	rc = set_iommu(v, want, strstr(group_path, "noiommu-") != NULL, err,
		       errlen);
	if (rc < 0)
		return rc;
	rc = vioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, (void *)dev_name);
	if (rc < 0)
		return verr(err, errlen, rc,
			    "group %s has no device '%s': %s", group_path,
			    dev_name, strerror(-rc));
	v->fd = rc;
	v->own_fd = true;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Opening and closing.                                             */

static void vfio_close(void *priv)
{
	struct vfio_dev *v = priv;
	uint32_t i, a;

	if (!v)
		return;
	for (i = 0; v->regions && i < v->num_regions; i++) {
		struct vfio_region *r = &v->regions[i];

		if (r->map)
			sys->munmap(r->map, (size_t)r->size);
		for (a = 0; a < r->nr_areas; a++)
			if (r->areas[a].map)
				sys->munmap(r->areas[a].map,
					    (size_t)r->areas[a].size);
		free(r->areas);
	}
	free(v->regions);
	if (v->data_fd >= 0)
		sys->close(v->data_fd);
	if (v->fd >= 0 && v->own_fd)
		sys->close(v->fd);
	if (v->group >= 0)
		sys->close(v->group);
	if (v->container >= 0)
		sys->close(v->container);
	free(v);
}

/* A number: decimal or 0x hex, at most max. */

#define VFIO_USAGE "vfio:/dev/vfio/GROUP/DEVICE-NAME[,type=N][,iommu=TYPE] or vfio:fd=N[,type=N]"

static int vfio_open(const char *args, void **priv, char *err, size_t errlen)
{
	char *copy, *tok, *save = NULL;
	const char *path = NULL, *iommu = NULL;
	struct vfio_dev *v;
	int fd = -1, rc;
	unsigned i;

	if (!args || !*args)
		return verr(err, errlen, -EINVAL, "no device given: %s",
			    VFIO_USAGE);
	copy = strdup(args);
	v = calloc(1, sizeof(*v));
	if (!copy || !v) {
		free(copy);
		free(v);
		return verr(err, errlen, -ENOMEM, "out of memory");
	}
	v->fd = v->group = v->container = v->data_fd = -1;
	v->iommu = "";
	v->state_type = VFIO_STATE_TYPE_DEFAULT;
	for (i = 0; i < DEVSTATE_REGION_COUNT; i++)
		v->state_index[i] = -1;

	rc = 0;
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		uint64_t n;

		if (tok[0] == '/' && !path && fd < 0) {
			path = tok;
			continue;
		}
		if (tok[0] == '/' || !eq) {
			rc = verr(err, errlen, -EINVAL,
				  "unexpected '%s' in '%s': %s", tok, args,
				  VFIO_USAGE);
			break;
		}
		*eq = '\0';
		if (!strcmp(tok, "type")) {
			if (devstate_parse_u64(eq + 1, UINT32_MAX, &n) < 0)
				rc = verr(err, errlen, -EINVAL,
					  "type=%s: expected a region type number (decimal or 0x hex)",
					  eq + 1);
			else
				v->state_type = (uint32_t)n;
		} else if (!strcmp(tok, "fd")) {
			if (path || fd >= 0)
				rc = verr(err, errlen, -EINVAL,
					  "fd=%s: give either one fd or one path",
					  eq + 1);
			else if (devstate_parse_u64(eq + 1, INT32_MAX, &n) < 0)
				rc = verr(err, errlen, -EINVAL,
					  "fd=%s: expected a file descriptor number",
					  eq + 1);
			else
				fd = (int)n;
		} else if (!strcmp(tok, "iommu")) {
			iommu = eq + 1;
			if (!strcmp(iommu, "auto"))
				iommu = NULL;
			else if (strcmp(iommu, "type1v2") &&
				 strcmp(iommu, "type1") &&
				 strcmp(iommu, "noiommu"))
				rc = verr(err, errlen, -EINVAL,
					  "iommu=%s: expected auto, type1v2, type1 or noiommu",
					  iommu);
		} else {
			rc = verr(err, errlen, -EINVAL,
				  "unknown key '%s' (keys: type, iommu, fd)",
				  tok);
		}
	}
	if (rc == 0 && !path && fd < 0)
		rc = verr(err, errlen, -EINVAL, "no device path or fd in '%s': %s",
			  args, VFIO_USAGE);
	if (rc == 0 && fd >= 0 && iommu)
		rc = verr(err, errlen, -EINVAL,
			  "iommu= needs a group path: with fd= the VMM has set up the container");
	if (rc == 0 && path) {
		rc = open_group(v, path, iommu, err, errlen);
	} else if (rc == 0) {
		v->fd = fd;
		v->own_fd = false;
		snprintf(v->name, sizeof(v->name), "fd %d", fd);
	}
	if (rc == 0)
		rc = discover(v, err, errlen);
	free(copy);
	if (rc < 0) {
		vfio_close(v);
		return rc;
	}
	*priv = v;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Region access.                                                   */

static struct vfio_region *state_region(struct vfio_dev *v,
					enum devstate_region which)
{
	if ((unsigned)which >= DEVSTATE_REGION_COUNT ||
	    v->state_index[which] < 0)
		return NULL;
	return &v->regions[v->state_index[which]];
}

static int vfio_regions(void *priv, struct devstate_regions *out, char *err,
			size_t errlen)
{
	struct vfio_dev *v = priv;
	unsigned w;

	(void)err;
	(void)errlen;
	memset(out, 0, sizeof(*out));
	for (w = 0; w < DEVSTATE_REGION_COUNT; w++) {
		const struct vfio_region *r = state_region(v, w);
		const uint32_t rwm = VFIO_REGION_INFO_FLAG_READ |
				     VFIO_REGION_INFO_FLAG_WRITE |
				     VFIO_REGION_INFO_FLAG_MMAP;

		if (!r)
			continue;
		out->present[w] = true;
		out->size[w] = r->size;
		/* the whole region in one mapping, readable and writable */
		out->mappable[w] = w != DEVSTATE_REGION_CTL &&
				   (r->flags & rwm) == rwm && !r->sparse;
	}
	return 0;
}

/* Map what the region allows, once; failures leave pread/pwrite. */
static void map_region(struct vfio_dev *v, struct vfio_region *r)
{
	uint32_t a;
	int prot = 0;

	if (r->map_tried)
		return;
	r->map_tried = true;
	if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP) || !r->size ||
	    r->size > SIZE_MAX)
		return;
	if (r->flags & VFIO_REGION_INFO_FLAG_READ)
		prot |= PROT_READ;
	if (r->flags & VFIO_REGION_INFO_FLAG_WRITE)
		prot |= PROT_WRITE;
	if (!prot)
		return;
	r->map_prot = prot;
	if (!r->sparse) {
		void *p = sys->mmap(NULL, (size_t)r->size, prot, MAP_SHARED,
				    v->fd, (off_t)r->offset);

		r->map = p == MAP_FAILED ? NULL : p;
		return;
	}
	for (a = 0; a < r->nr_areas; a++) {
		struct vfio_area *ar = &r->areas[a];
		long page = sysconf(_SC_PAGESIZE);
		void *p;

		if (!ar->size || ar->size > SIZE_MAX || page <= 0 ||
		    (r->offset + ar->offset) % (uint64_t)page)
			continue;
		p = sys->mmap(NULL, (size_t)ar->size, prot, MAP_SHARED, v->fd,
			      (off_t)(r->offset + ar->offset));
		ar->map = p == MAP_FAILED ? NULL : p;
	}
}

/* pread/pwrite len bytes at off of region r: short transfers and EINTR
 * retried, anything else reported with region and offset. */
static int rw_fd(struct vfio_dev *v, const struct vfio_region *r, bool write,
		 uint64_t off, void *buf, size_t len, char *err, size_t errlen)
{
	size_t done = 0;

	while (done < len) {
		off_t pos = (off_t)(r->offset + off + done);
		ssize_t n;

		if (write)
			n = sys->pwrite(v->fd, (const uint8_t *)buf + done,
					len - done, pos);
		else
			n = sys->pread(v->fd, (uint8_t *)buf + done,
				       len - done, pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return verr(err, errlen, -errno,
				    "region %u (%s) offset 0x%llx: %s of %zu bytes failed: %s",
				    r->index, state_subtype_name(r->state),
				    (unsigned long long)(off + done),
				    write ? "pwrite" : "pread", len - done,
				    strerror(errno));
		if (n == 0 || (size_t)n > len - done)
			return verr(err, errlen, -EIO,
				    "region %u (%s) offset 0x%llx: %s of %zu bytes moved %zd",
				    r->index, state_subtype_name(r->state),
				    (unsigned long long)(off + done),
				    write ? "pwrite" : "pread", len - done, n);
		done += (size_t)n;
	}
	return 0;
}

/* The mapped area of r holding byte off, or NULL; *next gets the start
 * of the nearest mapped area after off (r->size if none). */
static const struct vfio_area *area_at(const struct vfio_region *r,
				       uint64_t off, uint64_t *next)
{
	uint32_t a;

	*next = r->size;
	for (a = 0; a < r->nr_areas; a++) {
		const struct vfio_area *ar = &r->areas[a];

		if (!ar->map)
			continue;
		if (off >= ar->offset && off - ar->offset < ar->size)
			return ar;
		if (ar->offset > off && ar->offset < *next)
			*next = ar->offset;
	}
	return NULL;
}

static int data_rw(struct vfio_dev *v, enum devstate_region which, bool write,
		   uint64_t off, void *buf, size_t len, char *err,
		   size_t errlen)
{
	struct vfio_region *r = state_region(v, which);
	int need = write ? PROT_WRITE : PROT_READ;
	uint64_t end;

	if (!r || which == DEVSTATE_REGION_CTL)
		return verr(err, errlen, -EINVAL, "%s: no %s data region",
			    v->name, devstate_region_name(which));
	if (off > r->size || len > r->size - off)
		return verr(err, errlen, -EINVAL,
			    "region %u (%s): %zu bytes at offset 0x%llx are past the end (0x%llx bytes)",
			    r->index, state_subtype_name(r->state), len,
			    (unsigned long long)off,
			    (unsigned long long)r->size);
	map_region(v, r);
	if (!(r->map_prot & need))
		return rw_fd(v, r, write, off, buf, len, err, errlen);
	if (r->map) {
		if (write)
			memcpy((uint8_t *)r->map + off, buf, len);
		else
			memcpy(buf, (const uint8_t *)r->map + off, len);
		return 0;
	}
	/* sparse: the mapped areas by memcpy, the gaps by pread/pwrite */
	end = off + len;
	while (off < end) {
		const struct vfio_area *ar;
		uint64_t next, n;
		uint8_t *p = (uint8_t *)buf + (len - (end - off));
		int rc;

		ar = area_at(r, off, &next);
		if (ar) {
			uint8_t *m = (uint8_t *)ar->map + (off - ar->offset);

			n = ar->offset + ar->size - off;
			if (n > end - off)
				n = end - off;
			if (write)
				memcpy(m, p, (size_t)n);
			else
				memcpy(p, m, (size_t)n);
		} else {
			n = (next < end ? next : end) - off;
			rc = rw_fd(v, r, write, off, p, (size_t)n, err,
				   errlen);
			if (rc < 0)
				return rc;
		}
		off += n;
	}
	return 0;
}

static int vfio_data_read(void *priv, enum devstate_region which,
			  uint64_t off, void *buf, size_t len, char *err,
			  size_t errlen)
{
	return data_rw(priv, which, false, off, buf, len, err, errlen);
}

static int vfio_data_write(void *priv, enum devstate_region which,
			   uint64_t off, const void *buf, size_t len,
			   char *err, size_t errlen)
{
	return data_rw(priv, which, true, off, (void *)buf, len, err, errlen);
}

static int vfio_data_map(void *priv, enum devstate_region which, void **addr,
			 char *err, size_t errlen)
{
	struct vfio_dev *v = priv;
	struct vfio_region *r = state_region(v, which);

	if (!r || which == DEVSTATE_REGION_CTL)
		return verr(err, errlen, -EINVAL, "%s: no %s data region",
			    v->name, devstate_region_name(which));
	map_region(v, r);
	if (!r->map || r->map_prot != (PROT_READ | PROT_WRITE))
		return verr(err, errlen, -EOPNOTSUPP,
			    "region %u (%s) cannot be mapped whole",
			    r->index, state_subtype_name(r->state));
	*addr = r->map;
	return 0;
}

/* One control field: exactly one pread/pwrite of its width (EINTR
 * retried; a short access is -EIO, never split). */
static int ctl_rw(struct vfio_dev *v, bool write, uint32_t off, void *buf,
		  uint32_t len, char *err, size_t errlen)
{
	struct vfio_region *r = state_region(v, DEVSTATE_REGION_CTL);
	ssize_t n;

	if (!r)
		return verr(err, errlen, -EINVAL, "%s: no ctl region",
			    v->name);
	if ((uint64_t)off + len > r->size)
		return verr(err, errlen, -EINVAL,
			    "region %u (ctl) offset 0x%x: %u bytes are past the end (0x%llx bytes)",
			    r->index, off, len, (unsigned long long)r->size);
	do {
		if (write)
			n = sys->pwrite(v->fd, buf, len,
					(off_t)(r->offset + off));
		else
			n = sys->pread(v->fd, buf, len,
				       (off_t)(r->offset + off));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return verr(err, errlen, -errno,
			    "region %u (ctl) offset 0x%x: %s of %u bytes failed: %s",
			    r->index, off, write ? "pwrite" : "pread", len,
			    strerror(errno));
	if ((size_t)n != len)
		return verr(err, errlen, -EIO,
			    "region %u (ctl) offset 0x%x: %s of %u bytes moved %zd",
			    r->index, off, write ? "pwrite" : "pread", len, n);
	return 0;
}

static int vfio_ctl_read(void *priv, uint32_t off, void *buf, uint32_t len,
			 char *err, size_t errlen)
{
	return ctl_rw(priv, false, off, buf, len, err, errlen);
}

static int vfio_ctl_write(void *priv, uint32_t off, const void *buf,
			  uint32_t len, char *err, size_t errlen)
{
	return ctl_rw(priv, true, off, (void *)buf, len, err, errlen);
}

/* The regions a device has, for the "no device-state regions" blocker. */
static void vfio_describe(void *priv, char *buf, size_t len)
{
	struct vfio_dev *v = priv;
	size_t used = 0;
	uint32_t i;
	int n;

	if (!len)
		return;
	buf[0] = '\0';
	for (i = 0; i < v->num_regions && used < len; i++) {
		const struct vfio_region *r = &v->regions[i];

		if (r->status < 0 || !r->size)
			continue;
		n = snprintf(buf + used, len - used, "%s%u (0x%llx bytes%s)",
			     used ? ", " : "", r->index,
			     (unsigned long long)r->size,
			     r->has_type ? ", typed" : "");
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

/* ---------------------------------------------------------------- */
/* Protocol family 2: the kernel's migration uAPI v2.               */
/*
 * VFIO_DEVICE_FEATURE on the device fd (MIGRATION, MIG_DEVICE_STATE,
 * MIG_DATA_SIZE) and the data fd that a SET of MIG_DEVICE_STATE returns.
 * What the kernel does (drivers/vfio/vfio_main.c, 6.12): a SET answers
 * data_fd = -1 unless the driver's last step returned a file, and the
 * drivers return one only on the way into a saving state from outside
 * the group (RUNNING -> PRE_COPY, RUNNING_P2P -> PRE_COPY_P2P, STOP ->
 * STOP_COPY) and into RESUMING; PRE_COPY_P2P -> STOP_COPY answers -1 and
 * the pre-copy fd carries on with the stop-copy data.  Every arc out of
 * the saving group or out of RESUMING disables the file in the driver,
 * so the fd is closed here then too.  On a failed SET the kernel also
 * answers -1; the device may have taken part of a route, so the caller
 * re-reads the state, and the current fd is closed.
 */

/* No device's migration data is this large; a bigger count from the
 * kernel is a malformed answer. */
#define MIG2_BYTES_MAX	(UINT64_C(1) << 48)

/* A feature request: the header and a payload of at most 16 bytes,
 * aligned for the u64 payloads. */
union mig2_feature {
	struct vfio_device_feature hdr;
	uint64_t align[4];
	uint8_t bytes[sizeof(struct vfio_device_feature) + 16];
};

_Static_assert(sizeof(struct vfio_device_feature) == 8,
	       "struct vfio_device_feature is 8 bytes before its payload");
_Static_assert(sizeof(struct vfio_device_feature_mig_state) == 8,
	       "struct vfio_device_feature_mig_state is 8 bytes");
_Static_assert(sizeof(struct vfio_precopy_info) == 24,
	       "struct vfio_precopy_info is 24 bytes");

static const char *mig2_name(uint32_t state)
{
	const char *n = devstate_mig2_state_name(state);

	return n ? n : "?";
}

/* VFIO_DEVICE_FEATURE with op (GET or SET) | feature and a payload of
 * len bytes in and out of payload.  0 or -errno. */
static int mig2_feature(struct vfio_dev *v, uint32_t op, uint32_t feature,
			void *payload, size_t len)
{
	union mig2_feature f;
	int rc;

	memset(&f, 0, sizeof(f));
	f.hdr.argsz = (uint32_t)(sizeof(f.hdr) + len);
	f.hdr.flags = op | feature;
	memcpy(f.bytes + sizeof(f.hdr), payload, len);
	rc = vioctl(v->fd, VFIO_DEVICE_FEATURE, &f);
	if (rc < 0)
		return rc;
	memcpy(payload, f.bytes + sizeof(f.hdr), len);
	return 0;
}

/* The answers of a kernel or device without the feature asked for:
 * vfio_main.c answers ENOTTY without migration ops and EINVAL for an
 * operation the feature lacks; drivers' own features say EOPNOTSUPP. */
static bool mig2_unsupported(int rc)
{
	return rc == -ENOTTY || rc == -EINVAL || rc == -EOPNOTSUPP;
}

static void mig2_close_data(struct vfio_dev *v)
{
	if (v->data_fd >= 0)
		sys->close(v->data_fd);
	v->data_fd = -1;
}

static int vfio_mig2_probe(void *priv, uint64_t *flags, char *err,
			   size_t errlen)
{
	struct vfio_dev *v = priv;
	struct vfio_device_feature_migration m = { .flags = 0 };
	int rc;

	rc = mig2_feature(v, VFIO_DEVICE_FEATURE_GET,
			  VFIO_DEVICE_FEATURE_MIGRATION, &m, sizeof(m));
	if (mig2_unsupported(rc))
		return verr(err, errlen, -EOPNOTSUPP,
			    "%s: no migration uAPI v2 (VFIO_DEVICE_FEATURE GET MIGRATION: %s)",
			    v->name, strerror(-rc));
	if (rc < 0)
		return verr(err, errlen, rc,
			    "%s: VFIO_DEVICE_FEATURE GET MIGRATION failed: %s",
			    v->name, strerror(-rc));
	*flags = m.flags;
	return 0;
}

static int vfio_mig2_get_state(void *priv, uint32_t *state, char *err,
			       size_t errlen)
{
	struct vfio_dev *v = priv;
	struct vfio_device_feature_mig_state m = { .data_fd = -1 };
	int rc;

	rc = mig2_feature(v, VFIO_DEVICE_FEATURE_GET,
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));
	if (rc < 0)
		return verr(err, errlen, rc,
			    "%s: VFIO_DEVICE_FEATURE GET MIG_DEVICE_STATE failed: %s",
			    v->name, strerror(-rc));
	if (m.device_state >= DEVSTATE_MIG2_NR_STATES)
		return verr(err, errlen, -EIO,
			    "%s: VFIO_DEVICE_FEATURE GET MIG_DEVICE_STATE answered state %u, which uAPI v2 does not have",
			    v->name, m.device_state);
	*state = m.device_state;
	return 0;
}

static int vfio_mig2_set_state(void *priv, uint32_t state, char *err,
			       size_t errlen)
{
	struct vfio_dev *v = priv;
	struct vfio_device_feature_mig_state m = { .device_state = state,
						   .data_fd = -1 };
	bool had = v->data_fd >= 0;
	uint32_t from = v->data_state;
	int rc;

	if (state >= DEVSTATE_MIG2_NR_STATES) {
		mig2_close_data(v);
		return verr(err, errlen, -EINVAL,
			    "%s: SET MIG_DEVICE_STATE: %u is no uAPI v2 state",
			    v->name, state);
	}
	rc = mig2_feature(v, VFIO_DEVICE_FEATURE_SET,
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));
	if (rc < 0) {
		mig2_close_data(v);
		return verr(err, errlen, rc,
			    "%s: VFIO_DEVICE_FEATURE SET MIG_DEVICE_STATE %s failed: %s",
			    v->name, mig2_name(state), strerror(-rc));
	}
	if (m.data_fd >= 0) {
		/* A new data fd replaces the current one.  Only a saving
		 * state or RESUMING has data; the device fd or a fd the
		 * kernel cannot have given (it is ours already) is a
		 * malformed answer. */
		bool has_data = devstate_mig2_state_saving(state) ||
				state == DEVSTATE_MIG2_RESUMING;

		if (m.data_fd == v->fd || m.data_fd == v->data_fd ||
		    !has_data) {
			if (m.data_fd != v->fd && m.data_fd != v->data_fd)
				sys->close(m.data_fd);
			mig2_close_data(v);
			return verr(err, errlen, -EIO,
				    "%s: VFIO_DEVICE_FEATURE SET MIG_DEVICE_STATE %s answered data fd %d, %s",
				    v->name, mig2_name(state), m.data_fd,
				    has_data ? "a descriptor already in use" :
				    "but that state has no migration data");
		}
		mig2_close_data(v);
		v->data_fd = m.data_fd;
		v->data_state = state;
		return 0;
	}
	if (m.data_fd != -1) {
		mig2_close_data(v);
		return verr(err, errlen, -EIO,
			    "%s: VFIO_DEVICE_FEATURE SET MIG_DEVICE_STATE %s answered data fd %d",
			    v->name, mig2_name(state), m.data_fd);
	}
	/* No new fd: the current one carries on within the saving group
	 * (PRE_COPY* -> STOP_COPY) or when nothing changed; any other arc
	 * leaves its state, and the driver has disabled it. */
	if (had && !(state == from ||
		     (devstate_mig2_state_saving(from) &&
		      devstate_mig2_state_saving(state))))
		mig2_close_data(v);
	if (v->data_fd >= 0)
		v->data_state = state;
	return 0;
}

static int mig2_no_data(struct vfio_dev *v, const char *what, char *err,
			size_t errlen)
{
	return verr(err, errlen, -EBADF,
		    "%s: %s: no migration data fd (no SET MIG_DEVICE_STATE returned one, or its state was left)",
		    v->name, what);
}

static int vfio_mig2_read(void *priv, void *buf, size_t len, size_t *got,
			  char *err, size_t errlen)
{
	struct vfio_dev *v = priv;
	bool precopy;
	size_t done = 0;

	*got = 0;
	if (v->data_fd < 0)
		return mig2_no_data(v, "read", err, errlen);
	precopy = v->data_state != DEVSTATE_MIG2_STOP_COPY;
	while (done < len) {
		ssize_t n = sys->read(v->data_fd, (uint8_t *)buf + done,
				      len - done);

		if (n < 0 && errno == EINTR)
			continue;
		/* the temporary end of the pre-copy data (uAPI: ENOMSG;
		 * mtty and others: a 0-byte read) */
		if (n < 0 && errno == ENOMSG && precopy)
			break;
		if (n < 0)
			return verr(err, errlen, -errno,
				    "%s: read of %zu bytes from the %s data fd (after %zu) failed: %s",
				    v->name, len - done,
				    mig2_name(v->data_state), done,
				    errno == ENOMSG ?
				    "ENOMSG, which the uAPI forbids in stop-copy" :
				    strerror(errno));
		if ((size_t)n > len - done)
			return verr(err, errlen, -EIO,
				    "%s: read of %zu bytes from the %s data fd returned %zd",
				    v->name, len - done,
				    mig2_name(v->data_state), n);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static int vfio_mig2_write(void *priv, const void *buf, size_t len,
			   char *err, size_t errlen)
{
	struct vfio_dev *v = priv;
	size_t done = 0;

	if (v->data_fd < 0)
		return mig2_no_data(v, "write", err, errlen);
	while (done < len) {
		ssize_t n = sys->write(v->data_fd, (const uint8_t *)buf + done,
				       len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return verr(err, errlen, -errno,
				    "%s: write of %zu bytes to the %s data fd (after %zu) failed: %s",
				    v->name, len - done,
				    mig2_name(v->data_state), done,
				    strerror(errno));
		if (n == 0 || (size_t)n > len - done)
			return verr(err, errlen, -EIO,
				    "%s: write of %zu bytes to the %s data fd returned %zd",
				    v->name, len - done,
				    mig2_name(v->data_state), n);
		done += (size_t)n;
	}
	return 0;
}

static int vfio_mig2_precopy_info(void *priv, uint64_t *initial_bytes,
				  uint64_t *dirty_bytes, char *err,
				  size_t errlen)
{
	struct vfio_dev *v = priv;
	struct vfio_precopy_info info;
	int rc;

	if (v->data_fd < 0)
		return mig2_no_data(v, "VFIO_MIG_GET_PRECOPY_INFO", err,
				    errlen);
	memset(&info, 0, sizeof(info));
	info.argsz = sizeof(info);
	rc = vioctl(v->data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info);
	if (rc < 0)
		return verr(err, errlen, rc,
			    "%s: VFIO_MIG_GET_PRECOPY_INFO on the %s data fd failed: %s",
			    v->name, mig2_name(v->data_state), strerror(-rc));
	if (info.initial_bytes > MIG2_BYTES_MAX ||
	    info.dirty_bytes > MIG2_BYTES_MAX)
		return verr(err, errlen, -EIO,
			    "%s: VFIO_MIG_GET_PRECOPY_INFO answered initial %" PRIu64 " and dirty %" PRIu64 " bytes (at most %" PRIu64 " each)",
			    v->name, (uint64_t)info.initial_bytes,
			    (uint64_t)info.dirty_bytes, MIG2_BYTES_MAX);
	*initial_bytes = info.initial_bytes;
	*dirty_bytes = info.dirty_bytes;
	return 0;
}

static int vfio_mig2_data_size(void *priv, uint64_t *stop_copy_bytes,
			       char *err, size_t errlen)
{
	struct vfio_dev *v = priv;
	struct vfio_device_feature_mig_data_size d = { .stop_copy_length = 0 };
	int rc;

	rc = mig2_feature(v, VFIO_DEVICE_FEATURE_GET,
			  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &d, sizeof(d));
	if (mig2_unsupported(rc))
		return verr(err, errlen, -EOPNOTSUPP,
			    "%s: VFIO_DEVICE_FEATURE GET MIG_DATA_SIZE is not supported (%s)",
			    v->name, strerror(-rc));
	if (rc < 0)
		return verr(err, errlen, rc,
			    "%s: VFIO_DEVICE_FEATURE GET MIG_DATA_SIZE failed: %s",
			    v->name, strerror(-rc));
	if (d.stop_copy_length > MIG2_BYTES_MAX)
		return verr(err, errlen, -EIO,
			    "%s: VFIO_DEVICE_FEATURE GET MIG_DATA_SIZE answered %" PRIu64 " bytes (at most %" PRIu64 ")",
			    v->name, (uint64_t)d.stop_copy_length,
			    MIG2_BYTES_MAX);
	*stop_copy_bytes = d.stop_copy_length;
	return 0;
}

static int vfio_mig2_reset(void *priv, char *err, size_t errlen)
{
	struct vfio_dev *v = priv;
	int rc;

	mig2_close_data(v);
	rc = vioctl(v->fd, VFIO_DEVICE_RESET, NULL);
	if (rc < 0)
		return verr(err, errlen, rc,
			    "%s: VFIO_DEVICE_RESET failed: %s", v->name,
			    strerror(-rc));
	return 0;
}

const struct devstate_transport_ops devstate_vfio_ops = {
	.name = "vfio",
	.help = "vfio:/dev/vfio/GROUP/DEVICE-NAME[,type=N][,iommu=auto|type1v2|type1|noiommu] or vfio:fd=N[,type=N]",
	.open = vfio_open,
	.close = vfio_close,
	.regions = vfio_regions,
	.ctl_read = vfio_ctl_read,
	.ctl_write = vfio_ctl_write,
	.data_read = vfio_data_read,
	.data_write = vfio_data_write,
	.data_map = vfio_data_map,
	.digest = NULL,
	.describe = vfio_describe,
	.mig2_probe = vfio_mig2_probe,
	.mig2_get_state = vfio_mig2_get_state,
	.mig2_set_state = vfio_mig2_set_state,
	.mig2_read = vfio_mig2_read,
	.mig2_write = vfio_mig2_write,
	.mig2_precopy_info = vfio_mig2_precopy_info,
	.mig2_data_size = vfio_mig2_data_size,
	.mig2_reset = vfio_mig2_reset,
};

/* ---------------------------------------------------------------- */
/* Public API.                                                      */

static struct vfio_dev *vfio_of(const struct devstate_device *dev)
{
	if (!dev || dev->ops != &devstate_vfio_ops)
		return NULL;
	return dev->priv;
}

DEVSTATE_EXPORT int devstate_device_open_vfio_fd(struct devstate_device **out,
						 int fd, const char *options,
						 unsigned flags, char *errbuf,
						 size_t errlen)
{
	struct devstate_device *dev;
	struct vfio_dev *v;
	char uri[512];
	int n, rc;

	if (!out || fd < 0) {
		devstate_msg(errbuf, errlen, "vfio: no device fd given");
		return -EINVAL;
	}
	if (flags & ~(DEVSTATE_OPEN_INSPECT | DEVSTATE_OPEN_CLOSE_FD)) {
		devstate_msg(errbuf, errlen, "unknown open flags 0x%x", flags);
		return -EINVAL;
	}
	n = snprintf(uri, sizeof(uri), "vfio:fd=%d%s%s", fd,
		     options && *options ? "," : "", options ? options : "");
	if (n < 0 || (size_t)n >= sizeof(uri)) {
		devstate_msg(errbuf, errlen, "vfio: options too long");
		return -EINVAL;
	}
	rc = devstate_device_open(&dev, uri, flags & ~DEVSTATE_OPEN_CLOSE_FD,
				  errbuf, errlen);
	if (rc < 0)
		return rc;
	v = vfio_of(dev);
	if (v && (flags & DEVSTATE_OPEN_CLOSE_FD))
		v->own_fd = true;
	*out = dev;
	return 0;
}

DEVSTATE_EXPORT int devstate_device_vfio_info(const struct devstate_device *dev,
					      struct devstate_vfio_info *info)
{
	const struct vfio_dev *v = vfio_of(dev);

	if (!info)
		return -EINVAL;
	if (!v)
		return -EOPNOTSUPP;
	memset(info, 0, sizeof(*info));
	info->flags = v->flags;
	info->num_regions = v->num_regions;
	info->num_irqs = v->num_irqs;
	info->state_type = v->state_type;
	info->state_searched = v->state_searched;
	snprintf(info->iommu, sizeof(info->iommu), "%s", v->iommu);
	return 0;
}

DEVSTATE_EXPORT int
devstate_device_vfio_region(const struct devstate_device *dev, uint32_t index,
			    struct devstate_vfio_region *out)
{
	const struct vfio_dev *v = vfio_of(dev);
	const struct vfio_region *r;
	uint32_t a;

	if (!out)
		return -EINVAL;
	if (!v)
		return -EOPNOTSUPP;
	if (index >= v->num_regions)
		return -ERANGE;
	r = &v->regions[index];
	memset(out, 0, sizeof(*out));
	out->index = r->index;
	out->status = r->status;
	out->flags = r->flags;
	out->size = r->size;
	out->offset = r->offset;
	out->has_type = r->has_type;
	out->type = r->type;
	out->subtype = r->subtype;
	out->state_region = r->state;
	out->msix_mappable = r->msix_mappable;
	out->sparse = r->sparse;
	out->nr_areas = r->nr_areas;
	for (a = 0; a < r->nr_areas && a < DEVSTATE_VFIO_AREAS_MAX; a++) {
		out->areas[a].offset = r->areas[a].offset;
		out->areas[a].size = r->areas[a].size;
	}
	out->other_caps = r->other_caps;
	return 0;
}

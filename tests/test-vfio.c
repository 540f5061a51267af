/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VFIO transport against a scripted kernel.  The system-call seam
 * (transports/vfio-sys.h) is pointed at "fk", a small model of the VFIO
 * uAPI driven by tables: a device is a list of regions, each with flags,
 * a size and a capability chain (described, or given as raw bytes for the
 * malformed cases), and a backing: plain memory, or one of the regions of
 * a fake device (transports/fake.c) so that a complete save and load can
 * run through real ioctl/pread/pwrite/mmap calls.
 *
 * fk behaves as vfio-pci does: region offsets are index << 40, a region
 * info buffer too small for the chain gets argsz raised and cap_offset 0,
 * VGA answers EINVAL on a device that has none, mmap is refused outside
 * the sparse areas.  Knobs inject EINTR, short transfers and errors.
 *
 * A group may also speak the kernel's migration uAPI v2 (fk_mig2_on):
 * VFIO_DEVICE_FEATURE MIGRATION / MIG_DEVICE_STATE / MIG_DATA_SIZE, a data
 * fd returned where mtty returns one, reads scripted one answer at a time
 * (short, EINTR, ENOMSG, 0, errors, hostile counts), PRECOPY_INFO and
 * VFIO_DEVICE_RESET, as drivers/vfio/vfio_main.c and the mtty sample do.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "testutil.h"
#include "devstate.h"
#include "libdevstate/device.h"
#include "libdevstate/mig2.h"
#include "transports/fake.h"
#include "transports/transport.h"
#include "transports/vfio-sys.h"

#define FK_SHIFT	40
#define FK_MAX_GROUPS	2
#define FK_MAX_REGIONS	16
#define FK_MAX_CAPS	4
#define FK_MAX_FDS	64
#define FK_FD_BASE	1000
#define FK_PAGE		4096u
#define FK_EXT_BITS	(8 * sizeof(unsigned long))	/* of ext_mask */

#define RD	VFIO_REGION_INFO_FLAG_READ
#define WR	VFIO_REGION_INFO_FLAG_WRITE
#define MM	VFIO_REGION_INFO_FLAG_MMAP
#define RW	(RD | WR)
#define RWM	(RD | WR | MM)

#define PCI_FLAGS	(VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET)

/* ------------------------------------------------------------------ */
/* The tables.                                                         */

struct fk_area {
	uint64_t offset, size;
};

struct fk_cap {
	uint16_t id;		/* 0 ends the chain */
	uint16_t version;	/* 0 means 1 */
	uint32_t type, subtype;	/* VFIO_REGION_INFO_CAP_TYPE */
	uint32_t nr_areas;	/* VFIO_REGION_INFO_CAP_SPARSE_MMAP */
	struct fk_area areas[4];
};

enum fk_back {
	FK_MEM = 0,		/* plain bytes */
	FK_STATE_CTL,		/* the fake device's control region */
	FK_STATE_DATA,		/* one of the fake device's data regions */
};

struct fk_region {
	int err;		/* REGION_INFO fails with this errno */
	uint32_t flags;		/* READ/WRITE/MMAP; CAPS is added */
	uint64_t size;		/* FK_MEM; state regions take the fake's */
	struct fk_cap caps[FK_MAX_CAPS];
	const uint8_t *raw;	/* instead of caps: bytes from offset 32 */
	size_t raw_len;
	uint32_t raw_first;	/* cap_offset reported with raw */
	enum fk_back back;
	int state;		/* enum devstate_region for FK_STATE_DATA */
};

struct fk_device {
	const char *name;
	uint32_t flags;
	uint32_t num_irqs;
	uint32_t num_regions;
	struct fk_region regions[FK_MAX_REGIONS];
};

/* ------------------------------------------------------------------ */
/* The model.                                                          */

struct fk_group {
	const char *path;
	const struct fk_device *dev;
	void *fake;			/* devstate_fake_ops private state */
	uint8_t *mem[FK_MAX_REGIONS];
	uint64_t size[FK_MAX_REGIONS];
	unsigned info_calls[FK_MAX_REGIONS];
	int container;			/* fd, or -1 */
	/* uAPI v2 */
	bool m2;			/* answers the migration features */
	uint64_t m2_flags;
	uint32_t m2_state;
	int m2_data;			/* slot of the live data fd, or -1 */
	size_t m2_pos;			/* read position in the saved data */
	uint8_t m2_resumed[512];	/* what RESUMING received */
	size_t m2_resumed_len;
	unsigned m2_resets;
};

enum fk_kind { FK_FREE = 0, FK_CONTAINER, FK_GROUP, FK_DEVICE, FK_DATA };

/* The v2 device's data: FK_PRECOPY_LEN bytes in pre-copy, then the rest of
 * FK_SAVED_LEN in stop-copy; byte i is fk_byte(i). */
#define FK_PRECOPY_LEN	40u
#define FK_SAVED_LEN	96u
#define FK_SCRIPT_MAX	16
/* one scripted answer of a data-fd read: > 0 moves at most that many
 * bytes, FK_R_ZERO returns 0, FK_R_OVER more than was asked, a negative
 * value fails with that errno */
#define FK_R_ZERO	0
#define FK_R_OVER	100000
#define FK_R_ERR(e)	(-(e))

static uint8_t fk_byte(size_t i)
{
	return (uint8_t)(i * 31u + 7u);
}

static struct {
	struct fk_group groups[FK_MAX_GROUPS];
	unsigned ngroups;

	/* knobs */
	unsigned long ext_mask;		/* IOMMU types the container offers */
	bool not_viable;
	uint32_t argsz_grow;		/* more bytes asked on every call */
	uint32_t argsz_force;		/* ask exactly this much (0: off) */
	unsigned eintr_left;		/* fail the next N calls with EINTR */
	bool eintr_alternate;		/* every other call fails with EINTR */
	bool eintr_toggle;
	size_t short_max;		/* data transfers move at most this */
	bool ctl_short;			/* control transfers come up short */
	int fail_errno;			/* pread/pwrite of fail_region fails */
	int fail_region;
	uint64_t fail_from;		/* ... at region offsets >= this */
	bool zero_return;		/* pread/pwrite return 0 */
	bool mmap_fail;
	/* uAPI v2 knobs */
	int probe_errno;		/* GET MIGRATION fails with this */
	int set_errno;			/* the next SET fails with this */
	bool set_fd_forced;		/* the next SET answers set_fd */
	int set_fd;
	bool get_forced;		/* GET MIG_DEVICE_STATE answers get_state */
	uint32_t get_state;
	int size_errno;			/* GET MIG_DATA_SIZE fails with this */
	uint64_t size_value;		/* ... or answers this (0: the data) */
	uint64_t precopy_dirty;
	bool precopy_huge;
	bool enomsg;			/* pre-copy end is ENOMSG, not 0 */
	int script[FK_SCRIPT_MAX];	/* data-fd read answers, in order */
	unsigned script_len, script_pos;
	unsigned data_reads, data_writes, data_closes, stale_reads;

	/* file descriptors */
	enum fk_kind kind[FK_MAX_FDS];
	int grp[FK_MAX_FDS];
	unsigned long iommu[FK_MAX_FDS];	/* containers: type set */

	/* what happened */
	unsigned opens, closes, bad_closes;
	unsigned preads, pwrites, eintrs, shorts;
	unsigned maps, unmaps, bad_maps, ctl_maps, ctl_bad_width;
	unsigned map_count[FK_MAX_REGIONS];
	uint64_t rw_bytes[FK_MAX_REGIONS];
} fk;

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static int fk_new_fd(enum fk_kind kind, int group)
{
	int i;

	for (i = 0; i < FK_MAX_FDS; i++) {
		if (fk.kind[i] == FK_FREE) {
			fk.kind[i] = kind;
			fk.grp[i] = group;
			fk.iommu[i] = 0;
			fk.opens++;
			return FK_FD_BASE + i;
		}
	}
	errno = EMFILE;
	return -1;
}

static int fk_slot(int fd, enum fk_kind kind)
{
	int i = fd - FK_FD_BASE;

	if (i < 0 || i >= FK_MAX_FDS || fk.kind[i] != kind)
		return -1;
	return i;
}

static struct fk_group *fk_dev_of(int fd)
{
	int i = fk_slot(fd, FK_DEVICE);

	return i < 0 ? NULL : &fk.groups[fk.grp[i]];
}

static bool fk_eintr(void)
{
	if (fk.eintr_left) {
		fk.eintr_left--;
		fk.eintrs++;
		errno = EINTR;
		return true;
	}
	if (fk.eintr_alternate) {
		fk.eintr_toggle = !fk.eintr_toggle;
		if (fk.eintr_toggle) {
			fk.eintrs++;
			errno = EINTR;
			return true;
		}
	}
	return false;
}

static int fk_fail(int e)
{
	errno = e;
	return -1;
}

/* Lay the described capabilities out as vfio_info_add_capability does:
 * 8-byte aligned, in order, from offset 32. */
static size_t fk_chain(const struct fk_region *r, uint8_t *blob,
		       uint32_t *first)
{
	uint8_t *prev_next = NULL;
	size_t pos = 0, len;
	unsigned i, a;

	if (r->raw) {
		memcpy(blob, r->raw, r->raw_len);
		*first = r->raw_first;
		return r->raw_len;
	}
	for (i = 0; i < FK_MAX_CAPS && r->caps[i].id; i++) {
		const struct fk_cap *c = &r->caps[i];
		uint8_t *p = blob + pos;

		if (prev_next)
			put32(prev_next, (uint32_t)(32 + pos));
		else
			*first = (uint32_t)(32 + pos);
		put16(p, c->id);
		put16(p + 2, c->version ? c->version : 1);
		put32(p + 4, 0);
		prev_next = p + 4;
		switch (c->id) {
		case VFIO_REGION_INFO_CAP_TYPE:
			put32(p + 8, c->type);
			put32(p + 12, c->subtype);
			len = 16;
			break;
		case VFIO_REGION_INFO_CAP_SPARSE_MMAP:
			put32(p + 8, c->nr_areas);
			put32(p + 12, 0);
			for (a = 0; a < c->nr_areas; a++) {
				put64(p + 16 + 16 * a, c->areas[a].offset);
				put64(p + 24 + 16 * a, c->areas[a].size);
			}
			len = 16 + 16 * (size_t)c->nr_areas;
			break;
		default:
			len = 8;
			break;
		}
		pos += (len + 7) & ~(size_t)7;
	}
	return pos;
}

static const struct fk_cap *fk_sparse(const struct fk_region *r)
{
	unsigned i;

	for (i = 0; i < FK_MAX_CAPS && r->caps[i].id; i++)
		if (r->caps[i].id == VFIO_REGION_INFO_CAP_SPARSE_MMAP)
			return &r->caps[i];
	return NULL;
}

static int fk_region_info(struct fk_group *g, void *arg)
{
	struct vfio_region_info ri;
	const struct fk_region *r;
	uint8_t blob[2048];
	uint32_t first = 0, argsz;
	size_t blen;

	memcpy(&ri, arg, sizeof(ri));
	argsz = ri.argsz;
	if (argsz < sizeof(ri) || ri.index >= g->dev->num_regions)
		return fk_fail(EINVAL);
	g->info_calls[ri.index]++;
	r = &g->dev->regions[ri.index];
	if (r->err)
		return fk_fail(r->err);
	memset(blob, 0, sizeof(blob));
	blen = fk_chain(r, blob, &first);
	ri.flags = r->flags;
	ri.size = g->size[ri.index];
	ri.offset = (uint64_t)ri.index << FK_SHIFT;
	ri.cap_offset = 0;
	if (blen) {
		uint32_t need = (uint32_t)(sizeof(ri) + blen) +
				fk.argsz_grow * g->info_calls[ri.index];

		if (fk.argsz_force)
			need = fk.argsz_force;
		ri.flags |= VFIO_REGION_INFO_FLAG_CAPS;
		if (argsz < need) {
			ri.argsz = need;
		} else {
			memcpy((uint8_t *)arg + sizeof(ri), blob, blen);
			ri.cap_offset = first;
		}
	}
	memcpy(arg, &ri, sizeof(ri));
	return 0;
}

/* ---- uAPI v2 ---- */

/* The driver disables its file on every arc out of its state (the fd
 * stays open in the process; reads then fail with ENODEV). */
static void fk_m2_disable(struct fk_group *g)
{
	g->m2_data = -1;
	g->m2_pos = 0;
}

static bool fk_m2_saving(uint32_t s)
{
	return s == DEVSTATE_MIG2_STOP_COPY || s == DEVSTATE_MIG2_PRE_COPY ||
	       s == DEVSTATE_MIG2_PRE_COPY_P2P;
}

/* One SET as the kernel + mtty answer it: the route is not modelled (the
 * transport does not route), only where a data fd comes back. */
static int fk_set_state(struct fk_group *g, struct vfio_device_feature_mig_state *m)
{
	uint32_t cur = g->m2_state, to = m->device_state;
	int fd = -1;

	m->data_fd = -1;
	if (fk.set_errno) {
		int e = fk.set_errno;

		fk.set_errno = 0;
		fk_m2_disable(g);
		g->m2_state = DEVSTATE_MIG2_ERROR;
		return fk_fail(e);
	}
	if (to >= DEVSTATE_MIG2_NR_STATES || to == DEVSTATE_MIG2_ERROR ||
	    !devstate_mig2_state_valid(g->m2_flags, to))
		return fk_fail(EINVAL);
	if (cur != to) {
		bool into_saving = !fk_m2_saving(cur) && fk_m2_saving(to);
		bool into_resuming = to == DEVSTATE_MIG2_RESUMING;
		bool stays = fk_m2_saving(cur) && fk_m2_saving(to);

		if (!stays)
			fk_m2_disable(g);
		if (into_saving || into_resuming) {
			fd = fk_new_fd(FK_DATA, (int)(g - fk.groups));
			if (fd < 0)
				return -1;
			g->m2_data = fd - FK_FD_BASE;
			g->m2_pos = 0;
			g->m2_resumed_len = 0;
		}
		g->m2_state = to;
	}
	m->data_fd = fd;
	if (fk.set_fd_forced) {
		/* the answer replaced: the fd the model made never existed */
		fk.set_fd_forced = false;
		m->data_fd = fk.set_fd;
		if (fd >= 0 && fd != fk.set_fd)
			fk.kind[fd - FK_FD_BASE] = FK_FREE;
	}
	return 0;
}

static int fk_feature(struct fk_group *g, void *arg)
{
	struct vfio_device_feature hdr;
	uint8_t *payload = (uint8_t *)arg + sizeof(hdr);
	uint32_t op, feat;

	memcpy(&hdr, arg, sizeof(hdr));
	op = hdr.flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET);
	feat = hdr.flags & VFIO_DEVICE_FEATURE_MASK;
	if (!g->m2)
		return fk_fail(ENOTTY);
	if (op != VFIO_DEVICE_FEATURE_GET && op != VFIO_DEVICE_FEATURE_SET)
		return fk_fail(EINVAL);
	if (feat == VFIO_DEVICE_FEATURE_MIGRATION) {
		struct vfio_device_feature_migration m = { .flags = g->m2_flags };

		if (fk.probe_errno)
			return fk_fail(fk.probe_errno);
		if (op != VFIO_DEVICE_FEATURE_GET ||
		    hdr.argsz < sizeof(hdr) + sizeof(m))
			return fk_fail(EINVAL);
		memcpy(payload, &m, sizeof(m));
		return 0;
	}
	if (feat == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) {
		struct vfio_device_feature_mig_state m;

		if (hdr.argsz < sizeof(hdr) + sizeof(m))
			return fk_fail(EINVAL);
		memcpy(&m, payload, sizeof(m));
		if (op == VFIO_DEVICE_FEATURE_GET) {
			m.device_state = fk.get_forced ? fk.get_state :
							 g->m2_state;
			m.data_fd = -1;
			memcpy(payload, &m, sizeof(m));
			return 0;
		}
		if (fk_set_state(g, &m) < 0) {
			int e = errno;

			m.data_fd = -1;
			memcpy(payload, &m, sizeof(m));
			return fk_fail(e);
		}
		memcpy(payload, &m, sizeof(m));
		return 0;
	}
	if (feat == VFIO_DEVICE_FEATURE_MIG_DATA_SIZE) {
		struct vfio_device_feature_mig_data_size d;

		if (fk.size_errno)
			return fk_fail(fk.size_errno);
		if (op != VFIO_DEVICE_FEATURE_GET ||
		    hdr.argsz < sizeof(hdr) + sizeof(d))
			return fk_fail(EINVAL);
		d.stop_copy_length = fk.size_value ? fk.size_value :
						     FK_SAVED_LEN;
		memcpy(payload, &d, sizeof(d));
		return 0;
	}
	return fk_fail(ENOTTY);
}

/* The saved data a read can reach now: the pre-copy part in PRE_COPY*,
 * all of it in STOP_COPY. */
static size_t fk_m2_avail(const struct fk_group *g)
{
	size_t end = g->m2_state == DEVSTATE_MIG2_STOP_COPY ? FK_SAVED_LEN :
							     FK_PRECOPY_LEN;

	return g->m2_pos < end ? end - g->m2_pos : 0;
}

static int fk_precopy_info(struct fk_group *g, int slot, void *arg)
{
	struct vfio_precopy_info info;

	memcpy(&info, arg, sizeof(info));
	if (info.argsz < sizeof(info))
		return fk_fail(EINVAL);
	if (g->m2_data != slot)
		return fk_fail(ENODEV);
	if (g->m2_state != DEVSTATE_MIG2_PRE_COPY &&
	    g->m2_state != DEVSTATE_MIG2_PRE_COPY_P2P)
		return fk_fail(EINVAL);
	info.initial_bytes = fk.precopy_huge ? UINT64_MAX : fk_m2_avail(g);
	info.dirty_bytes = fk.precopy_dirty;
	memcpy(arg, &info, sizeof(info));
	return 0;
}

static ssize_t fk_read(int fd, void *buf, size_t len)
{
	int slot = fk_slot(fd, FK_DATA);
	struct fk_group *g;
	size_t n, i;

	if (slot < 0)
		return fk_fail(EBADF);
	fk.data_reads++;
	if (fk_eintr())
		return -1;
	g = &fk.groups[fk.grp[slot]];
	if (g->m2_data != slot) {
		fk.stale_reads++;
		return fk_fail(ENODEV);
	}
	n = fk_m2_avail(g);
	if (fk.script_pos < fk.script_len) {
		int a = fk.script[fk.script_pos++];

		if (a == FK_R_OVER)
			return (ssize_t)len + 1;
		if (a < 0)
			return fk_fail(-a);
		if (a == FK_R_ZERO)
			return 0;
		if ((size_t)a < n)
			n = (size_t)a;
	}
	if (n > len)
		n = len;
	if (fk.short_max && n > fk.short_max) {
		n = fk.short_max;
		fk.shorts++;
	}
	if (!n && fk.enomsg && g->m2_state != DEVSTATE_MIG2_STOP_COPY)
		return fk_fail(ENOMSG);
	for (i = 0; i < n; i++)
		((uint8_t *)buf)[i] = fk_byte(g->m2_pos + i);
	g->m2_pos += n;
	return (ssize_t)n;
}

static ssize_t fk_write(int fd, const void *buf, size_t len)
{
	int slot = fk_slot(fd, FK_DATA);
	struct fk_group *g;
	size_t n = len;

	if (slot < 0)
		return fk_fail(EBADF);
	fk.data_writes++;
	if (fk_eintr())
		return -1;
	g = &fk.groups[fk.grp[slot]];
	if (g->m2_data != slot || g->m2_state != DEVSTATE_MIG2_RESUMING)
		return fk_fail(ENODEV);
	if (fk.zero_return)
		return 0;
	if (fk.short_max && n > fk.short_max) {
		n = fk.short_max;
		fk.shorts++;
	}
	if (g->m2_resumed_len == sizeof(g->m2_resumed))
		return fk_fail(ENOMEM);
	if (n > sizeof(g->m2_resumed) - g->m2_resumed_len)
		n = sizeof(g->m2_resumed) - g->m2_resumed_len;
	memcpy(g->m2_resumed + g->m2_resumed_len, buf, n);
	g->m2_resumed_len += n;
	return (ssize_t)n;
}

static int fk_ioctl(int fd, unsigned long req, void *arg)
{
	int slot = fd - FK_FD_BASE;
	struct fk_group *g;

	if (fk_eintr())
		return -1;
	if (slot < 0 || slot >= FK_MAX_FDS || fk.kind[slot] == FK_FREE)
		return fk_fail(EBADF);
	switch (fk.kind[slot]) {
	case FK_CONTAINER:
		if (req == VFIO_GET_API_VERSION)
			return VFIO_API_VERSION;
		return fk_fail(ENOTTY);
	case FK_GROUP:
		g = &fk.groups[fk.grp[slot]];
		if (req == VFIO_GROUP_GET_STATUS) {
			struct vfio_group_status st;

			memcpy(&st, arg, sizeof(st));
			if (st.argsz < sizeof(st))
				return fk_fail(EINVAL);
			st.flags = fk.not_viable ? 0 : VFIO_GROUP_FLAGS_VIABLE;
			if (g->container >= 0)
				st.flags |= VFIO_GROUP_FLAGS_CONTAINER_SET;
			memcpy(arg, &st, sizeof(st));
			return 0;
		}
		if (req == VFIO_GROUP_SET_CONTAINER) {
			int c;

			memcpy(&c, arg, sizeof(c));
			if (fk_slot(c, FK_CONTAINER) < 0 || g->container >= 0)
				return fk_fail(EINVAL);
			g->container = c;
			return 0;
		}
		if (req == VFIO_GROUP_GET_DEVICE_FD) {
			if (g->container < 0 ||
			    !fk.iommu[g->container - FK_FD_BASE])
				return fk_fail(EINVAL);
			if (strcmp(arg, g->dev->name))
				return fk_fail(ENODEV);
			return fk_new_fd(FK_DEVICE, fk.grp[slot]);
		}
		return fk_fail(ENOTTY);
	case FK_DEVICE:
		g = &fk.groups[fk.grp[slot]];
		if (req == VFIO_DEVICE_GET_INFO) {
			struct vfio_device_info di;

			memcpy(&di, arg, sizeof(di));
			if (di.argsz < 16)
				return fk_fail(EINVAL);
			di.flags = g->dev->flags;
			di.num_regions = g->dev->num_regions;
			di.num_irqs = g->dev->num_irqs;
			di.cap_offset = 0;
			memcpy(arg, &di, sizeof(di));
			return 0;
		}
		if (req == VFIO_DEVICE_GET_REGION_INFO)
			return fk_region_info(g, arg);
		if (req == VFIO_DEVICE_FEATURE)
			return fk_feature(g, arg);
		if (req == VFIO_DEVICE_RESET && g->m2) {
			fk_m2_disable(g);
			g->m2_state = DEVSTATE_MIG2_RUNNING;
			g->m2_resets++;
			return 0;
		}
		return fk_fail(ENOTTY);
	case FK_DATA:
		g = &fk.groups[fk.grp[slot]];
		if (req == VFIO_MIG_GET_PRECOPY_INFO)
			return fk_precopy_info(g, slot, arg);
		return fk_fail(ENOTTY);
	default:
		return fk_fail(EBADF);
	}
}

static int fk_ioctl_int(int fd, unsigned long req, unsigned long arg)
{
	int slot = fk_slot(fd, FK_CONTAINER), g;
	bool attached = false;

	if (fk_eintr())
		return -1;
	if (slot < 0)
		return fk_fail(fd >= FK_FD_BASE ? ENOTTY : EBADF);
	if (req == VFIO_CHECK_EXTENSION)
		return arg < FK_EXT_BITS && ((fk.ext_mask >> arg) & 1);
	if (req == VFIO_SET_IOMMU) {
		for (g = 0; g < (int)fk.ngroups; g++)
			attached |= fk.groups[g].container == fd;
		if (!attached || fk.iommu[slot] || arg >= FK_EXT_BITS ||
		    !((fk.ext_mask >> arg) & 1))
			return fk_fail(EINVAL);
		fk.iommu[slot] = arg;
		return 0;
	}
	return fk_fail(ENOTTY);
}

static int fk_open(const char *path, int flags)
{
	unsigned g;

	if ((flags & O_ACCMODE) != O_RDWR)
		return fk_fail(EACCES);
	if (!strcmp(path, "/dev/vfio/vfio"))
		return fk_new_fd(FK_CONTAINER, -1);
	for (g = 0; g < fk.ngroups; g++)
		if (!strcmp(path, fk.groups[g].path))
			return fk_new_fd(FK_GROUP, (int)g);
	return fk_fail(ENOENT);
}

static int fk_close(int fd)
{
	int slot = fd - FK_FD_BASE;
	unsigned g;

	if (slot < 0 || slot >= FK_MAX_FDS || fk.kind[slot] == FK_FREE) {
		fk.bad_closes++;
		return fk_fail(EBADF);
	}
	if (fk.kind[slot] == FK_GROUP)
		fk.groups[fk.grp[slot]].container = -1;
	if (fk.kind[slot] == FK_DATA)
		fk.data_closes++;
	if (fk.kind[slot] == FK_CONTAINER)
		for (g = 0; g < fk.ngroups; g++)
			if (fk.groups[g].container == fd)
				fk.groups[g].container = -1;
	fk.kind[slot] = FK_FREE;
	fk.closes++;
	return 0;
}

/* Decode a device fd offset into group, region and offset within. */
static const struct fk_region *fk_at(int fd, off_t off, struct fk_group **gp,
				     unsigned *idx, uint64_t *roff)
{
	struct fk_group *g = fk_dev_of(fd);
	uint64_t i = (uint64_t)off >> FK_SHIFT;

	if (!g || off < 0 || i >= g->dev->num_regions ||
	    g->dev->regions[i].err)
		return NULL;
	*gp = g;
	*idx = (unsigned)i;
	*roff = (uint64_t)off & ((1ull << FK_SHIFT) - 1);
	return &g->dev->regions[i];
}

static ssize_t fk_rw(int fd, void *buf, size_t len, off_t off, bool write)
{
	const struct fk_region *r;
	struct fk_group *g;
	char err[DEVSTATE_ERR_MAX];
	uint64_t roff;
	unsigned idx;
	size_t n = len;
	int rc;

	if (fk_eintr())
		return -1;
	r = fk_at(fd, off, &g, &idx, &roff);
	if (!r || !(r->flags & (write ? WR : RD)))
		return fk_fail(EINVAL);
	if (fk.fail_errno && fk.fail_region == (int)idx &&
	    roff >= fk.fail_from)
		return fk_fail(fk.fail_errno);
	if (fk.zero_return)
		return 0;
	if (roff > g->size[idx] || len > g->size[idx] - roff)
		return fk_fail(EINVAL);
	if (r->back == FK_STATE_CTL) {
		if (len != 4 && len != 8) {
			fk.ctl_bad_width++;
			return fk_fail(EINVAL);
		}
		if (write)
			rc = devstate_fake_ops.ctl_write(g->fake, (uint32_t)roff,
							 buf, (uint32_t)len,
							 err, sizeof(err));
		else
			rc = devstate_fake_ops.ctl_read(g->fake, (uint32_t)roff,
							buf, (uint32_t)len, err,
							sizeof(err));
		if (rc < 0)
			return fk_fail(-rc);
		return fk.ctl_short ? (ssize_t)len - 1 : (ssize_t)len;
	}
	if (fk.short_max && n > fk.short_max) {
		n = fk.short_max;
		fk.shorts++;
	}
	if (r->back == FK_STATE_DATA) {
		if (write)
			rc = devstate_fake_ops.data_write(g->fake,
							  (enum devstate_region)r->state,
							  roff, buf, n, err,
							  sizeof(err));
		else
			rc = devstate_fake_ops.data_read(g->fake,
							 (enum devstate_region)r->state,
							 roff, buf, n, err,
							 sizeof(err));
		if (rc < 0)
			return fk_fail(-rc);
	} else if (write) {
		memcpy(g->mem[idx] + roff, buf, n);
	} else {
		memcpy(buf, g->mem[idx] + roff, n);
	}
	fk.rw_bytes[idx] += n;
	return (ssize_t)n;
}

static ssize_t fk_pread(int fd, void *buf, size_t len, off_t off)
{
	fk.preads++;
	return fk_rw(fd, buf, len, off, false);
}

static ssize_t fk_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	fk.pwrites++;
	return fk_rw(fd, (void *)buf, len, off, true);
}

static void *fk_mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	const struct fk_region *r;
	const struct fk_cap *sp;
	struct fk_group *g;
	uint64_t roff;
	unsigned idx, a;
	uint8_t *base;
	bool inside;

	(void)addr;
	(void)prot;
	fk.maps++;
	if (fk.mmap_fail) {
		errno = ENODEV;
		return MAP_FAILED;
	}
	r = fk_at(fd, off, &g, &idx, &roff);
	if (!r || !(flags & MAP_SHARED) || !(r->flags & MM) ||
	    roff % FK_PAGE || roff > g->size[idx] ||
	    len > g->size[idx] - roff) {
		fk.bad_maps++;
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (r->back == FK_STATE_CTL) {
		fk.ctl_maps++;
		errno = EINVAL;
		return MAP_FAILED;
	}
	sp = fk_sparse(r);
	if (sp) {
		inside = false;
		for (a = 0; a < sp->nr_areas; a++)
			inside |= roff >= sp->areas[a].offset &&
				  roff + len <= sp->areas[a].offset +
						sp->areas[a].size;
		if (!inside) {
			fk.bad_maps++;
			errno = EINVAL;
			return MAP_FAILED;
		}
	}
	if (r->back == FK_STATE_DATA) {
		void *p = NULL;
		char err[DEVSTATE_ERR_MAX];

		if (devstate_fake_ops.data_map(g->fake,
					       (enum devstate_region)r->state,
					       &p, err, sizeof(err)) < 0) {
			errno = ENODEV;
			return MAP_FAILED;
		}
		base = p;
	} else {
		base = g->mem[idx];
	}
	fk.map_count[idx]++;
	return base + roff;
}

static int fk_munmap(void *addr, size_t len)
{
	(void)addr;
	(void)len;
	fk.unmaps++;
	return 0;
}

static const struct devstate_vfio_sys fk_sys = {
	.open = fk_open,
	.close = fk_close,
	.ioctl = fk_ioctl,
	.pread = fk_pread,
	.pwrite = fk_pwrite,
	.mmap = fk_mmap,
	.munmap = fk_munmap,
	.ioctl_int = fk_ioctl_int,
	.read = fk_read,
	.write = fk_write,
};

/* Set up a group holding dev; fake_args (or NULL) opens the fake device
 * behind its state regions. */
static struct fk_group *fk_add(const char *path, const struct fk_device *dev,
			       const char *fake_args)
{
	struct fk_group *g = &fk.groups[fk.ngroups++];
	struct devstate_regions fr;
	char err[DEVSTATE_ERR_MAX];
	unsigned i;

	ck_assert_uint_le(fk.ngroups, FK_MAX_GROUPS);
	g->path = path;
	g->dev = dev;
	g->container = -1;
	g->m2_data = -1;
	memset(&fr, 0, sizeof(fr));
	if (fake_args) {
		ck_assert_msg(devstate_fake_ops.open(fake_args, &g->fake, err,
						     sizeof(err)) == 0,
			      "fake: %s", err);
		ck_assert_int_eq(devstate_fake_ops.regions(g->fake, &fr, err,
							   sizeof(err)), 0);
	}
	for (i = 0; i < dev->num_regions && i < FK_MAX_REGIONS; i++) {
		const struct fk_region *r = &dev->regions[i];

		if (r->back == FK_STATE_CTL) {
			g->size[i] = fr.size[DEVSTATE_REGION_CTL];
		} else if (r->back == FK_STATE_DATA) {
			g->size[i] = fr.size[r->state];
		} else {
			g->size[i] = r->size;
			if (r->size)
				g->mem[i] = calloc(1, (size_t)r->size);
		}
	}
	return g;
}

/* A device fd as if the VMM had obtained it. */
static int fk_device_fd(unsigned group)
{
	return fk_new_fd(FK_DEVICE, (int)group);
}

static void fk_reset(void)
{
	unsigned g, i;

	for (g = 0; g < fk.ngroups; g++) {
		for (i = 0; i < FK_MAX_REGIONS; i++)
			free(fk.groups[g].mem[i]);
		if (fk.groups[g].fake)
			devstate_fake_ops.close(fk.groups[g].fake);
	}
	memset(&fk, 0, sizeof(fk));
	fk.ext_mask = (1ul << VFIO_TYPE1_IOMMU) | (1ul << VFIO_TYPE1v2_IOMMU);
	devstate_vfio_set_sys(&fk_sys);
}

static void setup(void)
{
	memset(&fk, 0, sizeof(fk));
	fk_reset();
}

static void teardown(void)
{
	fk_reset();
	devstate_vfio_set_sys(NULL);
}

static unsigned fk_open_fds(void)
{
	unsigned i, n = 0;

	for (i = 0; i < FK_MAX_FDS; i++)
		n += fk.kind[i] != FK_FREE;
	return n;
}

/* ------------------------------------------------------------------ */
/* Device tables.                                                      */

/* QEMU's edu device behind vfio-pci: BAR0 1 MiB mmappable, a PCIe
 * config space, no VGA. */
static const struct fk_device dev_edu = {
	.name = "0000:00:05.0",
	.flags = PCI_FLAGS,
	.num_irqs = 5,
	.num_regions = 9,
	.regions = {
		[0] = { .flags = RWM, .size = 1 << 20 },
		[7] = { .flags = RW, .size = 4096 },
		[8] = { .err = EINVAL },
	},
};

/* e1000e: BAR3 holds the MSI-X table, mmappable with MSIX_MAPPABLE, so
 * its info needs a second call with a larger argsz. */
static const struct fk_device dev_e1000e = {
	.name = "0000:00:04.0",
	.flags = PCI_FLAGS,
	.num_irqs = 5,
	.num_regions = 9,
	.regions = {
		[0] = { .flags = RWM, .size = 128 << 10 },
		[1] = { .flags = RWM, .size = 128 << 10 },
		[2] = { .flags = RW, .size = 32 },
		[3] = { .flags = RWM, .size = 16 << 10,
			.caps = { { .id = VFIO_REGION_INFO_CAP_MSIX_MAPPABLE } } },
		[6] = { .flags = RD, .size = 256 << 10 },
		[7] = { .flags = RW, .size = 4096 },
		[8] = { .err = EINVAL },
	},
};

#define TYPE_CAP(t, s) { .id = VFIO_REGION_INFO_CAP_TYPE, .type = (t), .subtype = (s) }

/* A device with the device-state regions, backed by a fake device:
 * CTL read/write only; CONFIG read/write only (pread path); MEMORY with a
 * sparse mmap cap whose areas leave gaps (mapped areas + pread gaps);
 * BITMAP mappable whole. */
static const struct fk_device dev_state = {
	.name = "0000:00:06.0",
	.flags = PCI_FLAGS,
	.num_irqs = 5,
	.num_regions = 13,
	.regions = {
		[0] = { .flags = RWM, .size = 64 << 10 },
		[7] = { .flags = RW, .size = 4096 },
		[8] = { .err = EINVAL },
		[9] = { .flags = RW, .back = FK_STATE_CTL,
			.caps = { TYPE_CAP(2, 1) } },
		[10] = { .flags = RW, .back = FK_STATE_DATA,
			 .state = DEVSTATE_REGION_CONFIG,
			 .caps = { TYPE_CAP(2, 2) } },
		[11] = { .flags = RWM, .back = FK_STATE_DATA,
			 .state = DEVSTATE_REGION_MEMORY,
			 .caps = { { .id = VFIO_REGION_INFO_CAP_SPARSE_MMAP,
				     .nr_areas = 3,
				     .areas = { { 0, 64 << 10 },
						{ 192 << 10, 64 << 10 },
						{ 100, 4096 } } },
				   { .id = 77 },
				   TYPE_CAP(2, 3) } },
		[12] = { .flags = RWM, .back = FK_STATE_DATA,
			 .state = DEVSTATE_REGION_BITMAP,
			 .caps = { TYPE_CAP(2, 4) } },
	},
};

#define FAKE_SRC "version=2,memory=1M,chunk=256K,config=8K,bitmap=512,sysmem=16M,seed=7,workload=4"
#define FAKE_DST "version=2,memory=1M,chunk=256K,config=8K,bitmap=512,sysmem=16M,zero=yes"

/* The same regions as a CCW device would have them: type 2 is
 * VFIO_REGION_TYPE_CCW there (ASYNC_CMD=1, SCHIB=2, CRW=3). */
static const struct fk_device dev_ccw = {
	.name = "0.0.1234",
	.flags = VFIO_DEVICE_FLAGS_CCW | VFIO_DEVICE_FLAGS_RESET,
	.num_irqs = 3,
	.num_regions = 4,
	.regions = {
		[0] = { .flags = RW, .size = 256 },
		[1] = { .flags = RW, .size = 80, .caps = { TYPE_CAP(2, 1) } },
		[2] = { .flags = RD, .size = 256, .caps = { TYPE_CAP(2, 2) } },
		[3] = { .flags = RD, .size = 16, .caps = { TYPE_CAP(2, 3) } },
	},
};

/* dev_state's layout under a vendor type. */
#define VENDOR_TYPE 0x80001234u
static const struct fk_device dev_vendor = {
	.name = "0000:00:08.0",
	.flags = PCI_FLAGS,
	.num_irqs = 1,
	.num_regions = 12,
	.regions = {
		[7] = { .flags = RW, .size = 256 },
		[8] = { .err = EINVAL },
		[9] = { .flags = RW, .back = FK_STATE_CTL,
			.caps = { TYPE_CAP(VENDOR_TYPE, 1) } },
		[10] = { .flags = RWM, .back = FK_STATE_DATA,
			 .state = DEVSTATE_REGION_CONFIG,
			 .caps = { TYPE_CAP(VENDOR_TYPE, 2) } },
		[11] = { .flags = RWM, .back = FK_STATE_DATA,
			 .state = DEVSTATE_REGION_MEMORY,
			 .caps = { TYPE_CAP(VENDOR_TYPE, 3) } },
	},
};

/* ------------------------------------------------------------------ */
/* Helpers.                                                            */

#define ck_assert_has(haystack, needle) \
	ck_assert_msg(strstr((haystack), (needle)) != NULL, \
		      "'%s' does not contain '%s'", (haystack), (needle))

static struct devstate_device *open_ok(const char *uri, unsigned flags)
{
	struct devstate_device *dev = NULL;
	char err[512] = "";
	int rc;

	rc = devstate_device_open(&dev, uri, flags, err, sizeof(err));
	ck_assert_msg(rc == 0, "open %s: %d %s", uri, rc, err);
	return dev;
}

static int open_err(const char *uri, unsigned flags, char *err, size_t len)
{
	struct devstate_device *dev = NULL;
	int rc;

	err[0] = '\0';
	rc = devstate_device_open(&dev, uri, flags, err, len);
	ck_assert_int_lt(rc, 0);
	ck_assert_ptr_null(dev);
	return rc;
}

static struct devstate_vfio_region region(struct devstate_device *dev,
					  uint32_t i)
{
	struct devstate_vfio_region r;

	ck_assert_int_eq(devstate_device_vfio_region(dev, i, &r), 0);
	ck_assert_uint_eq(r.index, i);
	return r;
}

/* ------------------------------------------------------------------ */
/* Opening: group, container, IOMMU types, fds.                         */

START_TEST(test_open_group_type1v2)
{
	struct devstate_device *dev;
	struct devstate_vfio_info info;
	struct devstate_vfio_region r;
	const char *reason;
	char err[512];
	unsigned i;

	fk_add("/dev/vfio/5", &dev_edu, NULL);
	dev = open_ok("vfio:/dev/vfio/5/0000:00:05.0", DEVSTATE_OPEN_INSPECT);
	ck_assert_str_eq(devstate_device_transport(dev), "vfio");
	ck_assert_uint_eq(fk_open_fds(), 3);	/* container, group, device */
	ck_assert_uint_eq(fk.iommu[0], VFIO_TYPE1v2_IOMMU);

	ck_assert_int_eq(devstate_device_vfio_info(dev, &info), 0);
	ck_assert_uint_eq(info.flags, PCI_FLAGS);
	ck_assert_uint_eq(info.num_regions, 9);
	ck_assert_uint_eq(info.num_irqs, 5);
	ck_assert_uint_eq(info.state_type, 2);
	ck_assert_int_eq(info.state_searched, 1);
	ck_assert_str_eq(info.iommu, "type1v2");

	r = region(dev, 0);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(r.flags, RWM);
	ck_assert_uint_eq(r.size, 1 << 20);
	ck_assert_uint_eq(r.offset, 0);
	ck_assert_int_eq(r.has_type, 0);
	ck_assert_int_eq(r.state_region, -1);
	ck_assert_int_eq(r.sparse, 0);
	for (i = 1; i <= 6; i++) {
		r = region(dev, i);
		ck_assert_int_eq(r.status, 0);
		ck_assert_uint_eq(r.size, 0);
		ck_assert_uint_eq(r.offset, (uint64_t)i << FK_SHIFT);
	}
	r = region(dev, 7);
	ck_assert_uint_eq(r.size, 4096);
	ck_assert_uint_eq(r.flags, RW);
	/* VGA on a device without VGA: EINVAL, recorded, not an error */
	r = region(dev, 8);
	ck_assert_int_eq(r.status, -EINVAL);
	ck_assert_uint_eq(r.size, 0);
	ck_assert_int_eq(devstate_device_vfio_region(dev, 9, &r), -ERANGE);

	ck_assert_int_eq(devstate_device_blocker(dev, &reason),
			 DEVSTATE_BLOCKER_NO_STATE_REGIONS);
	ck_assert_has(reason, "no device-state regions");
	/* ... and it says which regions the device does have */
	ck_assert_has(reason, "its regions: 0 (0x");
	ck_assert_has(reason, ", 7 (0x1000 bytes)");
	ck_assert_int_eq(devstate_device_set_state(dev, 1), -EOPNOTSUPP);
	devstate_device_free(dev);
	ck_assert_uint_eq(fk_open_fds(), 0);
	ck_assert_uint_eq(fk.bad_closes, 0);
	ck_assert_uint_eq(fk.closes, 3);

	/* without INSPECT the blocker fails the open, and nothing leaks */
	ck_assert_int_eq(open_err("vfio:/dev/vfio/5/0000:00:05.0", 0, err,
				  sizeof(err)), -EOPNOTSUPP);
	ck_assert_has(err, "no device-state regions");
	ck_assert_has(err, "its regions:");
	ck_assert_uint_eq(fk_open_fds(), 0);
}
END_TEST

START_TEST(test_iommu_types)
{
	static const struct {
		unsigned long mask;
		const char *group, *uri_tail;
		const char *expect;	/* NULL: open fails */
		unsigned long type;
	} cases[] = {
		{ 1ul << VFIO_TYPE1v2_IOMMU | 1ul << VFIO_TYPE1_IOMMU,
		  "/dev/vfio/5", "", "type1v2", VFIO_TYPE1v2_IOMMU },
		{ 1ul << VFIO_TYPE1_IOMMU, "/dev/vfio/5", "", "type1",
		  VFIO_TYPE1_IOMMU },
		{ 1ul << VFIO_TYPE1v2_IOMMU | 1ul << VFIO_TYPE1_IOMMU,
		  "/dev/vfio/5", ",iommu=type1", "type1", VFIO_TYPE1_IOMMU },
		{ 1ul << VFIO_NOIOMMU_IOMMU, "/dev/vfio/noiommu-0", "",
		  "noiommu", VFIO_NOIOMMU_IOMMU },
		/* a noiommu group never gets type1, a normal one never noiommu */
		{ 1ul << VFIO_TYPE1v2_IOMMU, "/dev/vfio/noiommu-0", "", NULL, 0 },
		{ 1ul << VFIO_NOIOMMU_IOMMU, "/dev/vfio/5", "", NULL, 0 },
		{ 0, "/dev/vfio/5", "", NULL, 0 },
		{ 1ul << VFIO_TYPE1_IOMMU, "/dev/vfio/5", ",iommu=type1v2",
		  NULL, 0 },
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct devstate_vfio_info info;
		struct devstate_device *dev;
		char uri[128], err[512];

		fk_reset();
		fk.ext_mask = cases[i].mask;
		fk_add(cases[i].group, &dev_edu, NULL);
		snprintf(uri, sizeof(uri), "vfio:%s/0000:00:05.0%s",
			 cases[i].group, cases[i].uri_tail);
		if (!cases[i].expect) {
			ck_assert_int_eq(open_err(uri, DEVSTATE_OPEN_INSPECT,
						  err, sizeof(err)), -ENODEV);
			ck_assert_has(err, "IOMMU type");
			ck_assert_uint_eq(fk_open_fds(), 0);
			continue;
		}
		dev = open_ok(uri, DEVSTATE_OPEN_INSPECT);
		ck_assert_int_eq(devstate_device_vfio_info(dev, &info), 0);
		ck_assert_str_eq(info.iommu, cases[i].expect);
		ck_assert_uint_eq(fk.iommu[0], cases[i].type);
		devstate_device_free(dev);
		ck_assert_uint_eq(fk_open_fds(), 0);
	}
}
END_TEST

START_TEST(test_open_errors)
{
	static const struct {
		const char *uri;
		int rc;
		const char *msg;
	} cases[] = {
		{ "vfio:", -EINVAL, "no device given" },
		{ "vfio:type=3", -EINVAL, "no device path or fd" },
		{ "vfio:/dev/vfio/5/0000:00:05.0,bogus=1", -EINVAL, "unknown key 'bogus'" },
		{ "vfio:/dev/vfio/5/0000:00:05.0,type=x", -EINVAL, "type=x" },
		{ "vfio:/dev/vfio/5/0000:00:05.0,type=0x100000000", -EINVAL, "type=" },
		{ "vfio:/dev/vfio/5/0000:00:05.0,iommu=spapr", -EINVAL, "iommu=spapr" },
		{ "vfio:/dev/vfio/5/0000:00:05.0,/dev/vfio/6/x", -EINVAL, "unexpected" },
		{ "vfio:/dev/vfio/5/0000:00:05.0,fd=3", -EINVAL, "either one fd or one path" },
		{ "vfio:fd=3,iommu=type1", -EINVAL, "iommu= needs a group path" },
		{ "vfio:fd=-1", -EINVAL, "fd=-1" },
		{ "vfio:/dev/vfio/5/", -EINVAL, "is not /dev/vfio/GROUP/DEVICE-NAME" },
		{ "vfio:/dev/vfio/devices/vfio0", -EOPNOTSUPP, "iommufd" },
		{ "vfio:/dev/vfio/9/0000:00:05.0", -ENOENT, "cannot open group /dev/vfio/9" },
		{ "vfio:/dev/vfio/5/0000:00:07.0", -ENODEV, "group /dev/vfio/5 has no device '0000:00:07.0'" },
		{ "vfio:fd=999", -EBADF, "fd 999: VFIO_DEVICE_GET_INFO failed" },
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512];

		fk_reset();
		fk_add("/dev/vfio/5", &dev_edu, NULL);
		ck_assert_msg(open_err(cases[i].uri, DEVSTATE_OPEN_INSPECT, err,
				       sizeof(err)) == cases[i].rc,
			      "%s: %s", cases[i].uri, err);
		ck_assert_has(err, cases[i].msg);
		ck_assert_uint_eq(fk_open_fds(), 0);
		ck_assert_uint_eq(fk.bad_closes, 0);
	}

	/* a group with a device still bound elsewhere is not viable */
	{
		char err[512];

		fk_reset();
		fk.not_viable = true;
		fk_add("/dev/vfio/5", &dev_edu, NULL);
		ck_assert_int_eq(open_err("vfio:/dev/vfio/5/0000:00:05.0",
					  DEVSTATE_OPEN_INSPECT, err,
					  sizeof(err)), -EBUSY);
		ck_assert_has(err, "not viable");
		ck_assert_uint_eq(fk_open_fds(), 0);
	}
}
END_TEST

START_TEST(test_borrowed_fd)
{
	struct devstate_vfio_info info;
	struct devstate_device *dev = NULL;
	char err[512], uri[64];
	int fd;

	fk_add("/dev/vfio/5", &dev_edu, NULL);
	fd = fk_device_fd(0);

	/* borrowed: never closed */
	ck_assert_int_eq(devstate_device_open_vfio_fd(&dev, fd, NULL,
						      DEVSTATE_OPEN_INSPECT,
						      err, sizeof(err)), 0);
	ck_assert_int_eq(devstate_device_vfio_info(dev, &info), 0);
	ck_assert_str_eq(info.iommu, "");
	ck_assert_uint_eq(info.num_regions, 9);
	ck_assert_uint_eq(fk_open_fds(), 1);
	devstate_device_free(dev);
	ck_assert_uint_eq(fk.closes, 0);
	ck_assert_uint_eq(fk_open_fds(), 1);

	/* the same through a device string */
	snprintf(uri, sizeof(uri), "vfio:fd=%d", fd);
	dev = open_ok(uri, DEVSTATE_OPEN_INSPECT);
	devstate_device_free(dev);
	ck_assert_uint_eq(fk.closes, 0);

	/* a failed open never closes it, even when asked to */
	dev = NULL;
	ck_assert_int_eq(devstate_device_open_vfio_fd(&dev, fd, "bogus=1",
						      DEVSTATE_OPEN_INSPECT |
						      DEVSTATE_OPEN_CLOSE_FD,
						      err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(dev);
	ck_assert_has(err, "bogus");
	ck_assert_int_eq(devstate_device_open_vfio_fd(&dev, fd, NULL,
						      DEVSTATE_OPEN_CLOSE_FD,
						      err, sizeof(err)),
			 -EOPNOTSUPP);
	ck_assert_has(err, "no device-state regions");
	ck_assert_int_eq(devstate_device_open_vfio_fd(&dev, fd, NULL, 1u << 7,
						      err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(devstate_device_open_vfio_fd(&dev, -1, NULL, 0, err,
						      sizeof(err)), -EINVAL);
	ck_assert_uint_eq(fk.closes, 0);

	/* handed over: closed once, at free */
	ck_assert_int_eq(devstate_device_open_vfio_fd(&dev, fd, "type=2",
						      DEVSTATE_OPEN_INSPECT |
						      DEVSTATE_OPEN_CLOSE_FD,
						      err, sizeof(err)), 0);
	ck_assert_uint_eq(fk.closes, 0);
	devstate_device_free(dev);
	ck_assert_uint_eq(fk.closes, 1);
	ck_assert_uint_eq(fk.bad_closes, 0);
	ck_assert_uint_eq(fk_open_fds(), 0);

	/* not a VFIO device: the VFIO functions say so */
	dev = open_ok("fake:", 0);
	ck_assert_int_eq(devstate_device_vfio_info(dev, &info), -EOPNOTSUPP);
	{
		struct devstate_vfio_region r;

		ck_assert_int_eq(devstate_device_vfio_region(dev, 0, &r),
				 -EOPNOTSUPP);
	}
	devstate_device_free(dev);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Region discovery and the capability chain.                           */

START_TEST(test_argsz_retry_msix)
{
	struct devstate_vfio_region r;
	struct devstate_device *dev;
	unsigned i;

	fk_add("/dev/vfio/3", &dev_e1000e, NULL);
	dev = open_ok("vfio:/dev/vfio/3/0000:00:04.0", DEVSTATE_OPEN_INSPECT);
	/* one call per region, two for the one with a chain */
	for (i = 0; i < 9; i++)
		ck_assert_uint_eq(fk.groups[0].info_calls[i], i == 3 ? 2 : 1);
	r = region(dev, 3);
	ck_assert_uint_eq(r.flags, RWM | VFIO_REGION_INFO_FLAG_CAPS);
	ck_assert_int_eq(r.msix_mappable, 1);
	ck_assert_int_eq(r.has_type, 0);
	ck_assert_int_eq(r.sparse, 0);
	ck_assert_uint_eq(r.other_caps, 0);
	ck_assert_uint_eq(r.size, 16 << 10);
	r = region(dev, 2);
	ck_assert_uint_eq(r.flags, RW);
	ck_assert_uint_eq(r.size, 32);
	r = region(dev, 6);
	ck_assert_uint_eq(r.flags, RD);
	ck_assert_uint_eq(r.size, 256 << 10);
	ck_assert_int_eq(region(dev, 0).msix_mappable, 0);
	devstate_device_free(dev);
	ck_assert_uint_eq(fk_open_fds(), 0);
}
END_TEST

START_TEST(test_caps_type_sparse)
{
	struct devstate_vfio_region r;
	struct devstate_device *dev;
	const char *reason;

	fk_add("/dev/vfio/6", &dev_state, FAKE_SRC);
	dev = open_ok("vfio:/dev/vfio/6/0000:00:06.0", 0);
	ck_assert_int_eq(devstate_device_blocker(dev, &reason),
			 DEVSTATE_BLOCKER_NONE);
	ck_assert_uint_eq(devstate_device_version(dev), 2);
	ck_assert_uint_eq(devstate_device_caps(dev), DEVSTATE_CAP_ALL);

	r = region(dev, 9);
	ck_assert_int_eq(r.has_type, 1);
	ck_assert_uint_eq(r.type, 2);
	ck_assert_uint_eq(r.subtype, 1);
	ck_assert_int_eq(r.state_region, DEVSTATE_REGION_CTL);
	ck_assert_uint_eq(r.size, 80);	/* version 2 layout */
	ck_assert_int_eq(region(dev, 10).state_region, DEVSTATE_REGION_CONFIG);
	ck_assert_int_eq(region(dev, 12).state_region, DEVSTATE_REGION_BITMAP);

	r = region(dev, 11);
	ck_assert_int_eq(r.state_region, DEVSTATE_REGION_MEMORY);
	ck_assert_uint_eq(r.subtype, 3);
	ck_assert_int_eq(r.sparse, 1);
	ck_assert_uint_eq(r.nr_areas, 3);
	ck_assert_uint_eq(r.areas[0].offset, 0);
	ck_assert_uint_eq(r.areas[0].size, 64 << 10);
	ck_assert_uint_eq(r.areas[1].offset, 192 << 10);
	ck_assert_uint_eq(r.areas[1].size, 64 << 10);
	ck_assert_uint_eq(r.areas[2].offset, 100);
	ck_assert_uint_eq(r.other_caps, 1);	/* id 77 skipped */
	ck_assert_uint_eq(r.size, 256 << 10);

	/* the public region view: sparse and read/write-only regions are not
	 * mappable whole, the bitmap is */
	{
		struct devstate_region_info ri;

		devstate_device_region(dev, DEVSTATE_REGION_CTL, &ri);
		ck_assert(ri.present && !ri.mappable && ri.size == 80);
		devstate_device_region(dev, DEVSTATE_REGION_CONFIG, &ri);
		ck_assert(ri.present && !ri.mappable && ri.size == 8192);
		devstate_device_region(dev, DEVSTATE_REGION_MEMORY, &ri);
		ck_assert(ri.present && !ri.mappable);
		devstate_device_region(dev, DEVSTATE_REGION_BITMAP, &ri);
		ck_assert(ri.present && ri.mappable && ri.size == 512);
	}
	devstate_device_free(dev);
	ck_assert_uint_eq(fk_open_fds(), 0);
	ck_assert_uint_eq(fk.maps - fk.bad_maps, fk.unmaps);
	ck_assert_uint_eq(fk.ctl_maps, 0);
}
END_TEST

START_TEST(test_argsz_limits)
{
	char err[512];

	/* the kernel asks for more on every call */
	fk_add("/dev/vfio/3", &dev_e1000e, NULL);
	fk.argsz_grow = 8;
	ck_assert_int_eq(open_err("vfio:/dev/vfio/3/0000:00:04.0",
				  DEVSTATE_OPEN_INSPECT, err, sizeof(err)),
			 -EPROTO);
	ck_assert_has(err, "region 3: region info grew on each of 4 tries");
	ck_assert_uint_eq(fk.groups[0].info_calls[3], 4);
	ck_assert_uint_eq(fk_open_fds(), 0);

	/* an absurd size is refused, not allocated */
	fk_reset();
	fk_add("/dev/vfio/3", &dev_e1000e, NULL);
	fk.argsz_force = 1u << 30;
	ck_assert_int_eq(open_err("vfio:/dev/vfio/3/0000:00:04.0",
				  DEVSTATE_OPEN_INSPECT, err, sizeof(err)),
			 -EPROTO);
	ck_assert_has(err, "region 3: the kernel asks for 1073741824 bytes");
	ck_assert_uint_eq(fk_open_fds(), 0);

	/* a larger argsz than needed is fine */
	fk_reset();
	fk_add("/dev/vfio/3", &dev_e1000e, NULL);
	fk.argsz_force = 200;
	{
		struct devstate_device *dev;

		dev = open_ok("vfio:/dev/vfio/3/0000:00:04.0",
			      DEVSTATE_OPEN_INSPECT);
		ck_assert_int_eq(region(dev, 3).msix_mappable, 1);
		devstate_device_free(dev);
	}
}
END_TEST

/* Malformed chains, as raw bytes from offset 32 of the region info. */
struct bad_chain {
	const char *name;
	uint8_t raw[96];
	size_t len;
	uint32_t first;
	int rc;
	const char *msg;
};

#define HDR(id, next) (id) & 0xff, (id) >> 8, 1, 0, (next) & 0xff, ((next) >> 8) & 0xff, 0, 0
#define U32(v) (v) & 0xff, ((v) >> 8) & 0xff, ((v) >> 16) & 0xff, (uint8_t)((v) >> 24)
#define U64(v) U32((uint32_t)(v)), U32((uint32_t)((uint64_t)(v) >> 32))

static const struct bad_chain bad_chains[] = {
	{ "first offset past the end", { HDR(2, 0), U32(2), U32(1) }, 16, 4096,
	  -EPROTO, "region 9: capability at offset 4096 is outside the 48-byte region info" },
	{ "first offset inside the fixed part", { HDR(2, 0), U32(2), U32(1) }, 16, 8,
	  -EPROTO, "capability at offset 8 is outside the 48-byte region info (inside the fixed part)" },
	{ "next offset past the end", { HDR(3, 200) }, 8, 32,
	  -EPROTO, "capability at offset 200 is outside" },
	{ "header truncated at the end", { HDR(3, 44), 0, 0, 0, 0 }, 16, 32,
	  -EPROTO, "capability at offset 44 is outside the 48-byte region info (its header runs past the end)" },
	{ "self loop", { HDR(3, 32) }, 8, 32,
	  -ELOOP, "region 9: capability chain loops back to offset 32" },
	{ "loop of two", { HDR(3, 40), HDR(77, 32) }, 16, 32,
	  -ELOOP, "loops back to offset 32" },
	{ "loop into the middle", { HDR(3, 40), HDR(77, 48), HDR(78, 40) }, 24, 32,
	  -ELOOP, "loops back to offset 40" },
	{ "type cap truncated", { HDR(3, 40), HDR(2, 0), U32(2) }, 20, 32,
	  -EPROTO, "type capability at offset 40 is truncated (12 of 16 bytes)" },
	{ "sparse cap truncated", { HDR(1, 0), U32(1) }, 12, 32,
	  -EPROTO, "sparse mmap capability at offset 32 is truncated" },
	{ "sparse with too many areas", { HDR(1, 0), U32(3), U32(0), U64(0), U64(4096) }, 32, 32,
	  -EPROTO, "has 3 areas, more than the region info holds" },
	{ "sparse with a huge count", { HDR(1, 0), U32(0xffffffffu), U32(0), U64(0), U64(4096) }, 32, 32,
	  -EPROTO, "has 4294967295 areas" },
	{ "sparse area outside the region", { HDR(1, 0), U32(1), U32(0), U64(4096), U64(0xfffffffffffff000ull) }, 32, 32,
	  -EPROTO, "sparse mmap area 0 (offset 0x1000, size 0xfffffffffffff000) lies outside the 0x2000-byte region" },
	{ "two type caps", { HDR(2, 48), U32(2), U32(1), HDR(2, 0), U32(2), U32(2) }, 32, 32,
	  -EPROTO, "second type capability at offset 48" },
};

START_TEST(test_bad_chain)
{
	const struct bad_chain *bc = &bad_chains[_i];
	struct fk_device d = {
		.name = "0000:00:09.0",
		.flags = PCI_FLAGS,
		.num_regions = 10,
		.regions = {
			[0] = { .flags = RWM, .size = 4096 },
			[9] = { .flags = RWM, .size = 8192 },
		},
	};
	char err[512];

	d.regions[9].raw = bc->raw;
	d.regions[9].raw_len = bc->len;
	d.regions[9].raw_first = bc->first;
	fk_add("/dev/vfio/5", &d, NULL);
	ck_assert_msg(open_err("vfio:/dev/vfio/5/0000:00:09.0",
			       DEVSTATE_OPEN_INSPECT, err, sizeof(err)) ==
		      bc->rc, "%s: %s", bc->name, err);
	ck_assert_has(err, bc->msg);
	ck_assert_uint_eq(fk_open_fds(), 0);
	ck_assert_uint_eq(fk.bad_closes, 0);
}
END_TEST

START_TEST(test_good_raw_chain)
{
	/* a chain in reverse order, with a gap and an unknown id: legal */
	static const uint8_t raw[] = {
		HDR(77, 0), 0, 0, 0, 0, 0, 0, 0, 0,		/* 32 */
		HDR(2, 32), U32(7), U32(9),			/* 48 */
	};
	struct fk_device d = {
		.name = "0000:00:09.0",
		.flags = PCI_FLAGS,
		.num_regions = 1,
		.regions = { [0] = { .flags = RW, .size = 64, .raw = raw,
				     .raw_len = sizeof(raw), .raw_first = 48 } },
	};
	struct devstate_device *dev;
	struct devstate_vfio_region r;

	fk_add("/dev/vfio/5", &d, NULL);
	dev = open_ok("vfio:/dev/vfio/5/0000:00:09.0", DEVSTATE_OPEN_INSPECT);
	r = region(dev, 0);
	ck_assert_int_eq(r.has_type, 1);
	ck_assert_uint_eq(r.type, 7);
	ck_assert_uint_eq(r.subtype, 9);
	ck_assert_uint_eq(r.other_caps, 1);
	ck_assert_int_eq(r.state_region, -1);
	devstate_device_free(dev);
}
END_TEST

START_TEST(test_ccw_collision)
{
	struct devstate_vfio_info info;
	struct devstate_vfio_region r;
	struct devstate_device *dev;
	const char *reason;
	unsigned i;

	fk_add("/dev/vfio/2", &dev_ccw, NULL);
	dev = open_ok("vfio:/dev/vfio/2/0.0.1234", DEVSTATE_OPEN_INSPECT);
	ck_assert_int_eq(devstate_device_vfio_info(dev, &info), 0);
	ck_assert_int_eq(info.state_searched, 0);
	for (i = 1; i <= 3; i++) {
		r = region(dev, i);
		ck_assert_int_eq(r.has_type, 1);
		ck_assert_uint_eq(r.type, 2);	/* VFIO_REGION_TYPE_CCW */
		ck_assert_uint_eq(r.subtype, i);
		ck_assert_int_eq(r.state_region, -1);
	}
	ck_assert_int_eq(devstate_device_blocker(dev, &reason),
			 DEVSTATE_BLOCKER_NO_STATE_REGIONS);
	devstate_device_free(dev);

	/* not even when the type is given explicitly */
	dev = open_ok("vfio:/dev/vfio/2/0.0.1234,type=2", DEVSTATE_OPEN_INSPECT);
	ck_assert_int_eq(devstate_device_blocker(dev, NULL),
			 DEVSTATE_BLOCKER_NO_STATE_REGIONS);
	devstate_device_free(dev);

	/* the same regions on a PCI device are device-state regions (and
	 * too few of them) */
	fk_reset();
	{
		struct fk_device pci = dev_ccw;

		pci.flags = PCI_FLAGS;
		pci.name = "0000:00:02.0";
		fk_add("/dev/vfio/2", &pci, NULL);
		dev = open_ok("vfio:/dev/vfio/2/0000:00:02.0",
			      DEVSTATE_OPEN_INSPECT);
		ck_assert_int_eq(region(dev, 1).state_region,
				 DEVSTATE_REGION_CTL);
		ck_assert_int_eq(region(dev, 2).state_region,
				 DEVSTATE_REGION_CONFIG);
		ck_assert_int_eq(region(dev, 3).state_region,
				 DEVSTATE_REGION_MEMORY);
		ck_assert_int_ne(devstate_device_blocker(dev, NULL),
				 DEVSTATE_BLOCKER_NO_STATE_REGIONS);
		devstate_device_free(dev);
	}
}
END_TEST

START_TEST(test_type_override)
{
	struct devstate_vfio_info info;
	struct devstate_device *dev;

	fk_add("/dev/vfio/8", &dev_vendor,
	       "version=1,caps=device-memory,memory=64K,chunk=16K,config=4K");
	dev = open_ok("vfio:/dev/vfio/8/0000:00:08.0", DEVSTATE_OPEN_INSPECT);
	ck_assert_int_eq(devstate_device_blocker(dev, NULL),
			 DEVSTATE_BLOCKER_NO_STATE_REGIONS);
	ck_assert_int_eq(region(dev, 9).state_region, -1);
	devstate_device_free(dev);

	dev = open_ok("vfio:/dev/vfio/8/0000:00:08.0,type=0x80001234", 0);
	ck_assert_int_eq(devstate_device_vfio_info(dev, &info), 0);
	ck_assert_uint_eq(info.state_type, VENDOR_TYPE);
	ck_assert_int_eq(devstate_device_blocker(dev, NULL),
			 DEVSTATE_BLOCKER_NONE);
	ck_assert_uint_eq(devstate_device_version(dev), 1);
	ck_assert_uint_eq(devstate_device_caps(dev), DEVSTATE_CAP_DEVICE_MEMORY);
	ck_assert_int_eq(region(dev, 11).state_region, DEVSTATE_REGION_MEMORY);
	devstate_device_free(dev);

	/* decimal works too */
	dev = open_ok("vfio:/dev/vfio/8/0000:00:08.0,type=2147488308", 0);
	devstate_device_free(dev);
	ck_assert_uint_eq(fk_open_fds(), 0);
}
END_TEST

START_TEST(test_duplicate_state_region)
{
	struct fk_device d = dev_ccw;
	char err[512];

	d.flags = PCI_FLAGS;
	d.name = "0000:00:02.0";
	d.regions[3].caps[0].subtype = 1;	/* a second CTL */
	fk_add("/dev/vfio/2", &d, NULL);
	ck_assert_int_eq(open_err("vfio:/dev/vfio/2/0000:00:02.0",
				  DEVSTATE_OPEN_INSPECT, err, sizeof(err)),
			 -EPROTO);
	ck_assert_has(err, "regions 1 and 3 both have type 2 subtype 1 (ctl)");
	ck_assert_uint_eq(fk_open_fds(), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Access: control fields, data, errors.                                */

START_TEST(test_ctl_access)
{
	struct devstate_device *dev;
	uint64_t size;
	char err[512];

	fk_add("/dev/vfio/6", &dev_state, FAKE_SRC);
	/* EINTR on every other call, open included */
	fk.eintr_alternate = true;
	dev = open_ok("vfio:/dev/vfio/6/0000:00:06.0", 0);
	ck_assert_int_eq(devstate_device_config_size(dev, &size), 0);
	ck_assert_uint_eq(size, 8192);
	ck_assert_int_eq(devstate_device_set_state(dev, DEVSTATE_STATE_STOP), 0);
	ck_assert_uint_gt(fk.eintrs, 10);
	fk.eintr_alternate = false;
	ck_assert_uint_eq(fk.ctl_bad_width, 0);

	/* a short control access is an error, never split */
	fk.ctl_short = true;
	ck_assert_int_eq(devstate_device_config_size(dev, &size), -EIO);
	ck_assert_has(devstate_device_error(dev),
		      "region 9 (ctl) offset 0x18: pread of 8 bytes moved 7");
	fk.ctl_short = false;

	/* other errors name region and offset */
	fk.fail_errno = EIO;
	fk.fail_region = 9;
	ck_assert_int_eq(devstate_device_set_state(dev, DEVSTATE_STATE_RUNNING),
			 -EIO);
	ck_assert_has(devstate_device_error(dev),
		      "region 9 (ctl) offset 0x4: pwrite of 4 bytes failed");
	ck_assert_uint_eq(devstate_device_state(dev), DEVSTATE_STATE_STOP);
	fk.fail_errno = 0;
	devstate_device_free(dev);

	/* the version read at open fails: an io blocker, with the place */
	fk.fail_errno = ENXIO;
	fk.fail_region = 9;
	dev = open_ok("vfio:/dev/vfio/6/0000:00:06.0", DEVSTATE_OPEN_INSPECT);
	ck_assert_int_eq(devstate_device_blocker(dev, NULL),
			 DEVSTATE_BLOCKER_IO);
	devstate_device_free(dev);
	ck_assert_int_eq(open_err("vfio:/dev/vfio/6/0000:00:06.0", 0, err,
				  sizeof(err)), -EOPNOTSUPP);
	ck_assert_has(err, "region 9 (ctl) offset 0x0: pread of 4 bytes failed");
	ck_assert_uint_eq(fk_open_fds(), 0);
	ck_assert_uint_eq(fk.ctl_maps, 0);
}
END_TEST

/* Read a data region straight through the transport. */
static int raw_read(struct devstate_device *dev, enum devstate_region r,
		    uint64_t off, void *buf, size_t len)
{
	dev->err[0] = '\0';
	return dev->ops->data_read(dev->priv, r, off, buf, len, dev->err,
				   sizeof(dev->err));
}

static int raw_write(struct devstate_device *dev, enum devstate_region r,
		     uint64_t off, const void *buf, size_t len)
{
	dev->err[0] = '\0';
	return dev->ops->data_write(dev->priv, r, off, buf, len, dev->err,
				    sizeof(dev->err));
}

START_TEST(test_sparse_access)
{
	struct devstate_device *dev;
	uint8_t *want, *got;
	const size_t len = 256 << 10;
	size_t i;
	void *map = NULL;

	fk_add("/dev/vfio/6", &dev_state, FAKE_SRC);
	dev = open_ok("vfio:/dev/vfio/6/0000:00:06.0", 0);
	want = malloc(len);
	got = malloc(len);
	for (i = 0; i < len; i++)
		want[i] = (uint8_t)(i * 7 + 3);

	/* the memory region: areas 0 and 1 mapped, area 2 is not page
	 * aligned (pread/pwrite), everything else is a gap */
	ck_assert_int_eq(raw_write(dev, DEVSTATE_REGION_MEMORY, 0, want, len), 0);
	ck_assert_uint_eq(fk.map_count[11], 2);
	ck_assert_uint_eq(fk.bad_maps, 0);
	ck_assert_uint_eq(fk.rw_bytes[11], len - (128 << 10));
	memset(got, 0, len);
	ck_assert_int_eq(raw_read(dev, DEVSTATE_REGION_MEMORY, 0, got, len), 0);
	ck_assert_mem_eq(got, want, len);
	ck_assert_uint_eq(fk.rw_bytes[11], 2 * (len - (128 << 10)));
	/* across a boundary: gap -> area -> gap */
	memset(got, 0, len);
	ck_assert_int_eq(raw_read(dev, DEVSTATE_REGION_MEMORY, (64 << 10) - 5,
				  got, (128 << 10) + 10), 0);
	ck_assert_mem_eq(got, want + (64 << 10) - 5, (128 << 10) + 10);
	ck_assert_int_eq(raw_read(dev, DEVSTATE_REGION_MEMORY, (192 << 10) - 3,
				  got, 6), 0);
	ck_assert_mem_eq(got, want + (192 << 10) - 3, 6);
	/* past the end */
	ck_assert_int_eq(raw_read(dev, DEVSTATE_REGION_MEMORY, len - 1, got, 2),
			 -EINVAL);
	ck_assert_has(dev->err, "region 11 (memory): 2 bytes at offset 0x3ffff are past the end");
	/* the whole region cannot be handed out as one map */
	ck_assert_int_eq(dev->ops->data_map(dev->priv, DEVSTATE_REGION_MEMORY,
					    &map, dev->err, sizeof(dev->err)),
			 -EOPNOTSUPP);
	/* the config region has no mmap: pread/pwrite only */
	ck_assert_int_eq(raw_read(dev, DEVSTATE_REGION_CONFIG, 0, got, 8192), 0);
	ck_assert_uint_eq(fk.map_count[10], 0);
	ck_assert_uint_eq(fk.rw_bytes[10], 8192);
	/* the bitmap region is mapped whole, by the device layer */
	ck_assert_uint_eq(fk.map_count[12], 1);
	ck_assert_ptr_nonnull(devstate_dev_map(dev, DEVSTATE_REGION_BITMAP));
	ck_assert_ptr_null(devstate_dev_map(dev, DEVSTATE_REGION_MEMORY));
	ck_assert_ptr_null(devstate_dev_map(dev, DEVSTATE_REGION_CONFIG));
	free(want);
	free(got);
	devstate_device_free(dev);
	ck_assert_uint_eq(fk.maps - fk.bad_maps, fk.unmaps);
	ck_assert_uint_eq(fk_open_fds(), 0);
}
END_TEST

START_TEST(test_data_retry_and_errors)
{
	struct devstate_device *dev;
	uint8_t buf[8192], ref[8192];

	fk_add("/dev/vfio/6", &dev_state, FAKE_SRC);
	dev = open_ok("vfio:/dev/vfio/6/0000:00:06.0", 0);
	ck_assert_int_eq(raw_read(dev, DEVSTATE_REGION_CONFIG, 0, ref,
				  sizeof(ref)), 0);

	/* short transfers and EINTR are retried to the end */
	fk.short_max = 100;
	fk.eintr_alternate = true;
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(raw_read(dev, DEVSTATE_REGION_CONFIG, 0, buf,
				  sizeof(buf)), 0);
	ck_assert_mem_eq(buf, ref, sizeof(buf));
	ck_assert_uint_ge(fk.shorts, sizeof(buf) / 100);
	ck_assert_uint_ge(fk.eintrs, sizeof(buf) / 100);
	fk.short_max = 0;
	fk.eintr_alternate = false;

	/* an error names the region and the offset it happened at */
	fk.fail_errno = EFAULT;
	fk.fail_region = 10;
	fk.fail_from = 4096;
	fk.short_max = 1024;
	ck_assert_int_eq(raw_read(dev, DEVSTATE_REGION_CONFIG, 0, buf,
				  sizeof(buf)), -EFAULT);
	ck_assert_has(dev->err, "region 10 (config) offset 0x1000: pread of 4096 bytes failed: Bad address");
	fk.fail_errno = 0;
	fk.short_max = 0;

	/* no progress is an error, not a spin */
	fk.zero_return = true;
	ck_assert_int_eq(raw_write(dev, DEVSTATE_REGION_CONFIG, 16, buf, 32),
			 -EIO);
	ck_assert_has(dev->err, "region 10 (config) offset 0x10: pwrite of 32 bytes moved 0");
	fk.zero_return = false;

	/* through the device layer, the step comes first */
	{
		uint64_t size;

		ck_assert_int_eq(devstate_device_set_state(dev, DEVSTATE_STATE_STOP), 0);
		ck_assert_int_eq(devstate_device_config_size(dev, &size), 0);
		fk.fail_errno = EIO;
		fk.fail_region = 10;
		fk.fail_from = 0;
		ck_assert_int_lt(devstate_dev_data_read(dev, "config", DEVSTATE_REGION_CONFIG,
							0, buf, 64), 0);
		ck_assert_has(devstate_device_error(dev), "region 10 (config) offset 0x0");
		fk.fail_errno = 0;
	}
	devstate_device_free(dev);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A complete migration through the scripted kernel.                    */

static void migrate(void)
{
	struct devstate_save_stats st;
	struct devstate_device *src, *dst;
	struct devstate_save *s = NULL;
	struct tu_sink m = { 0 };
	uint64_t pending, pages = (16u << 20) / 4096;
	uint64_t *bitmap = calloc(pages / 64, sizeof(uint64_t));
	uint32_t crc_src, crc_dst;
	char err[256];
	int pass;

	src = open_ok("vfio:/dev/vfio/6/0000:00:06.0", 0);
	dst = open_ok("vfio:/dev/vfio/7/0000:00:06.0", 0);
	ck_assert_int_eq(devstate_save_new(&s, src, NULL, tu_sink_write, &m),
			 0);
	ck_assert_msg(devstate_save_setup(s) == 0, "%s", devstate_save_error(s));
	for (pass = 0; pass < 3; pass++) {
		ck_assert_msg(devstate_save_pending(s, &pending) == 0, "%s",
			      devstate_save_error(s));
		ck_assert_msg(devstate_save_iterate(s) == 0, "%s",
			      devstate_save_error(s));
		ck_assert_msg(devstate_save_log_sync(s, 0, pages, bitmap) == 0,
			      "%s", devstate_save_error(s));
	}
	ck_assert_int_eq(devstate_save_stop(s), 0);
	ck_assert_msg(devstate_save_complete(s) == 0, "%s",
		      devstate_save_error(s));
	ck_assert_int_eq(devstate_save_cleanup(s), 0);
	devstate_save_get_stats(s, &st);
	ck_assert_uint_ge(st.passes, 2);
	ck_assert_uint_eq(st.config_bytes, 8192);
	ck_assert_uint_gt(st.dirty_pages, 0);
	devstate_save_free(s);

	/* fed in odd pieces, as a migration channel would */
	ck_assert_msg(tu_run_load(dst, m.buf, m.len, 4093, 0, err,
				  sizeof(err)) == 0, "%s", err);

	ck_assert_int_eq(devstate_fake_ops.digest(fk.groups[0].fake, &crc_src), 0);
	ck_assert_int_eq(devstate_fake_ops.digest(fk.groups[1].fake, &crc_dst), 0);
	ck_assert_uint_eq(crc_src, crc_dst);
	ck_assert_uint_eq(devstate_fake_state(fk.groups[0].fake),
			  DEVSTATE_STATE_STOP);
	ck_assert_uint_eq(devstate_fake_state(fk.groups[1].fake),
			  DEVSTATE_STATE_RUNNING);

	devstate_device_free(src);
	devstate_device_free(dst);
	free(m.buf);
	free(bitmap);
	ck_assert_uint_eq(fk_open_fds(), 0);
	ck_assert_uint_eq(fk.bad_closes, 0);
	ck_assert_uint_eq(fk.maps - fk.bad_maps - (fk.mmap_fail ? fk.maps : 0),
			  fk.unmaps);
	ck_assert_uint_eq(fk.ctl_maps, 0);
	ck_assert_uint_eq(fk.ctl_bad_width, 0);
}

START_TEST(test_migrate)
{
	fk_add("/dev/vfio/6", &dev_state, FAKE_SRC);
	fk_add("/dev/vfio/7", &dev_state, FAKE_DST);
	migrate();
	/* the memory went through the sparse areas and the gaps */
	ck_assert_uint_eq(fk.map_count[11], 4);	/* 2 areas x 2 devices */
	ck_assert_uint_gt(fk.rw_bytes[11], 0);
	ck_assert_uint_gt(fk.rw_bytes[10], 0);	/* config: pread/pwrite */
	ck_assert_uint_eq(fk.map_count[12], 2);	/* bitmap mapped whole */
	ck_assert_uint_eq(fk.bad_maps, 0);
}
END_TEST

START_TEST(test_migrate_eintr_short)
{
	fk_add("/dev/vfio/6", &dev_state, FAKE_SRC);
	fk_add("/dev/vfio/7", &dev_state, FAKE_DST);
	fk.eintr_alternate = true;
	fk.short_max = 1000;
	migrate();
	ck_assert_uint_gt(fk.eintrs, 100);
	ck_assert_uint_gt(fk.shorts, 100);
}
END_TEST

START_TEST(test_migrate_no_mmap)
{
	fk_add("/dev/vfio/6", &dev_state, FAKE_SRC);
	fk_add("/dev/vfio/7", &dev_state, FAKE_DST);
	fk.mmap_fail = true;
	migrate();
	ck_assert_uint_gt(fk.maps, 0);	/* tried, fell back */
	ck_assert_uint_eq(fk.unmaps, 0);
	ck_assert_uint_gt(fk.rw_bytes[12], 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The migration uAPI v2 ops, straight on the transport.               */

#define M2_ALL	(DEVSTATE_MIG2_F_STOP_COPY | DEVSTATE_MIG2_F_P2P | \
		 DEVSTATE_MIG2_F_PRE_COPY)

static const struct devstate_transport_ops *const T = &devstate_vfio_ops;

/* A group holding dev_edu that speaks v2 with flags (0: it does not),
 * opened from its device fd, straight on the transport (no probing by
 * the device layer: these tests are the transport's own). */
static void *m2_open(uint64_t flags, struct fk_group **gp)
{
	struct fk_group *g = fk_add("/dev/vfio/9", &dev_edu, NULL);
	char args[32], err[DEVSTATE_ERR_MAX] = "";
	void *priv = NULL;
	int fd;

	g->m2 = flags != 0;
	g->m2_flags = flags;
	g->m2_state = DEVSTATE_MIG2_RUNNING;
	fd = fk_device_fd(0);
	snprintf(args, sizeof(args), "fd=%d", fd);
	ck_assert_msg(T->open(args, &priv, err, sizeof(err)) == 0, "%s", err);
	if (gp)
		*gp = g;
	return priv;
}

/* The device fd stays (borrowed); everything else is closed. */
static void m2_close(void *priv)
{
	T->close(priv);
	ck_assert_uint_eq(fk_open_fds(), 1);
	ck_assert_uint_eq(fk.bad_closes, 0);
}

static void m2_set_ok(void *priv, uint32_t state)
{
	char err[DEVSTATE_ERR_MAX] = "";

	ck_assert_msg(T->mig2_set_state(priv, state, err, sizeof(err)) == 0,
		      "set %u: %s", state, err);
}

/* Read until the op reports the end (got == 0), in pieces of at most
 * chunk bytes; the bytes must be fk_byte(from ...). */
static size_t m2_read_all(void *priv, size_t chunk, size_t from)
{
	char err[DEVSTATE_ERR_MAX] = "";
	uint8_t buf[256];
	size_t got, total = 0, i;
	int calls = 0;

	ck_assert_uint_le(chunk, sizeof(buf));
	do {
		ck_assert_msg(T->mig2_read(priv, buf, chunk, &got, err,
					   sizeof(err)) == 0, "%s", err);
		ck_assert_uint_le(got, chunk);
		for (i = 0; i < got; i++)
			ck_assert_uint_eq(buf[i], fk_byte(from + total + i));
		total += got;
		ck_assert_int_lt(++calls, 1000);
	} while (got);
	return total;
}

START_TEST(test_mig2_probe)
{
	char err[DEVSTATE_ERR_MAX] = "";
	uint64_t flags = 99, size;
	void *priv;

	/* a device without the feature: ENOTTY -> EOPNOTSUPP, flags
	 * untouched (the region protocol is probed next) */
	priv = m2_open(0, NULL);
	ck_assert_int_eq(T->mig2_probe(priv, &flags, err, sizeof(err)),
			 -EOPNOTSUPP);
	ck_assert_uint_eq(flags, 99);
	ck_assert_has(err, "VFIO_DEVICE_FEATURE GET MIGRATION");
	ck_assert_int_eq(T->mig2_data_size(priv, &size, err, sizeof(err)),
			 -EOPNOTSUPP);
	m2_close(priv);
	fk_reset();

	/* mtty's answer */
	priv = m2_open(M2_ALL, NULL);
	fk.eintr_left = 2;		/* retried */
	ck_assert_int_eq(T->mig2_probe(priv, &flags, err, sizeof(err)), 0);
	ck_assert_uint_eq(flags, M2_ALL);
	ck_assert_int_eq(T->mig2_data_size(priv, &size, err, sizeof(err)), 0);
	ck_assert_uint_eq(size, FK_SAVED_LEN);

	/* EINVAL and EOPNOTSUPP also mean "no v2"; anything else fails */
	fk.probe_errno = EINVAL;
	ck_assert_int_eq(T->mig2_probe(priv, &flags, err, sizeof(err)),
			 -EOPNOTSUPP);
	fk.probe_errno = EOPNOTSUPP;
	ck_assert_int_eq(T->mig2_probe(priv, &flags, err, sizeof(err)),
			 -EOPNOTSUPP);
	fk.probe_errno = EIO;
	ck_assert_int_eq(T->mig2_probe(priv, &flags, err, sizeof(err)), -EIO);
	ck_assert_has(err, "fd 1000: VFIO_DEVICE_FEATURE GET MIGRATION failed: Input/output error");
	fk.probe_errno = 0;

	/* MIG_DATA_SIZE: unsupported, failing, hostile */
	fk.size_errno = ENOTTY;
	ck_assert_int_eq(T->mig2_data_size(priv, &size, err, sizeof(err)),
			 -EOPNOTSUPP);
	fk.size_errno = EFAULT;
	ck_assert_int_eq(T->mig2_data_size(priv, &size, err, sizeof(err)),
			 -EFAULT);
	ck_assert_has(err, "MIG_DATA_SIZE failed");
	fk.size_errno = 0;
	fk.size_value = (UINT64_C(1) << 48) + 1;
	size = 5;
	ck_assert_int_eq(T->mig2_data_size(priv, &size, err, sizeof(err)),
			 -EIO);
	ck_assert_uint_eq(size, 5);
	ck_assert_has(err, "MIG_DATA_SIZE answered 281474976710657 bytes");
	fk.size_value = UINT64_C(1) << 48;	/* the bound itself is fine */
	ck_assert_int_eq(T->mig2_data_size(priv, &size, err, sizeof(err)), 0);
	ck_assert_uint_eq(size, UINT64_C(1) << 48);
	m2_close(priv);
}
END_TEST

START_TEST(test_mig2_state)
{
	char err[DEVSTATE_ERR_MAX] = "";
	uint32_t state = 77;
	void *priv;

	priv = m2_open(M2_ALL, NULL);
	ck_assert_int_eq(T->mig2_get_state(priv, &state, err, sizeof(err)), 0);
	ck_assert_uint_eq(state, DEVSTATE_MIG2_RUNNING);
	m2_set_ok(priv, DEVSTATE_MIG2_RUNNING_P2P);
	ck_assert_int_eq(T->mig2_get_state(priv, &state, err, sizeof(err)), 0);
	ck_assert_uint_eq(state, DEVSTATE_MIG2_RUNNING_P2P);
	ck_assert_uint_eq(fk.data_closes, 0);

	/* a state number uAPI v2 does not have is refused, *state kept */
	fk.get_forced = true;
	fk.get_state = DEVSTATE_MIG2_NR_STATES;
	ck_assert_int_eq(T->mig2_get_state(priv, &state, err, sizeof(err)),
			 -EIO);
	ck_assert_uint_eq(state, DEVSTATE_MIG2_RUNNING_P2P);
	ck_assert_has(err, "answered state 8, which uAPI v2 does not have");
	fk.get_state = DEVSTATE_MIG2_PRE_COPY_P2P;	/* the last one is fine */
	ck_assert_int_eq(T->mig2_get_state(priv, &state, err, sizeof(err)), 0);
	ck_assert_uint_eq(state, DEVSTATE_MIG2_PRE_COPY_P2P);
	fk.get_forced = false;

	/* a refused arc names the ioctl and the state */
	ck_assert_int_eq(T->mig2_set_state(priv, 99, err, sizeof(err)),
			 -EINVAL);
	ck_assert_int_eq(T->mig2_set_state(priv, DEVSTATE_MIG2_ERROR, err,
					   sizeof(err)), -EINVAL);
	ck_assert_has(err, "SET MIG_DEVICE_STATE error failed: Invalid argument");
	m2_close(priv);
}
END_TEST

/* The saving session: RUNNING -> PRE_COPY returns a fd, pre-copy data
 * ends (0 or ENOMSG), PRE_COPY_P2P and STOP_COPY carry on the same fd,
 * stop-copy ends at EOF, STOP closes the fd and a later read is -EBADF. */
static void mig2_saving(bool enomsg)
{
	char err[DEVSTATE_ERR_MAX] = "";
	uint64_t initial = 1, dirty = 1;
	struct fk_group *g;
	size_t got, n;
	uint8_t buf[8];
	void *priv;
	int fd;

	priv = m2_open(M2_ALL, &g);
	fk.enomsg = enomsg;
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), -EBADF);
	ck_assert_has(err, "read: no migration data fd");
	ck_assert_int_eq(T->mig2_precopy_info(priv, &initial, &dirty, err,
					      sizeof(err)), -EBADF);

	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY);
	fd = g->m2_data;
	ck_assert_int_ge(fd, 0);
	fk.precopy_dirty = 3;
	ck_assert_int_eq(T->mig2_precopy_info(priv, &initial, &dirty, err,
					      sizeof(err)), 0);
	ck_assert_uint_eq(initial, FK_PRECOPY_LEN);
	ck_assert_uint_eq(dirty, 3);

	/* short reads and EINTR inside one call; the end of what the device
	 * has now is got == 0, as often as asked */
	fk.script[0] = 5;
	fk.script[1] = FK_R_ERR(EINTR);
	fk.script[2] = 1;
	fk.script_len = 3;
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), 0);
	ck_assert_uint_eq(got, sizeof(buf));
	for (n = 0; n < sizeof(buf); n++)
		ck_assert_uint_eq(buf[n], fk_byte(n));
	ck_assert_uint_eq(m2_read_all(priv, 7, 8), FK_PRECOPY_LEN - 8);
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), 0);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(T->mig2_precopy_info(priv, &initial, &dirty, err,
					      sizeof(err)), 0);
	ck_assert_uint_eq(initial, 0);

	/* PRE_COPY -> PRE_COPY_P2P -> STOP_COPY: no new fd, the same one
	 * carries on with the stop-copy data up to EOF */
	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY_P2P);
	m2_set_ok(priv, DEVSTATE_MIG2_STOP_COPY);
	ck_assert_int_eq(g->m2_data, fd);
	ck_assert_uint_eq(fk.data_closes, 0);
	ck_assert_uint_eq(m2_read_all(priv, 64, FK_PRECOPY_LEN),
			  FK_SAVED_LEN - FK_PRECOPY_LEN);
	/* PRECOPY_INFO is the kernel's to refuse in STOP_COPY */
	ck_assert_int_eq(T->mig2_precopy_info(priv, &initial, &dirty, err,
					      sizeof(err)), -EINVAL);
	ck_assert_has(err, "VFIO_MIG_GET_PRECOPY_INFO on the stop-copy data fd failed");

	/* STOP_COPY -> STOP leaves the data session: the fd is closed and
	 * never read again */
	m2_set_ok(priv, DEVSTATE_MIG2_STOP);
	ck_assert_uint_eq(fk.data_closes, 1);
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), -EBADF);
	ck_assert_uint_eq(fk.stale_reads, 0);
	m2_close(priv);
}

START_TEST(test_mig2_saving_zero_end)
{
	mig2_saving(false);
}
END_TEST

START_TEST(test_mig2_saving_enomsg_end)
{
	mig2_saving(true);
}
END_TEST

/* Every arc out of a data state closes its fd; a new fd replaces the old
 * one. */
START_TEST(test_mig2_fd_lifetime)
{
	struct fk_group *g;
	void *priv;

	priv = m2_open(M2_ALL, &g);
	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY);
	ck_assert_int_ge(g->m2_data, 0);
	m2_set_ok(priv, DEVSTATE_MIG2_RUNNING);	/* pre-copy abandoned */
	ck_assert_uint_eq(fk.data_closes, 1);
	ck_assert_uint_eq(fk_open_fds(), 1);
	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY);	/* a new session */
	ck_assert_int_ge(g->m2_data, 0);
	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY);	/* no change: kept */
	ck_assert_uint_eq(fk.data_closes, 1);
	m2_set_ok(priv, DEVSTATE_MIG2_RUNNING);
	m2_set_ok(priv, DEVSTATE_MIG2_STOP);
	m2_set_ok(priv, DEVSTATE_MIG2_STOP_COPY);	/* STOP -> STOP_COPY: a fd */
	ck_assert_uint_eq(m2_read_all(priv, 200, 0), FK_SAVED_LEN);
	ck_assert_uint_eq(fk.data_closes, 2);
	m2_set_ok(priv, DEVSTATE_MIG2_STOP);
	ck_assert_uint_eq(fk.data_closes, 3);
	m2_set_ok(priv, DEVSTATE_MIG2_RESUMING);
	ck_assert_uint_eq(fk_open_fds(), 2);
	/* closing the device closes the data fd too */
	m2_close(priv);
	ck_assert_uint_eq(fk.data_closes, 4);
	ck_assert_uint_eq(fk.stale_reads, 0);
}
END_TEST

START_TEST(test_mig2_resuming)
{
	char err[DEVSTATE_ERR_MAX] = "";
	struct fk_group *g;
	uint8_t data[300];
	size_t i;
	void *priv;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5a);
	priv = m2_open(M2_ALL, &g);
	ck_assert_int_eq(T->mig2_write(priv, data, 4, err, sizeof(err)),
			 -EBADF);
	ck_assert_has(err, "write: no migration data fd");
	m2_set_ok(priv, DEVSTATE_MIG2_STOP);
	m2_set_ok(priv, DEVSTATE_MIG2_RESUMING);

	/* short writes and EINTR are continued to the last byte */
	fk.short_max = 7;
	fk.eintr_alternate = true;
	ck_assert_msg(T->mig2_write(priv, data, sizeof(data), err,
				    sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(g->m2_resumed_len, sizeof(data));
	ck_assert_mem_eq(g->m2_resumed, data, sizeof(data));
	ck_assert_uint_ge(fk.shorts, sizeof(data) / 7);
	fk.short_max = 0;
	fk.eintr_alternate = false;

	/* no progress is an error, not a spin; so is a failing write */
	fk.zero_return = true;
	ck_assert_int_eq(T->mig2_write(priv, data, 10, err, sizeof(err)), -EIO);
	ck_assert_has(err, "write of 10 bytes to the resuming data fd returned 0");
	fk.zero_return = false;
	g->m2_resumed_len = sizeof(g->m2_resumed) - 4;
	ck_assert_int_eq(T->mig2_write(priv, data, 10, err, sizeof(err)),
			 -ENOMEM);
	ck_assert_has(err, "to the resuming data fd (after 4) failed");

	/* RESUMING -> STOP ends the session */
	m2_set_ok(priv, DEVSTATE_MIG2_STOP);
	ck_assert_uint_eq(fk.data_closes, 1);
	ck_assert_int_eq(T->mig2_write(priv, data, 4, err, sizeof(err)),
			 -EBADF);
	m2_close(priv);
}
END_TEST

/* A failed SET closes the data fd: a later read is -EBADF, never a read
 * of the stale fd. */
START_TEST(test_mig2_set_failure)
{
	char err[DEVSTATE_ERR_MAX] = "";
	struct fk_group *g;
	uint32_t state;
	uint8_t buf[8];
	size_t got;
	void *priv;

	priv = m2_open(M2_ALL, &g);
	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY);
	fk.set_errno = EIO;
	ck_assert_int_eq(T->mig2_set_state(priv, DEVSTATE_MIG2_STOP_COPY, err,
					   sizeof(err)), -EIO);
	ck_assert_has(err, "fd 1000: VFIO_DEVICE_FEATURE SET MIG_DEVICE_STATE stop-copy failed: Input/output error");
	ck_assert_uint_eq(fk.data_closes, 1);
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), -EBADF);
	ck_assert_uint_eq(fk.stale_reads, 0);
	ck_assert_int_eq(T->mig2_get_state(priv, &state, err, sizeof(err)), 0);
	ck_assert_uint_eq(state, DEVSTATE_MIG2_ERROR);

	/* the way out of ERROR: reset, RUNNING again */
	fk.eintr_left = 1;
	ck_assert_int_eq(T->mig2_reset(priv, err, sizeof(err)), 0);
	ck_assert_uint_eq(g->m2_resets, 1);
	ck_assert_int_eq(T->mig2_get_state(priv, &state, err, sizeof(err)), 0);
	ck_assert_uint_eq(state, DEVSTATE_MIG2_RUNNING);

	/* reset closes a live data fd too */
	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY);
	ck_assert_int_eq(T->mig2_reset(priv, err, sizeof(err)), 0);
	ck_assert_uint_eq(fk.data_closes, 2);
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), -EBADF);
	m2_close(priv);

	/* a device without reset says so */
	fk_reset();
	priv = m2_open(0, NULL);
	ck_assert_int_eq(T->mig2_reset(priv, err, sizeof(err)), -ENOTTY);
	ck_assert_has(err, "VFIO_DEVICE_RESET failed");
	m2_close(priv);
}
END_TEST

/* What the data fd may answer: errors, ENOMSG where the uAPI forbids it,
 * more bytes than were asked. */
START_TEST(test_mig2_read_errors)
{
	char err[DEVSTATE_ERR_MAX] = "";
	uint8_t buf[16];
	size_t got = 9;
	void *priv;

	priv = m2_open(M2_ALL, NULL);
	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY);

	fk.script[0] = FK_R_OVER;
	fk.script_len = 1;
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), -EIO);
	ck_assert_uint_eq(got, 0);
	ck_assert_has(err, "read of 16 bytes from the pre-copy data fd returned 17");

	fk.script[0] = 4;
	fk.script[1] = FK_R_ERR(EFAULT);
	fk.script_len = 2;
	fk.script_pos = 0;
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), -EFAULT);
	ck_assert_has(err, "read of 12 bytes from the pre-copy data fd (after 4) failed: Bad address");

	/* ENOMSG ends pre-copy data even after some bytes: what came is
	 * returned, the end shows on the next call */
	fk.script[0] = 3;
	fk.script[1] = FK_R_ERR(ENOMSG);
	fk.script[2] = FK_R_ERR(ENOMSG);
	fk.script_len = 3;
	fk.script_pos = 0;
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), 0);
	ck_assert_uint_eq(got, 3);
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), 0);
	ck_assert_uint_eq(got, 0);

	/* in STOP_COPY ENOMSG is a broken device, not an end */
	m2_set_ok(priv, DEVSTATE_MIG2_STOP_COPY);
	fk.script[0] = FK_R_ERR(ENOMSG);
	fk.script_len = 1;
	fk.script_pos = 0;
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), -ENOMSG);
	ck_assert_has(err, "stop-copy data fd (after 0) failed: ENOMSG, which the uAPI forbids in stop-copy");

	/* a zero-length read asks nothing */
	fk.data_reads = 0;
	ck_assert_int_eq(T->mig2_read(priv, buf, 0, &got, err, sizeof(err)), 0);
	ck_assert_uint_eq(got, 0);
	ck_assert_uint_eq(fk.data_reads, 0);
	m2_close(priv);
}
END_TEST

/* Hostile answers to SET and PRECOPY_INFO. */
START_TEST(test_mig2_hostile)
{
	char err[DEVSTATE_ERR_MAX] = "";
	uint64_t initial = 1, dirty = 2;
	struct fk_group *g;
	uint8_t buf[4];
	size_t got;
	void *priv;
	int extra;

	priv = m2_open(M2_ALL, &g);

	/* a fd for a state that has no data: refused and closed */
	extra = fk_new_fd(FK_DATA, 0);
	fk.set_fd_forced = true;
	fk.set_fd = extra;
	ck_assert_int_eq(T->mig2_set_state(priv, DEVSTATE_MIG2_STOP, err,
					   sizeof(err)), -EIO);
	ck_assert_has(err, "SET MIG_DEVICE_STATE stop answered data fd 1001, but that state has no migration data");
	ck_assert_uint_eq(fk.data_closes, 1);
	ck_assert_uint_eq(fk_open_fds(), 1);

	/* the device's own fd as a data fd: refused, the device fd kept */
	m2_set_ok(priv, DEVSTATE_MIG2_RUNNING);
	fk.set_fd_forced = true;
	fk.set_fd = FK_FD_BASE;
	ck_assert_int_eq(T->mig2_set_state(priv, DEVSTATE_MIG2_PRE_COPY, err,
					   sizeof(err)), -EIO);
	ck_assert_has(err, "answered data fd 1000, a descriptor already in use");
	ck_assert_uint_eq(fk.kind[0], FK_DEVICE);
	ck_assert_uint_eq(fk.bad_closes, 0);
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), -EBADF);

	/* a negative fd other than -1 */
	m2_set_ok(priv, DEVSTATE_MIG2_RUNNING);
	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY);
	fk.set_fd_forced = true;
	fk.set_fd = -7;
	ck_assert_int_eq(T->mig2_set_state(priv, DEVSTATE_MIG2_PRE_COPY_P2P,
					   err, sizeof(err)), -EIO);
	ck_assert_has(err, "answered data fd -7");
	ck_assert_int_eq(T->mig2_read(priv, buf, sizeof(buf), &got, err,
				      sizeof(err)), -EBADF);

	/* PRECOPY_INFO beyond any device: refused, outputs untouched */
	m2_set_ok(priv, DEVSTATE_MIG2_RUNNING);
	m2_set_ok(priv, DEVSTATE_MIG2_PRE_COPY);
	fk.precopy_huge = true;
	ck_assert_int_eq(T->mig2_precopy_info(priv, &initial, &dirty, err,
					      sizeof(err)), -EIO);
	ck_assert_uint_eq(initial, 1);
	ck_assert_uint_eq(dirty, 2);
	ck_assert_has(err, "VFIO_MIG_GET_PRECOPY_INFO answered initial 18446744073709551615");
	fk.precopy_huge = false;
	fk.precopy_dirty = (UINT64_C(1) << 48) + 1;
	ck_assert_int_eq(T->mig2_precopy_info(priv, &initial, &dirty, err,
					      sizeof(err)), -EIO);
	m2_close(priv);
	ck_assert_uint_eq(fk.stale_reads, 0);
}
END_TEST

/* Through the device layer: the probe at open picks protocol 2 on a
 * device that answers the MIGRATION feature, the region protocol on one
 * that does not (every other test here). */
START_TEST(test_mig2_device_open)
{
	struct devstate_mig2_info info;
	struct devstate_device *dev;
	struct fk_group *g = fk_add("/dev/vfio/9", &dev_edu, NULL);

	g->m2 = true;
	g->m2_flags = M2_ALL;
	g->m2_state = DEVSTATE_MIG2_RUNNING;
	dev = open_ok("vfio:/dev/vfio/9/0000:00:05.0", 0);
	ck_assert_uint_eq(devstate_device_protocol(dev), DEVSTATE_PROTOCOL_MIG2);
	ck_assert_int_eq(devstate_device_mig2_info(dev, &info), 0);
	ck_assert_uint_eq(info.flags, M2_ALL);
	ck_assert_uint_eq(info.state, DEVSTATE_MIG2_RUNNING);
	ck_assert_int_eq(info.data_size_status, 0);
	ck_assert_uint_eq(info.stop_copy_bytes, FK_SAVED_LEN);
	ck_assert_int_eq(info.precopy_status, -EBADF);

	/* the library routes, the kernel sees one arc per SET */
	ck_assert_msg(devstate_device_mig2_set_state(dev, DEVSTATE_MIG2_STOP) == 0,
		      "%s", devstate_device_error(dev));
	ck_assert_uint_eq(g->m2_state, DEVSTATE_MIG2_STOP);
	ck_assert_uint_eq(devstate_device_mig2_state(dev), DEVSTATE_MIG2_STOP);
	devstate_device_free(dev);
	ck_assert_uint_eq(fk_open_fds(), 0);
	fk_reset();

	/* the same device without the feature: the region protocol (and no
	 * state regions) */
	fk_add("/dev/vfio/9", &dev_edu, NULL);
	dev = open_ok("vfio:/dev/vfio/9/0000:00:05.0", DEVSTATE_OPEN_INSPECT);
	ck_assert_uint_ne(devstate_device_protocol(dev), DEVSTATE_PROTOCOL_MIG2);
	ck_assert_int_eq(devstate_device_mig2_info(dev, &info), -EOPNOTSUPP);
	devstate_device_free(dev);
}
END_TEST

/* A whole save and load of uAPI v2 devices through the session API over
 * the scripted kernel: the source's pre-copy and stop-copy bytes arrive
 * in the destination's RESUMING data fd, in order, whatever the reads
 * and writes do on the way (short, EINTR). */
static void mig2_session(void)
{
	struct devstate_device *src, *dst;
	struct devstate_save *s = NULL;
	struct tu_sink m = { 0 };
	struct fk_group *gs = fk_add("/dev/vfio/6", &dev_edu, NULL);
	struct fk_group *gd = fk_add("/dev/vfio/7", &dev_edu, NULL);
	char err[256];
	uint64_t pending;
	size_t i;

	gs->m2 = gd->m2 = true;
	gs->m2_flags = gd->m2_flags = M2_ALL;
	gs->m2_state = gd->m2_state = DEVSTATE_MIG2_RUNNING;
	src = open_ok("vfio:/dev/vfio/6/0000:00:05.0", 0);
	dst = open_ok("vfio:/dev/vfio/7/0000:00:05.0", 0);

	ck_assert_int_eq(devstate_save_new(&s, src, NULL, tu_sink_write, &m),
			 0);
	ck_assert_msg(devstate_save_setup(s) == 0, "%s", devstate_save_error(s));
	ck_assert_uint_eq(gs->m2_state, DEVSTATE_MIG2_PRE_COPY);
	ck_assert_msg(devstate_save_pending(s, &pending) == 0, "%s",
		      devstate_save_error(s));
	ck_assert_uint_eq(pending, FK_PRECOPY_LEN);
	ck_assert_msg(devstate_save_iterate(s) == 0, "%s",
		      devstate_save_error(s));
	ck_assert_msg(devstate_save_stop(s) == 0, "%s", devstate_save_error(s));
	ck_assert_uint_eq(gs->m2_state, DEVSTATE_MIG2_STOP_COPY);
	ck_assert_msg(devstate_save_complete(s) == 0, "%s",
		      devstate_save_error(s));
	ck_assert_int_eq(devstate_save_cleanup(s), 0);
	devstate_save_free(s);
	ck_assert_uint_eq(gs->m2_state, DEVSTATE_MIG2_STOP);

	ck_assert_msg(tu_run_load(dst, m.buf, m.len, 7, 0, err,
				  sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(gd->m2_state, DEVSTATE_MIG2_RUNNING);
	ck_assert_uint_eq(gd->m2_resets, 0);

	/* what RESUMING received is what the source gave, byte for byte
	 * (the model's RESUMING -> STOP disables the file but keeps the
	 * bytes) */
	ck_assert_uint_eq(gd->m2_resumed_len, FK_SAVED_LEN);
	for (i = 0; i < FK_SAVED_LEN; i++)
		ck_assert_uint_eq(gd->m2_resumed[i], fk_byte(i));

	devstate_device_free(src);
	devstate_device_free(dst);
	free(m.buf);
	ck_assert_uint_eq(fk_open_fds(), 0);
	ck_assert_uint_eq(fk.bad_closes, 0);
	ck_assert_uint_eq(fk.stale_reads, 0);
	ck_assert_uint_eq(fk.data_closes, 2);	/* one saving, one resuming */
}

START_TEST(test_mig2_session)
{
	mig2_session();
}
END_TEST

START_TEST(test_mig2_session_eintr_short)
{
	fk.eintr_alternate = true;
	fk.short_max = 5;
	fk.enomsg = true;
	fk.script[0] = 3;
	fk.script[1] = 1;
	fk.script[2] = FK_R_ERR(EINTR);
	fk.script[3] = 2;
	fk.script_len = 4;
	mig2_session();
	ck_assert_uint_gt(fk.eintrs, 10);
	/* 96 bytes in pieces of at most 5, read and written */
	ck_assert_uint_ge(fk.shorts, 30);
}
END_TEST

static Suite *vfio_suite(void)
{
	Suite *s = suite_create("vfio");
	TCase *tc;

	tc = tcase_create("open");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_group_type1v2);
	tcase_add_test(tc, test_iommu_types);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_borrowed_fd);
	suite_add_tcase(s, tc);

	tc = tcase_create("regions");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_argsz_retry_msix);
	tcase_add_test(tc, test_caps_type_sparse);
	tcase_add_test(tc, test_argsz_limits);
	tcase_add_loop_test(tc, test_bad_chain, 0,
			    (int)(sizeof(bad_chains) / sizeof(bad_chains[0])));
	tcase_add_test(tc, test_good_raw_chain);
	tcase_add_test(tc, test_ccw_collision);
	tcase_add_test(tc, test_type_override);
	tcase_add_test(tc, test_duplicate_state_region);
	suite_add_tcase(s, tc);

	tc = tcase_create("access");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ctl_access);
	tcase_add_test(tc, test_sparse_access);
	tcase_add_test(tc, test_data_retry_and_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("flow");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_migrate);
	tcase_add_test(tc, test_migrate_eintr_short);
	tcase_add_test(tc, test_migrate_no_mmap);
	suite_add_tcase(s, tc);

	tc = tcase_create("mig2");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mig2_probe);
	tcase_add_test(tc, test_mig2_state);
	tcase_add_test(tc, test_mig2_saving_zero_end);
	tcase_add_test(tc, test_mig2_saving_enomsg_end);
	tcase_add_test(tc, test_mig2_fd_lifetime);
	tcase_add_test(tc, test_mig2_resuming);
	tcase_add_test(tc, test_mig2_set_failure);
	tcase_add_test(tc, test_mig2_read_errors);
	tcase_add_test(tc, test_mig2_hostile);
	tcase_add_test(tc, test_mig2_device_open);
	tcase_add_test(tc, test_mig2_session);
	tcase_add_test(tc, test_mig2_session_eintr_short);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(vfio_suite());
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Device handles: a transport, the core's verdict on it, and the state the
 * library has confirmed.  Every control access goes through the layout
 * table; every state-dependent operation is checked against the core's
 * per-state table before it is sent.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libdevstate/device.h"
#include "libdevstate/stream.h"

void devstate_dev_err(struct devstate_device *dev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dev->err, sizeof(dev->err), fmt, ap);
	va_end(ap);
}

/* What a transport's errno means, in each protocol family's terms. */
static const char *errno_meaning(const struct devstate_device *dev, int rc)
{
	bool v2 = dev->protocol == DEVSTATE_PROTOCOL_MIG2;

	switch (-rc) {
	case EINVAL:
		return "the device refused the request as malformed or out of protocol";
	case EBADF:	/* uAPI v2: the data fd */
		if (v2)
			return "there is no data session";
		break;
	case EBUSY:
		if (!v2)
			return "the device does not allow it in its current state";
		break;
	case ENOSPC:
		if (!v2)
			return "the device's dirty log overflowed";
		break;
	case EROFS:
		if (!v2)
			return "the device is read-only";
		break;
	}
	return strerror(-rc);
}

int devstate_dev_fail(struct devstate_device *dev, int rc, const char *step,
		      const char *what)
{
	char detail[DEVSTATE_ERR_MAX + 3], where[64] = "";

	/* keep the transport's own words (region and offset) if it left any */
	detail[0] = '\0';
	if (dev->err[0])
		snprintf(detail, sizeof(detail), " (%s)", dev->err);
	/* uAPI v2 sentences say where the device is when it matters */
	if (dev->protocol != DEVSTATE_PROTOCOL_MIG2)
		snprintf(where, sizeof(where), " in state %s",
			 devstate_state_name(dev->state));
	devstate_dev_err(dev, "%s: %s: %s%s%s", step, what,
			 errno_meaning(dev, rc), detail, where);
	return rc;
}

int devstate_dev_usable(struct devstate_device *dev)
{
	if (dev->blocker.code == DEVSTATE_BLOCKER_NONE)
		return 0;
	devstate_dev_err(dev, "device is not migratable: %s",
			 dev->blocker.reason);
	return -EOPNOTSUPP;
}

static const struct devstate_field_desc *
field_desc(struct devstate_device *dev, const char *step,
	   enum devstate_field field, unsigned access)
{
	const struct devstate_field_desc *fd;

	fd = dev->layout ? devstate_layout_field(dev->layout, field) : NULL;
	if (!fd) {
		devstate_dev_err(dev, "%s: control field %d does not exist in layout version %u",
				 step, (int)field, dev->version);
		return NULL;
	}
	if (!(fd->access & access)) {
		devstate_dev_err(dev, "%s: control field %s is %s", step,
				 fd->name,
				 access == DEVSTATE_ACCESS_R ? "write-only" :
							       "read-only");
		return NULL;
	}
	return fd;
}

int devstate_dev_read_field(struct devstate_device *dev, const char *step,
			    enum devstate_field field, uint64_t *val)
{
	const struct devstate_field_desc *fd;
	unsigned char buf[8];
	char what[96];
	int rc;

	fd = field_desc(dev, step, field, DEVSTATE_ACCESS_R);
	if (!fd)
		return -EINVAL;
	dev->err[0] = '\0';
	rc = dev->ops->ctl_read(dev->priv, fd->offset, buf, fd->width,
				dev->err, sizeof(dev->err));
	if (rc < 0) {
		snprintf(what, sizeof(what), "reading %s (ctl offset %u)",
			 fd->name, fd->offset);
		return devstate_dev_fail(dev, rc, step, what);
	}
	*val = devstate_le_get(buf, fd->width);
	return 0;
}

int devstate_dev_write_field(struct devstate_device *dev, const char *step,
			     enum devstate_field field, uint64_t val)
{
	const struct devstate_field_desc *fd;
	unsigned char buf[8];
	char what[96];
	int rc;

	fd = field_desc(dev, step, field, DEVSTATE_ACCESS_W);
	if (!fd)
		return -EINVAL;
	if (fd->width == 4 && val > UINT32_MAX) {
		devstate_dev_err(dev, "%s: value 0x%llx does not fit %s", step,
				 (unsigned long long)val, fd->name);
		return -EINVAL;
	}
	devstate_le_put(buf, fd->width, val);
	dev->err[0] = '\0';
	rc = dev->ops->ctl_write(dev->priv, fd->offset, buf, fd->width,
				 dev->err, sizeof(dev->err));
	if (rc < 0) {
		snprintf(what, sizeof(what), "writing %llu to %s (ctl offset %u)",
			 (unsigned long long)val, fd->name, fd->offset);
		return devstate_dev_fail(dev, rc, step, what);
	}
	return 0;
}

static int check_data(struct devstate_device *dev, const char *step,
		      enum devstate_region r, uint64_t off, size_t len)
{
	if ((unsigned)r >= DEVSTATE_REGION_COUNT || r == DEVSTATE_REGION_CTL ||
	    !dev->regions.present[r]) {
		devstate_dev_err(dev, "%s: no %s region", step,
				 devstate_region_name(r));
		return -EINVAL;
	}
	if (off > dev->regions.size[r] || len > dev->regions.size[r] - off) {
		devstate_dev_err(dev, "%s: %zu bytes at offset %llu are outside the %s region (%llu bytes)",
				 step, len, (unsigned long long)off,
				 devstate_region_name(r),
				 (unsigned long long)dev->regions.size[r]);
		return -EINVAL;
	}
	return 0;
}

int devstate_dev_data_read(struct devstate_device *dev, const char *step,
			   enum devstate_region r, uint64_t off, void *buf,
			   size_t len)
{
	char what[96];
	int rc;

	rc = check_data(dev, step, r, off, len);
	if (rc < 0)
		return rc;
	if (dev->map[r]) {
		memcpy(buf, (const char *)dev->map[r] + off, len);
		return 0;
	}
	dev->err[0] = '\0';
	rc = dev->ops->data_read(dev->priv, r, off, buf, len, dev->err,
				 sizeof(dev->err));
	if (rc < 0) {
		snprintf(what, sizeof(what), "reading %zu bytes of the %s region at offset %llu",
			 len, devstate_region_name(r), (unsigned long long)off);
		return devstate_dev_fail(dev, rc, step, what);
	}
	return 0;
}

int devstate_dev_data_write(struct devstate_device *dev, const char *step,
			    enum devstate_region r, uint64_t off,
			    const void *buf, size_t len)
{
	char what[96];
	int rc;

	rc = check_data(dev, step, r, off, len);
	if (rc < 0)
		return rc;
	if (dev->map[r]) {
		memcpy((char *)dev->map[r] + off, buf, len);
		return 0;
	}
	dev->err[0] = '\0';
	rc = dev->ops->data_write(dev->priv, r, off, buf, len, dev->err,
				  sizeof(dev->err));
	if (rc < 0) {
		snprintf(what, sizeof(what), "writing %zu bytes of the %s region at offset %llu",
			 len, devstate_region_name(r), (unsigned long long)off);
		return devstate_dev_fail(dev, rc, step, what);
	}
	return 0;
}

int devstate_dev_set_state(struct devstate_device *dev, const char *step,
			   uint32_t state)
{
	int rc;

	rc = devstate_dev_usable(dev);
	if (rc < 0)
		return rc;
	if (devstate_state_transition(dev->state, state) < 0) {
		devstate_dev_err(dev, "%s: invalid device state %u", step, state);
		return -EINVAL;
	}
	rc = devstate_dev_write_field(dev, step, DEVSTATE_FIELD_DEVICE_STATE,
				      state);
	if (rc < 0)
		return rc;	/* the view of the state stays as it was */
	dev->state = state;
	return 0;
}

int devstate_dev_permit(struct devstate_device *dev, const char *step,
			enum devstate_op op)
{
	if (devstate_state_check(dev->state, op) == 0)
		return 0;
	devstate_dev_err(dev, "%s: %s is not allowed in state %s", step,
			 devstate_op_name(op), devstate_state_name(dev->state));
	return -EBUSY;
}

/* ------------------------------------------------------------------ */

static int negotiate(struct devstate_device *dev)
{
	struct devstate_blocker_info *b = &dev->blocker;
	unsigned char buf[4];
	uint64_t caps;
	int rc;

	/* the kernel's migration uAPI v2 first, then the region protocol */
	rc = devstate_mig2_attach(dev);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	dev->protocol = DEVSTATE_PROTOCOL_REGIONS;
	dev->err[0] = '\0';
	rc = dev->ops->regions(dev->priv, &dev->regions, dev->err,
			       sizeof(dev->err));
	if (rc < 0)
		return rc;
	if (devstate_negotiate_regions(&dev->regions, b) < 0) {
		/* say which regions the device does have */
		if (b->code == DEVSTATE_BLOCKER_NO_STATE_REGIONS &&
		    dev->ops->describe) {
			char list[DEVSTATE_REASON_MAX];
			size_t n = strlen(b->reason);

			dev->ops->describe(dev->priv, list, sizeof(list));
			snprintf(b->reason + n, sizeof(b->reason) - n,
				 "; its regions: %s", list);
		}
		return 0;
	}
	rc = dev->ops->ctl_read(dev->priv, DEVSTATE_VERSION_OFFSET, buf,
				DEVSTATE_VERSION_WIDTH, dev->err,
				sizeof(dev->err));
	if (rc < 0) {
		b->code = DEVSTATE_BLOCKER_IO;
		devstate_msg(b->reason, sizeof(b->reason),
			     "reading the interface version failed: %s",
			     dev->err[0] ? dev->err : strerror(-rc));
		return 0;
	}
	dev->version = (uint32_t)devstate_le_get(buf, 4);
	dev->layout = devstate_layout_find(dev->version);
	if (!dev->layout) {
		devstate_negotiate(&dev->regions, dev->version, 0, &dev->layout,
				   b);
		dev->layout = NULL;
		return 0;
	}
	if (dev->regions.size[DEVSTATE_REGION_CTL] < dev->layout->size) {
		/* caps may lie past the end: never read it (SPEC 11) */
		devstate_negotiate(&dev->regions, dev->version, 0, &dev->layout,
				   b);
		dev->layout = NULL;
		return 0;
	}
	rc = devstate_dev_read_field(dev, "open", DEVSTATE_FIELD_CAPS, &caps);
	if (rc < 0) {
		b->code = DEVSTATE_BLOCKER_IO;
		devstate_msg(b->reason, sizeof(b->reason), "%s", dev->err);
		return 0;
	}
	dev->caps = (uint32_t)caps;
	if (devstate_negotiate(&dev->regions, dev->version, dev->caps,
			       &dev->layout, b) < 0)
		return 0;
	b->code = DEVSTATE_BLOCKER_NONE;
	return 0;
}

static void map_regions(struct devstate_device *dev)
{
	int r;

	if (!dev->ops->data_map)
		return;
	for (r = DEVSTATE_REGION_CONFIG; r < DEVSTATE_REGION_COUNT; r++) {
		char ignore[DEVSTATE_ERR_MAX];
		void *addr = NULL;

		if (!dev->regions.present[r] || !dev->regions.mappable[r] ||
		    !dev->regions.size[r])
			continue;
		/* no map is not an error: read/write is always valid */
		if (dev->ops->data_map(dev->priv, (enum devstate_region)r,
				       &addr, ignore, sizeof(ignore)) == 0)
			dev->map[r] = addr;
	}
}

/* Negotiate on a transport that is open (dev->ops, dev->priv set); on
 * failure the transport is closed and dev freed.  name is for sentences. */
static int device_attach(struct devstate_device **out,
			 struct devstate_device *dev, const char *name,
			 char *errbuf, size_t errlen)
{
	int rc;

	rc = negotiate(dev);
	if (rc < 0) {
		devstate_msg(errbuf, errlen, "%s: %s", name, dev->err);
		goto fail;
	}
	if (dev->blocker.code != DEVSTATE_BLOCKER_NONE &&
	    !(dev->flags & DEVSTATE_OPEN_INSPECT)) {
		devstate_msg(errbuf, errlen, "%s: not migratable: %s", name,
			     dev->blocker.reason);
		rc = -EOPNOTSUPP;
		goto fail;
	}
	if (dev->blocker.code == DEVSTATE_BLOCKER_NONE)
		map_regions(dev);
	dev->err[0] = '\0';
	*out = dev;
	return 0;
fail:
	dev->ops->close(dev->priv);
	free(dev);
	return rc;
}

static struct devstate_device *device_alloc(unsigned flags, char *errbuf,
					    size_t errlen)
{
	struct devstate_device *dev;

	if (flags & ~DEVSTATE_OPEN_INSPECT) {
		devstate_msg(errbuf, errlen, "unknown open flags 0x%x", flags);
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		devstate_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	dev->flags = flags;
	dev->state = DEVSTATE_STATE_RUNNING;
	return dev;
}

DEVSTATE_EXPORT int devstate_device_open(struct devstate_device **out,
					 const char *uri, unsigned flags,
					 char *errbuf, size_t errlen)
{
	struct devstate_device *dev;
	int rc;

	if (!out || !uri) {
		devstate_msg(errbuf, errlen, "no device given");
		return -EINVAL;
	}
	dev = device_alloc(flags, errbuf, errlen);
	if (!dev)
		return flags & ~DEVSTATE_OPEN_INSPECT ? -EINVAL : -ENOMEM;
	rc = devstate_transport_open(uri, &dev->ops, &dev->priv, dev->err,
				     sizeof(dev->err));
	if (rc < 0) {
		devstate_msg(errbuf, errlen, "%s", dev->err);
		free(dev);
		return rc;
	}
	return device_attach(out, dev, uri, errbuf, errlen);
}

int devstate_device_open_ops(struct devstate_device **out,
			     const struct devstate_transport_ops *ops,
			     const char *args, unsigned flags, char *errbuf,
			     size_t errlen)
{
	struct devstate_device *dev;
	int rc;

	if (!out || !ops || !args) {
		devstate_msg(errbuf, errlen, "no device given");
		return -EINVAL;
	}
	dev = device_alloc(flags, errbuf, errlen);
	if (!dev)
		return flags & ~DEVSTATE_OPEN_INSPECT ? -EINVAL : -ENOMEM;
	dev->ops = ops;
	rc = ops->open(args, &dev->priv, dev->err, sizeof(dev->err));
	if (rc < 0) {
		devstate_msg(errbuf, errlen, "%s", dev->err);
		free(dev);
		return rc;
	}
	return device_attach(out, dev, ops->name, errbuf, errlen);
}

DEVSTATE_EXPORT void devstate_device_free(struct devstate_device *dev)
{
	if (!dev)
		return;
	dev->ops->close(dev->priv);
	free(dev);
}

DEVSTATE_EXPORT const char *
devstate_device_error(const struct devstate_device *dev)
{
	return dev ? dev->err : "no device";
}

DEVSTATE_EXPORT enum devstate_blocker
devstate_device_blocker(const struct devstate_device *dev, const char **reason)
{
	if (reason)
		*reason = dev->blocker.code ? dev->blocker.reason : "";
	return dev->blocker.code;
}

DEVSTATE_EXPORT const char *
devstate_device_transport(const struct devstate_device *dev)
{
	return dev->ops->name;
}

DEVSTATE_EXPORT uint32_t
devstate_device_version(const struct devstate_device *dev)
{
	return dev->version;
}

DEVSTATE_EXPORT uint32_t devstate_device_caps(const struct devstate_device *dev)
{
	return dev->caps;
}

DEVSTATE_EXPORT uint32_t
devstate_device_state(const struct devstate_device *dev)
{
	return dev->state;
}

DEVSTATE_EXPORT int devstate_device_region(const struct devstate_device *dev,
					   enum devstate_region region,
					   struct devstate_region_info *info)
{
	if (!dev || !info || (unsigned)region >= DEVSTATE_REGION_COUNT)
		return -EINVAL;
	info->present = dev->regions.present[region];
	info->size = dev->regions.size[region];
	info->mappable = dev->regions.mappable[region];
	return 0;
}

DEVSTATE_EXPORT int devstate_device_config_size(struct devstate_device *dev,
						uint64_t *size)
{
	int rc = devstate_dev_regions_only(dev, "config size",
					   "it has no config region");

	if (rc < 0)
		return rc;
	rc = devstate_dev_usable(dev);
	if (rc < 0)
		return rc;
	rc = devstate_dev_permit(dev, "config size", DEVSTATE_OP_GET_CONFIG);
	if (rc < 0)
		return rc;
	return devstate_dev_read_field(dev, "config size",
				       DEVSTATE_FIELD_CONFIG_SIZE, size);
}

DEVSTATE_EXPORT int devstate_device_set_state(struct devstate_device *dev,
					      uint32_t state)
{
	int rc;

	if (!dev)
		return -EINVAL;
	rc = devstate_dev_regions_only(dev, "set state",
				       "use devstate_device_mig2_set_state()");
	if (rc < 0)
		return rc;
	if (!devstate_state_valid(state)) {
		devstate_dev_err(dev, "set state: invalid device state %u",
				 state);
		return -EINVAL;
	}
	return devstate_dev_set_state(dev, "set state", state);
}

/* One slice of a dirty-bitmap query: program the range, trigger, read. */
static int query_slice(struct devstate_device *dev, const char *step,
		       const struct devstate_slice *sl, uint64_t *bitmap,
		       unsigned char *scratch)
{
	size_t bytes = (size_t)((sl->page_nr + 7) / 8);
	const void *src;
	int rc;

	rc = devstate_dev_write_field(dev, step, DEVSTATE_FIELD_SYSMEM_START,
				      sl->start_page * DEVSTATE_PAGE_SIZE);
	if (rc < 0)
		return rc;
	rc = devstate_dev_write_field(dev, step, DEVSTATE_FIELD_SYSMEM_PAGE_NR,
				      sl->page_nr);
	if (rc == 0 && dev->layout->bitmap_action)
		rc = devstate_dev_write_field(dev, step,
					      DEVSTATE_FIELD_SYSMEM_ACTION,
					      DEVSTATE_ACTION_GET_BITMAP);
	if (rc == -ENOSPC) {
		/* the log overflowed: every page of the slice is dirty */
		devstate_bitmap_set_range(bitmap, sl->bit_offset, sl->page_nr);
		dev->err[0] = '\0';
		return 0;
	}
	if (rc < 0)
		return rc;
	if (dev->map[DEVSTATE_REGION_BITMAP]) {
		src = dev->map[DEVSTATE_REGION_BITMAP];
	} else {
		rc = devstate_dev_data_read(dev, step, DEVSTATE_REGION_BITMAP,
					    0, scratch, bytes);
		if (rc < 0)
			return rc;
		src = scratch;
	}
	devstate_bitmap_or(bitmap, sl->bit_offset, src, sl->page_nr);
	return 0;
}

int devstate_dev_dirty_bitmap(struct devstate_device *dev, const char *step,
			      uint64_t start_addr, uint64_t page_nr,
			      uint64_t *bitmap, uint64_t *dirty)
{
	struct devstate_slicer sl;
	struct devstate_slice slice;
	unsigned char *scratch = NULL;
	int rc;

	rc = devstate_dev_regions_only(dev, step,
				       "uAPI v2 reports no system-memory dirty pages (its DMA logging is not supported)");
	if (rc < 0)
		return rc;
	rc = devstate_dev_usable(dev);
	if (rc < 0)
		return rc;
	if (!(dev->caps & DEVSTATE_CAP_SYSTEM_MEMORY)) {
		devstate_dev_err(dev, "%s: device has no cap SYSTEM_MEMORY",
				 step);
		return -EOPNOTSUPP;
	}
	if (start_addr % DEVSTATE_PAGE_SIZE) {
		devstate_dev_err(dev, "%s: start address 0x%llx is not a multiple of the page size %u",
				 step, (unsigned long long)start_addr,
				 DEVSTATE_PAGE_SIZE);
		return -EINVAL;
	}
	rc = devstate_dev_permit(dev, step, DEVSTATE_OP_GET_BITMAP);
	if (rc < 0)
		return rc;
	rc = devstate_slicer_init(&sl, start_addr / DEVSTATE_PAGE_SIZE, page_nr,
				  dev->regions.size[DEVSTATE_REGION_BITMAP]);
	if (rc < 0) {
		devstate_dev_err(dev, "%s: invalid range of %llu pages at 0x%llx",
				 step, (unsigned long long)page_nr,
				 (unsigned long long)start_addr);
		return rc;
	}
	if (!dev->map[DEVSTATE_REGION_BITMAP] &&
	    dev->regions.size[DEVSTATE_REGION_BITMAP] > DEVSTATE_REGION_MAX) {
		/* one query's bitmap is bounded (2^31 pages, 8 TiB) */
		devstate_dev_err(dev, "%s: the DIRTY_BITMAP region (%llu bytes) is not mappable and exceeds the limit of %llu bytes",
				 step, (unsigned long long)dev->regions.size[DEVSTATE_REGION_BITMAP],
				 (unsigned long long)DEVSTATE_REGION_MAX);
		return -E2BIG;
	}
	if (!dev->map[DEVSTATE_REGION_BITMAP]) {
		scratch = malloc((size_t)dev->regions.size[DEVSTATE_REGION_BITMAP]);
		if (!scratch) {
			devstate_dev_err(dev, "%s: out of memory", step);
			return -ENOMEM;
		}
	}
	while (devstate_slicer_next(&sl, &slice)) {
		rc = query_slice(dev, step, &slice, bitmap, scratch);
		if (rc < 0)
			break;
	}
	free(scratch);
	if (rc == 0 && dirty)
		*dirty = devstate_bitmap_count(bitmap, 0, page_nr);
	return rc;
}

DEVSTATE_EXPORT int devstate_device_dirty_bitmap(struct devstate_device *dev,
						 uint64_t start_addr,
						 uint64_t page_nr,
						 uint64_t *bitmap)
{
	if (!dev || !bitmap)
		return -EINVAL;
	return devstate_dev_dirty_bitmap(dev, "dirty bitmap", start_addr,
					 page_nr, bitmap, NULL);
}

DEVSTATE_EXPORT int devstate_device_digest(struct devstate_device *dev,
					   uint32_t *crc)
{
	if (!dev || !crc)
		return -EINVAL;
	if (!dev->ops->digest)
		return -EOPNOTSUPP;
	return dev->ops->digest(dev->priv, crc);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target 3: a save session against a hostile device.
 *
 * The device is a transport whose every answer comes from the fuzzer's
 * bytes: which regions exist and how large they are (0, tiny, huge,
 * larger than anything sensible), whether they map, the version and caps,
 * every control-field value (sizes larger than regions, sizes that change
 * between calls, whatever pos reads back), every data byte, and an error
 * at any step.  When the bytes run out the device fails every access with
 * EIO, so each input is a finite script.
 *
 * The library must never crash, leak, hang or allocate what a device
 * told it to, must access only the regions and control fields that
 * exist, within their bounds, at their width, must never write an invalid
 * device state, and a save that completes must have produced a stream
 * that decodes to END.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devstate.h"
#include "libdevstate/core.h"
#include "libdevstate/device.h"
#include "libdevstate/stream.h"
#include "transports/transport.h"
#include "fuzz/fuzz.h"

#define MAP_MAX		(1u << 20)	/* the hostile device maps at most */
#define STEPS_MAX	64

struct hostile {
	struct fz z;
	struct devstate_regions reg;
	bool regions_known;
	uint8_t *map[DEVSTATE_REGION_COUNT];
	uint64_t ops;
};

static struct fz *script;	/* set before each open */

static const int errs[] = {
	EINVAL, EBUSY, ENOSPC, EIO, EINTR, EAGAIN, ENOMEM, EFAULT, ENODEV,
	EPERM, EROFS, ERANGE
};

/* An error for this access, or 0: one byte per access.  Out of bytes:
 * the device is gone. */
static int hostile_err(struct hostile *h, char *err, size_t errlen)
{
	h->ops++;
	return fz_device_err(&h->z, errs, sizeof(errs) / sizeof(errs[0]), err,
			     errlen);
}

static int h_open(const char *args, void **priv, char *err, size_t errlen)
{
	struct hostile *h;

	(void)args;
	h = calloc(1, sizeof(*h));
	if (!h) {
		devstate_msg(err, errlen, "out of memory");
		return -ENOMEM;
	}
	h->z = *script;
	*priv = h;
	return 0;
}

static void h_close(void *priv)
{
	struct hostile *h = priv;
	unsigned r;

	for (r = 0; r < DEVSTATE_REGION_COUNT; r++)
		free(h->map[r]);
	free(h);
}

static int h_regions(void *priv, struct devstate_regions *out, char *err,
		     size_t errlen)
{
	struct hostile *h = priv;
	unsigned r;
	int rc;

	rc = hostile_err(h, err, errlen);
	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++) {
		uint8_t b = fz_u8(&h->z);

		out->present[r] = !(b & 1) || r == DEVSTATE_REGION_CTL;
		out->mappable[r] = (b & 2) && r != DEVSTATE_REGION_CTL;
		if (b & 4)
			out->size[r] = fz_size(&h->z);
		else if (r == DEVSTATE_REGION_CTL)
			out->size[r] = 80;
		else
			out->size[r] = (uint64_t)((b >> 3) + 1) * 64;
		if (!out->present[r])
			out->size[r] = 0;
	}
	h->reg = *out;
	h->regions_known = true;
	return 0;
}

static void check_ctl(struct hostile *h, uint32_t off, uint32_t len)
{
	FZ_ASSERT(h->regions_known);
	FZ_ASSERT(len == 4 || len == 8);
	FZ_ASSERT(off % 4 == 0);
	FZ_ASSERT((uint64_t)off + len <= h->reg.size[DEVSTATE_REGION_CTL]);
}

static int h_ctl_read(void *priv, uint32_t off, void *buf, uint32_t len,
		      char *err, size_t errlen)
{
	struct hostile *h = priv;
	uint64_t v;
	int rc;

	check_ctl(h, off, len);
	rc = hostile_err(h, err, errlen);
	if (rc < 0)
		return rc;
	v = fz_size(&h->z);
	devstate_le_put(buf, len, v);
	return 0;
}

static int h_ctl_write(void *priv, uint32_t off, const void *buf,
		       uint32_t len, char *err, size_t errlen)
{
	struct hostile *h = priv;

	check_ctl(h, off, len);
	if (off == DEVSTATE_VERSION_OFFSET + 4)	/* device_state */
		FZ_ASSERT(devstate_le_get(buf, len) <= DEVSTATE_STATE_MAX);
	return hostile_err(h, err, errlen);
}

static void check_data(struct hostile *h, enum devstate_region r,
		       uint64_t off, size_t len)
{
	FZ_ASSERT(h->regions_known);
	FZ_ASSERT(r > DEVSTATE_REGION_CTL && r < DEVSTATE_REGION_COUNT);
	FZ_ASSERT(h->reg.present[r]);
	FZ_ASSERT(off <= h->reg.size[r] && len <= h->reg.size[r] - off);
}

static int h_data_read(void *priv, enum devstate_region r, uint64_t off,
		       void *buf, size_t len, char *err, size_t errlen)
{
	struct hostile *h = priv;
	size_t n;
	int rc;

	check_data(h, r, off, len);
	rc = hostile_err(h, err, errlen);
	if (rc < 0)
		return rc;
	n = fz_left(&h->z) < len ? fz_left(&h->z) : len;
	memcpy(buf, h->z.p + h->z.pos, n);
	memset((uint8_t *)buf + n, 0xa5, len - n);
	h->z.pos += n;
	return 0;
}

static int h_data_write(void *priv, enum devstate_region r, uint64_t off,
			const void *buf, size_t len, char *err,
			size_t errlen)
{
	struct hostile *h = priv;
	const volatile uint8_t *p = buf;
	uint8_t x = 0;
	size_t i;

	check_data(h, r, off, len);
	for (i = 0; i < len; i++)	/* every byte must be readable */
		x ^= p[i];
	(void)x;
	return hostile_err(h, err, errlen);
}

static int h_data_map(void *priv, enum devstate_region r, void **addr,
		      char *err, size_t errlen)
{
	struct hostile *h = priv;
	uint64_t size = h->reg.size[r];
	int rc;

	FZ_ASSERT(h->regions_known && h->reg.present[r] && h->reg.mappable[r]);
	rc = hostile_err(h, err, errlen);
	if (rc < 0)
		return rc;
	if (size > MAP_MAX || h->map[r])
		return -EOPNOTSUPP;
	h->map[r] = malloc(size ? size : 1);
	if (!h->map[r])
		return -ENOMEM;
	memset(h->map[r], 0x5a, size);
	*addr = h->map[r];
	return 0;
}

static const struct devstate_transport_ops hostile_ops = {
	.name = "hostile",
	.help = "hostile:  a device scripted by the fuzzer",
	.open = h_open,
	.close = h_close,
	.regions = h_regions,
	.ctl_read = h_ctl_read,
	.ctl_write = h_ctl_write,
	.data_read = h_data_read,
	.data_write = h_data_write,
	.data_map = h_data_map,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct devstate_save_opts opts = { 0 };
	struct devstate_device *dev;
	struct devstate_save *s;
	struct fz_sink out = { 0 };
	struct fz z, *ctl;
	char err[512];
	uint64_t bm[(1u << 12) / 64];
	int i, rc, completed = 0;
	uint8_t flags;

	/* the last byte picks the codec and options; the rest is the
	 * device's script, from which the harness also takes its next step
	 * (interleaved with the answers, so both are one finite script) */
	if (size < 2)
		return 0;
	flags = data[size - 1];
	fz_init(&z, data, size - 1);
	script = &z;
	rc = devstate_device_open_ops(&dev, &hostile_ops, "", 0, err,
				      sizeof(err));
	if (rc < 0) {
		FZ_ASSERT(err[0]);
		return 0;
	}
	opts.codec = (enum devstate_codec)(flags % 3);
	opts.record_bitmaps = !!(flags & 4);
	rc = devstate_save_new(&s, dev, &opts, fz_sink_write, &out);
	if (rc < 0) {
		devstate_device_free(dev);
		return 0;
	}
	ctl = &((struct hostile *)dev->priv)->z;
	rc = devstate_save_setup(s);
	for (i = 0; rc == 0 && i < STEPS_MAX; i++) {
		uint64_t pending, start, pages;
		uint8_t op = fz_u8(ctl);

		switch (op % 8) {
		case 0:
		case 1:
			rc = devstate_save_pending(s, &pending);
			break;
		case 2:
		case 3:
			rc = devstate_save_iterate(s);
			break;
		case 4:
			start = (uint64_t)fz_u8(ctl) * DEVSTATE_PAGE_SIZE;
			pages = fz_u8(ctl) % (sizeof(bm) * 8) + 1;
			memset(bm, 0, sizeof(bm));
			rc = devstate_save_log_sync(s, start, pages, bm);
			break;
		case 5:
			rc = devstate_save_stop(s);
			break;
		default:
			i = STEPS_MAX;
			break;
		}
	}
	if (rc == 0) {
		rc = devstate_save_complete(s);
		completed = rc == 0;
	}
	if (completed) {
		fz_check_stream(&out, DEVSTATE_PROTOCOL_REGIONS);
		devstate_save_cleanup(s);
	} else if (flags & 8) {
		devstate_save_cancel(s);
	}
	if (rc < 0)
		FZ_ASSERT(devstate_save_error(s)[0]);
	devstate_save_free(s);
	devstate_device_free(dev);
	free(out.buf);
	return 0;
}

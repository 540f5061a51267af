/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device handle: one transport plus what the core decided about it
 * (layout, caps, blocker) and the state the library confirmed.  The
 * session driver talks to the device only through these helpers; they
 * apply the core's rules (field access, per-state permissions) before any
 * byte moves, and word every failure as "<step>: <field/region> ...".
 */
#ifndef DEVSTATE_DEVICE_H
#define DEVSTATE_DEVICE_H

#include "libdevstate/core.h"
#include "transports/transport.h"

struct devstate_device {
	const struct devstate_transport_ops *ops;
	void *priv;
	unsigned flags;
	struct devstate_regions regions;
	const struct devstate_layout *layout;	/* NULL when blocked early */
	uint32_t version;
	uint32_t caps;
	uint32_t state;				/* last confirmed */
	uint32_t protocol;			/* DEVSTATE_PROTOCOL_* */
	uint64_t mig2_flags;			/* protocol 2: the device's */
	uint32_t mig2_state;			/* protocol 2: last confirmed */
	struct devstate_blocker_info blocker;
	void *map[DEVSTATE_REGION_COUNT];	/* mapped data regions */
	char err[DEVSTATE_ERR_MAX];
};

/* Open a device on a transport that is not in the registry (test and
 * fuzzing seam: a scripted or hostile device); otherwise exactly as
 * devstate_device_open() with "NAME:args". */
int devstate_device_open_ops(struct devstate_device **out,
			     const struct devstate_transport_ops *ops,
			     const char *args, unsigned flags, char *errbuf,
			     size_t errlen);

/* Set dev->err (printf-style). */
void devstate_dev_err(struct devstate_device *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* -EOPNOTSUPP (with the blocker sentence in dev->err) when blocked. */
int devstate_dev_usable(struct devstate_device *dev);

/* One control field, checked against the layout (exists, readable or
 * writable).  step names the flow step for the error sentence. */
int devstate_dev_read_field(struct devstate_device *dev, const char *step,
			    enum devstate_field field, uint64_t *val);
int devstate_dev_write_field(struct devstate_device *dev, const char *step,
			     enum devstate_field field, uint64_t val);

/* Data region access (the map when there is one, else read/write). */
int devstate_dev_data_read(struct devstate_device *dev, const char *step,
			   enum devstate_region r, uint64_t off, void *buf,
			   size_t len);
int devstate_dev_data_write(struct devstate_device *dev, const char *step,
			    enum devstate_region r, uint64_t off,
			    const void *buf, size_t len);
/* The mapping of a data region, or NULL. */
static inline void *devstate_dev_map(const struct devstate_device *dev,
				     enum devstate_region r)
{
	return dev->map[r];
}

/* Write device_state after checking the transition with the core; on
 * success dev->state follows. */
int devstate_dev_set_state(struct devstate_device *dev, const char *step,
			   uint32_t state);

/* Check that the confirmed state permits op (core table); -EBUSY with a
 * sentence otherwise. */
int devstate_dev_permit(struct devstate_device *dev, const char *step,
			enum devstate_op op);

/* Query the dirty bitmap of [start_addr, +page_nr pages) slice by slice
 * and OR it into bitmap; *dirty (if not NULL) gets the dirty count of the
 * whole caller range afterwards. */
int devstate_dev_dirty_bitmap(struct devstate_device *dev, const char *step,
			      uint64_t start_addr, uint64_t page_nr,
			      uint64_t *bitmap, uint64_t *dirty);

/* Render an errno from the device as a sentence with the step, what was
 * accessed, what the errno means in the device's protocol family, the
 * transport's own words and (region protocol) the state (SPEC 11
 * errors). */
int devstate_dev_fail(struct devstate_device *dev, int rc, const char *step,
		      const char *what);

/* ---------------------------------------------------------------- */
/* Protocol family 2 (device-mig2.c): the kernel's migration uAPI v2.  */

/* At open: 1 when the transport answered the v2 probe (dev is then a
 * protocol-2 handle; a flag set the core refuses becomes the blocker),
 * 0 when it does not speak v2 (the region protocol is negotiated next),
 * or a negative errno when the probe failed. */
int devstate_mig2_attach(struct devstate_device *dev);

/* -EOPNOTSUPP with a sentence naming the call to use instead when dev
 * speaks protocol 2 and api is a region-protocol call; else 0. */
int devstate_dev_regions_only(struct devstate_device *dev, const char *api,
			      const char *instead);

/* Re-read the device's state into dev->mig2_state. */
int devstate_dev_mig2_refresh(struct devstate_device *dev, const char *step);

/* Walk to target one arc at a time along the core's route (every arc is
 * checked with devstate_mig2_next_step()).  On a failed arc the state is
 * re-read and recorded, and the sentence says which arc failed and where
 * the device is.  A data session the device opens for a saving state or
 * RESUMING belongs to the caller; it is gone once that state is left. */
int devstate_dev_mig2_goto(struct devstate_device *dev, const char *step,
			   uint32_t target);

/* Best effort back to target (RUNNING for a save, STOP for a load): the
 * core's route from the state the device reports, else a reset (the device
 * is RUNNING afterwards) and on to target.  A device in RESUMING is always
 * reset: every route out of RESUMING starts with RESUMING -> STOP, the arc
 * on which a driver loads the data it took, and an unwind follows a failed
 * or abandoned load whose data must not be loaded.  dev->err says what
 * happened on the way.  0 when the device reached target. */
int devstate_dev_mig2_unwind(struct devstate_device *dev, const char *step,
			     uint32_t target);

/* Transport wrappers: dev->err gets "<step>: <what>: <transport words>". */
int devstate_dev_mig2_read(struct devstate_device *dev, const char *step,
			   void *buf, size_t len, size_t *got);
int devstate_dev_mig2_write(struct devstate_device *dev, const char *step,
			    const void *buf, size_t len);
int devstate_dev_mig2_precopy_info(struct devstate_device *dev,
				   const char *step, uint64_t *initial,
				   uint64_t *dirty);
int devstate_dev_mig2_data_size(struct devstate_device *dev,
				const char *step, uint64_t *bytes);

#endif /* DEVSTATE_DEVICE_H */

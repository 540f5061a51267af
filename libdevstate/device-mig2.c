/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Device handles speaking protocol family 2, the kernel's migration uAPI
 * v2: the probe at open, the walk along the core's route one arc at a
 * time, the unwind after a failure, and the public calls for this family.
 *
 * The core (mig2.c) decides every arc; the transport carries it out.  The
 * data session (the kernel's data fd) belongs to the transport: it opens
 * with a saving state or RESUMING and is gone once that state is left, so
 * nothing here reads or writes after leaving one.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "libdevstate/device.h"
#include "libdevstate/mig2.h"

static const char *sname(uint32_t state)
{
	const char *n = devstate_mig2_state_name(state);

	return n ? n : "unknown";
}

/* Append "; <fmt>" to dev->err. */
static void err_append(struct devstate_device *dev, const char *fmt,
		       const char *a, const char *b)
{
	size_t n = strlen(dev->err);

	if (n + 3 >= sizeof(dev->err))
		return;
	snprintf(dev->err + n, sizeof(dev->err) - n, "; ");
	n += 2;
	snprintf(dev->err + n, sizeof(dev->err) - n, fmt, a, b);
}

int devstate_mig2_attach(struct devstate_device *dev)
{
	struct devstate_blocker_info *b = &dev->blocker;
	uint64_t flags = 0;
	uint32_t state;
	int rc;

	if (!dev->ops->mig2_probe)
		return 0;
	dev->err[0] = '\0';
	rc = dev->ops->mig2_probe(dev->priv, &flags, dev->err,
				  sizeof(dev->err));
	if (rc == -EOPNOTSUPP) {
		dev->err[0] = '\0';
		return 0;
	}
	if (rc < 0)
		return devstate_dev_fail(dev, rc, "open",
				 "probing the migration uAPI v2 (VFIO_DEVICE_FEATURE_MIGRATION)");
	dev->protocol = DEVSTATE_PROTOCOL_MIG2;
	dev->mig2_flags = flags;
	dev->state = DEVSTATE_STATE_NONE;
	memset(&dev->regions, 0, sizeof(dev->regions));
	rc = devstate_mig2_flags_check(flags);
	if (rc < 0) {
		b->code = DEVSTATE_BLOCKER_MIG2_FLAGS;
		if (!(flags & DEVSTATE_MIG2_F_STOP_COPY))
			devstate_msg(b->reason, sizeof(b->reason),
				     "the device speaks the kernel's migration uAPI v2 but its flags 0x%" PRIx64 " lack STOP_COPY, which the uAPI requires",
				     flags);
		else
			devstate_msg(b->reason, sizeof(b->reason),
				     "the device speaks the kernel's migration uAPI v2 with flags 0x%" PRIx64 " this library does not know (0x%" PRIx64 "): a new flag may bring states and arcs it cannot route",
				     flags, flags & ~(uint64_t)DEVSTATE_MIG2_F_KNOWN);
		dev->mig2_state = DEVSTATE_MIG2_ERROR;
		return 1;
	}
	dev->err[0] = '\0';
	rc = dev->ops->mig2_get_state(dev->priv, &state, dev->err,
				      sizeof(dev->err));
	if (rc == 0 && !devstate_mig2_state_valid(flags, state))
		rc = devstate_transport_err(dev->err, sizeof(dev->err), -EIO,
					    "", "state %" PRIu32 " is not valid for flags 0x%" PRIx64,
					    state, flags);
	if (rc < 0) {
		b->code = DEVSTATE_BLOCKER_IO;
		devstate_msg(b->reason, sizeof(b->reason),
			     "reading the migration state failed: %s",
			     dev->err[0] ? dev->err : strerror(-rc));
		dev->mig2_state = DEVSTATE_MIG2_ERROR;
		return 1;
	}
	dev->mig2_state = state;
	b->code = DEVSTATE_BLOCKER_NONE;
	b->reason[0] = '\0';
	return 1;
}

int devstate_dev_regions_only(struct devstate_device *dev, const char *api,
			      const char *instead)
{
	if (dev->protocol != DEVSTATE_PROTOCOL_MIG2)
		return 0;
	devstate_dev_err(dev, "%s: the device speaks the kernel's migration uAPI v2, not the region protocol; %s",
			 api, instead);
	return -EOPNOTSUPP;
}

int devstate_dev_mig2_refresh(struct devstate_device *dev, const char *step)
{
	uint32_t state;
	int rc;

	dev->err[0] = '\0';
	rc = dev->ops->mig2_get_state(dev->priv, &state, dev->err,
				      sizeof(dev->err));
	if (rc < 0)
		return devstate_dev_fail(dev, rc, step,
					 "reading the device state");
	if (state >= DEVSTATE_MIG2_NR_STATES ||
	    (state != DEVSTATE_MIG2_ERROR &&
	     !devstate_mig2_state_valid(dev->mig2_flags, state))) {
		devstate_dev_err(dev, "%s: the device reports state %" PRIu32 ", which a device with flags 0x%" PRIx64 " cannot be in",
				 step, state, dev->mig2_flags);
		return -EIO;
	}
	dev->mig2_state = state;
	return 0;
}

int devstate_dev_mig2_goto(struct devstate_device *dev, const char *step,
			   uint32_t target)
{
	char what[96];
	uint32_t next;
	int rc;

	while (dev->mig2_state != target) {
		rc = devstate_mig2_next_step(dev->mig2_flags, dev->mig2_state,
					     target, &next);
		if (rc < 0) {
			devstate_dev_err(dev, "%s: no route from %s to %s for a device with flags 0x%" PRIx64,
					 step, sname(dev->mig2_state),
					 sname(target), dev->mig2_flags);
			return -EINVAL;
		}
		dev->err[0] = '\0';
		rc = dev->ops->mig2_set_state(dev->priv, next, dev->err,
					      sizeof(dev->err));
		if (rc < 0) {
			uint32_t from = dev->mig2_state;

			snprintf(what, sizeof(what), "moving the device from %s to %s",
				 sname(from), sname(next));
			devstate_dev_fail(dev, rc, step, what);
			/* where is it now?  The answer decides the unwind. */
			{
				char keep[DEVSTATE_ERR_MAX];
				uint32_t st;
				int r2;

				snprintf(keep, sizeof(keep), "%s", dev->err);
				dev->err[0] = '\0';
				r2 = dev->ops->mig2_get_state(dev->priv, &st,
							      dev->err,
							      sizeof(dev->err));
				if (r2 == 0 && st < DEVSTATE_MIG2_NR_STATES)
					dev->mig2_state = st;
				else
					dev->mig2_state = DEVSTATE_MIG2_ERROR;
				snprintf(dev->err, sizeof(dev->err), "%s", keep);
				if (r2 == 0)
					err_append(dev, "the device now reports state %s%s",
						   sname(dev->mig2_state), "");
				else
					err_append(dev, "reading its state failed too%s%s",
						   "", "");
			}
			return rc;
		}
		dev->mig2_state = next;
	}
	return 0;
}

int devstate_dev_mig2_unwind(struct devstate_device *dev, const char *step,
			     uint32_t target)
{
	char keep[DEVSTATE_ERR_MAX];
	uint32_t next;
	int rc;

	snprintf(keep, sizeof(keep), "%s", dev->err);
	rc = devstate_dev_mig2_refresh(dev, step);
	if (rc == 0 && dev->mig2_state == target)
		goto done;
	/* never out of RESUMING by its arc: that would load unverified data */
	if (rc == 0 && dev->mig2_state != DEVSTATE_MIG2_ERROR &&
	    dev->mig2_state != DEVSTATE_MIG2_RESUMING &&
	    devstate_mig2_next_step(dev->mig2_flags, dev->mig2_state, target,
				    &next) == 0) {
		rc = devstate_dev_mig2_goto(dev, step, target);
		if (rc == 0)
			goto done;
	}
	/* ERROR, RESUMING, no route, or the route failed: a reset is the way
	 * out (it discards whatever a RESUMING device took) */
	if (!dev->ops->mig2_reset) {
		snprintf(dev->err, sizeof(dev->err), "%s", keep);
		err_append(dev, "the device cannot be reset%s%s", "", "");
		return -EOPNOTSUPP;
	}
	dev->err[0] = '\0';
	rc = dev->ops->mig2_reset(dev->priv, dev->err, sizeof(dev->err));
	if (rc < 0) {
		devstate_dev_fail(dev, rc, step, "resetting the device");
		return rc;
	}
	dev->mig2_state = DEVSTATE_MIG2_RUNNING;
	rc = devstate_dev_mig2_refresh(dev, step);
	if (rc == 0)
		rc = devstate_dev_mig2_goto(dev, step, target);
	if (rc < 0)
		return rc;
done:
	snprintf(dev->err, sizeof(dev->err), "%s", keep);
	return 0;
}

int devstate_dev_mig2_read(struct devstate_device *dev, const char *step,
			   void *buf, size_t len, size_t *got)
{
	int rc;

	*got = 0;
	dev->err[0] = '\0';
	rc = dev->ops->mig2_read(dev->priv, buf, len, got, dev->err,
				 sizeof(dev->err));
	if (rc < 0) {
		char what[96];

		snprintf(what, sizeof(what), "reading migration data in state %s",
			 sname(dev->mig2_state));
		return devstate_dev_fail(dev, rc, step, what);
	}
	if (*got > len) {
		devstate_dev_err(dev, "%s: the transport read %zu bytes into a buffer of %zu",
				 step, *got, len);
		*got = 0;
		return -EIO;
	}
	return 0;
}

int devstate_dev_mig2_write(struct devstate_device *dev, const char *step,
			    const void *buf, size_t len)
{
	int rc;

	dev->err[0] = '\0';
	rc = dev->ops->mig2_write(dev->priv, buf, len, dev->err,
				  sizeof(dev->err));
	if (rc < 0) {
		char what[96];

		snprintf(what, sizeof(what), "writing %zu bytes of migration data in state %s",
			 len, sname(dev->mig2_state));
		return devstate_dev_fail(dev, rc, step, what);
	}
	return 0;
}

int devstate_dev_mig2_precopy_info(struct devstate_device *dev,
				   const char *step, uint64_t *initial,
				   uint64_t *dirty)
{
	int rc;

	if (!dev->ops->mig2_precopy_info)
		return -EOPNOTSUPP;
	dev->err[0] = '\0';
	rc = dev->ops->mig2_precopy_info(dev->priv, initial, dirty, dev->err,
					 sizeof(dev->err));
	if (rc < 0)
		return devstate_dev_fail(dev, rc, step,
				 "asking for the pre-copy sizes (VFIO_MIG_GET_PRECOPY_INFO)");
	return 0;
}

int devstate_dev_mig2_data_size(struct devstate_device *dev,
				const char *step, uint64_t *bytes)
{
	int rc;

	if (!dev->ops->mig2_data_size)
		return -EOPNOTSUPP;
	dev->err[0] = '\0';
	rc = dev->ops->mig2_data_size(dev->priv, bytes, dev->err,
				      sizeof(dev->err));
	if (rc < 0 && rc != -EOPNOTSUPP)
		return devstate_dev_fail(dev, rc, step,
				 "asking for the stop-copy size (MIG_DATA_SIZE)");
	return rc;
}

/* ---------------------------------------------------------------- */
/* Public calls. */

static int need_mig2(struct devstate_device *dev, const char *api)
{
	if (dev->protocol == DEVSTATE_PROTOCOL_MIG2)
		return 0;
	devstate_dev_err(dev, "%s: the device speaks the proposal's region protocol, not the kernel's migration uAPI v2",
			 api);
	return -EOPNOTSUPP;
}

DEVSTATE_EXPORT uint32_t
devstate_device_protocol(const struct devstate_device *dev)
{
	return dev ? dev->protocol : 0;
}

DEVSTATE_EXPORT uint32_t
devstate_device_mig2_state(const struct devstate_device *dev)
{
	return dev && dev->protocol == DEVSTATE_PROTOCOL_MIG2 ?
	       dev->mig2_state : DEVSTATE_MIG2_ERROR;
}

DEVSTATE_EXPORT int devstate_device_mig2_info(struct devstate_device *dev,
					      struct devstate_mig2_info *info)
{
	int rc;

	if (!dev || !info)
		return -EINVAL;
	rc = need_mig2(dev, "mig2 info");
	if (rc < 0)
		return rc;
	memset(info, 0, sizeof(*info));
	info->flags = dev->mig2_flags;
	rc = devstate_dev_usable(dev);
	if (rc < 0)
		return rc;
	rc = devstate_dev_mig2_refresh(dev, "mig2 info");
	if (rc < 0)
		return rc;
	info->state = dev->mig2_state;
	info->data_size_status = devstate_dev_mig2_data_size(dev, "mig2 info",
							     &info->stop_copy_bytes);
	if (info->data_size_status < 0)
		info->stop_copy_bytes = 0;
	if (dev->mig2_state == DEVSTATE_MIG2_PRE_COPY ||
	    dev->mig2_state == DEVSTATE_MIG2_PRE_COPY_P2P)
		info->precopy_status =
			devstate_dev_mig2_precopy_info(dev, "mig2 info",
						       &info->initial_bytes,
						       &info->dirty_bytes);
	else
		info->precopy_status = -EBADF;
	if (info->precopy_status < 0)
		info->initial_bytes = info->dirty_bytes = 0;
	dev->err[0] = '\0';
	return 0;
}

DEVSTATE_EXPORT int devstate_device_mig2_set_state(struct devstate_device *dev,
						   uint32_t state)
{
	int rc;

	if (!dev)
		return -EINVAL;
	rc = need_mig2(dev, "set state");
	if (rc < 0)
		return rc;
	rc = devstate_dev_usable(dev);
	if (rc < 0)
		return rc;
	if (!devstate_mig2_state_valid(dev->mig2_flags, state) ||
	    state == DEVSTATE_MIG2_ERROR) {
		devstate_dev_err(dev, "set state: %s is not a state a device with flags 0x%" PRIx64 " can be set to",
				 devstate_mig2_state_name(state) ?
				 devstate_mig2_state_name(state) : "that",
				 dev->mig2_flags);
		return -EINVAL;
	}
	return devstate_dev_mig2_goto(dev, "set state", state);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target 5: a save session against a hostile device speaking the
 * kernel's migration uAPI v2 (protocol family 2).
 *
 * The device is a scripted transport ops table (opened with
 * devstate_device_open_ops(), as fuzz-save does for the region protocol)
 * whose every answer comes from the fuzzer's bytes: the v2 flags the probe
 * reports (legal sets, or any bits), the state get_state reports (the one
 * it is in, or any other number), whether a set_state fails (and with
 * which errno), what each read of the data session returns (bytes, 0 for
 * "nothing more now" / end of file, more than asked, an error), the
 * pre-copy sizes and the stop-copy size estimate (anything up to 2^64-1),
 * and whether a reset works.  When the bytes run out every call fails
 * with EIO, so each input is a finite script.
 *
 * The harness keeps the transport's side of the contract
 * (transports/transport.h): the data session opens on entering the saving
 * group or RESUMING, carries on between saving states, closes with any
 * other change, with every failed one and with a reset.  Invariants:
 *   - every set_state the library asks for is one arc of the core
 *     (devstate_mig2_arc()) from the state the device last reported or
 *     entered, for the flags it reported;
 *   - no read without a data session (it was left), no write at all (a
 *     save), no pre-copy info outside a pre-copy state;
 *   - nothing the device claims is allocated (data_size / precopy_info
 *     are estimates: libFuzzer's -malloc_limit_mb catches a violation);
 *   - a failed step ends with the device back in RUNNING or with a reset
 *     tried on the way (a failed reset is all a library can do);
 *   - a completed save produced a stream that decodes to END, and left
 *     the device in STOP without a data session.
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
#include "libdevstate/mig2.h"
#include "libdevstate/stream.h"
#include "transports/transport.h"
#include "fuzz/fuzz.h"

#define STEPS_MAX	64

struct hostile {
	struct fz z;
	bool probed;
	uint64_t flags;		/* as reported by the probe */
	uint32_t state;		/* last reported or entered */
	bool fd;		/* a data session is open */
	uint64_t resets;	/* resets the library asked for */
	uint64_t reads;
};

static struct fz *script;	/* set before each open */
static int trace = -1;		/* FUZZ_MIG2_VERBOSE: every call */

#define TRACE(...)							\
	do {								\
		if (trace < 0)						\
			trace = getenv("FUZZ_MIG2_VERBOSE") != NULL;	\
		if (trace)						\
			fprintf(stderr, "  " __VA_ARGS__);		\
	} while (0)

static const int errs[] = {
	EINVAL, EBUSY, EIO, EINTR, EAGAIN, ENOMEM, EFAULT, ENODEV, EPERM,
	ENOMSG, EBADF, EOPNOTSUPP
};

/* An error for this call, or 0: one byte per call.  Out of bytes: the
 * device is gone. */
static int hostile_err(struct hostile *h, char *err, size_t errlen)
{
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
	h->state = DEVSTATE_MIG2_RUNNING;
	*priv = h;
	return 0;
}

static void h_close(void *priv)
{
	free(priv);
}

/* The region protocol: never used once the v2 probe answered. */
static int h_regions(void *priv, struct devstate_regions *out, char *err,
		     size_t errlen)
{
	struct hostile *h = priv;

	(void)out;
	FZ_ASSERT(!h->probed);
	devstate_msg(err, errlen, "hostile: no regions");
	return -EIO;
}

static int h_ctl_read(void *priv, uint32_t off, void *buf, uint32_t len,
		      char *err, size_t errlen)
{
	(void)priv; (void)off; (void)buf; (void)len; (void)err; (void)errlen;
	FZ_ASSERT(!"region-protocol control read on a v2 device");
	return -EIO;
}

static int h_ctl_write(void *priv, uint32_t off, const void *buf,
		       uint32_t len, char *err, size_t errlen)
{
	(void)priv; (void)off; (void)buf; (void)len; (void)err; (void)errlen;
	FZ_ASSERT(!"region-protocol control write on a v2 device");
	return -EIO;
}

static int h_data_read(void *priv, enum devstate_region r, uint64_t off,
		       void *buf, size_t len, char *err, size_t errlen)
{
	(void)priv; (void)r; (void)off; (void)buf; (void)len; (void)err;
	(void)errlen;
	FZ_ASSERT(!"region-protocol data read on a v2 device");
	return -EIO;
}

static int h_data_write(void *priv, enum devstate_region r, uint64_t off,
			const void *buf, size_t len, char *err,
			size_t errlen)
{
	(void)priv; (void)r; (void)off; (void)buf; (void)len; (void)err;
	(void)errlen;
	FZ_ASSERT(!"region-protocol data write on a v2 device");
	return -EIO;
}

static int h_probe(void *priv, uint64_t *flags, char *err, size_t errlen)
{
	struct hostile *h = priv;
	uint8_t b;
	int rc;

	rc = hostile_err(h, err, errlen);
	if (rc < 0)
		return rc;
	b = fz_u8(&h->z);
	if (b < 0xf0)	/* a legal set, mostly */
		h->flags = (b & DEVSTATE_MIG2_F_KNOWN) |
			   DEVSTATE_MIG2_F_STOP_COPY;
	else
		h->flags = fz_u64(&h->z);
	h->probed = true;
	*flags = h->flags;
	return 0;
}

static int h_get_state(void *priv, uint32_t *state, char *err,
		       size_t errlen)
{
	struct hostile *h = priv;
	uint8_t b;
	int rc;

	FZ_ASSERT(h->probed);
	rc = hostile_err(h, err, errlen);
	if (rc < 0)
		return rc;
	b = fz_u8(&h->z);
	if (b >= 0xe0) {
		/* another state: any of the eight, or no state at all */
		h->state = b >= 0xfc ? fz_u32(&h->z) : (uint32_t)(b & 7);
		/* a device that says it moved has closed its data fd
		 * unless it stayed in the saving group */
		if (!devstate_mig2_state_saving(h->state))
			h->fd = false;
	}
	*state = h->state;
	TRACE("get_state: %u\n", h->state);
	return 0;
}

static int h_set_state(void *priv, uint32_t to, char *err, size_t errlen)
{
	struct hostile *h = priv;
	uint32_t from = h->state;
	int rc;

	FZ_ASSERT(h->probed);
	FZ_ASSERT(to != DEVSTATE_MIG2_ERROR);
	FZ_ASSERT(devstate_mig2_state_valid(h->flags, to));
	FZ_ASSERT(devstate_mig2_arc(h->flags, from, to) == 0);
	rc = hostile_err(h, err, errlen);
	if (rc < 0) {
		h->fd = false;	/* never reused after a failure */
		if (fz_u8(&h->z) & 1)	/* half-way: ERROR */
			h->state = DEVSTATE_MIG2_ERROR;
		TRACE("set_state %u -> %u: %d, now %u\n", from, to, rc,
		      h->state);
		return rc;
	}
	TRACE("set_state %u -> %u\n", from, to);
	if (devstate_mig2_state_saving(to) && devstate_mig2_state_saving(from))
		;	/* the session carries on */
	else
		h->fd = devstate_mig2_state_saving(to) ||
			to == DEVSTATE_MIG2_RESUMING;
	h->state = to;
	return 0;
}

static int h_read(void *priv, void *buf, size_t len, size_t *got,
		  char *err, size_t errlen)
{
	struct hostile *h = priv;
	uint64_t n;
	size_t take;
	uint8_t b;
	int rc;

	FZ_ASSERT(h->fd);
	FZ_ASSERT(devstate_mig2_state_saving(h->state));
	FZ_ASSERT(len > 0);
	h->reads++;
	rc = hostile_err(h, err, errlen);
	TRACE("read %zu: %d\n", len, rc);
	if (rc < 0)
		return rc;
	b = fz_u8(&h->z);
	if (b < 0x20) {
		*got = 0;	/* nothing more now / end of file */
		return 0;
	}
	if (b == 0xff) {
		*got = len + 1;	/* a transport that counts wrong */
		return 0;
	}
	n = b < 0x80 ? (uint64_t)b : fz_size(&h->z);
	if (n == 0)
		n = 1;
	if (n > len)
		n = len;
	take = fz_left(&h->z) < n ? fz_left(&h->z) : (size_t)n;
	memcpy(buf, h->z.p + h->z.pos, take);
	memset((uint8_t *)buf + take, 0xa5, (size_t)n - take);
	h->z.pos += take;
	*got = (size_t)n;
	return 0;
}

static int h_write(void *priv, const void *buf, size_t len, char *err,
		   size_t errlen)
{
	(void)priv; (void)buf; (void)len; (void)err; (void)errlen;
	FZ_ASSERT(!"migration data written during a save");
	return -EIO;
}

static int h_precopy_info(void *priv, uint64_t *initial, uint64_t *dirty,
			  char *err, size_t errlen)
{
	struct hostile *h = priv;
	int rc;

	FZ_ASSERT(h->fd);
	FZ_ASSERT(h->state == DEVSTATE_MIG2_PRE_COPY ||
		  h->state == DEVSTATE_MIG2_PRE_COPY_P2P);
	rc = hostile_err(h, err, errlen);
	if (rc < 0)
		return rc;
	*initial = fz_size(&h->z);
	*dirty = fz_size(&h->z);
	return 0;
}

static int h_data_size(void *priv, uint64_t *bytes, char *err,
		       size_t errlen)
{
	struct hostile *h = priv;
	int rc;

	FZ_ASSERT(h->probed);
	rc = hostile_err(h, err, errlen);
	TRACE("data_size: %d\n", rc);
	if (rc < 0)
		return rc;
	*bytes = fz_size(&h->z);
	return 0;
}

static int h_reset(void *priv, char *err, size_t errlen)
{
	struct hostile *h = priv;
	int rc;

	FZ_ASSERT(h->probed);
	h->resets++;
	h->fd = false;
	rc = hostile_err(h, err, errlen);
	TRACE("reset: %d\n", rc);
	if (rc < 0)
		return rc;
	h->state = DEVSTATE_MIG2_RUNNING;
	return 0;
}

static const struct devstate_transport_ops hostile_ops = {
	.name = "hostile-mig2",
	.help = "hostile-mig2:  a v2 device scripted by the fuzzer",
	.open = h_open,
	.close = h_close,
	.regions = h_regions,
	.ctl_read = h_ctl_read,
	.ctl_write = h_ctl_write,
	.data_read = h_data_read,
	.data_write = h_data_write,
	.mig2_probe = h_probe,
	.mig2_get_state = h_get_state,
	.mig2_set_state = h_set_state,
	.mig2_read = h_read,
	.mig2_write = h_write,
	.mig2_precopy_info = h_precopy_info,
	.mig2_data_size = h_data_size,
	.mig2_reset = h_reset,
};

/* After a failed step: back in RUNNING, or a reset was tried. */
static void check_unwound(const struct hostile *h, uint64_t resets_before)
{
	if (h->state != DEVSTATE_MIG2_RUNNING && h->resets == resets_before)
		fprintf(stderr, "failed save left the device in state %u\n",
			h->state);
	FZ_ASSERT(h->state == DEVSTATE_MIG2_RUNNING ||
		  h->resets > resets_before);
	FZ_ASSERT(!h->fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct devstate_save_opts opts = { 0 };
	struct devstate_device *dev;
	struct devstate_save *s;
	struct fz_sink out = { 0 };
	struct hostile *h;
	struct fz z, *ctl;
	char err[512];
	uint64_t resets, pending;
	int i, rc, completed = 0;
	bool stopped = false;
	uint8_t flags;

	/* the last byte picks the codec and what happens after a failure;
	 * the rest is the device's script, from which the harness also
	 * takes its next step */
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
	h = dev->priv;
	opts.codec = (enum devstate_codec)(flags % 3);
	rc = devstate_save_new(&s, dev, &opts, fz_sink_write, &out);
	if (rc < 0) {
		devstate_device_free(dev);
		return 0;
	}
	FZ_ASSERT(devstate_device_protocol(dev) == DEVSTATE_PROTOCOL_MIG2);
	ctl = &h->z;
	resets = h->resets;
	rc = devstate_save_setup(s);
	/* a device not RUNNING at setup is not the library's to move */
	if (rc < 0 && rc != -EBUSY)
		check_unwound(h, resets);
	for (i = 0; rc == 0 && i < STEPS_MAX; i++) {
		uint8_t op = fz_u8(ctl);

		TRACE("step %d\n", op % 8);
		resets = h->resets;
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
			/* v2 has no dirty log: refused, session unharmed */
			FZ_ASSERT(devstate_save_log_sync(s, 0, 1, &pending) ==
				  -EOPNOTSUPP);
			break;
		case 5:
			/* once: a second stop is a caller's order error,
			 * which leaves the device alone */
			if (!stopped)
				rc = devstate_save_stop(s);
			stopped = true;
			break;
		default:
			i = STEPS_MAX;
			break;
		}
		if (rc < 0)
			check_unwound(h, resets);
	}
	if (rc == 0) {
		resets = h->resets;
		rc = devstate_save_complete(s);
		completed = rc == 0;
		if (rc < 0)
			check_unwound(h, resets);
	}
	if (getenv("FUZZ_MIG2_VERBOSE"))	/* which seeds complete */
		fprintf(stderr, "mig2 save: flags 0x%llx, rc %d, %zu stream bytes%s%s\n",
			(unsigned long long)h->flags, rc, out.len,
			rc ? ": " : "", rc ? devstate_save_error(s) : "");
	if (completed) {
		fz_check_stream(&out, DEVSTATE_PROTOCOL_MIG2);
		FZ_ASSERT(h->state == DEVSTATE_MIG2_STOP && !h->fd);
		if (flags & 16)
			devstate_save_cleanup(s);
	} else if (flags & 8) {
		resets = h->resets;
		if (devstate_save_cancel(s) == 0 && rc != -EBUSY)
			FZ_ASSERT(h->state == DEVSTATE_MIG2_RUNNING);
	}
	if (rc < 0)
		FZ_ASSERT(devstate_save_error(s)[0]);
	resets = h->resets;
	devstate_save_free(s);
	/* a completed save never cleaned up is abandoned: the source
	 * resumes (or was reset on the way) */
	if (completed && !(flags & 16))
		check_unwound(h, resets);
	FZ_ASSERT(!h->fd);
	devstate_device_free(dev);
	free(out.buf);
	return 0;
}

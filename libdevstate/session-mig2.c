/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session driver for protocol family 2, the kernel's migration uAPI
 * v2.  The same phases as the region protocol (SPEC 6), mapped onto the
 * v2 states:
 *
 *   setup     stream header (family 2, caps = the device's v2 flags); with
 *             PRE_COPY: RUNNING -> PRE_COPY (a data session opens)
 *   pending   PRE_COPY: the device's pre-copy sizes (initial + dirty);
 *             otherwise 0 (stop-copy: the MIG_DATA_SIZE estimate)
 *   iterate   PRE_COPY: one read session, everything the device has now,
 *             into MIG2_DATA sections of the next pass
 *   log_sync  -EOPNOTSUPP, session unharmed: uAPI v2 reports no
 *             system-memory dirty pages (DMA logging is not supported)
 *   stop      -> STOP_COPY along the core's route (from PRE_COPY through
 *             PRE_COPY_P2P when the device has P2P, the data session
 *             carrying on; from RUNNING through STOP)
 *   complete  stop if needed, read the stop-copy data to its end, END,
 *             then STOP
 *   cleanup   the device stays STOP
 *
 * Load: begin takes the device to STOP; a family-2 header takes it on to
 * RESUMING (a header of the other family is refused first, so nothing is
 * written); MIG2_DATA sections are written in order; finish, only after a
 * verified END, leaves RESUMING for STOP (the device validates what it
 * got) and then goes RUNNING.
 *
 * Failure: a save puts the source back to RUNNING, a load the destination
 * to STOP, by the core's route from the state the device reports, or by
 * a reset when there is none (ERROR), it fails, or the device is still in
 * RESUMING (leaving it by its arc would load the unverified data).  No
 * data session is used after its state is left.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libdevstate/mig2.h"
#include "libdevstate/session-common.h"
#include "libdevstate/session-mig2.h"
#include "libdevstate/stream.h"

/* Room for a device's sentence and what the session adds to it. */
#define M2_ERR_MAX	(2 * DEVSTATE_ERR_MAX)

/* One MIG2_DATA section carries at most this much. */
#define M2_BUF		(1u << 20)

struct devstate_m2_save {
	struct devstate_save_base b;	/* device, encoder, phase, stats */
	uint32_t pass;		/* pass number of the next read session */
	uint64_t offset;	/* data bytes written to the stream */
	uint8_t *buf;
	char err[M2_ERR_MAX];		/* b.err */
};

static const char *sname(uint32_t st)
{
	const char *n = devstate_mig2_state_name(st);

	return n ? n : "unknown";
}

static bool has_precopy(const struct devstate_device *dev)
{
	return dev->mig2_flags & DEVSTATE_MIG2_F_PRE_COPY;
}

int devstate_m2_save_new(struct devstate_m2_save **out,
			 struct devstate_device *dev,
			 const struct devstate_save_opts *opts,
			 devstate_write_fn write, void *opaque)
{
	struct devstate_save_opts o = { 0 };
	struct devstate_m2_save *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = devstate_save_base_init(&s->b, dev, opts, &o, write, opaque,
				     s->err, sizeof(s->err));
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->buf = malloc(M2_BUF);
	if (!s->buf) {
		devstate_enc_free(s->b.enc);
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

/*
 * Read from the data session until the device has nothing more now
 * (pre-copy) or until its end (stop-copy), in MIG2_DATA sections of up to
 * M2_BUF bytes.  *moved gets the bytes.
 */
static int save_drain(struct devstate_m2_save *s, const char *step,
		      uint32_t flags, uint64_t *moved)
{
	struct devstate_device *dev = s->b.dev;
	bool end = false;
	int rc;

	*moved = 0;
	while (!end) {
		size_t have = 0, got;

		while (have < M2_BUF) {
			rc = devstate_dev_mig2_read(dev, step, s->buf + have,
						    M2_BUF - have, &got);
			if (rc < 0)
				return save_dev_fail(s, rc);
			if (!got) {
				end = true;
				break;
			}
			have += got;
		}
		if (!have)
			break;
		rc = devstate_enc_mig2_data(s->b.enc, s->pass, flags, s->offset,
					    s->buf, have);
		if (rc < 0)
			return save_enc_fail(s, rc, step);
		s->offset += have;
		*moved += have;
		s->b.stats.memory_bytes += have;
	}
	if (*moved) {
		s->pass++;
		s->b.stats.passes++;
	}
	return 0;
}

int devstate_m2_save_setup(struct devstate_m2_save *s)
{
	struct devstate_device *dev = s->b.dev;
	struct devstate_stream_header h;
	const char *step = "setup";
	int rc;

	rc = save_order(s, step, P(SAVE_NEW));
	if (rc < 0)
		return rc;
	s->b.err[0] = '\0';
	rc = devstate_dev_mig2_refresh(dev, step);
	if (rc < 0)
		return save_dev_fail(s, rc);
	if (dev->mig2_state != DEVSTATE_MIG2_RUNNING) {
		save_err(s, "%s: the device is in state %s, not running: a save starts from a running device",
			 step, sname(dev->mig2_state));
		s->b.phase = SAVE_FAILED;	/* not ours to move */
		return -EBUSY;
	}
	memset(&h, 0, sizeof(h));
	h.format_version = DEVSTATE_STREAM_FORMAT;
	h.protocol = DEVSTATE_PROTOCOL_MIG2;
	h.proto_version = DEVSTATE_MIG2_UAPI_VERSION;
	h.caps = (uint32_t)dev->mig2_flags;
	h.page_size = DEVSTATE_PAGE_SIZE;
	snprintf(h.ident, sizeof(h.ident), "%s mig2", dev->ops->name);
	h.ident_len = (uint32_t)strlen(h.ident);
	rc = devstate_enc_header(s->b.enc, &h);
	if (rc < 0)
		return save_enc_fail(s, rc, step);
	if (has_precopy(dev)) {
		rc = devstate_dev_mig2_goto(dev, step, DEVSTATE_MIG2_PRE_COPY);
		if (rc < 0)
			return save_dev_fail(s, rc);
	}
	s->b.phase = SAVE_ACTIVE;
	return 0;
}

int devstate_m2_save_pending(struct devstate_m2_save *s, uint64_t *bytes)
{
	struct devstate_device *dev = s->b.dev;
	const char *step = "pending";
	uint64_t a = 0, b = 0;
	int rc;

	rc = save_order(s, step, P(SAVE_ACTIVE) | P(SAVE_STOPPED));
	if (rc < 0)
		return rc;
	*bytes = 0;
	if (s->b.phase == SAVE_ACTIVE && has_precopy(dev)) {
		rc = devstate_dev_mig2_precopy_info(dev, step, &a, &b);
		if (rc == -EOPNOTSUPP)
			return 0;
		if (rc < 0)
			return save_dev_fail(s, rc);
		*bytes = a > UINT64_MAX - b ? UINT64_MAX : a + b;
		return 0;
	}
	if (s->b.phase == SAVE_STOPPED) {
		rc = devstate_dev_mig2_data_size(dev, step, &a);
		if (rc == 0)
			*bytes = a;
		else if (rc != -EOPNOTSUPP)
			return save_dev_fail(s, rc);
	}
	dev->err[0] = '\0';
	return 0;
}

int devstate_m2_save_iterate(struct devstate_m2_save *s)
{
	const char *step = "iterate";
	uint64_t moved;
	int rc;

	rc = save_order(s, step, P(SAVE_ACTIVE) | P(SAVE_STOPPED));
	if (rc < 0)
		return rc;
	if (s->b.phase == SAVE_ACTIVE && !has_precopy(s->b.dev))
		return 0;	/* nothing moves before stop-copy */
	rc = save_drain(s, step, s->b.phase == SAVE_STOPPED ?
			DEVSTATE_MIG2_SEC_STOP_COPY : 0, &moved);
	if (rc == 0 && s->b.phase == SAVE_STOPPED)
		s->b.stats.stop_copy_bytes += moved;
	return rc;
}

int devstate_m2_save_log_sync(struct devstate_m2_save *s)
{
	int rc = save_order(s, "log-sync", P(SAVE_ACTIVE) | P(SAVE_STOPPED) |
			    P(SAVE_COMPLETED));

	if (rc < 0)
		return rc;
	save_err(s, "log-sync: the device speaks the kernel's migration uAPI v2, which reports no system-memory dirty pages (its DMA logging is not supported): treat the memory it can write as dirty");
	return -EOPNOTSUPP;
}

int devstate_m2_save_stop(struct devstate_m2_save *s)
{
	return devstate_save_base_step(&s->b, "stop", P(SAVE_ACTIVE),
				       DEVSTATE_MIG2_STOP_COPY, SAVE_STOPPED);
}

int devstate_m2_save_complete(struct devstate_m2_save *s)
{
	const char *step = "complete";
	uint64_t moved;
	int rc;

	rc = save_order(s, step, P(SAVE_ACTIVE) | P(SAVE_STOPPED));
	if (rc < 0)
		return rc;
	if (s->b.phase == SAVE_ACTIVE) {
		rc = devstate_save_base_step(&s->b, step, P(SAVE_ACTIVE),
					     DEVSTATE_MIG2_STOP_COPY,
					     SAVE_STOPPED);
		if (rc < 0)
			return rc;
	}
	rc = save_drain(s, step, DEVSTATE_MIG2_SEC_STOP_COPY, &moved);
	if (rc < 0)
		return rc;
	s->b.stats.stop_copy_bytes += moved;
	rc = devstate_enc_end(s->b.enc);
	if (rc < 0)
		return save_enc_fail(s, rc, step);
	s->b.stats.sections = devstate_enc_sections(s->b.enc);
	/* the data session ends here: nothing reads it any more */
	return devstate_save_base_step(&s->b, step, P(SAVE_STOPPED),
				       DEVSTATE_MIG2_STOP, SAVE_COMPLETED);
}

int devstate_m2_save_cleanup(struct devstate_m2_save *s)
{
	return devstate_save_base_step(&s->b, "cleanup", P(SAVE_COMPLETED),
				       DEVSTATE_MIG2_STOP, SAVE_CLEANED);
}

int devstate_m2_save_cancel(struct devstate_m2_save *s)
{
	struct devstate_device *dev = s->b.dev;

	if (s->b.phase == SAVE_NEW || s->b.phase == SAVE_CANCELLED) {
		s->b.phase = SAVE_CANCELLED;
		return 0;
	}
	if (devstate_dev_mig2_unwind(dev, "cancel", DEVSTATE_MIG2_RUNNING) < 0) {
		save_err(s, "%s", dev->err);
		return -EIO;
	}
	s->b.phase = SAVE_CANCELLED;
	return 0;
}

const char *devstate_m2_save_error(const struct devstate_m2_save *s)
{
	return s->b.err;
}

void devstate_m2_save_get_stats(const struct devstate_m2_save *s,
				struct devstate_save_stats *st)
{
	devstate_save_base_stats(&s->b, st);
}

void devstate_m2_save_free(struct devstate_m2_save *s)
{
	if (!s)
		return;
	if (s->b.phase == SAVE_ACTIVE || s->b.phase == SAVE_STOPPED ||
	    s->b.phase == SAVE_COMPLETED)
		devstate_m2_save_cancel(s);
	devstate_enc_free(s->b.enc);
	free(s->buf);
	free(s);
}

/* ================================================================== */
/* Load. */

struct devstate_m2_load {
	struct devstate_device *dev;
	struct devstate_dec *dec;
	enum devstate_load_phase phase;
	bool any_pass;
	uint32_t last_pass;
	struct devstate_load_stats stats;
	char err[M2_ERR_MAX];
};

/* The device goes (back) to STOP; say where it ended. */
static int load_fail(struct devstate_m2_load *l, int rc)
{
	struct devstate_device *dev = l->dev;
	char why[DEVSTATE_ERR_MAX];

	devstate_sess_first_err(l->err, sizeof(l->err), dev, rc);
	if (devstate_dev_mig2_unwind(dev, "recover", DEVSTATE_MIG2_STOP) < 0) {
		snprintf(why, sizeof(why), "%s", dev->err);
		devstate_sess_append(l->err, sizeof(l->err),
				     "; and stopping the device failed: %s",
				     why);
	}
	devstate_sess_append(l->err, sizeof(l->err),
			     " (device left in state %s)",
			     sname(dev->mig2_state));
	l->phase = LOAD_FAILED;
	return rc;
}

static int load_dev_fail(struct devstate_m2_load *l, int rc)
{
	load_err(l, "%s", l->dev->err);
	return load_fail(l, rc);
}

int devstate_m2_load_new(struct devstate_m2_load **out,
			 struct devstate_device *dev)
{
	struct devstate_m2_load *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	rc = devstate_dec_new(&l->dec);
	if (rc < 0) {
		free(l);
		return rc;
	}
	l->dev = dev;
	*out = l;
	return 0;
}

int devstate_m2_load_begin(struct devstate_m2_load *l)
{
	struct devstate_device *dev = l->dev;
	int rc;

	rc = devstate_load_order(l->err, sizeof(l->err), "begin", l->phase,
				 P(LOAD_NEW));
	if (rc < 0)
		return rc;
	rc = devstate_dev_mig2_refresh(dev, "begin");
	if (rc == 0)
		rc = devstate_dev_mig2_goto(dev, "begin", DEVSTATE_MIG2_STOP);
	if (rc < 0)
		return load_dev_fail(l, rc);
	l->phase = LOAD_BEGUN;
	return 0;
}

/* The header is checked before anything is written: only then RESUMING. */
static int load_header(struct devstate_m2_load *l,
		       const struct devstate_stream_header *h)
{
	const char *step = "stream header";
	int rc;

	if (h->protocol == DEVSTATE_PROTOCOL_REGIONS) {
		load_err(l, "%s: the stream was saved from a device speaking the proposal's region protocol; this device speaks the kernel's migration uAPI v2",
			 step);
		return load_fail(l, -EINVAL);
	}
	if (h->protocol != DEVSTATE_PROTOCOL_MIG2) {
		load_err(l, "%s: protocol family %u does not match this device (%u)",
			 step, h->protocol, DEVSTATE_PROTOCOL_MIG2);
		return load_fail(l, -EINVAL);
	}
	/* the data is the driver's to judge; the flags may differ (a source
	 * with PRE_COPY can feed a destination without it) */
	rc = devstate_dev_mig2_goto(l->dev, step, DEVSTATE_MIG2_RESUMING);
	if (rc < 0)
		return load_dev_fail(l, rc);
	l->phase = LOAD_STREAM;
	return 0;
}

static int load_data(struct devstate_m2_load *l,
		     const struct devstate_section *sec)
{
	int rc;

	rc = devstate_dev_mig2_write(l->dev, "load data", sec->data,
				     (size_t)sec->raw_len);
	if (rc < 0)
		return load_dev_fail(l, rc);
	l->stats.memory_bytes += sec->raw_len;
	if (!l->any_pass || sec->pass != l->last_pass) {
		l->stats.passes++;
		l->any_pass = true;
		l->last_pass = sec->pass;
	}
	return 0;
}

int devstate_m2_load_feed(struct devstate_m2_load *l, const void *buf,
			  size_t len)
{
	const unsigned char *p = buf;
	int rc;

	rc = devstate_load_order(l->err, sizeof(l->err), "feed", l->phase,
				 P(LOAD_BEGUN) | P(LOAD_STREAM) |
				 P(LOAD_ENDED));
	if (rc < 0)
		return l->phase == LOAD_FAILED ? -EIO : rc;
	while (len) {
		size_t used = 0;
		int ev;

		ev = devstate_dec_feed(l->dec, p, len, &used);
		if (ev < 0) {
			load_err(l, "stream: %s", devstate_dec_error(l->dec));
			return load_fail(l, ev);
		}
		p += used;
		len -= used;
		l->stats.stream_bytes += used;
		switch (ev) {
		case DEVSTATE_DEC_NEED_MORE:
			break;
		case DEVSTATE_DEC_HEADER:
			rc = load_header(l, devstate_dec_header(l->dec));
			if (rc < 0)
				return rc;
			break;
		case DEVSTATE_DEC_SECTION:
			l->stats.sections++;
			rc = load_data(l, devstate_dec_section(l->dec));
			if (rc < 0)
				return rc;
			break;
		case DEVSTATE_DEC_END:
			l->phase = LOAD_ENDED;
			break;
		default:
			load_err(l, "stream: unexpected decoder event %d", ev);
			return load_fail(l, -EPROTO);
		}
		if (ev == DEVSTATE_DEC_NEED_MORE && used == 0)
			break;
	}
	return 0;
}

int devstate_m2_load_finish(struct devstate_m2_load *l)
{
	struct devstate_device *dev = l->dev;
	int rc;

	rc = devstate_load_finish_order(l->err, sizeof(l->err), l->phase,
					l->stats.stream_bytes);
	if (rc == -EIO)
		return rc;
	if (rc < 0)
		return load_fail(l, rc);
	/* leaving RESUMING is when the device takes (or refuses) the data */
	rc = devstate_dev_mig2_goto(dev, "finish", DEVSTATE_MIG2_STOP);
	if (rc == 0)
		rc = devstate_dev_mig2_goto(dev, "finish",
					    DEVSTATE_MIG2_RUNNING);
	if (rc < 0)
		return load_dev_fail(l, rc);
	l->phase = LOAD_FINISHED;
	return 0;
}

const char *devstate_m2_load_error(const struct devstate_m2_load *l)
{
	return l->err;
}

void devstate_m2_load_get_stats(const struct devstate_m2_load *l,
				struct devstate_load_stats *st)
{
	*st = l->stats;
}

void devstate_m2_load_free(struct devstate_m2_load *l)
{
	if (!l)
		return;
	/* a load abandoned in RESUMING must not leave a data session nor
	 * load its data: the device is reset and stopped, as on failure */
	if (l->phase == LOAD_STREAM || l->phase == LOAD_ENDED)
		devstate_dev_mig2_unwind(l->dev, "abandon", DEVSTATE_MIG2_STOP);
	devstate_dec_free(l->dec);
	free(l);
}

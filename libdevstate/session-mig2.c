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
 * a reset when there is none (ERROR) or it fails.  No data session is
 * used after its state is left.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libdevstate/mig2.h"
#include "libdevstate/session-mig2.h"
#include "libdevstate/stream.h"

/* Room for a device's sentence and what the session adds to it. */
#define M2_ERR_MAX	(2 * DEVSTATE_ERR_MAX)

/* One MIG2_DATA section carries at most this much. */
#define M2_BUF		(1u << 20)

enum m2_save_phase {
	S_NEW = 0, S_ACTIVE, S_STOPPED, S_COMPLETED, S_CLEANED, S_CANCELLED,
	S_FAILED
};

static const char *const save_phase_names[] = {
	[S_NEW] = "new", [S_ACTIVE] = "pre-copy", [S_STOPPED] = "stopped",
	[S_COMPLETED] = "completed", [S_CLEANED] = "cleaned up",
	[S_CANCELLED] = "cancelled", [S_FAILED] = "failed",
};

struct devstate_m2_save {
	struct devstate_device *dev;
	struct devstate_enc *enc;
	devstate_write_fn write;
	void *opaque;
	enum m2_save_phase phase;
	uint32_t pass;		/* pass number of the next read session */
	uint64_t offset;	/* data bytes written to the stream */
	uint8_t *buf;
	struct devstate_save_stats stats;
	char err[M2_ERR_MAX];
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

static void save_err(struct devstate_m2_save *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void save_err(struct devstate_m2_save *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

static void append(char *buf, size_t size, const char *fmt, const char *a)
{
	size_t n = strlen(buf);

	/* a sentence cut at the end of the buffer is still one */
	if (n < size && snprintf(buf + n, size - n, fmt, a) >= (int)(size - n))
		buf[size - 1] = '\0';
}

/* Back to RUNNING; keep the first error and say if the way back failed. */
static int save_fail(struct devstate_m2_save *s, int rc)
{
	struct devstate_device *dev = s->dev;

	if (!s->err[0])
		save_err(s, "%s", dev->err[0] ? dev->err : strerror(-rc));
	if (devstate_dev_mig2_unwind(dev, "recover", DEVSTATE_MIG2_RUNNING) < 0)
		append(s->err, sizeof(s->err),
		       "; and setting the device back to running failed: %s",
		       dev->err);
	s->phase = S_FAILED;
	return rc;
}

static int save_dev_fail(struct devstate_m2_save *s, int rc)
{
	save_err(s, "%s", s->dev->err);
	return save_fail(s, rc);
}

static int save_enc_fail(struct devstate_m2_save *s, int rc, const char *step)
{
	save_err(s, "%s: writing the stream: %s", step,
		 devstate_enc_error(s->enc));
	return save_fail(s, rc);
}

static int save_order(struct devstate_m2_save *s, const char *step,
		      unsigned allowed)
{
	if (allowed & (1u << s->phase))
		return 0;
	save_err(s, "%s: not allowed now: the session is %s", step,
		 save_phase_names[s->phase]);
	return -EPROTO;
}

#define P(x) (1u << (x))

static int save_stream_write(void *opaque, const void *buf, size_t len)
{
	struct devstate_m2_save *s = opaque;
	int rc = s->write(s->opaque, buf, len);

	if (rc == 0)
		s->stats.stream_bytes += len;
	return rc > 0 ? -EIO : rc;
}

int devstate_m2_save_new(struct devstate_m2_save **out,
			 struct devstate_device *dev,
			 const struct devstate_save_opts *opts,
			 devstate_write_fn write, void *opaque)
{
	struct devstate_save_opts o = { 0 };
	struct devstate_m2_save *s;
	int rc;

	if (opts)
		o = *opts;
	if (!devstate_codec_name(o.codec) || o.codec == DEVSTATE_CODEC_ZERO) {
		devstate_dev_err(dev, "save: unknown codec %d", (int)o.codec);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->buf = malloc(M2_BUF);
	if (!s->buf) {
		free(s);
		return -ENOMEM;
	}
	s->dev = dev;
	s->write = write;
	s->opaque = opaque;
	rc = devstate_enc_new(&s->enc, save_stream_write, s, o.codec, o.level);
	if (rc < 0) {
		free(s->buf);
		free(s);
		return rc;
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
	struct devstate_device *dev = s->dev;
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
		rc = devstate_enc_mig2_data(s->enc, s->pass, flags, s->offset,
					    s->buf, have);
		if (rc < 0)
			return save_enc_fail(s, rc, step);
		s->offset += have;
		*moved += have;
		s->stats.memory_bytes += have;
	}
	if (*moved) {
		s->pass++;
		s->stats.passes++;
	}
	return 0;
}

int devstate_m2_save_setup(struct devstate_m2_save *s)
{
	struct devstate_device *dev = s->dev;
	struct devstate_stream_header h;
	const char *step = "setup";
	int rc;

	rc = save_order(s, step, P(S_NEW));
	if (rc < 0)
		return rc;
	s->err[0] = '\0';
	rc = devstate_dev_mig2_refresh(dev, step);
	if (rc < 0)
		return save_dev_fail(s, rc);
	if (dev->mig2_state != DEVSTATE_MIG2_RUNNING) {
		save_err(s, "%s: the device is in state %s, not running: a save starts from a running device",
			 step, sname(dev->mig2_state));
		s->phase = S_FAILED;	/* not ours to move */
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
	rc = devstate_enc_header(s->enc, &h);
	if (rc < 0)
		return save_enc_fail(s, rc, step);
	if (has_precopy(dev)) {
		rc = devstate_dev_mig2_goto(dev, step, DEVSTATE_MIG2_PRE_COPY);
		if (rc < 0)
			return save_dev_fail(s, rc);
	}
	s->phase = S_ACTIVE;
	return 0;
}

int devstate_m2_save_pending(struct devstate_m2_save *s, uint64_t *bytes)
{
	struct devstate_device *dev = s->dev;
	const char *step = "pending";
	uint64_t a = 0, b = 0;
	int rc;

	rc = save_order(s, step, P(S_ACTIVE) | P(S_STOPPED));
	if (rc < 0)
		return rc;
	*bytes = 0;
	if (s->phase == S_ACTIVE && has_precopy(dev)) {
		rc = devstate_dev_mig2_precopy_info(dev, step, &a, &b);
		if (rc == -EOPNOTSUPP)
			return 0;
		if (rc < 0)
			return save_dev_fail(s, rc);
		*bytes = a > UINT64_MAX - b ? UINT64_MAX : a + b;
		return 0;
	}
	if (s->phase == S_STOPPED) {
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

	rc = save_order(s, step, P(S_ACTIVE) | P(S_STOPPED));
	if (rc < 0)
		return rc;
	if (s->phase == S_ACTIVE && !has_precopy(s->dev))
		return 0;	/* nothing moves before stop-copy */
	rc = save_drain(s, step,
			s->phase == S_STOPPED ? DEVSTATE_MIG2_SEC_STOP_COPY : 0,
			&moved);
	if (rc == 0 && s->phase == S_STOPPED)
		s->stats.stop_copy_bytes += moved;
	return rc;
}

int devstate_m2_save_log_sync(struct devstate_m2_save *s)
{
	int rc = save_order(s, "log-sync",
			    P(S_ACTIVE) | P(S_STOPPED) | P(S_COMPLETED));

	if (rc < 0)
		return rc;
	save_err(s, "log-sync: the device speaks the kernel's migration uAPI v2, which reports no system-memory dirty pages (its DMA logging is not supported): treat the memory it can write as dirty");
	return -EOPNOTSUPP;
}

int devstate_m2_save_stop(struct devstate_m2_save *s)
{
	const char *step = "stop";
	int rc;

	rc = save_order(s, step, P(S_ACTIVE));
	if (rc < 0)
		return rc;
	rc = devstate_dev_mig2_goto(s->dev, step, DEVSTATE_MIG2_STOP_COPY);
	if (rc < 0)
		return save_dev_fail(s, rc);
	s->phase = S_STOPPED;
	return 0;
}

int devstate_m2_save_complete(struct devstate_m2_save *s)
{
	const char *step = "complete";
	uint64_t moved;
	int rc;

	rc = save_order(s, step, P(S_ACTIVE) | P(S_STOPPED));
	if (rc < 0)
		return rc;
	if (s->phase == S_ACTIVE) {
		rc = devstate_dev_mig2_goto(s->dev, step,
					    DEVSTATE_MIG2_STOP_COPY);
		if (rc < 0)
			return save_dev_fail(s, rc);
		s->phase = S_STOPPED;
	}
	rc = save_drain(s, step, DEVSTATE_MIG2_SEC_STOP_COPY, &moved);
	if (rc < 0)
		return rc;
	s->stats.stop_copy_bytes += moved;
	rc = devstate_enc_end(s->enc);
	if (rc < 0)
		return save_enc_fail(s, rc, step);
	s->stats.sections = devstate_enc_sections(s->enc);
	/* the data session ends here: nothing reads it any more */
	rc = devstate_dev_mig2_goto(s->dev, step, DEVSTATE_MIG2_STOP);
	if (rc < 0)
		return save_dev_fail(s, rc);
	s->phase = S_COMPLETED;
	return 0;
}

int devstate_m2_save_cleanup(struct devstate_m2_save *s)
{
	const char *step = "cleanup";
	int rc;

	rc = save_order(s, step, P(S_COMPLETED));
	if (rc < 0)
		return rc;
	rc = devstate_dev_mig2_goto(s->dev, step, DEVSTATE_MIG2_STOP);
	if (rc < 0)
		return save_dev_fail(s, rc);
	s->phase = S_CLEANED;
	return 0;
}

int devstate_m2_save_cancel(struct devstate_m2_save *s)
{
	struct devstate_device *dev = s->dev;

	if (s->phase == S_NEW || s->phase == S_CANCELLED) {
		s->phase = S_CANCELLED;
		return 0;
	}
	if (devstate_dev_mig2_unwind(dev, "cancel", DEVSTATE_MIG2_RUNNING) < 0) {
		save_err(s, "%s", dev->err);
		return -EIO;
	}
	s->phase = S_CANCELLED;
	return 0;
}

const char *devstate_m2_save_error(const struct devstate_m2_save *s)
{
	return s->err;
}

void devstate_m2_save_get_stats(const struct devstate_m2_save *s,
				struct devstate_save_stats *st)
{
	*st = s->stats;
	st->sections = devstate_enc_sections(s->enc);
}

void devstate_m2_save_free(struct devstate_m2_save *s)
{
	if (!s)
		return;
	if (s->phase == S_ACTIVE || s->phase == S_STOPPED ||
	    s->phase == S_COMPLETED)
		devstate_m2_save_cancel(s);
	devstate_enc_free(s->enc);
	free(s->buf);
	free(s);
}

/* ================================================================== */
/* Load. */

enum m2_load_phase {
	L_NEW = 0, L_BEGUN, L_STREAM, L_ENDED, L_FINISHED, L_FAILED
};

static const char *const load_phase_names[] = {
	[L_NEW] = "new", [L_BEGUN] = "waiting for the stream header",
	[L_STREAM] = "loading", [L_ENDED] = "at the end of the stream",
	[L_FINISHED] = "finished", [L_FAILED] = "failed",
};

struct devstate_m2_load {
	struct devstate_device *dev;
	struct devstate_dec *dec;
	enum m2_load_phase phase;
	bool any_pass;
	uint32_t last_pass;
	struct devstate_load_stats stats;
	char err[M2_ERR_MAX];
};

static void load_err(struct devstate_m2_load *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void load_err(struct devstate_m2_load *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->err, sizeof(l->err), fmt, ap);
	va_end(ap);
}

/* The device goes (back) to STOP; say where it ended. */
static int load_fail(struct devstate_m2_load *l, int rc)
{
	struct devstate_device *dev = l->dev;
	char why[DEVSTATE_ERR_MAX];

	if (!l->err[0])
		load_err(l, "%s", dev->err[0] ? dev->err : strerror(-rc));
	if (devstate_dev_mig2_unwind(dev, "recover", DEVSTATE_MIG2_STOP) < 0) {
		snprintf(why, sizeof(why), "%s", dev->err);
		append(l->err, sizeof(l->err),
		       "; and stopping the device failed: %s", why);
	}
	append(l->err, sizeof(l->err), " (device left in state %s)",
	       sname(dev->mig2_state));
	l->phase = L_FAILED;
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

	if (l->phase != L_NEW) {
		load_err(l, "begin: not allowed now: the load is %s",
			 load_phase_names[l->phase]);
		return -EPROTO;
	}
	rc = devstate_dev_mig2_refresh(dev, "begin");
	if (rc == 0)
		rc = devstate_dev_mig2_goto(dev, "begin", DEVSTATE_MIG2_STOP);
	if (rc < 0)
		return load_dev_fail(l, rc);
	l->phase = L_BEGUN;
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
	l->phase = L_STREAM;
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

	if (l->phase != L_BEGUN && l->phase != L_STREAM &&
	    l->phase != L_ENDED) {
		load_err(l, "feed: not allowed now: the load is %s",
			 load_phase_names[l->phase]);
		return l->phase == L_FAILED ? -EIO : -EPROTO;
	}
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
			l->phase = L_ENDED;
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

	if (l->phase == L_FAILED)
		return -EIO;
	if (l->phase != L_ENDED) {
		if (l->phase == L_BEGUN || l->phase == L_STREAM)
			load_err(l, "finish: the stream is incomplete (truncated after %llu bytes: no END section)",
				 (unsigned long long)l->stats.stream_bytes);
		else
			load_err(l, "finish: not allowed now: the load is %s",
				 load_phase_names[l->phase]);
		return load_fail(l, -EPROTO);
	}
	/* leaving RESUMING is when the device takes (or refuses) the data */
	rc = devstate_dev_mig2_goto(dev, "finish", DEVSTATE_MIG2_STOP);
	if (rc == 0)
		rc = devstate_dev_mig2_goto(dev, "finish",
					    DEVSTATE_MIG2_RUNNING);
	if (rc < 0)
		return load_dev_fail(l, rc);
	l->phase = L_FINISHED;
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
	/* a load abandoned in RESUMING must not leave a data session: the
	 * device goes to STOP (refusing the partial data) as on failure */
	if (l->phase == L_STREAM || l->phase == L_ENDED)
		devstate_dev_mig2_unwind(l->dev, "abandon", DEVSTATE_MIG2_STOP);
	devstate_dec_free(l->dec);
	free(l);
}

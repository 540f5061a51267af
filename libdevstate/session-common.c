/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The parts of the save and load sessions that both protocol families
 * share (see session-common.h).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "libdevstate/session-common.h"
#include "libdevstate/stream.h"

static const char *const save_phase_names[] = {
	[SAVE_NEW] = "new", [SAVE_ACTIVE] = "pre-copy",
	[SAVE_STOPPED] = "stopped", [SAVE_COMPLETED] = "completed",
	[SAVE_CLEANED] = "cleaned up", [SAVE_CANCELLED] = "cancelled",
	[SAVE_FAILED] = "failed",
};

const char *const devstate_load_phase_names[] = {
	[LOAD_NEW] = "new", [LOAD_BEGUN] = "waiting for the stream header",
	[LOAD_STREAM] = "loading", [LOAD_ENDED] = "at the end of the stream",
	[LOAD_FINISHED] = "finished", [LOAD_FAILED] = "failed",
};

void devstate_sess_err(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

void devstate_sess_append(char *buf, size_t size, const char *fmt,
			  const char *a)
{
	size_t n = strlen(buf);

	if (n < size && snprintf(buf + n, size - n, fmt, a) >= (int)(size - n))
		buf[size - 1] = '\0';
}

void devstate_sess_first_err(char *buf, size_t size,
			     const struct devstate_device *dev, int rc)
{
	if (!buf[0])
		devstate_sess_err(buf, size, "%s",
				  dev->err[0] ? dev->err : strerror(-rc));
}

/* The encoder's sink: the caller's writer, counting what it took. */
static int save_stream_write(void *opaque, const void *buf, size_t len)
{
	struct devstate_save_base *b = opaque;
	int rc = b->write(b->opaque, buf, len);

	if (rc == 0)
		b->stats.stream_bytes += len;
	return rc > 0 ? -EIO : rc;
}

int devstate_save_base_init(struct devstate_save_base *b,
			    struct devstate_device *dev,
			    const struct devstate_save_opts *opts,
			    struct devstate_save_opts *o,
			    devstate_write_fn write, void *opaque,
			    char *err, size_t err_size)
{
	if (opts)
		*o = *opts;
	if (!devstate_codec_name(o->codec) || o->codec == DEVSTATE_CODEC_ZERO) {
		devstate_dev_err(dev, "save: unknown codec %d", (int)o->codec);
		return -EINVAL;
	}
	b->dev = dev;
	b->write = write;
	b->opaque = opaque;
	b->err = err;
	b->err_size = err_size;
	return devstate_enc_new(&b->enc, save_stream_write, b, o->codec,
				o->level);
}

int devstate_save_base_order(struct devstate_save_base *b, const char *step,
			     unsigned allowed)
{
	if (allowed & P(b->phase))
		return 0;
	save_base_err(b, "%s: not allowed now: the session is %s", step,
		      save_phase_names[b->phase]);
	return -EPROTO;
}

/* Back to RUNNING from wherever the device is; <0 when that failed (the
 * device's sentence says why). */
static int save_back_to_running(struct devstate_device *dev)
{
	if (dev->protocol == DEVSTATE_PROTOCOL_MIG2)
		return devstate_dev_mig2_unwind(dev, "recover",
						DEVSTATE_MIG2_RUNNING);
	if (dev->state == DEVSTATE_STATE_RUNNING)
		return 0;
	return devstate_dev_set_state(dev, "recover", DEVSTATE_STATE_RUNNING);
}

int devstate_save_base_fail(struct devstate_save_base *b, int rc)
{
	devstate_sess_first_err(b->err, b->err_size, b->dev, rc);
	if (save_back_to_running(b->dev) < 0)
		devstate_sess_append(b->err, b->err_size,
				     "; and setting the device back to running failed: %s",
				     b->dev->err);
	b->phase = SAVE_FAILED;
	return rc;
}

int devstate_save_base_step(struct devstate_save_base *b, const char *step,
			    unsigned allowed, uint32_t state,
			    enum devstate_save_phase next)
{
	int rc = devstate_save_base_order(b, step, allowed);

	if (rc < 0)
		return rc;
	if (b->dev->protocol == DEVSTATE_PROTOCOL_MIG2)
		rc = devstate_dev_mig2_goto(b->dev, step, state);
	else
		rc = devstate_dev_set_state(b->dev, step, state);
	if (rc < 0)
		return devstate_save_base_dev_fail(b, rc);
	b->phase = next;
	return 0;
}

int devstate_save_base_dev_fail(struct devstate_save_base *b, int rc)
{
	save_base_err(b, "%s", b->dev->err);
	return devstate_save_base_fail(b, rc);
}

int devstate_save_base_enc_fail(struct devstate_save_base *b, int rc,
				const char *step)
{
	save_base_err(b, "%s: writing the stream: %s", step,
		      devstate_enc_error(b->enc));
	return devstate_save_base_fail(b, rc);
}

void devstate_save_base_stats(const struct devstate_save_base *b,
			      struct devstate_save_stats *st)
{
	*st = b->stats;
	st->sections = devstate_enc_sections(b->enc);
}

int devstate_load_order(char *err, size_t size, const char *step,
			enum devstate_load_phase phase, unsigned allowed)
{
	if (allowed & P(phase))
		return 0;
	devstate_sess_err(err, size, "%s: not allowed now: the load is %s",
			  step, devstate_load_phase_names[phase]);
	return -EPROTO;
}

int devstate_load_finish_order(char *err, size_t size,
			       enum devstate_load_phase phase,
			       unsigned long long stream_bytes)
{
	if (phase == LOAD_ENDED)
		return 0;
	if (phase == LOAD_FAILED)
		return -EIO;
	if (phase == LOAD_BEGUN || phase == LOAD_STREAM) {
		devstate_sess_err(err, size, "finish: the stream is incomplete (truncated after %llu bytes: no END section)",
				  stream_bytes);
		return -EPROTO;
	}
	return devstate_load_order(err, size, "finish", phase, 0);
}

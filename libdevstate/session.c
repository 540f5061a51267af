/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session driver: walks a source device through the save flow and a
 * destination device through the load flow (SPEC 6), asking the core for
 * every position and legality question and moving every byte through the
 * device layer (a transport) and the stream encoder/decoder.
 *
 * Failure rules: a save that fails or is cancelled leaves the source
 * RUNNING with LOGGING clear; a load that fails leaves the destination
 * STOPPED (it is never set RUNNING unless the END section was seen and
 * every section applied).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libdevstate/device.h"
#include "libdevstate/session-common.h"
#include "libdevstate/session-mig2.h"
#include "libdevstate/stream.h"

/* A batch larger than this is treated as a device error, not a loop. */
#define DEVSTATE_BATCH_MAX (1ull << 44)

struct devstate_save {
	struct devstate_m2_save *m2;	/* protocol family 2: all of it */
	struct devstate_save_base b;	/* device, encoder, phase, stats */
	struct devstate_save_opts opts;

	uint32_t pass;			/* pass number of the next batch */
	int frozen;			/* a non-empty batch awaits reading */
	uint64_t batch_size;
	uint64_t batch_moved;
	struct devstate_chunk_iter it;
	unsigned char *chunk;		/* bounce buffer when not mapped */
	unsigned char *config;		/* bounce buffer when not mapped */
	uint64_t config_size;		/* as recorded in the header */

	char err[DEVSTATE_ERR_MAX];	/* b.err */
};

DEVSTATE_EXPORT int devstate_save_new(struct devstate_save **out,
				      struct devstate_device *dev,
				      const struct devstate_save_opts *opts,
				      devstate_write_fn write, void *opaque)
{
	struct devstate_save *s;
	int rc;

	if (!out || !dev || !write)
		return -EINVAL;
	rc = devstate_dev_usable(dev);
	if (rc < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (dev->protocol == DEVSTATE_PROTOCOL_MIG2) {
		rc = devstate_m2_save_new(&s->m2, dev, opts, write, opaque);
		if (rc < 0)
			free(s);
		else
			*out = s;
		return rc;
	}
	rc = devstate_save_base_init(&s->b, dev, opts, &s->opts, write, opaque,
				     s->err, sizeof(s->err));
	if (rc < 0) {
		free(s);
		return rc;
	}
	if (dev->caps & DEVSTATE_CAP_DEVICE_MEMORY &&
	    dev->regions.size[DEVSTATE_REGION_MEMORY] > DEVSTATE_REGION_MAX) {
		/* a stream cannot carry such chunks: never allocate one */
		devstate_dev_err(dev, "save: the DEVICE_MEMORY region (%llu bytes) exceeds the stream's chunk limit (%llu bytes)",
				 (unsigned long long)dev->regions.size[DEVSTATE_REGION_MEMORY],
				 (unsigned long long)DEVSTATE_REGION_MAX);
		devstate_enc_free(s->b.enc);
		free(s);
		return -E2BIG;
	}
	if (dev->caps & DEVSTATE_CAP_DEVICE_MEMORY &&
	    !devstate_dev_map(dev, DEVSTATE_REGION_MEMORY)) {
		s->chunk = malloc((size_t)dev->regions.size[DEVSTATE_REGION_MEMORY]);
		if (!s->chunk) {
			devstate_enc_free(s->b.enc);
			free(s);
			return -ENOMEM;
		}
	}
	*out = s;
	return 0;
}

/* Freeze a batch: read device_memory.size (SPEC 11). */
static int save_freeze(struct devstate_save *s, const char *step)
{
	struct devstate_device *dev = s->b.dev;
	uint64_t size;
	int rc;

	rc = devstate_dev_permit(dev, step, DEVSTATE_OP_GET_MEMORY);
	if (rc < 0)
		return rc;
	rc = devstate_dev_read_field(dev, step, DEVSTATE_FIELD_MEMORY_SIZE,
				     &size);
	if (rc < 0)
		return rc;
	if (size > DEVSTATE_BATCH_MAX) {
		devstate_dev_err(dev, "%s: device_memory.size %llu is implausible (limit %llu)",
				 step, (unsigned long long)size,
				 (unsigned long long)DEVSTATE_BATCH_MAX);
		return -EIO;
	}
	s->batch_size = size;
	s->batch_moved = 0;
	s->frozen = size > 0;
	if (s->frozen)
		devstate_chunk_init(&s->it, DEVSTATE_CHUNK_SAVE, size,
				    dev->regions.size[DEVSTATE_REGION_MEMORY]);
	return 0;
}

/* Read the frozen batch to its end, chunk by chunk, into the stream. */
static int save_move_batch(struct devstate_save *s, const char *step)
{
	struct devstate_device *dev = s->b.dev;
	struct devstate_chunk_step st;
	const void *data;
	int rc = 0;

	if (!s->frozen)
		return 0;
	for (devstate_chunk_next(&s->it, &st); st.kind != DEVSTATE_STEP_DONE;
	     devstate_chunk_next(&s->it, &st)) {
		switch (st.kind) {
		case DEVSTATE_STEP_WRITE_POS:
			rc = devstate_dev_write_field(dev, step,
						      DEVSTATE_FIELD_MEMORY_POS,
						      st.pos);
			break;
		case DEVSTATE_STEP_WRITE_ACTION:
			rc = devstate_dev_write_field(dev, step,
						      DEVSTATE_FIELD_MEMORY_ACTION,
						      st.action);
			break;
		case DEVSTATE_STEP_READ_DATA:
			data = devstate_dev_map(dev, DEVSTATE_REGION_MEMORY);
			if (!data) {
				rc = devstate_dev_data_read(dev, step,
							    DEVSTATE_REGION_MEMORY,
							    0, s->chunk,
							    (size_t)st.len);
				if (rc < 0)
					break;
				data = s->chunk;
			}
			rc = devstate_enc_memory(s->b.enc, s->pass,
						 s->batch_size, st.pos, data,
						 (size_t)st.len);
			if (rc < 0)
				return save_enc_fail(s, rc, step);
			s->batch_moved += st.len;
			s->b.stats.memory_bytes += st.len;
			if (s->b.phase == SAVE_STOPPED)
				s->b.stats.stop_copy_bytes += st.len;
			break;
		default:
			rc = -EPROTO;
			devstate_dev_err(dev, "%s: unexpected chunk step %d",
					 step, (int)st.kind);
			break;
		}
		if (rc < 0)
			return save_dev_fail(s, rc);
	}
	s->frozen = 0;
	s->pass++;
	s->b.stats.passes++;
	return 0;
}

static int save_memory_caps(const struct devstate_save *s)
{
	return !!(s->b.dev->caps & DEVSTATE_CAP_DEVICE_MEMORY);
}

DEVSTATE_EXPORT int devstate_save_setup(struct devstate_save *s)
{
	struct devstate_device *dev;
	struct devstate_stream_header h;
	const char *step = "setup";
	int rc, r;

	if (!s)
		return -EINVAL;
	if (s->m2)
		return devstate_m2_save_setup(s->m2);
	dev = s->b.dev;
	rc = save_order(s, step, P(SAVE_NEW));
	if (rc < 0)
		return rc;
	s->b.err[0] = '\0';
	/* the stream header describes this device */
	memset(&h, 0, sizeof(h));
	h.format_version = DEVSTATE_STREAM_FORMAT;
	h.protocol = DEVSTATE_PROTOCOL_REGIONS;
	h.proto_version = dev->version;
	h.caps = dev->caps;
	h.page_size = DEVSTATE_PAGE_SIZE;
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++)
		h.region_len[r] = dev->regions.size[r];
	if (!(dev->caps & DEVSTATE_CAP_DEVICE_MEMORY))
		h.region_len[DEVSTATE_REGION_MEMORY] = 0;
	if (!(dev->caps & DEVSTATE_CAP_SYSTEM_MEMORY))
		h.region_len[DEVSTATE_REGION_BITMAP] = 0;
	rc = devstate_dev_read_field(dev, step, DEVSTATE_FIELD_CONFIG_SIZE,
				     &s->config_size);
	if (rc < 0)
		return save_dev_fail(s, rc);
	if (s->config_size > dev->regions.size[DEVSTATE_REGION_CONFIG] ||
	    s->config_size > DEVSTATE_REGION_MAX) {
		save_err(s, "%s: device_config.size %llu exceeds the DEVICE_CONFIG region (%llu bytes)",
			 step, (unsigned long long)s->config_size,
			 (unsigned long long)dev->regions.size[DEVSTATE_REGION_CONFIG]);
		return save_fail(s, -EIO);
	}
	if (h.region_len[DEVSTATE_REGION_MEMORY] > DEVSTATE_REGION_MAX) {
		save_err(s, "%s: the DEVICE_MEMORY region (%llu bytes) exceeds the stream's chunk limit (%llu bytes)",
			 step, (unsigned long long)h.region_len[DEVSTATE_REGION_MEMORY],
			 (unsigned long long)DEVSTATE_REGION_MAX);
		return save_fail(s, -E2BIG);
	}
	h.config_size = s->config_size;
	snprintf(h.ident, sizeof(h.ident), "%s v%u", dev->ops->name,
		 dev->version);
	h.ident_len = (uint32_t)strlen(h.ident);
	rc = devstate_enc_header(s->b.enc, &h);
	if (rc < 0)
		return save_enc_fail(s, rc, step);

	/* whole snapshot first, then logging (SPEC 6, dirty baseline) */
	if (save_memory_caps(s)) {
		rc = save_freeze(s, step);
		if (rc < 0)
			return save_dev_fail(s, rc);
		rc = save_move_batch(s, step);
		if (rc < 0)
			return rc;
	}
	rc = devstate_dev_set_state(dev, step, DEVSTATE_STATE_RUNNING_LOGGING);
	if (rc < 0)
		return save_dev_fail(s, rc);
	s->b.phase = SAVE_ACTIVE;
	return 0;
}

DEVSTATE_EXPORT int devstate_save_pending(struct devstate_save *s,
					  uint64_t *bytes)
{
	const char *step = "pending";
	int rc;

	if (!s || !bytes)
		return -EINVAL;
	if (s->m2)
		return devstate_m2_save_pending(s->m2, bytes);
	rc = save_order(s, step, P(SAVE_ACTIVE) | P(SAVE_STOPPED));
	if (rc < 0)
		return rc;
	if (!save_memory_caps(s)) {
		*bytes = 0;
		return 0;
	}
	/* an unread frozen batch is reported, never frozen over */
	if (!s->frozen) {
		rc = save_freeze(s, step);
		if (rc < 0)
			return save_dev_fail(s, rc);
	}
	*bytes = s->frozen ? s->batch_size - s->batch_moved : 0;
	return 0;
}

DEVSTATE_EXPORT int devstate_save_iterate(struct devstate_save *s)
{
	const char *step = "iterate";
	int rc;

	if (!s)
		return -EINVAL;
	if (s->m2)
		return devstate_m2_save_iterate(s->m2);
	rc = save_order(s, step, P(SAVE_ACTIVE) | P(SAVE_STOPPED));
	if (rc < 0)
		return rc;
	if (!save_memory_caps(s))
		return 0;
	if (!s->frozen) {
		rc = save_freeze(s, step);
		if (rc < 0)
			return save_dev_fail(s, rc);
	}
	return save_move_batch(s, step);
}

DEVSTATE_EXPORT int devstate_save_log_sync(struct devstate_save *s,
					   uint64_t start_addr,
					   uint64_t page_nr, uint64_t *bitmap)
{
	const char *step = "log-sync";
	uint64_t *tmp, words, dirty = 0;
	int rc;

	if (!s || !bitmap)
		return -EINVAL;
	if (s->m2)
		return devstate_m2_save_log_sync(s->m2);
	rc = save_order(s, step, P(SAVE_ACTIVE) | P(SAVE_STOPPED) |
			P(SAVE_COMPLETED));
	if (rc < 0)
		return rc;
	if (page_nr == 0 || page_nr > (UINT64_MAX - 63)) {
		save_err(s, "%s: invalid page count %llu", step,
			 (unsigned long long)page_nr);
		return -EINVAL;
	}
	words = (page_nr + 63) / 64;
	if (words > SIZE_MAX / 8)
		return -ENOMEM;
	tmp = calloc((size_t)words, 8);
	if (!tmp) {
		save_err(s, "%s: out of memory for a bitmap of %llu pages",
			 step, (unsigned long long)page_nr);
		return -ENOMEM;
	}
	rc = devstate_dev_dirty_bitmap(s->b.dev, step, start_addr, page_nr, tmp,
				       &dirty);
	if (rc < 0) {
		free(tmp);
		/* a lost dirty bitmap would lose guest writes: fail */
		return save_dev_fail(s, rc);
	}
	if (s->opts.record_bitmaps && s->b.phase != SAVE_COMPLETED && dirty) {
		rc = devstate_enc_bitmap(s->b.enc,
					 start_addr / DEVSTATE_PAGE_SIZE,
					 page_nr, tmp);
		if (rc < 0) {
			free(tmp);
			return save_enc_fail(s, rc, step);
		}
	}
	devstate_bitmap_or(bitmap, 0, tmp, page_nr);
	s->b.stats.dirty_pages += dirty;
	free(tmp);
	return 0;
}

DEVSTATE_EXPORT int devstate_save_stop(struct devstate_save *s)
{
	if (!s)
		return -EINVAL;
	if (s->m2)
		return devstate_m2_save_stop(s->m2);
	return devstate_save_base_step(&s->b, "stop", P(SAVE_ACTIVE),
				       DEVSTATE_STATE_STOP_LOGGING,
				       SAVE_STOPPED);
}

static int save_config(struct devstate_save *s, const char *step)
{
	struct devstate_device *dev = s->b.dev;
	const void *data;
	uint64_t size;
	int rc;

	rc = devstate_dev_permit(dev, step, DEVSTATE_OP_GET_CONFIG);
	if (rc < 0)
		return save_dev_fail(s, rc);
	rc = devstate_dev_read_field(dev, step, DEVSTATE_FIELD_CONFIG_SIZE,
				     &size);
	if (rc < 0)
		return save_dev_fail(s, rc);
	if (size != s->config_size) {
		save_err(s, "%s: device_config.size changed from %llu (recorded at setup) to %llu",
			 step, (unsigned long long)s->config_size,
			 (unsigned long long)size);
		return save_fail(s, -EIO);
	}
	rc = devstate_dev_write_field(dev, step, DEVSTATE_FIELD_CONFIG_ACTION,
				      DEVSTATE_ACTION_GET_BUFFER);
	if (rc < 0)
		return save_dev_fail(s, rc);
	data = devstate_dev_map(dev, DEVSTATE_REGION_CONFIG);
	if (!data && size) {
		s->config = malloc((size_t)size);
		if (!s->config) {
			save_err(s, "%s: out of memory", step);
			return save_fail(s, -ENOMEM);
		}
		rc = devstate_dev_data_read(dev, step, DEVSTATE_REGION_CONFIG, 0,
					    s->config, (size_t)size);
		if (rc < 0)
			return save_dev_fail(s, rc);
		data = s->config;
	}
	rc = devstate_enc_config(s->b.enc, data, (size_t)size);
	if (rc < 0)
		return save_enc_fail(s, rc, step);
	s->b.stats.config_bytes += size;
	s->b.stats.stop_copy_bytes += size;
	return 0;
}

DEVSTATE_EXPORT int devstate_save_complete(struct devstate_save *s)
{
	const char *step = "complete";
	int rc;

	if (!s)
		return -EINVAL;
	if (s->m2)
		return devstate_m2_save_complete(s->m2);
	rc = save_order(s, step, P(SAVE_ACTIVE) | P(SAVE_STOPPED));
	if (rc < 0)
		return rc;
	if (s->b.phase == SAVE_ACTIVE) {
		rc = devstate_save_base_step(&s->b, step, P(SAVE_ACTIVE),
					     DEVSTATE_STATE_STOP_LOGGING,
					     SAVE_STOPPED);
		if (rc < 0)
			return rc;
	}
	if (save_memory_caps(s)) {
		/* drain a batch frozen during pre-copy, then the final one */
		rc = save_move_batch(s, step);
		if (rc < 0)
			return rc;
		rc = save_freeze(s, step);
		if (rc < 0)
			return save_dev_fail(s, rc);
		rc = save_move_batch(s, step);
		if (rc < 0)
			return rc;
	}
	rc = save_config(s, step);
	if (rc < 0)
		return rc;
	rc = devstate_enc_end(s->b.enc);
	if (rc < 0)
		return save_enc_fail(s, rc, step);
	s->b.stats.sections = devstate_enc_sections(s->b.enc);
	s->b.phase = SAVE_COMPLETED;
	return 0;
}

DEVSTATE_EXPORT int devstate_save_cleanup(struct devstate_save *s)
{
	if (!s)
		return -EINVAL;
	if (s->m2)
		return devstate_m2_save_cleanup(s->m2);
	return devstate_save_base_step(&s->b, "cleanup", P(SAVE_COMPLETED),
				       DEVSTATE_STATE_STOP, SAVE_CLEANED);
}

DEVSTATE_EXPORT int devstate_save_cancel(struct devstate_save *s)
{
	struct devstate_device *dev;
	int rc;

	if (!s)
		return -EINVAL;
	if (s->m2)
		return devstate_m2_save_cancel(s->m2);
	dev = s->b.dev;
	s->frozen = 0;
	if (dev->state == DEVSTATE_STATE_RUNNING) {
		s->b.phase = SAVE_CANCELLED;
		return 0;
	}
	rc = devstate_dev_set_state(dev, "cancel", DEVSTATE_STATE_RUNNING);
	if (rc < 0) {
		save_err(s, "%s", dev->err);
		return rc;
	}
	s->b.phase = SAVE_CANCELLED;
	return 0;
}

DEVSTATE_EXPORT const char *devstate_save_error(const struct devstate_save *s)
{
	if (s && s->m2)
		return devstate_m2_save_error(s->m2);
	return s ? s->b.err : "no session";
}

DEVSTATE_EXPORT void devstate_save_get_stats(const struct devstate_save *s,
					     struct devstate_save_stats *st)
{
	if (s && st && s->m2) {
		devstate_m2_save_get_stats(s->m2, st);
		return;
	}
	if (s && st)
		devstate_save_base_stats(&s->b, st);
}

DEVSTATE_EXPORT void devstate_save_free(struct devstate_save *s)
{
	if (!s)
		return;
	if (s->m2) {
		devstate_m2_save_free(s->m2);
		free(s);
		return;
	}
	/* a session abandoned half-way must not leave the source stopped
	 * or logging */
	if (s->b.phase == SAVE_ACTIVE || s->b.phase == SAVE_STOPPED ||
	    s->b.phase == SAVE_COMPLETED)
		devstate_save_cancel(s);
	devstate_enc_free(s->b.enc);
	free(s->chunk);
	free(s->config);
	free(s);
}

/* ================================================================== */
/* Load.                                                               */

struct devstate_load {
	struct devstate_m2_load *m2;	/* protocol family 2: all of it */
	struct devstate_device *dev;
	struct devstate_dec *dec;
	enum devstate_load_phase phase;

	/* the batch being loaded, re-cut to this device's chunk length */
	int in_batch;
	uint64_t batch_size;
	struct devstate_chunk_iter it;
	struct devstate_chunk_step step;	/* current WRITE_DATA chunk */
	unsigned char *map;	/* the DEVICE_MEMORY mapping, or NULL */

	/* A raw MEMORY section taken in pieces (zero-copy): its bytes go
	 * straight from the caller's buffer into the data region at base +
	 * their offset; nothing is committed until the decoder verified the
	 * section (load_memory_verified). */
	int pieces;
	uint64_t base;		/* the section's offset in the chunk */
	/* read/write access: contiguous pieces not yet written, one
	 * data_write per run (flushed before each commit and before
	 * devstate_load_feed returns, while the caller's buffer is valid) */
	const uint8_t *run;
	size_t run_len;
	uint64_t run_off;
	int size_rc;		/* load_memory_head's size write failed */

	struct devstate_load_stats stats;
	char err[DEVSTATE_ERR_MAX];
};

/* The device stays STOPPED; say so. */
static int load_fail(struct devstate_load *l, int rc)
{
	devstate_sess_first_err(l->err, sizeof(l->err), l->dev, rc);
	if (l->dev->state != DEVSTATE_STATE_RUNNING)
		devstate_sess_append(l->err, sizeof(l->err),
				     " (device left in state %s)",
				     devstate_state_name(l->dev->state));
	l->phase = LOAD_FAILED;
	return rc;
}

static int load_dev_fail(struct devstate_load *l, int rc)
{
	load_err(l, "%s", l->dev->err);
	return load_fail(l, rc);
}

DEVSTATE_EXPORT int devstate_load_new(struct devstate_load **out,
				      struct devstate_device *dev)
{
	struct devstate_load *l;
	int rc;

	if (!out || !dev)
		return -EINVAL;
	rc = devstate_dev_usable(dev);
	if (rc < 0)
		return rc;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	if (dev->protocol == DEVSTATE_PROTOCOL_MIG2) {
		rc = devstate_m2_load_new(&l->m2, dev);
		if (rc < 0)
			free(l);
		else
			*out = l;
		return rc;
	}
	rc = devstate_dec_new(&l->dec);
	if (rc < 0) {
		free(l);
		return rc;
	}
	if (dev->caps & DEVSTATE_CAP_DEVICE_MEMORY &&
	    !devstate_dev_map(dev, DEVSTATE_REGION_MEMORY) &&
	    dev->regions.size[DEVSTATE_REGION_MEMORY] > DEVSTATE_REGION_MAX) {
		/* chunk lengths are bounded like everything else */
		devstate_dev_err(dev, "load: the DEVICE_MEMORY region (%llu bytes) is not mappable and exceeds the limit of %llu bytes",
				 (unsigned long long)dev->regions.size[DEVSTATE_REGION_MEMORY],
				 (unsigned long long)DEVSTATE_REGION_MAX);
		devstate_dec_free(l->dec);
		free(l);
		return -E2BIG;
	}
	if (dev->caps & DEVSTATE_CAP_DEVICE_MEMORY) {
		l->map = devstate_dev_map(dev, DEVSTATE_REGION_MEMORY);
		/* raw memory sections come in pieces, no copy (load_feed) */
		devstate_dec_set_pieces(l->dec, 1);
	}
	l->dev = dev;
	*out = l;
	return 0;
}

DEVSTATE_EXPORT int devstate_load_begin(struct devstate_load *l)
{
	int rc;

	if (!l)
		return -EINVAL;
	if (l->m2)
		return devstate_m2_load_begin(l->m2);
	rc = devstate_load_order(l->err, sizeof(l->err), "begin", l->phase,
				 P(LOAD_NEW));
	if (rc < 0)
		return rc;
	rc = devstate_dev_set_state(l->dev, "begin", DEVSTATE_STATE_STOP);
	if (rc < 0)
		return load_dev_fail(l, rc);
	l->phase = LOAD_BEGUN;
	return 0;
}

/* The destination checks the header against itself before writing
 * anything (SPEC 5). */
static int load_header(struct devstate_load *l,
		       const struct devstate_stream_header *h)
{
	struct devstate_device *dev = l->dev;
	const char *step = "stream header";
	uint64_t config_size;
	int rc;

	if (h->protocol == DEVSTATE_PROTOCOL_MIG2) {
		load_err(l, "%s: the stream was saved from a device speaking the kernel's migration uAPI v2; this device speaks the proposal's region protocol",
			 step);
		return load_fail(l, -EINVAL);
	}
	if (h->protocol != DEVSTATE_PROTOCOL_REGIONS) {
		load_err(l, "%s: protocol family %u does not match this device (%u)",
			 step, h->protocol, DEVSTATE_PROTOCOL_REGIONS);
		return load_fail(l, -EINVAL);
	}
	if (h->proto_version != dev->version) {
		load_err(l, "%s: protocol version %u does not match the device's version %u",
			 step, h->proto_version, dev->version);
		return load_fail(l, -EINVAL);
	}
	if (h->caps != dev->caps) {
		load_err(l, "%s: caps 0x%x do not match the device's caps 0x%x",
			 step, h->caps, dev->caps);
		return load_fail(l, -EINVAL);
	}
	if (h->page_size != DEVSTATE_PAGE_SIZE) {
		load_err(l, "%s: page size %u is not %u", step, h->page_size,
			 DEVSTATE_PAGE_SIZE);
		return load_fail(l, -EINVAL);
	}
	if (h->config_size > dev->regions.size[DEVSTATE_REGION_CONFIG]) {
		load_err(l, "%s: config size %llu exceeds the device's DEVICE_CONFIG region (%llu bytes)",
			 step, (unsigned long long)h->config_size,
			 (unsigned long long)dev->regions.size[DEVSTATE_REGION_CONFIG]);
		return load_fail(l, -EINVAL);
	}
	rc = devstate_dev_read_field(dev, step, DEVSTATE_FIELD_CONFIG_SIZE,
				     &config_size);
	if (rc < 0)
		return load_dev_fail(l, rc);
	if (config_size != h->config_size) {
		load_err(l, "%s: config size %llu does not match the device's config size %llu",
			 step, (unsigned long long)h->config_size,
			 (unsigned long long)config_size);
		return load_fail(l, -EINVAL);
	}
	l->phase = LOAD_STREAM;
	return 0;
}

/* Put n verified or staged bytes at offset off of the DEVICE_MEMORY
 * region: mapped, a copy; else one data write. */
static int load_put(struct devstate_load *l, const char *step, uint64_t off,
		    const uint8_t *src, uint64_t n)
{
	if (l->map) {
		memcpy(l->map + off, src, (size_t)n);
		return 0;
	}
	return devstate_dev_data_write(l->dev, step, DEVSTATE_REGION_MEMORY,
				       off, src, (size_t)n);
}

/* Read/write access: write the run of pieces gathered so far. */
static int load_flush_run(struct devstate_load *l)
{
	int rc;

	if (!l->run_len)
		return 0;
	rc = load_put(l, "load memory", l->run_off, l->run, l->run_len);
	l->run_len = 0;
	if (rc < 0)
		return load_dev_fail(l, rc);
	return 0;
}

/* The chunk's bytes are all in the data region and verified: run the
 * chunk iterator's steps that commit it (pos, SET_BUFFER). */
static int load_flush_chunk(struct devstate_load *l, const char *step)
{
	struct devstate_device *dev = l->dev;
	struct devstate_chunk_step st = l->step;
	int rc = 0;

	for (devstate_chunk_next(&l->it, &st);
	     st.kind == DEVSTATE_STEP_WRITE_POS ||
	     st.kind == DEVSTATE_STEP_WRITE_ACTION;
	     devstate_chunk_next(&l->it, &st)) {
		if (st.kind == DEVSTATE_STEP_WRITE_POS)
			rc = devstate_dev_write_field(dev, step,
						      DEVSTATE_FIELD_MEMORY_POS,
						      st.pos);
		else
			rc = devstate_dev_write_field(dev, step,
						      DEVSTATE_FIELD_MEMORY_ACTION,
						      st.action);
		if (rc < 0)
			return rc;
	}
	l->stats.memory_bytes += l->step.len;
	l->step = st;	/* next WRITE_DATA, or DONE */
	if (st.kind == DEVSTATE_STEP_DONE) {
		l->in_batch = 0;
		l->stats.passes++;
	}
	return 0;
}

static int load_memory(struct devstate_load *l,
		       const struct devstate_section *sec)
{
	struct devstate_device *dev = l->dev;
	const char *step = "load memory";
	uint64_t off = sec->pos, end = sec->pos + sec->raw_len;
	int rc;

	if (!(dev->caps & DEVSTATE_CAP_DEVICE_MEMORY)) {
		load_err(l, "%s: the stream carries device memory but the device has no cap DEVICE_MEMORY",
			 step);
		return load_fail(l, -EINVAL);
	}
	rc = devstate_dev_permit(dev, step, DEVSTATE_OP_SET_MEMORY);
	if (rc < 0)
		return load_dev_fail(l, rc);
	if (sec->pos == 0 && l->size_rc < 0) {
		/* load_memory_head's size write failed; the section is
		 * verified now, so that is the error (never retried) */
		rc = l->size_rc;
		l->size_rc = 0;
		return load_dev_fail(l, rc);
	}
	if (sec->pos == 0) {
		/* a new batch: its size first (SPEC 11) */
		rc = devstate_dev_write_field(dev, step,
					      DEVSTATE_FIELD_MEMORY_SIZE,
					      sec->batch_size);
		if (rc < 0)
			return load_dev_fail(l, rc);
		devstate_chunk_init(&l->it, DEVSTATE_CHUNK_LOAD,
				    sec->batch_size,
				    dev->regions.size[DEVSTATE_REGION_MEMORY]);
		devstate_chunk_next(&l->it, &l->step);
		l->in_batch = 1;
		l->batch_size = sec->batch_size;
	} else if (!l->in_batch || sec->batch_size != l->batch_size) {
		load_err(l, "%s: chunk at pos %llu does not continue a batch",
			 step, (unsigned long long)sec->pos);
		return load_fail(l, -EINVAL);
	}
	/* copy the section's bytes into this device's chunks */
	while (off < end) {
		uint64_t in_chunk, n;

		if (l->step.kind != DEVSTATE_STEP_WRITE_DATA ||
		    off < l->step.pos || off >= l->step.pos + l->step.len) {
			load_err(l, "%s: byte %llu of the batch does not fit the chunk sequence",
				 step, (unsigned long long)off);
			return load_fail(l, -EINVAL);
		}
		in_chunk = off - l->step.pos;
		n = l->step.len - in_chunk;
		if (n > end - off)
			n = end - off;
		rc = load_put(l, step, in_chunk, sec->data + (off - sec->pos), n);
		if (rc < 0)
			return load_dev_fail(l, rc);
		off += n;
		if (in_chunk + n == l->step.len) {
			rc = load_flush_chunk(l, step);
			if (rc < 0)
				return load_dev_fail(l, rc);
		}
	}
	return 0;
}

/* A raw MEMORY section's head, not yet verified.  Take its payload in
 * pieces when it lies within one chunk of this device (the data region
 * holds one chunk: bytes can wait there for the CRC, uncommitted).  A
 * section that spans chunks is taken whole, verified, by load_memory.
 * Before the section verified the device sees its data-region bytes and,
 * for a new batch, the batch size (SPEC 11: the size before the chunks'
 * bytes); pos and SET_BUFFER wait for load_memory_verified. */
static void load_memory_head(struct devstate_load *l,
			     const struct devstate_section *sec)
{
	struct devstate_device *dev = l->dev;
	uint64_t L = dev->regions.size[DEVSTATE_REGION_MEMORY];

	l->pieces = 0;
	if (!(dev->caps & DEVSTATE_CAP_DEVICE_MEMORY) || !L ||
	    devstate_state_check(dev->state, DEVSTATE_OP_SET_MEMORY) < 0)
		return;		/* load_memory says why */
	if (sec->pos == 0) {
		/* the first chunk of a new batch, [0, min(L, batch size));
		 * out of order: load_memory, after the CRC, says why */
		if (l->in_batch || sec->raw_len > L ||
		    sec->raw_len > sec->batch_size)
			return;
		l->size_rc = devstate_dev_write_field(dev, "load memory",
						      DEVSTATE_FIELD_MEMORY_SIZE,
						      sec->batch_size);
		if (l->size_rc < 0)
			return;	/* reported after the CRC, by load_memory */
		devstate_chunk_init(&l->it, DEVSTATE_CHUNK_LOAD,
				    sec->batch_size, L);
		devstate_chunk_next(&l->it, &l->step);
		l->in_batch = 1;
		l->batch_size = sec->batch_size;
	}
	if (!l->in_batch || sec->batch_size != l->batch_size ||
	    l->step.kind != DEVSTATE_STEP_WRITE_DATA ||
	    sec->pos < l->step.pos ||
	    sec->pos - l->step.pos > l->step.len ||
	    sec->raw_len > l->step.len - (sec->pos - l->step.pos))
		return;
	l->base = sec->pos - l->step.pos;
	l->pieces = 1;
	l->run_len = 0;
	devstate_dec_take_pieces(l->dec);
}

/* A piece of the section taken in pieces: to the data region, staged. */
static int load_memory_piece(struct devstate_load *l)
{
	const uint8_t *p;
	uint64_t at, off;
	size_t n;
	int rc;

	p = devstate_dec_piece(l->dec, &n, &at);
	off = l->base + at;
	if (l->map) {
		memcpy(l->map + off, p, n);
		return 0;
	}
	if (l->run_len && l->run + l->run_len == p &&
	    l->run_off + l->run_len == off) {
		l->run_len += n;
		return 0;
	}
	rc = load_flush_run(l);
	if (rc < 0)
		return rc;
	l->run = p;
	l->run_len = n;
	l->run_off = off;
	return 0;
}

/* The section taken in pieces is verified (CRC, ordering): its bytes
 * are in the data region; commit the chunk if the section completed it. */
static int load_memory_verified(struct devstate_load *l,
				const struct devstate_section *sec)
{
	struct devstate_device *dev = l->dev;
	const char *step = "load memory";
	int rc;

	l->pieces = 0;
	rc = load_flush_run(l);
	if (rc < 0)
		return rc;
	rc = devstate_dev_permit(dev, step, DEVSTATE_OP_SET_MEMORY);
	if (rc < 0)
		return load_dev_fail(l, rc);
	/* load_memory_head placed the section inside l->step */
	if (l->base + sec->raw_len == l->step.len) {
		rc = load_flush_chunk(l, step);
		if (rc < 0)
			return load_dev_fail(l, rc);
	}
	return 0;
}

static int load_config(struct devstate_load *l,
		       const struct devstate_section *sec)
{
	struct devstate_device *dev = l->dev;
	const char *step = "load config";
	int rc;

	if (l->in_batch) {
		load_err(l, "%s: config arrived before the memory batch was complete",
			 step);
		return load_fail(l, -EINVAL);
	}
	rc = devstate_dev_permit(dev, step, DEVSTATE_OP_SET_CONFIG);
	if (rc == 0)
		rc = devstate_dev_write_field(dev, step,
					      DEVSTATE_FIELD_CONFIG_SIZE,
					      sec->raw_len);
	if (rc == 0 && sec->raw_len)
		rc = devstate_dev_data_write(dev, step, DEVSTATE_REGION_CONFIG,
					     0, sec->data, (size_t)sec->raw_len);
	if (rc == 0)
		rc = devstate_dev_write_field(dev, step,
					      DEVSTATE_FIELD_CONFIG_ACTION,
					      DEVSTATE_ACTION_SET_BUFFER);
	if (rc < 0)
		return load_dev_fail(l, rc);
	l->stats.config_bytes += sec->raw_len;
	return 0;
}

DEVSTATE_EXPORT int devstate_load_feed(struct devstate_load *l,
				       const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int rc;

	if (!l || (!buf && len))
		return -EINVAL;
	if (l->m2)
		return devstate_m2_load_feed(l->m2, buf, len);
	rc = devstate_load_order(l->err, sizeof(l->err), "feed", l->phase,
				 P(LOAD_BEGUN) | P(LOAD_STREAM) |
				 P(LOAD_ENDED));
	if (rc < 0)
		return l->phase == LOAD_FAILED ? -EIO : rc;
	while (len) {
		const struct devstate_section *sec;
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
		case DEVSTATE_DEC_SECTION_HEAD:
			load_memory_head(l, devstate_dec_section(l->dec));
			break;
		case DEVSTATE_DEC_PIECE:
			rc = load_memory_piece(l);
			if (rc < 0)
				return rc;
			break;
		case DEVSTATE_DEC_SECTION:
			sec = devstate_dec_section(l->dec);
			l->stats.sections++;
			if (sec->type == DEVSTATE_SEC_MEMORY && sec->in_pieces)
				rc = load_memory_verified(l, sec);
			else if (sec->type == DEVSTATE_SEC_MEMORY)
				rc = load_memory(l, sec);
			else if (sec->type == DEVSTATE_SEC_CONFIG)
				rc = load_config(l, sec);
			else {
				l->stats.bitmap_sections +=
					sec->type == DEVSTATE_SEC_DIRTY_BITMAP;
				rc = 0;
			}
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
	/* the caller's buffer is valid only until we return */
	return load_flush_run(l);
}

DEVSTATE_EXPORT int devstate_load_finish(struct devstate_load *l)
{
	int rc;

	if (!l)
		return -EINVAL;
	if (l->m2)
		return devstate_m2_load_finish(l->m2);
	rc = devstate_load_finish_order(l->err, sizeof(l->err), l->phase,
					l->stats.stream_bytes);
	if (rc == -EIO)
		return rc;
	if (rc < 0)
		return load_fail(l, rc);
	if (l->in_batch) {
		load_err(l, "finish: the last memory batch is incomplete");
		return load_fail(l, -EPROTO);
	}
	rc = devstate_dev_set_state(l->dev, "finish", DEVSTATE_STATE_RUNNING);
	if (rc < 0)
		return load_dev_fail(l, rc);
	l->phase = LOAD_FINISHED;
	return 0;
}

DEVSTATE_EXPORT const char *devstate_load_error(const struct devstate_load *l)
{
	if (l && l->m2)
		return devstate_m2_load_error(l->m2);
	return l ? l->err : "no session";
}

DEVSTATE_EXPORT void devstate_load_get_stats(const struct devstate_load *l,
					     struct devstate_load_stats *st)
{
	if (l && st && l->m2)
		devstate_m2_load_get_stats(l->m2, st);
	else if (l && st)
		*st = l->stats;
}

DEVSTATE_EXPORT void devstate_load_free(struct devstate_load *l)
{
	if (!l)
		return;
	devstate_m2_load_free(l->m2);
	devstate_dec_free(l->dec);
	free(l);
}

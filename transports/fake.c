/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The in-memory fake device: a strict vendor-side model of the
 * device-state interface (SPEC 3-8) that refuses every violation of the
 * access rules of SPEC 11 with the errno given there, so that a
 * misbehaving library is caught by the tests.
 *
 * Device memory batches use a vendor-private, self-describing encoding:
 * a sequence of records { u64 LE offset, u64 LE length, length bytes }.
 * A whole snapshot is one record covering all of device memory; a delta
 * is one record per run of contiguous dirty 4 KiB pages.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libdevstate/core.h"
#include "libdevstate/device.h"
#include "libdevstate/stream.h"
#include "transports/fake-mig2.h"
#include "transports/fake.h"
#include "transports/transport.h"

#define FAKE_PAGE		((uint64_t)DEVSTATE_PAGE_SIZE)
#define FAKE_REC_HDR		16u
#define FAKE_MEM_MAX		(64ull << 30)	/* memory=, sysmem= */
#define FAKE_REGION_MAX		(1ull << 30)	/* regions, config= */

/*
 * A batch of device memory frozen by a device_memory.size read.  A whole
 * snapshot is kept lazily: it is the record header plus device memory as
 * it is now, read in place, and copied (materialized) only when device
 * memory is about to change before the batch has been read.  So a save
 * of a device that is not written meanwhile costs no copy of its memory
 * (performance only: what a reader sees is the same).
 */
struct fake_out_batch {
	bool valid;
	bool lazy;		/* data is hdr + f->mem, not a copy */
	bool lost;		/* materializing ran out of memory */
	uint8_t hdr[FAKE_REC_HDR];
	uint8_t *data;
	uint64_t size;
	uint64_t nchunks;	/* chunks of the MEMORY region length */
	uint64_t ngot;		/* distinct chunks got so far */
	uint64_t *got;		/* one bit per chunk */
};

/* A batch being loaded by SET_BUFFER (destination side). */
struct fake_in_batch {
	bool active;		/* size written, not all chunks yet */
	bool whole;		/* whole-snapshot sized: goes to f->spare */
	uint8_t hdr[FAKE_REC_HDR];	/* its record header */
	uint8_t *data;
	uint64_t size;
	uint64_t next;		/* position of the next expected chunk */
};

struct devstate_fake {
	/* configuration */
	uint32_t version;
	uint32_t caps;
	const struct devstate_layout *layout;
	uint64_t ctl_len;
	bool mmap;
	uint64_t log_limit;
	uint64_t seed;
	/* test knob: every confirmed state change is recorded here, so that
	 * a test can read the state after killing the process (SIGKILL) */
	char state_file[256];
	uint64_t configs_loaded;

	/* data regions (CONFIG, MEMORY, BITMAP); CTL is decoded, not stored */
	bool present[DEVSTATE_REGION_COUNT];
	uint64_t rlen[DEVSTATE_REGION_COUNT];
	uint8_t *rbuf[DEVSTATE_REGION_COUNT];

	/* contents */
	uint32_t state;
	uint8_t *mem;
	uint64_t mem_len;
	uint64_t mem_pages;
	uint8_t *cfg;
	uint64_t cfg_len;

	/* save side */
	uint64_t *mem_dirty;	/* one bit per device-memory page */
	bool tracking;		/* dirty tracking on (after the first freeze) */
	bool frozen_once;
	struct fake_out_batch out;
	uint64_t pos;

	/* load side */
	struct fake_in_batch in;
	uint8_t *stage;		/* in.data points here: kept across batches
				   so that a load does not fault in a fresh
				   buffer each time */
	uint64_t stage_cap;
	/*
	 * A batch the size of a whole snapshot (one record header + all of
	 * memory) is received into a spare copy of device memory instead,
	 * and applied by swapping it with f->mem: still all or nothing, but
	 * without a second pass over memory.  The old memory becomes the
	 * spare for the next load.
	 */
	uint8_t *spare;
	bool cfg_size_set;
	bool cfg_loaded;
	uint64_t batches_loaded;

	/* system memory */
	uint64_t sys_pages;
	uint64_t *sys_log;
	uint64_t *sys_truth;
	uint64_t sys_pending;
	bool overflow;
	uint64_t start_addr;
	uint64_t page_nr;
	bool start_set;
	bool page_nr_set;

	/* workload */
	uint64_t work_rng;
	unsigned auto_pages;

	/* faults and counters */
	uint64_t ops;
	uint64_t fail_nth;
	int fail_err;
	uint64_t short_nth;
	bool short_all;
	struct devstate_fake_counters cnt;

	/* mig2=FLAGS: the uAPI v2 model (fake-mig2.c) */
	struct fake_mig2 *m2;
};

/* ---------------------------------------------------------------- */
/* Helpers.                                                         */

#define fake_err(err, errlen, rc, ...) \
	devstate_transport_err(err, errlen, rc, "fake: ", __VA_ARGS__)


/* splitmix64: small, seedable, good enough for contents and workload. */
static uint64_t fake_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t bm_words(uint64_t nbits)
{
	return (nbits + 63) / 64;
}

static bool bm_test(const uint64_t *bm, uint64_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

static void bm_set(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ull << (i % 64);
}

static void bm_clear(uint64_t *bm, uint64_t i)
{
	bm[i / 64] &= ~(1ull << (i % 64));
}

static uint64_t *bm_alloc(uint64_t nbits)
{
	uint64_t n = bm_words(nbits);

	return calloc(n ? n : 1, sizeof(uint64_t));
}

static void *zalloc(uint64_t len)
{
	return calloc(1, len ? len : 1);
}

static bool has_cap(const struct devstate_fake *f, uint32_t cap)
{
	return (f->caps & cap) != 0;
}

static const char *state_str(uint32_t s)
{
	static const char *const names[] = {
		"RUNNING", "STOP", "RUNNING|LOGGING", "STOP|LOGGING"
	};

	return s <= DEVSTATE_STATE_MAX ? names[s] : "invalid";
}

static const char *region_str(enum devstate_region r)
{
	static const char *const names[] = {
		"CTL", "DEVICE_CONFIG", "DEVICE_MEMORY", "DIRTY_BITMAP"
	};

	return (unsigned)r < DEVSTATE_REGION_COUNT ? names[r] : "unknown";
}

/* ---------------------------------------------------------------- */
/* Device activity: dirtying memory, logging system memory.         */

static void mark_mem_dirty(struct devstate_fake *f, uint64_t page)
{
	if (f->tracking && page < f->mem_pages)
		bm_set(f->mem_dirty, page);
}

static void log_sysmem(struct devstate_fake *f, uint64_t page)
{
	if (page >= f->sys_pages || !(f->state & DEVSTATE_STATE_LOGGING))
		return;
	bm_set(f->sys_truth, page);
	if (f->overflow || bm_test(f->sys_log, page))
		return;
	bm_set(f->sys_log, page);
	f->sys_pending++;
	if (f->log_limit && f->sys_pending > f->log_limit) {
		/* the log overflowed: forget it, queries fail until LOGGING
		 * is left or entered again */
		memset(f->sys_log, 0, bm_words(f->sys_pages) * 8);
		f->sys_pending = 0;
		f->overflow = true;
	}
}

static void empty_sys_log(struct devstate_fake *f)
{
	memset(f->sys_log, 0, bm_words(f->sys_pages) * 8);
	f->sys_pending = 0;
	f->overflow = false;
}

static void materialize(struct devstate_fake *f);

void devstate_fake_workload(struct devstate_fake *f, unsigned pages)
{
	unsigned i, w;

	if (!f || (f->state & DEVSTATE_STATE_STOP))
		return;
	if (f->mem_pages && pages)
		materialize(f);
	for (i = 0; f->mem_pages && i < pages; i++) {
		uint64_t page = fake_rand(&f->work_rng) % f->mem_pages;
		uint64_t off = page * FAKE_PAGE +
			(fake_rand(&f->work_rng) % (FAKE_PAGE / 64)) * 64;

		/* xor with odd values: the bytes always change */
		for (w = 0; w < 8; w++) {
			uint64_t v, x = fake_rand(&f->work_rng) | 1;

			memcpy(&v, f->mem + off + w * 8, 8);
			v ^= x;
			memcpy(f->mem + off + w * 8, &v, 8);
		}
		mark_mem_dirty(f, page);
	}
	if (!(f->state & DEVSTATE_STATE_LOGGING) || !f->sys_pages)
		return;
	for (i = 0; i < pages; i++)
		log_sysmem(f, fake_rand(&f->work_rng) % f->sys_pages);
}

static void tick(struct devstate_fake *f)
{
	if (f->auto_pages)
		devstate_fake_workload(f, f->auto_pages);
}

/* ---------------------------------------------------------------- */
/* Device state.                                                    */

static void reset_load(struct devstate_fake *f)
{
	memset(&f->in, 0, sizeof(f->in));
	f->cfg_size_set = false;
	f->cfg_loaded = false;
}

static int fake_digest(void *priv, uint32_t *crc);

/*
 * state-file=PATH: write "state=NAME loaded=N digest=0xCRC" to PATH
 * (through PATH.tmp and rename, so a reader never sees half a line):
 * the state, the memory batches plus configs loaded since open, and the
 * digest of the contents.  Best effort: a failure is not the device's.
 */
static void record_state(struct devstate_fake *f)
{
	char tmp[sizeof(f->state_file) + 8];
	uint32_t crc = 0;
	FILE *out;

	if (!f->state_file[0])
		return;
	fake_digest(f, &crc);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->state_file);
	out = fopen(tmp, "we");
	if (!out)
		return;
	fprintf(out, "state=%s loaded=%llu digest=0x%08x\n",
		devstate_state_name(f->state),
		(unsigned long long)(f->batches_loaded + f->configs_loaded),
		(unsigned)crc);
	if (fclose(out) == 0)
		rename(tmp, f->state_file);
}

static int set_state(struct devstate_fake *f, uint64_t v, char *err,
		     size_t errlen)
{
	uint32_t old = f->state;

	if (v > DEVSTATE_STATE_MAX)
		return fake_err(err, errlen, -EINVAL,
				"device_state: invalid state %llu (0..3)",
				(unsigned long long)v);
	if (v == old)
		return 0;
	if ((old ^ (uint32_t)v) & DEVSTATE_STATE_LOGGING) {
		empty_sys_log(f);
		if (v & DEVSTATE_STATE_LOGGING)
			memset(f->sys_truth, 0, bm_words(f->sys_pages) * 8);
	}
	if (old == DEVSTATE_STATE_STOP)
		reset_load(f);
	f->state = (uint32_t)v;
	record_state(f);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Device memory, save side.                                        */

static void put_rec(uint8_t *p, uint64_t off, uint64_t len)
{
	devstate_le_put(p, 8, off);
	devstate_le_put(p + 8, 8, len);
}

/* Build the delta of dirty pages: one record per run. */
static int build_delta(struct devstate_fake *f, uint8_t **data,
		       uint64_t *size)
{
	uint64_t i, n, total = 0;
	uint8_t *buf, *p;

	for (i = 0; i < f->mem_pages; i = n) {
		if (!bm_test(f->mem_dirty, i)) {
			n = i + 1;
			continue;
		}
		for (n = i; n < f->mem_pages && bm_test(f->mem_dirty, n); n++)
			;
		total += FAKE_REC_HDR + (n - i) * FAKE_PAGE;
	}
	*size = total;
	*data = NULL;
	if (!total)
		return 0;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	p = buf;
	for (i = 0; i < f->mem_pages; i = n) {
		if (!bm_test(f->mem_dirty, i)) {
			n = i + 1;
			continue;
		}
		for (n = i; n < f->mem_pages && bm_test(f->mem_dirty, n); n++)
			bm_clear(f->mem_dirty, n);
		put_rec(p, i * FAKE_PAGE, (n - i) * FAKE_PAGE);
		memcpy(p + FAKE_REC_HDR, f->mem + i * FAKE_PAGE,
		       (n - i) * FAKE_PAGE);
		p += FAKE_REC_HDR + (n - i) * FAKE_PAGE;
	}
	*data = buf;
	return 0;
}

static int build_whole(struct devstate_fake *f, uint8_t **data,
		       uint64_t *size)
{
	uint8_t *buf = malloc(FAKE_REC_HDR + f->mem_len);

	if (!buf)
		return -ENOMEM;
	put_rec(buf, 0, f->mem_len);
	if (f->mem_len)
		memcpy(buf + FAKE_REC_HDR, f->mem, f->mem_len);
	*data = buf;
	*size = FAKE_REC_HDR + f->mem_len;
	return 0;
}

static void free_out(struct devstate_fake *f)
{
	free(f->out.data);
	free(f->out.got);
	memset(&f->out, 0, sizeof(f->out));
}

/* Device memory is about to change: give a lazy whole snapshot its own
 * copy first, unless it has been read to its end. */
static void materialize(struct devstate_fake *f)
{
	uint8_t *data;
	uint64_t size;

	if (!f->out.valid || !f->out.lazy)
		return;
	f->out.lazy = false;
	if (build_whole(f, &data, &size) < 0) {
		f->out.lost = true;
		return;
	}
	f->out.data = data;
}

/* Reading device_memory.size: freeze one batch. */
static int freeze(struct devstate_fake *f, uint64_t *size, char *err,
		  size_t errlen)
{
	uint64_t L = f->present[DEVSTATE_REGION_MEMORY] ?
		f->rlen[DEVSTATE_REGION_MEMORY] : 0;
	struct fake_out_batch b = { .valid = true };
	bool delta;
	int rc;

	tick(f);
	delta = (f->state & DEVSTATE_STATE_LOGGING) && f->frozen_once;
	if (delta && f->out.valid && f->out.size &&
	    f->out.ngot < f->out.nchunks)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.size: batch of %llu bytes not read to its end (%llu of %llu chunks) before the next freeze in %s",
				(unsigned long long)f->out.size,
				(unsigned long long)f->out.ngot,
				(unsigned long long)f->out.nchunks,
				state_str(f->state));
	if (delta) {
		rc = build_delta(f, &b.data, &b.size);
	} else {
		/* in place until memory changes (materialize()) */
		b.lazy = true;
		put_rec(b.hdr, 0, f->mem_len);
		b.size = FAKE_REC_HDR + f->mem_len;
		rc = 0;
	}
	if (rc < 0)
		return fake_err(err, errlen, rc,
				"device_memory.size: out of memory for a batch");
	b.nchunks = L ? devstate_chunk_count(b.size, L) : 0;
	b.got = bm_alloc(b.nchunks);
	if (!b.got) {
		free(b.data);
		return fake_err(err, errlen, -ENOMEM,
				"device_memory.size: out of memory for a batch");
	}
	if (!delta) {
		memset(f->mem_dirty, 0, bm_words(f->mem_pages) * 8);
		f->tracking = true;
	}
	f->frozen_once = true;
	free_out(f);
	f->out = b;
	*size = b.size;
	return 0;
}

static int mem_get_buffer(struct devstate_fake *f, char *err, size_t errlen)
{
	uint64_t L = f->rlen[DEVSTATE_REGION_MEMORY], n, idx;

	if (!f->present[DEVSTATE_REGION_MEMORY] || !L)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.action GET_BUFFER: no DEVICE_MEMORY region");
	if (!f->out.valid)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.action GET_BUFFER: no frozen batch (read device_memory.size first)");
	if (!f->out.size)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.action GET_BUFFER: the frozen batch is empty");
	if (f->pos >= f->out.size)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.action GET_BUFFER: pos %llu >= batch size %llu",
				(unsigned long long)f->pos,
				(unsigned long long)f->out.size);
	if (f->out.lost)
		return fake_err(err, errlen, -ENOMEM,
				"device_memory.action GET_BUFFER: out of memory keeping the frozen batch");
	n = f->out.size - f->pos;
	if (n > L)
		n = L;
	if (f->out.lazy) {
		uint8_t *dst = f->rbuf[DEVSTATE_REGION_MEMORY];
		uint64_t at = f->pos, h = 0;

		if (at < FAKE_REC_HDR) {
			h = FAKE_REC_HDR - at < n ? FAKE_REC_HDR - at : n;
			memcpy(dst, f->out.hdr + at, h);
		}
		if (n > h)
			memcpy(dst + h, f->mem + (at + h - FAKE_REC_HDR), n - h);
	} else {
		memcpy(f->rbuf[DEVSTATE_REGION_MEMORY], f->out.data + f->pos,
		       n);
	}
	memset(f->rbuf[DEVSTATE_REGION_MEMORY] + n, 0, L - n);
	idx = f->pos / L;
	if (!bm_test(f->out.got, idx)) {
		bm_set(f->out.got, idx);
		f->out.ngot++;
	}
	f->cnt.chunks_got++;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Device memory and config, load side.                             */

static int need_stop(struct devstate_fake *f, const char *what, char *err,
		     size_t errlen)
{
	if (f->state == DEVSTATE_STATE_STOP)
		return 0;
	return fake_err(err, errlen, -EBUSY,
			"%s: loading is allowed only in STOP (device is %s)",
			what, state_str(f->state));
}

/* Largest batch this device can produce: a record per page at worst. */
static uint64_t in_batch_max(const struct devstate_fake *f)
{
	return f->mem_len + FAKE_REC_HDR * (f->mem_pages + 1);
}

/* Validate every record, then apply them all (or none). */
static int apply_batch(struct devstate_fake *f, const uint8_t *p,
		       uint64_t size, char *err, size_t errlen)
{
	uint64_t at, off, len;
	int pass;

	materialize(f);
	for (pass = 0; pass < 2; pass++) {
		for (at = 0; at < size; at += FAKE_REC_HDR + len) {
			if (size - at < FAKE_REC_HDR)
				return fake_err(err, errlen, -EINVAL,
						"device_memory: malformed batch: truncated record header at %llu",
						(unsigned long long)at);
			off = devstate_le_get(p + at, 8);
			len = devstate_le_get(p + at + 8, 8);
			if (len > size - at - FAKE_REC_HDR ||
			    off > f->mem_len || len > f->mem_len - off)
				return fake_err(err, errlen, -EINVAL,
						"device_memory: malformed batch: record at %llu (offset %llu, length %llu) exceeds the batch or memory of %llu bytes",
						(unsigned long long)at,
						(unsigned long long)off,
						(unsigned long long)len,
						(unsigned long long)f->mem_len);
			if (pass && len)
				memcpy(f->mem + off, p + at + FAKE_REC_HDR,
				       len);
		}
	}
	return 0;
}

static int mem_load_size(struct devstate_fake *f, uint64_t size, char *err,
			 size_t errlen)
{
	uint8_t *data = NULL;
	int rc;

	rc = need_stop(f, "device_memory.size", err, errlen);
	if (rc < 0)
		return rc;
	if (f->cfg_loaded)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.size: memory after the config was loaded");
	if (f->in.active)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.size: previous batch incomplete (%llu of %llu bytes)",
				(unsigned long long)f->in.next,
				(unsigned long long)f->in.size);
	if (size > in_batch_max(f))
		return fake_err(err, errlen, -EINVAL,
				"device_memory.size: batch of %llu bytes is larger than any this device produces (%llu)",
				(unsigned long long)size,
				(unsigned long long)in_batch_max(f));
	f->in.whole = f->mem_len && size == FAKE_REC_HDR + f->mem_len;
	if (f->in.whole && !f->spare) {
		f->spare = malloc(f->mem_len);
		if (!f->spare)
			return fake_err(err, errlen, -ENOMEM,
					"device_memory.size: out of memory");
	}
	if (!f->in.whole && size > f->stage_cap) {
		data = malloc(size);
		if (!data)
			return fake_err(err, errlen, -ENOMEM,
					"device_memory.size: out of memory");
		free(f->stage);
		f->stage = data;
		f->stage_cap = size;
	}
	f->in.data = size && !f->in.whole ? f->stage : NULL;
	f->in.size = size;
	f->in.next = 0;
	f->in.active = size != 0;
	if (!size)
		f->batches_loaded++;
	return 0;
}

/* Bytes [at, at + n) of a whole-snapshot-sized batch: the header to
 * in.hdr, the rest to the spare memory. */
static void whole_piece(struct devstate_fake *f, uint64_t at,
			const uint8_t *src, uint64_t n)
{
	uint64_t h = 0;

	if (at < FAKE_REC_HDR) {
		h = FAKE_REC_HDR - at < n ? FAKE_REC_HDR - at : n;
		memcpy(f->in.hdr + at, src, h);
	}
	if (n > h)
		memcpy(f->spare + (at + h - FAKE_REC_HDR), src + h, n - h);
}

/* Apply a whole-snapshot-sized batch: one record (0, mem_len) makes the
 * spare the memory; anything else takes the general path, for exactly
 * its checks and messages. */
static int apply_whole(struct devstate_fake *f, char *err, size_t errlen)
{
	uint64_t size = FAKE_REC_HDR + f->mem_len;
	uint8_t *buf, *tmp;
	int rc;

	if (devstate_le_get(f->in.hdr, 8) != 0 ||
	    devstate_le_get(f->in.hdr + 8, 8) != f->mem_len) {
		buf = malloc(size);
		if (!buf)
			return fake_err(err, errlen, -ENOMEM,
					"device_memory: out of memory");
		memcpy(buf, f->in.hdr, FAKE_REC_HDR);
		memcpy(buf + FAKE_REC_HDR, f->spare, f->mem_len);
		rc = apply_batch(f, buf, size, err, errlen);
		free(buf);
		return rc;
	}
	materialize(f);
	tmp = f->mem;
	f->mem = f->spare;
	f->spare = tmp;
	return 0;
}

static int mem_set_buffer(struct devstate_fake *f, char *err, size_t errlen)
{
	uint64_t L = f->rlen[DEVSTATE_REGION_MEMORY], n;
	int rc;

	rc = need_stop(f, "device_memory.action SET_BUFFER", err, errlen);
	if (rc < 0)
		return rc;
	if (!f->present[DEVSTATE_REGION_MEMORY] || !L)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.action SET_BUFFER: no DEVICE_MEMORY region");
	if (f->cfg_loaded)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.action SET_BUFFER: memory after the config was loaded");
	if (!f->in.active)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.action SET_BUFFER: no batch in progress (write device_memory.size first)");
	if (f->pos != f->in.next)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.action SET_BUFFER: chunk at pos %llu, expected pos %llu (chunks must come in order, each once)",
				(unsigned long long)f->pos,
				(unsigned long long)f->in.next);
	n = f->in.size - f->pos;
	if (n > L)
		n = L;
	if (f->in.whole)
		whole_piece(f, f->pos, f->rbuf[DEVSTATE_REGION_MEMORY], n);
	else
		memcpy(f->in.data + f->pos, f->rbuf[DEVSTATE_REGION_MEMORY],
		       n);
	f->in.next += n;
	f->cnt.chunks_set++;
	if (f->in.next < f->in.size)
		return 0;
	if (f->in.whole)
		rc = apply_whole(f, err, errlen);
	else
		rc = apply_batch(f, f->in.data, f->in.size, err, errlen);
	f->in.data = NULL;
	f->in.active = false;
	if (rc < 0)
		return rc;
	f->batches_loaded++;
	return 0;
}

static int cfg_load_size(struct devstate_fake *f, uint64_t size, char *err,
			 size_t errlen)
{
	int rc = need_stop(f, "device_config.size", err, errlen);

	if (rc < 0)
		return rc;
	if (size != f->cfg_len)
		return fake_err(err, errlen, -EINVAL,
				"device_config.size: %llu written, the config is %llu bytes",
				(unsigned long long)size,
				(unsigned long long)f->cfg_len);
	f->cfg_size_set = true;
	return 0;
}

static int cfg_action(struct devstate_fake *f, uint64_t action, char *err,
		      size_t errlen)
{
	uint64_t R = f->rlen[DEVSTATE_REGION_CONFIG];
	int rc;

	if (action == DEVSTATE_ACTION_GET_BUFFER) {
		if (R < f->cfg_len)
			return fake_err(err, errlen, -EINVAL,
					"device_config.action GET_BUFFER: DEVICE_CONFIG region of %llu bytes is smaller than the config (%llu)",
					(unsigned long long)R,
					(unsigned long long)f->cfg_len);
		if (f->cfg_len)
			memcpy(f->rbuf[DEVSTATE_REGION_CONFIG], f->cfg,
			       f->cfg_len);
		return 0;
	}
	if (action != DEVSTATE_ACTION_SET_BUFFER)
		return fake_err(err, errlen, -EINVAL,
				"device_config.action: invalid action %llu",
				(unsigned long long)action);
	rc = need_stop(f, "device_config.action SET_BUFFER", err, errlen);
	if (rc < 0)
		return rc;
	if (!f->cfg_size_set)
		return fake_err(err, errlen, -EINVAL,
				"device_config.action SET_BUFFER: device_config.size not written in this STOP period");
	if (f->in.active)
		return fake_err(err, errlen, -EINVAL,
				"device_config.action SET_BUFFER: memory batch incomplete (%llu of %llu bytes)",
				(unsigned long long)f->in.next,
				(unsigned long long)f->in.size);
	if (R < f->cfg_len)
		return fake_err(err, errlen, -EINVAL,
				"device_config.action SET_BUFFER: DEVICE_CONFIG region of %llu bytes is smaller than the config (%llu)",
				(unsigned long long)R,
				(unsigned long long)f->cfg_len);
	if (f->cfg_len)
		memcpy(f->cfg, f->rbuf[DEVSTATE_REGION_CONFIG], f->cfg_len);
	f->cfg_loaded = true;
	f->configs_loaded++;
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int mem_action(struct devstate_fake *f, uint64_t action, char *err,
		      size_t errlen)
{
	uint64_t t0;
	int rc;

	/* the device's own work, timed so a benchmark can tell it from the
	 * library's (fake.h, fill_ns / drain_ns) */
	if (action == DEVSTATE_ACTION_GET_BUFFER) {
		t0 = mono_ns();
		rc = mem_get_buffer(f, err, errlen);
		f->cnt.fill_ns += mono_ns() - t0;
		return rc;
	}
	if (action == DEVSTATE_ACTION_SET_BUFFER) {
		t0 = mono_ns();
		rc = mem_set_buffer(f, err, errlen);
		f->cnt.drain_ns += mono_ns() - t0;
		return rc;
	}
	return fake_err(err, errlen, -EINVAL,
			"device_memory.action: invalid action %llu",
			(unsigned long long)action);
}

static int mem_pos(struct devstate_fake *f, uint64_t pos, char *err,
		   size_t errlen)
{
	uint64_t L = f->rlen[DEVSTATE_REGION_MEMORY];

	if (!f->present[DEVSTATE_REGION_MEMORY] || !L)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.pos: no DEVICE_MEMORY region");
	if (pos % L)
		return fake_err(err, errlen, -EINVAL,
				"device_memory.pos: %llu is not a multiple of the chunk length %llu",
				(unsigned long long)pos,
				(unsigned long long)L);
	f->pos = pos;
	return 0;
}

/* ---------------------------------------------------------------- */
/* System memory dirty bitmap.                                      */

static int sys_start(struct devstate_fake *f, uint64_t addr, char *err,
		     size_t errlen)
{
	if (addr % FAKE_PAGE || addr / FAKE_PAGE >= f->sys_pages)
		return fake_err(err, errlen, -EINVAL,
				"system_memory.start_addr: 0x%llx is not a page-aligned address below 0x%llx",
				(unsigned long long)addr,
				(unsigned long long)(f->sys_pages * FAKE_PAGE));
	f->start_addr = addr;
	f->start_set = true;
	return 0;
}

static int sys_check_range(struct devstate_fake *f, uint64_t start,
			   uint64_t page_nr, const char *what, char *err,
			   size_t errlen)
{
	uint64_t max = f->rlen[DEVSTATE_REGION_BITMAP] * 8;

	if (!page_nr || page_nr > max)
		return fake_err(err, errlen, -EINVAL,
				"%s: page_nr %llu is not in 1..%llu",
				what, (unsigned long long)page_nr,
				(unsigned long long)max);
	if (start / FAKE_PAGE > f->sys_pages ||
	    page_nr > f->sys_pages - start / FAKE_PAGE)
		return fake_err(err, errlen, -EINVAL,
				"%s: pages [%llu, +%llu) beyond system memory of %llu pages",
				what, (unsigned long long)(start / FAKE_PAGE),
				(unsigned long long)page_nr,
				(unsigned long long)f->sys_pages);
	return 0;
}

static int sys_query(struct devstate_fake *f, char *err, size_t errlen)
{
	uint8_t *bm = f->rbuf[DEVSTATE_REGION_BITMAP];
	uint64_t first, i;
	int rc;

	if (!f->start_set || !f->page_nr_set)
		return fake_err(err, errlen, -EINVAL,
				"system_memory query: start_addr and page_nr must be written first");
	rc = sys_check_range(f, f->start_addr, f->page_nr,
			     "system_memory query", err, errlen);
	if (rc < 0)
		return rc;
	if ((f->state & DEVSTATE_STATE_LOGGING) && f->overflow)
		return fake_err(err, errlen, -ENOSPC,
				"system_memory query: the dirty log overflowed (limit %llu pages)",
				(unsigned long long)f->log_limit);
	first = f->start_addr / FAKE_PAGE;
	memset(bm, 0, (f->page_nr + 7) / 8);
	if (!(f->state & DEVSTATE_STATE_LOGGING))
		return 0;
	for (i = 0; i < f->page_nr; i++) {
		if (!bm_test(f->sys_log, first + i))
			continue;
		bm[i / 8] |= (uint8_t)(1u << (i % 8));
		bm_clear(f->sys_log, first + i);
		f->sys_pending--;
	}
	return 0;
}

static int sys_page_nr(struct devstate_fake *f, uint64_t page_nr, char *err,
		       size_t errlen)
{
	int rc;

	rc = sys_check_range(f, f->start_set ? f->start_addr : 0, page_nr,
			     "system_memory.page_nr", err, errlen);
	if (rc < 0)
		return rc;
	if (!f->layout->bitmap_action && !f->start_set)
		return fake_err(err, errlen, -EINVAL,
				"system_memory.page_nr: query before start_addr was written");
	f->page_nr = page_nr;
	f->page_nr_set = true;
	if (!f->layout->bitmap_action)
		return sys_query(f, err, errlen);
	return 0;
}

static int sys_action(struct devstate_fake *f, uint64_t action, char *err,
		      size_t errlen)
{
	if (action != DEVSTATE_ACTION_GET_BITMAP)
		return fake_err(err, errlen, -EINVAL,
				"system_memory.action: invalid action %llu",
				(unsigned long long)action);
	return sys_query(f, err, errlen);
}

/* ---------------------------------------------------------------- */
/* Transport ops.                                                   */

/* Count an op; -err when it is the one to fail. */
static int op_begin(struct devstate_fake *f, uint64_t *nth, char *err,
		    size_t errlen)
{
	*nth = ++f->ops;
	if (f->fail_nth && *nth == f->fail_nth)
		return fake_err(err, errlen, -f->fail_err,
				"injected failure of operation %llu",
				(unsigned long long)*nth);
	return 0;
}

struct fake_mig2 *devstate_fake_m2(void *priv)
{
	return priv ? ((struct devstate_fake *)priv)->m2 : NULL;
}

int devstate_fake_count_op(void *priv, char *err, size_t errlen)
{
	uint64_t nth;

	return op_begin(priv, &nth, err, errlen);
}

/* Resolve a control access to one field, checking region and layout. */
static int ctl_field(struct devstate_fake *f, uint32_t off, uint32_t len,
		     unsigned access, enum devstate_field *field,
		     const struct devstate_field_desc **desc, char *err,
		     size_t errlen)
{
	const char *dir = access == DEVSTATE_ACCESS_R ? "read" : "write";
	const struct devstate_field_desc *d;

	if (!f->ctl_len || (uint64_t)off + len > f->ctl_len)
		return fake_err(err, errlen, -EINVAL,
				"CTL %s of %u bytes at offset %u: past the end of the %llu-byte region",
				dir, len, off,
				(unsigned long long)f->ctl_len);
	if (devstate_layout_field_at(f->layout, off, len, field) < 0)
		return fake_err(err, errlen, -EINVAL,
				"CTL %s of %u bytes at offset %u: not exactly one field of the version %u layout",
				dir, len, off, f->layout->version);
	d = devstate_layout_field(f->layout, *field);
	if (!d || !(d->access & access))
		return fake_err(err, errlen, -EINVAL,
				"CTL %s at offset %u: field %s is %s",
				dir, off, d && d->name ? d->name : "?",
				access == DEVSTATE_ACCESS_R ?
				"write-only" : "read-only");
	switch (*field) {
	case DEVSTATE_FIELD_MEMORY_ACTION:
	case DEVSTATE_FIELD_MEMORY_SIZE:
	case DEVSTATE_FIELD_MEMORY_POS:
		if (!has_cap(f, DEVSTATE_CAP_DEVICE_MEMORY))
			return fake_err(err, errlen, -EINVAL,
					"CTL %s of %s: device has no cap DEVICE_MEMORY",
					dir, d->name);
		break;
	case DEVSTATE_FIELD_SYSMEM_ACTION:
	case DEVSTATE_FIELD_SYSMEM_START:
	case DEVSTATE_FIELD_SYSMEM_PAGE_NR:
		if (!has_cap(f, DEVSTATE_CAP_SYSTEM_MEMORY))
			return fake_err(err, errlen, -EINVAL,
					"CTL %s of %s: device has no cap SYSTEM_MEMORY",
					dir, d->name);
		if (!f->present[DEVSTATE_REGION_BITMAP])
			return fake_err(err, errlen, -EINVAL,
					"CTL %s of %s: device has no DIRTY_BITMAP region",
					dir, d->name);
		break;
	default:
		break;
	}
	*desc = d;
	return 0;
}

static int fake_ctl_read(void *priv, uint32_t off, void *buf, uint32_t len,
			 char *err, size_t errlen)
{
	struct devstate_fake *f = priv;
	const struct devstate_field_desc *d;
	enum devstate_field field;
	uint64_t nth, v = 0;
	int rc;

	f->cnt.ctl_reads++;
	rc = op_begin(f, &nth, err, errlen);
	if (rc < 0)
		return rc;
	rc = ctl_field(f, off, len, DEVSTATE_ACCESS_R, &field, &d, err,
		       errlen);
	if (rc < 0)
		return rc;
	switch (field) {
	case DEVSTATE_FIELD_VERSION:
		v = f->version;
		break;
	case DEVSTATE_FIELD_CAPS:
		v = f->caps;
		break;
	case DEVSTATE_FIELD_CONFIG_SIZE:
		v = f->cfg_len;
		break;
	case DEVSTATE_FIELD_MEMORY_SIZE:
		rc = freeze(f, &v, err, errlen);
		break;
	case DEVSTATE_FIELD_MEMORY_POS:
		v = f->pos;
		break;
	default:
		rc = fake_err(err, errlen, -EINVAL,
			      "CTL read at offset %u: field %s is not readable",
			      off, d->name);
		break;
	}
	if (rc < 0)
		return rc;
	devstate_le_put(buf, len, v);
	return 0;
}

static int fake_ctl_write(void *priv, uint32_t off, const void *buf,
			  uint32_t len, char *err, size_t errlen)
{
	struct devstate_fake *f = priv;
	const struct devstate_field_desc *d;
	enum devstate_field field;
	uint64_t nth, v;
	int rc;

	f->cnt.ctl_writes++;
	rc = op_begin(f, &nth, err, errlen);
	if (rc < 0)
		return rc;
	rc = ctl_field(f, off, len, DEVSTATE_ACCESS_W, &field, &d, err,
		       errlen);
	if (rc < 0)
		return rc;
	v = devstate_le_get(buf, len);
	switch (field) {
	case DEVSTATE_FIELD_DEVICE_STATE:
		tick(f);
		return set_state(f, v, err, errlen);
	case DEVSTATE_FIELD_CONFIG_ACTION:
		return cfg_action(f, v, err, errlen);
	case DEVSTATE_FIELD_CONFIG_SIZE:
		return cfg_load_size(f, v, err, errlen);
	case DEVSTATE_FIELD_MEMORY_ACTION:
		return mem_action(f, v, err, errlen);
	case DEVSTATE_FIELD_MEMORY_SIZE:
		return mem_load_size(f, v, err, errlen);
	case DEVSTATE_FIELD_MEMORY_POS:
		return mem_pos(f, v, err, errlen);
	case DEVSTATE_FIELD_SYSMEM_ACTION:
		return sys_action(f, v, err, errlen);
	case DEVSTATE_FIELD_SYSMEM_START:
		return sys_start(f, v, err, errlen);
	case DEVSTATE_FIELD_SYSMEM_PAGE_NR:
		return sys_page_nr(f, v, err, errlen);
	default:
		return fake_err(err, errlen, -EINVAL,
				"CTL write at offset %u: field %s is not writable",
				off, d->name);
	}
}

static int data_check(struct devstate_fake *f, enum devstate_region r,
		      uint64_t off, size_t len, const char *what, char *err,
		      size_t errlen)
{
	if ((unsigned)r >= DEVSTATE_REGION_COUNT || r == DEVSTATE_REGION_CTL)
		return fake_err(err, errlen, -EINVAL,
				"%s: region %s is not a data region", what,
				region_str(r));
	if (!f->present[r])
		return fake_err(err, errlen, -EINVAL,
				"%s: device has no %s region", what,
				region_str(r));
	if (off > f->rlen[r] || len > f->rlen[r] - off)
		return fake_err(err, errlen, -EINVAL,
				"%s of %zu bytes at offset %llu: past the end of the %llu-byte %s region",
				what, len, (unsigned long long)off,
				(unsigned long long)f->rlen[r], region_str(r));
	return 0;
}

/* Like pread/pwrite: may move fewer bytes than asked. */
static size_t xfer_inner(struct devstate_fake *f, void *dst,
			 const void *src, size_t len, bool partial)
{
	size_t n = len;

	if (partial) {
		n = len / 2;
		if (!n)
			n = 1;
	}
	memcpy(dst, src, n);
	if (n < len)
		f->cnt.short_transfers++;
	return n;
}

static void xfer(struct devstate_fake *f, uint64_t nth, void *dst,
		 const void *src, size_t len)
{
	bool partial = f->short_all || (f->short_nth && f->short_nth == nth);
	size_t done = 0;

	while (done < len)
		done += xfer_inner(f, (uint8_t *)dst + done,
				   (const uint8_t *)src + done, len - done,
				   partial);
}

static int fake_data_read(void *priv, enum devstate_region r, uint64_t off,
			  void *buf, size_t len, char *err, size_t errlen)
{
	struct devstate_fake *f = priv;
	uint64_t nth;
	int rc;

	f->cnt.data_reads++;
	rc = op_begin(f, &nth, err, errlen);
	if (rc < 0)
		return rc;
	rc = data_check(f, r, off, len, "data read", err, errlen);
	if (rc < 0)
		return rc;
	xfer(f, nth, buf, f->rbuf[r] + off, len);
	return 0;
}

static int fake_data_write(void *priv, enum devstate_region r, uint64_t off,
			   const void *buf, size_t len, char *err,
			   size_t errlen)
{
	struct devstate_fake *f = priv;
	uint64_t nth;
	int rc;

	f->cnt.data_writes++;
	rc = op_begin(f, &nth, err, errlen);
	if (rc < 0)
		return rc;
	rc = data_check(f, r, off, len, "data write", err, errlen);
	if (rc < 0)
		return rc;
	xfer(f, nth, f->rbuf[r] + off, buf, len);
	return 0;
}

static int fake_data_map(void *priv, enum devstate_region r, void **addr,
			 char *err, size_t errlen)
{
	struct devstate_fake *f = priv;
	uint64_t nth;
	int rc;

	f->cnt.maps++;
	rc = op_begin(f, &nth, err, errlen);
	if (rc < 0)
		return rc;
	if ((unsigned)r >= DEVSTATE_REGION_COUNT || r == DEVSTATE_REGION_CTL)
		return fake_err(err, errlen, -EINVAL,
				"map: region %s is not a data region",
				region_str(r));
	if (!f->present[r])
		return fake_err(err, errlen, -EOPNOTSUPP,
				"map: device has no %s region", region_str(r));
	if (!f->mmap)
		return fake_err(err, errlen, -EOPNOTSUPP,
				"map: %s region is not mappable (mmap=no)",
				region_str(r));
	*addr = f->rbuf[r];
	return 0;
}

static int fake_regions(void *priv, struct devstate_regions *out, char *err,
			size_t errlen)
{
	struct devstate_fake *f = priv;
	unsigned r;

	(void)err;
	(void)errlen;
	memset(out, 0, sizeof(*out));
	out->present[DEVSTATE_REGION_CTL] = f->ctl_len != 0;
	out->size[DEVSTATE_REGION_CTL] = f->ctl_len;
	for (r = DEVSTATE_REGION_CONFIG; r < DEVSTATE_REGION_COUNT; r++) {
		out->present[r] = f->present[r];
		out->size[r] = f->present[r] ? f->rlen[r] : 0;
		out->mappable[r] = f->present[r] && f->mmap;
	}
	return 0;
}

static int fake_digest(void *priv, uint32_t *crc)
{
	struct devstate_fake *f = priv;
	uint32_t c = 0;

	if (f->mem_len)
		c = devstate_crc32(c, f->mem, f->mem_len);
	if (f->cfg_len)
		c = devstate_crc32(c, f->cfg, f->cfg_len);
	*crc = c;
	return 0;
}

static void fake_close(void *priv)
{
	struct devstate_fake *f = priv;
	unsigned r;

	if (!f)
		return;
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++)
		free(f->rbuf[r]);
	free(f->mem);
	free(f->cfg);
	free(f->mem_dirty);
	free_out(f);
	free(f->stage);
	free(f->spare);
	free(f->sys_log);
	free(f->sys_truth);
	fake_mig2_free(f->m2);
	free(f);
}

/* ---------------------------------------------------------------- */
/* Opening: URI parsing.                                            */

struct fake_args {
	uint32_t version;
	uint32_t caps;
	uint64_t memory, config, config_region, chunk, bitmap, ctl, sysmem;
	uint64_t seed, log_limit, mig2;
	unsigned workload;
	bool mig2_set;
	bool config_region_set, ctl_set, mmap, zero;
	char state_file[256];
};

#define FAKE_KEYS "version, caps, memory, config, config-region, chunk " \
	"(memory-region), bitmap (bitmap-region), ctl, sysmem, seed, " \
	"workload, mmap, log-limit, zero, state-file, mig2"


static int parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "yes") || !strcmp(s, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "no") || !strcmp(s, "0")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int parse_caps(const char *s, uint32_t *out)
{
	uint32_t caps = 0;
	uint64_t n;
	const char *p, *end;
	size_t len;

	if (s[0] >= '0' && s[0] <= '9') {
		if (devstate_parse_u64(s, UINT32_MAX, &n) < 0)
			return -EINVAL;
		*out = (uint32_t)n;
		return 0;
	}
	if (!strcmp(s, "none")) {
		*out = 0;
		return 0;
	}
	for (p = s; *p; p = *end ? end + 1 : end) {
		end = strchr(p, '+');
		if (!end)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (len == strlen("device-memory") &&
		    !strncmp(p, "device-memory", len))
			caps |= DEVSTATE_CAP_DEVICE_MEMORY;
		else if (len == strlen("system-memory") &&
			 !strncmp(p, "system-memory", len))
			caps |= DEVSTATE_CAP_SYSTEM_MEMORY;
		else
			return -EINVAL;
		if (*end && !end[1])
			return -EINVAL;	/* trailing '+' */
	}
	*out = caps;
	return 0;
}

static int parse_kv(struct fake_args *a, const char *key, const char *val,
		    char *err, size_t errlen)
{
	uint64_t n;

	if (!strcmp(key, "version")) {
		if (devstate_parse_u64(val, UINT32_MAX, &n) < 0)
			goto bad;
		a->version = (uint32_t)n;
	} else if (!strcmp(key, "caps")) {
		if (parse_caps(val, &a->caps) < 0)
			return fake_err(err, errlen, -EINVAL,
					"bad caps '%s' (none, device-memory, system-memory, device-memory+system-memory or a number)",
					val);
	} else if (!strcmp(key, "memory")) {
		if (devstate_parse_size(val, &a->memory) < 0)
			goto bad;
	} else if (!strcmp(key, "config")) {
		if (devstate_parse_size(val, &a->config) < 0)
			goto bad;
	} else if (!strcmp(key, "config-region")) {
		if (devstate_parse_size(val, &a->config_region) < 0)
			goto bad;
		a->config_region_set = true;
	} else if (!strcmp(key, "chunk") || !strcmp(key, "memory-region")) {
		if (devstate_parse_size(val, &a->chunk) < 0)
			goto bad;
	} else if (!strcmp(key, "bitmap") || !strcmp(key, "bitmap-region")) {
		if (devstate_parse_size(val, &a->bitmap) < 0)
			goto bad;
	} else if (!strcmp(key, "ctl")) {
		if (devstate_parse_size(val, &a->ctl) < 0)
			goto bad;
		a->ctl_set = true;
	} else if (!strcmp(key, "sysmem")) {
		if (devstate_parse_size(val, &a->sysmem) < 0)
			goto bad;
	} else if (!strcmp(key, "seed")) {
		if (devstate_parse_u64(val, UINT64_MAX, &a->seed) < 0)
			goto bad;
	} else if (!strcmp(key, "workload")) {
		if (devstate_parse_u64(val, UINT32_MAX, &n) < 0 || n > (unsigned)-1)
			goto bad;
		a->workload = (unsigned)n;
	} else if (!strcmp(key, "log-limit")) {
		if (devstate_parse_u64(val, UINT64_MAX, &a->log_limit) < 0)
			goto bad;
	} else if (!strcmp(key, "mmap")) {
		if (parse_bool(val, &a->mmap) < 0)
			goto bad;
	} else if (!strcmp(key, "zero")) {
		if (parse_bool(val, &a->zero) < 0)
			goto bad;
	} else if (!strcmp(key, "mig2")) {
		if (fake_mig2_parse_flags(val, &a->mig2) < 0)
			return fake_err(err, errlen, -EINVAL,
					"bad mig2 flags '%s' (stop-copy, p2p, pre-copy joined by '+', all, or a number)",
					val);
		a->mig2_set = true;
	} else if (!strcmp(key, "state-file")) {
		if (!*val || strlen(val) >= sizeof(a->state_file))
			goto bad;
		strcpy(a->state_file, val);
	} else {
		return fake_err(err, errlen, -EINVAL,
				"unknown key '%s' (keys: %s)", key, FAKE_KEYS);
	}
	return 0;
bad:
	return fake_err(err, errlen, -EINVAL, "bad value '%s' for key '%s'",
			val, key);
}

static int parse_args(const char *args, struct fake_args *a, char *err,
		      size_t errlen)
{
	char *copy, *item, *next, *eq;
	int rc = 0;

	if (!args || !*args)
		return 0;
	copy = strdup(args);
	if (!copy)
		return fake_err(err, errlen, -ENOMEM, "out of memory");
	for (item = copy; item && rc == 0; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		if (!*item)
			continue;
		eq = strchr(item, '=');
		if (!eq) {
			rc = fake_err(err, errlen, -EINVAL,
				      "'%s' is not key=value (keys: %s)",
				      item, FAKE_KEYS);
			break;
		}
		*eq = '\0';
		rc = parse_kv(a, item, eq + 1, err, errlen);
	}
	free(copy);
	return rc;
}

static int check_args(const struct fake_args *a, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t off;
	} regions[] = {
		{ "config", offsetof(struct fake_args, config) },
		{ "config-region", offsetof(struct fake_args, config_region) },
		{ "chunk", offsetof(struct fake_args, chunk) },
		{ "bitmap", offsetof(struct fake_args, bitmap) },
		{ "ctl", offsetof(struct fake_args, ctl) },
	};
	unsigned i;

	if (a->memory % FAKE_PAGE || a->memory > FAKE_MEM_MAX)
		return fake_err(err, errlen, -EINVAL,
				"memory=%llu must be a multiple of 4096 and at most 64G",
				(unsigned long long)a->memory);
	if (a->sysmem % FAKE_PAGE || a->sysmem > FAKE_MEM_MAX)
		return fake_err(err, errlen, -EINVAL,
				"sysmem=%llu must be a multiple of 4096 and at most 64G",
				(unsigned long long)a->sysmem);
	for (i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)a + regions[i].off, sizeof(v));
		if (v > FAKE_REGION_MAX)
			return fake_err(err, errlen, -EINVAL,
					"%s=%llu is larger than 1G",
					regions[i].name,
					(unsigned long long)v);
	}
	return 0;
}

static int alloc_device(struct devstate_fake *f, const struct fake_args *a)
{
	uint64_t rng = a->seed, i;
	unsigned r;

	for (r = DEVSTATE_REGION_CONFIG; r < DEVSTATE_REGION_COUNT; r++) {
		if (!f->present[r])
			continue;
		f->rbuf[r] = zalloc(f->rlen[r]);
		if (!f->rbuf[r])
			return -ENOMEM;
	}
	f->mem = zalloc(f->mem_len);
	f->cfg = zalloc(f->cfg_len);
	f->mem_dirty = bm_alloc(f->mem_pages);
	f->sys_log = bm_alloc(f->sys_pages);
	f->sys_truth = bm_alloc(f->sys_pages);
	if (!f->mem || !f->cfg || !f->mem_dirty || !f->sys_log ||
	    !f->sys_truth)
		return -ENOMEM;
	if (a->zero)
		return 0;
	for (i = 0; i < f->mem_len; i += 8) {
		uint64_t v = fake_rand(&rng);

		memcpy(f->mem + i, &v, 8);	/* mem_len is page-aligned */
	}
	for (i = 0; i < f->cfg_len; i += 8) {
		uint64_t v = fake_rand(&rng);
		uint64_t n = f->cfg_len - i < 8 ? f->cfg_len - i : 8;

		memcpy(f->cfg + i, &v, n);
	}
	return 0;
}

static int fake_open(const char *args, void **priv, char *err, size_t errlen)
{
	struct fake_args a = {
		.version = 2,
		.caps = DEVSTATE_CAP_DEVICE_MEMORY | DEVSTATE_CAP_SYSTEM_MEMORY,
		.memory = 16ull << 20,
		.config = 64ull << 10,
		.chunk = 1ull << 20,
		.bitmap = 4096,
		.sysmem = 1ull << 30,
		.seed = 1,
		.mmap = true,
	};
	struct devstate_fake *f;
	int rc;

	rc = parse_args(args, &a, err, errlen);
	if (rc < 0)
		return rc;
	rc = check_args(&a, err, errlen);
	if (rc < 0)
		return rc;

	f = calloc(1, sizeof(*f));
	if (!f)
		return fake_err(err, errlen, -ENOMEM, "out of memory");
	f->version = a.version;
	f->caps = a.caps;
	/* an unsupported version still decodes the other fields as v2 */
	f->layout = devstate_layout_find(a.version);
	if (!f->layout)
		f->layout = devstate_layout_find(2);
	if (!f->layout) {
		free(f);
		return fake_err(err, errlen, -EINVAL,
				"no control layout for version %u", a.version);
	}
	f->ctl_len = a.ctl_set ? a.ctl : f->layout->size;
	f->mmap = a.mmap;
	f->log_limit = a.log_limit;
	f->seed = a.seed;
	f->work_rng = a.seed ^ 0x5deece66dull ^ 0xa5a5a5a5a5a5a5a5ull;
	f->auto_pages = a.workload;

	f->present[DEVSTATE_REGION_CONFIG] = true;
	f->rlen[DEVSTATE_REGION_CONFIG] = a.config_region_set ?
		a.config_region : a.config;
	f->present[DEVSTATE_REGION_MEMORY] = a.chunk != 0;
	f->rlen[DEVSTATE_REGION_MEMORY] = a.chunk;
	f->present[DEVSTATE_REGION_BITMAP] = a.bitmap != 0;
	f->rlen[DEVSTATE_REGION_BITMAP] = a.bitmap;

	/* without the cap the device has no memory state to move */
	f->mem_len = has_cap(f, DEVSTATE_CAP_DEVICE_MEMORY) ? a.memory : 0;
	f->mem_pages = f->mem_len / FAKE_PAGE;
	f->cfg_len = a.config;
	f->sys_pages = a.sysmem / FAKE_PAGE;
	f->state = DEVSTATE_STATE_RUNNING;

	if (alloc_device(f, &a) < 0) {
		fake_close(f);
		return fake_err(err, errlen, -ENOMEM,
				"out of memory for a device of %llu bytes",
				(unsigned long long)a.memory);
	}
	if (a.mig2_set) {
		f->m2 = fake_mig2_new(a.mig2, f->mem, f->mem_len, f->cfg,
				      f->cfg_len, a.seed, a.workload);
		if (!f->m2) {
			fake_close(f);
			return fake_err(err, errlen, -ENOMEM,
					"out of memory for the mig2 model");
		}
		f->auto_pages = 0;	/* its own workload runs instead */
	}
	memcpy(f->state_file, a.state_file, sizeof(f->state_file));
	record_state(f);
	*priv = f;
	return 0;
}

const struct devstate_transport_ops devstate_fake_ops = {
	.name = "fake",
	.help = "fake:[key=value,...]  in-memory fake device (tests)",
	.open = fake_open,
	.close = fake_close,
	.regions = fake_regions,
	.ctl_read = fake_ctl_read,
	.ctl_write = fake_ctl_write,
	.data_read = fake_data_read,
	.data_write = fake_data_write,
	.data_map = fake_data_map,
	.digest = fake_digest,
	.mig2_probe = fake_mig2_probe,
	.mig2_get_state = fake_mig2_get_state,
	.mig2_set_state = fake_mig2_set_state,
	.mig2_read = fake_mig2_read,
	.mig2_write = fake_mig2_write,
	.mig2_precopy_info = fake_mig2_precopy_info,
	.mig2_data_size = fake_mig2_data_size,
	.mig2_reset = fake_mig2_reset,
};

/* ---------------------------------------------------------------- */
/* Test-only API (transports/fake.h).                               */

struct devstate_fake *devstate_fake_of(struct devstate_device *dev)
{
	if (!dev || dev->ops != &devstate_fake_ops)
		return NULL;
	return dev->priv;
}

void devstate_fake_fail_at(struct devstate_fake *f, uint64_t nth, int err)
{
	f->fail_nth = err > 0 ? nth : 0;
	f->fail_err = err;
}

void devstate_fake_short_at(struct devstate_fake *f, uint64_t nth)
{
	f->short_nth = nth;
}

void devstate_fake_short_all(struct devstate_fake *f, int on)
{
	f->short_all = on != 0;
}

uint64_t devstate_fake_op_count(const struct devstate_fake *f)
{
	return f->ops;
}

void devstate_fake_counters(const struct devstate_fake *f,
			    struct devstate_fake_counters *c)
{
	*c = f->cnt;
}

uint32_t devstate_fake_state(const struct devstate_fake *f)
{
	return f->state;
}

const uint8_t *devstate_fake_memory(const struct devstate_fake *f,
				    size_t *len)
{
	if (len)
		*len = (size_t)f->mem_len;
	return f->mem;
}

uint8_t *devstate_fake_memory_mut(struct devstate_fake *f, size_t *len)
{
	/* the caller may write: an unread lazy batch keeps its bytes */
	materialize(f);
	if (len)
		*len = (size_t)f->mem_len;
	return f->mem;
}

const uint8_t *devstate_fake_config(const struct devstate_fake *f,
				    size_t *len)
{
	if (len)
		*len = (size_t)f->cfg_len;
	return f->cfg;
}

void devstate_fake_touch_memory(struct devstate_fake *f, uint64_t page)
{
	mark_mem_dirty(f, page);
}

void devstate_fake_touch_sysmem(struct devstate_fake *f, uint64_t page)
{
	log_sysmem(f, page);
}

void devstate_fake_set_auto_workload(struct devstate_fake *f, unsigned pages)
{
	f->auto_pages = pages;
}

const uint64_t *devstate_fake_sysmem_truth(const struct devstate_fake *f,
					   uint64_t *npages)
{
	if (npages)
		*npages = f->sys_pages;
	return f->sys_truth;
}

uint64_t devstate_fake_batches_loaded(const struct devstate_fake *f)
{
	return f->batches_loaded;
}

int devstate_fake_config_loaded(const struct devstate_fake *f)
{
	return f->cfg_loaded;
}

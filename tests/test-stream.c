/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration stream: CRC, encoder, push decoder.  Streams that break a
 * rule on purpose are built here byte by byte from the layout in stream.h,
 * independently of the encoder, so the two also check each other.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "libdevstate/stream.h"
#include "tests/testutil.h"

/* ---------------------------------------------------------------- */
/* A growing byte buffer, also the encoder's write callback. */

struct buf {
	uint8_t *p;
	size_t len, cap;
	unsigned calls;
	unsigned fail_at;	/* fail the Nth write call (1-based); 0 never */
};

static void buf_put(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + len)
			cap *= 2;
		b->p = realloc(b->p, cap);
		ck_assert_ptr_nonnull(b->p);
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

static int buf_write(void *opaque, const void *data, size_t len)
{
	struct buf *b = opaque;

	b->calls++;
	if (b->fail_at && b->calls == b->fail_at)
		return -ENOSPC;
	buf_put(b, data, len);
	return 0;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void put8(struct buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

static void putle(struct buf *b, uint64_t v, unsigned width)
{
	unsigned i;

	for (i = 0; i < width; i++)
		put8(b, (uint8_t)(v >> (8 * i)));
}

static uint64_t getle(const uint8_t *p, unsigned width)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < width; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---------------------------------------------------------------- */
/* Test data. */

static void fill_random(uint8_t *p, size_t len, uint64_t *seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(tu_rand(seed) >> 56);
}

static void fill_text(uint8_t *p, size_t len, uint64_t *seed)
{
	static const char *const words[] = {
		"device ", "state ", "migration ", "dirty ", "page ",
		"region ", "chunk ", "config ", "the ", "a ", "of ", "\n"
	};
	size_t i = 0;

	while (i < len) {
		const char *w = words[tu_rand(seed) % 12];
		size_t n = strlen(w);

		if (n > len - i)
			n = len - i;
		memcpy(p + i, w, n);
		i += n;
	}
}

static void header_init(struct devstate_stream_header *h, uint32_t version,
			uint32_t caps, uint64_t chunk, uint64_t config_size,
			uint64_t bitmap_region)
{
	memset(h, 0, sizeof(*h));
	h->format_version = DEVSTATE_STREAM_FORMAT;
	h->protocol = DEVSTATE_PROTOCOL_REGIONS;
	h->proto_version = version;
	h->caps = caps;
	h->page_size = DEVSTATE_PAGE_SIZE;
	h->region_len[DEVSTATE_REGION_CTL] = version == 1 ? 72 : 80;
	h->region_len[DEVSTATE_REGION_CONFIG] = config_size + 100;
	h->region_len[DEVSTATE_REGION_MEMORY] = chunk;
	h->region_len[DEVSTATE_REGION_BITMAP] = bitmap_region;
	h->config_size = config_size;
	strcpy(h->ident, "test device");
	h->ident_len = (uint32_t)strlen(h->ident);
}

/* ---------------------------------------------------------------- */
/* Decoding with a record of what came out. */

struct rec {
	struct devstate_section s;
	uint8_t *data;
};

struct result {
	int rc;			/* END, NEED_MORE or -errno */
	bool header;
	struct devstate_stream_header h;
	struct rec *recs;
	size_t n;
	char err[256];
	uint64_t offset;
};

static void result_free(struct result *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->recs[i].data);
	free(r->recs);
	memset(r, 0, sizeof(*r));
}

/*
 * Feed len bytes in pieces: piece 0 = all at once; otherwise random
 * sizes from 1 to max_piece drawn from seed.  keep: copy the payloads.
 */
static void decode(const uint8_t *p, size_t len, size_t max_piece,
		   uint64_t seed, bool keep, struct result *r)
{
	struct devstate_dec *d;
	size_t off = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(devstate_dec_new(&d), 0);
	rc = DEVSTATE_DEC_NEED_MORE;
	while (off < len) {
		size_t piece = len - off, used = 0, poff = 0;

		if (max_piece) {
			size_t n = 1 + (size_t)(tu_rand(&seed) % max_piece);

			if (n < piece)
				piece = n;
		}
		while (poff < piece) {
			rc = devstate_dec_feed(d, p + off + poff, piece - poff,
					       &used);
			ck_assert_uint_le(used, piece - poff);
			poff += used;
			if (rc < 0)
				goto out;
			if (rc == DEVSTATE_DEC_HEADER) {
				ck_assert(!r->header);
				r->header = true;
				r->h = *devstate_dec_header(d);
			} else if (rc == DEVSTATE_DEC_SECTION) {
				const struct devstate_section *s =
					devstate_dec_section(d);

				r->recs = realloc(r->recs,
						  (r->n + 1) * sizeof(*r->recs));
				ck_assert_ptr_nonnull(r->recs);
				r->recs[r->n].s = *s;
				r->recs[r->n].data = NULL;
				if (keep && s->raw_len) {
					ck_assert_ptr_nonnull(s->data);
					r->recs[r->n].data = malloc(s->raw_len);
					memcpy(r->recs[r->n].data, s->data,
					       s->raw_len);
				}
				r->n++;
			} else if (rc == DEVSTATE_DEC_END) {
				/* a later byte is an error; keep feeding */
				r->s_end = *devstate_dec_section(d);
			} else {
				ck_assert_int_eq(rc, DEVSTATE_DEC_NEED_MORE);
				ck_assert_uint_eq(used, piece - (poff - used));
			}
		}
		off += piece;
	}
out:
	r->rc = rc;
	r->offset = devstate_dec_offset(d);
	snprintf(r->err, sizeof(r->err), "%s", devstate_dec_error(d));
	devstate_dec_free(d);
}

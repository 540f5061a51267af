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
	tu_reserve(&b->p, &b->cap, b->len + len);
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
	int rc;			/* the last return: END, NEED_MORE or -errno */
	bool header, ended;
	struct devstate_stream_header h;
	struct devstate_section end;
	struct rec *recs;
	size_t n;
	char err[256];
	uint64_t offset;
	unsigned in_pieces;	/* sections whose payload came in pieces */
};

static void result_free(struct result *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->recs[i].data);
	free(r->recs);
	memset(r, 0, sizeof(*r));
}

/* How decode() runs the decoder: 0 plain; 1 pieces on, every raw MEMORY
 * payload taken in pieces (gathered, so results compare); 2 pieces on,
 * none taken (every SECTION_HEAD declined). */
static int dec_pieces;

/*
 * Feed len bytes in pieces: max_piece 0 = all at once; otherwise random
 * sizes from 1 to max_piece drawn from seed.  keep: copy the payloads.
 */
static void decode(const uint8_t *p, size_t len, size_t max_piece,
		   uint64_t seed, bool keep, struct result *r)
{
	struct devstate_dec *d;
	const char *bad = NULL;	/* asserting per byte would be slow */
	size_t off = 0;
	int rc, stalls = 0;
	uint8_t *gather = NULL;	/* a payload taken in pieces */
	uint64_t glen = 0;
	bool taking = false;

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(devstate_dec_new(&d), 0);
	devstate_dec_set_pieces(d, dec_pieces != 0);
	rc = DEVSTATE_DEC_NEED_MORE;
	while (off < len && !bad) {
		size_t piece = len - off, used = 0, poff = 0;

		if (max_piece) {
			size_t n = 1 + (size_t)(tu_rand(&seed) % max_piece);

			if (n < piece)
				piece = n;
		}
		while (poff < piece && !bad) {
			size_t rest = piece - poff;

			rc = devstate_dec_feed(d, p + off + poff, rest, &used);
			if (used > rest)
				bad = "used more than given";
			poff += used;
			if (rc < 0)
				goto out;
			/* an event must make progress (never hang) */
			stalls = used ? 0 : stalls + 1;
			if (stalls > 1)
				bad = "no progress";
			if (rc == DEVSTATE_DEC_NEED_MORE) {
				if (used != rest)
					bad = "NEED_MORE without using all";
			} else if (rc == DEVSTATE_DEC_HEADER) {
				if (r->header)
					bad = "second header event";
				r->header = true;
				r->h = *devstate_dec_header(d);
			} else if (rc == DEVSTATE_DEC_SECTION_HEAD) {
				const struct devstate_section *s =
					devstate_dec_section(d);

				if (!dec_pieces || taking ||
				    s->type != DEVSTATE_SEC_MEMORY ||
				    s->codec != DEVSTATE_CODEC_RAW ||
				    !s->raw_len || s->data)
					bad = "unexpected SECTION_HEAD";
				if (dec_pieces == 1) {
					devstate_dec_take_pieces(d);
					taking = true;
					free(gather);
					gather = malloc(s->raw_len);
					ck_assert_ptr_nonnull(gather);
					glen = 0;
				}
			} else if (rc == DEVSTATE_DEC_PIECE) {
				size_t n;
				uint64_t at;
				const uint8_t *pc = devstate_dec_piece(d, &n,
								       &at);

				if (!taking || at != glen || !n ||
				    n > DEVSTATE_DEC_PIECE_MAX ||
				    at + n > devstate_dec_section(d)->raw_len)
					bad = "piece out of place";
				else if (pc < p || pc + n > p + len)
					bad = "piece not in the caller's buffer";
				else
					memcpy(gather + at, pc, n);
				glen += n;
			} else if (rc == DEVSTATE_DEC_SECTION) {
				const struct devstate_section *s =
					devstate_dec_section(d);
				struct rec *rec;

				if (!s->in_pieces != !taking ||
				    (taking && glen != s->raw_len))
					bad = "pieces and section disagree";
				taking = false;

				if (r->ended || !r->header)
					bad = "section outside header..END";
				r->recs = realloc(r->recs,
						  (r->n + 1) * sizeof(*r->recs));
				ck_assert_ptr_nonnull(r->recs);
				rec = &r->recs[r->n++];
				rec->s = *s;
				rec->data = NULL;
				r->in_pieces += s->in_pieces != 0;
				if (keep && s->raw_len && s->in_pieces) {
					rec->data = gather;
					gather = NULL;
				} else if (keep && s->raw_len) {
					ck_assert_ptr_nonnull(s->data);
					rec->data = malloc(s->raw_len);
					ck_assert_ptr_nonnull(rec->data);
					memcpy(rec->data, s->data, s->raw_len);
				}
			} else if (rc == DEVSTATE_DEC_END) {
				if (r->ended)
					bad = "second END";
				r->ended = true;
				r->end = *devstate_dec_section(d);
			} else {
				bad = "unknown event";
			}
		}
		off += piece;
	}
out:
	free(gather);
	ck_assert_msg(!bad, "decoder misbehaved: %s", bad);
	r->rc = rc;
	r->offset = devstate_dec_offset(d);
	snprintf(r->err, sizeof(r->err), "%s", devstate_dec_error(d));
	devstate_dec_free(d);
}

/* Decode all at once and expect an error rc whose sentence has needle. */
static void expect_error(const struct buf *b, int rc, const char *needle)
{
	struct result r;

	decode(b->p, b->len, 0, 0, false, &r);
	ck_assert_msg(r.rc == rc, "expected %d, got %d (%s)", rc, r.rc,
		      r.err);
	ck_assert_msg(strstr(r.err, needle), "'%s' lacks '%s'", r.err,
		      needle);
	ck_assert(!r.ended);
	result_free(&r);
}

/* ---------------------------------------------------------------- */
/* Hand-built streams, from the layout in stream.h alone. */

static uint32_t zcrc(const void *p, size_t len)
{
	return (uint32_t)crc32(0, p, (uInt)len);
}

static void hb_header_raw(struct buf *b, const struct devstate_stream_header *h,
			  uint16_t length, uint16_t ident_len)
{
	size_t start = b->len;
	unsigned r;

	buf_put(b, "DEVSTATE", 8);
	putle(b, h->format_version, 2);
	putle(b, length, 2);
	putle(b, h->protocol, 4);
	putle(b, h->proto_version, 4);
	putle(b, h->caps, 4);
	putle(b, h->page_size, 4);
	putle(b, h->flags, 4);
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++)
		putle(b, h->region_len[r], 8);
	putle(b, h->config_size, 8);
	putle(b, ident_len, 2);
	buf_put(b, h->ident, ident_len < sizeof(h->ident) ? ident_len : 0);
	putle(b, zcrc(b->p + start, b->len - start), 4);
}

static void hb_header(struct buf *b, const struct devstate_stream_header *h)
{
	hb_header_raw(b, h, (uint16_t)(78 + h->ident_len),
		      (uint16_t)h->ident_len);
}

struct hsec {
	uint32_t type;
	uint8_t codec;
	uint8_t reserved;
	uint64_t raw, stored;
	/* meta */
	uint32_t pass, meta_reserved;
	uint64_t batch, pos;
	uint64_t start, page_nr;
	uint64_t count;
	uint32_t crc;
	/* payload */
	const void *payload;
	size_t plen;
	bool bad_crc;
};

static void hb_section(struct buf *b, const struct hsec *s)
{
	size_t start = b->len;
	uint32_t crc;

	putle(b, s->type, 4);
	put8(b, s->codec);
	put8(b, s->reserved);
	put8(b, 0);
	put8(b, 0);
	putle(b, s->raw, 8);
	putle(b, s->stored, 8);
	switch (s->type) {
	case DEVSTATE_SEC_MEMORY:
		putle(b, s->pass, 4);
		putle(b, s->meta_reserved, 4);
		putle(b, s->batch, 8);
		putle(b, s->pos, 8);
		break;
	case DEVSTATE_SEC_DIRTY_BITMAP:
		putle(b, s->start, 8);
		putle(b, s->page_nr, 8);
		break;
	case DEVSTATE_SEC_END:
		putle(b, s->count, 8);
		putle(b, s->crc, 4);
		putle(b, s->meta_reserved, 4);
		break;
	default:
		break;
	}
	buf_put(b, s->payload, s->plen);
	crc = zcrc(b->p + start, b->len - start);
	putle(b, s->bad_crc ? crc ^ 1 : crc, 4);
}

/* A raw MEMORY chunk of len bytes of 0x5a. */
static void hb_chunk(struct buf *b, uint32_t pass, uint64_t batch, uint64_t pos,
		     size_t len)
{
	uint8_t *data = malloc(len ? len : 1);
	struct hsec s = {
		.type = DEVSTATE_SEC_MEMORY, .raw = len, .stored = len,
		.pass = pass, .batch = batch, .pos = pos,
		.payload = data, .plen = len,
	};

	memset(data, 0x5a, len);
	hb_section(b, &s);
	free(data);
}

static void hb_config(struct buf *b, size_t len)
{
	uint8_t *data = calloc(1, len ? len : 1);
	struct hsec s = {
		.type = DEVSTATE_SEC_CONFIG, .raw = len, .stored = len,
		.payload = data, .plen = len,
	};

	memset(data, 0xc5, len);
	hb_section(b, &s);
	free(data);
}

/* END with the given count, over everything in b so far. */
static void hb_end(struct buf *b, uint64_t count)
{
	struct hsec s = {
		.type = DEVSTATE_SEC_END, .count = count,
		.crc = zcrc(b->p, b->len),
	};

	hb_section(b, &s);
}

#define CHUNK 4096u
#define CONFIG_SIZE 1000u

static void hb_std_header(struct buf *b)
{
	struct devstate_stream_header h;

	header_init(&h, 2, DEVSTATE_CAP_ALL, CHUNK, CONFIG_SIZE, 4096);
	hb_header(b, &h);
}

/* ---------------------------------------------------------------- */
/* CRC. */

START_TEST(test_crc_known)
{
	uint64_t seed = 42;
	uint8_t *p = malloc(1 << 20);
	size_t len;

	ck_assert_uint_eq(devstate_crc32(0, "123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(devstate_crc32(0, "", 0), 0);
	ck_assert_uint_eq(devstate_crc32(0x12345678, NULL, 0), 0x12345678);
	ck_assert_uint_eq(devstate_crc32(0, "a", 1), 0xe8b7be43u);
	fill_random(p, 1 << 20, &seed);
	for (len = 0; len < 3000; len += 1 + len / 7)
		ck_assert_uint_eq(devstate_crc32(0, p, len),
				  crc32(0, p, (uInt)len));
	ck_assert_uint_eq(devstate_crc32(0, p, 1 << 20),
			  crc32(0, p, 1 << 20));
	/* incremental equals one pass */
	ck_assert_uint_eq(devstate_crc32(devstate_crc32(0, p, 12345),
					 p + 12345, (1 << 20) - 12345),
			  crc32(0, p, 1 << 20));
	free(p);
}
END_TEST

START_TEST(test_crc_combine)
{
	uint64_t seed = 7;
	uint8_t *p = malloc(3 << 20);
	unsigned i;

	fill_random(p, 3 << 20, &seed);
	for (i = 0; i < 300; i++) {
		size_t a = (size_t)(tu_rand(&seed) % 5000);
		size_t b = (size_t)(tu_rand(&seed) % 5000);
		uint32_t ca = devstate_crc32(0, p, a);
		uint32_t cb = devstate_crc32(0, p + a, b);

		ck_assert_uint_eq(devstate_crc32_combine(ca, cb, b),
				  devstate_crc32(0, p, a + b));
	}
	/* a long B, and zeros */
	ck_assert_uint_eq(devstate_crc32_combine(devstate_crc32(0, p, 10),
						 devstate_crc32(0, p + 10,
								(3 << 20) - 10),
						 (3 << 20) - 10),
			  devstate_crc32(0, p, 3 << 20));
	memset(p, 0, 3 << 20);
	ck_assert_uint_eq(devstate_crc32_combine(0xcbf43926u,
						 devstate_crc32(0, p, 3 << 20),
						 3 << 20),
			  devstate_crc32(0xcbf43926u, p, 3 << 20));
	/* B empty: A unchanged */
	ck_assert_uint_eq(devstate_crc32_combine(0xdeadbeefu, 0, 0),
			  0xdeadbeefu);
	free(p);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Round trips. */

struct expect {
	uint32_t type;
	uint32_t pass;
	uint64_t batch, pos, start, page_nr;
	uint8_t *data;		/* what the decoder must give */
	size_t len;
	int codec;		/* -1: compressed with the stream codec
				   if that is not RAW, else RAW */
};

struct plan {
	struct expect e[16];
	size_t n;
};

static void plan_free(struct plan *pl)
{
	size_t i;

	for (i = 0; i < pl->n; i++)
		free(pl->e[i].data);
	pl->n = 0;
}

/*
 * A stream with every section type and codec case: chunk length 3000
 * does not divide the 10000-byte batch.
 */
static void build_mixed(enum devstate_codec codec, int level, struct buf *b,
			struct plan *pl, struct devstate_stream_header *h)
{
	struct devstate_enc *e;
	uint64_t seed = 99 + (uint64_t)codec;
	struct expect *x;
	uint8_t *bm;

	header_init(h, 2, DEVSTATE_CAP_ALL, 3000, 5000, 4096);
	memset(b, 0, sizeof(*b));
	memset(pl, 0, sizeof(*pl));
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, b, codec, level), 0);
	ck_assert_int_eq(devstate_enc_header(e, h), 0);
	ck_assert_uint_eq(b->calls, 1);

#define ADD(t) do { \
	x = &pl->e[pl->n++]; \
	memset(x, 0, sizeof(*x)); \
	x->type = (t); \
} while (0)
	/* pass 0: zero, random, text, short text */
	ADD(DEVSTATE_SEC_MEMORY);
	x->batch = 10000; x->pos = 0; x->len = 3000;
	x->data = calloc(1, 3000); x->codec = DEVSTATE_CODEC_ZERO;
	ADD(DEVSTATE_SEC_MEMORY);
	x->batch = 10000; x->pos = 3000; x->len = 3000;
	x->data = malloc(3000); fill_random(x->data, 3000, &seed);
	x->codec = DEVSTATE_CODEC_RAW;
	ADD(DEVSTATE_SEC_MEMORY);
	x->batch = 10000; x->pos = 6000; x->len = 3000;
	x->data = malloc(3000); fill_text(x->data, 3000, &seed);
	x->codec = -1;
	/* a bitmap in the middle of a batch, padding bits set by the
	 * caller: they must be cleared */
	ADD(DEVSTATE_SEC_DIRTY_BITMAP);
	x->start = 5; x->page_nr = 100; x->len = 16;
	x->data = malloc(16); fill_random(x->data, 16, &seed);
	x->codec = DEVSTATE_CODEC_RAW;
	ADD(DEVSTATE_SEC_MEMORY);
	x->batch = 10000; x->pos = 9000; x->len = 1000;
	x->data = malloc(1000); fill_text(x->data, 1000, &seed);
	x->codec = -1;
	/* pass 1, then another batch of pass 1 (non-decreasing) */
	ADD(DEVSTATE_SEC_MEMORY);
	x->pass = 1; x->batch = 3000; x->pos = 0; x->len = 3000;
	x->data = malloc(3000); fill_random(x->data, 3000, &seed);
	x->codec = DEVSTATE_CODEC_RAW;
	ADD(DEVSTATE_SEC_MEMORY);
	x->pass = 1; x->batch = 1; x->pos = 0; x->len = 1;
	x->data = malloc(1); x->data[0] = 7;
	x->codec = DEVSTATE_CODEC_RAW;
	ADD(DEVSTATE_SEC_DIRTY_BITMAP);
	x->start = 1000; x->page_nr = 64; x->len = 8;
	x->data = calloc(1, 8); x->codec = DEVSTATE_CODEC_ZERO;
	ADD(DEVSTATE_SEC_CONFIG);
	x->len = 5000; x->data = malloc(5000);
	fill_text(x->data, 5000, &seed); x->codec = -1;
	ADD(DEVSTATE_SEC_DIRTY_BITMAP);
	x->start = 0; x->page_nr = 1; x->len = 8;
	x->data = calloc(1, 8); x->data[0] = 1; x->codec = DEVSTATE_CODEC_RAW;
#undef ADD

	for (size_t i = 0; i < pl->n; i++) {
		unsigned before = b->calls;

		x = &pl->e[i];
		switch (x->type) {
		case DEVSTATE_SEC_MEMORY:
			ck_assert_int_eq(devstate_enc_memory(e, x->pass, x->batch,
							     x->pos, x->data,
							     x->len), 0);
			break;
		case DEVSTATE_SEC_CONFIG:
			ck_assert_int_eq(devstate_enc_config(e, x->data, x->len),
					 0);
			break;
		default:
			bm = malloc(x->len);
			memcpy(bm, x->data, x->len);
			ck_assert_int_eq(devstate_enc_bitmap(e, x->start,
							     x->page_nr, bm), 0);
			free(bm);
			/* the decoder gives the masked bitmap */
			if (x->page_nr == 100) {
				x->data[12] &= 0x0f;
				memset(x->data + 13, 0, 3);
			}
			break;
		}
		/* head+meta, payload, CRC: at most three calls */
		ck_assert_uint_le(b->calls - before, 3);
		if (x->codec == -1)
			x->codec = codec;
	}
	ck_assert_uint_eq(devstate_enc_sections(e), pl->n);
	ck_assert_int_eq(devstate_enc_end(e), 0);
	ck_assert_uint_eq(devstate_enc_bytes(e), b->len);
	ck_assert_str_eq(devstate_enc_error(e), "");
	/* nothing after END */
	ck_assert_int_eq(devstate_enc_config(e, pl->e[8].data, 5000), -EINVAL);
	ck_assert_uint_eq(devstate_enc_bytes(e), b->len);
	devstate_enc_free(e);
}

static void check_mixed(const struct result *r, const struct plan *pl,
			const struct devstate_stream_header *h,
			const struct buf *b)
{
	size_t i;

	ck_assert_msg(r->rc == DEVSTATE_DEC_END, "rc %d: %s", r->rc, r->err);
	ck_assert(r->header && r->ended);
	ck_assert_uint_eq(r->offset, b->len);
	ck_assert_uint_eq(r->h.proto_version, h->proto_version);
	ck_assert_uint_eq(r->h.caps, h->caps);
	ck_assert_uint_eq(r->h.config_size, h->config_size);
	ck_assert_uint_eq(r->h.region_len[DEVSTATE_REGION_MEMORY], 3000);
	ck_assert_uint_eq(r->h.region_len[DEVSTATE_REGION_CONFIG],
			  h->region_len[DEVSTATE_REGION_CONFIG]);
	ck_assert_str_eq(r->h.ident, "test device");
	ck_assert_uint_eq(r->n, pl->n);
	ck_assert_uint_eq(r->end.section_count, pl->n);
	for (i = 0; i < pl->n; i++) {
		const struct devstate_section *s = &r->recs[i].s;
		const struct expect *x = &pl->e[i];

		ck_assert_uint_eq(s->type, x->type);
		ck_assert_uint_eq(s->raw_len, x->len);
		ck_assert_msg((int)s->codec == x->codec,
			      "section %zu: codec %u, expected %d", i,
			      s->codec, x->codec);
		if (s->codec == DEVSTATE_CODEC_DEFLATE ||
		    s->codec == DEVSTATE_CODEC_ZSTD)
			ck_assert_uint_lt(s->stored_len, s->raw_len);
		ck_assert_int_eq(memcmp(r->recs[i].data, x->data, x->len), 0);
		if (x->type == DEVSTATE_SEC_MEMORY) {
			ck_assert_uint_eq(s->pass, x->pass);
			ck_assert_uint_eq(s->batch_size, x->batch);
			ck_assert_uint_eq(s->pos, x->pos);
		} else if (x->type == DEVSTATE_SEC_DIRTY_BITMAP) {
			ck_assert_uint_eq(s->start_page, x->start);
			ck_assert_uint_eq(s->page_nr, x->page_nr);
		}
	}
}

START_TEST(test_roundtrip_codecs)
{
	enum devstate_codec codec = (enum devstate_codec)_i;
	static const size_t pieces[] = { 0, 1, 2, 7, 24, 100, 4096, 1 << 20 };
	struct devstate_stream_header h;
	struct result r;
	struct plan pl;
	struct buf b;
	size_t i;

	build_mixed(codec, 0, &b, &pl, &h);
	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		decode(b.p, b.len, pieces[i], 1000 + i, true, &r);
		check_mixed(&r, &pl, &h, &b);
		result_free(&r);
	}
	plan_free(&pl);
	buf_free(&b);
}
END_TEST

START_TEST(test_roundtrip_levels)
{
	static const struct { enum devstate_codec c; int level; } v[] = {
		{ DEVSTATE_CODEC_DEFLATE, 1 }, { DEVSTATE_CODEC_DEFLATE, 9 },
		{ DEVSTATE_CODEC_ZSTD, 1 }, { DEVSTATE_CODEC_ZSTD, 19 },
		{ DEVSTATE_CODEC_ZSTD, -5 }, { DEVSTATE_CODEC_RAW, 77 },
	};
	struct devstate_stream_header h;
	struct result r;
	struct plan pl;
	struct buf b;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		build_mixed(v[i].c, v[i].level, &b, &pl, &h);
		decode(b.p, b.len, 0, 0, true, &r);
		check_mixed(&r, &pl, &h, &b);
		result_free(&r);
		plan_free(&pl);
		buf_free(&b);
	}
}
END_TEST

/* A deflate payload is plain zlib format; a zstd one a plain zstd frame. */
START_TEST(test_plain_decoders_read_payloads)
{
	enum devstate_codec codec;

	for (codec = DEVSTATE_CODEC_DEFLATE; codec <= DEVSTATE_CODEC_ZSTD;
	     codec++) {
		struct devstate_stream_header h;
		struct result r;
		struct plan pl;
		struct buf b;
		size_t i, found = 0;

		build_mixed(codec, 0, &b, &pl, &h);
		decode(b.p, b.len, 0, 0, true, &r);
		ck_assert_int_eq(r.rc, DEVSTATE_DEC_END);
		for (i = 0; i < r.n; i++) {
			const struct devstate_section *s = &r.recs[i].s;
			size_t meta = s->type == DEVSTATE_SEC_MEMORY ? 24 :
				      s->type == DEVSTATE_SEC_CONFIG ? 0 : 16;
			const uint8_t *pay = b.p + s->offset + 24 + meta;
			uint8_t *out;
			uLongf olen = (uLongf)s->raw_len;

			if (s->codec != codec)
				continue;
			found++;
			ck_assert_uint_eq(s->total_len,
					  24 + meta + s->stored_len + 4);
			out = malloc(s->raw_len);
			if (codec == DEVSTATE_CODEC_DEFLATE) {
				ck_assert_int_eq(uncompress(out, &olen, pay,
							    (uLong)s->stored_len),
						 Z_OK);
				ck_assert_uint_eq(olen, s->raw_len);
			} else {
				ck_assert_uint_eq(ZSTD_decompress(out, s->raw_len,
								  pay,
								  s->stored_len),
						  s->raw_len);
			}
			ck_assert_int_eq(memcmp(out, r.recs[i].data,
						s->raw_len), 0);
			free(out);
		}
		ck_assert_uint_eq(found, 3);
		result_free(&r);
		plan_free(&pl);
		buf_free(&b);
	}
}
END_TEST

/* The encoder's bytes are exactly the layout in stream.h. */
START_TEST(test_layout_matches_hand_built)
{
	struct devstate_stream_header h;
	struct devstate_enc *e;
	struct buf enc = { 0 }, hand = { 0 };
	uint8_t chunk[CHUNK];
	uint64_t seed = 5;
	uint8_t bm[16];
	struct hsec s;

	header_init(&h, 1, DEVSTATE_CAP_ALL, CHUNK, CONFIG_SIZE, 4096);
	fill_random(chunk, sizeof(chunk), &seed);
	memset(bm, 0, sizeof(bm));
	bm[0] = 0x81;
	bm[9] = 0x02;	/* page 73 */

	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &enc,
					  DEVSTATE_CODEC_RAW, 0), 0);
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 3, CHUNK + 10, 0, chunk,
					     CHUNK), 0);
	ck_assert_int_eq(devstate_enc_bitmap(e, 77, 74, bm), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 3, CHUNK + 10, CHUNK, chunk,
					     10), 0);
	ck_assert_int_eq(devstate_enc_end(e), 0);
	devstate_enc_free(e);

	hb_header(&hand, &h);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_MEMORY;
	s.raw = s.stored = CHUNK;
	s.pass = 3;
	s.batch = CHUNK + 10;
	s.payload = chunk;
	s.plen = CHUNK;
	hb_section(&hand, &s);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_DIRTY_BITMAP;
	s.raw = s.stored = 16;
	s.start = 77;
	s.page_nr = 74;
	s.payload = bm;
	s.plen = 16;
	hb_section(&hand, &s);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_MEMORY;
	s.raw = s.stored = 10;
	s.pass = 3;
	s.batch = CHUNK + 10;
	s.pos = CHUNK;
	s.payload = chunk;
	s.plen = 10;
	hb_section(&hand, &s);
	hb_end(&hand, 3);

	ck_assert_uint_eq(enc.len, hand.len);
	ck_assert_int_eq(memcmp(enc.p, hand.p, enc.len), 0);
	/* a few fields by absolute offset */
	ck_assert_uint_eq(getle(enc.p + 10, 2), 78 + 11);
	ck_assert_uint_eq(getle(enc.p + 16, 4), 1);
	ck_assert_uint_eq(getle(enc.p + 48, 8), CHUNK);
	ck_assert_uint_eq(getle(enc.p + 72, 2), 11);
	ck_assert_uint_eq(getle(enc.p + 89 + 0, 4), DEVSTATE_SEC_MEMORY);
	buf_free(&enc);
	buf_free(&hand);
}
END_TEST

/* Several megabytes fed in random pieces from 1 byte to megabytes. */
START_TEST(test_random_pieces)
{
	static const size_t maxes[] = { 3, 64, 5000, 300000, 4 << 20 };
	const size_t L = 1 << 20, batch = 5 * (1 << 20) + 12345;
	struct devstate_stream_header h;
	struct devstate_enc *e;
	struct buf b = { 0 };
	uint64_t seed = 2024, pos;
	uint8_t *mem = malloc(batch);
	struct result r;
	size_t i;

	/* mixed content, chunk by chunk: random, text, zero */
	for (pos = 0; pos < batch; pos += 4096) {
		size_t n = batch - pos < 4096 ? batch - pos : 4096;

		switch (tu_rand(&seed) % 3) {
		case 0:
			fill_random(mem + pos, n, &seed);
			break;
		case 1:
			fill_text(mem + pos, n, &seed);
			break;
		default:
			memset(mem + pos, 0, n);
		}
	}
	header_init(&h, 2, DEVSTATE_CAP_DEVICE_MEMORY, L, 64, 0);
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &b,
					  (enum devstate_codec)_i, 0), 0);
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	for (pos = 0; pos < batch; pos += L)
		ck_assert_int_eq(devstate_enc_memory(e, 0, batch, pos,
						     mem + pos,
						     batch - pos < L ?
						     batch - pos : L), 0);
	ck_assert_int_eq(devstate_enc_config(e, mem, 64), 0);
	ck_assert_int_eq(devstate_enc_end(e), 0);
	devstate_enc_free(e);

	for (i = 0; i < 3 * sizeof(maxes) / sizeof(maxes[0]); i++) {
		uint64_t total = 0;
		size_t k;

		/* plain, payloads in pieces, pieces declined */
		dec_pieces = (int)(i % 3);
		decode(b.p, b.len, maxes[i / 3], 77 + i + (uint64_t)_i, true,
		       &r);
		ck_assert_msg(r.rc == DEVSTATE_DEC_END, "%s", r.err);
		ck_assert_uint_eq(r.n, 7);
		for (k = 0; k < 6; k++) {
			ck_assert_uint_eq(r.recs[k].s.pos, total);
			ck_assert_int_eq(memcmp(r.recs[k].data, mem + total,
						r.recs[k].s.raw_len), 0);
			total += r.recs[k].s.raw_len;
		}
		ck_assert_uint_eq(total, batch);
		/* raw: the 6 memory sections (none all-zero) in pieces */
		ck_assert_uint_eq(r.in_pieces, i % 3 == 1 && _i == 0 ? 6 : 0);
		result_free(&r);
	}
	dec_pieces = 0;
	free(mem);
	buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Corruption and truncation. */

/* A small stream with every section type; compressed payloads when the
 * codec compresses. */
static void build_small(enum devstate_codec codec, struct buf *b)
{
	struct devstate_stream_header h;
	struct devstate_enc *e;
	uint8_t data[700], cfg[300], bm[8] = { 0x15, 0, 0, 0x80, 0, 0, 0, 0 };
	uint64_t seed = 3;

	header_init(&h, 1, DEVSTATE_CAP_ALL, 256, sizeof(cfg), 64);
	memset(b, 0, sizeof(*b));
	memset(data, 0, 256);
	fill_text(data + 256, 256, &seed);
	fill_random(data + 512, 188, &seed);
	fill_text(cfg, sizeof(cfg), &seed);
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, b, codec, 0), 0);
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 0, 700, 0, data, 256), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 0, 700, 256, data + 256, 256),
			 0);
	ck_assert_int_eq(devstate_enc_bitmap(e, 10, 40, bm), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 0, 700, 512, data + 512, 188),
			 0);
	ck_assert_int_eq(devstate_enc_config(e, cfg, sizeof(cfg)), 0);
	ck_assert_int_eq(devstate_enc_end(e), 0);
	devstate_enc_free(e);
}

START_TEST(test_flip_every_byte)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xff, 0x10 };
	struct buf b;
	struct result r;
	uint8_t *copy;
	size_t off, f;

	build_small((enum devstate_codec)_i, &b);
	decode(b.p, b.len, 0, 0, false, &r);
	ck_assert_int_eq(r.rc, DEVSTATE_DEC_END);
	result_free(&r);
	copy = malloc(b.len);
	for (off = 0; off < b.len; off++) {
		for (f = 0; f < sizeof(flips); f++) {
			memcpy(copy, b.p, b.len);
			copy[off] ^= flips[f];
			dec_pieces = (int)((off + f) % 3);
			decode(copy, b.len, f == 3 ? 5 : 0, off, true, &r);
			ck_assert_msg(!r.ended,
				      "flip 0x%02x at offset %zu accepted",
				      flips[f], off);
			ck_assert_msg(r.rc < 0 ||
				      r.rc == DEVSTATE_DEC_NEED_MORE,
				      "rc %d", r.rc);
			if (r.rc < 0)
				ck_assert(r.err[0]);
			result_free(&r);
		}
	}
	dec_pieces = 0;
	free(copy);
	buf_free(&b);
}
END_TEST

START_TEST(test_truncate_every_offset)
{
	struct buf b;
	struct result r;
	size_t len;

	build_small((enum devstate_codec)_i, &b);
	for (len = 0; len < b.len; len++) {
		dec_pieces = (int)(len % 3);
		decode(b.p, len, len % 3 ? 17 : 0, len, false, &r);
		/* no error, no END: the caller sees the truncation at EOF */
		ck_assert_msg(r.rc >= 0 && r.rc != DEVSTATE_DEC_END,
			      "prefix of %zu: rc %d (%s)", len, r.rc, r.err);
		ck_assert(!r.ended);
		ck_assert_uint_eq(r.offset, len);
		result_free(&r);
	}
	dec_pieces = 0;
	decode(b.p, b.len, 0, 0, false, &r);
	ck_assert_int_eq(r.rc, DEVSTATE_DEC_END);
	result_free(&r);
	buf_free(&b);
}
END_TEST

/* Random multi-byte damage: never a crash, never an accepted change. */
START_TEST(test_random_damage)
{
	struct buf b;
	struct result r;
	uint8_t *copy;
	uint64_t seed = 11 + (uint64_t)_i;
	unsigned it;

	build_small((enum devstate_codec)_i, &b);
	copy = malloc(b.len + 64);
	for (it = 0; it < 1500; it++) {
		size_t len = b.len, k, n = 1 + tu_rand(&seed) % 4;

		memcpy(copy, b.p, b.len);
		for (k = 0; k < n; k++) {
			size_t at = (size_t)(tu_rand(&seed) % b.len);

			switch (tu_rand(&seed) % 4) {
			case 0:	/* random byte */
				copy[at] = (uint8_t)tu_rand(&seed);
				break;
			case 1:	/* length-ish value */
				copy[at] = (uint8_t)(tu_rand(&seed) % 2 ?
						     0xff : 0);
				break;
			case 2:	/* drop a byte */
				memmove(copy + at, copy + at + 1,
					len - at - 1);
				len--;
				break;
			default:	/* insert a byte */
				memmove(copy + at + 1, copy + at, len - at);
				copy[at] = (uint8_t)tu_rand(&seed);
				len++;
				break;
			}
		}
		if (len == b.len && !memcmp(copy, b.p, len))
			continue;
		decode(copy, len, it % 2 ? 0 : 9, it, true, &r);
		ck_assert_msg(!r.ended, "damaged stream accepted (it %u)", it);
		result_free(&r);
	}
	free(copy);
	buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Hostile headers. */

START_TEST(test_hostile_header)
{
	struct devstate_stream_header h;
	struct buf b = { 0 };

	/* not a stream at all: refused after 8 bytes */
	buf_put(&b, "PK\3\4 zip file", 8);
	expect_error(&b, -EINVAL, "magic");
	buf_free(&b);

	header_init(&h, 2, DEVSTATE_CAP_ALL, CHUNK, CONFIG_SIZE, 4096);
	hb_header(&b, &h);
	b.p[20] ^= 1;	/* caps, after the CRC was computed */
	expect_error(&b, -EBADMSG, "header: CRC mismatch (stored 0x");
	buf_free(&b);

	/* ident longer than the limit, with a consistent length */
	hb_header_raw(&b, &h, 78 + 65, 65);
	expect_error(&b, -E2BIG, "ident length 65");
	buf_free(&b);
	/* length that does not match ident_len */
	hb_header_raw(&b, &h, 200, 3);
	expect_error(&b, -EINVAL, "length 200");
	buf_free(&b);
	hb_header_raw(&b, &h, 0xffff, 0xffff);
	expect_error(&b, -E2BIG, "ident length");
	buf_free(&b);

#define BAD(field, value, rc, needle) do { \
	header_init(&h, 2, DEVSTATE_CAP_ALL, CHUNK, CONFIG_SIZE, 4096); \
	h.field = value; \
	hb_header(&b, &h); \
	expect_error(&b, rc, needle); \
	buf_free(&b); \
} while (0)
	BAD(format_version, 2, -EINVAL, "format version 2");
	/* family 2 is known, but a region header is not one of its */
	BAD(protocol, 2, -EINVAL, "region length 80 in a migration uAPI v2 header");
	BAD(protocol, 3, -EINVAL, "unknown protocol family 3");
	BAD(proto_version, 3, -EINVAL, "protocol version 3");
	BAD(proto_version, 0, -EINVAL, "protocol version 0");
	BAD(caps, 4, -EINVAL, "unknown caps");
	BAD(page_size, 8192, -EINVAL, "page size 8192");
	BAD(flags, 1, -EINVAL, "flags");
	BAD(region_len[DEVSTATE_REGION_MEMORY], 1ull << 40, -E2BIG,
	    "DEVICE_MEMORY region length 1099511627776 over the limit");
	BAD(region_len[DEVSTATE_REGION_CONFIG], 1ull << 62, -E2BIG,
	    "DEVICE_CONFIG region length");
	BAD(region_len[DEVSTATE_REGION_CTL], UINT64_MAX, -E2BIG, "CTL region");
	BAD(region_len[DEVSTATE_REGION_MEMORY], 0, -EINVAL,
	    "cap DEVICE_MEMORY on");
	BAD(caps, DEVSTATE_CAP_DEVICE_MEMORY, -EINVAL, "cap SYSTEM_MEMORY off");
	BAD(config_size, CONFIG_SIZE + 101, -EINVAL, "config size 1101 larger");
#undef BAD
}
END_TEST

/* ---------------------------------------------------------------- */
/* Hostile sections: each refused with the right errno, and before its
 * payload is needed (only the section head is fed). */

static void expect_head_error(const struct hsec *s, int rc, const char *needle)
{
	struct buf b = { 0 };
	size_t head;

	hb_std_header(&b);
	head = b.len + 24 + (s->type == DEVSTATE_SEC_MEMORY ? 24 :
			     s->type == DEVSTATE_SEC_CONFIG ? 0 : 16);
	hb_section(&b, s);
	if (b.len > head)
		b.len = head;	/* the payload never arrives */
	expect_error(&b, rc, needle);
	buf_free(&b);
}

/* A stream that announces a long section but sends only a little of it
 * costs the decoder about what it sent, not what it announced. */
START_TEST(test_claimed_length_costs_nothing)
{
	struct devstate_stream_header h;
	struct devstate_dec *d;
	struct buf b = { 0 };
	uint64_t big = 200ull << 20;
	size_t used, off = 0;
	int rc;

	header_init(&h, 2, DEVSTATE_CAP_ALL, big, CONFIG_SIZE, 4096);
	hb_header(&b, &h);
	{
		/* the head of a raw 200 MiB chunk, then 1000 payload bytes */
		struct hsec sec = {
			.type = DEVSTATE_SEC_MEMORY, .raw = big, .stored = big,
			.pass = 0, .batch = big, .pos = 0,
		};
		uint8_t junk[1000];

		memset(junk, 0x5a, sizeof(junk));
		sec.payload = junk;
		sec.plen = sizeof(junk);
		hb_section(&b, &sec);
		b.len -= 4;	/* no CRC: the section is cut short */
	}
	ck_assert_int_eq(devstate_dec_new(&d), 0);
	while (off < b.len) {
		rc = devstate_dec_feed(d, b.p + off, b.len - off, &used);
		ck_assert_int_ge(rc, 0);
		off += used;
	}
	ck_assert_uint_eq(devstate_dec_offset(d), b.len);
	/* what arrived (~1 KB) rounded up by doubling, nowhere near 200 MiB */
	ck_assert_uint_lt(devstate_dec_capacity(d), 8192);
	devstate_dec_free(d);
	buf_free(&b);
}
END_TEST

START_TEST(test_hostile_lengths)
{
	struct hsec s;

	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_MEMORY;
	s.batch = 1ull << 61;
	s.raw = s.stored = 1ull << 60;
	expect_head_error(&s, -E2BIG, "raw length 1152921504606846976 over the limit");
	s.raw = CHUNK;
	s.stored = UINT64_MAX;
	s.codec = DEVSTATE_CODEC_DEFLATE;
	expect_head_error(&s, -E2BIG, "stored length");
	/* within the bounds, but not what the header allows */
	s.codec = DEVSTATE_CODEC_RAW;
	s.raw = s.stored = 200 << 20;
	expect_head_error(&s, -EINVAL, "raw length 209715200, expected 4096");
	s.raw = s.stored = CHUNK;
	s.pos = CHUNK / 2;
	expect_head_error(&s, -EINVAL, "not a multiple of the chunk length");
	s.pos = 0;
	s.batch = 0;
	expect_head_error(&s, -EINVAL, "outside the batch");
	s.batch = 100;
	expect_head_error(&s, -EINVAL, "raw length 4096, expected 100");
	s.batch = CHUNK;
	s.pos = CHUNK;
	expect_head_error(&s, -EINVAL, "outside the batch");
	/* codec rules */
	s.pos = 0;
	s.raw = CHUNK;
	s.stored = CHUNK - 1;
	expect_head_error(&s, -EINVAL, "raw codec with stored length");
	s.codec = DEVSTATE_CODEC_ZERO;
	s.stored = 1;
	expect_head_error(&s, -EINVAL, "zero codec with stored length 1");
	s.codec = DEVSTATE_CODEC_ZSTD;
	s.stored = CHUNK + 1;
	expect_head_error(&s, -EINVAL, "zstd codec with stored length 4097");
	s.stored = 0;
	expect_head_error(&s, -EINVAL, "zstd codec with stored length 0");
	s.codec = 4;
	expect_head_error(&s, -EINVAL, "unknown codec 4");
	s.codec = 0xff;
	expect_head_error(&s, -EINVAL, "unknown codec 255");

	/* config */
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_CONFIG;
	s.raw = s.stored = CONFIG_SIZE + 1;
	expect_head_error(&s, -EINVAL, "config of 1001 bytes, but the header says 1000");
	s.raw = CONFIG_SIZE;
	s.stored = 200 << 20;
	s.codec = DEVSTATE_CODEC_DEFLATE;
	expect_head_error(&s, -EINVAL, "deflate codec with stored length 209715200");

	/* bitmap */
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_DIRTY_BITMAP;
	s.page_nr = 1ull << 40;
	s.raw = s.stored = (1ull << 40) / 8;
	expect_head_error(&s, -E2BIG, "raw length");
	s.raw = s.stored = 8;
	expect_head_error(&s, -E2BIG, "bitmap of 1099511627776 pages over the limit");
	s.page_nr = 0;
	expect_head_error(&s, -EINVAL, "bitmap of 0 pages");
	s.page_nr = 65;
	expect_head_error(&s, -EINVAL, "raw length 8, expected 16");
	s.page_nr = 10;
	s.start = (1ull << 52) - 5;
	expect_head_error(&s, -EINVAL, "beyond 64-bit addresses");

	/* END with a payload */
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_END;
	s.raw = s.stored = 4;
	expect_head_error(&s, -EINVAL, "END with a payload");

	/* unknown type: refused at the fixed part */
	memset(&s, 0, sizeof(s));
	s.type = 9;
	expect_head_error(&s, -EINVAL, "unknown section type 9");
	s.type = 0;
	expect_head_error(&s, -EINVAL, "unknown section type 0");
}
END_TEST

START_TEST(test_hostile_caps)
{
	struct devstate_stream_header h;
	struct buf b = { 0 };
	uint8_t bm[8] = { 1 };
	struct hsec s;

	/* no DEVICE_MEMORY: no memory section */
	header_init(&h, 2, DEVSTATE_CAP_SYSTEM_MEMORY, 0, CONFIG_SIZE, 4096);
	hb_header(&b, &h);
	hb_chunk(&b, 0, 10, 0, 10);
	expect_error(&b, -EINVAL, "no DEVICE_MEMORY region");
	buf_free(&b);
	/* no SYSTEM_MEMORY: no bitmap section */
	header_init(&h, 2, DEVSTATE_CAP_DEVICE_MEMORY, CHUNK, CONFIG_SIZE, 0);
	hb_header(&b, &h);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_DIRTY_BITMAP;
	s.page_nr = 1;
	s.raw = s.stored = 8;
	s.payload = bm;
	s.plen = 8;
	hb_section(&b, &s);
	expect_error(&b, -EINVAL, "no cap SYSTEM_MEMORY");
	buf_free(&b);
}
END_TEST

START_TEST(test_hostile_content)
{
	struct buf b = { 0 };
	uint8_t bm[8] = { 0 };
	struct hsec s;

	/* CRC mismatch, with the offset */
	hb_std_header(&b);
	hb_chunk(&b, 0, CHUNK, 0, CHUNK);
	b.p[b.len - 100] ^= 0x20;
	expect_error(&b, -EBADMSG, "section at offset 89 (MEMORY): CRC mismatch (stored 0x");
	buf_free(&b);

	/* reserved fields */
	hb_std_header(&b);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_CONFIG;
	s.raw = s.stored = CONFIG_SIZE;
	s.payload = calloc(1, CONFIG_SIZE);
	s.plen = CONFIG_SIZE;
	s.reserved = 1;
	hb_section(&b, &s);
	expect_error(&b, -EINVAL, "reserved");
	buf_free(&b);
	free((void *)s.payload);
	hb_std_header(&b);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_MEMORY;
	s.raw = s.stored = 1;
	s.batch = 1;
	s.meta_reserved = 5;
	s.payload = "x";
	s.plen = 1;
	hb_section(&b, &s);
	expect_error(&b, -EINVAL, "reserved");
	buf_free(&b);
	hb_std_header(&b);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_END;
	s.meta_reserved = 1;
	s.crc = zcrc(b.p, b.len);
	hb_section(&b, &s);
	expect_error(&b, -EINVAL, "reserved");
	buf_free(&b);

	/* bitmap bits past page_nr */
	hb_std_header(&b);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_DIRTY_BITMAP;
	s.page_nr = 3;
	s.raw = s.stored = 8;
	bm[0] = 0x0f;
	s.payload = bm;
	s.plen = 8;
	hb_section(&b, &s);
	expect_error(&b, -EINVAL, "bits set past page count 3");
	buf_free(&b);
	bm[0] = 0;
	bm[7] = 0x80;
	hb_std_header(&b);
	hb_section(&b, &s);
	expect_error(&b, -EINVAL, "bits set past page count 3");
	buf_free(&b);
}
END_TEST

/* Payloads that decode to more (a bomb) or less than raw_len. */
static void bomb_case(enum devstate_codec codec, size_t plain, uint8_t fill,
		      int rc, const char *needle)
{
	uint8_t *in = malloc(plain), *out;
	size_t olen;
	struct buf b = { 0 };
	struct hsec s;

	memset(in, fill, plain);
	if (codec == DEVSTATE_CODEC_DEFLATE) {
		uLongf l = compressBound((uLong)plain);

		out = malloc(l);
		ck_assert_int_eq(compress2(out, &l, in, (uLong)plain, 9), Z_OK);
		olen = l;
	} else {
		olen = ZSTD_compressBound(plain);
		out = malloc(olen);
		olen = ZSTD_compress(out, olen, in, plain, 3);
		ck_assert(!ZSTD_isError(olen));
	}
	ck_assert_uint_le(olen, CHUNK);
	hb_std_header(&b);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_MEMORY;
	s.codec = (uint8_t)codec;
	s.raw = CHUNK;
	s.stored = olen;
	s.batch = CHUNK;
	s.payload = out;
	s.plen = olen;
	hb_section(&b, &s);
	expect_error(&b, rc, needle);
	buf_free(&b);
	free(in);
	free(out);
}

START_TEST(test_hostile_payloads)
{
	struct buf b = { 0 };
	uint8_t junk[64];
	struct hsec s;

	/* megabytes of zeros squeezed under 4 KiB: decoding stops at raw_len */
	bomb_case(DEVSTATE_CODEC_DEFLATE, 4 << 20, 0, -EINVAL,
		  "decodes to more than 4096 bytes");
	bomb_case(DEVSTATE_CODEC_ZSTD, 16 << 20, 0, -EINVAL,
		  "decodes to more than 4096 bytes");
	bomb_case(DEVSTATE_CODEC_DEFLATE, 100, 1, -EINVAL,
		  "decodes to 100 bytes, expected 4096");
	bomb_case(DEVSTATE_CODEC_ZSTD, 100, 1, -EINVAL,
		  "decodes to 100 bytes, expected 4096");
	/* garbage */
	memset(junk, 0x3c, sizeof(junk));
	hb_std_header(&b);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_MEMORY;
	s.codec = DEVSTATE_CODEC_DEFLATE;
	s.raw = CHUNK;
	s.stored = sizeof(junk);
	s.batch = CHUNK;
	s.payload = junk;
	s.plen = sizeof(junk);
	hb_section(&b, &s);
	expect_error(&b, -EINVAL, "corrupt deflate data");
	buf_free(&b);
	s.codec = DEVSTATE_CODEC_ZSTD;
	hb_std_header(&b);
	hb_section(&b, &s);
	expect_error(&b, -EINVAL, "corrupt zstd data");
	buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Ordering. */

START_TEST(test_hostile_order)
{
	struct buf b = { 0 };

	/* a skipped chunk */
	hb_std_header(&b);
	hb_chunk(&b, 0, 3 * CHUNK, 0, CHUNK);
	hb_chunk(&b, 0, 3 * CHUNK, 2 * CHUNK, CHUNK);
	expect_error(&b, -EINVAL, "chunk out of order: pass 0 pos 8192 of 12288, expected pass 0 pos 4096");
	buf_free(&b);
	/* a repeated chunk */
	hb_std_header(&b);
	hb_chunk(&b, 0, 3 * CHUNK, 0, CHUNK);
	hb_chunk(&b, 0, 3 * CHUNK, 0, CHUNK);
	expect_error(&b, -EINVAL, "chunk out of order");
	buf_free(&b);
	/* a batch not starting at 0 */
	hb_std_header(&b);
	hb_chunk(&b, 0, 3 * CHUNK, CHUNK, CHUNK);
	expect_error(&b, -EINVAL, "starts at pos 4096, not 0");
	buf_free(&b);
	/* the batch size changes inside a batch */
	hb_std_header(&b);
	hb_chunk(&b, 0, 3 * CHUNK, 0, CHUNK);
	hb_chunk(&b, 0, 2 * CHUNK, CHUNK, CHUNK);
	expect_error(&b, -EINVAL, "chunk out of order");
	buf_free(&b);
	/* the pass changes inside a batch */
	hb_std_header(&b);
	hb_chunk(&b, 0, 2 * CHUNK, 0, CHUNK);
	hb_chunk(&b, 1, 2 * CHUNK, CHUNK, CHUNK);
	expect_error(&b, -EINVAL, "chunk out of order");
	buf_free(&b);
	/* passes go backwards */
	hb_std_header(&b);
	hb_chunk(&b, 2, 10, 0, 10);
	hb_chunk(&b, 1, 10, 0, 10);
	expect_error(&b, -EINVAL, "pass 1 after pass 2");
	buf_free(&b);
	/* memory after config */
	hb_std_header(&b);
	hb_config(&b, CONFIG_SIZE);
	hb_chunk(&b, 0, 10, 0, 10);
	expect_error(&b, -EINVAL, "MEMORY after CONFIG");
	buf_free(&b);
	/* config twice */
	hb_std_header(&b);
	hb_config(&b, CONFIG_SIZE);
	hb_config(&b, CONFIG_SIZE);
	expect_error(&b, -EINVAL, "second CONFIG section");
	buf_free(&b);
	/* config inside an incomplete batch */
	hb_std_header(&b);
	hb_chunk(&b, 0, 2 * CHUNK, 0, CHUNK);
	hb_config(&b, CONFIG_SIZE);
	expect_error(&b, -EINVAL, "CONFIG inside an incomplete memory batch");
	buf_free(&b);
	/* a section before the header is a bad magic */
	hb_chunk(&b, 0, 10, 0, 10);
	expect_error(&b, -EINVAL, "magic");
	buf_free(&b);
}
END_TEST

START_TEST(test_hostile_end)
{
	struct buf b = { 0 };
	struct result r;
	struct hsec s;
	size_t len;

	/* a sound one first */
	hb_std_header(&b);
	hb_chunk(&b, 0, 10, 0, 10);
	hb_config(&b, CONFIG_SIZE);
	hb_end(&b, 2);
	decode(b.p, b.len, 0, 0, false, &r);
	ck_assert_msg(r.rc == DEVSTATE_DEC_END, "%s", r.err);
	ck_assert_uint_eq(r.end.section_count, 2);
	result_free(&r);
	/* bytes after END, one or many, at once or later */
	len = b.len;
	put8(&b, 0);
	decode(b.p, b.len, 0, 0, false, &r);
	ck_assert(r.ended);
	ck_assert_int_eq(r.rc, -EINVAL);
	ck_assert_ptr_nonnull(strstr(r.err, "byte after END at offset"));
	result_free(&r);
	b.len = len;
	buf_put(&b, b.p, 100);
	decode(b.p, b.len, 7, 1, false, &r);
	ck_assert(r.ended);
	ck_assert_int_eq(r.rc, -EINVAL);
	ck_assert_ptr_nonnull(strstr(r.err, "byte after END"));
	result_free(&r);
	buf_free(&b);

	/* wrong count */
	hb_std_header(&b);
	hb_chunk(&b, 0, 10, 0, 10);
	hb_end(&b, 3);
	expect_error(&b, -EINVAL, "section count 3, but 1 sections precede it");
	buf_free(&b);
	hb_std_header(&b);
	hb_end(&b, 1);
	expect_error(&b, -EINVAL, "section count 1, but 0");
	buf_free(&b);
	/* wrong stream CRC */
	hb_std_header(&b);
	hb_chunk(&b, 0, 10, 0, 10);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_END;
	s.count = 1;
	s.crc = zcrc(b.p, b.len) ^ 0x100;
	hb_section(&b, &s);
	expect_error(&b, -EBADMSG, "stream CRC mismatch");
	buf_free(&b);
	/* END inside a batch */
	hb_std_header(&b);
	hb_chunk(&b, 0, 2 * CHUNK, 0, CHUNK);
	hb_end(&b, 1);
	expect_error(&b, -EINVAL, "END inside an incomplete memory batch");
	buf_free(&b);
	/* END with a bad section CRC */
	hb_std_header(&b);
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_END;
	s.crc = zcrc(b.p, b.len);
	s.bad_crc = true;
	hb_section(&b, &s);
	expect_error(&b, -EBADMSG, "(END): CRC mismatch");
	buf_free(&b);
}
END_TEST

/* An error is sticky; the decoder says nothing more. */
START_TEST(test_error_sticky)
{
	struct devstate_dec *d;
	struct buf b = { 0 };
	size_t used = 99;

	hb_std_header(&b);
	b.p[30] ^= 1;
	ck_assert_int_eq(devstate_dec_new(&d), 0);
	ck_assert_ptr_null(devstate_dec_header(d));
	ck_assert_int_eq(devstate_dec_feed(d, b.p, b.len, &used), -EBADMSG);
	ck_assert_uint_eq(used, b.len);
	ck_assert_int_eq(devstate_dec_feed(d, b.p, b.len, &used), -EBADMSG);
	ck_assert_uint_eq(used, 0);
	ck_assert_ptr_nonnull(strstr(devstate_dec_error(d), "CRC mismatch"));
	ck_assert_int_eq(devstate_dec_feed(d, NULL, 5, &used), -EINVAL);
	devstate_dec_free(d);
	devstate_dec_free(NULL);
	buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Encoder rules. */

START_TEST(test_encoder_args)
{
	struct devstate_enc *e = (struct devstate_enc *)&e;
	struct devstate_stream_header h;
	struct buf b = { 0 };
	uint8_t data[CHUNK] = { 1 };

	ck_assert_int_eq(devstate_enc_new(&e, NULL, &b, DEVSTATE_CODEC_RAW, 0),
			 -EINVAL);
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &b,
					  DEVSTATE_CODEC_ZERO, 0), -EINVAL);
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &b,
					  (enum devstate_codec)9, 0), -EINVAL);
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &b,
					  DEVSTATE_CODEC_DEFLATE, 10), -EINVAL);
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &b,
					  DEVSTATE_CODEC_DEFLATE, -1), -EINVAL);
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &b,
					  DEVSTATE_CODEC_ZSTD, 1000), -EINVAL);
	/* *out untouched on failure */
	ck_assert_ptr_eq(e, (struct devstate_enc *)&e);

	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &b,
					  DEVSTATE_CODEC_RAW, 0), 0);
	/* nothing before the header */
	ck_assert_int_eq(devstate_enc_memory(e, 0, 10, 0, data, 10), -EINVAL);
	ck_assert_int_eq(devstate_enc_end(e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(devstate_enc_error(e), "no header"));
	/* a header the decoder would refuse */
	header_init(&h, 2, DEVSTATE_CAP_ALL, CHUNK, CONFIG_SIZE, 4096);
	h.proto_version = 7;
	ck_assert_int_eq(devstate_enc_header(e, &h), -EINVAL);
	h.proto_version = 2;
	h.config_size = 1ull << 40;
	ck_assert_int_eq(devstate_enc_header(e, &h), -EINVAL);
	h.config_size = CONFIG_SIZE;
	h.region_len[DEVSTATE_REGION_MEMORY] = 0;
	ck_assert_int_eq(devstate_enc_header(e, &h), -EINVAL);
	ck_assert_uint_eq(b.len, 0);
	/* regions without their cap are recorded as 0 */
	h.caps = DEVSTATE_CAP_SYSTEM_MEMORY;
	h.region_len[DEVSTATE_REGION_MEMORY] = 12345;
	h.ident_len = 0;	/* taken from the string */
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	ck_assert_uint_eq(getle(b.p + 48, 8), 0);
	ck_assert_uint_eq(getle(b.p + 72, 2), strlen("test device"));
	ck_assert_int_eq(devstate_enc_header(e, &h), -EINVAL);
	/* no memory without the cap; nothing written */
	ck_assert_int_eq(devstate_enc_memory(e, 0, 10, 0, data, 10), -EINVAL);
	ck_assert_int_eq(devstate_enc_config(e, data, CONFIG_SIZE - 1),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(devstate_enc_error(e),
				     "config of 999 bytes"));
	ck_assert_int_eq(devstate_enc_bitmap(e, 0, 0, data), -EINVAL);
	ck_assert_int_eq(devstate_enc_bitmap(e, 0, UINT64_MAX, data), -E2BIG);
	ck_assert_int_eq(devstate_enc_config(e, NULL, CONFIG_SIZE), -EINVAL);
	ck_assert_uint_eq(b.len, 78 + 11);
	ck_assert_uint_eq(devstate_enc_sections(e), 0);
	devstate_enc_free(e);
	devstate_enc_free(NULL);
	buf_free(&b);
}
END_TEST

START_TEST(test_encoder_order)
{
	struct devstate_stream_header h;
	struct devstate_enc *e;
	struct buf b = { 0 };
	uint8_t data[CONFIG_SIZE] = { 1 };
	size_t len;

	header_init(&h, 2, DEVSTATE_CAP_ALL, 100, CONFIG_SIZE, 4096);
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &b,
					  DEVSTATE_CODEC_DEFLATE, 0), 0);
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	len = b.len;
	/* wrong chunk lengths and positions */
	ck_assert_int_eq(devstate_enc_memory(e, 0, 250, 0, data, 99), -EINVAL);
	ck_assert_int_eq(devstate_enc_memory(e, 0, 250, 100, data, 100),
			 -EINVAL);
	ck_assert_int_eq(devstate_enc_memory(e, 0, 250, 50, data, 100),
			 -EINVAL);
	ck_assert_uint_eq(b.len, len);
	ck_assert_int_eq(devstate_enc_memory(e, 5, 250, 0, data, 100), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 5, 250, 200, data, 50),
			 -EINVAL);
	ck_assert_int_eq(devstate_enc_config(e, data, CONFIG_SIZE), -EINVAL);
	ck_assert_int_eq(devstate_enc_end(e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(devstate_enc_error(e),
				     "incomplete memory batch"));
	ck_assert_int_eq(devstate_enc_memory(e, 5, 250, 100, data, 100), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 5, 250, 200, data, 50), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 4, 10, 0, data, 10), -EINVAL);
	ck_assert_int_eq(devstate_enc_config(e, data, CONFIG_SIZE), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 6, 10, 0, data, 10), -EINVAL);
	ck_assert_int_eq(devstate_enc_config(e, data, CONFIG_SIZE), -EINVAL);
	ck_assert_int_eq(devstate_enc_end(e), 0);
	ck_assert_int_eq(devstate_enc_end(e), -EINVAL);
	ck_assert_uint_eq(devstate_enc_sections(e), 4);
	devstate_enc_free(e);
	buf_free(&b);
}
END_TEST

START_TEST(test_encoder_write_failure)
{
	struct devstate_stream_header h;
	struct devstate_enc *e;
	struct buf b = { 0 };
	uint8_t data[CHUNK] = { 1 };
	uint64_t bytes;

	header_init(&h, 2, DEVSTATE_CAP_ALL, CHUNK, CONFIG_SIZE, 4096);
	b.fail_at = 3;	/* the payload of the first section */
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &b,
					  DEVSTATE_CODEC_RAW, 0), 0);
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 0, CHUNK, 0, data, CHUNK),
			 -ENOSPC);
	ck_assert_ptr_nonnull(strstr(devstate_enc_error(e), "failed"));
	bytes = devstate_enc_bytes(e);
	/* the stream is broken for good */
	ck_assert_int_eq(devstate_enc_config(e, data, CONFIG_SIZE), -ENOSPC);
	ck_assert_int_eq(devstate_enc_end(e), -ENOSPC);
	ck_assert_uint_eq(devstate_enc_bytes(e), bytes);
	ck_assert_uint_eq(b.calls, 3);
	devstate_enc_free(e);
	buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Decoding a section again from its bytes. */

START_TEST(test_redecode)
{
	struct devstate_stream_header h;
	struct result r;
	struct plan pl;
	struct buf b;
	size_t i;
	char err[256];

	build_mixed((enum devstate_codec)_i, 0, &b, &pl, &h);
	decode(b.p, b.len, 0, 0, true, &r);
	ck_assert_int_eq(r.rc, DEVSTATE_DEC_END);
	for (i = 0; i < r.n; i++) {
		struct devstate_section s = r.recs[i].s;
		uint8_t *out = malloc(s.raw_len + 1), *copy;

		err[0] = '\0';
		ck_assert_int_eq(devstate_section_redecode(&s, b.p + s.offset,
							   out, err,
							   sizeof(err)), 0);
		ck_assert_int_eq(memcmp(out, r.recs[i].data, s.raw_len), 0);
		/* the bytes changed since */
		copy = malloc(s.total_len);
		memcpy(copy, b.p + s.offset, s.total_len);
		copy[s.total_len - 1] ^= 1;
		ck_assert_int_eq(devstate_section_redecode(&s, copy, out, err,
							   sizeof(err)),
				 -EBADMSG);
		ck_assert_ptr_nonnull(strstr(err, "CRC mismatch"));
		copy[s.total_len - 1] ^= 1;
		if (s.stored_len) {
			copy[s.total_len - 5] ^= 1;	/* payload */
			ck_assert_int_eq(devstate_section_redecode(&s, copy, out,
								   err,
								   sizeof(err)),
					 -EBADMSG);
		}
		/* they describe another section */
		s.pos += 1;
		s.start_page += 1;
		ck_assert_int_eq(devstate_section_redecode(&s, b.p + s.offset,
							   out, err,
							   sizeof(err)),
				 -EINVAL);
		ck_assert_ptr_nonnull(strstr(err, "changed"));
		free(copy);
		free(out);
	}
	result_free(&r);
	plan_free(&pl);
	buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Protocol family 2: the kernel's migration uAPI v2. */

static void mig2_header_init(struct devstate_stream_header *h, uint32_t flags)
{
	memset(h, 0, sizeof(*h));
	h->format_version = DEVSTATE_STREAM_FORMAT;
	h->protocol = DEVSTATE_PROTOCOL_MIG2;
	h->proto_version = 2;
	h->caps = flags;
	h->page_size = DEVSTATE_PAGE_SIZE;
	strcpy(h->ident, "fake mig2");
	h->ident_len = (uint32_t)strlen(h->ident);
}

static void hb_mig2_header(struct buf *b)
{
	struct devstate_stream_header h;

	mig2_header_init(&h, 7);
	hb_header(b, &h);
}

/* A MIG2_DATA section of len bytes of 0x3c, laid out from stream.h. */
static void hb_mig2(struct buf *b, uint32_t pass, uint32_t flags,
		    uint64_t offset, size_t len)
{
	uint8_t *data = malloc(len ? len : 1);
	size_t start = b->len;

	memset(data, 0x3c, len ? len : 1);
	putle(b, DEVSTATE_SEC_MIG2_DATA, 4);
	put8(b, DEVSTATE_CODEC_RAW);
	put8(b, 0);
	put8(b, 0);
	put8(b, 0);
	putle(b, len, 8);
	putle(b, len, 8);
	putle(b, pass, 4);
	putle(b, flags, 4);
	putle(b, offset, 8);
	buf_put(b, data, len);
	putle(b, zcrc(b->p + start, b->len - start), 4);
	free(data);
}

START_TEST(test_mig2_layout)
{
	struct buf hand = { 0 }, enc = { 0 };
	struct devstate_stream_header h;
	struct devstate_enc *e;
	uint8_t data[300];
	struct result r;

	/* hand-built from the layout comment */
	hb_mig2_header(&hand);
	hb_mig2(&hand, 0, 0, 0, 100);
	hb_mig2(&hand, 0, 0, 100, 50);
	hb_mig2(&hand, 3, 0, 150, 1);
	hb_mig2(&hand, 4, 1, 151, 300);
	hb_end(&hand, 4);
	/* the encoder writes the same bytes */
	memset(data, 0x3c, sizeof(data));
	mig2_header_init(&h, 7);
	ck_assert_int_eq(devstate_enc_new(&e, buf_write, &enc,
					  DEVSTATE_CODEC_RAW, 0), 0);
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	ck_assert_int_eq(devstate_enc_mig2_data(e, 0, 0, 0, data, 100), 0);
	ck_assert_int_eq(devstate_enc_mig2_data(e, 0, 0, 100, data, 50), 0);
	ck_assert_int_eq(devstate_enc_mig2_data(e, 3, 0, 150, data, 1), 0);
	ck_assert_int_eq(devstate_enc_mig2_data(e, 4, 1, 151, data, 300), 0);
	/* the encoder refuses what the decoder would */
	ck_assert_int_eq(devstate_enc_mig2_data(e, 4, 1, 0, data, 1), -EINVAL);
	ck_assert_int_eq(devstate_enc_mig2_data(e, 5, 0, 451, data, 1), -EINVAL);
	ck_assert_int_eq(devstate_enc_memory(e, 0, 10, 0, data, 10), -EINVAL);
	ck_assert_int_eq(devstate_enc_config(e, data, 0), -EINVAL);
	ck_assert_int_eq(devstate_enc_end(e), 0);
	devstate_enc_free(e);
	ck_assert_uint_eq(enc.len, hand.len);
	ck_assert_mem_eq(enc.p, hand.p, hand.len);

	decode(hand.p, hand.len, 7, 1, true, &r);
	ck_assert_msg(r.rc == DEVSTATE_DEC_END, "%d %s", r.rc, r.err);
	ck_assert_uint_eq(r.h.protocol, DEVSTATE_PROTOCOL_MIG2);
	ck_assert_uint_eq(r.h.proto_version, 2);
	ck_assert_uint_eq(r.h.caps, 7);
	ck_assert_uint_eq(r.n, 4);
	ck_assert_uint_eq(r.recs[2].s.type, DEVSTATE_SEC_MIG2_DATA);
	ck_assert_uint_eq(r.recs[2].s.pass, 3);
	ck_assert_uint_eq(r.recs[2].s.pos, 150);
	ck_assert_uint_eq(r.recs[2].s.mig2_flags, 0);
	ck_assert_uint_eq(r.recs[3].s.mig2_flags, 1);
	ck_assert_uint_eq(r.recs[3].s.raw_len, 300);
	ck_assert_uint_eq(r.recs[3].data[299], 0x3c);
	result_free(&r);
	buf_free(&hand);
	buf_free(&enc);
}
END_TEST

START_TEST(test_mig2_hostile_header)
{
	static const struct {
		uint32_t version, caps;
		unsigned region;	/* 4: none */
		uint64_t config;
		const char *needle;
	} cases[] = {
		{ 1, 7, 4, 0, "migration uAPI version 1 not supported" },
		{ 3, 7, 4, 0, "migration uAPI version 3 not supported" },
		{ 2, 0, 4, 0, "flags 0x0 are not valid" },
		{ 2, 6, 4, 0, "flags 0x6 are not valid" },
		{ 2, 9, 4, 0, "flags 0x9 are not valid" },
		{ 2, 7, 0, 0, "region length 4096 in a migration uAPI v2 header" },
		{ 2, 7, 2, 0, "region length 4096 in a migration uAPI v2 header" },
		{ 2, 7, 4, 1, "config size 1 in a migration uAPI v2 header" },
	};
	struct devstate_stream_header h;
	struct buf b = { 0 };
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mig2_header_init(&h, cases[i].caps);
		h.proto_version = cases[i].version;
		if (cases[i].region < 4)
			h.region_len[cases[i].region] = 4096;
		h.config_size = cases[i].config;
		hb_header(&b, &h);
		expect_error(&b, -EINVAL, cases[i].needle);
		buf_free(&b);
	}
	/* protocol 3 is nobody's */
	mig2_header_init(&h, 7);
	h.protocol = 3;
	hb_header(&b, &h);
	expect_error(&b, -EINVAL, "unknown protocol family 3");
	buf_free(&b);
}
END_TEST

START_TEST(test_mig2_hostile_sections)
{
	struct buf b = { 0 };

	/* a gap */
	hb_mig2_header(&b);
	hb_mig2(&b, 0, 0, 0, 10);
	hb_mig2(&b, 0, 0, 11, 10);
	expect_error(&b, -EINVAL, "migration data at offset 11, expected 10 (a gap or an overlap)");
	buf_free(&b);
	/* an overlap */
	hb_mig2_header(&b);
	hb_mig2(&b, 0, 0, 0, 10);
	hb_mig2(&b, 0, 0, 9, 10);
	expect_error(&b, -EINVAL, "at offset 9, expected 10");
	buf_free(&b);
	/* not starting at 0 */
	hb_mig2_header(&b);
	hb_mig2(&b, 0, 0, 5, 10);
	expect_error(&b, -EINVAL, "at offset 5, expected 0");
	buf_free(&b);
	/* passes backwards */
	hb_mig2_header(&b);
	hb_mig2(&b, 2, 0, 0, 10);
	hb_mig2(&b, 1, 0, 10, 10);
	expect_error(&b, -EINVAL, "pass 1 after pass 2");
	buf_free(&b);
	/* pre-copy data after stop-copy data */
	hb_mig2_header(&b);
	hb_mig2(&b, 1, 1, 0, 10);
	hb_mig2(&b, 2, 0, 10, 10);
	expect_error(&b, -EINVAL, "pre-copy data after stop-copy data");
	buf_free(&b);
	/* unknown flag bits */
	hb_mig2_header(&b);
	hb_mig2(&b, 0, 2, 0, 10);
	expect_error(&b, -EINVAL, "unknown migration data flags 0x2");
	buf_free(&b);
	/* empty */
	hb_mig2_header(&b);
	hb_mig2(&b, 0, 0, 0, 0);
	expect_error(&b, -EINVAL, "migration data section of 0 bytes");
	buf_free(&b);
	/* offset + length past 64 bits */
	hb_mig2_header(&b);
	hb_mig2(&b, 0, 0, UINT64_MAX - 5, 10);
	expect_error(&b, -EINVAL, "beyond 64 bits");
	buf_free(&b);
	/* a claimed length over the bound, before any payload arrives */
	hb_mig2_header(&b);
	putle(&b, DEVSTATE_SEC_MIG2_DATA, 4);
	putle(&b, 0, 4);
	putle(&b, DEVSTATE_SECTION_MAX + 1, 8);
	putle(&b, DEVSTATE_SECTION_MAX + 1, 8);
	putle(&b, 0, 8);
	putle(&b, 0, 8);
	expect_error(&b, -E2BIG, "raw length 268435457 over the limit");
	buf_free(&b);
	/* the other family's sections, both ways */
	hb_mig2_header(&b);
	hb_chunk(&b, 0, 10, 0, 10);
	expect_error(&b, -EINVAL, "MEMORY section in a stream of protocol family 2");
	buf_free(&b);
	hb_mig2_header(&b);
	hb_config(&b, 0);
	expect_error(&b, -EINVAL, "CONFIG section in a stream of protocol family 2");
	buf_free(&b);
	hb_std_header(&b);
	hb_mig2(&b, 0, 0, 0, 10);
	expect_error(&b, -EINVAL, "MIG2_DATA section in a stream of protocol family 1");
	buf_free(&b);
	/* END counts data sections like any other */
	hb_mig2_header(&b);
	hb_mig2(&b, 0, 0, 0, 10);
	hb_end(&b, 2);
	expect_error(&b, -EINVAL, "section count 2, but 1 sections precede it");
	buf_free(&b);
}
END_TEST

static Suite *stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *tc;

	tc = tcase_create("crc");
	tcase_add_test(tc, test_crc_known);
	tcase_add_test(tc, test_crc_combine);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_roundtrip_codecs, 0, 3);
	tcase_add_test(tc, test_roundtrip_levels);
	tcase_add_test(tc, test_plain_decoders_read_payloads);
	tcase_add_test(tc, test_layout_matches_hand_built);
	tcase_add_loop_test(tc, test_random_pieces, 0, 3);
	tcase_add_loop_test(tc, test_redecode, 0, 3);
	suite_add_tcase(s, tc);

	tc = tcase_create("damage");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_flip_every_byte, 0, 3);
	tcase_add_loop_test(tc, test_truncate_every_offset, 0, 3);
	tcase_add_loop_test(tc, test_random_damage, 0, 3);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hostile_header);
	tcase_add_test(tc, test_hostile_lengths);
	tcase_add_test(tc, test_claimed_length_costs_nothing);
	tcase_add_test(tc, test_hostile_caps);
	tcase_add_test(tc, test_hostile_content);
	tcase_add_test(tc, test_hostile_payloads);
	tcase_add_test(tc, test_hostile_order);
	tcase_add_test(tc, test_hostile_end);
	tcase_add_test(tc, test_mig2_layout);
	tcase_add_test(tc, test_mig2_hostile_header);
	tcase_add_test(tc, test_mig2_hostile_sections);
	tcase_add_test(tc, test_error_sticky);
	suite_add_tcase(s, tc);

	tc = tcase_create("encoder");
	tcase_add_test(tc, test_encoder_args);
	tcase_add_test(tc, test_encoder_order);
	tcase_add_test(tc, test_encoder_write_failure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(stream_suite());
}

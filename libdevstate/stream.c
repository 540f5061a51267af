/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration stream / snapshot format (SPEC 9): an encoder that hands
 * bytes to a callback and a push decoder.  No I/O here.  The byte layout
 * is the comment at the top of stream.h (and devstate-snapshot(5)).
 *
 * The same checks serve both directions: the encoder refuses to write a
 * section the decoder would refuse to read.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "libdevstate/le.h"
#include "libdevstate/mig2.h"
#include "libdevstate/stream.h"

#define ERR_MAX		256
#define WHY_MAX		192

/* Header field offsets. */
#define H_MAGIC		0
#define H_FORMAT	8
#define H_LENGTH	10
#define H_PROTOCOL	12
#define H_PROTO_VERSION	16
#define H_CAPS		20
#define H_PAGE_SIZE	24
#define H_FLAGS		28
#define H_REGION_LEN	32	/* 4 x u64 */
#define H_CONFIG_SIZE	64
#define H_IDENT_LEN	72
#define H_IDENT		74

/* Section field offsets. */
#define S_TYPE		0
#define S_CODEC		4
#define S_RESERVED	5
#define S_RAW_LEN	8
#define S_STORED_LEN	16
#define S_META		24
#define S_META_MAX	24
#define S_CRC_LEN	4

/* Byte addresses of pages must fit 64 bits: pages below 2^52. */
#define PAGE_LIMIT	(UINT64_MAX / DEVSTATE_PAGE_SIZE + 1)

/* Raw payloads go to the sink in pieces of this size, the CRC of each
 * computed just before it is handed over, so that the sink's copy reads
 * bytes still in cache (an L2 holds a piece) rather than making a second
 * pass over memory, and a file sink makes few write(2) calls.  Sizes
 * from 64 KiB to 1 MiB measured within noise of each other (bench/README,
 * rows 1-2); the #ifndef lets a build repeat that. */
#ifndef SINK_PIECE
#define SINK_PIECE	(256u << 10)
#endif

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* ---------------------------------------------------------------- */
/* Rules shared by the encoder and the decoder. */

static const char *type_name(uint32_t type)
{
	switch (type) {
	case DEVSTATE_SEC_MEMORY:
		return "MEMORY";
	case DEVSTATE_SEC_CONFIG:
		return "CONFIG";
	case DEVSTATE_SEC_DIRTY_BITMAP:
		return "DIRTY_BITMAP";
	case DEVSTATE_SEC_END:
		return "END";
	case DEVSTATE_SEC_MIG2_DATA:
		return "MIG2_DATA";
	}
	return "unknown";
}

/* Bytes of type-specific fields, or -1 for an unknown type. */
static int meta_len(uint32_t type)
{
	switch (type) {
	case DEVSTATE_SEC_MEMORY:
		return 24;
	case DEVSTATE_SEC_CONFIG:
		return 0;
	case DEVSTATE_SEC_DIRTY_BITMAP:
	case DEVSTATE_SEC_END:
	case DEVSTATE_SEC_MIG2_DATA:
		return 16;
	}
	return -1;
}

static uint64_t bitmap_bytes(uint64_t page_nr)
{
	return (page_nr / 64 + (page_nr % 64 != 0)) * 8;
}

/* Protocol family 2: version = the uAPI version (2), caps = the device's
 * v2 flags; no regions, no config. */
static int check_header_mig2(const struct devstate_stream_header *h,
			     char *why, size_t len)
{
	unsigned r;

	if (h->proto_version != DEVSTATE_MIG2_UAPI_VERSION) {
		snprintf(why, len, "migration uAPI version %" PRIu32 " not supported (%u is)",
			 h->proto_version, DEVSTATE_MIG2_UAPI_VERSION);
		return -EINVAL;
	}
	if (devstate_mig2_flags_check(h->caps) < 0) {
		snprintf(why, len, "migration uAPI v2 flags 0x%" PRIx32 " are not valid (STOP_COPY required, known bits 0x%x)",
			 h->caps, DEVSTATE_MIG2_F_KNOWN);
		return -EINVAL;
	}
	if (h->page_size != DEVSTATE_PAGE_SIZE) {
		snprintf(why, len, "page size %" PRIu32 " is not %u",
			 h->page_size, DEVSTATE_PAGE_SIZE);
		return -EINVAL;
	}
	if (h->flags) {
		snprintf(why, len, "unknown flags 0x%" PRIx32, h->flags);
		return -EINVAL;
	}
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++) {
		if (h->region_len[r]) {
			snprintf(why, len, "region length %llu in a migration uAPI v2 header (must be 0)",
				 ull(h->region_len[r]));
			return -EINVAL;
		}
	}
	if (h->config_size) {
		snprintf(why, len, "config size %llu in a migration uAPI v2 header (must be 0)",
			 ull(h->config_size));
		return -EINVAL;
	}
	if (h->ident_len > DEVSTATE_IDENT_MAX) {
		snprintf(why, len, "ident length %" PRIu32 " over the limit of %u",
			 h->ident_len, DEVSTATE_IDENT_MAX);
		return -E2BIG;
	}
	return 0;
}

static int check_header(const struct devstate_stream_header *h, char *why,
			size_t len)
{
	static const char *const rname[DEVSTATE_REGION_COUNT] = {
		"CTL", "DEVICE_CONFIG", "DEVICE_MEMORY", "DIRTY_BITMAP"
	};
	unsigned r;

	if (h->format_version != DEVSTATE_STREAM_FORMAT) {
		snprintf(why, len, "format version %" PRIu32 " not supported (expected %u)",
			 h->format_version, DEVSTATE_STREAM_FORMAT);
		return -EINVAL;
	}
	if (h->protocol == DEVSTATE_PROTOCOL_MIG2)
		return check_header_mig2(h, why, len);
	if (h->protocol != DEVSTATE_PROTOCOL_REGIONS) {
		snprintf(why, len, "unknown protocol family %" PRIu32,
			 h->protocol);
		return -EINVAL;
	}
	if (h->proto_version < DEVSTATE_LAYOUT_MIN_VERSION ||
	    h->proto_version > DEVSTATE_LAYOUT_MAX_VERSION) {
		snprintf(why, len, "protocol version %" PRIu32 " not supported (%u to %u are)",
			 h->proto_version, DEVSTATE_LAYOUT_MIN_VERSION,
			 DEVSTATE_LAYOUT_MAX_VERSION);
		return -EINVAL;
	}
	if (h->caps & ~DEVSTATE_CAP_ALL) {
		snprintf(why, len, "unknown caps bits 0x%" PRIx32,
			 h->caps & ~DEVSTATE_CAP_ALL);
		return -EINVAL;
	}
	if (h->page_size != DEVSTATE_PAGE_SIZE) {
		snprintf(why, len, "page size %" PRIu32 " is not %u",
			 h->page_size, DEVSTATE_PAGE_SIZE);
		return -EINVAL;
	}
	if (h->flags) {
		snprintf(why, len, "unknown flags 0x%" PRIx32, h->flags);
		return -EINVAL;
	}
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++) {
		if (h->region_len[r] > DEVSTATE_REGION_MAX) {
			snprintf(why, len, "%s region length %llu over the limit of %llu",
				 rname[r], ull(h->region_len[r]),
				 ull(DEVSTATE_REGION_MAX));
			return -E2BIG;
		}
	}
	if (!(h->caps & DEVSTATE_CAP_DEVICE_MEMORY) !=
	    !h->region_len[DEVSTATE_REGION_MEMORY]) {
		snprintf(why, len, "DEVICE_MEMORY region length %llu does not match cap DEVICE_MEMORY %s",
			 ull(h->region_len[DEVSTATE_REGION_MEMORY]),
			 h->caps & DEVSTATE_CAP_DEVICE_MEMORY ? "on" : "off");
		return -EINVAL;
	}
	if (!(h->caps & DEVSTATE_CAP_SYSTEM_MEMORY) !=
	    !h->region_len[DEVSTATE_REGION_BITMAP]) {
		snprintf(why, len, "DIRTY_BITMAP region length %llu does not match cap SYSTEM_MEMORY %s",
			 ull(h->region_len[DEVSTATE_REGION_BITMAP]),
			 h->caps & DEVSTATE_CAP_SYSTEM_MEMORY ? "on" : "off");
		return -EINVAL;
	}
	if (h->config_size > h->region_len[DEVSTATE_REGION_CONFIG]) {
		snprintf(why, len, "config size %llu larger than the DEVICE_CONFIG region (%llu bytes)",
			 ull(h->config_size),
			 ull(h->region_len[DEVSTATE_REGION_CONFIG]));
		return -EINVAL;
	}
	if (h->ident_len > DEVSTATE_IDENT_MAX) {
		snprintf(why, len, "ident length %" PRIu32 " over the limit of %u",
			 h->ident_len, DEVSTATE_IDENT_MAX);
		return -E2BIG;
	}
	return 0;
}

/*
 * Lengths of a section against the bounds and the header: everything
 * that must hold before anything is allocated for it.
 */
static int check_section(const struct devstate_stream_header *h,
			 const struct devstate_section *s, char *why,
			 size_t len)
{
	uint64_t chunk, want;
	bool mig2 = h->protocol == DEVSTATE_PROTOCOL_MIG2;

	if (mig2 != (s->type == DEVSTATE_SEC_MIG2_DATA) &&
	    s->type != DEVSTATE_SEC_END) {
		snprintf(why, len, "%s section in a stream of protocol family %" PRIu32,
			 type_name(s->type), h->protocol);
		return -EINVAL;
	}
	if (s->raw_len > DEVSTATE_SECTION_MAX) {
		snprintf(why, len, "raw length %llu over the limit of %llu",
			 ull(s->raw_len), ull(DEVSTATE_SECTION_MAX));
		return -E2BIG;
	}
	if (s->stored_len > DEVSTATE_SECTION_MAX) {
		snprintf(why, len, "stored length %llu over the limit of %llu",
			 ull(s->stored_len), ull(DEVSTATE_SECTION_MAX));
		return -E2BIG;
	}
	switch (s->codec) {
	case DEVSTATE_CODEC_RAW:
		if (s->stored_len != s->raw_len) {
			snprintf(why, len, "raw codec with stored length %llu != raw length %llu",
				 ull(s->stored_len), ull(s->raw_len));
			return -EINVAL;
		}
		break;
	case DEVSTATE_CODEC_ZERO:
		if (s->stored_len) {
			snprintf(why, len, "zero codec with stored length %llu (must be 0)",
				 ull(s->stored_len));
			return -EINVAL;
		}
		break;
	case DEVSTATE_CODEC_DEFLATE:
	case DEVSTATE_CODEC_ZSTD:
		if (!s->stored_len || s->stored_len > s->raw_len) {
			snprintf(why, len, "%s codec with stored length %llu for raw length %llu",
				 s->codec == DEVSTATE_CODEC_ZSTD ? "zstd" : "deflate",
				 ull(s->stored_len), ull(s->raw_len));
			return -EINVAL;
		}
		break;
	default:
		snprintf(why, len, "unknown codec %" PRIu32, s->codec);
		return -EINVAL;
	}

	switch (s->type) {
	case DEVSTATE_SEC_MEMORY:
		chunk = h->region_len[DEVSTATE_REGION_MEMORY];
		if (!chunk) {
			snprintf(why, len, "MEMORY section, but the header has no DEVICE_MEMORY region");
			return -EINVAL;
		}
		if (!s->batch_size || s->pos >= s->batch_size) {
			snprintf(why, len, "chunk pos %llu outside the batch of %llu bytes",
				 ull(s->pos), ull(s->batch_size));
			return -EINVAL;
		}
		if (s->pos % chunk) {
			snprintf(why, len, "chunk pos %llu is not a multiple of the chunk length %llu",
				 ull(s->pos), ull(chunk));
			return -EINVAL;
		}
		want = s->batch_size - s->pos < chunk ?
		       s->batch_size - s->pos : chunk;
		if (s->raw_len != want) {
			snprintf(why, len, "chunk at pos %llu of %llu has raw length %llu, expected %llu",
				 ull(s->pos), ull(s->batch_size),
				 ull(s->raw_len), ull(want));
			return -EINVAL;
		}
		break;
	case DEVSTATE_SEC_CONFIG:
		if (s->raw_len != h->config_size) {
			snprintf(why, len, "config of %llu bytes, but the header says %llu",
				 ull(s->raw_len), ull(h->config_size));
			return -EINVAL;
		}
		break;
	case DEVSTATE_SEC_DIRTY_BITMAP:
		if (!(h->caps & DEVSTATE_CAP_SYSTEM_MEMORY)) {
			snprintf(why, len, "DIRTY_BITMAP section, but the header has no cap SYSTEM_MEMORY");
			return -EINVAL;
		}
		if (!s->page_nr) {
			snprintf(why, len, "bitmap of 0 pages");
			return -EINVAL;
		}
		if (s->page_nr > DEVSTATE_SECTION_MAX * 8) {
			snprintf(why, len, "bitmap of %llu pages over the limit of %llu",
				 ull(s->page_nr), ull(DEVSTATE_SECTION_MAX * 8));
			return -E2BIG;
		}
		if (s->start_page >= PAGE_LIMIT ||
		    s->page_nr > PAGE_LIMIT - s->start_page) {
			snprintf(why, len, "bitmap pages %llu + %llu beyond 64-bit addresses",
				 ull(s->start_page), ull(s->page_nr));
			return -EINVAL;
		}
		want = bitmap_bytes(s->page_nr);
		if (s->raw_len != want) {
			snprintf(why, len, "bitmap of %llu pages has raw length %llu, expected %llu",
				 ull(s->page_nr), ull(s->raw_len), ull(want));
			return -EINVAL;
		}
		break;
	case DEVSTATE_SEC_MIG2_DATA:
		if (!s->raw_len) {
			snprintf(why, len, "migration data section of 0 bytes");
			return -EINVAL;
		}
		if (s->mig2_flags & ~DEVSTATE_MIG2_SEC_STOP_COPY) {
			snprintf(why, len, "unknown migration data flags 0x%" PRIx32,
				 s->mig2_flags);
			return -EINVAL;
		}
		if (s->pos > UINT64_MAX - s->raw_len) {
			snprintf(why, len, "data offset %llu + %llu beyond 64 bits",
				 ull(s->pos), ull(s->raw_len));
			return -EINVAL;
		}
		break;
	case DEVSTATE_SEC_END:
		if (s->codec != DEVSTATE_CODEC_RAW || s->raw_len) {
			snprintf(why, len, "END with a payload (codec %" PRIu32 ", raw length %llu)",
				 s->codec, ull(s->raw_len));
			return -EINVAL;
		}
		break;
	default:
		snprintf(why, len, "unknown section type %" PRIu32, s->type);
		return -EINVAL;
	}
	return 0;
}

/* Where a stream is in the ordering rules. */
struct order {
	bool in_batch;		/* a memory batch is incomplete */
	bool any_batch;		/* a batch was seen (pass is valid) */
	bool config;		/* CONFIG seen */
	uint32_t pass;		/* current or last batch */
	uint64_t batch_size;
	uint64_t next_pos;
	uint64_t sections;	/* sections before END */
	/* MIG2_DATA */
	bool mig2_any;		/* a data section was seen */
	bool mig2_stop;		/* a stop-copy one was seen */
	uint32_t mig2_pass;	/* of the last one */
	uint64_t mig2_next;	/* data offset the next one starts at */
};

static int check_order(const struct order *o, const struct devstate_section *s,
		       char *why, size_t len)
{
	switch (s->type) {
	case DEVSTATE_SEC_MEMORY:
		if (o->config) {
			snprintf(why, len, "MEMORY after CONFIG");
			return -EINVAL;
		}
		if (o->in_batch) {
			if (s->pass != o->pass || s->batch_size != o->batch_size ||
			    s->pos != o->next_pos) {
				snprintf(why, len, "chunk out of order: pass %" PRIu32 " pos %llu of %llu, expected pass %" PRIu32 " pos %llu of %llu",
					 s->pass, ull(s->pos), ull(s->batch_size),
					 o->pass, ull(o->next_pos),
					 ull(o->batch_size));
				return -EINVAL;
			}
			return 0;
		}
		if (s->pos) {
			snprintf(why, len, "chunk out of order: pass %" PRIu32 " starts at pos %llu, not 0",
				 s->pass, ull(s->pos));
			return -EINVAL;
		}
		if (o->any_batch && s->pass < o->pass) {
			snprintf(why, len, "pass %" PRIu32 " after pass %" PRIu32,
				 s->pass, o->pass);
			return -EINVAL;
		}
		return 0;
	case DEVSTATE_SEC_MIG2_DATA:
		if (s->pos != o->mig2_next) {
			snprintf(why, len, "migration data at offset %llu, expected %llu (a gap or an overlap)",
				 ull(s->pos), ull(o->mig2_next));
			return -EINVAL;
		}
		if (o->mig2_any && s->pass < o->mig2_pass) {
			snprintf(why, len, "pass %" PRIu32 " after pass %" PRIu32,
				 s->pass, o->mig2_pass);
			return -EINVAL;
		}
		if (o->mig2_stop &&
		    !(s->mig2_flags & DEVSTATE_MIG2_SEC_STOP_COPY)) {
			snprintf(why, len, "pre-copy data after stop-copy data");
			return -EINVAL;
		}
		return 0;
	case DEVSTATE_SEC_CONFIG:
		if (o->config) {
			snprintf(why, len, "second CONFIG section");
			return -EINVAL;
		}
		__attribute__((fallthrough));
	case DEVSTATE_SEC_END:
		if (o->in_batch) {
			snprintf(why, len, "%s inside an incomplete memory batch (pass %" PRIu32 ", %llu of %llu bytes)",
				 type_name(s->type), o->pass,
				 ull(o->next_pos), ull(o->batch_size));
			return -EINVAL;
		}
		return 0;
	default:
		return 0;
	}
}

static void order_commit(struct order *o, const struct devstate_section *s)
{
	switch (s->type) {
	case DEVSTATE_SEC_MEMORY:
		if (!o->in_batch) {
			o->in_batch = true;
			o->any_batch = true;
			o->pass = s->pass;
			o->batch_size = s->batch_size;
			o->next_pos = 0;
		}
		o->next_pos += s->raw_len;
		if (o->next_pos >= o->batch_size)
			o->in_batch = false;
		break;
	case DEVSTATE_SEC_CONFIG:
		o->config = true;
		break;
	case DEVSTATE_SEC_MIG2_DATA:
		o->mig2_any = true;
		o->mig2_stop = o->mig2_stop ||
			       (s->mig2_flags & DEVSTATE_MIG2_SEC_STOP_COPY);
		o->mig2_pass = s->pass;
		o->mig2_next = s->pos + s->raw_len;
		break;
	default:
		break;
	}
	if (s->type != DEVSTATE_SEC_END)
		o->sections++;
}

/* Fill the type-specific fields of s from meta. */
static void meta_parse(struct devstate_section *s, const uint8_t *m)
{
	switch (s->type) {
	case DEVSTATE_SEC_MEMORY:
		s->pass = get32(m);
		s->batch_size = get64(m + 8);
		s->pos = get64(m + 16);
		break;
	case DEVSTATE_SEC_DIRTY_BITMAP:
		s->start_page = get64(m);
		s->page_nr = get64(m + 8);
		break;
	case DEVSTATE_SEC_END:
		s->section_count = get64(m);
		s->stream_crc = get32(m + 8);
		break;
	case DEVSTATE_SEC_MIG2_DATA:
		s->pass = get32(m);
		s->mig2_flags = get32(m + 4);
		s->pos = get64(m + 8);
		break;
	default:
		break;
	}
}

/* Reserved bytes of a section header and its meta that must be 0. */
static bool reserved_clear(uint32_t type, const uint8_t *p)
{
	if (p[S_RESERVED] || p[S_RESERVED + 1] || p[S_RESERVED + 2])
		return false;
	if (type == DEVSTATE_SEC_MEMORY && get32(p + S_META + 4))
		return false;
	if (type == DEVSTATE_SEC_END && get32(p + S_META + 12))
		return false;
	return true;
}

/* Serialize the fixed part and meta of s into p; returns its length. */
static size_t section_put(uint8_t *p, const struct devstate_section *s)
{
	memset(p, 0, S_META + S_META_MAX);
	put32(p + S_TYPE, s->type);
	p[S_CODEC] = (uint8_t)s->codec;
	put64(p + S_RAW_LEN, s->raw_len);
	put64(p + S_STORED_LEN, s->stored_len);
	switch (s->type) {
	case DEVSTATE_SEC_MEMORY:
		put32(p + S_META, s->pass);
		put64(p + S_META + 8, s->batch_size);
		put64(p + S_META + 16, s->pos);
		break;
	case DEVSTATE_SEC_DIRTY_BITMAP:
		put64(p + S_META, s->start_page);
		put64(p + S_META + 8, s->page_nr);
		break;
	case DEVSTATE_SEC_END:
		put64(p + S_META, s->section_count);
		put32(p + S_META + 8, s->stream_crc);
		break;
	case DEVSTATE_SEC_MIG2_DATA:
		put32(p + S_META, s->pass);
		put32(p + S_META + 4, s->mig2_flags);
		put64(p + S_META + 8, s->pos);
		break;
	default:
		break;
	}
	return S_META + (size_t)meta_len(s->type);
}

/* A bitmap payload must not set bits past page_nr. */
static bool bitmap_tail_clear(const uint8_t *p, uint64_t page_nr)
{
	uint64_t bytes = bitmap_bytes(page_nr), i;

	if (page_nr % 8 && (p[page_nr / 8] >> (page_nr % 8)))
		return false;
	for (i = page_nr / 8 + (page_nr % 8 != 0); i < bytes; i++)
		if (p[i])
			return false;
	return true;
}

static void bitmap_tail_mask(uint8_t *p, uint64_t page_nr)
{
	uint64_t bytes = bitmap_bytes(page_nr), i = page_nr / 8;

	if (page_nr % 8) {
		p[i] &= (uint8_t)((1u << (page_nr % 8)) - 1);
		i++;
	}
	for (; i < bytes; i++)
		p[i] = 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	/* p[0] == 0 and every byte equal to the one before it */
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

/*
 * Whether a payload is all zero, reading it once: compare it a page at a
 * time with a page of zeros that stays in L1 (libc's memcmp is
 * vectorized), stopping at the first non-zero page, which for real data
 * is the first.
 */
static bool payload_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zeros[4096];
	size_t i;

	for (i = 0; i + sizeof(zeros) <= len; i += sizeof(zeros))
		if (memcmp(p + i, zeros, sizeof(zeros)))
			return false;
	return all_zero(p + i, len - i);
}

/* ---------------------------------------------------------------- */
/* Payload decoding, shared by the decoder and devstate_section_redecode(). */

static int inflate_payload(z_stream *zs, const uint8_t *src, size_t slen,
			   uint8_t *dst, size_t dlen, char *why, size_t len)
{
	int rc;

	if (inflateReset(zs) != Z_OK) {
		snprintf(why, len, "cannot reset the inflate state");
		return -EIO;
	}
	zs->next_in = (Bytef *)(uintptr_t)src;
	zs->avail_in = (uInt)slen;
	zs->next_out = dst;
	zs->avail_out = (uInt)dlen;
	rc = inflate(zs, Z_FINISH);
	switch (rc) {
	case Z_STREAM_END:
		if (zs->avail_out) {
			snprintf(why, len, "deflate data decodes to %lu bytes, expected %zu",
				 zs->total_out, dlen);
			return -EINVAL;
		}
		if (zs->avail_in) {
			snprintf(why, len, "%u bytes after the end of the deflate data",
				 zs->avail_in);
			return -EINVAL;
		}
		return 0;
	case Z_OK:
	case Z_BUF_ERROR:
		if (!zs->avail_out)
			snprintf(why, len, "deflate data decodes to more than %zu bytes",
				 dlen);
		else
			snprintf(why, len, "deflate data truncated");
		return -EINVAL;
	case Z_NEED_DICT:
		snprintf(why, len, "deflate data needs a dictionary");
		return -EINVAL;
	case Z_MEM_ERROR:
		snprintf(why, len, "out of memory inflating");
		return -ENOMEM;
	default:
		snprintf(why, len, "corrupt deflate data (%s)",
			 zs->msg ? zs->msg : "unknown error");
		return -EINVAL;
	}
}

static int zstd_payload(ZSTD_DCtx *zd, const uint8_t *src, size_t slen,
			uint8_t *dst, size_t dlen, char *why, size_t len)
{
	size_t r;

	/* one-shot into a flat buffer: zstd needs no window beyond dst, so
	 * nothing is allocated for what the frame header claims */
	if (zd)
		r = ZSTD_decompressDCtx(zd, dst, dlen, src, slen);
	else
		r = ZSTD_decompress(dst, dlen, src, slen);
	if (ZSTD_isError(r)) {
		if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
			snprintf(why, len, "zstd data decodes to more than %zu bytes",
				 dlen);
		else if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
			snprintf(why, len, "out of memory decoding zstd data");
		else
			snprintf(why, len, "corrupt zstd data (%s)",
				 ZSTD_getErrorName(r));
		return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ?
		       -ENOMEM : -EINVAL;
	}
	if (r != dlen) {
		snprintf(why, len, "zstd data decodes to %zu bytes, expected %zu",
			 r, dlen);
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* Encoder. */

struct devstate_enc {
	devstate_write_fn write;
	void *opaque;
	enum devstate_codec codec;
	int level;
	struct libdeflate_compressor *lc;
	ZSTD_CCtx *zc;
	uint8_t *in;		/* our copy of a bitmap payload */
	size_t in_cap;
	uint8_t *out;		/* compressed payload */
	size_t out_cap;
	struct devstate_stream_header hdr;
	bool have_header;
	bool ended;
	int failed;		/* sticky: the stream is broken */
	struct order ord;
	uint64_t bytes;
	uint32_t stream_crc;	/* CRC of every byte written */
	char err[ERR_MAX];
};

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *p;

	if (need <= *cap)
		return 0;
	p = realloc(*buf, need);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = need;
	return 0;
}

int devstate_enc_new(struct devstate_enc **out, devstate_write_fn write,
		     void *opaque, enum devstate_codec codec, int level)
{
	struct devstate_enc *e;

	if (!out || !write)
		return -EINVAL;
	switch (codec) {
	case DEVSTATE_CODEC_RAW:
		level = 0;
		break;
	case DEVSTATE_CODEC_DEFLATE:
		if (!level)
			level = 1;
		if (level < 1 || level > 9)
			return -EINVAL;
		break;
	case DEVSTATE_CODEC_ZSTD:
		if (!level)
			level = 1;
		if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->write = write;
	e->opaque = opaque;
	e->codec = codec;
	e->level = level;
	if (codec == DEVSTATE_CODEC_DEFLATE) {
		/* libdeflate writes the zlib format, so plain zlib reads it;
		 * its level 1 is 3x zlib's at the same ratio (README) */
		e->lc = libdeflate_alloc_compressor(level);
		if (!e->lc) {
			free(e);
			return -ENOMEM;
		}
	} else if (codec == DEVSTATE_CODEC_ZSTD) {
		e->zc = ZSTD_createCCtx();
		if (!e->zc) {
			free(e);
			return -ENOMEM;
		}
	}
	*out = e;
	return 0;
}

void devstate_enc_free(struct devstate_enc *e)
{
	if (!e)
		return;
	if (e->lc)
		libdeflate_free_compressor(e->lc);
	ZSTD_freeCCtx(e->zc);
	free(e->in);
	free(e->out);
	free(e);
}

static int enc_fail(struct devstate_enc *e, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int enc_fail(struct devstate_enc *e, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->err, sizeof(e->err), fmt, ap);
	va_end(ap);
	return rc;
}

/* Hand len bytes to the callback; a failure breaks the stream for good. */
static int enc_put(struct devstate_enc *e, const void *buf, size_t len)
{
	int rc;

	if (!len)
		return 0;
	rc = e->write(e->opaque, buf, len);
	if (rc < 0) {
		e->failed = rc;
		return enc_fail(e, rc, "write of %zu bytes at stream offset %llu failed: %s",
				len, ull(e->bytes), strerror(-rc));
	}
	e->bytes += len;
	return 0;
}

static int enc_usable(struct devstate_enc *e, const char *what)
{
	if (e->failed)
		return e->failed;
	if (!e->have_header)
		return enc_fail(e, -EINVAL, "%s: no header written yet", what);
	if (e->ended)
		return enc_fail(e, -EINVAL, "%s: the stream has already ended",
				what);
	return 0;
}

int devstate_enc_header(struct devstate_enc *e,
			const struct devstate_stream_header *h)
{
	uint8_t buf[DEVSTATE_HEADER_FIXED + DEVSTATE_IDENT_MAX];
	struct devstate_stream_header n;
	char why[WHY_MAX];
	size_t len, r;
	uint32_t crc;
	int rc;

	if (!e || !h)
		return -EINVAL;
	if (e->failed)
		return e->failed;
	if (e->have_header)
		return enc_fail(e, -EINVAL, "header: already written");
	/* normalize: 0 means "this format's value" where there is only one */
	n = *h;
	if (!n.format_version)
		n.format_version = DEVSTATE_STREAM_FORMAT;
	if (!n.protocol)
		n.protocol = DEVSTATE_PROTOCOL_REGIONS;
	if (!n.page_size)
		n.page_size = DEVSTATE_PAGE_SIZE;
	/* a region without its cap carries no data: recorded as 0 */
	if (n.protocol == DEVSTATE_PROTOCOL_REGIONS &&
	    !(n.caps & DEVSTATE_CAP_DEVICE_MEMORY))
		n.region_len[DEVSTATE_REGION_MEMORY] = 0;
	if (n.protocol == DEVSTATE_PROTOCOL_REGIONS &&
	    !(n.caps & DEVSTATE_CAP_SYSTEM_MEMORY))
		n.region_len[DEVSTATE_REGION_BITMAP] = 0;
	if (!n.ident_len)
		n.ident_len = (uint32_t)strnlen(h->ident, sizeof(h->ident));
	rc = check_header(&n, why, sizeof(why));
	if (rc < 0)
		return enc_fail(e, rc, "header: %s", why);
	n.ident[n.ident_len] = '\0';

	len = DEVSTATE_HEADER_FIXED + n.ident_len;
	memcpy(buf + H_MAGIC, DEVSTATE_STREAM_MAGIC, 8);
	put16(buf + H_FORMAT, (uint16_t)n.format_version);
	put16(buf + H_LENGTH, (uint16_t)len);
	put32(buf + H_PROTOCOL, n.protocol);
	put32(buf + H_PROTO_VERSION, n.proto_version);
	put32(buf + H_CAPS, n.caps);
	put32(buf + H_PAGE_SIZE, n.page_size);
	put32(buf + H_FLAGS, n.flags);
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++)
		put64(buf + H_REGION_LEN + 8 * r, n.region_len[r]);
	put64(buf + H_CONFIG_SIZE, n.config_size);
	put16(buf + H_IDENT_LEN, (uint16_t)n.ident_len);
	memcpy(buf + H_IDENT, n.ident, n.ident_len);
	crc = devstate_crc32(0, buf, len - 4);
	put32(buf + len - 4, crc);

	rc = enc_put(e, buf, len);
	if (rc < 0)
		return rc;
	e->stream_crc = devstate_crc32(0, buf, len);
	e->hdr = n;
	e->have_header = true;
	return 0;
}

/* A bitmap: copied once, its bits past page_nr cleared in the copy. */
static void take_bitmap(struct devstate_enc *e, const uint8_t *src, size_t len,
			uint64_t page_nr)
{
	memcpy(e->in, src, len);
	bitmap_tail_mask(e->in, page_nr);
}

/* Compress src into e->out; the size, or 0 when not strictly smaller. */
static size_t compress_payload(struct devstate_enc *e, const uint8_t *src,
			       size_t len)
{
	size_t r;

	if (len < 2)
		return 0;
	if (e->codec == DEVSTATE_CODEC_DEFLATE)
		/* 0 when the output does not fit in len - 1 bytes */
		return libdeflate_zlib_compress(e->lc, src, len, e->out,
						len - 1);
	r = ZSTD_compressCCtx(e->zc, e->out, len - 1, src, len, e->level);
	return ZSTD_isError(r) ? 0 : r;
}

/*
 * Hand a raw payload to the sink straight from the caller's bytes (no
 * copy of ours), one piece at a time, each piece's CRC computed just
 * before the sink reads it, so the sink reads it from cache: the data
 * crosses the memory bus once.  The CRC covers exactly the bytes handed
 * over, even if a device mapping changes under us (the zero check before
 * it stops at the first non-zero page, so real data is read once, plus
 * one page).
 */
static int put_raw(struct devstate_enc *e, const uint8_t *src, size_t len,
		   uint32_t *crc)
{
	size_t off, n;
	int rc;

	for (off = 0; off < len; off += n) {
		n = len - off < SINK_PIECE ? len - off : SINK_PIECE;
		*crc = devstate_crc32(*crc, src + off, n);
		rc = enc_put(e, src + off, n);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Write one section: s has its type and meta filled in; data/len is the
 * payload (END: none).  Everything is checked before a byte goes out.
 */
static int enc_section(struct devstate_enc *e, struct devstate_section *s,
		       const void *data, size_t len, const char *what)
{
	uint8_t head[S_META + S_META_MAX], trailer[S_CRC_LEN];
	const uint8_t *payload = NULL, *src = data;
	uint32_t pcrc = 0, hcrc, scrc, full;
	char why[WHY_MAX];
	size_t hlen, clen = 0;
	bool stream_raw = false;
	int rc;

	rc = enc_usable(e, what);
	if (rc < 0)
		return rc;
	if (len && !data)
		return enc_fail(e, -EINVAL, "%s: no data", what);
	s->codec = DEVSTATE_CODEC_RAW;
	s->raw_len = len;
	s->stored_len = len;
	rc = check_section(&e->hdr, s, why, sizeof(why));
	if (rc == 0)
		rc = check_order(&e->ord, s, why, sizeof(why));
	if (rc < 0)
		return enc_fail(e, rc, "%s: %s", what, why);

	if (len && s->type == DEVSTATE_SEC_DIRTY_BITMAP) {
		/* small; its padding bits are masked in our copy */
		if (grow(&e->in, &e->in_cap, len) < 0)
			return enc_fail(e, -ENOMEM, "%s: out of memory for %zu bytes",
					what, len);
		take_bitmap(e, data, len, s->page_nr);
		src = e->in;
	}
	if (len && payload_zero(src, len)) {
		/* a marker, not the bytes */
		s->codec = DEVSTATE_CODEC_ZERO;
		s->stored_len = 0;
	} else if (len) {
		if (e->codec != DEVSTATE_CODEC_RAW) {
			if (grow(&e->out, &e->out_cap, len) < 0)
				return enc_fail(e, -ENOMEM, "%s: out of memory for %zu bytes",
						what, len);
			clen = compress_payload(e, src, len);
		}
		if (clen) {
			s->codec = e->codec;
			s->stored_len = clen;
			payload = e->out;
			pcrc = devstate_crc32(0, payload, clen);
		} else {
			stream_raw = true;
		}
	}

	hlen = section_put(head, s);
	hcrc = devstate_crc32(0, head, hlen);
	rc = enc_put(e, head, hlen);
	if (rc < 0)
		return rc;
	if (stream_raw) {
		/* the CRC continues from the head's over the payload */
		scrc = hcrc;
		rc = put_raw(e, src, len, &scrc);
	} else {
		/* CRC of head || payload without a second pass */
		scrc = devstate_crc32_combine(hcrc, pcrc, s->stored_len);
		rc = enc_put(e, payload, (size_t)s->stored_len);
	}
	put32(trailer, scrc);
	if (rc == 0)
		rc = enc_put(e, trailer, sizeof(trailer));
	if (rc < 0)
		return rc;
	full = devstate_crc32(scrc, trailer, sizeof(trailer));
	e->stream_crc = devstate_crc32_combine(e->stream_crc, full,
					       hlen + s->stored_len +
					       sizeof(trailer));
	order_commit(&e->ord, s);
	return 0;
}

int devstate_enc_memory(struct devstate_enc *e, uint32_t pass,
			uint64_t batch_size, uint64_t pos, const void *data,
			size_t len)
{
	struct devstate_section s;

	if (!e)
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_MEMORY;
	s.pass = pass;
	s.batch_size = batch_size;
	s.pos = pos;
	return enc_section(e, &s, data, len, "MEMORY");
}

int devstate_enc_config(struct devstate_enc *e, const void *data, size_t len)
{
	struct devstate_section s;

	if (!e)
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_CONFIG;
	return enc_section(e, &s, data, len, "CONFIG");
}

int devstate_enc_bitmap(struct devstate_enc *e, uint64_t start_page,
			uint64_t page_nr, const void *bitmap)
{
	struct devstate_section s;

	if (!e)
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_DIRTY_BITMAP;
	s.start_page = start_page;
	s.page_nr = page_nr;
	/* the length is checked against page_nr before data is touched;
	 * a page count over the limit is caught there too */
	return enc_section(e, &s, bitmap,
			   page_nr <= DEVSTATE_SECTION_MAX * 8 ?
			   (size_t)bitmap_bytes(page_nr) : SIZE_MAX,
			   "DIRTY_BITMAP");
}

int devstate_enc_mig2_data(struct devstate_enc *e, uint32_t pass,
			   uint32_t flags, uint64_t offset, const void *data,
			   size_t len)
{
	struct devstate_section s;

	if (!e)
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_MIG2_DATA;
	s.pass = pass;
	s.mig2_flags = flags;
	s.pos = offset;
	return enc_section(e, &s, data, len, "MIG2_DATA");
}

int devstate_enc_end(struct devstate_enc *e)
{
	struct devstate_section s;
	int rc;

	if (!e)
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.type = DEVSTATE_SEC_END;
	s.section_count = e->ord.sections;
	s.stream_crc = e->stream_crc;
	rc = enc_section(e, &s, NULL, 0, "END");
	if (rc == 0)
		e->ended = true;
	return rc;
}

uint64_t devstate_enc_bytes(const struct devstate_enc *e)
{
	return e ? e->bytes : 0;
}

uint64_t devstate_enc_sections(const struct devstate_enc *e)
{
	return e ? e->ord.sections : 0;
}

const char *devstate_enc_error(const struct devstate_enc *e)
{
	return e ? e->err : "no encoder";
}

/* ---------------------------------------------------------------- */
/* Decoder. */

enum dec_phase {
	PH_HEADER = 0,	/* up to and including ident_len */
	PH_HEADER_REST,	/* ident and header CRC */
	PH_SEC_FIXED,	/* the 24 fixed bytes of a section */
	PH_SEC_META,	/* its type-specific fields */
	PH_SEC_BODY,	/* payload and CRC */
	PH_SEC_HEAD,	/* reported SECTION_HEAD: pieces taken or not? */
	PH_SEC_PIECES,	/* payload, handed out in pieces */
	PH_SEC_CRC,	/* the CRC after a payload handed out in pieces */
	PH_DONE,	/* END verified */
	PH_FAILED
};

struct devstate_dec {
	enum dec_phase phase;
	uint8_t *buf;		/* the item being assembled */
	size_t cap;
	size_t have;		/* bytes of it in buf */
	size_t need;		/* bytes it needs in this phase */
	uint8_t *raw;		/* decoded payloads */
	size_t raw_cap;
	uint64_t offset;	/* bytes consumed */
	uint64_t item;		/* stream offset of the item in buf */
	uint32_t stream_crc;	/* CRC of every byte before the item */
	int rc;			/* sticky error */
	bool have_header;
	struct order ord;
	struct devstate_stream_header hdr;
	struct devstate_section sec;
	z_stream zs;
	bool zs_init;
	ZSTD_DCtx *zd;
	/* raw MEMORY payloads in pieces (devstate_dec_set_pieces) */
	bool pieces_on;
	bool take;		/* the caller took this section's pieces */
	uint32_t crc;		/* of the section so far */
	uint64_t left;		/* payload bytes still to hand out */
	const uint8_t *piece;	/* the last piece, in the caller's buffer */
	size_t piece_len;
	uint64_t piece_at;	/* its offset in the payload */
	char err[ERR_MAX];
};

#define DEC_BUF_MIN	256	/* a header, a section's head */

int devstate_dec_new(struct devstate_dec **out)
{
	struct devstate_dec *d;

	if (!out)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->buf = malloc(DEC_BUF_MIN);
	if (!d->buf) {
		free(d);
		return -ENOMEM;
	}
	d->cap = DEC_BUF_MIN;
	d->phase = PH_HEADER;
	d->need = H_IDENT;
	*out = d;
	return 0;
}

void devstate_dec_free(struct devstate_dec *d)
{
	if (!d)
		return;
	if (d->zs_init)
		inflateEnd(&d->zs);
	ZSTD_freeDCtx(d->zd);
	free(d->buf);
	free(d->raw);
	free(d);
}

static int dec_fail(struct devstate_dec *d, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int dec_fail(struct devstate_dec *d, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	d->rc = rc;
	d->phase = PH_FAILED;
	return rc;
}

/* The header is complete up to ident_len: find its length. */
static int dec_header_start(struct devstate_dec *d)
{
	const uint8_t *p = d->buf;
	uint32_t n = get16(p + H_IDENT_LEN);

	if (get16(p + H_LENGTH) != DEVSTATE_HEADER_FIXED + n) {
		if (n > DEVSTATE_IDENT_MAX)
			return dec_fail(d, -E2BIG, "header: ident length %" PRIu32 " over the limit of %u",
					n, DEVSTATE_IDENT_MAX);
		return dec_fail(d, -EINVAL, "header: length %u does not match ident length %" PRIu32 " (expected %u)",
				get16(p + H_LENGTH), n,
				DEVSTATE_HEADER_FIXED + n);
	}
	if (n > DEVSTATE_IDENT_MAX)
		return dec_fail(d, -E2BIG, "header: ident length %" PRIu32 " over the limit of %u",
				n, DEVSTATE_IDENT_MAX);
	d->phase = PH_HEADER_REST;
	d->need = DEVSTATE_HEADER_FIXED + n;
	return 0;
}

static int dec_header_done(struct devstate_dec *d)
{
	struct devstate_stream_header *h = &d->hdr;
	const uint8_t *p = d->buf;
	uint32_t stored, crc;
	char why[WHY_MAX];
	unsigned r;
	int rc;

	stored = get32(p + d->need - 4);
	crc = devstate_crc32(0, p, d->need - 4);
	if (stored != crc)
		return dec_fail(d, -EBADMSG, "header: CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
				stored, crc);
	memset(h, 0, sizeof(*h));
	h->format_version = get16(p + H_FORMAT);
	h->protocol = get32(p + H_PROTOCOL);
	h->proto_version = get32(p + H_PROTO_VERSION);
	h->caps = get32(p + H_CAPS);
	h->page_size = get32(p + H_PAGE_SIZE);
	h->flags = get32(p + H_FLAGS);
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++)
		h->region_len[r] = get64(p + H_REGION_LEN + 8 * r);
	h->config_size = get64(p + H_CONFIG_SIZE);
	h->ident_len = get16(p + H_IDENT_LEN);
	memcpy(h->ident, p + H_IDENT, h->ident_len);
	h->ident[h->ident_len] = '\0';
	rc = check_header(h, why, sizeof(why));
	if (rc < 0)
		return dec_fail(d, rc, "header: %s", why);
	d->stream_crc = devstate_crc32(0, p, d->need);
	d->have_header = true;
	d->phase = PH_SEC_FIXED;
	d->need = S_META;
	return DEVSTATE_DEC_HEADER;
}

static int dec_sec_fixed(struct devstate_dec *d)
{
	struct devstate_section *s = &d->sec;
	const uint8_t *p = d->buf;
	int m;

	memset(s, 0, sizeof(*s));
	s->offset = d->item;
	s->type = get32(p + S_TYPE);
	s->codec = p[S_CODEC];
	s->raw_len = get64(p + S_RAW_LEN);
	s->stored_len = get64(p + S_STORED_LEN);
	m = meta_len(s->type);
	if (m < 0)
		return dec_fail(d, -EINVAL, "section at offset %llu: unknown section type %" PRIu32,
				ull(d->item), s->type);
	if (s->codec > DEVSTATE_CODEC_ZERO)
		return dec_fail(d, -EINVAL, "section at offset %llu (%s): unknown codec %" PRIu32,
				ull(d->item), type_name(s->type), s->codec);
	d->phase = PH_SEC_META;
	d->need = S_META + (size_t)m;
	return 0;
}

static int dec_sec_meta(struct devstate_dec *d)
{
	struct devstate_section *s = &d->sec;
	char why[WHY_MAX];
	uint64_t total;
	int rc;

	meta_parse(s, d->buf + S_META);
	rc = check_section(&d->hdr, s, why, sizeof(why));
	if (rc < 0)
		return dec_fail(d, rc, "section at offset %llu (%s): %s",
				ull(d->item), type_name(s->type), why);
	/* bounded by DEVSTATE_SECTION_MAX now; the buffer grows as the
	 * bytes arrive (devstate_dec_feed), so a short stream that claims a
	 * long section costs only what it sent */
	total = d->need + s->stored_len + S_CRC_LEN;
	s->total_len = total;
	if (d->pieces_on && s->type == DEVSTATE_SEC_MEMORY &&
	    s->codec == DEVSTATE_CODEC_RAW && s->raw_len) {
		/* the caller says at its next feed whether it takes the
		 * payload in pieces (dec_sec_head) */
		d->take = false;
		d->phase = PH_SEC_HEAD;
		return DEVSTATE_DEC_SECTION_HEAD;
	}
	d->phase = PH_SEC_BODY;
	d->need = (size_t)total;
	return 0;
}

/* The head of a raw MEMORY section is in buf, reported: go on whole or
 * in pieces. */
static int dec_sec_head(struct devstate_dec *d)
{
	if (!d->take) {
		d->phase = PH_SEC_BODY;
		d->need = (size_t)d->sec.total_len;
		return 0;
	}
	d->crc = devstate_crc32(0, d->buf, d->need);
	d->left = d->sec.raw_len;
	d->piece = NULL;
	d->piece_len = 0;
	d->piece_at = 0;
	d->phase = PH_SEC_PIECES;
	return 0;
}

static int dec_payload(struct devstate_dec *d, const uint8_t *src)
{
	struct devstate_section *s = &d->sec;
	size_t raw = (size_t)s->raw_len;
	char why[WHY_MAX];
	int rc;

	if (!raw)
		return 0;
	if (s->codec == DEVSTATE_CODEC_RAW) {
		s->data = src;
		return 0;
	}
	if (grow(&d->raw, &d->raw_cap, raw) < 0)
		return dec_fail(d, -ENOMEM, "section at offset %llu (%s): out of memory for %zu bytes",
				ull(d->item), type_name(s->type), raw);
	switch (s->codec) {
	case DEVSTATE_CODEC_ZERO:
		memset(d->raw, 0, raw);
		rc = 0;
		break;
	case DEVSTATE_CODEC_DEFLATE:
		if (!d->zs_init) {
			if (inflateInit(&d->zs) != Z_OK)
				return dec_fail(d, -ENOMEM, "section at offset %llu: out of memory for inflate",
						ull(d->item));
			d->zs_init = true;
		}
		rc = inflate_payload(&d->zs, src, (size_t)s->stored_len,
				     d->raw, raw, why, sizeof(why));
		break;
	default:
		if (!d->zd) {
			d->zd = ZSTD_createDCtx();
			if (!d->zd)
				return dec_fail(d, -ENOMEM, "section at offset %llu: out of memory for zstd",
						ull(d->item));
		}
		rc = zstd_payload(d->zd, src, (size_t)s->stored_len, d->raw,
				  raw, why, sizeof(why));
		break;
	}
	if (rc < 0)
		return dec_fail(d, rc, "section at offset %llu (%s): %s",
				ull(d->item), type_name(s->type), why);
	s->data = d->raw;
	return 0;
}

/* A whole section is in buf (PH_SEC_BODY), or its head and CRC with the
 * payload handed out in pieces (PH_SEC_CRC, d->crc covering both). */
static int dec_sec_body(struct devstate_dec *d)
{
	struct devstate_section *s = &d->sec;
	const uint8_t *p = d->buf;
	size_t hlen = S_META + (size_t)meta_len(s->type);
	bool pieces = d->phase == PH_SEC_CRC;
	uint32_t stored, crc;
	char why[WHY_MAX];
	int rc;

	stored = get32(p + d->need - S_CRC_LEN);
	crc = pieces ? d->crc : devstate_crc32(0, p, d->need - S_CRC_LEN);
	if (stored != crc)
		return dec_fail(d, -EBADMSG, "section at offset %llu (%s): CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
				ull(d->item), type_name(s->type), stored, crc);
	if (!reserved_clear(s->type, p))
		return dec_fail(d, -EINVAL, "section at offset %llu (%s): reserved field not zero",
				ull(d->item), type_name(s->type));
	rc = check_order(&d->ord, s, why, sizeof(why));
	if (rc < 0)
		return dec_fail(d, rc, "section at offset %llu (%s): %s",
				ull(d->item), type_name(s->type), why);
	if (s->type == DEVSTATE_SEC_END) {
		if (s->section_count != d->ord.sections)
			return dec_fail(d, -EINVAL, "END section at offset %llu: section count %llu, but %llu sections precede it",
					ull(d->item), ull(s->section_count),
					ull(d->ord.sections));
		if (s->stream_crc != d->stream_crc)
			return dec_fail(d, -EBADMSG, "END section at offset %llu: stream CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
					ull(d->item), s->stream_crc,
					d->stream_crc);
		d->phase = PH_DONE;
		return DEVSTATE_DEC_END;
	}
	if (pieces) {
		s->data = NULL;
		s->in_pieces = 1;
	} else {
		rc = dec_payload(d, p + hlen);
		if (rc < 0)
			return rc;
	}
	if (s->type == DEVSTATE_SEC_DIRTY_BITMAP &&
	    !bitmap_tail_clear(s->data, s->page_nr))
		return dec_fail(d, -EINVAL, "section at offset %llu (DIRTY_BITMAP): bits set past page count %llu",
				ull(d->item), ull(s->page_nr));
	order_commit(&d->ord, s);
	crc = devstate_crc32(crc, p + d->need - S_CRC_LEN, S_CRC_LEN);
	d->stream_crc = devstate_crc32_combine(d->stream_crc, crc,
					       s->total_len);
	d->phase = PH_SEC_FIXED;
	d->need = S_META;
	return DEVSTATE_DEC_SECTION;
}

/* buf holds d->need bytes of the current item: act on them.  Returns an
 * event, 0 to go on reading, or a negative errno. */
static int dec_step(struct devstate_dec *d)
{
	switch (d->phase) {
	case PH_HEADER:
		return dec_header_start(d);
	case PH_HEADER_REST:
		return dec_header_done(d);
	case PH_SEC_FIXED:
		return dec_sec_fixed(d);
	case PH_SEC_META:
		return dec_sec_meta(d);
	case PH_SEC_BODY:
	case PH_SEC_CRC:
		return dec_sec_body(d);
	case PH_SEC_HEAD:
		return dec_sec_head(d);
	default:
		return dec_fail(d, -EINVAL, "decoder in an impossible state");
	}
}

int devstate_dec_feed(struct devstate_dec *d, const void *buf, size_t len,
		      size_t *used)
{
	const uint8_t *in = buf;
	size_t done = 0, n;
	int rc;

	if (used)
		*used = 0;
	if (!d || !used || (!buf && len))
		return -EINVAL;
	if (d->phase == PH_FAILED)
		return d->rc;
	if (d->phase == PH_DONE) {
		if (len)
			return dec_fail(d, -EINVAL, "byte after END at offset %llu",
					ull(d->offset));
		return DEVSTATE_DEC_END;
	}
	for (;;) {
		if (d->phase == PH_SEC_PIECES) {
			/* straight from the caller's buffer, CRC'd now so
			 * the caller's copy reads it from cache */
			if (done == len)
				break;
			n = len - done;
			if (n > d->left)
				n = (size_t)d->left;
			if (n > DEVSTATE_DEC_PIECE_MAX)
				n = DEVSTATE_DEC_PIECE_MAX;
			d->piece = in + done;
			d->piece_len = n;
			d->piece_at = d->sec.raw_len - d->left;
			d->crc = devstate_crc32(d->crc, in + done, n);
			d->left -= n;
			done += n;
			d->offset += n;
			*used = done;
			if (!d->left) {
				d->phase = PH_SEC_CRC;
				d->need = d->have + S_CRC_LEN;
			}
			return DEVSTATE_DEC_PIECE;
		}
		if (d->have == d->need) {
			rc = dec_step(d);
			if (d->phase == PH_SEC_FIXED || d->phase == PH_DONE)
				d->have = 0;	/* the next item starts */
			if (rc != 0)
				return rc;
			continue;
		}
		if (done == len)
			break;
		if (d->have == 0)
			d->item = d->offset;
		n = d->need - d->have;
		if (n > len - done)
			n = len - done;
		if (d->have + n > d->cap) {
			/* double, but never past what this item needs */
			size_t want = d->cap * 2;

			if (want < d->have + n)
				want = d->have + n;
			if (want > d->need)
				want = d->need;
			if (grow(&d->buf, &d->cap, want) < 0)
				return dec_fail(d, -ENOMEM, "section at offset %llu: out of memory for %zu bytes",
						ull(d->item), want);
		}
		memcpy(d->buf + d->have, in + done, n);
		d->have += n;
		done += n;
		d->offset += n;
		*used = done;
		/* refuse other files at once rather than after 74 bytes */
		if (d->phase == PH_HEADER && d->have >= 8 &&
		    d->have - n < 8 &&
		    memcmp(d->buf, DEVSTATE_STREAM_MAGIC, 8))
			return dec_fail(d, -EINVAL, "header: bad magic (not a devstate stream)");
	}
	return DEVSTATE_DEC_NEED_MORE;
}

void devstate_dec_set_pieces(struct devstate_dec *d, int on)
{
	if (d)
		d->pieces_on = on != 0;
}

void devstate_dec_take_pieces(struct devstate_dec *d)
{
	if (d && d->phase == PH_SEC_HEAD)
		d->take = true;
}

const uint8_t *devstate_dec_piece(const struct devstate_dec *d, size_t *len,
				  uint64_t *at)
{
	if (len)
		*len = d ? d->piece_len : 0;
	if (at)
		*at = d ? d->piece_at : 0;
	return d ? d->piece : NULL;
}

size_t devstate_dec_capacity(const struct devstate_dec *d)
{
	return d ? d->cap : 0;
}

const struct devstate_stream_header *devstate_dec_header(const struct devstate_dec *d)
{
	return d && d->have_header ? &d->hdr : NULL;
}

const struct devstate_section *devstate_dec_section(const struct devstate_dec *d)
{
	return d ? &d->sec : NULL;
}

const char *devstate_dec_error(const struct devstate_dec *d)
{
	return d ? d->err : "no decoder";
}

uint64_t devstate_dec_offset(const struct devstate_dec *d)
{
	return d ? d->offset : 0;
}

/* ---------------------------------------------------------------- */
/* Re-decoding a verified section. */

int devstate_section_redecode(const struct devstate_section *s,
			      const void *buf, void *out, char *err,
			      size_t errlen)
{
	struct devstate_section t;
	const uint8_t *p = buf;
	char why[WHY_MAX];
	z_stream zs;
	uint32_t stored, crc;
	size_t hlen;
	int m, rc;

	if (!s || !buf || (s->raw_len && !out) ||
	    s->total_len > DEVSTATE_SECTION_MAX + S_META + S_META_MAX + S_CRC_LEN)
		return -EINVAL;
	m = meta_len(s->type);
	if (m < 0 || s->total_len < S_META + (uint64_t)m + S_CRC_LEN)
		return -EINVAL;
	hlen = S_META + (size_t)m;
	memset(&t, 0, sizeof(t));
	t.type = get32(p + S_TYPE);
	t.codec = p[S_CODEC];
	t.raw_len = get64(p + S_RAW_LEN);
	t.stored_len = get64(p + S_STORED_LEN);
	if (t.type == s->type)
		meta_parse(&t, p + S_META);
	if (t.type != s->type || t.codec != s->codec ||
	    t.raw_len != s->raw_len || t.stored_len != s->stored_len ||
	    hlen + t.stored_len + S_CRC_LEN != s->total_len ||
	    t.pass != s->pass || t.batch_size != s->batch_size ||
	    t.pos != s->pos || t.start_page != s->start_page ||
	    t.page_nr != s->page_nr || t.mig2_flags != s->mig2_flags) {
		devstate_msg(err, errlen, "section at offset %llu (%s): changed since it was verified",
			     ull(s->offset), type_name(s->type));
		return -EINVAL;
	}
	stored = get32(p + s->total_len - S_CRC_LEN);
	crc = devstate_crc32(0, p, (size_t)s->total_len - S_CRC_LEN);
	if (stored != crc) {
		devstate_msg(err, errlen, "section at offset %llu (%s): CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
			     ull(s->offset), type_name(s->type), stored, crc);
		return -EBADMSG;
	}
	if (!s->raw_len)
		return 0;
	switch (s->codec) {
	case DEVSTATE_CODEC_RAW:
		memcpy(out, p + hlen, (size_t)s->raw_len);
		return 0;
	case DEVSTATE_CODEC_ZERO:
		memset(out, 0, (size_t)s->raw_len);
		return 0;
	case DEVSTATE_CODEC_DEFLATE:
		memset(&zs, 0, sizeof(zs));
		if (inflateInit(&zs) != Z_OK)
			return -ENOMEM;
		rc = inflate_payload(&zs, p + hlen, (size_t)s->stored_len, out,
				     (size_t)s->raw_len, why, sizeof(why));
		inflateEnd(&zs);
		break;
	case DEVSTATE_CODEC_ZSTD:
		rc = zstd_payload(NULL, p + hlen, (size_t)s->stored_len, out,
				  (size_t)s->raw_len, why, sizeof(why));
		break;
	default:
		return -EINVAL;
	}
	if (rc < 0)
		devstate_msg(err, errlen, "section at offset %llu (%s): %s",
			     ull(s->offset), type_name(s->type), why);
	return rc;
}

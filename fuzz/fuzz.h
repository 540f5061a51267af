/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared helpers for the libFuzzer targets: a reader that hands out the
 * fuzzer's bytes as the answers of a device or the sizes of pieces (when
 * the bytes run out every answer is 0, so each input is a finite script),
 * a save sink and its stream check, and the CRC fixer.  Include
 * "config.h" first.
 */
#ifndef DEVSTATE_FUZZ_H
#define DEVSTATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>

#include "libdevstate/stream.h"

struct fz {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

static inline void fz_init(struct fz *z, const uint8_t *p, size_t len)
{
	z->p = p;
	z->len = len;
	z->pos = 0;
}

static inline size_t fz_left(const struct fz *z)
{
	return z->len - z->pos;
}

static inline uint8_t fz_u8(struct fz *z)
{
	return z->pos < z->len ? z->p[z->pos++] : 0;
}

static inline uint32_t fz_u32(struct fz *z)
{
	uint32_t v = 0;
	unsigned i;

	for (i = 0; i < 4; i++)
		v |= (uint32_t)fz_u8(z) << (8 * i);
	return v;
}

static inline uint64_t fz_u64(struct fz *z)
{
	return (uint64_t)fz_u32(z) | (uint64_t)fz_u32(z) << 32;
}

/* A size that likes the edges: 0, 1, powers of two and their
 * neighbours, small values, or anything. */
static inline uint64_t fz_size(struct fz *z)
{
	uint8_t k = fz_u8(z);

	switch (k >> 5) {
	case 0:
		return k & 31;
	case 1: {
		uint64_t p = 1ull << (fz_u8(z) & 63);

		return p + (uint64_t)((int)(k & 3) - 1);
	}
	case 2:
		return (uint64_t)(k & 31) * 4096;
	case 3:
		return fz_u64(z);
	default:
		return (uint64_t)(k & 31) * 64 + 8;
	}
}

/* Abort with a message: a broken invariant is a finding. */
#define FZ_ASSERT(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A scripted device's error for one call, or 0: one byte of z per call;
 * a byte >= 0xf0 picks one of the n errnos in errs.  Out of bytes: the
 * device is gone (-EIO).  Either error leaves a sentence in err. */
static inline int fz_device_err(struct fz *z, const int *errs, size_t n,
				char *err, size_t errlen)
{
	uint8_t b;

	if (!fz_left(z)) {
		if (err && errlen)
			snprintf(err, errlen, "hostile: out of script");
		return -EIO;
	}
	b = fz_u8(z);
	if (b < 0xf0)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "hostile: scripted error");
	return -errs[(b - 0xf0) % n];
}

/* A save session's write callback: keeps every byte, at most
 * FZ_STREAM_MAX (then -ENOSPC, a failure the session must survive). */
#define FZ_STREAM_MAX	(16u << 20)

struct fz_sink {
	uint8_t *buf;
	size_t len, cap;
};

static inline int fz_sink_write(void *opaque, const void *buf, size_t len)
{
	struct fz_sink *s = opaque;

	if (len > FZ_STREAM_MAX - s->len)
		return -ENOSPC;
	if (s->len + len > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		uint8_t *p;

		while (cap < s->len + len)
			cap *= 2;
		p = realloc(s->buf, cap);
		if (!p)
			return -ENOMEM;
		s->buf = p;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

/* What a completed save wrote decodes whole, to END, with a header of
 * protocol family `protocol`. */
static inline void fz_check_stream(const struct fz_sink *s, uint32_t protocol)
{
	struct devstate_dec *d;
	size_t off = 0, used;
	int rc = 0;

	FZ_ASSERT(devstate_dec_new(&d) == 0);
	while (off < s->len) {
		rc = devstate_dec_feed(d, s->buf + off, s->len - off, &used);
		if (rc < 0)
			break;
		if (rc == DEVSTATE_DEC_HEADER)
			FZ_ASSERT(devstate_dec_header(d)->protocol == protocol);
		off += used;
	}
	if (rc != DEVSTATE_DEC_END)
		fprintf(stderr, "stream: %s\n", devstate_dec_error(d));
	FZ_ASSERT(rc == DEVSTATE_DEC_END && off == s->len);
	devstate_dec_free(d);
}

/*
 * Make a mutated stream pass its CRCs, so that the fuzzer reaches the
 * checks behind them: walk p[0, n) as the format lays it out (stream.h)
 * and rewrite the header CRC, every section CRC, and END's section count
 * and stream CRC.  Stops at the first item that does not fit.  Uses the
 * library's CRC only (an independent walker of the layout).
 */
uint32_t devstate_crc32(uint32_t crc, const void *buf, size_t len);

static inline void fz_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint64_t fz_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

static inline void fz_fix_crcs(uint8_t *p, size_t n)
{
	size_t off, hlen, sections = 0;

	if (n < 78)
		return;
	hlen = (size_t)fz_get(p + 10, 2);
	if (hlen < 78 || hlen > n)
		return;
	fz_put32(p + hlen - 4, devstate_crc32(0, p, hlen - 4));
	for (off = hlen; n - off >= 24; sections++) {
		uint32_t type = (uint32_t)fz_get(p + off, 4);
		uint64_t stored = fz_get(p + off + 16, 8), total;
		size_t meta = type == 1 ? 24 :
			      type == 3 || type == 4 || type == 5 ? 16 : 0;

		if (stored > n)
			return;
		total = 24 + meta + stored + 4;
		if (total > n - off)
			return;
		if (type == 4) {
			uint64_t c = sections;
			unsigned i;

			for (i = 0; i < 8; i++)
				p[off + 24 + i] = (uint8_t)(c >> (8 * i));
			fz_put32(p + off + 32, devstate_crc32(0, p, off));
		}
		fz_put32(p + off + total - 4,
			 devstate_crc32(0, p + off, (size_t)total - 4));
		off += (size_t)total;
	}
}

#endif

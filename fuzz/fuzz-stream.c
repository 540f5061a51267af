/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target 1: the stream / snapshot reader.
 *
 * The input is a stream.  It is decoded three ways and the results must
 * agree:
 *   - whole: fed in one piece;
 *   - piecewise: fed in pieces whose sizes come from a PRNG seeded by the
 *     input (1 byte, odd sizes, big pieces, empty feeds);
 *   - as a snapshot file: devstate_verify_file() and the file transport
 *     ("file:PATH"), which indexes the file and re-decodes sections from
 *     it; a snapshot that opens is then replayed through a whole save
 *     session into a decoder.
 * Every decoded payload is read in full (ASan sees any over-read) and
 * re-decoded with devstate_section_redecode() from the input bytes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devstate.h"
#include "libdevstate/stream.h"
#include "fuzz/fuzz.h"

struct outcome {
	int rc;			/* last feed result: END or < 0 */
	uint64_t offset;	/* bytes consumed */
	uint32_t digest;	/* CRC over what was reported */
	uint64_t sections;
};

static uint32_t mix(uint32_t crc, const void *p, size_t n)
{
	return devstate_crc32(crc, p, n);
}

static uint32_t report(uint32_t crc, struct devstate_dec *d, int ev,
		       const uint8_t *input, bool whole,
		       const uint8_t *gathered)
{
	const struct devstate_section *s = devstate_dec_section(d);
	const uint8_t *payload = s->in_pieces ? gathered : s->data;
	uint64_t v[8];

	crc = mix(crc, &ev, sizeof(ev));
	if (ev == DEVSTATE_DEC_HEADER) {
		const struct devstate_stream_header *h = devstate_dec_header(d);

		FZ_ASSERT(h);
		FZ_ASSERT(h->ident_len <= DEVSTATE_IDENT_MAX);
		FZ_ASSERT(strlen(h->ident) <= h->ident_len);
		v[0] = h->proto_version;
		v[1] = h->caps;
		v[2] = h->config_size;
		v[3] = h->region_len[DEVSTATE_REGION_MEMORY];
		return mix(crc, v, 4 * sizeof(v[0]));
	}
	if (ev != DEVSTATE_DEC_SECTION)
		return crc;
	FZ_ASSERT(s->raw_len <= DEVSTATE_SECTION_MAX);
	FZ_ASSERT(!s->raw_len == !payload);
	FZ_ASSERT(!s->in_pieces || !s->data);
	v[0] = s->type;
	v[1] = s->raw_len;
	v[2] = s->offset;
	v[3] = s->total_len;
	v[4] = s->pos;
	v[5] = s->start_page;
	v[6] = s->page_nr;
	v[7] = s->pass;
	crc = mix(crc, v, sizeof(v));
	if (s->raw_len)
		crc = mix(crc, payload, (size_t)s->raw_len);
	if (whole && s->raw_len) {
		/* the section's bytes are in the input at its offset */
		uint8_t *out = malloc((size_t)s->raw_len);
		char err[256];

		FZ_ASSERT(out);
		FZ_ASSERT(devstate_section_redecode(s, input + s->offset, out,
						    err, sizeof(err)) == 0);
		FZ_ASSERT(!memcmp(out, payload, (size_t)s->raw_len));
		free(out);
	}
	return crc;
}

/* pieces: raw MEMORY payloads taken in pieces (the load session's
 * zero-copy path), gathered so the outcome compares with the others */
static void run(const uint8_t *data, size_t size, uint64_t seed,
		bool pieces, struct outcome *o)
{
	struct devstate_dec *d;
	size_t off = 0;
	int rc = DEVSTATE_DEC_NEED_MORE;
	bool ended = false;
	uint8_t *gathered = NULL;
	uint64_t glen = 0;

	memset(o, 0, sizeof(*o));
	FZ_ASSERT(devstate_dec_new(&d) == 0);
	devstate_dec_set_pieces(d, pieces);
	while (off < size || (seed && rc == DEVSTATE_DEC_NEED_MORE && off == size)) {
		size_t piece = size - off, used;

		if (seed) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			switch (seed % 4) {
			case 0:
				piece = 1;
				break;
			case 1:
				piece = (size_t)(seed >> 8) % 97;
				break;
			case 2:
				piece = (size_t)(seed >> 8) % 4099;
				break;
			}
			if (piece > size - off)
				piece = size - off;
		}
		rc = devstate_dec_feed(d, data + off, piece, &used);
		FZ_ASSERT(used <= piece);
		off += used;
		if (rc < 0)
			break;
		if (rc == DEVSTATE_DEC_NEED_MORE)
			FZ_ASSERT(used == piece);
		if (rc == DEVSTATE_DEC_SECTION_HEAD) {
			const struct devstate_section *s =
				devstate_dec_section(d);

			FZ_ASSERT(pieces && s->type == DEVSTATE_SEC_MEMORY &&
				  s->raw_len && s->raw_len <= DEVSTATE_SECTION_MAX);
			devstate_dec_take_pieces(d);
			free(gathered);
			gathered = malloc((size_t)s->raw_len);
			FZ_ASSERT(gathered);
			glen = 0;
			continue;
		}
		if (rc == DEVSTATE_DEC_PIECE) {
			uint64_t at;
			size_t n;
			const uint8_t *p = devstate_dec_piece(d, &n, &at);

			FZ_ASSERT(gathered && at == glen && n &&
				  n <= DEVSTATE_DEC_PIECE_MAX &&
				  at + n <= devstate_dec_section(d)->raw_len);
			FZ_ASSERT(p >= data && p + n <= data + size);
			memcpy(gathered + at, p, n);
			glen += n;
			continue;
		}
		/* a feed after END reports END again (0 bytes) or fails */
		if (rc > 0 && !(rc == DEVSTATE_DEC_END && ended))
			o->digest = report(o->digest, d, rc, data,
					   !seed && !pieces, gathered);
		ended |= rc == DEVSTATE_DEC_END;
		if (rc == DEVSTATE_DEC_SECTION)
			o->sections++;
		if (off == size && rc == DEVSTATE_DEC_NEED_MORE)
			break;
		if (rc == DEVSTATE_DEC_END && off == size)
			break;
	}
	if (rc >= 0 && off == size && rc != DEVSTATE_DEC_END) {
		/* an empty feed changes nothing */
		size_t used;

		rc = devstate_dec_feed(d, data, 0, &used);
		FZ_ASSERT(used == 0);
	}
	FZ_ASSERT(rc < 0 || *devstate_dec_error(d) == '\0' || rc >= 0);
	if (rc < 0)
		FZ_ASSERT(devstate_dec_error(d)[0] != '\0');
	o->rc = rc;
	o->offset = devstate_dec_offset(d);
	devstate_dec_free(d);
	free(gathered);
}

static int sink(void *opaque, const void *buf, size_t len)
{
	size_t used;
	int rc;

	while (len) {
		rc = devstate_dec_feed(opaque, buf, len, &used);
		if (rc < 0)
			return rc;
		buf = (const uint8_t *)buf + used;
		len -= used;
	}
	return 0;
}

/* Replay a snapshot that opened as a device through a save session; the
 * stream it produces must decode. */
static void replay(struct devstate_device *dev)
{
	struct devstate_save *s;
	struct devstate_dec *d;
	uint64_t pending, bm[4] = { 0 };
	int i, rc;

	FZ_ASSERT(devstate_dec_new(&d) == 0);
	if (devstate_save_new(&s, dev, NULL, sink, d) < 0) {
		devstate_dec_free(d);
		return;
	}
	rc = devstate_save_setup(s);
	for (i = 0; rc == 0 && i < 3; i++) {
		rc = devstate_save_pending(s, &pending);
		if (rc == 0)
			rc = devstate_save_iterate(s);
	}
	if (rc == 0 && (devstate_device_caps(dev) & DEVSTATE_CAP_SYSTEM_MEMORY))
		rc = devstate_save_log_sync(s, 0, 200, bm);
	if (rc == 0)
		rc = devstate_save_complete(s);
	if (rc == 0) {
		size_t used;

		FZ_ASSERT(devstate_dec_feed(d, NULL, 0, &used) ==
			  DEVSTATE_DEC_END);
		rc = devstate_save_cleanup(s);
	}
	devstate_save_free(s);
	devstate_dec_free(d);
}

static char path[64];
static int fd = -1;

static void as_file(const uint8_t *data, size_t size,
		    const struct outcome *whole)
{
	struct devstate_verify_report rep;
	struct devstate_device *dev;
	struct devstate_region_info ri;
	char err[512], uri[80];
	uint64_t cs;
	int rc, r;

	if (fd < 0) {
		snprintf(path, sizeof(path), "/tmp/devstate-fuzz-%d.snap",
			 (int)getpid());
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		FZ_ASSERT(fd >= 0);
	}
	FZ_ASSERT(ftruncate(fd, 0) == 0);
	FZ_ASSERT(pwrite(fd, data, size, 0) == (ssize_t)size);

	rc = devstate_verify_file(path, &rep, err, sizeof(err));
	/* a sound snapshot is exactly a stream that decodes to END and
	 * ends there */
	FZ_ASSERT((rc == 0) ==
		  (whole->rc == DEVSTATE_DEC_END && whole->offset == size));
	if (rc < 0)
		FZ_ASSERT(err[0]);

	snprintf(uri, sizeof(uri), "file:%s", path);
	rc = devstate_device_open(&dev, uri, DEVSTATE_OPEN_INSPECT, err,
				  sizeof(err));
	if (rc < 0) {
		FZ_ASSERT(err[0]);
		return;
	}
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++)
		devstate_device_region(dev, (enum devstate_region)r, &ri);
	devstate_device_config_size(dev, &cs);
	if (devstate_device_blocker(dev, NULL) == DEVSTATE_BLOCKER_NONE)
		replay(dev);
	devstate_device_free(dev);
}

static void one(const uint8_t *data, size_t size)
{
	struct outcome whole, piece, zc;
	uint64_t seed;

	run(data, size, 0, false, &whole);
	seed = devstate_crc32(0, data, size) | 1ull << 40;
	run(data, size, seed, false, &piece);
	run(data, size, seed, true, &zc);
	FZ_ASSERT(zc.rc == piece.rc && zc.offset == piece.offset &&
		  zc.sections == piece.sections && zc.digest == piece.digest);
	FZ_ASSERT(whole.rc == piece.rc);
	/* where a failure is noticed may depend on the pieces (a bad
	 * magic is caught after 8 bytes or after a whole header) */
	FZ_ASSERT(whole.rc < 0 || whole.offset == piece.offset);
	FZ_ASSERT(whole.sections == piece.sections);
	FZ_ASSERT(whole.digest == piece.digest);
	as_file(data, size, &whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;

	one(data, size);
	/* and once more with every CRC made right, to get past them */
	fixed = malloc(size ? size : 1);
	FZ_ASSERT(fixed);
	memcpy(fixed, data, size);
	fz_fix_crcs(fixed, size);
	if (memcmp(fixed, data, size))
		one(fixed, size);
	free(fixed);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration stream / snapshot format (SPEC 9), byte for byte in
 * man/devstate-snapshot.5.  Encoder and decoder do no I/O: the encoder
 * hands bytes to a devstate_write_fn, the decoder is a push parser fed any
 * number of bytes at a time.
 *
 * All integers little-endian.
 *
 * Header (78 + ident_len bytes):
 *   0  8  magic "DEVSTATE"
 *   8  2  format version (1)
 *  10  2  header length in bytes (78 + ident_len)
 *  12  4  protocol family (1 = device-state regions, 2 = the kernel's
 *         migration uAPI v2)
 *  16  4  protocol version (family 1: control layout version, 1 or 2;
 *         family 2: the uAPI version, 2)
 *  20  4  caps (family 1: the caps field; family 2: the v2 device flags,
 *         STOP_COPY set, no unknown bit)
 *  24  4  page size (4096)
 *  28  4  flags (0; a reader refuses unknown bits)
 *  32  8  CTL region length
 *  40  8  DEVICE_CONFIG region length
 *  48  8  DEVICE_MEMORY region length (chunk length; 0 without the cap)
 *  56  8  DIRTY_BITMAP region length (0 without the cap)
 *  64  8  config size
 *         (family 2: the four region lengths and config size are 0)
 *  72  2  ident_len (0..64)
 *  74  n  ident (not NUL-terminated)
 *  74+n 4 CRC-32 of bytes [0, 74+n)
 *
 * Section:
 *   0  4  type (1 MEMORY, 2 CONFIG, 3 DIRTY_BITMAP, 4 END, 5 MIG2_DATA)
 *   4  1  codec (0 raw, 1 deflate/zlib, 2 zstd, 3 zero)
 *   5  3  reserved, 0
 *   8  8  raw length (payload bytes after decoding)
 *  16  8  stored length (payload bytes in the stream)
 *  24  m  type-specific fields:
 *         MEMORY (24): u32 pass, u32 reserved 0, u64 batch size, u64 pos
 *         CONFIG (0)
 *         DIRTY_BITMAP (16): u64 start page, u64 page count
 *         END (16): u64 sections before END (header not counted),
 *                   u32 CRC-32 of every stream byte before END, u32 0
 *         MIG2_DATA (16): u32 pass, u32 flags (bit 0: stop-copy data),
 *                   u64 offset of its first byte in the device's data
 *                   (the running total of the data sections before it)
 *  24+m  stored payload
 *  ...   4  CRC-32 of the section's bytes from offset 0 through payload
 *
 * Codec rules: raw stored == raw; zero stored == 0 and the payload is
 * raw bytes of zero; deflate/zstd stored <= raw.  END has raw == stored
 * == 0 and codec raw.
 *
 * Family 1 streams hold MEMORY, CONFIG, DIRTY_BITMAP and END; family 2
 * streams MIG2_DATA and END: the device's opaque data, in order, no gap
 * or overlap (offset), passes not decreasing, stop-copy data last.
 */
#ifndef DEVSTATE_STREAM_H
#define DEVSTATE_STREAM_H

#include <stdint.h>
#include <stddef.h>

#include "libdevstate/core.h"

#define DEVSTATE_STREAM_MAGIC		"DEVSTATE"
#define DEVSTATE_STREAM_FORMAT		1u
#define DEVSTATE_MIG2_UAPI_VERSION	2u	/* family 2's protocol version */
#define DEVSTATE_MIG2_SEC_STOP_COPY	1u	/* MIG2_DATA flags */
#define DEVSTATE_IDENT_MAX		64u
#define DEVSTATE_HEADER_FIXED		78u	/* header without ident */
#define DEVSTATE_SECTION_FIXED		24u	/* section header without meta */
/* Bounds on anything a stream can make the reader allocate. */
#define DEVSTATE_SECTION_MAX		(256ull << 20)	/* raw or stored */
#define DEVSTATE_REGION_MAX		(256ull << 20)	/* chunk, config */

enum devstate_section_type {
	DEVSTATE_SEC_MEMORY = 1,
	DEVSTATE_SEC_CONFIG = 2,
	DEVSTATE_SEC_DIRTY_BITMAP = 3,
	DEVSTATE_SEC_END = 4,
	DEVSTATE_SEC_MIG2_DATA = 5
};

struct devstate_stream_header {
	uint32_t format_version;
	uint32_t protocol;
	uint32_t proto_version;
	uint32_t caps;
	uint32_t page_size;
	uint32_t flags;
	uint64_t region_len[DEVSTATE_REGION_COUNT];
	uint64_t config_size;
	uint32_t ident_len;
	char ident[DEVSTATE_IDENT_MAX + 1];	/* NUL-terminated copy */
};

struct devstate_section {
	uint32_t type;
	uint32_t codec;
	uint64_t raw_len;
	uint64_t stored_len;
	uint64_t offset;	/* stream offset of the section's first byte */
	uint64_t total_len;	/* bytes of the section in the stream */
	/* MEMORY; MIG2_DATA: pass, and pos = its data offset */
	uint32_t pass;
	uint64_t batch_size;
	uint64_t pos;
	/* MIG2_DATA */
	uint32_t mig2_flags;
	/* DIRTY_BITMAP */
	uint64_t start_page;
	uint64_t page_nr;
	/* END */
	uint64_t section_count;
	uint32_t stream_crc;
	/* decoded payload, raw_len bytes (NULL when raw_len is 0, or when
	 * it was delivered in pieces); valid until the next call on the
	 * decoder */
	const uint8_t *data;
	/* the payload went out as DEVSTATE_DEC_PIECE events */
	int in_pieces;
};

/* CRC-32 as zlib's crc32() computes it (crc.c is the one place that
 * chooses the implementation).  Start with crc = 0. */
uint32_t devstate_crc32(uint32_t crc, const void *buf, size_t len);
/* CRC of A||B from crc(A), crc(B) and len(B). */
uint32_t devstate_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* ---------------------------------------------------------------- */
/* Encoder. */
struct devstate_enc;

int devstate_enc_new(struct devstate_enc **out, devstate_write_fn write,
		     void *opaque, enum devstate_codec codec, int level);
void devstate_enc_free(struct devstate_enc *e);
int devstate_enc_header(struct devstate_enc *e,
			const struct devstate_stream_header *h);
/* data may be a mapping of a device region; it is read once. */
int devstate_enc_memory(struct devstate_enc *e, uint32_t pass,
			uint64_t batch_size, uint64_t pos, const void *data,
			size_t len);
int devstate_enc_config(struct devstate_enc *e, const void *data, size_t len);
/* bitmap: ceil(page_nr / 64) * 8 bytes, little-endian 64-bit words */
int devstate_enc_bitmap(struct devstate_enc *e, uint64_t start_page,
			uint64_t page_nr, const void *bitmap);
/* Family 2: len (> 0) bytes of the device's data starting at offset
 * (the running total); flags DEVSTATE_MIG2_SEC_STOP_COPY for stop-copy. */
int devstate_enc_mig2_data(struct devstate_enc *e, uint32_t pass,
			   uint32_t flags, uint64_t offset, const void *data,
			   size_t len);
int devstate_enc_end(struct devstate_enc *e);
uint64_t devstate_enc_bytes(const struct devstate_enc *e);
uint64_t devstate_enc_sections(const struct devstate_enc *e);
const char *devstate_enc_error(const struct devstate_enc *e);

/* ---------------------------------------------------------------- */
/* Decoder: verifies each section's CRC, lengths and codec, the ordering
 * rules (memory batches in pass order, chunks of a batch contiguous from
 * pos 0 at the header's chunk length, config at most once and after it no
 * memory, END last with the right count and stream CRC) before it reports
 * the section. */
struct devstate_dec;

enum devstate_dec_event {
	DEVSTATE_DEC_NEED_MORE = 0,	/* all input consumed */
	DEVSTATE_DEC_HEADER = 1,	/* devstate_dec_header() is valid */
	DEVSTATE_DEC_SECTION = 2,	/* devstate_dec_section() is valid */
	DEVSTATE_DEC_END = 3,		/* END verified; the stream is done */
	/* Only with devstate_dec_set_pieces(d, 1): */
	DEVSTATE_DEC_SECTION_HEAD = 4,	/* a raw MEMORY section's fixed fields
					 * and meta, length-checked but not yet
					 * CRC-verified (data is NULL) */
	DEVSTATE_DEC_PIECE = 5		/* devstate_dec_piece(): the next bytes
					 * of a payload taken in pieces */
};

int devstate_dec_new(struct devstate_dec **out);
void devstate_dec_free(struct devstate_dec *d);
/* Consume up to len bytes; *used says how many.  Returns an event (>= 0)
 * or a negative errno (-EINVAL corrupt / out of order, -EBADMSG CRC
 * mismatch, -E2BIG a length over the bounds, -ENOMEM) with a sentence in
 * devstate_dec_error().  After END, any further byte is -EINVAL. */
int devstate_dec_feed(struct devstate_dec *d, const void *buf, size_t len,
		      size_t *used);
const struct devstate_stream_header *devstate_dec_header(const struct devstate_dec *d);
const struct devstate_section *devstate_dec_section(const struct devstate_dec *d);
const char *devstate_dec_error(const struct devstate_dec *d);

/* Zero-copy delivery of raw MEMORY payloads (the session's load path).
 * With pieces on, a raw MEMORY section with a payload first yields
 * DEVSTATE_DEC_SECTION_HEAD.  The caller may then call
 * devstate_dec_take_pieces() before its next feed: the payload then comes
 * as DEVSTATE_DEC_PIECE events, each pointing into the caller's own input
 * buffer (valid as long as that buffer; at most DEVSTATE_DEC_PIECE_MAX
 * bytes, CRC'd just before it is reported, so it is still in cache for
 * the caller's copy), and the section's CRC and ordering are checked after
 * the last piece, when DEVSTATE_DEC_SECTION reports it with in_pieces set
 * and data NULL.  A caller that does not take the pieces gets the section
 * whole, as without pieces.  Until DEVSTATE_DEC_SECTION the bytes are
 * unverified: a caller must not act on them beyond staging them.
 * 64 KiB measured best of 64 KiB..1 MiB (bench/README, rows 3); the
 * #ifndef lets a build repeat that measurement. */
#ifndef DEVSTATE_DEC_PIECE_MAX
#define DEVSTATE_DEC_PIECE_MAX	(64u << 10)
#endif
void devstate_dec_set_pieces(struct devstate_dec *d, int on);
void devstate_dec_take_pieces(struct devstate_dec *d);
/* After DEVSTATE_DEC_PIECE: the bytes, their count, and their offset in
 * the section's raw payload. */
const uint8_t *devstate_dec_piece(const struct devstate_dec *d, size_t *len,
				  uint64_t *at);
/* Bytes consumed so far. */
uint64_t devstate_dec_offset(const struct devstate_dec *d);
/* Bytes the decoder holds for its input buffer (for tests: it grows with
 * the bytes that arrive, never ahead of them by more than twice). */
size_t devstate_dec_capacity(const struct devstate_dec *d);

/* Decode again a section a decoder reported earlier, from its total_len
 * bytes re-read at its offset (so a reader can index a big stream instead
 * of keeping every payload): checks that the bytes still describe *s and
 * their CRC, then writes the raw_len decoded bytes to out.  0, -EINVAL,
 * -EBADMSG or -ENOMEM with a sentence in err. */
int devstate_section_redecode(const struct devstate_section *s,
			      const void *buf, void *out, char *err,
			      size_t errlen);

#endif /* DEVSTATE_STREAM_H */

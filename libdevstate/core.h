/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pure core of libdevstate: values in, decisions out.  Nothing declared
 * here performs a system call, allocates, or keeps global state.  Every
 * function returns 0 (or a documented non-negative value) or a negative
 * errno.
 */
#ifndef DEVSTATE_CORE_H
#define DEVSTATE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devstate.h"

#define DEVSTATE_EXPORT __attribute__((visibility("default")))

/* ---------------------------------------------------------------- */
/* Control layouts (SPEC 3).  layout.c                              */

enum devstate_field {
	DEVSTATE_FIELD_VERSION = 0,
	DEVSTATE_FIELD_DEVICE_STATE,
	DEVSTATE_FIELD_CAPS,
	DEVSTATE_FIELD_CONFIG_ACTION,
	DEVSTATE_FIELD_CONFIG_SIZE,
	DEVSTATE_FIELD_MEMORY_ACTION,
	DEVSTATE_FIELD_MEMORY_SIZE,
	DEVSTATE_FIELD_MEMORY_POS,
	DEVSTATE_FIELD_SYSMEM_ACTION,	/* version 2 only */
	DEVSTATE_FIELD_SYSMEM_START,
	DEVSTATE_FIELD_SYSMEM_PAGE_NR,
	DEVSTATE_FIELD_COUNT
};

#define DEVSTATE_ACCESS_R 1u
#define DEVSTATE_ACCESS_W 2u
#define DEVSTATE_ACCESS_RW (DEVSTATE_ACCESS_R | DEVSTATE_ACCESS_W)

struct devstate_field_desc {
	uint32_t offset;
	uint32_t width;		/* 4 or 8; 0 = the field does not exist */
	unsigned access;	/* DEVSTATE_ACCESS_* */
	const char *name;	/* "device_memory.pos" */
};

struct devstate_layout {
	uint32_t version;
	uint32_t size;		/* bytes: 72 (v1), 80 (v2) */
	bool bitmap_action;	/* query triggered by GET_BITMAP action (v2)
				   rather than by the page_nr write (v1) */
	struct devstate_field_desc fields[DEVSTATE_FIELD_COUNT];
};

#define DEVSTATE_VERSION_OFFSET	0u	/* in every version */
#define DEVSTATE_VERSION_WIDTH	4u

#define DEVSTATE_ACTION_GET_BUFFER	1u
#define DEVSTATE_ACTION_SET_BUFFER	2u
#define DEVSTATE_ACTION_GET_BITMAP	3u

/* The layout of a version, or NULL when the version is not supported. */
const struct devstate_layout *devstate_layout_find(uint32_t version);
/* Field descriptor, or NULL when the field does not exist in layout. */
const struct devstate_field_desc *
devstate_layout_field(const struct devstate_layout *layout,
		      enum devstate_field field);
/* Which field an access of width bytes at off is; -EINVAL unless it is
 * exactly one field at its offset and width. */
int devstate_layout_field_at(const struct devstate_layout *layout,
			     uint32_t off, uint32_t width,
			     enum devstate_field *field);
/* Supported versions, lowest and highest. */
#define DEVSTATE_LAYOUT_MIN_VERSION 1u
#define DEVSTATE_LAYOUT_MAX_VERSION 2u

/* Little-endian encode/decode of a 4- or 8-byte field. */
uint64_t devstate_le_get(const void *p, uint32_t width);
void devstate_le_put(void *p, uint32_t width, uint64_t v);

/* ---------------------------------------------------------------- */
/* Device state (SPEC 4).  state.c                                  */

static inline bool devstate_state_valid(uint32_t s)
{
	return s <= DEVSTATE_STATE_MAX;
}

/* 0 when from -> to is legal (both valid; from == to is a legal no-op),
 * -EINVAL otherwise. */
int devstate_state_transition(uint32_t from, uint32_t to);

enum devstate_op {
	DEVSTATE_OP_GET_CONFIG = 0,	/* size or buffer */
	DEVSTATE_OP_GET_MEMORY,		/* size or buffer */
	DEVSTATE_OP_GET_BITMAP,
	DEVSTATE_OP_SET_CONFIG,		/* size or buffer */
	DEVSTATE_OP_SET_MEMORY,		/* size or buffer */
	DEVSTATE_OP_COUNT
};

enum devstate_permit {
	DEVSTATE_PERMIT_REFUSED = 0,	/* EBUSY */
	DEVSTATE_PERMIT_WHOLE,		/* whole snapshot */
	DEVSTATE_PERMIT_DIRTY,		/* dirty since last get / query */
	DEVSTATE_PERMIT_EMPTY,		/* allowed, always empty */
	DEVSTATE_PERMIT_ALLOWED		/* set operations */
};

/* What state permits for op (SPEC 4 table); REFUSED for invalid state. */
enum devstate_permit devstate_state_permits(uint32_t state,
					    enum devstate_op op);
/* -EBUSY unless the permit allows the operation. */
int devstate_state_check(uint32_t state, enum devstate_op op);
const char *devstate_op_name(enum devstate_op op);

/* ---------------------------------------------------------------- */
/* Caps negotiation (SPEC 5).  caps.c                               */

struct devstate_regions {
	bool present[DEVSTATE_REGION_COUNT];
	uint64_t size[DEVSTATE_REGION_COUNT];
	bool mappable[DEVSTATE_REGION_COUNT];
};

#define DEVSTATE_REASON_MAX 512

struct devstate_blocker_info {
	enum devstate_blocker code;
	char reason[DEVSTATE_REASON_MAX];
};

/* Step 1, before the control region is read: CTL and DEVICE_CONFIG
 * present, CTL large enough to hold the version field.  0, or
 * -EOPNOTSUPP with *b filled. */
int devstate_negotiate_regions(const struct devstate_regions *r,
			       struct devstate_blocker_info *b);
/* Step 2, with version and caps read from the device: a supported
 * version, a CTL region as large as its layout, no unknown caps, every cap
 * with its region, every region non-empty.  0 (and *layout set), or
 * -EOPNOTSUPP with *b filled. */
int devstate_negotiate(const struct devstate_regions *r, uint32_t version,
		       uint32_t caps, const struct devstate_layout **layout,
		       struct devstate_blocker_info *b);

/* ---------------------------------------------------------------- */
/* Chunk iterator (SPEC 7).  chunk.c                                */

enum devstate_chunk_dir {
	DEVSTATE_CHUNK_SAVE = 0,	/* write pos, GET_BUFFER, read data */
	DEVSTATE_CHUNK_LOAD = 1		/* write data, write pos, SET_BUFFER */
};

enum devstate_step_kind {
	DEVSTATE_STEP_DONE = 0,
	DEVSTATE_STEP_WRITE_POS,	/* write .pos to device_memory.pos */
	DEVSTATE_STEP_WRITE_ACTION,	/* write .action to device_memory.action */
	DEVSTATE_STEP_READ_DATA,	/* read .len bytes from region offset 0 */
	DEVSTATE_STEP_WRITE_DATA	/* write .len bytes at region offset 0 */
};

struct devstate_chunk_step {
	enum devstate_step_kind kind;
	uint64_t pos;		/* chunk position in the batch */
	uint64_t len;		/* bytes in this chunk */
	uint32_t action;	/* for WRITE_ACTION */
};

struct devstate_chunk_iter {
	uint64_t size;		/* batch size */
	uint64_t region_len;	/* L */
	uint64_t pos;		/* current chunk */
	unsigned phase;		/* step within the chunk */
	enum devstate_chunk_dir dir;
};

/* -EINVAL when region_len is 0. */
int devstate_chunk_init(struct devstate_chunk_iter *it,
			enum devstate_chunk_dir dir, uint64_t size,
			uint64_t region_len);
/* The next step; DONE when every chunk has been through its steps (and
 * forever after). */
void devstate_chunk_next(struct devstate_chunk_iter *it,
			 struct devstate_chunk_step *step);
/* Number of chunks for size bytes with chunks of region_len (> 0). */
uint64_t devstate_chunk_count(uint64_t size, uint64_t region_len);

/* ---------------------------------------------------------------- */
/* Bitmap slicer (SPEC 8).  bitmap.c (public helpers in devstate.h)  */

struct devstate_slice {
	uint64_t start_page;	/* absolute page number */
	uint64_t page_nr;	/* pages in this slice, 1 .. max */
	uint64_t bit_offset;	/* offset of the slice in the caller bitmap */
};

struct devstate_slicer {
	uint64_t start_page;
	uint64_t page_nr;
	uint64_t max_pages;	/* 8 * region bytes */
	uint64_t done;
};

/* Cut [start_page, start_page + page_nr) for a bitmap region of
 * region_bytes bytes.  -EINVAL if region_bytes is 0, page_nr is 0 or the
 * range overflows 64 bits of byte addresses. */
int devstate_slicer_init(struct devstate_slicer *s, uint64_t start_page,
			 uint64_t page_nr, uint64_t region_bytes);
/* Next slice; false when done. */
bool devstate_slicer_next(struct devstate_slicer *s,
			  struct devstate_slice *slice);

/* ---------------------------------------------------------------- */
/* Small shared helpers.                                            */

/* printf into a fixed buffer, always terminated. */
void devstate_msg(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parse "64M", "4K", "1G", "123", "0x10" into bytes; -EINVAL on garbage
 * or overflow. */
int devstate_parse_size(const char *s, uint64_t *out);
/* Parse a plain number (decimal or 0x hex, no suffix) of at most max. */
int devstate_parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif /* DEVSTATE_CORE_H */

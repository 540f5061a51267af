/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fake device against SPEC 3-8 and every rule of SPEC 11, driven
 * through its raw transport ops.  Field offsets are written out here from
 * the SPEC tables rather than taken from layout.c, so that the test is an
 * independent check of both.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "transports/fake.h"
#include "transports/transport.h"

#define PAGE 4096u

enum tf_field {
	F_VERSION, F_STATE, F_CAPS, F_CFG_ACTION, F_CFG_SIZE, F_MEM_ACTION,
	F_MEM_SIZE, F_MEM_POS, F_SYS_ACTION, F_SYS_START, F_SYS_PAGE_NR
};

/* SPEC 3: offsets for v1 and v2 (0xffff: no such field), width. */
static const struct {
	uint32_t v1, v2, width;
} fields[] = {
	[F_VERSION]	= { 0, 0, 4 },
	[F_STATE]	= { 4, 4, 4 },
	[F_CAPS]	= { 8, 8, 4 },
	[F_CFG_ACTION]	= { 16, 16, 4 },
	[F_CFG_SIZE]	= { 24, 24, 8 },
	[F_MEM_ACTION]	= { 32, 32, 4 },
	[F_MEM_SIZE]	= { 40, 40, 8 },
	[F_MEM_POS]	= { 48, 48, 8 },
	[F_SYS_ACTION]	= { 0xffff, 56, 4 },
	[F_SYS_START]	= { 56, 64, 8 },
	[F_SYS_PAGE_NR]	= { 64, 72, 8 },
};

#define ST_RUNNING	0u
#define ST_STOP		1u
#define ST_RL		2u
#define ST_SL		3u
#define GET_BUFFER	1u
#define SET_BUFFER	2u
#define GET_BITMAP	3u

struct tdev {
	void *p;
	struct devstate_fake *f;
	unsigned v1;		/* v1 offsets */
	char err[DEVSTATE_ERR_MAX];
};

static const struct devstate_transport_ops *ops = &devstate_fake_ops;

static void topen(struct tdev *d, const char *args)
{
	int rc;

	memset(d, 0, sizeof(*d));
	rc = ops->open(args, &d->p, d->err, sizeof(d->err));
	ck_assert_msg(rc == 0, "open '%s': %d %s", args, rc, d->err);
	d->f = d->p;
	d->v1 = strstr(args, "version=1") != NULL;
}

static void tclose(struct tdev *d)
{
	ops->close(d->p);
	d->p = NULL;
}

static uint32_t foff(const struct tdev *d, enum tf_field fl)
{
	return d->v1 ? fields[fl].v1 : fields[fl].v2;
}

static uint64_t le_dec(const uint8_t *b, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | b[n];
	return v;
}

static void le_enc(uint8_t *b, unsigned n, uint64_t v)
{
	unsigned i;

	for (i = 0; i < n; i++, v >>= 8)
		b[i] = (uint8_t)v;
}

static int rd(struct tdev *d, enum tf_field fl, uint64_t *v)
{
	uint8_t b[8] = { 0 };
	int rc;

	d->err[0] = '\0';
	rc = ops->ctl_read(d->p, foff(d, fl), b, fields[fl].width, d->err,
			   sizeof(d->err));
	if (!rc)
		*v = le_dec(b, fields[fl].width);
	return rc;
}

static int wr(struct tdev *d, enum tf_field fl, uint64_t v)
{
	uint8_t b[8];

	d->err[0] = '\0';
	le_enc(b, fields[fl].width, v);
	return ops->ctl_write(d->p, foff(d, fl), b, fields[fl].width, d->err,
			      sizeof(d->err));
}

static uint64_t rd_ok(struct tdev *d, enum tf_field fl)
{
	uint64_t v = 0;
	int rc = rd(d, fl, &v);

	ck_assert_msg(rc == 0, "read field %d: %d %s", fl, rc, d->err);
	return v;
}

static void wr_ok(struct tdev *d, enum tf_field fl, uint64_t v)
{
	int rc = wr(d, fl, v);

	ck_assert_msg(rc == 0, "write field %d = %llu: %d %s", fl,
		      (unsigned long long)v, rc, d->err);
}

#define ck_err(expr, e) do {						\
	int _rc = (expr);						\
	ck_assert_msg(_rc == -(e), "%s: got %d, want %d", #expr, _rc,	\
		      -(e));						\
} while (0)

static void dread(struct tdev *d, enum devstate_region r, uint64_t off,
		  void *buf, size_t len)
{
	int rc = ops->data_read(d->p, r, off, buf, len, d->err,
				sizeof(d->err));

	ck_assert_msg(rc == 0, "data_read: %d %s", rc, d->err);
}

static void dwrite(struct tdev *d, enum devstate_region r, uint64_t off,
		   const void *buf, size_t len)
{
	int rc = ops->data_write(d->p, r, off, buf, len, d->err,
				 sizeof(d->err));

	ck_assert_msg(rc == 0, "data_write: %d %s", rc, d->err);
}

static uint64_t region_len(struct tdev *d, enum devstate_region r)
{
	struct devstate_regions rg;

	ck_assert_int_eq(ops->regions(d->p, &rg, d->err, sizeof(d->err)), 0);
	return rg.present[r] ? rg.size[r] : 0;
}

/* Read every chunk of the frozen batch (SPEC 7 save order). */
static uint8_t *read_batch(struct tdev *d, uint64_t size)
{
	uint64_t L = region_len(d, DEVSTATE_REGION_MEMORY), pos, n;
	uint8_t *buf;

	buf = malloc(size ? size : 1);
	ck_assert_ptr_nonnull(buf);
	for (pos = 0; pos < size; pos += L) {
		n = size - pos < L ? size - pos : L;
		wr_ok(d, F_MEM_POS, pos);
		wr_ok(d, F_MEM_ACTION, GET_BUFFER);
		dread(d, DEVSTATE_REGION_MEMORY, 0, buf + pos, n);
	}
	return buf;
}

/* Freeze and read one batch. */
static uint8_t *save_batch(struct tdev *d, uint64_t *size)
{
	*size = rd_ok(d, F_MEM_SIZE);
	return read_batch(d, *size);
}

/* Load one batch (SPEC 7 load order); the rc of the last SET_BUFFER. */
static int load_batch_rc(struct tdev *d, const uint8_t *buf, uint64_t size)
{
	uint64_t L = region_len(d, DEVSTATE_REGION_MEMORY), pos, n;
	int rc = 0;

	wr_ok(d, F_MEM_SIZE, size);
	for (pos = 0; pos < size; pos += L) {
		ck_assert_int_eq(rc, 0);
		n = size - pos < L ? size - pos : L;
		dwrite(d, DEVSTATE_REGION_MEMORY, 0, buf + pos, n);
		wr_ok(d, F_MEM_POS, pos);
		rc = wr(d, F_MEM_ACTION, SET_BUFFER);
	}
	return rc;
}

static void load_batch(struct tdev *d, const uint8_t *buf, uint64_t size)
{
	int rc = load_batch_rc(d, buf, size);

	ck_assert_msg(rc == 0, "load batch: %d %s", rc, d->err);
}

/* Change a page's bytes and tell the fake, as the device would. */
static void dirty_page(struct tdev *d, uint64_t page, uint8_t val)
{
	size_t len;
	uint8_t *m = devstate_fake_memory_mut(d->f, &len);

	ck_assert_uint_lt(page * PAGE, len);
	memset(m + page * PAGE + 100, val, 50);
	devstate_fake_touch_memory(d->f, page);
}

struct rec {
	uint64_t off, len;
	const uint8_t *data;
};

/* Parse the vendor record encoding; returns the record count or -1. */
static int parse_records(const uint8_t *b, uint64_t size, struct rec *r,
			 int max)
{
	uint64_t at = 0;
	int n = 0;

	while (at < size) {
		if (size - at < 16 || n == max)
			return -1;
		r[n].off = le_dec(b + at, 8);
		r[n].len = le_dec(b + at + 8, 8);
		if (r[n].len > size - at - 16)
			return -1;
		r[n].data = b + at + 16;
		at += 16 + r[n].len;
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------- */
/* Control region access rules.                                     */

START_TEST(test_ctl_defaults)
{
	struct tdev d;

	topen(&d, "");
	ck_assert_uint_eq(rd_ok(&d, F_VERSION), 2);
	ck_assert_uint_eq(rd_ok(&d, F_CAPS), 3);
	ck_assert_uint_eq(rd_ok(&d, F_CFG_SIZE), 64 * 1024);
	ck_assert_uint_eq(devstate_fake_state(d.f), ST_RUNNING);
	tclose(&d);

	topen(&d, "version=1,caps=device-memory");
	ck_assert_uint_eq(rd_ok(&d, F_VERSION), 1);
	ck_assert_uint_eq(rd_ok(&d, F_CAPS), 1);
	tclose(&d);

	topen(&d, "caps=system-memory+device-memory,config=100");
	ck_assert_uint_eq(rd_ok(&d, F_CAPS), 3);
	ck_assert_uint_eq(rd_ok(&d, F_CFG_SIZE), 100);
	tclose(&d);
}
END_TEST

START_TEST(test_ctl_wrong_width)
{
	struct tdev d;
	uint8_t b[8];

	topen(&d, "");
	/* version is 4 bytes, device_memory.size 8 */
	ck_err(ops->ctl_read(d.p, 0, b, 8, d.err, sizeof(d.err)), EINVAL);
	ck_assert_msg(!strncmp(d.err, "fake: ", 6), "no sentence: %s", d.err);
	ck_err(ops->ctl_read(d.p, 40, b, 4, d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->ctl_read(d.p, 0, b, 2, d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->ctl_read(d.p, 0, b, 1, d.err, sizeof(d.err)), EINVAL);
	le_enc(b, 8, 1);
	ck_err(ops->ctl_write(d.p, 4, b, 8, d.err, sizeof(d.err)), EINVAL);
	ck_assert_uint_eq(devstate_fake_state(d.f), ST_RUNNING);
	tclose(&d);
}
END_TEST

START_TEST(test_ctl_padding)
{
	struct tdev d;
	uint8_t b[8];

	topen(&d, "");
	/* caps is 4 bytes at 8; 12..15 is padding */
	ck_err(ops->ctl_read(d.p, 12, b, 4, d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->ctl_read(d.p, 20, b, 4, d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->ctl_read(d.p, 60, b, 4, d.err, sizeof(d.err)), EINVAL);
	le_enc(b, 4, 0);
	ck_err(ops->ctl_write(d.p, 36, b, 4, d.err, sizeof(d.err)), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_ctl_span)
{
	struct tdev d;
	uint8_t b[8];

	topen(&d, "");
	/* 8 bytes at 0: version + device_state */
	ck_err(ops->ctl_read(d.p, 0, b, 8, d.err, sizeof(d.err)), EINVAL);
	/* 8 bytes at 4: device_state + caps */
	ck_err(ops->ctl_read(d.p, 4, b, 8, d.err, sizeof(d.err)), EINVAL);
	/* misaligned inside an 8-byte field */
	ck_err(ops->ctl_read(d.p, 44, b, 4, d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->ctl_read(d.p, 44, b, 8, d.err, sizeof(d.err)), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_ctl_past_end)
{
	struct tdev d;
	uint8_t b[8] = { 0 };

	topen(&d, "");
	ck_err(ops->ctl_read(d.p, 80, b, 4, d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->ctl_read(d.p, 80, b, 8, d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->ctl_write(d.p, 76, b, 8, d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->ctl_read(d.p, 0xfffffffc, b, 8, d.err, sizeof(d.err)),
	       EINVAL);
	tclose(&d);

	topen(&d, "version=1");
	ck_err(ops->ctl_write(d.p, 72, b, 8, d.err, sizeof(d.err)), EINVAL);
	tclose(&d);

	/* a CTL region shorter than the layout: caps is past its end */
	topen(&d, "ctl=8");
	ck_assert_uint_eq(rd_ok(&d, F_VERSION), 2);
	ck_err(rd(&d, F_CAPS, &(uint64_t){ 0 }), EINVAL);
	tclose(&d);

	topen(&d, "ctl=0");
	ck_assert_uint_eq(region_len(&d, DEVSTATE_REGION_CTL), 0);
	ck_err(rd(&d, F_VERSION, &(uint64_t){ 0 }), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_ctl_read_wo)
{
	struct tdev d;
	uint64_t v;

	topen(&d, "");
	ck_err(rd(&d, F_STATE, &v), EINVAL);
	ck_err(rd(&d, F_CFG_ACTION, &v), EINVAL);
	ck_err(rd(&d, F_MEM_ACTION, &v), EINVAL);
	ck_err(rd(&d, F_SYS_ACTION, &v), EINVAL);
	ck_err(rd(&d, F_SYS_START, &v), EINVAL);
	ck_err(rd(&d, F_SYS_PAGE_NR, &v), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_ctl_write_ro)
{
	struct tdev d;

	topen(&d, "");
	ck_err(wr(&d, F_VERSION, 2), EINVAL);
	ck_err(wr(&d, F_CAPS, 3), EINVAL);
	ck_assert_uint_eq(rd_ok(&d, F_VERSION), 2);
	ck_assert_uint_eq(rd_ok(&d, F_CAPS), 3);
	tclose(&d);
}
END_TEST

START_TEST(test_state_invalid)
{
	struct tdev d;
	unsigned s;

	topen(&d, "");
	wr_ok(&d, F_STATE, ST_SL);
	ck_err(wr(&d, F_STATE, 4), EINVAL);
	ck_err(wr(&d, F_STATE, 0xffffffffu), EINVAL);
	ck_assert_uint_eq(devstate_fake_state(d.f), ST_SL);
	/* all transitions legal, including to the same state */
	for (s = 0; s < 16; s++) {
		wr_ok(&d, F_STATE, s % 4);
		ck_assert_uint_eq(devstate_fake_state(d.f), s % 4);
		wr_ok(&d, F_STATE, (s * 3 + 1) % 4);
		ck_assert_uint_eq(devstate_fake_state(d.f), (s * 3 + 1) % 4);
	}
	tclose(&d);
}
END_TEST

START_TEST(test_bad_actions)
{
	struct tdev d;

	topen(&d, "memory=64K,chunk=4K");
	ck_err(wr(&d, F_MEM_ACTION, 0), EINVAL);
	ck_err(wr(&d, F_MEM_ACTION, GET_BITMAP), EINVAL);
	ck_err(wr(&d, F_MEM_ACTION, 9), EINVAL);
	ck_err(wr(&d, F_CFG_ACTION, 0), EINVAL);
	ck_err(wr(&d, F_CFG_ACTION, GET_BITMAP), EINVAL);
	wr_ok(&d, F_SYS_START, 0);
	wr_ok(&d, F_SYS_PAGE_NR, 8);
	ck_err(wr(&d, F_SYS_ACTION, GET_BUFFER), EINVAL);
	ck_err(wr(&d, F_SYS_ACTION, SET_BUFFER), EINVAL);
	ck_err(wr(&d, F_SYS_ACTION, 0), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_caps_required)
{
	struct tdev d;
	uint64_t v;

	/* the regions exist, but the caps do not */
	topen(&d, "caps=none");
	ck_err(rd(&d, F_MEM_SIZE, &v), EINVAL);
	ck_err(wr(&d, F_MEM_POS, 0), EINVAL);
	ck_err(wr(&d, F_MEM_ACTION, GET_BUFFER), EINVAL);
	ck_err(wr(&d, F_SYS_START, 0), EINVAL);
	ck_assert_uint_eq(rd_ok(&d, F_CFG_SIZE), 64 * 1024);
	tclose(&d);

	/* cap SYSTEM_MEMORY without a DIRTY_BITMAP region */
	topen(&d, "bitmap=0");
	ck_assert_uint_eq(region_len(&d, DEVSTATE_REGION_BITMAP), 0);
	ck_err(wr(&d, F_SYS_START, 0), EINVAL);
	ck_err(wr(&d, F_SYS_PAGE_NR, 1), EINVAL);
	tclose(&d);

	/* cap DEVICE_MEMORY without a region: no chunk can move */
	topen(&d, "caps=device-memory,chunk=0,memory=8K");
	ck_assert_uint_eq(region_len(&d, DEVSTATE_REGION_MEMORY), 0);
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 16 + 8192);
	ck_err(wr(&d, F_MEM_POS, 0), EINVAL);
	ck_err(wr(&d, F_MEM_ACTION, GET_BUFFER), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_version_other)
{
	struct tdev d;

	/* version=7 reads back as 7, other fields decode as v2 */
	topen(&d, "version=7");
	ck_assert_uint_eq(rd_ok(&d, F_VERSION), 7);
	ck_assert_uint_eq(rd_ok(&d, F_CAPS), 3);
	ck_assert_uint_eq(region_len(&d, DEVSTATE_REGION_CTL), 80);
	wr_ok(&d, F_SYS_START, 0);
	wr_ok(&d, F_SYS_PAGE_NR, 8);
	wr_ok(&d, F_SYS_ACTION, GET_BITMAP);
	tclose(&d);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Regions.                                                         */

START_TEST(test_regions)
{
	struct devstate_regions rg;
	struct tdev d;
	void *map = NULL;
	uint8_t b[16], c[16];

	topen(&d, "");
	ck_assert_int_eq(ops->regions(d.p, &rg, d.err, sizeof(d.err)), 0);
	ck_assert(rg.present[DEVSTATE_REGION_CTL]);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_CTL], 80);
	ck_assert(!rg.mappable[DEVSTATE_REGION_CTL]);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_CONFIG], 64 * 1024);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_MEMORY], 1024 * 1024);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_BITMAP], 4096);
	ck_assert(rg.mappable[DEVSTATE_REGION_CONFIG]);
	ck_assert(rg.mappable[DEVSTATE_REGION_MEMORY]);
	ck_assert(rg.mappable[DEVSTATE_REGION_BITMAP]);
	/* the map and read/write see the same bytes */
	ck_assert_int_eq(ops->data_map(d.p, DEVSTATE_REGION_CONFIG, &map,
				       d.err, sizeof(d.err)), 0);
	ck_assert_ptr_nonnull(map);
	memset(b, 0x5a, sizeof(b));
	dwrite(&d, DEVSTATE_REGION_CONFIG, 100, b, sizeof(b));
	ck_assert_mem_eq((uint8_t *)map + 100, b, sizeof(b));
	((uint8_t *)map)[200] = 0x33;
	dread(&d, DEVSTATE_REGION_CONFIG, 200, c, 1);
	ck_assert_uint_eq(c[0], 0x33);
	/* bounds: up to the last byte, not one past it */
	dread(&d, DEVSTATE_REGION_CONFIG, 64 * 1024 - 8, c, 8);
	ck_err(ops->data_read(d.p, DEVSTATE_REGION_CONFIG, 64 * 1024 - 8, c,
			      9, d.err, sizeof(d.err)), EINVAL);
	dwrite(&d, DEVSTATE_REGION_BITMAP, 4096, b, 0);
	ck_err(ops->data_write(d.p, DEVSTATE_REGION_BITMAP, 4095, b, 2,
			       d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->data_write(d.p, DEVSTATE_REGION_BITMAP, 4097, b, 1,
			       d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->data_read(d.p, DEVSTATE_REGION_CTL, 0, c, 4, d.err,
			      sizeof(d.err)), EINVAL);
	ck_err(ops->data_read(d.p, DEVSTATE_REGION_MEMORY, UINT64_MAX, c, 2,
			      d.err, sizeof(d.err)), EINVAL);
	ck_err(ops->data_map(d.p, DEVSTATE_REGION_CTL, &map, d.err,
			     sizeof(d.err)), EINVAL);
	tclose(&d);

	topen(&d, "version=1,mmap=no,chunk=0,bitmap=512,config=1000,config-region=8K");
	ck_assert_int_eq(ops->regions(d.p, &rg, d.err, sizeof(d.err)), 0);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_CTL], 72);
	ck_assert(!rg.present[DEVSTATE_REGION_MEMORY]);
	ck_assert(rg.present[DEVSTATE_REGION_BITMAP]);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_BITMAP], 512);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_CONFIG], 8192);
	ck_assert(!rg.mappable[DEVSTATE_REGION_CONFIG]);
	ck_assert(!rg.mappable[DEVSTATE_REGION_BITMAP]);
	ck_err(ops->data_map(d.p, DEVSTATE_REGION_CONFIG, &map, d.err,
			     sizeof(d.err)), EOPNOTSUPP);
	ck_err(ops->data_map(d.p, DEVSTATE_REGION_MEMORY, &map, d.err,
			     sizeof(d.err)), EOPNOTSUPP);
	ck_err(ops->data_read(d.p, DEVSTATE_REGION_MEMORY, 0, c, 1, d.err,
			      sizeof(d.err)), EINVAL);
	tclose(&d);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Device memory, save side.                                        */

START_TEST(test_pos_misaligned)
{
	struct tdev d;

	topen(&d, "memory=64K,chunk=3000");
	wr_ok(&d, F_MEM_POS, 0);
	wr_ok(&d, F_MEM_POS, 6000);
	ck_assert_uint_eq(rd_ok(&d, F_MEM_POS), 6000);
	ck_err(wr(&d, F_MEM_POS, 4096), EINVAL);
	ck_err(wr(&d, F_MEM_POS, 1), EINVAL);
	ck_err(wr(&d, F_MEM_POS, 5999), EINVAL);
	ck_assert_uint_eq(rd_ok(&d, F_MEM_POS), 6000);
	tclose(&d);
}
END_TEST

START_TEST(test_get_buffer_no_freeze)
{
	struct tdev d;

	topen(&d, "memory=64K,chunk=4K");
	wr_ok(&d, F_MEM_POS, 0);
	ck_err(wr(&d, F_MEM_ACTION, GET_BUFFER), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_get_buffer_empty)
{
	struct tdev d;
	uint64_t size;
	uint8_t *b;

	topen(&d, "memory=64K,chunk=4K");
	b = save_batch(&d, &size);
	free(b);
	wr_ok(&d, F_STATE, ST_RL);
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 0);
	wr_ok(&d, F_MEM_POS, 0);
	ck_err(wr(&d, F_MEM_ACTION, GET_BUFFER), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_get_buffer_pos_past)
{
	struct tdev d;
	uint64_t size;

	topen(&d, "memory=64K,chunk=4K");
	size = rd_ok(&d, F_MEM_SIZE);
	ck_assert_uint_eq(size, 16 + 65536);
	/* last chunk 16 (short) is fine, 17 is past the end */
	wr_ok(&d, F_MEM_POS, 16 * 4096);
	wr_ok(&d, F_MEM_ACTION, GET_BUFFER);
	wr_ok(&d, F_MEM_POS, 17 * 4096);
	ck_err(wr(&d, F_MEM_ACTION, GET_BUFFER), EINVAL);
	tclose(&d);

	/* pos == size exactly (65552 = 4097 chunks of 16) */
	topen(&d, "memory=64K,chunk=16");
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 65552);
	wr_ok(&d, F_MEM_POS, 65536);
	wr_ok(&d, F_MEM_ACTION, GET_BUFFER);
	wr_ok(&d, F_MEM_POS, 65552);
	ck_err(wr(&d, F_MEM_ACTION, GET_BUFFER), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_freeze_unread_logging)
{
	struct tdev d;
	uint64_t size, v;
	uint8_t *b;

	topen(&d, "memory=64K,chunk=4K");
	/* in RUNNING an unread batch is simply replaced */
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 16 + 65536);
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 16 + 65536);
	b = save_batch(&d, &size);
	free(b);
	wr_ok(&d, F_STATE, ST_RL);
	dirty_page(&d, 2, 1);
	dirty_page(&d, 9, 2);
	size = rd_ok(&d, F_MEM_SIZE);
	ck_assert_uint_eq(size, 2 * (16 + 4096));
	/* read only the first chunk, then freeze again: refused */
	wr_ok(&d, F_MEM_POS, 0);
	wr_ok(&d, F_MEM_ACTION, GET_BUFFER);
	ck_err(rd(&d, F_MEM_SIZE, &v), EINVAL);
	/* still refused in STOP|LOGGING */
	wr_ok(&d, F_STATE, ST_SL);
	ck_err(rd(&d, F_MEM_SIZE, &v), EINVAL);
	/* chunks in any order, all of them: then the next freeze works */
	wr_ok(&d, F_MEM_POS, 4096);
	wr_ok(&d, F_MEM_ACTION, GET_BUFFER);
	wr_ok(&d, F_MEM_POS, 2 * 4096);
	wr_ok(&d, F_MEM_ACTION, GET_BUFFER);
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 0);
	/* an empty batch needs no reading */
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 0);
	tclose(&d);
}
END_TEST

START_TEST(test_first_freeze_in_logging_is_whole)
{
	struct tdev d;
	struct rec r[4];
	uint64_t size;
	uint8_t *b;

	topen(&d, "memory=32K,chunk=5000");
	wr_ok(&d, F_STATE, ST_RL);
	b = save_batch(&d, &size);
	ck_assert_uint_eq(size, 16 + 32768);
	ck_assert_int_eq(parse_records(b, size, r, 4), 1);
	ck_assert_uint_eq(r[0].off, 0);
	ck_assert_uint_eq(r[0].len, 32768);
	free(b);
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 0);
	tclose(&d);
}
END_TEST

START_TEST(test_encoding)
{
	struct tdev d;
	struct rec r[8];
	const uint8_t *mem;
	uint64_t size;
	size_t len;
	uint8_t *b;
	int n;

	topen(&d, "memory=64K,chunk=3000,seed=3");
	mem = devstate_fake_memory(d.f, &len);
	ck_assert_uint_eq(len, 65536);
	b = save_batch(&d, &size);
	ck_assert_uint_eq(size, 16 + 65536);
	n = parse_records(b, size, r, 8);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(r[0].off, 0);
	ck_assert_uint_eq(r[0].len, 65536);
	ck_assert_mem_eq(r[0].data, mem, 65536);
	free(b);

	wr_ok(&d, F_STATE, ST_RL);
	dirty_page(&d, 1, 0x11);
	dirty_page(&d, 2, 0x22);
	dirty_page(&d, 5, 0x55);
	dirty_page(&d, 15, 0xff);
	dirty_page(&d, 2, 0x23);
	b = save_batch(&d, &size);
	ck_assert_uint_eq(size, 3 * 16 + 4 * 4096);
	n = parse_records(b, size, r, 8);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(r[0].off, 4096);
	ck_assert_uint_eq(r[0].len, 8192);
	ck_assert_uint_eq(r[1].off, 5 * 4096);
	ck_assert_uint_eq(r[1].len, 4096);
	ck_assert_uint_eq(r[2].off, 15 * 4096);
	ck_assert_uint_eq(r[2].len, 4096);
	ck_assert_mem_eq(r[0].data, mem + 4096, 8192);
	ck_assert_uint_eq(r[0].data[4096 + 100], 0x23);
	ck_assert_mem_eq(r[1].data, mem + 5 * 4096, 4096);
	ck_assert_mem_eq(r[2].data, mem + 15 * 4096, 4096);
	free(b);

	/* the batch is a copy: a write after the freeze goes to the next */
	dirty_page(&d, 0, 0x01);
	size = rd_ok(&d, F_MEM_SIZE);
	ck_assert_uint_eq(size, 16 + 4096);
	dirty_page(&d, 0, 0x02);
	dirty_page(&d, 7, 0x07);
	b = read_batch(&d, size);
	ck_assert_int_eq(parse_records(b, size, r, 8), 1);
	ck_assert_uint_eq(r[0].off, 0);
	ck_assert_uint_eq(r[0].data[100], 0x01);
	free(b);
	b = save_batch(&d, &size);
	ck_assert_int_eq(parse_records(b, size, r, 8), 2);
	ck_assert_uint_eq(r[0].off, 0);
	ck_assert_uint_eq(r[0].data[100], 0x02);
	ck_assert_uint_eq(r[1].off, 7 * 4096);
	free(b);
	/* nothing changed: size 0 */
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 0);
	tclose(&d);
}
END_TEST

START_TEST(test_dirty_baseline)
{
	struct tdev d;
	struct rec r[4];
	uint64_t size;
	uint8_t *b;

	topen(&d, "memory=64K,chunk=4K");
	/* a write before the first freeze is in the whole snapshot ... */
	dirty_page(&d, 4, 0x44);
	b = save_batch(&d, &size);
	ck_assert_uint_eq(size, 16 + 65536);
	ck_assert_uint_eq(b[16 + 4 * 4096 + 100], 0x44);
	free(b);
	/* ... one between the whole snapshot (RUNNING) and LOGGING must
	 * appear in the first delta */
	dirty_page(&d, 6, 0x66);
	wr_ok(&d, F_STATE, ST_RL);
	b = save_batch(&d, &size);
	ck_assert_int_eq(parse_records(b, size, r, 4), 1);
	ck_assert_uint_eq(r[0].off, 6 * 4096);
	ck_assert_uint_eq(r[0].len, 4096);
	ck_assert_uint_eq(r[0].data[100], 0x66);
	free(b);
	tclose(&d);
}
END_TEST

START_TEST(test_whole_in_running_resets_tracking)
{
	struct tdev d;
	struct rec r[4];
	uint64_t size;
	uint8_t *b;

	topen(&d, "memory=64K,chunk=4K");
	b = save_batch(&d, &size);
	free(b);
	wr_ok(&d, F_STATE, ST_RL);
	dirty_page(&d, 3, 1);
	/* leave LOGGING, freeze again: whole, all pages clean after it */
	wr_ok(&d, F_STATE, ST_RUNNING);
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 16 + 65536);
	wr_ok(&d, F_STATE, ST_RL);
	dirty_page(&d, 8, 1);
	/* the unread whole batch must be read first in LOGGING */
	ck_err(rd(&d, F_MEM_SIZE, &size), EINVAL);
	wr_ok(&d, F_STATE, ST_RUNNING);
	b = save_batch(&d, &size);
	ck_assert_uint_eq(size, 16 + 65536);
	free(b);
	dirty_page(&d, 9, 1);
	wr_ok(&d, F_STATE, ST_RL);
	b = save_batch(&d, &size);
	ck_assert_int_eq(parse_records(b, size, r, 4), 1);
	ck_assert_uint_eq(r[0].off, 9 * 4096);
	free(b);
	tclose(&d);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Loading.                                                         */

START_TEST(test_load_ebusy)
{
	static const uint32_t states[] = { ST_RUNNING, ST_RL, ST_SL };
	struct tdev d;
	unsigned i;

	topen(&d, "memory=64K,chunk=4K,config=1000");
	for (i = 0; i < 3; i++) {
		wr_ok(&d, F_STATE, states[i]);
		ck_err(wr(&d, F_MEM_SIZE, 0), EBUSY);
		ck_err(wr(&d, F_MEM_SIZE, 16 + 4096), EBUSY);
		wr_ok(&d, F_MEM_POS, 0);
		ck_err(wr(&d, F_MEM_ACTION, SET_BUFFER), EBUSY);
		ck_err(wr(&d, F_CFG_SIZE, 1000), EBUSY);
		ck_err(wr(&d, F_CFG_ACTION, SET_BUFFER), EBUSY);
	}
	/* and allowed in STOP */
	wr_ok(&d, F_STATE, ST_STOP);
	wr_ok(&d, F_CFG_SIZE, 1000);
	wr_ok(&d, F_CFG_ACTION, SET_BUFFER);
	ck_assert(devstate_fake_config_loaded(d.f));
	tclose(&d);
}
END_TEST

/* One record rewriting page `page` with byte val. */
static uint8_t *make_delta(uint64_t page, uint8_t val, uint64_t *size)
{
	uint8_t *b = malloc(16 + 4096);

	ck_assert_ptr_nonnull(b);
	le_enc(b, 8, page * 4096);
	le_enc(b + 8, 8, 4096);
	memset(b + 16, val, 4096);
	*size = 16 + 4096;
	return b;
}

START_TEST(test_load_chunk_order)
{
	struct tdev d;
	uint64_t size;
	size_t len;
	uint8_t *b;
	const uint8_t *mem;

	topen(&d, "memory=64K,chunk=2K,zero=yes");
	mem = devstate_fake_memory(d.f, &len);
	b = make_delta(3, 0xab, &size);	/* 4112 bytes: chunks 0, 2K, 4K */
	wr_ok(&d, F_STATE, ST_STOP);
	wr_ok(&d, F_MEM_SIZE, size);
	/* skipped: chunk 1 before chunk 0 */
	wr_ok(&d, F_MEM_POS, 2048);
	ck_err(wr(&d, F_MEM_ACTION, SET_BUFFER), EINVAL);
	dwrite(&d, DEVSTATE_REGION_MEMORY, 0, b, 2048);
	wr_ok(&d, F_MEM_POS, 0);
	wr_ok(&d, F_MEM_ACTION, SET_BUFFER);
	/* repeated: chunk 0 again */
	ck_err(wr(&d, F_MEM_ACTION, SET_BUFFER), EINVAL);
	/* skipped: chunk 2 before chunk 1 */
	wr_ok(&d, F_MEM_POS, 4096);
	ck_err(wr(&d, F_MEM_ACTION, SET_BUFFER), EINVAL);
	/* a new batch while this one is incomplete */
	ck_err(wr(&d, F_MEM_SIZE, size), EINVAL);
	/* config while a batch is incomplete */
	wr_ok(&d, F_CFG_SIZE, 64 * 1024);
	ck_err(wr(&d, F_CFG_ACTION, SET_BUFFER), EINVAL);
	dwrite(&d, DEVSTATE_REGION_MEMORY, 0, b + 2048, 2048);
	wr_ok(&d, F_MEM_POS, 2048);
	wr_ok(&d, F_MEM_ACTION, SET_BUFFER);
	ck_assert_uint_eq(devstate_fake_batches_loaded(d.f), 0);
	ck_assert_uint_eq(mem[3 * 4096], 0);
	dwrite(&d, DEVSTATE_REGION_MEMORY, 0, b + 4096, size - 4096);
	wr_ok(&d, F_MEM_POS, 4096);
	wr_ok(&d, F_MEM_ACTION, SET_BUFFER);
	ck_assert_uint_eq(devstate_fake_batches_loaded(d.f), 1);
	ck_assert_uint_eq(mem[3 * 4096], 0xab);
	ck_assert_uint_eq(mem[4 * 4096 - 1], 0xab);
	ck_assert_uint_eq(mem[4 * 4096], 0);
	/* repeated after the batch is complete */
	ck_err(wr(&d, F_MEM_ACTION, SET_BUFFER), EINVAL);
	/* an empty batch is accepted */
	wr_ok(&d, F_MEM_SIZE, 0);
	ck_assert_uint_eq(devstate_fake_batches_loaded(d.f), 2);
	wr_ok(&d, F_MEM_POS, 0);
	ck_err(wr(&d, F_MEM_ACTION, SET_BUFFER), EINVAL);
	free(b);
	tclose(&d);
}
END_TEST

START_TEST(test_load_malformed)
{
	struct tdev d;
	uint64_t size;
	uint8_t *b;
	size_t len;
	const uint8_t *mem;
	uint8_t *copy;

	topen(&d, "memory=16K,chunk=2K");
	mem = devstate_fake_memory(d.f, &len);
	copy = malloc(len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, mem, len);
	wr_ok(&d, F_STATE, ST_STOP);

	/* record past the end of memory (16K = 4 pages) */
	b = make_delta(4, 0x77, &size);
	ck_assert_int_eq(load_batch_rc(&d, b, size), -EINVAL);
	ck_assert_mem_eq(mem, copy, len);
	ck_assert_uint_eq(devstate_fake_batches_loaded(d.f), 0);
	/* a length running past the end of the batch */
	le_enc(b, 8, 0);
	le_enc(b + 8, 8, 4097);
	ck_assert_int_eq(load_batch_rc(&d, b, size), -EINVAL);
	ck_assert_mem_eq(mem, copy, len);
	free(b);

	/* a good record followed by a truncated header: nothing applied */
	b = make_delta(1, 0x77, &size);
	b = realloc(b, size + 8);
	ck_assert_ptr_nonnull(b);
	memset(b + size, 0, 8);
	size += 8;
	load_batch(&d, b, size - 8);	/* the good record alone is fine */
	ck_assert_uint_eq(devstate_fake_batches_loaded(d.f), 1);
	ck_assert_uint_eq(mem[4096], 0x77);
	memset(copy + 4096, 0x77, 4096);
	memset(b + 16, 0x99, 4096);
	ck_assert_int_eq(load_batch_rc(&d, b, size), -EINVAL);
	ck_assert_mem_eq(mem, copy, len);
	ck_assert_uint_eq(devstate_fake_batches_loaded(d.f), 1);
	/* larger than any batch this device could produce */
	ck_err(wr(&d, F_MEM_SIZE, 1ull << 40), EINVAL);
	free(b);
	free(copy);
	tclose(&d);
}
END_TEST

START_TEST(test_config_size_mismatch)
{
	struct tdev d;

	topen(&d, "config=1000,config-region=4K");
	wr_ok(&d, F_STATE, ST_STOP);
	ck_err(wr(&d, F_CFG_SIZE, 1001), EINVAL);
	ck_err(wr(&d, F_CFG_SIZE, 4096), EINVAL);
	ck_err(wr(&d, F_CFG_SIZE, 0), EINVAL);
	/* the failed size writes do not count as a size write */
	ck_err(wr(&d, F_CFG_ACTION, SET_BUFFER), EINVAL);
	wr_ok(&d, F_CFG_SIZE, 1000);
	wr_ok(&d, F_CFG_ACTION, SET_BUFFER);
	tclose(&d);
}
END_TEST

START_TEST(test_config_set_without_size)
{
	struct tdev d;

	topen(&d, "config=1000");
	wr_ok(&d, F_STATE, ST_STOP);
	ck_err(wr(&d, F_CFG_ACTION, SET_BUFFER), EINVAL);
	ck_assert(!devstate_fake_config_loaded(d.f));
	/* a size written in an earlier STOP period does not count */
	wr_ok(&d, F_CFG_SIZE, 1000);
	wr_ok(&d, F_STATE, ST_RUNNING);
	wr_ok(&d, F_STATE, ST_STOP);
	ck_err(wr(&d, F_CFG_ACTION, SET_BUFFER), EINVAL);
	wr_ok(&d, F_CFG_SIZE, 1000);
	wr_ok(&d, F_CFG_ACTION, SET_BUFFER);
	ck_assert(devstate_fake_config_loaded(d.f));
	tclose(&d);
}
END_TEST

START_TEST(test_config_transfer)
{
	struct tdev d;
	uint8_t in[1000], out[1000], *pad;
	const uint8_t *cfg;
	size_t len;
	unsigned i;

	topen(&d, "config=1000,config-region=4K");
	cfg = devstate_fake_config(d.f, &len);
	ck_assert_uint_eq(len, 1000);
	wr_ok(&d, F_CFG_ACTION, GET_BUFFER);
	dread(&d, DEVSTATE_REGION_CONFIG, 0, out, sizeof(out));
	ck_assert_mem_eq(out, cfg, 1000);
	/* load: only size bytes move, the region tail is ignored */
	pad = calloc(1, 4096);
	ck_assert_ptr_nonnull(pad);
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7);
	memcpy(pad, in, sizeof(in));
	memset(pad + 1000, 0xee, 4096 - 1000);
	wr_ok(&d, F_STATE, ST_STOP);
	wr_ok(&d, F_CFG_SIZE, 1000);
	dwrite(&d, DEVSTATE_REGION_CONFIG, 0, pad, 4096);
	wr_ok(&d, F_CFG_ACTION, SET_BUFFER);
	ck_assert_mem_eq(cfg, in, 1000);
	free(pad);
	tclose(&d);

	/* a config region smaller than the config cannot move it */
	topen(&d, "config=8K,config-region=4K");
	ck_err(wr(&d, F_CFG_ACTION, GET_BUFFER), EINVAL);
	wr_ok(&d, F_STATE, ST_STOP);
	wr_ok(&d, F_CFG_SIZE, 8192);
	ck_err(wr(&d, F_CFG_ACTION, SET_BUFFER), EINVAL);
	tclose(&d);
}
END_TEST

START_TEST(test_memory_after_config)
{
	struct tdev d;
	uint64_t size;
	uint8_t *b;

	topen(&d, "memory=64K,chunk=4K,config=100");
	b = make_delta(0, 1, &size);
	wr_ok(&d, F_STATE, ST_STOP);
	load_batch(&d, b, size);
	wr_ok(&d, F_CFG_SIZE, 100);
	wr_ok(&d, F_CFG_ACTION, SET_BUFFER);
	ck_err(wr(&d, F_MEM_SIZE, size), EINVAL);
	ck_err(wr(&d, F_MEM_SIZE, 0), EINVAL);
	wr_ok(&d, F_MEM_POS, 0);
	ck_err(wr(&d, F_MEM_ACTION, SET_BUFFER), EINVAL);
	ck_assert_uint_eq(devstate_fake_batches_loaded(d.f), 1);
	/* a new STOP period starts afresh */
	wr_ok(&d, F_STATE, ST_SL);
	ck_assert(!devstate_fake_config_loaded(d.f));
	wr_ok(&d, F_STATE, ST_STOP);
	load_batch(&d, b, size);
	ck_assert_uint_eq(devstate_fake_batches_loaded(d.f), 2);
	free(b);
	tclose(&d);
}
END_TEST

START_TEST(test_leaving_stop_drops_batch)
{
	struct tdev d;
	uint64_t size;
	uint8_t *b;
	const uint8_t *mem;

	topen(&d, "memory=64K,chunk=4K,zero=yes");
	mem = devstate_fake_memory(d.f, NULL);
	b = make_delta(2, 9, &size);
	wr_ok(&d, F_STATE, ST_STOP);
	wr_ok(&d, F_MEM_SIZE, size);
	dwrite(&d, DEVSTATE_REGION_MEMORY, 0, b, 4096);
	wr_ok(&d, F_MEM_POS, 0);
	wr_ok(&d, F_MEM_ACTION, SET_BUFFER);
	wr_ok(&d, F_STATE, ST_RUNNING);
	wr_ok(&d, F_STATE, ST_STOP);
	/* the incomplete batch is gone: chunk 1 is refused, a new batch
	 * is accepted */
	wr_ok(&d, F_MEM_POS, 4096);
	ck_err(wr(&d, F_MEM_ACTION, SET_BUFFER), EINVAL);
	load_batch(&d, b, size);
	ck_assert_uint_eq(devstate_fake_batches_loaded(d.f), 1);
	ck_assert_uint_eq(mem[2 * 4096 + 17], 9);
	free(b);
	tclose(&d);
}
END_TEST

/* ---------------------------------------------------------------- */
/* System memory.                                                   */

START_TEST(test_start_addr)
{
	struct tdev d;

	topen(&d, "sysmem=1M");
	ck_err(wr(&d, F_SYS_START, 1), EINVAL);
	ck_err(wr(&d, F_SYS_START, 4095), EINVAL);
	ck_err(wr(&d, F_SYS_START, 4096 + 512), EINVAL);
	ck_err(wr(&d, F_SYS_START, 1024 * 1024), EINVAL);
	wr_ok(&d, F_SYS_START, 1024 * 1024 - 4096);
	wr_ok(&d, F_SYS_START, 0);
	tclose(&d);
}
END_TEST

START_TEST(test_page_nr)
{
	struct tdev d;

	topen(&d, "bitmap=16,sysmem=1M");	/* 8R = 128 pages */
	wr_ok(&d, F_SYS_START, 0);
	ck_err(wr(&d, F_SYS_PAGE_NR, 0), EINVAL);
	ck_err(wr(&d, F_SYS_PAGE_NR, 129), EINVAL);
	ck_err(wr(&d, F_SYS_PAGE_NR, UINT64_MAX), EINVAL);
	wr_ok(&d, F_SYS_PAGE_NR, 128);
	wr_ok(&d, F_SYS_PAGE_NR, 1);
	/* the range must lie inside system memory (256 pages) */
	wr_ok(&d, F_SYS_START, 200 * 4096);
	wr_ok(&d, F_SYS_PAGE_NR, 56);
	ck_err(wr(&d, F_SYS_PAGE_NR, 57), EINVAL);
	tclose(&d);

	topen(&d, "version=1,bitmap=16,sysmem=1M");
	wr_ok(&d, F_SYS_START, 0);
	ck_err(wr(&d, F_SYS_PAGE_NR, 0), EINVAL);
	ck_err(wr(&d, F_SYS_PAGE_NR, 129), EINVAL);
	wr_ok(&d, F_SYS_PAGE_NR, 128);
	tclose(&d);
}
END_TEST

START_TEST(test_v1_trigger)
{
	struct tdev d;
	uint8_t b[8], pre[8];
	uint32_t off;

	topen(&d, "version=1,bitmap=8,sysmem=1M");
	/* v1 has no system_memory.action: 56 is start_addr (8 bytes) */
	le_enc(b, 4, GET_BITMAP);
	ck_err(ops->ctl_write(d.p, 56, b, 4, d.err, sizeof(d.err)), EINVAL);
	off = 64;
	/* a page_nr write before any start_addr is refused */
	le_enc(b, 8, 8);
	ck_err(ops->ctl_write(d.p, off, b, 8, d.err, sizeof(d.err)), EINVAL);
	wr_ok(&d, F_STATE, ST_RL);
	devstate_fake_touch_sysmem(d.f, 5);
	devstate_fake_touch_sysmem(d.f, 9);
	memset(pre, 0xaa, sizeof(pre));
	dwrite(&d, DEVSTATE_REGION_BITMAP, 0, pre, sizeof(pre));
	wr_ok(&d, F_SYS_START, 0);
	dread(&d, DEVSTATE_REGION_BITMAP, 0, b, 8);
	ck_assert_mem_eq(b, pre, 8);	/* start_addr alone does nothing */
	wr_ok(&d, F_SYS_PAGE_NR, 16);	/* the query */
	dread(&d, DEVSTATE_REGION_BITMAP, 0, b, 8);
	ck_assert_uint_eq(b[0], 0x20);
	ck_assert_uint_eq(b[1], 0x02);
	ck_assert_uint_eq(b[2], 0xaa);	/* beyond ceil(16/8) bytes */
	tclose(&d);
}
END_TEST

START_TEST(test_v2_trigger)
{
	struct tdev d;
	uint8_t b[8], pre[8];

	topen(&d, "bitmap=8,sysmem=1M");
	wr_ok(&d, F_STATE, ST_RL);
	/* a query before start_addr and page_nr were written */
	ck_err(wr(&d, F_SYS_ACTION, GET_BITMAP), EINVAL);
	wr_ok(&d, F_SYS_START, 4096);
	ck_err(wr(&d, F_SYS_ACTION, GET_BITMAP), EINVAL);
	devstate_fake_touch_sysmem(d.f, 1);
	devstate_fake_touch_sysmem(d.f, 12);
	devstate_fake_touch_sysmem(d.f, 13);
	memset(pre, 0xaa, sizeof(pre));
	dwrite(&d, DEVSTATE_REGION_BITMAP, 0, pre, sizeof(pre));
	wr_ok(&d, F_SYS_PAGE_NR, 12);	/* pages 1..12: only stores */
	dread(&d, DEVSTATE_REGION_BITMAP, 0, b, 8);
	ck_assert_mem_eq(b, pre, 8);
	wr_ok(&d, F_SYS_ACTION, GET_BITMAP);
	dread(&d, DEVSTATE_REGION_BITMAP, 0, b, 8);
	ck_assert_uint_eq(b[0], 0x01);	/* page 1 = bit 0 */
	ck_assert_uint_eq(b[1], 0x08);	/* page 12 = bit 11; page 13 is out
					   of range, high bits zeroed */
	ck_assert_uint_eq(b[2], 0xaa);
	/* pages 1 and 12 are forgotten, page 13 still pending */
	wr_ok(&d, F_SYS_START, 0);
	wr_ok(&d, F_SYS_PAGE_NR, 64);
	wr_ok(&d, F_SYS_ACTION, GET_BITMAP);
	dread(&d, DEVSTATE_REGION_BITMAP, 0, b, 8);
	ck_assert_uint_eq(b[0], 0x00);
	ck_assert_uint_eq(b[1], 0x20);
	tclose(&d);
}
END_TEST

static void query(struct tdev *d, uint64_t start_page, uint64_t page_nr,
		  uint8_t *out)
{
	wr_ok(d, F_SYS_START, start_page * 4096);
	wr_ok(d, F_SYS_PAGE_NR, page_nr);
	if (!d->v1)
		wr_ok(d, F_SYS_ACTION, GET_BITMAP);
	dread(d, DEVSTATE_REGION_BITMAP, 0, out, (page_nr + 7) / 8);
}

START_TEST(test_bitmap_empty_outside_logging)
{
	static const uint32_t states[] = { ST_RUNNING, ST_STOP };
	struct tdev d;
	uint8_t ff[64], b[64];
	unsigned i, j;

	topen(&d, "bitmap=64,sysmem=1M");
	for (i = 0; i < 2; i++) {
		wr_ok(&d, F_STATE, states[i]);
		for (j = 0; j < 100; j++)
			devstate_fake_touch_sysmem(d.f, j);
		memset(ff, 0xff, sizeof(ff));
		dwrite(&d, DEVSTATE_REGION_BITMAP, 0, ff, sizeof(ff));
		query(&d, 0, 100, b);
		for (j = 0; j < 13; j++)
			ck_assert_uint_eq(b[j], 0);
		dread(&d, DEVSTATE_REGION_BITMAP, 13, b, 1);
		ck_assert_uint_eq(b[0], 0xff);
	}
	tclose(&d);
}
END_TEST

START_TEST(test_query_forgets_only_range)
{
	struct tdev d;
	uint8_t b[32];
	uint64_t np;
	const uint64_t *truth;

	topen(&d, "bitmap=32,sysmem=1M");
	wr_ok(&d, F_STATE, ST_RL);
	devstate_fake_touch_sysmem(d.f, 3);
	devstate_fake_touch_sysmem(d.f, 70);
	devstate_fake_touch_sysmem(d.f, 200);
	devstate_fake_touch_sysmem(d.f, 255);
	devstate_fake_touch_sysmem(d.f, 256);	/* past sysmem: ignored */
	query(&d, 64, 64, b);
	ck_assert_uint_eq(b[0], 0x40);		/* page 70 */
	ck_assert_uint_eq(b[1] | b[2] | b[3] | b[4] | b[5] | b[6] | b[7], 0);
	query(&d, 0, 256, b);
	ck_assert_uint_eq(b[0], 0x08);		/* page 3 */
	ck_assert_uint_eq(b[8], 0x00);		/* 70 was forgotten */
	ck_assert_uint_eq(b[25], 0x01);		/* page 200 */
	ck_assert_uint_eq(b[31], 0x80);		/* page 255 */
	query(&d, 0, 256, b);
	ck_assert_uint_eq(b[0] | b[25] | b[31], 0);
	/* the truth keeps everything written while LOGGING */
	truth = devstate_fake_sysmem_truth(d.f, &np);
	ck_assert_uint_eq(np, 256);
	ck_assert_uint_eq(truth[0], 1ull << 3);
	ck_assert_uint_eq(truth[1], 1ull << 6);
	ck_assert_uint_eq(truth[3], (1ull << 8) | (1ull << 63));
	tclose(&d);
}
END_TEST

START_TEST(test_log_overflow)
{
	struct tdev d;
	uint8_t b[16];
	unsigned i;

	topen(&d, "bitmap=16,sysmem=1M,log-limit=4");
	wr_ok(&d, F_STATE, ST_RL);
	for (i = 0; i < 4; i++) {
		devstate_fake_touch_sysmem(d.f, 10 + i);
		devstate_fake_touch_sysmem(d.f, 10 + i);	/* not distinct */
	}
	query(&d, 0, 128, b);			/* 4 pending: fine */
	ck_assert_uint_eq(b[1], 0x3c);
	for (i = 0; i < 5; i++)
		devstate_fake_touch_sysmem(d.f, 20 + i);
	wr_ok(&d, F_SYS_START, 0);
	wr_ok(&d, F_SYS_PAGE_NR, 128);
	ck_err(wr(&d, F_SYS_ACTION, GET_BITMAP), ENOSPC);
	/* any range, repeatedly, in any LOGGING state */
	wr_ok(&d, F_SYS_START, 100 * 4096);
	wr_ok(&d, F_SYS_PAGE_NR, 1);
	ck_err(wr(&d, F_SYS_ACTION, GET_BITMAP), ENOSPC);
	wr_ok(&d, F_STATE, ST_SL);
	ck_err(wr(&d, F_SYS_ACTION, GET_BITMAP), ENOSPC);
	/* leaving LOGGING clears it (and the bitmap is empty there) */
	wr_ok(&d, F_STATE, ST_STOP);
	query(&d, 0, 128, b);
	ck_assert_uint_eq(b[2], 0);
	wr_ok(&d, F_STATE, ST_RL);
	devstate_fake_touch_sysmem(d.f, 30);
	query(&d, 0, 128, b);
	ck_assert_uint_eq(b[3], 0x40);
	tclose(&d);

	/* v1: the page_nr write reports the overflow */
	topen(&d, "version=1,bitmap=16,sysmem=1M,log-limit=1");
	wr_ok(&d, F_STATE, ST_SL);
	devstate_fake_touch_sysmem(d.f, 1);
	devstate_fake_touch_sysmem(d.f, 2);
	wr_ok(&d, F_SYS_START, 0);
	ck_err(wr(&d, F_SYS_PAGE_NR, 8), ENOSPC);
	tclose(&d);
}
END_TEST

START_TEST(test_logging_transitions_empty_log)
{
	struct tdev d;
	uint8_t b[16];
	const uint64_t *truth;

	topen(&d, "bitmap=16,sysmem=1M");
	/* LOGGING to LOGGING keeps the log */
	wr_ok(&d, F_STATE, ST_RL);
	devstate_fake_touch_sysmem(d.f, 7);
	wr_ok(&d, F_STATE, ST_SL);
	query(&d, 0, 128, b);
	ck_assert_uint_eq(b[0], 0x80);
	/* leaving LOGGING empties it: coming back finds nothing */
	devstate_fake_touch_sysmem(d.f, 8);
	wr_ok(&d, F_STATE, ST_STOP);
	devstate_fake_touch_sysmem(d.f, 9);	/* not logging: not recorded */
	wr_ok(&d, F_STATE, ST_RL);
	query(&d, 0, 128, b);
	ck_assert_uint_eq(b[1], 0);
	/* the same through RUNNING */
	devstate_fake_touch_sysmem(d.f, 11);
	wr_ok(&d, F_STATE, ST_RUNNING);
	wr_ok(&d, F_STATE, ST_SL);
	query(&d, 0, 128, b);
	ck_assert_uint_eq(b[1], 0);
	/* the truth was cleared when LOGGING was entered again */
	truth = devstate_fake_sysmem_truth(d.f, NULL);
	ck_assert_uint_eq(truth[0], 0);
	devstate_fake_touch_sysmem(d.f, 12);
	ck_assert_uint_eq(truth[0], 1ull << 12);
	tclose(&d);
}
END_TEST

/* ---------------------------------------------------------------- */
/* A whole migration by hand: fake A into fake B.                   */

static void migrate_by_hand(const char *src, const char *dst,
			    bool use_workload)
{
	struct tdev a, b;
	struct devstate_fake_counters ca, cb;
	uint64_t size, batches = 0, csize;
	const uint8_t *ma, *mb, *fa, *fb;
	size_t la, lb, cla, clb;
	uint32_t crc_a, crc_b;
	uint8_t *buf, *cfg;
	int i;

	topen(&a, src);
	topen(&b, dst);
	ck_assert_int_eq(ops->digest(a.p, &crc_a), 0);
	ck_assert_int_eq(ops->digest(b.p, &crc_b), 0);
	ck_assert_uint_ne(crc_a, crc_b);
	wr_ok(&b, F_STATE, ST_STOP);

	/* setup: whole snapshot, then LOGGING; a write in between */
	buf = save_batch(&a, &size);
	load_batch(&b, buf, size);
	batches++;
	free(buf);
	dirty_page(&a, 1, 0xa1);
	wr_ok(&a, F_STATE, ST_RL);
	/* pre-copy */
	for (i = 0; i < 4; i++) {
		if (use_workload)
			devstate_fake_workload(a.f, 5);
		else
			dirty_page(&a, (uint64_t)i * 3, (uint8_t)i);
		buf = save_batch(&a, &size);
		load_batch(&b, buf, size);
		batches++;
		free(buf);
	}
	/* stop-and-copy */
	dirty_page(&a, 2, 0xb2);
	wr_ok(&a, F_STATE, ST_SL);
	dirty_page(&a, 0, 0xc0);	/* a stopped device may still have
					   pending writes */
	buf = save_batch(&a, &size);
	load_batch(&b, buf, size);
	batches++;
	free(buf);
	csize = rd_ok(&a, F_CFG_SIZE);
	cfg = malloc(csize);
	ck_assert_ptr_nonnull(cfg);
	wr_ok(&a, F_CFG_ACTION, GET_BUFFER);
	dread(&a, DEVSTATE_REGION_CONFIG, 0, cfg, csize);
	wr_ok(&a, F_STATE, ST_STOP);
	wr_ok(&b, F_CFG_SIZE, csize);
	dwrite(&b, DEVSTATE_REGION_CONFIG, 0, cfg, csize);
	wr_ok(&b, F_CFG_ACTION, SET_BUFFER);
	free(cfg);
	ck_assert(devstate_fake_config_loaded(b.f));
	ck_assert_uint_eq(devstate_fake_batches_loaded(b.f), batches);
	wr_ok(&b, F_STATE, ST_RUNNING);

	ma = devstate_fake_memory(a.f, &la);
	mb = devstate_fake_memory(b.f, &lb);
	fa = devstate_fake_config(a.f, &cla);
	fb = devstate_fake_config(b.f, &clb);
	ck_assert_uint_eq(la, lb);
	ck_assert_uint_eq(cla, clb);
	ck_assert_mem_eq(ma, mb, la);
	ck_assert_mem_eq(fa, fb, cla);
	ck_assert_int_eq(ops->digest(a.p, &crc_a), 0);
	ck_assert_int_eq(ops->digest(b.p, &crc_b), 0);
	ck_assert_uint_eq(crc_a, crc_b);

	devstate_fake_counters(a.f, &ca);
	devstate_fake_counters(b.f, &cb);
	ck_assert_uint_gt(ca.chunks_got, 0);
	ck_assert_uint_eq(ca.chunks_got, cb.chunks_set);
	ck_assert_uint_eq(cb.chunks_got, 0);
	ck_assert_uint_eq(ca.chunks_set, 0);
	/* the device's own time: filling on the source, draining on the
	 * destination, nothing the other way */
	ck_assert_uint_gt(ca.fill_ns, 0);
	ck_assert_uint_gt(cb.drain_ns, 0);
	ck_assert_uint_eq(ca.drain_ns, 0);
	ck_assert_uint_eq(cb.fill_ns, 0);
	tclose(&a);
	tclose(&b);
}

START_TEST(test_replay_a_to_b)
{
	migrate_by_hand("memory=256K,config=10000,config-region=16K,chunk=3000,seed=7",
			"memory=256K,config=10000,config-region=12K,chunk=3000,zero=yes",
			false);
	migrate_by_hand("version=1,memory=1M,config=4K,chunk=64K,seed=9,mmap=no",
			"version=1,memory=1M,config=4K,chunk=64K,seed=10",
			true);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Fault injection and short transfers.                             */

START_TEST(test_fail_at)
{
	struct tdev d;
	struct devstate_fake_counters c;
	uint8_t b[16], z[16];
	uint64_t n, v;

	topen(&d, "memory=64K,chunk=4K,config=64");
	ck_assert_uint_eq(devstate_fake_op_count(d.f), 0);
	ck_assert_uint_eq(rd_ok(&d, F_VERSION), 2);
	ck_assert_uint_eq(devstate_fake_op_count(d.f), 1);
	/* regions and digest are not counted */
	region_len(&d, DEVSTATE_REGION_CONFIG);
	ck_assert_int_eq(ops->digest(d.p, &(uint32_t){ 0 }), 0);
	ck_assert_uint_eq(devstate_fake_op_count(d.f), 1);

	/* a failed state write has no effect */
	n = devstate_fake_op_count(d.f);
	devstate_fake_fail_at(d.f, n + 1, EIO);
	ck_err(wr(&d, F_STATE, ST_STOP), EIO);
	ck_assert_msg(d.err[0] != '\0', "no error sentence");
	ck_assert_uint_eq(devstate_fake_state(d.f), ST_RUNNING);
	ck_assert_uint_eq(devstate_fake_op_count(d.f), n + 1);
	wr_ok(&d, F_STATE, ST_STOP);		/* op n + 2 works */
	ck_assert_uint_eq(devstate_fake_state(d.f), ST_STOP);
	wr_ok(&d, F_STATE, ST_RUNNING);

	/* a failed freeze freezes nothing */
	devstate_fake_fail_at(d.f, devstate_fake_op_count(d.f) + 1, EINTR);
	ck_err(rd(&d, F_MEM_SIZE, &v), EINTR);
	wr_ok(&d, F_MEM_POS, 0);
	ck_err(wr(&d, F_MEM_ACTION, GET_BUFFER), EINVAL);

	/* a failed GET_BUFFER neither counts nor fills the region */
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 16 + 65536);
	memset(z, 0x5a, sizeof(z));
	dwrite(&d, DEVSTATE_REGION_MEMORY, 0, z, sizeof(z));
	devstate_fake_fail_at(d.f, devstate_fake_op_count(d.f) + 1, EFAULT);
	ck_err(wr(&d, F_MEM_ACTION, GET_BUFFER), EFAULT);
	devstate_fake_counters(d.f, &c);
	ck_assert_uint_eq(c.chunks_got, 0);
	dread(&d, DEVSTATE_REGION_MEMORY, 0, b, sizeof(b));
	ck_assert_mem_eq(b, z, sizeof(z));

	/* a failed data read leaves the buffer alone; a failed write the
	 * region */
	memset(b, 0x11, sizeof(b));
	devstate_fake_fail_at(d.f, devstate_fake_op_count(d.f) + 1, EIO);
	ck_err(ops->data_read(d.p, DEVSTATE_REGION_CONFIG, 0, b, 16, d.err,
			      sizeof(d.err)), EIO);
	ck_assert_uint_eq(b[0], 0x11);
	devstate_fake_fail_at(d.f, devstate_fake_op_count(d.f) + 1, EIO);
	ck_err(ops->data_write(d.p, DEVSTATE_REGION_MEMORY, 0, b, 16, d.err,
			       sizeof(d.err)), EIO);
	dread(&d, DEVSTATE_REGION_MEMORY, 0, b, sizeof(b));
	ck_assert_mem_eq(b, z, sizeof(z));
	devstate_fake_fail_at(d.f, devstate_fake_op_count(d.f) + 1, ENOMEM);
	ck_err(ops->data_map(d.p, DEVSTATE_REGION_MEMORY, &(void *){ NULL },
			     d.err, sizeof(d.err)), ENOMEM);
	/* fail_at far ahead, then disabled */
	devstate_fake_fail_at(d.f, devstate_fake_op_count(d.f) + 2, EIO);
	devstate_fake_fail_at(d.f, 0, 0);
	rd_ok(&d, F_VERSION);
	rd_ok(&d, F_VERSION);
	devstate_fake_counters(d.f, &c);
	ck_assert_uint_eq(c.ctl_reads + c.ctl_writes + c.data_reads +
			  c.data_writes + c.maps, devstate_fake_op_count(d.f));
	ck_assert_uint_eq(c.maps, 1);
	tclose(&d);
}
END_TEST

START_TEST(test_short_transfers)
{
	struct tdev d;
	struct devstate_fake_counters c;
	uint8_t in[100], out[100];
	unsigned i;
	uint64_t n;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i + 1);
	topen(&d, "config=4K");
	devstate_fake_short_all(d.f, 1);
	dwrite(&d, DEVSTATE_REGION_CONFIG, 10, in, sizeof(in));
	memset(out, 0, sizeof(out));
	dread(&d, DEVSTATE_REGION_CONFIG, 10, out, sizeof(out));
	ck_assert_mem_eq(in, out, sizeof(in));
	/* 100 moves as 50+25+12+6+3+2+1+1: seven short inner transfers
	 * each way, retried inside the op */
	devstate_fake_counters(d.f, &c);
	ck_assert_uint_eq(c.short_transfers, 14);
	ck_assert_uint_eq(c.data_reads, 1);
	ck_assert_uint_eq(c.data_writes, 1);
	/* control accesses are never short */
	rd_ok(&d, F_CFG_SIZE);
	devstate_fake_counters(d.f, &c);
	ck_assert_uint_eq(c.short_transfers, 14);
	devstate_fake_short_all(d.f, 0);
	dread(&d, DEVSTATE_REGION_CONFIG, 10, out, sizeof(out));
	devstate_fake_counters(d.f, &c);
	ck_assert_uint_eq(c.short_transfers, 14);

	/* only the nth op */
	n = devstate_fake_op_count(d.f);
	devstate_fake_short_at(d.f, n + 2);
	dread(&d, DEVSTATE_REGION_CONFIG, 10, out, 8);	/* n + 1: whole */
	devstate_fake_counters(d.f, &c);
	ck_assert_uint_eq(c.short_transfers, 14);
	memset(out, 0, sizeof(out));
	dread(&d, DEVSTATE_REGION_CONFIG, 10, out, 8);	/* n + 2: 4+2+1+1 */
	ck_assert_mem_eq(in, out, 8);
	devstate_fake_counters(d.f, &c);
	ck_assert_uint_eq(c.short_transfers, 17);
	dread(&d, DEVSTATE_REGION_CONFIG, 10, out, 8);
	devstate_fake_counters(d.f, &c);
	ck_assert_uint_eq(c.short_transfers, 17);
	tclose(&d);
}
END_TEST

/* ---------------------------------------------------------------- */
/* URI parsing.                                                     */

START_TEST(test_uri_errors)
{
	static const char *const bad[] = {
		"foo=1", "memory", "memory=", "memory=12Q", "memory=5000",
		"memory=128G", "sysmem=65G", "sysmem=100", "chunk=2G",
		"config=2G", "config-region=4G", "bitmap=1T", "ctl=2G",
		"caps=bogus", "caps=device-memory+", "caps=+system-memory",
		"caps=device-memory+foo", "caps=-1", "version=abc",
		"version=4294967296", "version=", "seed=x", "seed=-1",
		"workload=1K", "log-limit=abc", "mmap=maybe", "zero=2",
		"version=2,memory=64K,bogus=1",
	};
	char err[DEVSTATE_ERR_MAX];
	void *p;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;

		p = NULL;
		err[0] = '\0';
		rc = ops->open(bad[i], &p, err, sizeof(err));
		ck_assert_msg(rc == -EINVAL, "'%s' gave %d", bad[i], rc);
		ck_assert_ptr_null(p);
		ck_assert_msg(!strncmp(err, "fake: ", 6), "'%s': no sentence",
			      bad[i]);
	}
	ck_assert_int_eq(ops->open("foo=1", &p, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "unknown key 'foo'") &&
		      strstr(err, "version") && strstr(err, "log-limit"),
		      "%s", err);
}
END_TEST

START_TEST(test_uri_keys)
{
	struct devstate_regions rg;
	struct tdev d;
	const uint8_t *m;
	uint64_t np;
	size_t len;
	size_t i;

	topen(&d, "version=1,caps=2,memory=8K,config=0x100,config-region=1K,"
		  "memory-region=2K,bitmap-region=1K,ctl=100,sysmem=64K,"
		  "seed=0x10,workload=0,mmap=no,log-limit=10,zero=yes,");
	ck_assert_int_eq(ops->regions(d.p, &rg, d.err, sizeof(d.err)), 0);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_CTL], 100);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_CONFIG], 1024);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_MEMORY], 2048);
	ck_assert_uint_eq(rg.size[DEVSTATE_REGION_BITMAP], 1024);
	ck_assert(!rg.mappable[DEVSTATE_REGION_MEMORY]);
	ck_assert_uint_eq(rd_ok(&d, F_CAPS), 2);
	ck_assert_uint_eq(rd_ok(&d, F_CFG_SIZE), 256);
	m = devstate_fake_config(d.f, &len);
	for (i = 0; i < len; i++)
		ck_assert_uint_eq(m[i], 0);
	/* without cap DEVICE_MEMORY there is no device memory */
	devstate_fake_memory(d.f, &len);
	ck_assert_uint_eq(len, 0);
	devstate_fake_sysmem_truth(d.f, &np);
	ck_assert_uint_eq(np, 16);
	tclose(&d);

	/* unknown caps bits are reported as they are */
	topen(&d, "caps=0x80000003");
	ck_assert_uint_eq(rd_ok(&d, F_CAPS), 0x80000003u);
	tclose(&d);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Contents and workload.                                           */

START_TEST(test_contents_seeded)
{
	struct tdev a, b, c;
	const uint8_t *ma, *mb, *mc;
	size_t len;
	uint32_t ca, cb, cc;

	topen(&a, "memory=64K,config=1000,seed=42");
	topen(&b, "memory=64K,config=1000,seed=42");
	topen(&c, "memory=64K,config=1000,seed=43");
	ma = devstate_fake_memory(a.f, &len);
	mb = devstate_fake_memory(b.f, NULL);
	mc = devstate_fake_memory(c.f, NULL);
	ck_assert_mem_eq(ma, mb, len);
	ck_assert(memcmp(ma, mc, len) != 0);
	ops->digest(a.p, &ca);
	ops->digest(b.p, &cb);
	ops->digest(c.p, &cc);
	ck_assert_uint_eq(ca, cb);
	ck_assert_uint_ne(ca, cc);
	tclose(&a);
	tclose(&b);
	tclose(&c);
}
END_TEST

START_TEST(test_workload_determinism)
{
	struct tdev a, b, c;
	const uint8_t *ma, *mb, *mc;
	const uint64_t *ta, *tb, *tc;
	uint64_t np, sa, sb, w, dirty;
	uint8_t *ba, *bb, *before;
	size_t len;

	topen(&a, "memory=1M,chunk=64K,sysmem=16M,seed=5");
	topen(&b, "memory=1M,chunk=64K,sysmem=16M,seed=5");
	topen(&c, "memory=1M,chunk=64K,sysmem=16M,seed=6,zero=no");
	free(save_batch(&a, &sa));
	free(save_batch(&b, &sb));
	free(save_batch(&c, &sb));
	wr_ok(&a, F_STATE, ST_RL);
	wr_ok(&b, F_STATE, ST_RL);
	wr_ok(&c, F_STATE, ST_RL);
	ma = devstate_fake_memory(a.f, &len);
	before = malloc(len);
	ck_assert_ptr_nonnull(before);
	memcpy(before, ma, len);
	devstate_fake_workload(a.f, 20);
	devstate_fake_workload(b.f, 20);
	devstate_fake_workload(c.f, 20);
	mb = devstate_fake_memory(b.f, NULL);
	mc = devstate_fake_memory(c.f, NULL);
	ck_assert(memcmp(before, ma, len) != 0);
	ck_assert_mem_eq(ma, mb, len);
	ck_assert(memcmp(ma, mc, len) != 0);
	ta = devstate_fake_sysmem_truth(a.f, &np);
	tb = devstate_fake_sysmem_truth(b.f, NULL);
	tc = devstate_fake_sysmem_truth(c.f, NULL);
	ck_assert_uint_eq(np, 4096);
	ck_assert_mem_eq(ta, tb, np / 8);
	ck_assert(memcmp(ta, tc, np / 8) != 0);
	for (dirty = 0, w = 0; w < np / 64; w++)
		dirty += (uint64_t)__builtin_popcountll(ta[w]);
	ck_assert_uint_gt(dirty, 0);
	ck_assert_uint_le(dirty, 20);
	/* the same delta on both */
	ba = save_batch(&a, &sa);
	bb = save_batch(&b, &sb);
	ck_assert_uint_gt(sa, 0);
	ck_assert_uint_eq(sa, sb);
	ck_assert_mem_eq(ba, bb, sa);
	free(ba);
	free(bb);
	/* a stopped device does nothing */
	wr_ok(&a, F_STATE, ST_SL);
	memcpy(before, ma, len);
	devstate_fake_workload(a.f, 20);
	ck_assert_mem_eq(before, ma, len);
	ck_assert_uint_eq(rd_ok(&a, F_MEM_SIZE), 0);
	free(before);
	tclose(&a);
	tclose(&b);
	tclose(&c);
}
END_TEST

START_TEST(test_auto_workload)
{
	struct tdev d;
	const uint8_t *m;
	uint8_t *before, *b;
	uint64_t size;
	size_t len;

	topen(&d, "memory=256K,chunk=64K,workload=2");
	m = devstate_fake_memory(d.f, &len);
	before = malloc(len);
	ck_assert_ptr_nonnull(before);
	memcpy(before, m, len);
	/* the tick runs at the start of the size read: the snapshot
	 * already holds it */
	b = save_batch(&d, &size);
	ck_assert(memcmp(before, m, len) != 0);
	ck_assert_mem_eq(b + 16, m, len);
	free(b);
	/* a state write ticks before applying: RUNNING -> LOGGING ticks
	 * while running, and those writes are in the first delta */
	memcpy(before, m, len);
	wr_ok(&d, F_STATE, ST_RL);
	ck_assert(memcmp(before, m, len) != 0);
	b = save_batch(&d, &size);
	ck_assert_uint_gt(size, 0);
	free(b);
	/* the tick before STOP still runs (device running), then none */
	memcpy(before, m, len);
	wr_ok(&d, F_STATE, ST_SL);
	ck_assert(memcmp(before, m, len) != 0);
	memcpy(before, m, len);
	wr_ok(&d, F_STATE, ST_STOP);
	wr_ok(&d, F_STATE, ST_SL);
	ck_assert_mem_eq(before, m, len);
	/* switched off */
	wr_ok(&d, F_STATE, ST_RL);
	devstate_fake_set_auto_workload(d.f, 0);
	b = save_batch(&d, &size);
	free(b);
	memcpy(before, m, len);
	ck_assert_uint_eq(rd_ok(&d, F_MEM_SIZE), 0);
	wr_ok(&d, F_STATE, ST_RUNNING);
	ck_assert_mem_eq(before, m, len);
	free(before);
	tclose(&d);
}
END_TEST

/* ---------------------------------------------------------------- */
/* mig2=FLAGS: the kernel-like uAPI v2 model (transports/fake-mig2.c). */

#define M_ERROR		0u
#define M_STOP		1u
#define M_RUNNING	2u
#define M_STOP_COPY	3u
#define M_RESUMING	4u
#define M_RUNNING_P2P	5u
#define M_PRE_COPY	6u
#define M_PRE_COPY_P2P	7u

static uint32_t m2_state(struct tdev *d)
{
	uint32_t st = 99;

	ck_assert_int_eq(ops->mig2_get_state(d->p, &st, d->err,
					     sizeof(d->err)), 0);
	return st;
}

static int m2_set(struct tdev *d, uint32_t st)
{
	d->err[0] = '\0';
	return ops->mig2_set_state(d->p, st, d->err, sizeof(d->err));
}

static void m2_set_ok(struct tdev *d, uint32_t st)
{
	int rc = m2_set(d, st);

	ck_assert_msg(rc == 0, "set %u: %d %s", st, rc, d->err);
}

/* Read until the device says "nothing more now"; append to *buf. */
static size_t m2_drain(struct tdev *d, uint8_t **buf, size_t *len)
{
	uint8_t tmp[10000];	/* not a multiple of a record */
	size_t got, total = 0;
	int rc;

	for (;;) {
		rc = ops->mig2_read(d->p, tmp, sizeof(tmp), &got, d->err,
				    sizeof(d->err));
		ck_assert_msg(rc == 0, "read: %d %s", rc, d->err);
		if (!got)
			return total;
		*buf = realloc(*buf, *len + got);
		ck_assert_ptr_nonnull(*buf);
		memcpy(*buf + *len, tmp, got);
		*len += got;
		total += got;
	}
}

START_TEST(test_mig2_probe)
{
	struct tdev d;
	uint64_t flags = 0;

	topen(&d, "memory=64K");
	ck_assert_int_eq(ops->mig2_probe(d.p, &flags, d.err, sizeof(d.err)),
			 -EOPNOTSUPP);
	ck_assert_uint_eq(devstate_fake_op_count(d.f), 0);
	tclose(&d);
	topen(&d, "memory=64K,mig2=stop-copy");
	ck_assert_int_eq(ops->mig2_probe(d.p, &flags, d.err, sizeof(d.err)), 0);
	ck_assert_uint_eq(flags, 1);
	ck_assert_uint_eq(m2_state(&d), M_RUNNING);
	tclose(&d);
	topen(&d, "memory=64K,mig2=pre-copy+stop-copy+p2p");
	ck_assert_int_eq(ops->mig2_probe(d.p, &flags, d.err, sizeof(d.err)), 0);
	ck_assert_uint_eq(flags, 7);
	tclose(&d);
	topen(&d, "memory=64K,mig2=9");
	ck_assert_int_eq(ops->mig2_probe(d.p, &flags, d.err, sizeof(d.err)), 0);
	ck_assert_uint_eq(flags, 9);
	tclose(&d);
	ck_assert_int_eq(ops->open("mig2=stop-copy+bogus", &d.p, d.err,
				   sizeof(d.err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "bad mig2 flags"));
	ck_assert_int_eq(ops->open("mig2=p2p+", &d.p, d.err, sizeof(d.err)),
			 -EINVAL);
}
END_TEST

START_TEST(test_mig2_single_arcs)
{
	struct tdev d;
	uint8_t buf[64];
	size_t got;
	struct devstate_fake_mig2_stats st;

	topen(&d, "memory=64K,config=100,mig2=all");
	/* with P2P, RUNNING -> STOP is two arcs: refused, state kept */
	ck_assert_int_eq(m2_set(&d, M_STOP), -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "not one arc"));
	ck_assert_uint_eq(m2_state(&d), M_RUNNING);
	ck_assert_int_eq(m2_set(&d, M_STOP_COPY), -EINVAL);
	ck_assert_int_eq(m2_set(&d, M_ERROR), -EINVAL);
	ck_assert_int_eq(m2_set(&d, 8), -EINVAL);
	m2_set_ok(&d, M_RUNNING_P2P);
	m2_set_ok(&d, M_STOP);
	/* no session outside the saving group and RESUMING */
	ck_assert_int_eq(ops->mig2_read(d.p, buf, sizeof(buf), &got, d.err,
					sizeof(d.err)), -EBADF);
	m2_set_ok(&d, M_STOP_COPY);
	ck_assert_int_eq(devstate_fake_mig2_session_open(d.f), 1);
	/* STOP_COPY -> PRE_COPY is refused outright */
	ck_assert_int_eq(m2_set(&d, M_PRE_COPY), -EINVAL);
	ck_assert_uint_eq(m2_state(&d), M_STOP_COPY);
	/* a failed request closed the session (transport contract) */
	ck_assert_int_eq(devstate_fake_mig2_session_open(d.f), 0);
	m2_set_ok(&d, M_STOP);
	ck_assert_int_eq(devstate_fake_mig2_session_open(d.f), 0);
	devstate_fake_mig2_stats(d.f, &st);
	ck_assert_uint_eq(st.bad_fd_uses, 1);
	ck_assert_uint_eq(st.refused_arcs, 5);
	tclose(&d);

	/* without P2P, RUNNING -> STOP is one arc and RUNNING_P2P absent */
	topen(&d, "memory=64K,mig2=stop-copy");
	ck_assert_int_eq(m2_set(&d, M_RUNNING_P2P), -EINVAL);
	ck_assert_int_eq(m2_set(&d, M_PRE_COPY), -EINVAL);
	m2_set_ok(&d, M_STOP);
	m2_set_ok(&d, M_RESUMING);
	ck_assert_int_eq(ops->mig2_read(d.p, buf, sizeof(buf), &got, d.err,
					sizeof(d.err)), -EBADF);
	tclose(&d);
}
END_TEST

/* Source pre-copies under a workload, then stop-copies; the destination
 * resumes from the bytes and ends with the source's contents. */
START_TEST(test_mig2_round_trip)
{
	struct tdev a, b;
	uint8_t *data = NULL;
	size_t len = 0, n, i;
	uint64_t ini, dirty;
	uint32_t ca, cb;

	topen(&a, "memory=256K,config=5000,seed=3,mig2=all");
	topen(&b, "memory=256K,config=5000,zero=yes,mig2=all");
	ck_assert_int_eq(ops->mig2_precopy_info(a.p, &ini, &dirty, a.err,
						sizeof(a.err)), -EBADF);
	m2_set_ok(&a, M_PRE_COPY);
	ck_assert_int_eq(ops->mig2_precopy_info(a.p, &ini, &dirty, a.err,
						sizeof(a.err)), 0);
	/* 64 memory pages + 2 config pages, each a record's worth */
	ck_assert_uint_eq(ini, 66 * (4096 + 24));
	ck_assert_uint_eq(dirty, 0);
	n = m2_drain(&a, &data, &len);
	ck_assert_uint_gt(n, 256 * 1024 + 5000);
	ck_assert_int_eq(ops->mig2_precopy_info(a.p, &ini, &dirty, a.err,
						sizeof(a.err)), 0);
	ck_assert_uint_eq(ini, 0);
	ck_assert_uint_eq(dirty, 0);
	/* nothing new: the next read session is empty */
	ck_assert_uint_eq(m2_drain(&a, &data, &len), 0);
	devstate_fake_mig2_workload(a.f, 5);
	ck_assert_int_eq(ops->mig2_precopy_info(a.p, &ini, &dirty, a.err,
						sizeof(a.err)), 0);
	ck_assert_uint_eq(ini, 0);
	ck_assert_uint_gt(dirty, 0);
	ck_assert_uint_le(dirty, 5 * (4096 + 24));
	ck_assert_uint_gt(m2_drain(&a, &data, &len), 0);
	devstate_fake_mig2_workload(a.f, 3);
	m2_set_ok(&a, M_PRE_COPY_P2P);
	m2_set_ok(&a, M_STOP_COPY);	/* same session carries on */
	ck_assert_int_eq(devstate_fake_mig2_session_open(a.f), 1);
	n = m2_drain(&a, &data, &len);
	ck_assert_uint_gt(n, 24);	/* the dirty pages and END */
	ck_assert_uint_lt(n, 4 * (4096 + 24) + 24 + 1);
	ck_assert_uint_eq(m2_drain(&a, &data, &len), 0);	/* EOF stays */
	m2_set_ok(&a, M_STOP);

	m2_set_ok(&b, M_RUNNING_P2P);
	m2_set_ok(&b, M_STOP);
	m2_set_ok(&b, M_RESUMING);
	for (i = 0; i < len; i += n) {	/* odd pieces */
		n = len - i < 777 ? len - i : 777;
		ck_assert_int_eq(ops->mig2_write(b.p, data + i, n, b.err,
						 sizeof(b.err)), 0);
	}
	m2_set_ok(&b, M_STOP);
	ck_assert_int_eq(ops->digest(a.p, &ca), 0);
	ck_assert_int_eq(ops->digest(b.p, &cb), 0);
	ck_assert_uint_eq(ca, cb);
	tclose(&a);
	tclose(&b);
	free(data);
}
END_TEST

/* Bad or incomplete data: the device refuses it when RESUMING is left,
 * ends in ERROR, and only a reset gets it out. */
START_TEST(test_mig2_resume_refuses)
{
	static const struct {
		const char *name;
		long flip;	/* byte to flip; -1: drop the last byte,
				   -2: drop the END record, -3: only END */
	} cases[] = {
		{ "record CRC mismatch", 5000 },
		{ "bad record magic", 0 },
		{ "ends inside a record", -1 },
		{ "no END record", -2 },
		{ "never received", -3 },
	};
	unsigned c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct tdev a, b;
		uint8_t *data = NULL;
		size_t len = 0;
		uint32_t ca, cb, cb0;

		topen(&a, "memory=64K,config=100,mig2=stop-copy");
		topen(&b, "memory=64K,config=100,zero=yes,mig2=stop-copy");
		m2_set_ok(&a, M_STOP);
		m2_set_ok(&a, M_STOP_COPY);
		m2_drain(&a, &data, &len);
		if (cases[c].flip >= 0)
			data[cases[c].flip] ^= 0x40;
		else if (cases[c].flip == -1)
			len--;
		else if (cases[c].flip == -2)
			len -= 24;
		else {	/* only the END record */
			memmove(data, data + len - 24, 24);
			len = 24;
		}
		ck_assert_int_eq(ops->digest(b.p, &cb0), 0);
		m2_set_ok(&b, M_STOP);
		m2_set_ok(&b, M_RESUMING);
		if (len)
			ck_assert_int_eq(ops->mig2_write(b.p, data, len, b.err,
							 sizeof(b.err)), 0);
		ck_assert_int_eq(m2_set(&b, M_STOP), -EINVAL);
		ck_assert_msg(strstr(b.err, cases[c].name),
			      "case %u: %s", c, b.err);
		ck_assert_uint_eq(m2_state(&b), M_ERROR);
		/* the device state was not touched */
		ck_assert_int_eq(ops->digest(b.p, &cb), 0);
		ck_assert_uint_eq(cb, cb0);
		ck_assert_int_eq(m2_set(&b, M_RUNNING), -EINVAL);
		ck_assert_int_eq(ops->mig2_reset(b.p, b.err, sizeof(b.err)), 0);
		ck_assert_uint_eq(m2_state(&b), M_RUNNING);
		ck_assert_int_eq(ops->digest(a.p, &ca), 0);
		ck_assert_uint_ne(ca, cb);
		tclose(&a);
		tclose(&b);
		free(data);
	}
}
END_TEST

START_TEST(test_mig2_fail_at)
{
	struct tdev d;
	uint64_t n, sz;

	topen(&d, "memory=64K,mig2=all");
	m2_set_ok(&d, M_PRE_COPY);
	ck_assert_int_eq(devstate_fake_mig2_session_open(d.f), 1);
	n = devstate_fake_op_count(d.f);
	devstate_fake_fail_at(d.f, n + 1, EIO);
	ck_assert_int_eq(m2_set(&d, M_PRE_COPY_P2P), -EIO);
	ck_assert_ptr_nonnull(strstr(d.err, "injected failure"));
	/* the failed change closed the session; the state stayed */
	ck_assert_int_eq(devstate_fake_mig2_session_open(d.f), 0);
	ck_assert_uint_eq(m2_state(&d), M_PRE_COPY);
	devstate_fake_mig2_fail_to_error(d.f, 1);
	devstate_fake_fail_at(d.f, devstate_fake_op_count(d.f) + 1, EIO);
	ck_assert_int_eq(m2_set(&d, M_RUNNING), -EIO);
	ck_assert_uint_eq(m2_state(&d), M_ERROR);
	devstate_fake_fail_at(d.f, devstate_fake_op_count(d.f) + 1, EIO);
	ck_assert_int_eq(ops->mig2_data_size(d.p, &sz, d.err, sizeof(d.err)),
			 -EIO);
	ck_assert_int_eq(ops->mig2_data_size(d.p, &sz, d.err, sizeof(d.err)),
			 0);
	/* 64K memory + 64K config in 16-page records, and END */
	ck_assert_uint_eq(sz, 131072 + 24 * (2 + 1));
	ck_assert_int_eq(ops->mig2_reset(d.p, d.err, sizeof(d.err)), 0);
	ck_assert_uint_eq(m2_state(&d), M_RUNNING);
	tclose(&d);
}
END_TEST

static Suite *fake_suite(void)
{
	Suite *s = suite_create("fake");
	TCase *tc;

	tc = tcase_create("ctl");
	tcase_add_test(tc, test_ctl_defaults);
	tcase_add_test(tc, test_ctl_wrong_width);
	tcase_add_test(tc, test_ctl_padding);
	tcase_add_test(tc, test_ctl_span);
	tcase_add_test(tc, test_ctl_past_end);
	tcase_add_test(tc, test_ctl_read_wo);
	tcase_add_test(tc, test_ctl_write_ro);
	tcase_add_test(tc, test_state_invalid);
	tcase_add_test(tc, test_bad_actions);
	tcase_add_test(tc, test_caps_required);
	tcase_add_test(tc, test_version_other);
	tcase_add_test(tc, test_regions);
	suite_add_tcase(s, tc);

	tc = tcase_create("save");
	tcase_add_test(tc, test_pos_misaligned);
	tcase_add_test(tc, test_get_buffer_no_freeze);
	tcase_add_test(tc, test_get_buffer_empty);
	tcase_add_test(tc, test_get_buffer_pos_past);
	tcase_add_test(tc, test_freeze_unread_logging);
	tcase_add_test(tc, test_first_freeze_in_logging_is_whole);
	tcase_add_test(tc, test_encoding);
	tcase_add_test(tc, test_dirty_baseline);
	tcase_add_test(tc, test_whole_in_running_resets_tracking);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_test(tc, test_load_ebusy);
	tcase_add_test(tc, test_load_chunk_order);
	tcase_add_test(tc, test_load_malformed);
	tcase_add_test(tc, test_config_size_mismatch);
	tcase_add_test(tc, test_config_set_without_size);
	tcase_add_test(tc, test_config_transfer);
	tcase_add_test(tc, test_memory_after_config);
	tcase_add_test(tc, test_leaving_stop_drops_batch);
	suite_add_tcase(s, tc);

	tc = tcase_create("sysmem");
	tcase_add_test(tc, test_start_addr);
	tcase_add_test(tc, test_page_nr);
	tcase_add_test(tc, test_v1_trigger);
	tcase_add_test(tc, test_v2_trigger);
	tcase_add_test(tc, test_bitmap_empty_outside_logging);
	tcase_add_test(tc, test_query_forgets_only_range);
	tcase_add_test(tc, test_log_overflow);
	tcase_add_test(tc, test_logging_transitions_empty_log);
	suite_add_tcase(s, tc);

	tc = tcase_create("whole");
	tcase_add_test(tc, test_replay_a_to_b);
	tcase_add_test(tc, test_fail_at);
	tcase_add_test(tc, test_short_transfers);
	tcase_add_test(tc, test_uri_errors);
	tcase_add_test(tc, test_uri_keys);
	tcase_add_test(tc, test_contents_seeded);
	tcase_add_test(tc, test_workload_determinism);
	tcase_add_test(tc, test_auto_workload);
	tcase_add_test(tc, test_mig2_probe);
	tcase_add_test(tc, test_mig2_single_arcs);
	tcase_add_test(tc, test_mig2_round_trip);
	tcase_add_test(tc, test_mig2_resume_refuses);
	tcase_add_test(tc, test_mig2_fail_at);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(fake_suite());
}

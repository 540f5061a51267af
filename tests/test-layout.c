/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Control layouts (SPEC 3): both tables against literal offsets. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "libdevstate/core.h"
#include "tests/testutil.h"

#define R DEVSTATE_ACCESS_R
#define W DEVSTATE_ACCESS_W
#define RW DEVSTATE_ACCESS_RW

struct expect {
	enum devstate_field field;
	uint32_t offset;
	uint32_t width;
	unsigned access;
	const char *name;
};

/* SPEC 3, written out by hand: never derived from a struct. */
static const struct expect v1[] = {
	{ DEVSTATE_FIELD_VERSION, 0, 4, R, "version" },
	{ DEVSTATE_FIELD_DEVICE_STATE, 4, 4, W, "device_state" },
	{ DEVSTATE_FIELD_CAPS, 8, 4, R, "caps" },
	{ DEVSTATE_FIELD_CONFIG_ACTION, 16, 4, W, "device_config.action" },
	{ DEVSTATE_FIELD_CONFIG_SIZE, 24, 8, RW, "device_config.size" },
	{ DEVSTATE_FIELD_MEMORY_ACTION, 32, 4, W, "device_memory.action" },
	{ DEVSTATE_FIELD_MEMORY_SIZE, 40, 8, RW, "device_memory.size" },
	{ DEVSTATE_FIELD_MEMORY_POS, 48, 8, RW, "device_memory.pos" },
	{ DEVSTATE_FIELD_SYSMEM_START, 56, 8, W,
	  "system_memory.start_addr" },
	{ DEVSTATE_FIELD_SYSMEM_PAGE_NR, 64, 8, W, "system_memory.page_nr" },
};

static const struct expect v2[] = {
	{ DEVSTATE_FIELD_VERSION, 0, 4, R, "version" },
	{ DEVSTATE_FIELD_DEVICE_STATE, 4, 4, W, "device_state" },
	{ DEVSTATE_FIELD_CAPS, 8, 4, R, "caps" },
	{ DEVSTATE_FIELD_CONFIG_ACTION, 16, 4, W, "device_config.action" },
	{ DEVSTATE_FIELD_CONFIG_SIZE, 24, 8, RW, "device_config.size" },
	{ DEVSTATE_FIELD_MEMORY_ACTION, 32, 4, W, "device_memory.action" },
	{ DEVSTATE_FIELD_MEMORY_SIZE, 40, 8, RW, "device_memory.size" },
	{ DEVSTATE_FIELD_MEMORY_POS, 48, 8, RW, "device_memory.pos" },
	{ DEVSTATE_FIELD_SYSMEM_ACTION, 56, 4, W, "system_memory.action" },
	{ DEVSTATE_FIELD_SYSMEM_START, 64, 8, W,
	  "system_memory.start_addr" },
	{ DEVSTATE_FIELD_SYSMEM_PAGE_NR, 72, 8, W, "system_memory.page_nr" },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void check_table(uint32_t version, const struct expect *e, size_t n)
{
	const struct devstate_layout *l = devstate_layout_find(version);
	bool seen[DEVSTATE_FIELD_COUNT] = { false };
	size_t i;
	unsigned f;

	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(l->version, version);
	for (i = 0; i < n; i++) {
		const struct devstate_field_desc *d =
			devstate_layout_field(l, e[i].field);

		ck_assert_msg(d != NULL, "v%u %s missing", version,
			      e[i].name);
		ck_assert_uint_eq(d->offset, e[i].offset);
		ck_assert_uint_eq(d->width, e[i].width);
		ck_assert_uint_eq(d->access, e[i].access);
		ck_assert_str_eq(d->name, e[i].name);
		seen[e[i].field] = true;
	}
	/* every field not listed does not exist in this version */
	for (f = 0; f < DEVSTATE_FIELD_COUNT; f++) {
		enum devstate_field field = (enum devstate_field)f;

		if (!seen[f])
			ck_assert_ptr_null(devstate_layout_field(l, field));
	}
}

START_TEST(test_v1_table)
{
	const struct devstate_layout *l = devstate_layout_find(1);

	check_table(1, v1, N(v1));
	ck_assert_uint_eq(l->size, 72);
	ck_assert(!l->bitmap_action);
	ck_assert_ptr_null(devstate_layout_field(l,
						 DEVSTATE_FIELD_SYSMEM_ACTION));
}
END_TEST

START_TEST(test_v2_table)
{
	const struct devstate_layout *l = devstate_layout_find(2);

	check_table(2, v2, N(v2));
	ck_assert_uint_eq(l->size, 80);
	ck_assert(l->bitmap_action);
}
END_TEST

START_TEST(test_find_refuses)
{
	ck_assert_ptr_null(devstate_layout_find(0));
	ck_assert_ptr_null(devstate_layout_find(3));
	ck_assert_ptr_null(devstate_layout_find(0xffffffffu));
	ck_assert_uint_eq(DEVSTATE_LAYOUT_MIN_VERSION, 1);
	ck_assert_uint_eq(DEVSTATE_LAYOUT_MAX_VERSION, 2);
	ck_assert_uint_eq(DEVSTATE_VERSION_OFFSET, 0);
	ck_assert_uint_eq(DEVSTATE_VERSION_WIDTH, 4);
}
END_TEST

START_TEST(test_field_bad_args)
{
	const struct devstate_layout *l = devstate_layout_find(2);

	ck_assert_ptr_null(devstate_layout_field(NULL,
						 DEVSTATE_FIELD_VERSION));
	ck_assert_ptr_null(devstate_layout_field(l, DEVSTATE_FIELD_COUNT));
	ck_assert_ptr_null(devstate_layout_field(l,
						 (enum devstate_field)-1));
}
END_TEST

/* Each field is accepted at exactly its offset and width. */
static void check_field_at_accepts(uint32_t version, const struct expect *e,
				   size_t n)
{
	const struct devstate_layout *l = devstate_layout_find(version);
	size_t i;

	for (i = 0; i < n; i++) {
		enum devstate_field f = DEVSTATE_FIELD_COUNT;

		ck_assert_int_eq(devstate_layout_field_at(l, e[i].offset,
							  e[i].width, &f), 0);
		ck_assert_int_eq(f, e[i].field);
	}
}

START_TEST(test_field_at_accepts)
{
	check_field_at_accepts(1, v1, N(v1));
	check_field_at_accepts(2, v2, N(v2));
}
END_TEST

/*
 * Sweep every (offset, width) up to past the end: accepted exactly when
 * it is one of the table's fields, -EINVAL otherwise (wrong widths,
 * offsets inside a field, padding, spans, past the end).
 */
static void sweep(uint32_t version, const struct expect *e, size_t n)
{
	const struct devstate_layout *l = devstate_layout_find(version);
	uint32_t off, width;
	unsigned accepted = 0;

	for (off = 0; off < 128; off++) {
		for (width = 0; width <= 16; width++) {
			enum devstate_field f = DEVSTATE_FIELD_COUNT;
			int want = -EINVAL, got;
			size_t i;

			for (i = 0; i < n; i++)
				if (e[i].offset == off && e[i].width == width)
					want = 0;
			got = devstate_layout_field_at(l, off, width, &f);
			ck_assert_msg(got == want,
				      "v%u off %u width %u: got %d want %d",
				      version, off, width, got, want);
			if (!got)
				accepted++;
			else
				ck_assert_int_eq(f, DEVSTATE_FIELD_COUNT);
		}
	}
	ck_assert_uint_eq(accepted, n);
}

START_TEST(test_field_at_sweep)
{
	sweep(1, v1, N(v1));
	sweep(2, v2, N(v2));
}
END_TEST

START_TEST(test_field_at_refuses)
{
	const struct devstate_layout *l1 = devstate_layout_find(1);
	const struct devstate_layout *l2 = devstate_layout_find(2);
	enum devstate_field f;

	/* wrong width */
	ck_assert_int_eq(devstate_layout_field_at(l1, 0, 8, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 24, 4, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 4, 2, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 4, 1, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 4, 0, &f), -EINVAL);
	/* inside a field */
	ck_assert_int_eq(devstate_layout_field_at(l1, 2, 4, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 44, 4, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 52, 4, &f), -EINVAL);
	/* padding */
	ck_assert_int_eq(devstate_layout_field_at(l1, 12, 4, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 20, 4, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 36, 4, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l2, 60, 4, &f), -EINVAL);
	/* a span of two fields */
	ck_assert_int_eq(devstate_layout_field_at(l1, 4, 8, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 8, 8, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l2, 56, 8, &f), -EINVAL);
	/* past the end */
	ck_assert_int_eq(devstate_layout_field_at(l1, 72, 4, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 72, 8, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l2, 80, 8, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l2, 0xfffffffcu, 4, &f),
			 -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l2, 0xfffffff8u, 8, &f),
			 -EINVAL);
	/* v1 has no system_memory.action at 56; 64 is page_nr, not
	 * start_addr */
	ck_assert_int_eq(devstate_layout_field_at(l1, 56, 4, &f), -EINVAL);
	ck_assert_int_eq(devstate_layout_field_at(l1, 56, 8, &f), 0);
	ck_assert_int_eq(f, DEVSTATE_FIELD_SYSMEM_START);
	ck_assert_int_eq(devstate_layout_field_at(l1, 64, 8, &f), 0);
	ck_assert_int_eq(f, DEVSTATE_FIELD_SYSMEM_PAGE_NR);
	ck_assert_int_eq(devstate_layout_field_at(l2, 64, 8, &f), 0);
	ck_assert_int_eq(f, DEVSTATE_FIELD_SYSMEM_START);
	/* no layout */
	ck_assert_int_eq(devstate_layout_field_at(NULL, 0, 4, &f), -EINVAL);
}
END_TEST

START_TEST(test_le_byte_order)
{
	const unsigned char in[9] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
				      0x07, 0x08, 0x09 };
	unsigned char out[10];
	const unsigned char want8[8] = { 0x88, 0x77, 0x66, 0x55, 0x44, 0x33,
					 0x22, 0x11 };

	ck_assert_uint_eq(devstate_le_get(in, 4), 0x04030201u);
	ck_assert_uint_eq(devstate_le_get(in, 8), 0x0807060504030201ull);
	/* unaligned source */
	ck_assert_uint_eq(devstate_le_get(in + 1, 4), 0x05040302u);
	ck_assert_uint_eq(devstate_le_get(in + 1, 8), 0x0908070605040302ull);

	memset(out, 0xee, sizeof(out));
	devstate_le_put(out + 1, 8, 0x1122334455667788ull);
	ck_assert_mem_eq(out + 1, want8, 8);
	ck_assert_uint_eq(out[0], 0xee);
	ck_assert_uint_eq(out[9], 0xee);

	/* width 4 stores the low 32 bits and nothing else */
	memset(out, 0xee, sizeof(out));
	devstate_le_put(out + 1, 4, 0x1122334455667788ull);
	ck_assert_mem_eq(out + 1, want8, 4);
	ck_assert_uint_eq(out[0], 0xee);
	ck_assert_uint_eq(out[5], 0xee);
}
END_TEST

START_TEST(test_le_round_trip)
{
	uint64_t seed = 42;
	unsigned char buf[16];
	int i;

	for (i = 0; i < 10000; i++) {
		uint64_t v = tu_rand(&seed);
		unsigned at = (unsigned)(tu_rand(&seed) % 8);

		devstate_le_put(buf + at, 8, v);
		ck_assert_uint_eq(devstate_le_get(buf + at, 8), v);
		ck_assert_uint_eq(buf[at], v & 0xff);
		ck_assert_uint_eq(buf[at + 7], v >> 56);
		devstate_le_put(buf + at, 4, v);
		ck_assert_uint_eq(devstate_le_get(buf + at, 4),
				  v & 0xffffffffu);
		ck_assert_uint_eq(buf[at + 3], (v >> 24) & 0xff);
	}
}
END_TEST

static Suite *layout_suite(void)
{
	Suite *s = suite_create("layout");
	TCase *tc = tcase_create("layout");

	tcase_add_test(tc, test_v1_table);
	tcase_add_test(tc, test_v2_table);
	tcase_add_test(tc, test_find_refuses);
	tcase_add_test(tc, test_field_bad_args);
	tcase_add_test(tc, test_field_at_accepts);
	tcase_add_test(tc, test_field_at_sweep);
	tcase_add_test(tc, test_field_at_refuses);
	tcase_add_test(tc, test_le_byte_order);
	tcase_add_test(tc, test_le_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(layout_suite());
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caps negotiation (SPEC 5): every blocker, its code and its sentence. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "libdevstate/core.h"
#include "tests/testutil.h"

enum { CTL = DEVSTATE_REGION_CTL, CFG = DEVSTATE_REGION_CONFIG,
       MEM = DEVSTATE_REGION_MEMORY, BMP = DEVSTATE_REGION_BITMAP };

/* A device with every region, large enough for either layout. */
static struct devstate_regions full(void)
{
	struct devstate_regions r;

	memset(&r, 0, sizeof(r));
	r.present[CTL] = r.present[CFG] = true;
	r.present[MEM] = r.present[BMP] = true;
	r.size[CTL] = 80;
	r.size[CFG] = 4096;
	r.size[MEM] = 1 << 20;
	r.size[BMP] = 4096;
	return r;
}

static const struct devstate_layout sentinel_layout;
#define SENTINEL (&sentinel_layout)

/* negotiate with *layout checked: set on success, untouched on failure */
static enum devstate_blocker negotiate(const struct devstate_regions *r,
				       uint32_t version, uint32_t caps,
				       struct devstate_blocker_info *b)
{
	const struct devstate_layout *l = SENTINEL;
	int ret;

	memset(b, 0x5a, sizeof(*b));
	ret = devstate_negotiate(r, version, caps, &l, b);
	if (ret == 0) {
		ck_assert_ptr_eq(l, devstate_layout_find(version));
		ck_assert_int_eq(b->code, DEVSTATE_BLOCKER_NONE);
		ck_assert_str_eq(b->reason, "");
	} else {
		ck_assert_int_eq(ret, -EOPNOTSUPP);
		ck_assert_ptr_eq(l, SENTINEL);
		ck_assert_int_ne(b->code, DEVSTATE_BLOCKER_NONE);
		ck_assert(memchr(b->reason, '\0', sizeof(b->reason)));
		ck_assert_uint_gt(strlen(b->reason), 10);
	}
	return b->code;
}

START_TEST(test_regions_step)
{
	struct devstate_regions r;
	struct devstate_blocker_info b;

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(devstate_negotiate_regions(&r, &b), -EOPNOTSUPP);
	ck_assert_int_eq(b.code, DEVSTATE_BLOCKER_NO_STATE_REGIONS);
	ck_assert_uint_gt(strlen(b.reason), 0);

	r.present[MEM] = true;
	r.size[MEM] = 4096;
	ck_assert_int_eq(devstate_negotiate_regions(&r, &b), -EOPNOTSUPP);
	ck_assert_int_eq(b.code, DEVSTATE_BLOCKER_NO_CTL);

	r.present[CTL] = true;
	r.size[CTL] = 2;	/* too small too, but NO_CONFIG comes first */
	ck_assert_int_eq(devstate_negotiate_regions(&r, &b), -EOPNOTSUPP);
	ck_assert_int_eq(b.code, DEVSTATE_BLOCKER_NO_CONFIG);

	r.present[CFG] = true;
	ck_assert_int_eq(devstate_negotiate_regions(&r, &b), -EOPNOTSUPP);
	ck_assert_int_eq(b.code, DEVSTATE_BLOCKER_CTL_TOO_SMALL);
	r.size[CTL] = 3;
	ck_assert_int_eq(devstate_negotiate_regions(&r, &b), -EOPNOTSUPP);
	ck_assert_int_eq(b.code, DEVSTATE_BLOCKER_CTL_TOO_SMALL);
	ck_assert_ptr_nonnull(strstr(b.reason, "3 bytes"));

	/* just the version field: step 1 passes, step 2 will not */
	r.size[CTL] = 4;
	memset(&b, 0x5a, sizeof(b));
	ck_assert_int_eq(devstate_negotiate_regions(&r, &b), 0);
	ck_assert_int_eq(b.code, DEVSTATE_BLOCKER_NONE);
	ck_assert_str_eq(b.reason, "");
	ck_assert_int_eq(devstate_negotiate(&r, 1, 0, NULL, &b), -EOPNOTSUPP);
	ck_assert_int_eq(b.code, DEVSTATE_BLOCKER_CTL_TOO_SMALL);

	/* config present without CTL */
	memset(&r, 0, sizeof(r));
	r.present[CFG] = true;
	r.size[CFG] = 100;
	ck_assert_int_eq(devstate_negotiate_regions(&r, &b), -EOPNOTSUPP);
	ck_assert_int_eq(b.code, DEVSTATE_BLOCKER_NO_CTL);

	ck_assert_int_eq(devstate_negotiate_regions(NULL, &b), -EINVAL);
	/* b may be NULL */
	ck_assert_int_eq(devstate_negotiate_regions(&r, NULL), -EOPNOTSUPP);
}
END_TEST

START_TEST(test_sentences)
{
	struct devstate_regions r = full();
	struct devstate_blocker_info b;

	ck_assert_int_eq(negotiate(&r, 7, 0, &b),
			 DEVSTATE_BLOCKER_BAD_VERSION);
	ck_assert_str_eq(b.reason,
			 "device-state interface version 7 is not supported (supported: 1, 2)");

	r.present[BMP] = false;
	ck_assert_int_eq(negotiate(&r, 2, DEVSTATE_CAP_SYSTEM_MEMORY, &b),
			 DEVSTATE_BLOCKER_NO_BITMAP_REGION);
	ck_assert_str_eq(b.reason,
			 "device has cap SYSTEM_MEMORY but no DIRTY_BITMAP region");

	r = full();
	r.present[MEM] = false;
	ck_assert_int_eq(negotiate(&r, 1, DEVSTATE_CAP_DEVICE_MEMORY, &b),
			 DEVSTATE_BLOCKER_NO_MEMORY_REGION);
	ck_assert_str_eq(b.reason,
			 "device has cap DEVICE_MEMORY but no DEVICE_MEMORY region");

	/* unknown caps are named in hex, known ones are not */
	r = full();
	ck_assert_int_eq(negotiate(&r, 2, 0x4 | 0x3, &b),
			 DEVSTATE_BLOCKER_UNKNOWN_CAPS);
	ck_assert_ptr_nonnull(strstr(b.reason, "0x4"));
	ck_assert_ptr_null(strstr(b.reason, "0x7"));
	ck_assert_ptr_nonnull(strstr(b.reason, "lost"));
	ck_assert_int_eq(negotiate(&r, 1, 0xf0000000u, &b),
			 DEVSTATE_BLOCKER_UNKNOWN_CAPS);
	ck_assert_ptr_nonnull(strstr(b.reason, "0xf0000000"));

	/* both sizes are said */
	r.size[CTL] = 64;
	ck_assert_int_eq(negotiate(&r, 2, 0, &b),
			 DEVSTATE_BLOCKER_CTL_TOO_SMALL);
	ck_assert_ptr_nonnull(strstr(b.reason, "64"));
	ck_assert_ptr_nonnull(strstr(b.reason, "80"));
	r.size[CTL] = 71;
	ck_assert_int_eq(negotiate(&r, 1, 0, &b),
			 DEVSTATE_BLOCKER_CTL_TOO_SMALL);
	ck_assert_ptr_nonnull(strstr(b.reason, "71"));
	ck_assert_ptr_nonnull(strstr(b.reason, "72"));

	r = full();
	ck_assert_int_eq(negotiate(&r, 0, 0, &b),
			 DEVSTATE_BLOCKER_BAD_VERSION);
	ck_assert_str_eq(b.reason,
			 "device-state interface version 0 is not supported (supported: 1, 2)");
	ck_assert_int_eq(negotiate(&r, 0xffffffffu, 0, &b),
			 DEVSTATE_BLOCKER_BAD_VERSION);
	ck_assert_ptr_nonnull(strstr(b.reason, "4294967295"));
}
END_TEST

START_TEST(test_success)
{
	struct devstate_regions r = full();
	struct devstate_blocker_info b;
	const struct devstate_layout *l = NULL;
	uint32_t caps;

	for (caps = 0; caps <= 3; caps++) {
		ck_assert_int_eq(negotiate(&r, 1, caps, &b),
				 DEVSTATE_BLOCKER_NONE);
		ck_assert_int_eq(negotiate(&r, 2, caps, &b),
				 DEVSTATE_BLOCKER_NONE);
	}
	/* regions present without their caps are ignored, even empty */
	r.size[MEM] = 0;
	r.size[BMP] = 0;
	ck_assert_int_eq(negotiate(&r, 2, 0, &b), DEVSTATE_BLOCKER_NONE);
	r.present[MEM] = r.present[BMP] = false;
	ck_assert_int_eq(negotiate(&r, 2, 0, &b), DEVSTATE_BLOCKER_NONE);
	/* the layout's exact size is enough */
	r.size[CTL] = 72;
	ck_assert_int_eq(devstate_negotiate(&r, 1, 0, &l, &b), 0);
	ck_assert_uint_eq(l->version, 1);
	ck_assert_uint_eq(l->size, 72);
	ck_assert_int_eq(devstate_negotiate(&r, 2, 0, &l, &b), -EOPNOTSUPP);
	r.size[CTL] = 80;
	ck_assert_int_eq(devstate_negotiate(&r, 2, 0, &l, &b), 0);
	ck_assert_uint_eq(l->version, 2);
	/* b and layout may be NULL */
	ck_assert_int_eq(devstate_negotiate(&r, 2, 0, NULL, NULL), 0);
	ck_assert_int_eq(devstate_negotiate(&r, 3, 0, NULL, NULL),
			 -EOPNOTSUPP);
	ck_assert_int_eq(devstate_negotiate(NULL, 2, 0, &l, &b), -EINVAL);
}
END_TEST

/*
 * The documented order, restated from SPEC 5 for the sweep below.  Region
 * "state": 0 missing, otherwise present with the given size.
 */
static enum devstate_blocker expect(const struct devstate_regions *r,
				    uint32_t version, uint32_t caps)
{
	uint64_t need;

	if (!r->present[CTL] && !r->present[CFG] && !r->present[MEM] &&
	    !r->present[BMP])
		return DEVSTATE_BLOCKER_NO_STATE_REGIONS;
	if (!r->present[CTL])
		return DEVSTATE_BLOCKER_NO_CTL;
	if (!r->present[CFG])
		return DEVSTATE_BLOCKER_NO_CONFIG;
	if (r->size[CTL] < 4)
		return DEVSTATE_BLOCKER_CTL_TOO_SMALL;
	if (version == 1)
		need = 72;
	else if (version == 2)
		need = 80;
	else
		return DEVSTATE_BLOCKER_BAD_VERSION;
	if (r->size[CTL] < need)
		return DEVSTATE_BLOCKER_CTL_TOO_SMALL;
	if (caps > 3)
		return DEVSTATE_BLOCKER_UNKNOWN_CAPS;
	if ((caps & 1) && !r->present[MEM])
		return DEVSTATE_BLOCKER_NO_MEMORY_REGION;
	if ((caps & 2) && !r->present[BMP])
		return DEVSTATE_BLOCKER_NO_BITMAP_REGION;
	if (r->size[CFG] == 0)
		return DEVSTATE_BLOCKER_CONFIG_REGION_EMPTY;
	if ((caps & 1) && r->size[MEM] == 0)
		return DEVSTATE_BLOCKER_MEMORY_REGION_EMPTY;
	if ((caps & 2) && r->size[BMP] == 0)
		return DEVSTATE_BLOCKER_BITMAP_REGION_EMPTY;
	return DEVSTATE_BLOCKER_NONE;
}

#define MISSING UINT64_MAX

START_TEST(test_sweep)
{
	static const uint32_t versions[] = { 1, 2, 0, 3, 7, 0xffffffffu };
	static const uint32_t capss[] = { 0, 1, 2, 3, 4, 5, 8, 0x13,
					  0x80000000u, 0xffffffffu };
	static const uint64_t ctls[] = { MISSING, 0, 3, 4, 71, 72, 79, 80,
					 4096 };
	static const uint64_t cfgs[] = { MISSING, 0, 1, 4096 };
	static const uint64_t mems[] = { MISSING, 0, 1 << 20 };
	static const uint64_t bmps[] = { MISSING, 0, 1, 4096 };
	bool seen[DEVSTATE_BLOCKER_IO + 1] = { false };
	unsigned n = 0, ok = 0, code;
	size_t v, c, i, j, k, m;

#define FOR(x, arr) for (x = 0; x < sizeof(arr) / sizeof(arr[0]); x++)
	FOR(v, versions) FOR(c, capss) FOR(i, ctls) FOR(j, cfgs)
	FOR(k, mems) FOR(m, bmps) {
		struct devstate_regions r;
		struct devstate_blocker_info b, b1;
		const uint64_t sizes[4] = { ctls[i], cfgs[j], mems[k],
					    bmps[m] };
		enum devstate_blocker want, got;
		int ret1;
		unsigned x;

		memset(&r, 0, sizeof(r));
		for (x = 0; x < 4; x++) {
			r.present[x] = sizes[x] != MISSING;
			r.size[x] = r.present[x] ? sizes[x] : 0;
		}
		want = expect(&r, versions[v], capss[c]);
		got = negotiate(&r, versions[v], capss[c], &b);
		ck_assert_msg(got == want,
			      "v%u caps %#x ctl %d/%llu cfg %d/%llu mem %d/%llu bmp %d/%llu: got %s (%s), want %s",
			      versions[v], capss[c],
			      r.present[CTL], (unsigned long long)r.size[CTL],
			      r.present[CFG], (unsigned long long)r.size[CFG],
			      r.present[MEM], (unsigned long long)r.size[MEM],
			      r.present[BMP], (unsigned long long)r.size[BMP],
			      devstate_blocker_name(got), b.reason,
			      devstate_blocker_name(want));
		/* step 1 agrees with step 2 on its own blockers */
		ret1 = devstate_negotiate_regions(&r, &b1);
		if (want >= DEVSTATE_BLOCKER_NO_STATE_REGIONS &&
		    want <= DEVSTATE_BLOCKER_NO_CONFIG) {
			ck_assert_int_eq(ret1, -EOPNOTSUPP);
			ck_assert_int_eq(b1.code, want);
			ck_assert_str_eq(b1.reason, b.reason);
		} else if (ret1) {
			ck_assert_int_eq(b1.code,
					 DEVSTATE_BLOCKER_CTL_TOO_SMALL);
			ck_assert_int_eq(want, DEVSTATE_BLOCKER_CTL_TOO_SMALL);
		}
		seen[got] = true;
		ok += got == DEVSTATE_BLOCKER_NONE;
		n++;
	}
#undef FOR
	ck_assert_uint_eq(n, 6 * 10 * 9 * 4 * 3 * 4);
	ck_assert_uint_gt(ok, 0);
	/* every blocker negotiation can raise was raised */
	for (code = DEVSTATE_BLOCKER_NONE; code < DEVSTATE_BLOCKER_IO; code++)
		ck_assert_msg(seen[code], "blocker %u never seen", code);
	ck_assert(!seen[DEVSTATE_BLOCKER_IO]);
}
END_TEST

START_TEST(test_blocker_names)
{
	static const char *const names[] = {
		"none", "no-state-regions", "no-ctl-region",
		"no-config-region", "ctl-too-small", "bad-version",
		"unknown-caps", "no-memory-region", "no-bitmap-region",
		"config-region-empty", "memory-region-empty",
		"bitmap-region-empty", "io-error", "mig2-flags",
	};
	unsigned i;

	ck_assert_int_eq(DEVSTATE_BLOCKER_IO, 12);
	ck_assert_int_eq(DEVSTATE_BLOCKER_MIG2_FLAGS, 13);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		enum devstate_blocker code = (enum devstate_blocker)i;

		ck_assert_str_eq(devstate_blocker_name(code), names[i]);
	}
	ck_assert_ptr_null(devstate_blocker_name((enum devstate_blocker)14));
	ck_assert_ptr_null(devstate_blocker_name((enum devstate_blocker)-1));
}
END_TEST

START_TEST(test_region_names)
{
	ck_assert_str_eq(devstate_region_name(DEVSTATE_REGION_CTL), "ctl");
	ck_assert_str_eq(devstate_region_name(DEVSTATE_REGION_CONFIG),
			 "config");
	ck_assert_str_eq(devstate_region_name(DEVSTATE_REGION_MEMORY),
			 "memory");
	ck_assert_str_eq(devstate_region_name(DEVSTATE_REGION_BITMAP),
			 "bitmap");
	ck_assert_ptr_null(devstate_region_name((enum devstate_region)4));
	ck_assert_ptr_null(devstate_region_name((enum devstate_region)-1));
}
END_TEST

static Suite *caps_suite(void)
{
	Suite *s = suite_create("caps");
	TCase *tc = tcase_create("caps");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_regions_step);
	tcase_add_test(tc, test_sentences);
	tcase_add_test(tc, test_success);
	tcase_add_test(tc, test_sweep);
	tcase_add_test(tc, test_blocker_names);
	tcase_add_test(tc, test_region_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(caps_suite());
}

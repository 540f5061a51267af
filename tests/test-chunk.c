/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Chunk iterator (SPEC 7). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "libdevstate/core.h"
#include "tests/testutil.h"

#define L (UINT64_C(1) << 20)

#define DONE DEVSTATE_STEP_DONE
#define WPOS DEVSTATE_STEP_WRITE_POS
#define WACT DEVSTATE_STEP_WRITE_ACTION
#define RDAT DEVSTATE_STEP_READ_DATA
#define WDAT DEVSTATE_STEP_WRITE_DATA
#define GET DEVSTATE_ACTION_GET_BUFFER
#define SET DEVSTATE_ACTION_SET_BUFFER

struct step {
	enum devstate_step_kind kind;
	uint64_t pos, len;
	uint32_t action;
};

/* Run the iterator to DONE (at most max steps) and compare with want. */
static void check_steps(enum devstate_chunk_dir dir, uint64_t size,
			uint64_t region_len, const struct step *want,
			size_t n)
{
	struct devstate_chunk_iter it;
	struct devstate_chunk_step st;
	size_t i;

	ck_assert_int_eq(devstate_chunk_init(&it, dir, size, region_len), 0);
	for (i = 0; i < n; i++) {
		memset(&st, 0xa5, sizeof(st));
		devstate_chunk_next(&it, &st);
		ck_assert_msg(st.kind == want[i].kind,
			      "step %zu: kind %d want %d", i, st.kind,
			      want[i].kind);
		ck_assert_uint_eq(st.pos, want[i].pos);
		ck_assert_uint_eq(st.len, want[i].len);
		if (st.kind == WACT)
			ck_assert_uint_eq(st.action, want[i].action);
	}
	/* and DONE forever after */
	for (i = 0; i < 3; i++) {
		devstate_chunk_next(&it, &st);
		ck_assert_int_eq(st.kind, DONE);
		ck_assert_uint_eq(st.len, 0);
	}
}

#define CHECK(dir, size, rl, ...) do {					\
	static const struct step w_[] = { __VA_ARGS__ };		\
	check_steps(dir, size, rl, w_, sizeof(w_) / sizeof(w_[0]));	\
} while (0)

START_TEST(test_save_sequences)
{
	const enum devstate_chunk_dir S = DEVSTATE_CHUNK_SAVE;

	CHECK(S, 0, L, { DONE, 0, 0, 0 });
	CHECK(S, 1, L,
	      { WPOS, 0, 1, 0 }, { WACT, 0, 1, GET }, { RDAT, 0, 1, 0 },
	      { DONE, 1, 0, 0 });
	CHECK(S, L - 1, L,
	      { WPOS, 0, L - 1, 0 }, { WACT, 0, L - 1, GET },
	      { RDAT, 0, L - 1, 0 }, { DONE, L - 1, 0, 0 });
	CHECK(S, L, L,
	      { WPOS, 0, L, 0 }, { WACT, 0, L, GET }, { RDAT, 0, L, 0 },
	      { DONE, L, 0, 0 });
	CHECK(S, L + 1, L,
	      { WPOS, 0, L, 0 }, { WACT, 0, L, GET }, { RDAT, 0, L, 0 },
	      { WPOS, L, 1, 0 }, { WACT, L, 1, GET }, { RDAT, L, 1, 0 },
	      { DONE, L + 1, 0, 0 });
	CHECK(S, 2 * L + 5, L,
	      { WPOS, 0, L, 0 }, { WACT, 0, L, GET }, { RDAT, 0, L, 0 },
	      { WPOS, L, L, 0 }, { WACT, L, L, GET }, { RDAT, L, L, 0 },
	      { WPOS, 2 * L, 5, 0 }, { WACT, 2 * L, 5, GET },
	      { RDAT, 2 * L, 5, 0 },
	      { DONE, 2 * L + 5, 0, 0 });
}
END_TEST

START_TEST(test_load_sequences)
{
	const enum devstate_chunk_dir D = DEVSTATE_CHUNK_LOAD;

	CHECK(D, 0, L, { DONE, 0, 0, 0 });
	CHECK(D, 1, L,
	      { WDAT, 0, 1, 0 }, { WPOS, 0, 1, 0 }, { WACT, 0, 1, SET },
	      { DONE, 1, 0, 0 });
	CHECK(D, L - 1, L,
	      { WDAT, 0, L - 1, 0 }, { WPOS, 0, L - 1, 0 },
	      { WACT, 0, L - 1, SET }, { DONE, L - 1, 0, 0 });
	CHECK(D, L, L,
	      { WDAT, 0, L, 0 }, { WPOS, 0, L, 0 }, { WACT, 0, L, SET },
	      { DONE, L, 0, 0 });
	CHECK(D, L + 1, L,
	      { WDAT, 0, L, 0 }, { WPOS, 0, L, 0 }, { WACT, 0, L, SET },
	      { WDAT, L, 1, 0 }, { WPOS, L, 1, 0 }, { WACT, L, 1, SET },
	      { DONE, L + 1, 0, 0 });
	/* region of 3 bytes, batch of 7: chunks 3, 3, 1 */
	CHECK(D, 7, 3,
	      { WDAT, 0, 3, 0 }, { WPOS, 0, 3, 0 }, { WACT, 0, 3, SET },
	      { WDAT, 3, 3, 0 }, { WPOS, 3, 3, 0 }, { WACT, 3, 3, SET },
	      { WDAT, 6, 1, 0 }, { WPOS, 6, 1, 0 }, { WACT, 6, 1, SET },
	      { DONE, 7, 0, 0 });
}
END_TEST

START_TEST(test_init_refuses)
{
	struct devstate_chunk_iter it;

	ck_assert_int_eq(devstate_chunk_init(&it, DEVSTATE_CHUNK_SAVE, 10, 0),
			 -EINVAL);
	ck_assert_int_eq(devstate_chunk_init(&it, DEVSTATE_CHUNK_LOAD, 0, 0),
			 -EINVAL);
	ck_assert_int_eq(devstate_chunk_init(&it, (enum devstate_chunk_dir)2,
					     10, 1), -EINVAL);
	ck_assert_int_eq(devstate_chunk_init(NULL, DEVSTATE_CHUNK_SAVE, 10,
					     1), -EINVAL);
}
END_TEST

START_TEST(test_count)
{
	ck_assert_uint_eq(devstate_chunk_count(0, L), 0);
	ck_assert_uint_eq(devstate_chunk_count(1, L), 1);
	ck_assert_uint_eq(devstate_chunk_count(L - 1, L), 1);
	ck_assert_uint_eq(devstate_chunk_count(L, L), 1);
	ck_assert_uint_eq(devstate_chunk_count(L + 1, L), 2);
	ck_assert_uint_eq(devstate_chunk_count(UINT64_C(1) << 40, L),
			  UINT64_C(1) << 20);
	ck_assert_uint_eq(devstate_chunk_count((UINT64_C(1) << 40) + 1, L),
			  (UINT64_C(1) << 20) + 1);
	ck_assert_uint_eq(devstate_chunk_count(UINT64_MAX, 1), UINT64_MAX);
	ck_assert_uint_eq(devstate_chunk_count(UINT64_MAX, UINT64_C(1) << 63),
			  2);
	ck_assert_uint_eq(devstate_chunk_count(UINT64_MAX, UINT64_MAX), 1);
	ck_assert_uint_eq(devstate_chunk_count(UINT64_MAX - 1, UINT64_MAX),
			  1);
	ck_assert_uint_eq(devstate_chunk_count(UINT64_MAX, L),
			  UINT64_C(1) << 44);
	ck_assert_uint_eq(devstate_chunk_count(7, 3), 3);
	ck_assert_uint_eq(devstate_chunk_count(6, 3), 2);
}
END_TEST

/* An assertion for hot loops: Check's macros record every passing one. */
#define REQUIRE(c) do {							\
	if (!(c))							\
		ck_abort_msg("%s:%d: failed: %s", __FILE__, __LINE__, #c); \
} while (0)

/*
 * Walk the whole iterator, checking the structure of every chunk; returns
 * the number of chunks and the first and last (pos, len).
 */
static uint64_t walk(enum devstate_chunk_dir dir, uint64_t size,
		     uint64_t region_len, uint64_t *first_pos,
		     uint64_t *first_len, uint64_t *last_pos,
		     uint64_t *last_len)
{
	static const enum devstate_step_kind save[3] = { WPOS, WACT, RDAT };
	static const enum devstate_step_kind load[3] = { WDAT, WPOS, WACT };
	const enum devstate_step_kind *order =
		dir == DEVSTATE_CHUNK_SAVE ? save : load;
	const uint32_t action = dir == DEVSTATE_CHUNK_SAVE ? GET : SET;
	struct devstate_chunk_iter it;
	struct devstate_chunk_step st;
	uint64_t chunks = 0, expect_pos = 0;

	*first_pos = *first_len = *last_pos = *last_len = UINT64_MAX;
	REQUIRE(devstate_chunk_init(&it, dir, size, region_len) == 0);
	for (;;) {
		uint64_t pos, len;
		int k;

		devstate_chunk_next(&it, &st);
		if (st.kind == DONE)
			break;
		pos = st.pos;
		len = st.len;
		/* a chunk: three steps in order, same pos and len */
		for (k = 0; k < 3; k++) {
			if (k)
				devstate_chunk_next(&it, &st);
			REQUIRE(st.kind == order[k]);
			REQUIRE(st.pos == pos);
			REQUIRE(st.len == len);
			if (st.kind == WACT)
				REQUIRE(st.action == action);
		}
		/* contiguous from 0, multiples of L, at most L, never empty */
		REQUIRE(pos == expect_pos);
		REQUIRE(pos % region_len == 0);
		REQUIRE(len > 0);
		REQUIRE(len <= region_len);
		REQUIRE(len <= size - pos);
		/* only the last chunk may be short */
		if (len < region_len)
			REQUIRE(pos + len == size);
		if (!chunks) {
			*first_pos = pos;
			*first_len = len;
		}
		*last_pos = pos;
		*last_len = len;
		chunks++;
		expect_pos = pos + len;	/* <= size: cannot overflow */
	}
	/* every byte exactly once */
	ck_assert_uint_eq(expect_pos, size);
	ck_assert_uint_eq(chunks, devstate_chunk_count(size, region_len));
	devstate_chunk_next(&it, &st);
	ck_assert_int_eq(st.kind, DONE);
	return chunks;
}

START_TEST(test_large)
{
	uint64_t fp, fl, lp, ll, n;
	const uint64_t big = UINT64_C(1) << 40;

	n = walk(DEVSTATE_CHUNK_SAVE, big, L, &fp, &fl, &lp, &ll);
	ck_assert_uint_eq(n, UINT64_C(1) << 20);
	ck_assert_uint_eq(fp, 0);
	ck_assert_uint_eq(fl, L);
	ck_assert_uint_eq(lp, big - L);
	ck_assert_uint_eq(ll, L);
}
END_TEST

START_TEST(test_medium)
{
	uint64_t fp, fl, lp, ll, n;
	const uint64_t size = 37 * L + 12345;

	n = walk(DEVSTATE_CHUNK_SAVE, size, L, &fp, &fl, &lp, &ll);
	ck_assert_uint_eq(n, 38);
	ck_assert_uint_eq(fp, 0);
	ck_assert_uint_eq(fl, L);
	ck_assert_uint_eq(lp, 37 * L);
	ck_assert_uint_eq(ll, 12345);
	n = walk(DEVSTATE_CHUNK_LOAD, size, L, &fp, &fl, &lp, &ll);
	ck_assert_uint_eq(n, 38);
	ck_assert_uint_eq(lp, 37 * L);
	ck_assert_uint_eq(ll, 12345);
}
END_TEST

START_TEST(test_near_max)
{
	uint64_t fp, fl, lp, ll, n;
	const uint64_t half = UINT64_C(1) << 63;

	n = walk(DEVSTATE_CHUNK_SAVE, UINT64_MAX, half, &fp, &fl, &lp, &ll);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(fp, 0);
	ck_assert_uint_eq(fl, half);
	ck_assert_uint_eq(lp, half);
	ck_assert_uint_eq(ll, half - 1);

	n = walk(DEVSTATE_CHUNK_LOAD, UINT64_MAX, UINT64_MAX, &fp, &fl, &lp,
		 &ll);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(fl, UINT64_MAX);

	n = walk(DEVSTATE_CHUNK_SAVE, UINT64_MAX, UINT64_MAX - 1, &fp, &fl,
		 &lp, &ll);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(fl, UINT64_MAX - 1);
	ck_assert_uint_eq(lp, UINT64_MAX - 1);
	ck_assert_uint_eq(ll, 1);

	/* the last chunk exactly full at the top of the range */
	n = walk(DEVSTATE_CHUNK_SAVE, UINT64_MAX - UINT64_MAX % 3,
		 UINT64_MAX / 3, &fp, &fl, &lp, &ll);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(lp, 2 * (UINT64_MAX / 3));
	ck_assert_uint_eq(ll, UINT64_MAX / 3);

	/* region larger than the batch */
	n = walk(DEVSTATE_CHUNK_LOAD, 10, UINT64_MAX, &fp, &fl, &lp, &ll);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(fl, 10);

	/* a few chunks just below 2^64 */
	n = walk(DEVSTATE_CHUNK_SAVE, UINT64_MAX, UINT64_MAX / 4 + 1, &fp,
		 &fl, &lp, &ll);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(lp, 3 * (UINT64_MAX / 4 + 1));
	ck_assert_uint_eq(ll, UINT64_MAX - 3 * (UINT64_MAX / 4 + 1));
}
END_TEST

START_TEST(test_property)
{
	uint64_t seed = 0x5eedc0de;
	int i;

	for (i = 0; i < 5000; i++) {
		uint64_t rl, size, fp, fl, lp, ll, n, want;
		unsigned bits = (unsigned)(tu_rand(&seed) % 64) + 1;
		enum devstate_chunk_dir dir = (enum devstate_chunk_dir)
			(tu_rand(&seed) & 1);

		/* region length: any magnitude up to 2^64 - 1 */
		rl = tu_rand(&seed) >> (64 - bits);
		if (!rl)
			rl = 1;
		/* at most ~200 chunks, any remainder */
		if (rl > UINT64_MAX / 200)
			size = tu_rand(&seed);
		else
			size = tu_rand(&seed) % (200 * rl + 1);
		if (i % 10 == 0)	/* exact multiples too */
			size = size - size % rl;
		n = walk(dir, size, rl, &fp, &fl, &lp, &ll);
		want = size / rl + (size % rl != 0);
		ck_assert_uint_eq(n, want);
		if (n) {
			ck_assert_uint_eq(fp, 0);
			ck_assert_uint_eq(lp + ll, size);
			ck_assert_uint_eq(ll, size % rl ? size % rl : rl);
		}
	}
}
END_TEST

static Suite *chunk_suite(void)
{
	Suite *s = suite_create("chunk");
	TCase *tc = tcase_create("chunk");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_save_sequences);
	tcase_add_test(tc, test_load_sequences);
	tcase_add_test(tc, test_init_refuses);
	tcase_add_test(tc, test_count);
	tcase_add_test(tc, test_large);
	tcase_add_test(tc, test_medium);
	tcase_add_test(tc, test_near_max);
	tcase_add_test(tc, test_property);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(chunk_suite());
}

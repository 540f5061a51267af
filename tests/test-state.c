/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device state (SPEC 4): encoding, transitions, the operation table. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "libdevstate/core.h"
#include "tests/testutil.h"

static const uint32_t invalid_states[] = { 4, 5, 7, 8, 0x80000000u,
					   0xfffffffeu, 0xffffffffu };
#define N_INVALID (sizeof(invalid_states) / sizeof(invalid_states[0]))

START_TEST(test_encoding)
{
	uint32_t s;

	ck_assert_uint_eq(DEVSTATE_STATE_RUNNING, 0);
	ck_assert_uint_eq(DEVSTATE_STATE_STOP, 1);
	ck_assert_uint_eq(DEVSTATE_STATE_RUNNING_LOGGING, 2);
	ck_assert_uint_eq(DEVSTATE_STATE_STOP_LOGGING, 3);
	for (s = 0; s <= 3; s++)
		ck_assert_msg(devstate_state_valid(s), "%u invalid", s);
	ck_assert(!devstate_state_valid(4));
	ck_assert(!devstate_state_valid(5));
	ck_assert(!devstate_state_valid(0xffffffffu));
}
END_TEST

START_TEST(test_transitions)
{
	uint32_t from, to;
	size_t i;

	/* all 16 pairs among the valid states: 12 transitions + 4 no-ops */
	for (from = 0; from <= 3; from++)
		for (to = 0; to <= 3; to++)
			ck_assert_msg(devstate_state_transition(from, to) == 0,
				      "%u -> %u refused", from, to);
	for (i = 0; i < N_INVALID; i++) {
		uint32_t bad = invalid_states[i];

		for (to = 0; to <= 3; to++) {
			ck_assert_int_eq(devstate_state_transition(bad, to),
					 -EINVAL);
			ck_assert_int_eq(devstate_state_transition(to, bad),
					 -EINVAL);
		}
		ck_assert_int_eq(devstate_state_transition(bad, bad), -EINVAL);
	}
}
END_TEST

#define REF DEVSTATE_PERMIT_REFUSED
#define WHOLE DEVSTATE_PERMIT_WHOLE
#define DIRTY DEVSTATE_PERMIT_DIRTY
#define EMPTY DEVSTATE_PERMIT_EMPTY
#define ALLOW DEVSTATE_PERMIT_ALLOWED

/* SPEC 4, cell by cell.  Columns: GET_CONFIG GET_MEMORY GET_BITMAP
 * SET_CONFIG SET_MEMORY. */
static const enum devstate_permit expected[4][5] = {
	/* running */		{ WHOLE, WHOLE, EMPTY, REF, REF },
	/* stop */		{ WHOLE, WHOLE, EMPTY, ALLOW, ALLOW },
	/* running+logging */	{ WHOLE, DIRTY, DIRTY, REF, REF },
	/* stop+logging */	{ WHOLE, DIRTY, DIRTY, REF, REF },
};

START_TEST(test_op_table)
{
	uint32_t s;
	unsigned op;

	ck_assert_int_eq(DEVSTATE_OP_COUNT, 5);
	ck_assert_int_eq(DEVSTATE_OP_GET_CONFIG, 0);
	ck_assert_int_eq(DEVSTATE_OP_GET_MEMORY, 1);
	ck_assert_int_eq(DEVSTATE_OP_GET_BITMAP, 2);
	ck_assert_int_eq(DEVSTATE_OP_SET_CONFIG, 3);
	ck_assert_int_eq(DEVSTATE_OP_SET_MEMORY, 4);
	for (s = 0; s < 4; s++) {
		for (op = 0; op < 5; op++) {
			enum devstate_permit p = devstate_state_permits(s,
						(enum devstate_op)op);
			int want = expected[s][op] == REF ? -EBUSY : 0;

			ck_assert_msg(p == expected[s][op],
				      "state %u op %u: permit %d, want %d",
				      s, op, p, expected[s][op]);
			ck_assert_int_eq(devstate_state_check(s,
						(enum devstate_op)op), want);
		}
	}
}
END_TEST

START_TEST(test_op_table_spot)
{
	/* the cells that matter most, spelled out once more */
	ck_assert_int_eq(devstate_state_check(DEVSTATE_STATE_STOP,
					      DEVSTATE_OP_SET_MEMORY), 0);
	ck_assert_int_eq(devstate_state_check(DEVSTATE_STATE_STOP_LOGGING,
					      DEVSTATE_OP_SET_MEMORY), -EBUSY);
	ck_assert_int_eq(devstate_state_check(DEVSTATE_STATE_RUNNING,
					      DEVSTATE_OP_SET_CONFIG), -EBUSY);
	ck_assert_int_eq(devstate_state_permits(DEVSTATE_STATE_RUNNING,
						DEVSTATE_OP_GET_BITMAP),
			 DEVSTATE_PERMIT_EMPTY);
	ck_assert_int_eq(devstate_state_permits(DEVSTATE_STATE_STOP_LOGGING,
						DEVSTATE_OP_GET_MEMORY),
			 DEVSTATE_PERMIT_DIRTY);
}
END_TEST

START_TEST(test_op_invalid)
{
	size_t i;
	unsigned op;

	for (i = 0; i < N_INVALID; i++) {
		for (op = 0; op < DEVSTATE_OP_COUNT; op++) {
			uint32_t st = invalid_states[i];
			enum devstate_op o = (enum devstate_op)op;

			ck_assert_int_eq(devstate_state_permits(st, o),
					 DEVSTATE_PERMIT_REFUSED);
			ck_assert_int_eq(devstate_state_check(st, o), -EBUSY);
		}
	}
	ck_assert_int_eq(devstate_state_permits(DEVSTATE_STATE_STOP,
						DEVSTATE_OP_COUNT),
			 DEVSTATE_PERMIT_REFUSED);
	ck_assert_int_eq(devstate_state_check(DEVSTATE_STATE_STOP,
					      DEVSTATE_OP_COUNT), -EBUSY);
}
END_TEST

START_TEST(test_op_names)
{
	ck_assert_str_eq(devstate_op_name(DEVSTATE_OP_GET_CONFIG),
			 "get-config");
	ck_assert_str_eq(devstate_op_name(DEVSTATE_OP_GET_MEMORY),
			 "get-memory");
	ck_assert_str_eq(devstate_op_name(DEVSTATE_OP_GET_BITMAP),
			 "get-bitmap");
	ck_assert_str_eq(devstate_op_name(DEVSTATE_OP_SET_CONFIG),
			 "set-config");
	ck_assert_str_eq(devstate_op_name(DEVSTATE_OP_SET_MEMORY),
			 "set-memory");
	ck_assert_ptr_null(devstate_op_name(DEVSTATE_OP_COUNT));
}
END_TEST

START_TEST(test_names)
{
	static const char *const names[4] = {
		"running", "stop", "running+logging", "stop+logging"
	};
	uint32_t s, got;
	size_t i;
	char digit[2] = { 0, 0 };

	for (s = 0; s < 4; s++) {
		ck_assert_str_eq(devstate_state_name(s), names[s]);
		got = 99;
		ck_assert_int_eq(devstate_state_parse(names[s], &got), 0);
		ck_assert_uint_eq(got, s);
		ck_assert_int_eq(devstate_state_parse(
				devstate_state_name(s), &got), 0);
		ck_assert_uint_eq(got, s);
		digit[0] = (char)('0' + s);
		got = 99;
		ck_assert_int_eq(devstate_state_parse(digit, &got), 0);
		ck_assert_uint_eq(got, s);
	}
	for (i = 0; i < N_INVALID; i++)
		ck_assert_ptr_null(devstate_state_name(invalid_states[i]));
}
END_TEST

START_TEST(test_parse_bad)
{
	static const char *const bad[] = {
		"logging", "", "RUNNING", "Running", "Stop", "STOP+LOGGING",
		"stop+Logging", "running+", "+logging", "logging+stop",
		"stop|logging", "running ", " running", "stop\n", "4", "9",
		"-1", "00", "01", "1 ", " 1", "0x1", "1.0", "runningx",
	};
	size_t i;
	uint32_t got;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		got = 77;
		ck_assert_msg(devstate_state_parse(bad[i], &got) == -EINVAL,
			      "\"%s\" accepted", bad[i]);
		ck_assert_uint_eq(got, 77);
	}
	ck_assert_int_eq(devstate_state_parse(NULL, &got), -EINVAL);
	ck_assert_int_eq(devstate_state_parse("stop", NULL), -EINVAL);
}
END_TEST

static Suite *state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("state");

	tcase_add_test(tc, test_encoding);
	tcase_add_test(tc, test_transitions);
	tcase_add_test(tc, test_op_table);
	tcase_add_test(tc, test_op_table_spot);
	tcase_add_test(tc, test_op_invalid);
	tcase_add_test(tc, test_op_names);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_parse_bad);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(state_suite());
}

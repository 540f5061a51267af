/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared scaffolding for the Check suites: one suite per program. */
#ifndef DEVSTATE_TESTUTIL_H
#define DEVSTATE_TESTUTIL_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

/* Deterministic PRNG for property tests (xorshift64*). */
static inline uint64_t tu_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Run one suite; exit status for automake's test driver. */
static inline int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif

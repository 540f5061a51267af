/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared scaffolding for the Check suites: one suite per program. */
#ifndef DEVSTATE_TESTUTIL_H
#define DEVSTATE_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devstate.h"

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

/* Room for need bytes in *p (capacity *cap), doubling as it grows. */
static inline void tu_reserve(uint8_t **p, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : 4096;

	if (need <= *cap)
		return;
	while (c < need)
		c *= 2;
	*p = realloc(*p, c);
	ck_assert_ptr_nonnull(*p);
	*cap = c;
}

/* A growing byte buffer, a save session's write callback (tu_sink_write):
 * it keeps every byte; fail_after 0 never fails, else a write that would
 * take len past it fails (-ENOSPC). */
struct tu_sink {
	uint8_t *buf;
	size_t len, cap;
	size_t fail_after;
};

static inline int tu_sink_write(void *opaque, const void *buf, size_t len)
{
	struct tu_sink *s = opaque;

	if (s->fail_after && s->len + len > s->fail_after)
		return -ENOSPC;
	tu_reserve(&s->buf, &s->cap, s->len + len);
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

/* Open uri (flags 0) or fail the test with the library's sentence. */
static inline struct devstate_device *tu_open_dev(const char *uri)
{
	struct devstate_device *dev = NULL;
	char err[256] = "";
	int rc = devstate_device_open(&dev, uri, 0, err, sizeof(err));

	ck_assert_msg(rc == 0, "open %s: %d %s", uri, rc, err);
	return dev;
}

/*
 * A whole load as a VMM runs it: new, begin, the stream fed in pieces,
 * finish.  piece: bytes per feed (0: all at once); a non-zero seed
 * overrides it with pieces of random size (a quarter of them one byte).
 * Returns the first error, its sentence in err.
 */
static inline int tu_run_load(struct devstate_device *dev, const uint8_t *buf,
			      size_t len, size_t piece, uint64_t seed,
			      char *err, size_t errlen)
{
	struct devstate_load *l = NULL;
	size_t off = 0;
	int rc;

	rc = devstate_load_new(&l, dev);
	if (rc < 0) {
		snprintf(err, errlen, "new: %s", devstate_device_error(dev));
		return rc;
	}
	rc = devstate_load_begin(l);
	while (rc == 0 && off < len) {
		size_t n = len - off;

		if (seed) {
			uint64_t r = tu_rand(&seed);
			size_t cap = (r & 3) == 0 ? 1 :
				     (size_t)(r >> 8) % 70000 + 1;

			if (n > cap)
				n = cap;
		} else if (piece && n > piece) {
			n = piece;
		}
		rc = devstate_load_feed(l, buf + off, n);
		off += n;
	}
	if (rc == 0)
		rc = devstate_load_finish(l);
	if (rc < 0)
		snprintf(err, errlen, "%s", devstate_load_error(l));
	devstate_load_free(l);
	return rc;
}

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bitmap slicer and helpers (SPEC 8), against naive bit-by-bit references.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdevstate/core.h"
#include "tests/testutil.h"

/* bitmap.c: the merge as a CPU without AVX2 runs it (internal). */
void devstate_bitmap_or_base(uint64_t *dst, uint64_t dst_bit,
			     const void *src, uint64_t nbits);

/* An assertion for hot loops: Check's macros record every passing one. */
#define REQUIRE(c) do {							\
	if (!(c))							\
		ck_abort_msg("%s:%d: failed: %s", __FILE__, __LINE__, #c); \
} while (0)

typedef void (*or_fn)(uint64_t *dst, uint64_t dst_bit, const void *src,
		      uint64_t nbits);

static const or_fn or_fns[2] = { devstate_bitmap_or,
				 devstate_bitmap_or_base };

/* ---------------------------------------------------------------- */
/* naive references                                                  */

static bool wbit(const uint64_t *bm, uint64_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

static void wset(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= UINT64_C(1) << (i % 64);
}

static bool bbit(const unsigned char *b, uint64_t i)
{
	return (b[i / 8] >> (i % 8)) & 1;
}

static void bset(unsigned char *b, uint64_t i, bool v)
{
	if (v)
		b[i / 8] |= (unsigned char)(1u << (i % 8));
	else
		b[i / 8] &= (unsigned char)~(1u << (i % 8));
}

static void ref_or(uint64_t *dst, uint64_t dst_bit, const unsigned char *src,
		   uint64_t nbits)
{
	uint64_t i;

	for (i = 0; i < nbits; i++)
		if (bbit(src, i))
			wset(dst, dst_bit + i);
}

static void fill_random(void *p, size_t n, uint64_t *seed)
{
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)tu_rand(seed);
}

/* Random words with a density picked from sparse to full. */
static void fill_density(uint64_t *w, size_t n, uint64_t *seed)
{
	unsigned mode = (unsigned)(tu_rand(seed) % 4);
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t x = tu_rand(seed);

		switch (mode) {
		case 0:
			x &= tu_rand(seed) & tu_rand(seed);	/* sparse */
			break;
		case 1:
			x |= tu_rand(seed) | tu_rand(seed);	/* dense */
			break;
		case 2:				/* long runs */
			x = (tu_rand(seed) & 1) ? ~UINT64_C(0) : 0;
			break;
		default:
			break;
		}
		w[i] = x;
	}
}

/* ---------------------------------------------------------------- */
/* slicer                                                            */

START_TEST(test_slicer_init_refuses)
{
	struct devstate_slicer s;
	const uint64_t top = UINT64_MAX / 4096;	/* 2^52 - 1 */

	ck_assert_int_eq(devstate_slicer_init(&s, 0, 1, 0), -EINVAL);
	ck_assert_int_eq(devstate_slicer_init(&s, 0, 0, 8), -EINVAL);
	ck_assert_int_eq(devstate_slicer_init(&s, UINT64_MAX, 1, 8), -EINVAL);
	ck_assert_int_eq(devstate_slicer_init(&s, 1, UINT64_MAX, 8), -EINVAL);
	ck_assert_int_eq(devstate_slicer_init(&s, UINT64_MAX / 2,
					      UINT64_MAX / 2 + 2, 8), -EINVAL);
	/* the end byte address (start + page_nr) * 4096 must fit */
	ck_assert_int_eq(devstate_slicer_init(&s, top, 1, 8), -EINVAL);
	ck_assert_int_eq(devstate_slicer_init(&s, 0, top + 1, 8), -EINVAL);
	ck_assert_int_eq(devstate_slicer_init(&s, top - 1, 1, 8), 0);
	ck_assert_int_eq(devstate_slicer_init(&s, 0, top, 8), 0);
	ck_assert_int_eq(devstate_slicer_init(NULL, 0, 1, 8), -EINVAL);
}
END_TEST

struct sl {
	uint64_t start, nr, off;
};

static void check_slices(uint64_t start, uint64_t nr, uint64_t region,
			 const struct sl *want, size_t n)
{
	struct devstate_slicer s;
	struct devstate_slice sl;
	size_t i;

	ck_assert_int_eq(devstate_slicer_init(&s, start, nr, region), 0);
	for (i = 0; i < n; i++) {
		ck_assert(devstate_slicer_next(&s, &sl));
		ck_assert_uint_eq(sl.start_page, want[i].start);
		ck_assert_uint_eq(sl.page_nr, want[i].nr);
		ck_assert_uint_eq(sl.bit_offset, want[i].off);
	}
	ck_assert(!devstate_slicer_next(&s, &sl));
	ck_assert(!devstate_slicer_next(&s, &sl));
}

#define SLICES(start, nr, region, ...) do {				\
	static const struct sl w_[] = { __VA_ARGS__ };			\
	check_slices(start, nr, region, w_, sizeof(w_) / sizeof(w_[0])); \
} while (0)

START_TEST(test_slicer_sequences)
{
	/* 4-byte region: 32 pages a slice */
	SLICES(100, 100, 4,
	       { 100, 32, 0 }, { 132, 32, 32 }, { 164, 32, 64 },
	       { 196, 4, 96 });
	SLICES(0, 32, 4, { 0, 32, 0 });
	SLICES(0, 33, 4, { 0, 32, 0 }, { 32, 1, 32 });
	SLICES(7, 1, 1, { 7, 1, 0 });
	SLICES(5, 17, 1, { 5, 8, 0 }, { 13, 8, 8 }, { 21, 1, 16 });
	/* 4 KiB region: 32768 pages a slice */
	SLICES(UINT64_C(1) << 30, 70000, 4096,
	       { UINT64_C(1) << 30, 32768, 0 },
	       { (UINT64_C(1) << 30) + 32768, 32768, 32768 },
	       { (UINT64_C(1) << 30) + 65536, 70000 - 65536, 65536 });
	/* regions whose page count overflows 64 bits: one slice */
	SLICES(3, UINT64_C(1) << 40, UINT64_C(1) << 61,
	       { 3, UINT64_C(1) << 40, 0 });
	SLICES(0, UINT64_MAX / 4096, UINT64_MAX,
	       { 0, UINT64_MAX / 4096, 0 });
	SLICES(0, 1000, (UINT64_C(1) << 61) - 1, { 0, 1000, 0 });
}
END_TEST

START_TEST(test_slicer_max_pages)
{
	struct devstate_slicer s;

	ck_assert_int_eq(devstate_slicer_init(&s, 0, 1, 4096), 0);
	ck_assert_uint_eq(s.max_pages, 32768);
	ck_assert_int_eq(devstate_slicer_init(&s, 0, 1, 3), 0);
	ck_assert_uint_eq(s.max_pages, 24);
	ck_assert_int_eq(devstate_slicer_init(&s, 0, 1,
					      (UINT64_C(1) << 61) - 1), 0);
	ck_assert_uint_eq(s.max_pages, UINT64_MAX - 7);
	/* 8 * 2^61 does not fit: saturates rather than wrapping to 0 */
	ck_assert_int_eq(devstate_slicer_init(&s, 0, 1, UINT64_C(1) << 61),
			 0);
	ck_assert_uint_ge(s.max_pages, UINT64_MAX - 7);
}
END_TEST

/*
 * The whole flow, simulated: a device with a dirty log for the range
 * answers each slice with its bits in a region-sized byte buffer whose
 * bytes past the slice hold garbage; the slices are ORed into a caller
 * bitmap (with its own random content) at a random bit offset.  The
 * result must equal the naive merge, bit for bit, including every bit
 * outside the range.
 */
START_TEST(test_slicer_property)
{
	uint64_t seed = 0xb17b17;
	int iter;

	for (iter = 0; iter < 3000; iter++) {
		uint64_t start = tu_rand(&seed) % (UINT64_C(1) << 40);
		uint64_t nr = 1 + tu_rand(&seed) % (iter % 4 ? 3000 : 20000);
		uint64_t region = 1 + tu_rand(&seed) % (iter % 2 ? 40 : 700);
		uint64_t off = tu_rand(&seed) % 300;
		size_t words = (size_t)((off + nr) / 64 + 3);
		uint64_t *dst = malloc(words * 8), *ref = malloc(words * 8);
		unsigned char *log = malloc((size_t)(nr / 8 + 1));
		unsigned char *buf = malloc((size_t)region);
		or_fn fn = or_fns[iter & 1];
		struct devstate_slicer s;
		struct devstate_slice sl;
		uint64_t covered = 0, slices = 0, i;

		ck_assert(dst && ref && log && buf);
		fill_random(log, (size_t)(nr / 8 + 1), &seed);
		fill_density(dst, words, &seed);
		memcpy(ref, dst, words * 8);
		for (i = 0; i < nr; i++)
			if (bbit(log, i))
				wset(ref, off + i);

		ck_assert_int_eq(devstate_slicer_init(&s, start, nr, region),
				 0);
		while (devstate_slicer_next(&s, &sl)) {
			REQUIRE(sl.page_nr >= 1);
			REQUIRE(sl.page_nr <= 8 * region);
			REQUIRE(sl.bit_offset == covered);
			REQUIRE(sl.start_page == start + covered);
			/* every slice but the last is full */
			if (covered + sl.page_nr < nr)
				REQUIRE(sl.page_nr == 8 * region);
			/* the device's answer, garbage past the slice */
			fill_random(buf, (size_t)region, &seed);
			for (i = 0; i < sl.page_nr; i++)
				bset(buf, i, bbit(log, sl.bit_offset + i));
			fn(dst, off + sl.bit_offset, buf, sl.page_nr);
			covered += sl.page_nr;
			slices++;
		}
		ck_assert_uint_eq(covered, nr);
		ck_assert_uint_eq(slices, (nr + 8 * region - 1) / (8 * region));
		ck_assert_msg(!memcmp(dst, ref, words * 8),
			      "iter %d: start %llu nr %llu region %llu off %llu",
			      iter, (unsigned long long)start,
			      (unsigned long long)nr,
			      (unsigned long long)region,
			      (unsigned long long)off);
		free(dst);
		free(ref);
		free(log);
		free(buf);
	}
}
END_TEST

/* ---------------------------------------------------------------- */
/* or                                                                */

START_TEST(test_or_literal)
{
	uint64_t d[3];
	const unsigned char src[3] = { 0xff, 0x01, 0xfe };

	/* 9 bits at bit 60: bits 60..68; src byte 2 and bits past 9 are
	 * ignored */
	memset(d, 0, sizeof(d));
	devstate_bitmap_or(d, 60, src, 9);
	ck_assert_uint_eq(d[0], UINT64_C(0xf) << 60);
	ck_assert_uint_eq(d[1], 0x1f);
	ck_assert_uint_eq(d[2], 0);

	/* the source is a little-endian byte array */
	{
		const unsigned char b[8] = { 0x01, 0x02, 0x03, 0x04,
					     0x05, 0x06, 0x07, 0x08 };

		memset(d, 0, sizeof(d));
		devstate_bitmap_or(d, 64, b, 64);
		ck_assert_uint_eq(d[0], 0);
		ck_assert_uint_eq(d[1], UINT64_C(0x0807060504030201));
		ck_assert_uint_eq(d[2], 0);
		memset(d, 0, sizeof(d));
		devstate_bitmap_or(d, 4, b, 64);
		ck_assert_uint_eq(d[0], UINT64_C(0x8070605040302010));
		ck_assert_uint_eq(d[1], 0);
		memset(d, 0, sizeof(d));
		devstate_bitmap_or(d, 8, b, 60);	/* bits 8..67 */
		ck_assert_uint_eq(d[0], UINT64_C(0x0706050403020100));
		ck_assert_uint_eq(d[1], 0x8);
	}

	/* ORs, never clears */
	d[0] = ~UINT64_C(0);
	d[1] = 0x8000000000000000ull;
	devstate_bitmap_or(d, 0, src, 24);
	ck_assert_uint_eq(d[0], ~UINT64_C(0));
	ck_assert_uint_eq(d[1], 0x8000000000000000ull);

	/* nothing at all */
	d[0] = 0;
	devstate_bitmap_or(d, 5, src, 0);
	ck_assert_uint_eq(d[0], 0);
}
END_TEST

/* Random merges of up to ~12000 bits at any offset, both code paths. */
START_TEST(test_or_property)
{
	uint64_t seed = 0x0123456789abcdefull;
	int iter;

	for (iter = 0; iter < 6000; iter++) {
		uint64_t nbits = tu_rand(&seed) %
				 (iter % 8 ? 700 : 12000);
		uint64_t dst_bit = tu_rand(&seed) % (iter % 3 ? 200 : 64);
		size_t sbytes = (size_t)((nbits + 7) / 8);
		size_t words = (size_t)((dst_bit + nbits) / 64 + 3);
		unsigned char *buf = malloc(sbytes + 16), *src;
		uint64_t *dst = malloc(words * 8), *ref = malloc(words * 8);
		unsigned f;

		ck_assert(buf && dst && ref);
		src = buf + (iter & 7);		/* odd source addresses too */
		if (iter % 5 == 0)		/* byte-aligned offsets */
			dst_bit &= ~UINT64_C(7);
		/* garbage in the bits and bytes past nbits */
		fill_random(buf, sbytes + 16, &seed);
		for (f = 0; f < 2; f++) {
			fill_density(dst, words, &seed);
			memcpy(ref, dst, words * 8);
			ref_or(ref, dst_bit, src, nbits);
			or_fns[f](dst, dst_bit, src, nbits);
			ck_assert_msg(!memcmp(dst, ref, words * 8),
				      "fn %u nbits %llu dst_bit %llu", f,
				      (unsigned long long)nbits,
				      (unsigned long long)dst_bit);
		}
		free(buf);
		free(dst);
		free(ref);
	}
}
END_TEST

/*
 * The source ends at a page boundary with an inaccessible page after it:
 * reading one byte past ceil(nbits / 8) faults.  The destination is the
 * exact number of words the range touches, also followed by a guard page.
 */
START_TEST(test_or_bounds)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *smap, *dmap;
	uint64_t seed = 99, nbits, dst_bit;

	smap = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dmap = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(smap != MAP_FAILED && dmap != MAP_FAILED);
	ck_assert_int_eq(mprotect(smap + 3 * pg, pg, PROT_NONE), 0);
	ck_assert_int_eq(mprotect(dmap + 3 * pg, pg, PROT_NONE), 0);
	fill_random(smap, 3 * pg, &seed);

	for (nbits = 1; nbits <= 2100; nbits += (nbits < 300 ? 1 : 37)) {
		for (dst_bit = 0; dst_bit < 130; dst_bit += 1 + dst_bit / 16) {
			size_t sbytes = (size_t)((nbits + 7) / 8);
			size_t dwords = (size_t)((dst_bit + nbits + 63) / 64);
			const unsigned char *src = smap + 3 * pg - sbytes;
			uint64_t *d0 = (uint64_t *)(void *)
				(dmap + 3 * pg - 8 * dwords);
			uint64_t ref[40];
			unsigned f;

			ck_assert_uint_le(dwords, 40);
			for (f = 0; f < 2; f++) {
				memset(ref, 0, sizeof(ref));
				memset(d0, 0, 8 * dwords);
				ref_or(ref, dst_bit, src, nbits);
				or_fns[f](d0, dst_bit, src, nbits);
				ck_assert_msg(!memcmp(d0, ref, 8 * dwords),
					      "nbits %llu dst_bit %llu",
					      (unsigned long long)nbits,
					      (unsigned long long)dst_bit);
			}
		}
	}
	munmap(smap, 4 * pg);
	munmap(dmap, 4 * pg);
}
END_TEST

/* ---------------------------------------------------------------- */
/* set_range, count, next_run                                        */

START_TEST(test_set_range)
{
	uint64_t seed = 7;
	uint64_t d[12], ref[12];
	int iter;

	memset(d, 0, sizeof(d));
	devstate_bitmap_set_range(d, 60, 10);
	ck_assert_uint_eq(d[0], UINT64_C(0xf) << 60);
	ck_assert_uint_eq(d[1], 0x3f);
	ck_assert_uint_eq(d[2], 0);
	memset(d, 0, sizeof(d));
	devstate_bitmap_set_range(d, 64, 128);
	ck_assert_uint_eq(d[0], 0);
	ck_assert_uint_eq(d[1], ~UINT64_C(0));
	ck_assert_uint_eq(d[2], ~UINT64_C(0));
	ck_assert_uint_eq(d[3], 0);
	devstate_bitmap_set_range(d, 3, 0);
	ck_assert_uint_eq(d[0], 0);

	for (iter = 0; iter < 20000; iter++) {
		uint64_t first = tu_rand(&seed) % 300;
		uint64_t n = tu_rand(&seed) % (12 * 64 - first + 1);
		uint64_t i;

		fill_density(d, 12, &seed);
		memcpy(ref, d, sizeof(d));
		for (i = 0; i < n; i++)
			wset(ref, first + i);
		devstate_bitmap_set_range(d, first, n);
		ck_assert_msg(!memcmp(d, ref, sizeof(d)), "first %llu n %llu",
			      (unsigned long long)first,
			      (unsigned long long)n);
	}
}
END_TEST

START_TEST(test_count)
{
	uint64_t seed = 8;
	uint64_t bm[20];
	int iter;

	memset(bm, 0, sizeof(bm));
	bm[0] = UINT64_C(0xf0) | (UINT64_C(1) << 63);
	bm[1] = 0x3;
	ck_assert_uint_eq(devstate_bitmap_count(bm, 0, 128), 7);
	ck_assert_uint_eq(devstate_bitmap_count(bm, 5, 58), 3);
	ck_assert_uint_eq(devstate_bitmap_count(bm, 63, 2), 2);
	ck_assert_uint_eq(devstate_bitmap_count(bm, 64, 1), 1);
	ck_assert_uint_eq(devstate_bitmap_count(bm, 4, 0), 0);

	for (iter = 0; iter < 20000; iter++) {
		uint64_t first = tu_rand(&seed) % 400;
		uint64_t n = tu_rand(&seed) % (20 * 64 - first + 1);
		uint64_t i, want = 0;

		fill_density(bm, 20, &seed);
		for (i = 0; i < n; i++)
			want += wbit(bm, first + i);
		REQUIRE(devstate_bitmap_count(bm, first, n) == want);
	}
}
END_TEST

/* naive: first run at or after from, below nbits */
static int ref_next_run(const uint64_t *bm, uint64_t nbits, uint64_t from,
			uint64_t *start, uint64_t *len)
{
	uint64_t i = from, s;

	while (i < nbits && !wbit(bm, i))
		i++;
	if (i >= nbits)
		return 0;
	s = i;
	while (i < nbits && wbit(bm, i))
		i++;
	*start = s;
	*len = i - s;
	return 1;
}

START_TEST(test_next_run)
{
	uint64_t seed = 9;
	uint64_t bm[16];
	uint64_t s, l;
	int iter;

	memset(bm, 0, sizeof(bm));
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 1024, 0, &s, &l), 0);
	bm[0] = UINT64_C(3) << 62;
	bm[1] = 0x7;
	bm[2] = UINT64_C(1) << 5;
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 1024, 0, &s, &l), 1);
	ck_assert_uint_eq(s, 62);
	ck_assert_uint_eq(l, 5);
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 1024, 63, &s, &l), 1);
	ck_assert_uint_eq(s, 63);
	ck_assert_uint_eq(l, 4);
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 1024, 67, &s, &l), 1);
	ck_assert_uint_eq(s, 133);
	ck_assert_uint_eq(l, 1);
	/* runs are cut at nbits; bits past it do not exist */
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 65, 0, &s, &l), 1);
	ck_assert_uint_eq(s, 62);
	ck_assert_uint_eq(l, 3);
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 133, 67, &s, &l), 0);
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 1024, 134, &s, &l), 0);
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 62, 0, &s, &l), 0);
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 1024, 1024, &s, &l), 0);
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 1024, 5000, &s, &l), 0);
	/* a run to the very end */
	memset(bm, 0xff, sizeof(bm));
	ck_assert_int_eq(devstate_bitmap_next_run(bm, 1024, 1, &s, &l), 1);
	ck_assert_uint_eq(s, 1);
	ck_assert_uint_eq(l, 1023);

	for (iter = 0; iter < 5000; iter++) {
		uint64_t nbits = tu_rand(&seed) % (16 * 64 + 1);
		uint64_t from = tu_rand(&seed) % (nbits + 70);
		uint64_t rs = 0, rl = 0, gs = 0, gl = 0, runs = 0;
		int r, g;

		fill_density(bm, 16, &seed);
		/* walk every run, both ways */
		for (;;) {
			r = ref_next_run(bm, nbits, from, &rs, &rl);
			g = devstate_bitmap_next_run(bm, nbits, from, &gs, &gl);
			REQUIRE(g == r);
			if (!r)
				break;
			REQUIRE(gs == rs);
			REQUIRE(gl == rl);
			REQUIRE(gl > 0);
			from = gs + gl;
			runs++;
		}
		ck_assert_uint_le(runs, 16 * 64);
	}
}
END_TEST

/* The last word is exactly the one holding bit nbits - 1: a guard page
 * after it proves no word past it is read. */
START_TEST(test_next_run_bounds)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *map;
	uint64_t nbits, s, l;

	map = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(map != MAP_FAILED);
	ck_assert_int_eq(mprotect(map + pg, pg, PROT_NONE), 0);
	for (nbits = 1; nbits <= 300; nbits++) {
		size_t words = (size_t)((nbits + 63) / 64);
		uint64_t *bm = (uint64_t *)(void *)(map + pg - 8 * words);

		memset(bm, 0xff, 8 * words);
		ck_assert_int_eq(devstate_bitmap_next_run(bm, nbits, 0, &s,
							  &l), 1);
		ck_assert_uint_eq(s, 0);
		ck_assert_uint_eq(l, nbits);
		ck_assert_uint_eq(devstate_bitmap_count(bm, 0, nbits), nbits);
		memset(bm, 0, 8 * words);
		ck_assert_int_eq(devstate_bitmap_next_run(bm, nbits, 0, &s,
							  &l), 0);
	}
	munmap(map, 2 * pg);
}
END_TEST

/* ---------------------------------------------------------------- */
/* regrain                                                           */

static void ref_regrain(uint64_t *dst, const uint64_t *src, uint64_t npages,
			int shift, uint64_t *out_bits)
{
	uint64_t j, i, n;

	if (shift >= 0) {
		uint64_t f = UINT64_C(1) << shift;

		n = (npages + f - 1) / f;
		for (j = 0; j < n; j++) {
			bool any = false;

			for (i = j * f; i < (j + 1) * f && i < npages; i++)
				any |= wbit(src, i);
			if (any)
				wset(dst, j);
			else
				dst[j / 64] &= ~(UINT64_C(1) << (j % 64));
		}
	} else {
		n = npages << -shift;
		for (j = 0; j < n; j++) {
			if (wbit(src, j >> -shift))
				wset(dst, j);
			else
				dst[j / 64] &= ~(UINT64_C(1) << (j % 64));
		}
	}
	*out_bits = n;
}

START_TEST(test_regrain_literal)
{
	uint64_t src[2] = { 0, 0 }, dst[80];

	/* pages 1 and 9 dirty: 2 MiB-ish grain of 8 pages -> bits 0, 1 */
	src[0] = (UINT64_C(1) << 1) | (UINT64_C(1) << 9);
	memset(dst, 0xff, sizeof(dst));
	ck_assert_int_eq(devstate_bitmap_regrain(dst, src, 20, 3), 0);
	/* 3 output bits: 0b011; the bits past them untouched */
	ck_assert_uint_eq(dst[0], ~UINT64_C(7) | 3);
	/* each page repeated 4 times: page 1 -> bits 4..7, 9 -> 36..39 */
	memset(dst, 0, sizeof(dst));
	ck_assert_int_eq(devstate_bitmap_regrain(dst, src, 10, -2), 0);
	ck_assert_uint_eq(dst[0], (UINT64_C(0xf) << 4) | (UINT64_C(0xf) << 36));
	/* shift 0 is a copy that ignores bits past npages */
	src[0] = ~UINT64_C(0);
	memset(dst, 0, sizeof(dst));
	ck_assert_int_eq(devstate_bitmap_regrain(dst, src, 5, 0), 0);
	ck_assert_uint_eq(dst[0], 0x1f);

	ck_assert_int_eq(devstate_bitmap_regrain(dst, src, 5, 13), -EINVAL);
	ck_assert_int_eq(devstate_bitmap_regrain(dst, src, 5, -13), -EINVAL);
	ck_assert_int_eq(devstate_bitmap_regrain(dst, src, 5, 12), 0);
	ck_assert_uint_eq(dst[0] & 1, 1);
	ck_assert_int_eq(devstate_bitmap_regrain(dst, src, 1, -12), 0);
	ck_assert_uint_eq(devstate_bitmap_count(dst, 0, 4096), 4096);
	/* no pages: nothing written */
	dst[0] = 0x1234;
	ck_assert_int_eq(devstate_bitmap_regrain(dst, src, 0, 2), 0);
	ck_assert_uint_eq(dst[0], 0x1234);
}
END_TEST

START_TEST(test_regrain_property)
{
	uint64_t seed = 10;
	uint64_t src[24], dst[24 * 8 + 2], ref[24 * 8 + 2];
	int iter;

	for (iter = 0; iter < 4000; iter++) {
		int shift = (int)(tu_rand(&seed) % 7) - 3;	/* -3 .. 3 */
		uint64_t npages = tu_rand(&seed) % (24 * 64 + 1);
		uint64_t out_bits;

		/* garbage past npages in src */
		fill_density(src, 24, &seed);
		fill_density(dst, sizeof(dst) / 8, &seed);
		memcpy(ref, dst, sizeof(dst));
		ref_regrain(ref, src, npages, shift, &out_bits);
		ck_assert_int_eq(devstate_bitmap_regrain(dst, src, npages,
							 shift), 0);
		ck_assert_msg(!memcmp(dst, ref, sizeof(dst)),
			      "shift %d npages %llu", shift,
			      (unsigned long long)npages);
	}
}
END_TEST

static Suite *bitmap_suite(void)
{
	Suite *s = suite_create("bitmap");
	TCase *tc = tcase_create("bitmap");

	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, test_slicer_init_refuses);
	tcase_add_test(tc, test_slicer_sequences);
	tcase_add_test(tc, test_slicer_max_pages);
	tcase_add_test(tc, test_slicer_property);
	tcase_add_test(tc, test_or_literal);
	tcase_add_test(tc, test_or_property);
	tcase_add_test(tc, test_or_bounds);
	tcase_add_test(tc, test_set_range);
	tcase_add_test(tc, test_count);
	tcase_add_test(tc, test_next_run);
	tcase_add_test(tc, test_next_run_bounds);
	tcase_add_test(tc, test_regrain_literal);
	tcase_add_test(tc, test_regrain_property);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(bitmap_suite());
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dirty bitmaps (SPEC 8): the slicer that cuts a query into requests the
 * DIRTY_BITMAP region can answer, and the word-at-a-time helpers that
 * merge, count, walk and convert bitmaps.
 *
 * A bitmap is an array of host-order uint64_t words, bit i of word w
 * standing for page 64 * w + i.  A device slice is a little-endian byte
 * array whose length need not be a multiple of 8; it is read with memcpy
 * into a uint64_t plus le64toh, never past its last byte.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "libdevstate/core.h"

#define WORD_BITS 64u

/* The bits [lo, 64) of a word, lo < 64. */
static inline uint64_t mask_from(unsigned lo)
{
	return ~(uint64_t)0 << lo;
}

/* The bits [0, n) of a word, 0 < n <= 64. */
static inline uint64_t mask_below(unsigned n)
{
	return ~(uint64_t)0 >> (WORD_BITS - n);
}

/* ---------------------------------------------------------------- */
/* Slicer                                                           */

int devstate_slicer_init(struct devstate_slicer *s, uint64_t start_page,
			 uint64_t page_nr, uint64_t region_bytes)
{
	uint64_t end;

	if (!s || !region_bytes || !page_nr)
		return -EINVAL;
	/* the end of the range, as a byte address, must fit in 64 bits */
	if (start_page > UINT64_MAX - page_nr)
		return -EINVAL;
	end = start_page + page_nr;
	if (end > UINT64_MAX / DEVSTATE_PAGE_SIZE)
		return -EINVAL;

	s->start_page = start_page;
	s->page_nr = page_nr;
	/* 8 pages per byte; a region that large covers any range anyway */
	s->max_pages = region_bytes > UINT64_MAX / 8 ? UINT64_MAX
						      : region_bytes * 8;
	s->done = 0;
	return 0;
}

bool devstate_slicer_next(struct devstate_slicer *s,
			  struct devstate_slice *slice)
{
	uint64_t left;

	if (s->done >= s->page_nr || !s->max_pages)
		return false;
	left = s->page_nr - s->done;
	slice->start_page = s->start_page + s->done;
	slice->page_nr = left < s->max_pages ? left : s->max_pages;
	slice->bit_offset = s->done;
	s->done += slice->page_nr;
	return true;
}

/* ---------------------------------------------------------------- */
/* OR a little-endian byte slice into a word bitmap                 */

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* The first n (< 8) bytes at p as a little-endian value. */
static inline uint64_t load_short(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * The bulk loops.  On a little-endian host a vector load of source bytes
 * is a vector of little-endian words, and a destination word is its bytes
 * in order, so the compiler's vector extensions do several words a step
 * (with an AVX2 variant picked at run time on x86); elsewhere plain word
 * loops.  Loads go through memcpy: the source needs no alignment.
 *
 *   or_words:   d[i] |= w[i]                            for 0 <= i < nw
 *   or_shifted: d[i] |= w[i] << sh | w[i - 1] >> (64 - sh)
 *                                                       for 1 <= i < nw
 * where w[i] is source word i (bytes 8i .. 8i + 7) and 0 < sh < 64.
 */
#define VLOAD(v, p)	memcpy(&(v), (p), sizeof(v))
#define VSTORE(p, v)	memcpy((p), &(v), sizeof(v))
/* Destination stores are kept vector-aligned (no cache-line splits). */
#define VALIGNED(p, VT)	(((uintptr_t)(p) & (sizeof(VT) - 1)) == 0)

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && \
	__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
# define HOST_LE 1
# if (defined(__x86_64__) || defined(__i386__)) && \
	(defined(__clang__) || __GNUC__ >= 5)
#  define HAVE_AVX2 1
# endif
#endif

#ifdef HOST_LE
/* {prev[VW - 1], cur[0], ..., cur[VW - 2]}: the words one step back. */
# ifdef __clang__
#  define SHUF2(prev, cur)	__builtin_shufflevector(prev, cur, 1, 2)
#  define SHUF4(prev, cur)	__builtin_shufflevector(prev, cur, 3, 4, 5, 6)
# else
#  define SHUF2(prev, cur)	__builtin_shuffle(prev, cur, (vw2){ 1, 2 })
#  define SHUF4(prev, cur)	__builtin_shuffle(prev, cur, \
						  (vw4){ 3, 4, 5, 6 })
# endif

#define DEFINE_OR_WORDS(name, attr, VT)					\
attr static void name(uint64_t *restrict d,				\
		      const unsigned char *restrict s, uint64_t nw)	\
{									\
	const uint64_t vw = sizeof(VT) / sizeof(uint64_t);		\
	uint64_t i = 0;							\
									\
	for (; i < nw && !VALIGNED(d + i, VT); i++)			\
		d[i] |= load64(s + 8 * i);				\
	for (; i + 4 * vw <= nw; i += 4 * vw) {				\
		VT a0, a1, a2, a3, b0, b1, b2, b3;			\
									\
		VLOAD(a0, s + 8 * i);					\
		VLOAD(a1, s + 8 * (i + vw));				\
		VLOAD(a2, s + 8 * (i + 2 * vw));			\
		VLOAD(a3, s + 8 * (i + 3 * vw));			\
		VLOAD(b0, d + i);					\
		VLOAD(b1, d + i + vw);					\
		VLOAD(b2, d + i + 2 * vw);				\
		VLOAD(b3, d + i + 3 * vw);				\
		b0 |= a0;						\
		b1 |= a1;						\
		b2 |= a2;						\
		b3 |= a3;						\
		VSTORE(d + i, b0);					\
		VSTORE(d + i + vw, b1);					\
		VSTORE(d + i + 2 * vw, b2);				\
		VSTORE(d + i + 3 * vw, b3);				\
	}								\
	for (; i < nw; i++)						\
		d[i] |= load64(s + 8 * i);				\
}

/* After the aligning steps, prev carries source word i - 1 in its last
 * lane. */
#define DEFINE_OR_SHIFTED(name, attr, VT, SHUF)				\
attr static void name(uint64_t *restrict d,				\
		      const unsigned char *restrict s, uint64_t nw,	\
		      unsigned sh)					\
{									\
	const uint64_t vw = sizeof(VT) / sizeof(uint64_t);		\
	const unsigned rs = 64 - sh;					\
	uint64_t i = 1;							\
	VT prev = { 0 };						\
									\
	for (; i < nw && !VALIGNED(d + i, VT); i++)			\
		d[i] |= (load64(s + 8 * i) << sh) |			\
			(load64(s + 8 * i - 8) >> rs);			\
	prev[vw - 1] = load64(s + 8 * i - 8);				\
	for (; i + 4 * vw <= nw; i += 4 * vw) {				\
		VT a0, a1, a2, a3, p0, p1, p2, p3, b0, b1, b2, b3;	\
									\
		VLOAD(a0, s + 8 * i);					\
		VLOAD(a1, s + 8 * (i + vw));				\
		VLOAD(a2, s + 8 * (i + 2 * vw));			\
		VLOAD(a3, s + 8 * (i + 3 * vw));			\
		VLOAD(b0, d + i);					\
		VLOAD(b1, d + i + vw);					\
		VLOAD(b2, d + i + 2 * vw);				\
		VLOAD(b3, d + i + 3 * vw);				\
		p0 = SHUF(prev, a0);					\
		p1 = SHUF(a0, a1);					\
		p2 = SHUF(a1, a2);					\
		p3 = SHUF(a2, a3);					\
		prev = a3;						\
		b0 |= (a0 << sh) | (p0 >> rs);				\
		b1 |= (a1 << sh) | (p1 >> rs);				\
		b2 |= (a2 << sh) | (p2 >> rs);				\
		b3 |= (a3 << sh) | (p3 >> rs);				\
		VSTORE(d + i, b0);					\
		VSTORE(d + i + vw, b1);					\
		VSTORE(d + i + 2 * vw, b2);				\
		VSTORE(d + i + 3 * vw, b3);				\
	}								\
	for (; i < nw; i++)						\
		d[i] |= (load64(s + 8 * i) << sh) |			\
			(load64(s + 8 * i - 8) >> rs);			\
}

typedef uint64_t vw2 __attribute__((vector_size(16)));
DEFINE_OR_WORDS(or_words_base, , vw2)
DEFINE_OR_SHIFTED(or_shifted_base, , vw2, SHUF2)

#else /* !HOST_LE */

static void or_words_base(uint64_t *restrict d,
			  const unsigned char *restrict s, uint64_t nw)
{
	uint64_t i;

	for (i = 0; i < nw; i++)
		d[i] |= load64(s + 8 * i);
}

static void or_shifted_base(uint64_t *restrict d,
			    const unsigned char *restrict s, uint64_t nw,
			    unsigned sh)
{
	uint64_t i;

	for (i = 1; i < nw; i++)
		d[i] |= (load64(s + 8 * i) << sh) |
			(load64(s + 8 * i - 8) >> (64 - sh));
}

#endif /* HOST_LE */

#ifdef HAVE_AVX2
typedef uint64_t vw4 __attribute__((vector_size(32)));
DEFINE_OR_WORDS(or_words_avx2, __attribute__((target("avx2"))), vw4)
DEFINE_OR_SHIFTED(or_shifted_avx2, __attribute__((target("avx2"))), vw4,
		  SHUF4)

/* Worth it (and available)?  Below 16 words the plain loops win. */
static bool use_avx2(uint64_t nw)
{
	return nw >= 16 && __builtin_cpu_supports("avx2");
}
#else
# define or_words_avx2 or_words_base
# define or_shifted_avx2 or_shifted_base
static bool use_avx2(uint64_t nw)
{
	(void)nw;
	return false;
}
#endif

static void bitmap_or(uint64_t *restrict dst, uint64_t dst_bit,
		      const void *restrict src, uint64_t nbits, bool avx2)
{
	const unsigned char *s = src;
	uint64_t *d = dst + dst_bit / WORD_BITS;
	unsigned sh = (unsigned)(dst_bit % WORD_BITS);
	uint64_t nw = nbits / WORD_BITS;	/* whole source words */
	unsigned r = (unsigned)(nbits % WORD_BITS); /* bits after them */
	uint64_t tail = 0;

	if (!nbits)
		return;
	avx2 = avx2 && use_avx2(nw);

	/* the partial last word: only ceil(r / 8) bytes exist; bits of the
	 * last byte past nbits may be garbage */
	if (r)
		tail = load_short(s + nw * 8, (r + 7) / 8) & mask_below(r);
	if (!sh) {
		if (avx2)
			or_words_avx2(d, s, nw);
		else
			or_words_base(d, s, nw);
		if (r)
			d[nw] |= tail;
		return;
	}

	/*
	 * Source word i lands in the high 64 - sh bits of d[i] and the low
	 * sh bits of d[i + 1]: d[0] takes only the first, d[nw] only the
	 * carry of the last whole word plus the tail.
	 */
	if (nw) {
		d[0] |= load64(s) << sh;
		if (avx2)
			or_shifted_avx2(d, s, nw, sh);
		else
			or_shifted_base(d, s, nw, sh);
		/* the low sh bits of d[nw] are still in the range */
		d[nw] |= (load64(s + 8 * nw - 8) >> (WORD_BITS - sh)) |
			 (tail << sh);
	} else {
		d[0] |= tail << sh;
	}
	if (sh + r > WORD_BITS)
		d[nw + 1] |= tail >> (WORD_BITS - sh);
}

/*
 * Internal, for the tests: the same merge without the AVX2 loops, i.e. the
 * path a CPU without AVX2 takes.
 */
void devstate_bitmap_or_base(uint64_t *dst, uint64_t dst_bit,
			     const void *src, uint64_t nbits);

void devstate_bitmap_or_base(uint64_t *dst, uint64_t dst_bit,
			     const void *src, uint64_t nbits)
{
	bitmap_or(dst, dst_bit, src, nbits, false);
}

/* dst and src must not overlap. */
DEVSTATE_EXPORT void devstate_bitmap_or(uint64_t *dst, uint64_t dst_bit,
					const void *src, uint64_t nbits)
{
	bitmap_or(dst, dst_bit, src, nbits, true);
}

/* ---------------------------------------------------------------- */
/* Ranges                                                           */

DEVSTATE_EXPORT void devstate_bitmap_set_range(uint64_t *dst, uint64_t first,
					       uint64_t n)
{
	uint64_t *d = dst + first / WORD_BITS;
	unsigned lo = (unsigned)(first % WORD_BITS);

	if (!n)
		return;
	if (n < WORD_BITS - lo) {
		*d |= mask_below((unsigned)n) << lo;
		return;
	}
	*d++ |= mask_from(lo);
	n -= WORD_BITS - lo;
	for (; n >= WORD_BITS; n -= WORD_BITS)
		*d++ = ~(uint64_t)0;
	if (n)
		*d |= mask_below((unsigned)n);
}

/* Clear bits [first, first + n) of dst. */
static void clear_range(uint64_t *dst, uint64_t first, uint64_t n)
{
	uint64_t *d = dst + first / WORD_BITS;
	unsigned lo = (unsigned)(first % WORD_BITS);

	if (!n)
		return;
	if (n < WORD_BITS - lo) {
		*d &= ~(mask_below((unsigned)n) << lo);
		return;
	}
	*d++ &= ~mask_from(lo);
	n -= WORD_BITS - lo;
	for (; n >= WORD_BITS; n -= WORD_BITS)
		*d++ = 0;
	if (n)
		*d &= ~mask_below((unsigned)n);
}

DEVSTATE_EXPORT uint64_t devstate_bitmap_count(const uint64_t *bm,
					       uint64_t first, uint64_t n)
{
	const uint64_t *p = bm + first / WORD_BITS;
	unsigned lo = (unsigned)(first % WORD_BITS);
	uint64_t c;

	if (!n)
		return 0;
	if (n < WORD_BITS - lo)
		return (uint64_t)__builtin_popcountll((*p >> lo) &
						      mask_below((unsigned)n));
	c = (uint64_t)__builtin_popcountll(*p++ & mask_from(lo));
	n -= WORD_BITS - lo;
	for (; n >= WORD_BITS; n -= WORD_BITS)
		c += (uint64_t)__builtin_popcountll(*p++);
	if (n)
		c += (uint64_t)__builtin_popcountll(*p &
						    mask_below((unsigned)n));
	return c;
}

/*
 * The first bit at or after from, below nbits, whose value is set (want
 * set) or clear (!set); nbits when there is none.  Reads no word past the
 * one holding bit nbits - 1.
 */
static uint64_t find_bit(const uint64_t *bm, uint64_t nbits, uint64_t from,
			 bool set)
{
	uint64_t nwords = nbits / WORD_BITS + (nbits % WORD_BITS != 0);
	uint64_t w = from / WORD_BITS, bit;
	uint64_t x;

	if (from >= nbits)
		return nbits;
	x = (set ? bm[w] : ~bm[w]) & mask_from((unsigned)(from % WORD_BITS));
	while (!x) {
		if (++w >= nwords)
			return nbits;
		x = set ? bm[w] : ~bm[w];
	}
	bit = w * WORD_BITS + (unsigned)__builtin_ctzll(x);
	return bit < nbits ? bit : nbits;
}

DEVSTATE_EXPORT int devstate_bitmap_next_run(const uint64_t *bm,
					     uint64_t nbits, uint64_t from,
					     uint64_t *start, uint64_t *len)
{
	uint64_t s, e;

	s = find_bit(bm, nbits, from, true);
	if (s >= nbits)
		return 0;
	e = find_bit(bm, nbits, s, false);
	*start = s;
	*len = e - s;
	return 1;
}

/*
 * shift >= 0: output bit j is the OR of input bits [j << shift,
 * (j + 1) << shift), so each input run [s, e) sets output bits
 * [s >> shift, ((e - 1) >> shift) + 1).
 * shift < 0: output bit j is input bit j >> -shift, so each input run
 * [s, e) sets output bits [s << -shift, e << -shift).
 * Output bits past the converted count are left as they were.
 */
DEVSTATE_EXPORT int devstate_bitmap_regrain(uint64_t *dst,
					    const uint64_t *src,
					    uint64_t npages, int shift)
{
	uint64_t out_bits, from = 0, s, n;

	if (shift > 12 || shift < -12)
		return -EINVAL;
	if (shift >= 0) {
		out_bits = (npages >> shift) +
			   ((npages & ((UINT64_C(1) << shift) - 1)) != 0);
	} else {
		if (npages > UINT64_MAX >> -shift)
			return -EINVAL;
		out_bits = npages << -shift;
	}

	clear_range(dst, 0, out_bits);
	while (from < npages &&
	       devstate_bitmap_next_run(src, npages, from, &s, &n)) {
		from = s + n;
		if (shift >= 0) {
			uint64_t lo = s >> shift, hi = (from - 1) >> shift;

			devstate_bitmap_set_range(dst, lo, hi - lo + 1);
		} else {
			devstate_bitmap_set_range(dst, s << -shift,
						  n << -shift);
		}
	}
	return 0;
}

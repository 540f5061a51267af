/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRC-32 (the zlib/gzip polynomial) for the migration stream (SPEC 9).
 *
 * This file is the one place that chooses how the CRC is computed.  The
 * CRC runs over every stream byte, so its speed bounds the save path.  It
 * is libdeflate's libdeflate_crc32(), which folds with PCLMULQDQ (or the
 * ARMv8 CRC32 instructions) chosen at run time and returns exactly the
 * value zlib's crc32() returns (same polynomial, same pre- and
 * post-conditioning; tests/test-stream compares both).  Measured on the
 * project's CI machine (bench/README), 128 MiB: zlib 2.6 GB/s, libdeflate
 * 7.4 GB/s, ISA-L 8.8 GB/s, memcpy 6.0 GB/s; in cache (64 KiB blocks, as
 * the encoder uses it) libdeflate and ISA-L are equal (9.1 / 9.2 GB/s);
 * ISA-L is 10-25% faster from memory, but Debian ships it without a
 * static library, and libdeflate is already needed for the deflate codec
 * (README, Dependencies).
 *
 * Combining two CRCs is rare (a few per section) and stays zlib's.
 */
#include "config.h"

#include <libdeflate.h>
#include <limits.h>
#include <zlib.h>

#include "libdevstate/stream.h"

uint32_t devstate_crc32(uint32_t crc, const void *buf, size_t len)
{
	if (!len)
		return crc;
	return libdeflate_crc32(crc, buf, len);
}

uint32_t devstate_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
#ifdef Z_LARGE64
	return (uint32_t)crc32_combine64(crc_a, crc_b, (z_off64_t)len_b);
#else
	/*
	 * Without the explicit 64-bit entry point z_off_t is the large-file
	 * offset type (AC_SYS_LARGEFILE), i.e. 64 bits on every platform
	 * we build for.
	 */
	_Static_assert(sizeof(z_off_t) >= 8, "z_off_t must be 64 bits");
	return (uint32_t)crc32_combine(crc_a, crc_b, (z_off_t)len_b);
#endif
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRC-32 (the zlib/gzip polynomial) for the migration stream (SPEC 9).
 *
 * This file is the one place that chooses how the CRC is computed.  For
 * now it is zlib's own implementation; an accelerated one (PCLMUL, ARMv8
 * CRC32 instructions) may be picked here later, as long as it returns the
 * value zlib's crc32() returns.
 */
#include "config.h"

#include <limits.h>
#include <zlib.h>

#include "libdevstate/stream.h"

uint32_t devstate_crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	if (!len)
		return crc;
	/* crc32_z takes a z_size_t (size_t): no need to split the buffer */
	return (uint32_t)crc32_z(crc, p, len);
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

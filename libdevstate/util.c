/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small shared helpers: messages, size parsing, names. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "libdevstate/core.h"

void devstate_msg(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Digits at *sp: decimal, or hex after "0x"; stops at the first
 * non-digit.  -EINVAL for no digit at all or a value over 64 bits. */
static int parse_digits(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0, base = 10;
	const char *first;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (first = s; *s; s++) {
		uint64_t d;

		if (*s >= '0' && *s <= '9')
			d = (uint64_t)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (uint64_t)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (uint64_t)(*s - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return -EINVAL;
		v = v * base + d;
	}
	if (s == first)
		return -EINVAL;
	*sp = s;
	*out = v;
	return 0;
}

int devstate_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (!s || parse_digits(&s, &v) < 0 || *s || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int devstate_parse_size(const char *s, uint64_t *out)
{
	uint64_t v, mult = 1;

	if (!s || parse_digits(&s, &v) < 0)
		return -EINVAL;
	if (*s) {
		switch (*s) {
		case 'k': case 'K': mult = 1ull << 10; break;
		case 'm': case 'M': mult = 1ull << 20; break;
		case 'g': case 'G': mult = 1ull << 30; break;
		case 't': case 'T': mult = 1ull << 40; break;
		default: return -EINVAL;
		}
		s++;
		/* accept "K", "KiB" */
		if (*s == 'i' && s[1] == 'B')
			s += 2;
		if (*s)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

static const char *const codec_names[] = {
	[DEVSTATE_CODEC_RAW] = "raw",
	[DEVSTATE_CODEC_DEFLATE] = "deflate",
	[DEVSTATE_CODEC_ZSTD] = "zstd",
	[DEVSTATE_CODEC_ZERO] = "zero",
};

DEVSTATE_EXPORT const char *devstate_codec_name(enum devstate_codec codec)
{
	if ((unsigned)codec >= sizeof(codec_names) / sizeof(codec_names[0]))
		return NULL;
	return codec_names[codec];
}

DEVSTATE_EXPORT int devstate_codec_parse(const char *name,
					 enum devstate_codec *codec)
{
	unsigned i;

	if (!name)
		return -EINVAL;
	/* "zero" is a marker the encoder picks by itself, not a choice */
	for (i = 0; i < DEVSTATE_CODEC_ZERO; i++) {
		if (!strcmp(name, codec_names[i])) {
			*codec = (enum devstate_codec)i;
			return 0;
		}
	}
	if (!strcmp(name, "zlib")) {
		*codec = DEVSTATE_CODEC_DEFLATE;
		return 0;
	}
	return -EINVAL;
}

DEVSTATE_EXPORT const char *devstate_version(void)
{
	return PACKAGE_VERSION;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Caps negotiation (SPEC 5): decide, from the regions a device offers and
 * the version and caps it reports, whether it can be migrated, and if not
 * why (a blocker code plus a sentence).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "libdevstate/core.h"

static const char *const blocker_names[] = {
	[DEVSTATE_BLOCKER_NONE] = "none",
	[DEVSTATE_BLOCKER_NO_STATE_REGIONS] = "no-state-regions",
	[DEVSTATE_BLOCKER_NO_CTL] = "no-ctl-region",
	[DEVSTATE_BLOCKER_NO_CONFIG] = "no-config-region",
	[DEVSTATE_BLOCKER_CTL_TOO_SMALL] = "ctl-too-small",
	[DEVSTATE_BLOCKER_BAD_VERSION] = "bad-version",
	[DEVSTATE_BLOCKER_UNKNOWN_CAPS] = "unknown-caps",
	[DEVSTATE_BLOCKER_NO_MEMORY_REGION] = "no-memory-region",
	[DEVSTATE_BLOCKER_NO_BITMAP_REGION] = "no-bitmap-region",
	[DEVSTATE_BLOCKER_CONFIG_REGION_EMPTY] = "config-region-empty",
	[DEVSTATE_BLOCKER_MEMORY_REGION_EMPTY] = "memory-region-empty",
	[DEVSTATE_BLOCKER_BITMAP_REGION_EMPTY] = "bitmap-region-empty",
	[DEVSTATE_BLOCKER_IO] = "io-error",
	[DEVSTATE_BLOCKER_MIG2_FLAGS] = "mig2-flags",
};

static const char *const region_names[DEVSTATE_REGION_COUNT] = {
	[DEVSTATE_REGION_CTL] = "ctl",
	[DEVSTATE_REGION_CONFIG] = "config",
	[DEVSTATE_REGION_MEMORY] = "memory",
	[DEVSTATE_REGION_BITMAP] = "bitmap",
};

DEVSTATE_EXPORT const char *devstate_blocker_name(enum devstate_blocker code)
{
	if ((unsigned)code >= sizeof(blocker_names) / sizeof(blocker_names[0]))
		return NULL;
	return blocker_names[code];
}

DEVSTATE_EXPORT const char *devstate_region_name(enum devstate_region region)
{
	if ((unsigned)region >= DEVSTATE_REGION_COUNT)
		return NULL;
	return region_names[region];
}

/* Fill *b (if any) and return -EOPNOTSUPP. */
__attribute__((format(printf, 3, 4)))
static int block(struct devstate_blocker_info *b, enum devstate_blocker code,
		 const char *fmt, ...)
{
	va_list ap;

	if (b) {
		b->code = code;
		va_start(ap, fmt);
		vsnprintf(b->reason, sizeof(b->reason), fmt, ap);
		va_end(ap);
	}
	return -EOPNOTSUPP;
}

static void unblock(struct devstate_blocker_info *b)
{
	if (b) {
		b->code = DEVSTATE_BLOCKER_NONE;
		b->reason[0] = '\0';
	}
}

/*
 * Step 1, in this order (the first failure wins):
 *   1. no device-state region at all         NO_STATE_REGIONS
 *   2. no CTL region                          NO_CTL
 *   3. no DEVICE_CONFIG region                NO_CONFIG
 *   4. CTL too small for the version field    CTL_TOO_SMALL
 */
int devstate_negotiate_regions(const struct devstate_regions *r,
			       struct devstate_blocker_info *b)
{
	unsigned i;
	bool any = false;

	if (!r)
		return -EINVAL;
	for (i = 0; i < DEVSTATE_REGION_COUNT; i++)
		any |= r->present[i];
	if (!any)
		return block(b, DEVSTATE_BLOCKER_NO_STATE_REGIONS,
			     "device has no device-state regions (it does not support migration)");
	if (!r->present[DEVSTATE_REGION_CTL])
		return block(b, DEVSTATE_BLOCKER_NO_CTL,
			     "device has device-state regions but no CTL region");
	if (!r->present[DEVSTATE_REGION_CONFIG])
		return block(b, DEVSTATE_BLOCKER_NO_CONFIG,
			     "device has no DEVICE_CONFIG region");
	if (r->size[DEVSTATE_REGION_CTL] <
	    DEVSTATE_VERSION_OFFSET + DEVSTATE_VERSION_WIDTH)
		return block(b, DEVSTATE_BLOCKER_CTL_TOO_SMALL,
			     "CTL region is %" PRIu64 " bytes, too small to hold the version field (%u bytes)",
			     r->size[DEVSTATE_REGION_CTL],
			     DEVSTATE_VERSION_OFFSET + DEVSTATE_VERSION_WIDTH);
	unblock(b);
	return 0;
}

/* "1, 2": the versions devstate_layout_find() knows. */
static void supported_versions(char *buf, size_t len)
{
	uint32_t v;
	size_t used = 0;

	buf[0] = '\0';
	for (v = DEVSTATE_LAYOUT_MIN_VERSION;
	     v <= DEVSTATE_LAYOUT_MAX_VERSION; v++) {
		int n;

		if (!devstate_layout_find(v))
			continue;
		n = snprintf(buf + used, len - used, "%s%" PRIu32,
			     used ? ", " : "", v);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

/*
 * Step 2.  The step 1 checks are repeated first (so a caller cannot skip
 * them), then, in this order (the first failure wins):
 *   1. version not supported                          BAD_VERSION
 *   2. CTL region smaller than that version's layout  CTL_TOO_SMALL
 *   3. caps bits outside DEVSTATE_CAP_ALL             UNKNOWN_CAPS
 *   4. cap DEVICE_MEMORY, no DEVICE_MEMORY region     NO_MEMORY_REGION
 *   5. cap SYSTEM_MEMORY, no DIRTY_BITMAP region      NO_BITMAP_REGION
 *   6. DEVICE_CONFIG region of size 0                 CONFIG_REGION_EMPTY
 *   7. cap DEVICE_MEMORY, DEVICE_MEMORY region empty  MEMORY_REGION_EMPTY
 *   8. cap SYSTEM_MEMORY, DIRTY_BITMAP region empty   BITMAP_REGION_EMPTY
 * A region present without its cap is ignored.
 */
int devstate_negotiate(const struct devstate_regions *r, uint32_t version,
		       uint32_t caps, const struct devstate_layout **layout,
		       struct devstate_blocker_info *b)
{
	const struct devstate_layout *l;
	bool devmem = caps & DEVSTATE_CAP_DEVICE_MEMORY;
	bool sysmem = caps & DEVSTATE_CAP_SYSTEM_MEMORY;
	char vers[32];
	int ret;

	if (!r)
		return -EINVAL;
	ret = devstate_negotiate_regions(r, b);
	if (ret)
		return ret;

	l = devstate_layout_find(version);
	if (!l) {
		supported_versions(vers, sizeof(vers));
		return block(b, DEVSTATE_BLOCKER_BAD_VERSION,
			     "device-state interface version %" PRIu32 " is not supported (supported: %s)",
			     version, vers);
	}
	if (r->size[DEVSTATE_REGION_CTL] < l->size)
		return block(b, DEVSTATE_BLOCKER_CTL_TOO_SMALL,
			     "CTL region is %" PRIu64 " bytes but control layout version %" PRIu32 " needs %" PRIu32 " bytes",
			     r->size[DEVSTATE_REGION_CTL], version, l->size);
	if (caps & ~DEVSTATE_CAP_ALL)
		return block(b, DEVSTATE_BLOCKER_UNKNOWN_CAPS,
			     "device has unknown caps bits 0x%" PRIx32 " (data the library cannot move would be lost)",
			     caps & ~DEVSTATE_CAP_ALL);
	if (devmem && !r->present[DEVSTATE_REGION_MEMORY])
		return block(b, DEVSTATE_BLOCKER_NO_MEMORY_REGION,
			     "device has cap DEVICE_MEMORY but no DEVICE_MEMORY region");
	if (sysmem && !r->present[DEVSTATE_REGION_BITMAP])
		return block(b, DEVSTATE_BLOCKER_NO_BITMAP_REGION,
			     "device has cap SYSTEM_MEMORY but no DIRTY_BITMAP region");
	if (!r->size[DEVSTATE_REGION_CONFIG])
		return block(b, DEVSTATE_BLOCKER_CONFIG_REGION_EMPTY,
			     "device has an empty DEVICE_CONFIG region (0 bytes)");
	if (devmem && !r->size[DEVSTATE_REGION_MEMORY])
		return block(b, DEVSTATE_BLOCKER_MEMORY_REGION_EMPTY,
			     "device has cap DEVICE_MEMORY but an empty DEVICE_MEMORY region (0 bytes)");
	if (sysmem && !r->size[DEVSTATE_REGION_BITMAP])
		return block(b, DEVSTATE_BLOCKER_BITMAP_REGION_EMPTY,
			     "device has cap SYSTEM_MEMORY but an empty DIRTY_BITMAP region (0 bytes)");

	unblock(b);
	if (layout)
		*layout = l;
	return 0;
}

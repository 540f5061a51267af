/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Control-region layouts (SPEC 3).
 *
 * The offsets are part of the ABI.  They are written out here as numbers,
 * never derived from a C struct: a __u64 is only 4-byte aligned on i386,
 * so a struct would move every field after "caps".
 */
#include "config.h"

#include <errno.h>

#include "libdevstate/core.h"

#define F(off, w, acc, nm) { .offset = (off), .width = (w), \
			     .access = DEVSTATE_ACCESS_##acc, .name = (nm) }

static const struct devstate_layout layouts[] = {
	{
		/* Version 1 (the kernel series): the write of page_nr
		 * triggers the bitmap query. */
		.version = 1,
		.size = 72,
		.bitmap_action = false,
		.fields = {
			[DEVSTATE_FIELD_VERSION] =
				F(0, 4, R, "version"),
			[DEVSTATE_FIELD_DEVICE_STATE] =
				F(4, 4, W, "device_state"),
			[DEVSTATE_FIELD_CAPS] =
				F(8, 4, R, "caps"),
			[DEVSTATE_FIELD_CONFIG_ACTION] =
				F(16, 4, W, "device_config.action"),
			[DEVSTATE_FIELD_CONFIG_SIZE] =
				F(24, 8, RW, "device_config.size"),
			[DEVSTATE_FIELD_MEMORY_ACTION] =
				F(32, 4, W, "device_memory.action"),
			[DEVSTATE_FIELD_MEMORY_SIZE] =
				F(40, 8, RW, "device_memory.size"),
			[DEVSTATE_FIELD_MEMORY_POS] =
				F(48, 8, RW, "device_memory.pos"),
			/* no system_memory.action in version 1 */
			[DEVSTATE_FIELD_SYSMEM_ACTION] =
				{ 0, 0, 0, "system_memory.action" },
			[DEVSTATE_FIELD_SYSMEM_START] =
				F(56, 8, W, "system_memory.start_addr"),
			[DEVSTATE_FIELD_SYSMEM_PAGE_NR] =
				F(64, 8, W, "system_memory.page_nr"),
		},
	},
	{
		/* Version 2 (the QEMU series): an explicit GET_BITMAP
		 * action triggers the query. */
		.version = 2,
		.size = 80,
		.bitmap_action = true,
		.fields = {
			[DEVSTATE_FIELD_VERSION] =
				F(0, 4, R, "version"),
			[DEVSTATE_FIELD_DEVICE_STATE] =
				F(4, 4, W, "device_state"),
			[DEVSTATE_FIELD_CAPS] =
				F(8, 4, R, "caps"),
			[DEVSTATE_FIELD_CONFIG_ACTION] =
				F(16, 4, W, "device_config.action"),
			[DEVSTATE_FIELD_CONFIG_SIZE] =
				F(24, 8, RW, "device_config.size"),
			[DEVSTATE_FIELD_MEMORY_ACTION] =
				F(32, 4, W, "device_memory.action"),
			[DEVSTATE_FIELD_MEMORY_SIZE] =
				F(40, 8, RW, "device_memory.size"),
			[DEVSTATE_FIELD_MEMORY_POS] =
				F(48, 8, RW, "device_memory.pos"),
			[DEVSTATE_FIELD_SYSMEM_ACTION] =
				F(56, 4, W, "system_memory.action"),
			[DEVSTATE_FIELD_SYSMEM_START] =
				F(64, 8, W, "system_memory.start_addr"),
			[DEVSTATE_FIELD_SYSMEM_PAGE_NR] =
				F(72, 8, W, "system_memory.page_nr"),
		},
	},
};

#undef F

#define N_LAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

const struct devstate_layout *devstate_layout_find(uint32_t version)
{
	size_t i;

	for (i = 0; i < N_LAYOUTS; i++)
		if (layouts[i].version == version)
			return &layouts[i];
	return NULL;
}

const struct devstate_field_desc *
devstate_layout_field(const struct devstate_layout *layout,
		      enum devstate_field field)
{
	const struct devstate_field_desc *f;

	if (!layout || (unsigned)field >= DEVSTATE_FIELD_COUNT)
		return NULL;
	f = &layout->fields[field];
	return f->width ? f : NULL;
}

int devstate_layout_field_at(const struct devstate_layout *layout,
			     uint32_t off, uint32_t width,
			     enum devstate_field *field)
{
	unsigned i;

	if (!layout || (width != 4 && width != 8))
		return -EINVAL;
	for (i = 0; i < DEVSTATE_FIELD_COUNT; i++) {
		const struct devstate_field_desc *f = &layout->fields[i];

		if (f->width && f->offset == off && f->width == width) {
			if (field)
				*field = (enum devstate_field)i;
			return 0;
		}
	}
	/* padding, inside a field, a span of two, past the end */
	return -EINVAL;
}

uint64_t devstate_le_get(const void *p, uint32_t width)
{
	const unsigned char *b = p;
	uint64_t v = 0;
	uint32_t i;

	if (width > 8)
		width = 8;
	for (i = 0; i < width; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

void devstate_le_put(void *p, uint32_t width, uint64_t v)
{
	unsigned char *b = p;
	uint32_t i;

	if (width > 8)
		width = 8;
	for (i = 0; i < width; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Chunk iterator (SPEC 7): the only place that computes device-memory
 * positions.  Chunk N covers [N * L, min((N + 1) * L, size)).  Positions are
 * advanced by comparing the bytes left (size - pos) with L, never by
 * computing pos + L, so a size near 2^64 cannot overflow.
 */
#include "config.h"

#include <errno.h>

#include "libdevstate/core.h"

/* Steps per chunk, in order, for each direction. */
static const enum devstate_step_kind steps[2][3] = {
	[DEVSTATE_CHUNK_SAVE] = {
		DEVSTATE_STEP_WRITE_POS,
		DEVSTATE_STEP_WRITE_ACTION,
		DEVSTATE_STEP_READ_DATA,
	},
	[DEVSTATE_CHUNK_LOAD] = {
		DEVSTATE_STEP_WRITE_DATA,
		DEVSTATE_STEP_WRITE_POS,
		DEVSTATE_STEP_WRITE_ACTION,
	},
};

#define STEPS_PER_CHUNK 3u

int devstate_chunk_init(struct devstate_chunk_iter *it,
			enum devstate_chunk_dir dir, uint64_t size,
			uint64_t region_len)
{
	if (!it || !region_len ||
	    (dir != DEVSTATE_CHUNK_SAVE && dir != DEVSTATE_CHUNK_LOAD))
		return -EINVAL;
	it->size = size;
	it->region_len = region_len;
	it->pos = 0;
	it->phase = 0;
	it->dir = dir;
	return 0;
}

void devstate_chunk_next(struct devstate_chunk_iter *it,
			 struct devstate_chunk_step *step)
{
	uint64_t left;

	step->kind = DEVSTATE_STEP_DONE;
	step->pos = it->pos;
	step->len = 0;
	step->action = 0;
	/* done, or an iterator that was never initialised */
	if (it->pos >= it->size || !it->region_len ||
	    it->phase >= STEPS_PER_CHUNK ||
	    (it->dir != DEVSTATE_CHUNK_SAVE && it->dir != DEVSTATE_CHUNK_LOAD))
		return;

	left = it->size - it->pos;
	step->kind = steps[it->dir][it->phase];
	step->len = left < it->region_len ? left : it->region_len;
	if (step->kind == DEVSTATE_STEP_WRITE_ACTION)
		step->action = it->dir == DEVSTATE_CHUNK_SAVE ?
			       DEVSTATE_ACTION_GET_BUFFER :
			       DEVSTATE_ACTION_SET_BUFFER;

	if (++it->phase == STEPS_PER_CHUNK) {
		it->phase = 0;
		if (left <= it->region_len)
			it->pos = it->size;	/* that was the last chunk */
		else
			it->pos += it->region_len;
	}
}

uint64_t devstate_chunk_count(uint64_t size, uint64_t region_len)
{
	if (!size || !region_len)
		return 0;
	return (size - 1) / region_len + 1;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Device state (SPEC 4): the encoding, the transitions and what each state
 * permits, as data.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "libdevstate/core.h"

#define N_STATES (DEVSTATE_STATE_MAX + 1)

static const char *const state_names[N_STATES] = {
	[DEVSTATE_STATE_RUNNING] = "running",
	[DEVSTATE_STATE_STOP] = "stop",
	[DEVSTATE_STATE_RUNNING_LOGGING] = "running+logging",
	[DEVSTATE_STATE_STOP_LOGGING] = "stop+logging",
};

/*
 * SPEC 4 table.  Set operations are allowed in STOP exactly (not
 * STOP|LOGGING, SPEC 11); the proposal's step 12 wording is not followed.
 */
static const enum devstate_permit
permits[N_STATES][DEVSTATE_OP_COUNT] = {
	[DEVSTATE_STATE_RUNNING] = {
		[DEVSTATE_OP_GET_CONFIG] = DEVSTATE_PERMIT_WHOLE,
		[DEVSTATE_OP_GET_MEMORY] = DEVSTATE_PERMIT_WHOLE,
		[DEVSTATE_OP_GET_BITMAP] = DEVSTATE_PERMIT_EMPTY,
		[DEVSTATE_OP_SET_CONFIG] = DEVSTATE_PERMIT_REFUSED,
		[DEVSTATE_OP_SET_MEMORY] = DEVSTATE_PERMIT_REFUSED,
	},
	[DEVSTATE_STATE_STOP] = {
		[DEVSTATE_OP_GET_CONFIG] = DEVSTATE_PERMIT_WHOLE,
		[DEVSTATE_OP_GET_MEMORY] = DEVSTATE_PERMIT_WHOLE,
		[DEVSTATE_OP_GET_BITMAP] = DEVSTATE_PERMIT_EMPTY,
		[DEVSTATE_OP_SET_CONFIG] = DEVSTATE_PERMIT_ALLOWED,
		[DEVSTATE_OP_SET_MEMORY] = DEVSTATE_PERMIT_ALLOWED,
	},
	[DEVSTATE_STATE_RUNNING_LOGGING] = {
		[DEVSTATE_OP_GET_CONFIG] = DEVSTATE_PERMIT_WHOLE,
		[DEVSTATE_OP_GET_MEMORY] = DEVSTATE_PERMIT_DIRTY,
		[DEVSTATE_OP_GET_BITMAP] = DEVSTATE_PERMIT_DIRTY,
		[DEVSTATE_OP_SET_CONFIG] = DEVSTATE_PERMIT_REFUSED,
		[DEVSTATE_OP_SET_MEMORY] = DEVSTATE_PERMIT_REFUSED,
	},
	[DEVSTATE_STATE_STOP_LOGGING] = {
		[DEVSTATE_OP_GET_CONFIG] = DEVSTATE_PERMIT_WHOLE,
		[DEVSTATE_OP_GET_MEMORY] = DEVSTATE_PERMIT_DIRTY,
		[DEVSTATE_OP_GET_BITMAP] = DEVSTATE_PERMIT_DIRTY,
		[DEVSTATE_OP_SET_CONFIG] = DEVSTATE_PERMIT_REFUSED,
		[DEVSTATE_OP_SET_MEMORY] = DEVSTATE_PERMIT_REFUSED,
	},
};

static const char *const op_names[DEVSTATE_OP_COUNT] = {
	[DEVSTATE_OP_GET_CONFIG] = "get-config",
	[DEVSTATE_OP_GET_MEMORY] = "get-memory",
	[DEVSTATE_OP_GET_BITMAP] = "get-bitmap",
	[DEVSTATE_OP_SET_CONFIG] = "set-config",
	[DEVSTATE_OP_SET_MEMORY] = "set-memory",
};

/*
 * Every transition between two valid states is legal (the proposal lists
 * all twelve); writing the current state is a legal no-op.
 */
int devstate_state_transition(uint32_t from, uint32_t to)
{
	if (!devstate_state_valid(from) || !devstate_state_valid(to))
		return -EINVAL;
	return 0;
}

enum devstate_permit devstate_state_permits(uint32_t state,
					    enum devstate_op op)
{
	if (!devstate_state_valid(state) || (unsigned)op >= DEVSTATE_OP_COUNT)
		return DEVSTATE_PERMIT_REFUSED;
	return permits[state][op];
}

int devstate_state_check(uint32_t state, enum devstate_op op)
{
	if (devstate_state_permits(state, op) == DEVSTATE_PERMIT_REFUSED)
		return -EBUSY;
	return 0;
}

const char *devstate_op_name(enum devstate_op op)
{
	if ((unsigned)op >= DEVSTATE_OP_COUNT)
		return NULL;
	return op_names[op];
}

DEVSTATE_EXPORT const char *devstate_state_name(uint32_t state)
{
	if (!devstate_state_valid(state))
		return NULL;
	return state_names[state];
}

DEVSTATE_EXPORT int devstate_state_parse(const char *name, uint32_t *state)
{
	uint32_t i;

	if (!name || !state)
		return -EINVAL;
	/* a single decimal digit: the raw encoding */
	if (name[0] >= '0' && name[0] <= '0' + (int)DEVSTATE_STATE_MAX &&
	    name[1] == '\0') {
		*state = (uint32_t)(name[0] - '0');
		return 0;
	}
	for (i = 0; i < N_STATES; i++) {
		if (!strcmp(name, state_names[i])) {
			*state = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Migration uAPI v2 (SPEC 1, second protocol family): the state machine as
 * data.  Three tables say everything: which flags each state needs, the
 * single arcs a driver implements, and the requests that are refused
 * outright.  The router below only applies the kernel's two rules (shortest
 * path; the saving group is never entered or left in passing) to them.
 *
 * The arcs follow the FSM described in upstream include/uapi/linux/vfio.h
 * (enum vfio_device_mig_state and the comment above it) and the routing of
 * vfio_mig_get_next_state() in drivers/vfio/vfio_main.c.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "libdevstate/core.h"
#include "libdevstate/mig2.h"

#define N_STATES DEVSTATE_MIG2_NR_STATES

#define STOP_COPY	DEVSTATE_MIG2_F_STOP_COPY
#define P2P		DEVSTATE_MIG2_F_P2P
#define PRE_COPY	DEVSTATE_MIG2_F_PRE_COPY

/* Flags a device needs for a state to exist.  ERROR always exists. */
static const uint8_t state_needs[N_STATES] = {
	[DEVSTATE_MIG2_ERROR] = 0,
	[DEVSTATE_MIG2_STOP] = STOP_COPY,
	[DEVSTATE_MIG2_RUNNING] = STOP_COPY,
	[DEVSTATE_MIG2_STOP_COPY] = STOP_COPY,
	[DEVSTATE_MIG2_RESUMING] = STOP_COPY,
	[DEVSTATE_MIG2_RUNNING_P2P] = STOP_COPY | P2P,
	[DEVSTATE_MIG2_PRE_COPY] = STOP_COPY | PRE_COPY,
	[DEVSTATE_MIG2_PRE_COPY_P2P] = STOP_COPY | P2P | PRE_COPY,
};

static const bool state_saving[N_STATES] = {
	[DEVSTATE_MIG2_STOP_COPY] = true,
	[DEVSTATE_MIG2_PRE_COPY] = true,
	[DEVSTATE_MIG2_PRE_COPY_P2P] = true,
};

static const char *const state_names[N_STATES] = {
	[DEVSTATE_MIG2_ERROR] = "error",
	[DEVSTATE_MIG2_STOP] = "stop",
	[DEVSTATE_MIG2_RUNNING] = "running",
	[DEVSTATE_MIG2_STOP_COPY] = "stop-copy",
	[DEVSTATE_MIG2_RESUMING] = "resuming",
	[DEVSTATE_MIG2_RUNNING_P2P] = "running-p2p",
	[DEVSTATE_MIG2_PRE_COPY] = "pre-copy",
	[DEVSTATE_MIG2_PRE_COPY_P2P] = "pre-copy-p2p",
};

/*
 * The single arcs.  An arc exists when the device has both its states and
 * none of the flags in .unless: the last three join two arcs through a
 * P2P state the device lacks (RUNNING -> RUNNING_P2P -> STOP becomes
 * RUNNING -> STOP, and so on), so they exist exactly when P2P is absent.
 * Order matters only for the search order; every route is unique anyway.
 */
struct mig2_arc {
	uint8_t from;
	uint8_t to;
	uint8_t unless;
};

static const struct mig2_arc arcs[] = {
	/* mandatory (STOP_COPY) */
	{ DEVSTATE_MIG2_STOP, DEVSTATE_MIG2_STOP_COPY, 0 },
	{ DEVSTATE_MIG2_STOP_COPY, DEVSTATE_MIG2_STOP, 0 },
	{ DEVSTATE_MIG2_STOP, DEVSTATE_MIG2_RESUMING, 0 },
	{ DEVSTATE_MIG2_RESUMING, DEVSTATE_MIG2_STOP, 0 },
	/* P2P */
	{ DEVSTATE_MIG2_RUNNING, DEVSTATE_MIG2_RUNNING_P2P, 0 },
	{ DEVSTATE_MIG2_RUNNING_P2P, DEVSTATE_MIG2_RUNNING, 0 },
	{ DEVSTATE_MIG2_RUNNING_P2P, DEVSTATE_MIG2_STOP, 0 },
	{ DEVSTATE_MIG2_STOP, DEVSTATE_MIG2_RUNNING_P2P, 0 },
	/* PRE_COPY */
	{ DEVSTATE_MIG2_RUNNING, DEVSTATE_MIG2_PRE_COPY, 0 },
	{ DEVSTATE_MIG2_PRE_COPY, DEVSTATE_MIG2_RUNNING, 0 },
	/* P2P and PRE_COPY */
	{ DEVSTATE_MIG2_RUNNING_P2P, DEVSTATE_MIG2_PRE_COPY_P2P, 0 },
	{ DEVSTATE_MIG2_PRE_COPY_P2P, DEVSTATE_MIG2_RUNNING_P2P, 0 },
	{ DEVSTATE_MIG2_PRE_COPY, DEVSTATE_MIG2_PRE_COPY_P2P, 0 },
	{ DEVSTATE_MIG2_PRE_COPY_P2P, DEVSTATE_MIG2_PRE_COPY, 0 },
	{ DEVSTATE_MIG2_PRE_COPY_P2P, DEVSTATE_MIG2_STOP_COPY, 0 },
	/* joined over a missing RUNNING_P2P / PRE_COPY_P2P */
	{ DEVSTATE_MIG2_RUNNING, DEVSTATE_MIG2_STOP, P2P },
	{ DEVSTATE_MIG2_STOP, DEVSTATE_MIG2_RUNNING, P2P },
	{ DEVSTATE_MIG2_PRE_COPY, DEVSTATE_MIG2_STOP_COPY, P2P },
};
#define N_ARCS (sizeof(arcs) / sizeof(arcs[0]))

/*
 * Requests refused whatever the route: leaving STOP_COPY for a PRE_COPY
 * state (the uAPI reserves these for a future flag).
 */
static const struct {
	uint8_t from;
	uint8_t to;
} refused[] = {
	{ DEVSTATE_MIG2_STOP_COPY, DEVSTATE_MIG2_PRE_COPY },
	{ DEVSTATE_MIG2_STOP_COPY, DEVSTATE_MIG2_PRE_COPY_P2P },
};
#define N_REFUSED (sizeof(refused) / sizeof(refused[0]))

/* ---------------------------------------------------------------- */
/* The library's numbers are the kernel's.                          */

_Static_assert(DEVSTATE_MIG2_NR_STATES == 8, "eight v2 states");
_Static_assert(DEVSTATE_MIG2_PATH_MAX == 7, "route bound");

#ifdef HAVE_LINUX_VFIO_H
/* Two different enums: compare the numbers. */
#define SAME(a, b) ((long)(a) == (long)(b))

_Static_assert(SAME(DEVSTATE_MIG2_ERROR, VFIO_DEVICE_STATE_ERROR), "ERROR");
_Static_assert(SAME(DEVSTATE_MIG2_STOP, VFIO_DEVICE_STATE_STOP), "STOP");
_Static_assert(SAME(DEVSTATE_MIG2_RUNNING, VFIO_DEVICE_STATE_RUNNING),
	       "RUNNING");
_Static_assert(SAME(DEVSTATE_MIG2_STOP_COPY, VFIO_DEVICE_STATE_STOP_COPY),
	       "STOP_COPY");
_Static_assert(SAME(DEVSTATE_MIG2_RESUMING, VFIO_DEVICE_STATE_RESUMING),
	       "RESUMING");
_Static_assert(SAME(DEVSTATE_MIG2_RUNNING_P2P, VFIO_DEVICE_STATE_RUNNING_P2P),
	       "RUNNING_P2P");
_Static_assert(SAME(DEVSTATE_MIG2_PRE_COPY, VFIO_DEVICE_STATE_PRE_COPY),
	       "PRE_COPY");
_Static_assert(SAME(DEVSTATE_MIG2_PRE_COPY_P2P,
		    VFIO_DEVICE_STATE_PRE_COPY_P2P), "PRE_COPY_P2P");
_Static_assert(SAME(VFIO_DEVICE_STATE_PRE_COPY, 6), "upstream value");
_Static_assert(SAME(VFIO_DEVICE_STATE_PRE_COPY_P2P, 7), "upstream value");

_Static_assert(SAME(DEVSTATE_MIG2_F_STOP_COPY, VFIO_MIGRATION_STOP_COPY),
	       "flag STOP_COPY");
_Static_assert(SAME(DEVSTATE_MIG2_F_P2P, VFIO_MIGRATION_P2P), "flag P2P");
_Static_assert(SAME(DEVSTATE_MIG2_F_PRE_COPY, VFIO_MIGRATION_PRE_COPY),
	       "flag PRE_COPY");
_Static_assert(SAME(VFIO_MIGRATION_PRE_COPY, 4), "upstream value");

/* _IO(VFIO_TYPE, VFIO_BASE + 21), taken apart so that it holds on every
 * architecture's ioctl encoding. */
_Static_assert(_IOC_DIR(VFIO_MIG_GET_PRECOPY_INFO) == _IOC_NONE, "_IO");
_Static_assert(_IOC_TYPE(VFIO_MIG_GET_PRECOPY_INFO) == ';', "VFIO_TYPE");
_Static_assert(_IOC_NR(VFIO_MIG_GET_PRECOPY_INFO) == 100 + 21,
	       "VFIO_BASE + 21");
_Static_assert(_IOC_SIZE(VFIO_MIG_GET_PRECOPY_INFO) == 0, "no size");
_Static_assert(sizeof(struct vfio_precopy_info) == 24, "precopy_info");
_Static_assert(offsetof(struct vfio_precopy_info, flags) == 4, "flags");
_Static_assert(offsetof(struct vfio_precopy_info, initial_bytes) == 8,
	       "initial_bytes");
_Static_assert(offsetof(struct vfio_precopy_info, dirty_bytes) == 16,
	       "dirty_bytes");

_Static_assert(SAME(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 9), "upstream value");
_Static_assert(sizeof(struct vfio_device_feature_mig_data_size) == 8,
	       "mig_data_size");
#undef SAME
#endif /* HAVE_LINUX_VFIO_H */

/* ---------------------------------------------------------------- */

int devstate_mig2_flags_check(uint64_t flags)
{
	if (!(flags & DEVSTATE_MIG2_F_STOP_COPY))
		return -EINVAL;
	if (flags & ~(uint64_t)DEVSTATE_MIG2_F_KNOWN)
		return -EOPNOTSUPP;
	return 0;
}

bool devstate_mig2_state_valid(uint64_t flags, uint32_t state)
{
	if (devstate_mig2_flags_check(flags) || state >= N_STATES)
		return false;
	return (flags & state_needs[state]) == state_needs[state];
}

bool devstate_mig2_state_saving(uint32_t state)
{
	return state < N_STATES && state_saving[state];
}

static bool arc_present(uint64_t flags, const struct mig2_arc *a)
{
	return devstate_mig2_state_valid(flags, a->from) &&
	       devstate_mig2_state_valid(flags, a->to) && !(flags & a->unless);
}

int devstate_mig2_arc(uint64_t flags, uint32_t from, uint32_t to)
{
	size_t i;

	for (i = 0; i < N_ARCS; i++)
		if (arcs[i].from == from && arcs[i].to == to &&
		    arc_present(flags, &arcs[i]))
			return 0;
	return -EINVAL;
}

static bool request_ok(uint64_t flags, uint32_t cur, uint32_t target)
{
	size_t i;

	if (!devstate_mig2_state_valid(flags, cur) ||
	    !devstate_mig2_state_valid(flags, target) ||
	    cur == DEVSTATE_MIG2_ERROR || target == DEVSTATE_MIG2_ERROR)
		return false;
	for (i = 0; i < N_REFUSED; i++)
		if (refused[i].from == cur && refused[i].to == target)
			return false;
	return true;
}

/*
 * May a route from cur to target take the arc u -> v?  A saving-group
 * state in the interior of a route is allowed only when the whole route
 * lies in the group: cur, the interior and target all saving.  So a
 * saving u other than cur may only stay in the group, and a saving v other
 * than target may only be reached from inside the group on the way to a
 * saving target.  Because every interior saving state is reached the same
 * way, one visited mark per state keeps the search exact.
 */
static bool step_ok(uint32_t cur, uint32_t target, uint32_t u, uint32_t v)
{
	if (u != cur && state_saving[u] && !state_saving[v])
		return false;
	if (v != target && state_saving[v] &&
	    !(state_saving[u] && state_saving[target]))
		return false;
	return true;
}

/*
 * Breadth-first search from cur; on success prev[] links target back to
 * cur and the route length is returned.  -EINVAL when no route exists.
 */
static int route(uint64_t flags, uint32_t cur, uint32_t target,
		 uint8_t prev[N_STATES])
{
	uint8_t queue[N_STATES];
	bool seen[N_STATES] = { false };
	unsigned head = 0, tail = 0;
	size_t i;
	int len;

	queue[tail++] = (uint8_t)cur;
	seen[cur] = true;
	while (head < tail) {
		uint32_t u = queue[head++];

		for (i = 0; i < N_ARCS; i++) {
			uint32_t v = arcs[i].to;

			if (arcs[i].from != u || seen[v] ||
			    !arc_present(flags, &arcs[i]) ||
			    !step_ok(cur, target, u, v))
				continue;
			seen[v] = true;
			prev[v] = (uint8_t)u;
			if (v == target)
				goto found;
			queue[tail++] = (uint8_t)v;
		}
	}
	return -EINVAL;

found:
	len = 0;
	for (i = target; i != cur; i = prev[i])
		len++;
	return len;
}

int devstate_mig2_path(uint64_t flags, uint32_t cur, uint32_t target,
		       uint32_t *path, size_t max, size_t *n)
{
	uint8_t prev[N_STATES];
	uint32_t s;
	int len, i;

	if (!n || (max && !path) || !request_ok(flags, cur, target))
		return -EINVAL;
	if (cur == target) {
		*n = 0;
		return 0;
	}
	len = route(flags, cur, target, prev);
	if (len < 0)
		return len;
	if ((size_t)len > max) {
		*n = (size_t)len;
		return -ENOSPC;
	}
	for (s = target, i = len - 1; i >= 0; s = prev[s], i--)
		path[i] = s;
	*n = (size_t)len;
	return 0;
}

int devstate_mig2_next_step(uint64_t flags, uint32_t cur, uint32_t target,
			    uint32_t *next)
{
	uint32_t path[DEVSTATE_MIG2_PATH_MAX];
	size_t n;
	int ret;

	if (!next)
		return -EINVAL;
	ret = devstate_mig2_path(flags, cur, target, path,
				 DEVSTATE_MIG2_PATH_MAX, &n);
	if (ret)
		return ret;
	*next = n ? path[0] : cur;
	return 0;
}

DEVSTATE_EXPORT const char *devstate_mig2_state_name(uint32_t state)
{
	if (state >= N_STATES)
		return NULL;
	return state_names[state];
}

DEVSTATE_EXPORT int devstate_mig2_state_parse(const char *name,
					   uint32_t *state)
{
	uint32_t i;

	if (!name || !state)
		return -EINVAL;
	for (i = 0; i < N_STATES; i++) {
		if (!strcmp(name, state_names[i])) {
			*state = i;
			return 0;
		}
	}
	return -EINVAL;
}

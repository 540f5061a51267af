/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pure core of the second protocol family (SPEC 1): the kernel's
 * upstream VFIO migration uAPI v2 (VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE and
 * a data fd).  This file holds its state machine as data: the states, the
 * device flags, the single arcs a driver implements and the route the
 * kernel takes for a request that needs several arcs.
 *
 * Nothing declared here performs a system call, allocates, or keeps global
 * state.  Every function returns 0 (or a documented non-negative value) or
 * a negative errno.  Internal: nothing here is exported from libdevstate.so.
 *
 * Include "config.h" before this header: it decides whether <linux/vfio.h>
 * is there to complete (see the end of this file).
 */
#ifndef DEVSTATE_MIG2_H
#define DEVSTATE_MIG2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The states (enum devstate_mig2_state) and the device flags
 * (DEVSTATE_MIG2_F_*) are public: include/devstate.h. */
#include "devstate.h"

/* No route has more arcs than this (a path never repeats a state). */
#define DEVSTATE_MIG2_PATH_MAX		(DEVSTATE_MIG2_NR_STATES - 1)

/*
 * 0 when flags describe a device this state machine covers: STOP_COPY set
 * and no unknown bit.  -EINVAL without STOP_COPY (the uAPI requires it),
 * -EOPNOTSUPP for an unknown bit (a future flag may bring states and arcs
 * the tables below do not have, so it is refused rather than ignored).
 */
int devstate_mig2_flags_check(uint64_t flags);

/*
 * True when a device with these (legal) flags can be in state: ERROR,
 * RUNNING, STOP, STOP_COPY and RESUMING always; RUNNING_P2P with P2P;
 * PRE_COPY with PRE_COPY; PRE_COPY_P2P with both.  ERROR is valid (the
 * device may report it) but is never a source or target of a step.  False
 * for every state when the flags are not legal.
 */
bool devstate_mig2_state_valid(uint64_t flags, uint32_t state);

/* True for the saving group: STOP_COPY, PRE_COPY, PRE_COPY_P2P. */
bool devstate_mig2_state_saving(uint32_t state);

/*
 * 0 when from -> to is one arc a driver with these flags implements (a
 * single SET_STATE the driver performs itself), -EINVAL otherwise.  Where
 * the device lacks an optional state the arcs through it are joined
 * (without P2P, RUNNING -> STOP is one arc).
 */
int devstate_mig2_arc(uint64_t flags, uint32_t from, uint32_t to);

/*
 * The next arc from cur toward target, as the kernel routes a request that
 * needs several: the shortest path over devstate_mig2_arc(); a saving-group
 * state is an interior step only when the whole path stays in the group
 * (the data session carries on), never on the way into or out of it;
 * STOP_COPY -> PRE_COPY and STOP_COPY -> PRE_COPY_P2P are refused.
 *
 * 0 with *next set (cur == target: *next = cur, nothing to do), or -EINVAL
 * (*next untouched) when the flags are not legal, cur or target is not
 * valid for them, either is ERROR, or the request is refused.
 */
int devstate_mig2_next_step(uint64_t flags, uint32_t cur, uint32_t target,
			    uint32_t *next);

/*
 * The whole route: path[0..*n-1] are the states entered one arc at a time,
 * path[*n-1] == target; *n == 0 when cur == target.  0 on success; -EINVAL
 * as for devstate_mig2_next_step() (path and *n untouched); -ENOSPC when
 * max is smaller than the route (*n set to its length, path untouched).
 * DEVSTATE_MIG2_PATH_MAX entries always suffice.
 */
int devstate_mig2_path(uint64_t flags, uint32_t cur, uint32_t target,
		       uint32_t *path, size_t max, size_t *n);

/* devstate_mig2_state_name() and devstate_mig2_state_parse() are
 * exported: include/devstate.h. */

/* ---------------------------------------------------------------- */
/* Kernel uAPI names the 6.1 header (Debian 12) lacks.               */
/*
 * Upstream include/uapi/linux/vfio.h gained these after 6.1, with the
 * PRE_COPY extension of the migration protocol and the migration data size
 * feature.  Each is defined only when the installed header lacks it, with
 * the upstream name and value; mig2.c checks every one of them (ours or the
 * header's) against the upstream value at compile time, test-mig2 again at
 * run time.
 *
 *   VFIO_MIGRATION_PRE_COPY            (1 << 2), vfio_device_feature_migration
 *   VFIO_DEVICE_STATE_PRE_COPY         6, enum vfio_device_mig_state
 *   VFIO_DEVICE_STATE_PRE_COPY_P2P     7, enum vfio_device_mig_state
 *   VFIO_MIG_GET_PRECOPY_INFO          _IO(VFIO_TYPE, VFIO_BASE + 21)
 *   struct vfio_precopy_info           { argsz, flags, initial_bytes,
 *                                        dirty_bytes }
 *   VFIO_DEVICE_FEATURE_MIG_DATA_SIZE  9
 *   struct vfio_device_feature_mig_data_size { stop_copy_length }
 *
 * The two states are enumerators upstream, not macros, so #ifndef cannot
 * see them; upstream added them together with VFIO_MIGRATION_PRE_COPY, so
 * that macro stands for all three.  Likewise each struct travels with the
 * macro defined next to it.
 */
#ifdef HAVE_LINUX_VFIO_H
#include <linux/vfio.h>

#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY		(1 << 2)
#define VFIO_DEVICE_STATE_PRE_COPY	6
#define VFIO_DEVICE_STATE_PRE_COPY_P2P	7
#endif

#ifndef VFIO_MIG_GET_PRECOPY_INFO
struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};
#define VFIO_MIG_GET_PRECOPY_INFO	_IO(VFIO_TYPE, VFIO_BASE + 21)
#endif

#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif
#endif /* HAVE_LINUX_VFIO_H */

#endif /* DEVSTATE_MIG2_H */

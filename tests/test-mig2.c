/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Migration uAPI v2 state machine (mig2.c).  The expected routes are not
 * taken from the library's tables: the arcs are written out here once more,
 * one list per device, and a reference enumerates every simple path over
 * them, keeps those the kernel's rules allow and takes the shortest, which
 * must be unique.  A literal table of routes for the plainest and the
 * fullest device pins the notable cases down by hand.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "libdevstate/mig2.h"
#include "tests/testutil.h"

#define ER DEVSTATE_MIG2_ERROR
#define ST DEVSTATE_MIG2_STOP
#define RU DEVSTATE_MIG2_RUNNING
#define SC DEVSTATE_MIG2_STOP_COPY
#define RS DEVSTATE_MIG2_RESUMING
#define RP DEVSTATE_MIG2_RUNNING_P2P
#define PC DEVSTATE_MIG2_PRE_COPY
#define PP DEVSTATE_MIG2_PRE_COPY_P2P
#define NST 8u

#define F_SC DEVSTATE_MIG2_F_STOP_COPY
#define F_P2P DEVSTATE_MIG2_F_P2P
#define F_PRE DEVSTATE_MIG2_F_PRE_COPY
#define F_ALL (F_SC | F_P2P | F_PRE)

/* The four legal devices. */
static const uint64_t legal_flags[4] = {
	F_SC, F_SC | F_P2P, F_SC | F_PRE, F_ALL
};

/* Flags no route may be computed for. */
static const uint64_t bad_flags[] = {
	0, F_P2P, F_PRE, F_P2P | F_PRE, 8, F_SC | 8, F_ALL | 8,
	F_SC | (1ull << 32), F_ALL | (1ull << 63), ~0ull,
};
#define N_BAD_FLAGS (sizeof(bad_flags) / sizeof(bad_flags[0]))

static const uint32_t bad_states[] = { 8, 9, 255, 256, 0x80000000u,
				       0xffffffffu };
#define N_BAD_STATES (sizeof(bad_states) / sizeof(bad_states[0]))

static const char *const kname[NST] = {
	"ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P",
	"PRE_COPY", "PRE_COPY_P2P"
};

/* ---------------------------------------------------------------- */
/* The arcs, per device, as the uAPI comment and the driver
 * requirements in the kernel describe them.                         */

struct arc {
	uint32_t from, to;
};

static const struct arc arcs_plain[] = {	/* STOP_COPY */
	{ ST, SC }, { SC, ST }, { ST, RS }, { RS, ST },
	{ RU, ST }, { ST, RU },
};

static const struct arc arcs_p2p[] = {		/* STOP_COPY | P2P */
	{ ST, SC }, { SC, ST }, { ST, RS }, { RS, ST },
	{ RU, RP }, { RP, RU }, { RP, ST }, { ST, RP },
};

static const struct arc arcs_pre[] = {		/* STOP_COPY | PRE_COPY */
	{ ST, SC }, { SC, ST }, { ST, RS }, { RS, ST },
	{ RU, ST }, { ST, RU },
	{ RU, PC }, { PC, RU }, { PC, SC },
};

static const struct arc arcs_all[] = {		/* all three */
	{ ST, SC }, { SC, ST }, { ST, RS }, { RS, ST },
	{ RU, RP }, { RP, RU }, { RP, ST }, { ST, RP },
	{ RU, PC }, { PC, RU },
	{ RP, PP }, { PP, RP }, { PC, PP }, { PP, PC }, { PP, SC },
};

#define ARCS(a) { a, sizeof(a) / sizeof(a[0]) }
static const struct {
	const struct arc *arcs;
	size_t n;
} device_arcs[4] = {
	ARCS(arcs_plain), ARCS(arcs_p2p), ARCS(arcs_pre), ARCS(arcs_all),
};

/* States each device has, by hand. */
static const bool has_state[4][NST] = {
	/*		ER    ST    RU    SC    RS    RP     PC     PP */
	/* plain */	{ 1,    1,    1,    1,    1,    0,     0,     0 },
	/* p2p */	{ 1,    1,    1,    1,    1,    1,     0,     0 },
	/* pre */	{ 1,    1,    1,    1,    1,    0,     1,     0 },
	/* all */	{ 1,    1,    1,    1,    1,    1,     1,     1 },
};

static bool ref_arc(unsigned dev, uint32_t from, uint32_t to)
{
	size_t i;

	for (i = 0; i < device_arcs[dev].n; i++)
		if (device_arcs[dev].arcs[i].from == from &&
		    device_arcs[dev].arcs[i].to == to)
			return true;
	return false;
}

static bool ref_saving(uint32_t s)
{
	return s == SC || s == PC || s == PP;
}

/* ---------------------------------------------------------------- */
/* Reference router: every simple path, filtered, shortest.          */

struct ref_search {
	unsigned dev;
	uint32_t target;
	uint32_t cur_path[NST];	/* states from cur on */
	size_t cur_len;
	uint32_t best[NST];
	size_t best_len;	/* states, 0 = none found */
	unsigned best_count;	/* paths of best_len */
};

/* A saving state may sit inside a path only when all of it is saving. */
static bool ref_path_allowed(const uint32_t *p, size_t len)
{
	bool all_saving = true, inner_saving = false;
	size_t i;

	for (i = 0; i < len; i++) {
		if (!ref_saving(p[i]))
			all_saving = false;
		else if (i > 0 && i < len - 1)
			inner_saving = true;
	}
	return !inner_saving || all_saving;
}

static void ref_dfs(struct ref_search *rs)
{
	uint32_t u = rs->cur_path[rs->cur_len - 1], v;
	size_t i;

	if (rs->cur_len > 1 && u == rs->target) {
		if (!ref_path_allowed(rs->cur_path, rs->cur_len))
			return;
		if (!rs->best_len || rs->cur_len < rs->best_len) {
			rs->best_len = rs->cur_len;
			rs->best_count = 1;
			memcpy(rs->best, rs->cur_path, sizeof(rs->best));
		} else if (rs->cur_len == rs->best_len) {
			rs->best_count++;
		}
		return;
	}
	for (v = 0; v < NST; v++) {
		bool again = false;

		if (!ref_arc(rs->dev, u, v))
			continue;
		for (i = 0; i < rs->cur_len; i++)
			if (rs->cur_path[i] == v)
				again = true;
		if (again)
			continue;
		rs->cur_path[rs->cur_len++] = v;
		ref_dfs(rs);
		rs->cur_len--;
	}
}

/*
 * Expected route from cur to target on device dev: 0 with path[0..*n-1]
 * (the states after cur), or -EINVAL.
 */
static int ref_route(unsigned dev, uint32_t cur, uint32_t target,
		     uint32_t *path, size_t *n)
{
	struct ref_search rs;

	if (!has_state[dev][cur] || !has_state[dev][target] ||
	    cur == ER || target == ER)
		return -EINVAL;
	if (cur == SC && (target == PC || target == PP))
		return -EINVAL;
	if (cur == target) {
		*n = 0;
		return 0;
	}
	memset(&rs, 0, sizeof(rs));
	rs.dev = dev;
	rs.target = target;
	rs.cur_path[0] = cur;
	rs.cur_len = 1;
	ref_dfs(&rs);
	if (!rs.best_len)
		return -EINVAL;
	ck_assert_msg(rs.best_count == 1,
		      "dev %u %s -> %s: %u shortest paths, rules ambiguous",
		      dev, kname[cur], kname[target], rs.best_count);
	*n = rs.best_len - 1;
	memcpy(path, rs.best + 1, *n * sizeof(*path));
	return 0;
}

/* ---------------------------------------------------------------- */

START_TEST(test_values)
{
	ck_assert_int_eq(DEVSTATE_MIG2_ERROR, 0);
	ck_assert_int_eq(DEVSTATE_MIG2_STOP, 1);
	ck_assert_int_eq(DEVSTATE_MIG2_RUNNING, 2);
	ck_assert_int_eq(DEVSTATE_MIG2_STOP_COPY, 3);
	ck_assert_int_eq(DEVSTATE_MIG2_RESUMING, 4);
	ck_assert_int_eq(DEVSTATE_MIG2_RUNNING_P2P, 5);
	ck_assert_int_eq(DEVSTATE_MIG2_PRE_COPY, 6);
	ck_assert_int_eq(DEVSTATE_MIG2_PRE_COPY_P2P, 7);
	ck_assert_int_eq(DEVSTATE_MIG2_NR_STATES, 8);
	ck_assert_uint_eq(DEVSTATE_MIG2_F_STOP_COPY, 1);
	ck_assert_uint_eq(DEVSTATE_MIG2_F_P2P, 2);
	ck_assert_uint_eq(DEVSTATE_MIG2_F_PRE_COPY, 4);
	ck_assert_uint_eq(DEVSTATE_MIG2_F_KNOWN, 7);
	ck_assert_uint_eq(DEVSTATE_MIG2_PATH_MAX, 7);
}
END_TEST

/* The uAPI names the 6.1 header lacks, against upstream's values. */
START_TEST(test_kernel_constants)
{
#ifdef HAVE_LINUX_VFIO_H
	struct vfio_precopy_info pi;
	struct vfio_device_feature_mig_data_size ds;

	ck_assert_int_eq(VFIO_MIGRATION_STOP_COPY, 1);
	ck_assert_int_eq(VFIO_MIGRATION_P2P, 2);
	ck_assert_int_eq(VFIO_MIGRATION_PRE_COPY, 4);
	ck_assert_int_eq(VFIO_DEVICE_STATE_ERROR, 0);
	ck_assert_int_eq(VFIO_DEVICE_STATE_STOP, 1);
	ck_assert_int_eq(VFIO_DEVICE_STATE_RUNNING, 2);
	ck_assert_int_eq(VFIO_DEVICE_STATE_STOP_COPY, 3);
	ck_assert_int_eq(VFIO_DEVICE_STATE_RESUMING, 4);
	ck_assert_int_eq(VFIO_DEVICE_STATE_RUNNING_P2P, 5);
	ck_assert_int_eq(VFIO_DEVICE_STATE_PRE_COPY, 6);
	ck_assert_int_eq(VFIO_DEVICE_STATE_PRE_COPY_P2P, 7);

	/* _IO(VFIO_TYPE, VFIO_BASE + 21) */
	ck_assert_uint_eq(VFIO_MIG_GET_PRECOPY_INFO,
			  _IOC(_IOC_NONE, ';', 121, 0));
	ck_assert_uint_eq(_IOC_TYPE(VFIO_MIG_GET_PRECOPY_INFO), ';');
	ck_assert_uint_eq(_IOC_NR(VFIO_MIG_GET_PRECOPY_INFO), 121);
	ck_assert_uint_eq(_IOC_SIZE(VFIO_MIG_GET_PRECOPY_INFO), 0);
	ck_assert_uint_eq(_IOC_DIR(VFIO_MIG_GET_PRECOPY_INFO), _IOC_NONE);
	ck_assert_uint_eq(VFIO_TYPE, ';');
	ck_assert_uint_eq(VFIO_BASE, 100);
	ck_assert_uint_eq(sizeof(pi), 24);
	ck_assert_uint_eq(offsetof(struct vfio_precopy_info, argsz), 0);
	ck_assert_uint_eq(offsetof(struct vfio_precopy_info, flags), 4);
	ck_assert_uint_eq(offsetof(struct vfio_precopy_info, initial_bytes), 8);
	ck_assert_uint_eq(offsetof(struct vfio_precopy_info, dirty_bytes), 16);
	ck_assert_uint_eq(sizeof(pi.initial_bytes), 8);
	ck_assert_uint_eq(sizeof(pi.dirty_bytes), 8);

	ck_assert_int_eq(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 9);
	ck_assert_uint_eq(sizeof(ds), 8);
	ck_assert_uint_eq(sizeof(ds.stop_copy_length), 8);
	/* the neighbours it must not collide with */
	ck_assert_int_eq(VFIO_DEVICE_FEATURE_MIGRATION, 1);
	ck_assert_int_eq(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 2);
#else
	ck_assert(1);	/* no <linux/vfio.h>: nothing to compare */
#endif
}
END_TEST

START_TEST(test_flags_check)
{
	uint64_t f;
	size_t i;

	for (f = 0; f < 8; f++)
		ck_assert_int_eq(devstate_mig2_flags_check(f),
				 (f & F_SC) ? 0 : -EINVAL);
	for (i = 0; i < 64; i++) {
		uint64_t bit = 1ull << i;

		if (bit & 7)
			continue;
		ck_assert_int_eq(devstate_mig2_flags_check(F_SC | bit),
				 -EOPNOTSUPP);
		ck_assert_int_eq(devstate_mig2_flags_check(F_ALL | bit),
				 -EOPNOTSUPP);
		ck_assert_int_eq(devstate_mig2_flags_check(bit), -EINVAL);
	}
}
END_TEST

START_TEST(test_state_valid)
{
	unsigned dev;
	uint32_t s;
	size_t i;

	for (dev = 0; dev < 4; dev++) {
		for (s = 0; s < NST; s++)
			ck_assert_msg(devstate_mig2_state_valid(legal_flags[dev],
								s) ==
				      has_state[dev][s],
				      "flags %#llx state %s",
				      (unsigned long long)legal_flags[dev],
				      kname[s]);
		for (i = 0; i < N_BAD_STATES; i++)
			ck_assert(!devstate_mig2_state_valid(legal_flags[dev],
							     bad_states[i]));
	}
	for (i = 0; i < N_BAD_FLAGS; i++)
		for (s = 0; s < NST; s++)
			ck_assert(!devstate_mig2_state_valid(bad_flags[i], s));
}
END_TEST

START_TEST(test_saving)
{
	uint32_t s;
	size_t i;

	for (s = 0; s < NST; s++)
		ck_assert_int_eq(devstate_mig2_state_saving(s),
				 s == SC || s == PC || s == PP);
	for (i = 0; i < N_BAD_STATES; i++)
		ck_assert(!devstate_mig2_state_saving(bad_states[i]));
}
END_TEST

/* Every (from, to) on every device: an arc exactly where the lists say. */
START_TEST(test_arcs)
{
	unsigned dev, count;
	uint32_t from, to;
	size_t i;

	for (dev = 0; dev < 4; dev++) {
		count = 0;
		for (from = 0; from < NST; from++) {
			for (to = 0; to < NST; to++) {
				int want = ref_arc(dev, from, to) ? 0 : -EINVAL;

				ck_assert_msg(devstate_mig2_arc(legal_flags[dev],
								from, to) ==
					      want,
					      "dev %u arc %s -> %s: want %d",
					      dev, kname[from], kname[to],
					      want);
				count += !want;
			}
			for (i = 0; i < N_BAD_STATES; i++) {
				ck_assert_int_eq(devstate_mig2_arc(
					legal_flags[dev], from,
					bad_states[i]), -EINVAL);
				ck_assert_int_eq(devstate_mig2_arc(
					legal_flags[dev], bad_states[i],
					from), -EINVAL);
			}
		}
		ck_assert_uint_eq(count, device_arcs[dev].n);
	}
	/* the arc counts themselves: 6, 8, 9, 15 */
	ck_assert_uint_eq(device_arcs[0].n, 6);
	ck_assert_uint_eq(device_arcs[1].n, 8);
	ck_assert_uint_eq(device_arcs[2].n, 9);
	ck_assert_uint_eq(device_arcs[3].n, 15);
	for (i = 0; i < N_BAD_FLAGS; i++)
		for (from = 0; from < NST; from++)
			for (to = 0; to < NST; to++)
				ck_assert_int_eq(devstate_mig2_arc(bad_flags[i],
								   from, to),
						 -EINVAL);
}
END_TEST

/*
 * One request on one device against the reference; true when it has a
 * route.  The route is also replayed with next_step from every state along
 * it, as the kernel does (it asks again from wherever the device now is).
 */
static bool check_request(unsigned dev, uint32_t cur, uint32_t target)
{
	uint64_t flags = legal_flags[dev];
	uint32_t want[NST], got[NST], next = 99, at;
	size_t wn = 77, gn = 77, k;
	int wret, gret;

	wret = ref_route(dev, cur, target, want, &wn);
	gret = devstate_mig2_path(flags, cur, target, got, NST, &gn);
	ck_assert_msg(gret == wret, "dev %u %s -> %s: ret %d, want %d",
		      dev, kname[cur], kname[target], gret, wret);
	if (wret) {
		ck_assert_uint_eq(gn, 77);
		ck_assert_int_eq(devstate_mig2_next_step(flags, cur, target,
							 &next), -EINVAL);
		ck_assert_uint_eq(next, 99);
		return false;
	}
	ck_assert_msg(gn == wn, "dev %u %s -> %s: %zu arcs, want %zu",
		      dev, kname[cur], kname[target], gn, wn);
	for (k = 0; k < wn; k++)
		ck_assert_msg(got[k] == want[k],
			      "dev %u %s -> %s: step %zu is %s, want %s",
			      dev, kname[cur], kname[target], k,
			      kname[got[k]], kname[want[k]]);
	at = cur;
	for (k = 0; k < wn; k++) {
		ck_assert_int_eq(devstate_mig2_next_step(flags, at, target,
							 &next), 0);
		ck_assert_uint_eq(next, want[k]);
		ck_assert_int_eq(devstate_mig2_arc(flags, at, next), 0);
		at = next;
	}
	ck_assert_uint_eq(at, target);
	ck_assert_int_eq(devstate_mig2_next_step(flags, at, target, &next), 0);
	ck_assert_uint_eq(next, target);
	return true;
}

/* The heart of it: 4 devices x 8 x 8 requests against the reference. */
START_TEST(test_exhaustive)
{
	unsigned dev, routes = 0;
	uint32_t cur, target;

	for (dev = 0; dev < 4; dev++)
		for (cur = 0; cur < NST; cur++)
			for (target = 0; target < NST; target++)
				routes += check_request(dev, cur, target);
	/*
	 * Requests with a route: valid non-ERROR states squared, minus
	 * STOP_COPY -> PRE_COPY*: plain 4*4, p2p 5*5, pre 5*5 - 1,
	 * all 7*7 - 2.  The other 144 of the 256 are refused.
	 */
	ck_assert_uint_eq(routes, 16 + 25 + 24 + 47);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Routes spelled out by hand.                                       */

#define NONE (-1)
struct lit {
	uint64_t flags;
	uint32_t from, to;
	int len;		/* arcs; NONE = refused */
	uint32_t path[NST];
};

static const struct lit literal[] = {
	/* the plainest device: everything goes through STOP */
	{ F_SC, ST, ST, 0, { 0 } },
	{ F_SC, ST, RU, 1, { RU } },
	{ F_SC, ST, SC, 1, { SC } },
	{ F_SC, ST, RS, 1, { RS } },
	{ F_SC, RU, ST, 1, { ST } },
	{ F_SC, RU, SC, 2, { ST, SC } },
	{ F_SC, RU, RS, 2, { ST, RS } },
	{ F_SC, SC, ST, 1, { ST } },
	{ F_SC, SC, RU, 2, { ST, RU } },
	{ F_SC, SC, RS, 2, { ST, RS } },
	{ F_SC, RS, ST, 1, { ST } },
	{ F_SC, RS, RU, 2, { ST, RU } },
	{ F_SC, RS, SC, 2, { ST, SC } },
	{ F_SC, RU, RP, NONE, { 0 } },
	{ F_SC, RU, PC, NONE, { 0 } },
	{ F_SC, RU, PP, NONE, { 0 } },
	{ F_SC, RP, RU, NONE, { 0 } },
	{ F_SC, PC, SC, NONE, { 0 } },
	{ F_SC, RU, ER, NONE, { 0 } },
	{ F_SC, ER, RU, NONE, { 0 } },
	{ F_SC, ER, ER, NONE, { 0 } },

	/* the fullest device */
	{ F_ALL, RU, RU, 0, { 0 } },
	{ F_ALL, RU, RP, 1, { RP } },
	{ F_ALL, RU, PC, 1, { PC } },
	{ F_ALL, RU, ST, 2, { RP, ST } },
	{ F_ALL, RU, PP, 2, { RP, PP } },
	{ F_ALL, RU, SC, 3, { RP, ST, SC } },
	{ F_ALL, RU, RS, 3, { RP, ST, RS } },
	{ F_ALL, RP, RU, 1, { RU } },
	{ F_ALL, RP, ST, 1, { ST } },
	{ F_ALL, RP, PP, 1, { PP } },
	{ F_ALL, RP, PC, 2, { RU, PC } },
	{ F_ALL, RP, SC, 2, { ST, SC } },
	{ F_ALL, RP, RS, 2, { ST, RS } },
	{ F_ALL, ST, RP, 1, { RP } },
	{ F_ALL, ST, RU, 2, { RP, RU } },
	{ F_ALL, ST, PP, 2, { RP, PP } },
	{ F_ALL, ST, PC, 3, { RP, RU, PC } },
	{ F_ALL, ST, SC, 1, { SC } },
	{ F_ALL, ST, RS, 1, { RS } },
	{ F_ALL, PC, RU, 1, { RU } },
	{ F_ALL, PC, PP, 1, { PP } },
	{ F_ALL, PC, SC, 2, { PP, SC } },	/* stays in the group */
	{ F_ALL, PC, RP, 2, { RU, RP } },	/* not via PRE_COPY_P2P */
	{ F_ALL, PC, ST, 3, { RU, RP, ST } },
	{ F_ALL, PC, RS, 4, { RU, RP, ST, RS } },
	{ F_ALL, PP, PC, 1, { PC } },
	{ F_ALL, PP, RP, 1, { RP } },
	{ F_ALL, PP, SC, 1, { SC } },
	{ F_ALL, PP, RU, 2, { RP, RU } },	/* not via PRE_COPY */
	{ F_ALL, PP, ST, 2, { RP, ST } },	/* not via STOP_COPY */
	{ F_ALL, PP, RS, 3, { RP, ST, RS } },
	{ F_ALL, SC, ST, 1, { ST } },
	{ F_ALL, SC, RP, 2, { ST, RP } },
	{ F_ALL, SC, RU, 3, { ST, RP, RU } },
	{ F_ALL, SC, RS, 2, { ST, RS } },
	{ F_ALL, RS, ST, 1, { ST } },
	{ F_ALL, RS, RU, 3, { ST, RP, RU } },
	{ F_ALL, RS, RP, 2, { ST, RP } },
	{ F_ALL, RS, SC, 2, { ST, SC } },
	{ F_ALL, RS, PP, 3, { ST, RP, PP } },
	{ F_ALL, RS, PC, 4, { ST, RP, RU, PC } },
	{ F_ALL, SC, PC, NONE, { 0 } },
	{ F_ALL, SC, PP, NONE, { 0 } },
	{ F_ALL, RU, ER, NONE, { 0 } },
	{ F_ALL, ER, ST, NONE, { 0 } },
	{ F_ALL, ER, RU, NONE, { 0 } },

	/* the two halves */
	{ F_SC | F_P2P, RU, ST, 2, { RP, ST } },
	{ F_SC | F_P2P, RU, SC, 3, { RP, ST, SC } },
	{ F_SC | F_P2P, RS, RU, 3, { ST, RP, RU } },
	{ F_SC | F_P2P, RU, PC, NONE, { 0 } },
	{ F_SC | F_PRE, PC, SC, 1, { SC } },
	{ F_SC | F_PRE, PC, ST, 2, { RU, ST } },	/* not via STOP_COPY */
	{ F_SC | F_PRE, RU, SC, 2, { ST, SC } },	/* not via PRE_COPY */
	{ F_SC | F_PRE, ST, PC, 2, { RU, PC } },
	{ F_SC | F_PRE, RS, PC, 3, { ST, RU, PC } },
	{ F_SC | F_PRE, SC, PC, NONE, { 0 } },
	{ F_SC | F_PRE, RU, RP, NONE, { 0 } },
	{ F_SC | F_PRE, PC, PP, NONE, { 0 } },
};
#define N_LITERAL (sizeof(literal) / sizeof(literal[0]))

START_TEST(test_literal)
{
	size_t i, k;

	ck_assert_uint_ge(N_LITERAL, 60);
	for (i = 0; i < N_LITERAL; i++) {
		const struct lit *l = &literal[i];
		uint32_t got[NST] = { 0 }, next = 99;
		size_t n = 77;
		int ret;

		ret = devstate_mig2_path(l->flags, l->from, l->to, got, NST,
					 &n);
		if (l->len == NONE) {
			ck_assert_msg(ret == -EINVAL, "row %zu: %s -> %s: %d",
				      i, kname[l->from], kname[l->to], ret);
			ck_assert_int_eq(devstate_mig2_next_step(l->flags,
				l->from, l->to, &next), -EINVAL);
			continue;
		}
		ck_assert_msg(ret == 0, "row %zu: %s -> %s refused (%d)",
			      i, kname[l->from], kname[l->to], ret);
		ck_assert_msg(n == (size_t)l->len,
			      "row %zu: %s -> %s: %zu arcs, want %d",
			      i, kname[l->from], kname[l->to], n, l->len);
		for (k = 0; k < n; k++)
			ck_assert_msg(got[k] == l->path[k],
				      "row %zu: step %zu is %s, want %s", i,
				      k, kname[got[k]], kname[l->path[k]]);
		ck_assert_int_eq(devstate_mig2_next_step(l->flags, l->from,
							 l->to, &next), 0);
		ck_assert_uint_eq(next, n ? l->path[0] : l->from);
	}
}
END_TEST

/* The reference on its own, on the notable rows: it must agree too. */
START_TEST(test_literal_reference)
{
	size_t i, k;
	unsigned dev;

	for (i = 0; i < N_LITERAL; i++) {
		const struct lit *l = &literal[i];
		uint32_t want[NST];
		size_t n = 0;
		int ret;

		for (dev = 0; dev < 4; dev++)
			if (legal_flags[dev] == l->flags)
				break;
		ck_assert_uint_lt(dev, 4);
		ret = ref_route(dev, l->from, l->to, want, &n);
		ck_assert_int_eq(ret, l->len == NONE ? -EINVAL : 0);
		if (ret)
			continue;
		ck_assert_uint_eq(n, (size_t)l->len);
		for (k = 0; k < n; k++)
			ck_assert_uint_eq(want[k], l->path[k]);
	}
}
END_TEST

START_TEST(test_bad_requests)
{
	uint32_t path[NST], next, s;
	size_t i, n, dev;

	for (i = 0; i < N_BAD_FLAGS; i++) {
		for (s = 0; s < NST; s++) {
			n = 77;
			next = 99;
			ck_assert_int_eq(devstate_mig2_path(bad_flags[i], s, ST,
							    path, NST, &n),
					 -EINVAL);
			ck_assert_int_eq(devstate_mig2_path(bad_flags[i], s, s,
							    path, NST, &n),
					 -EINVAL);
			ck_assert_int_eq(devstate_mig2_next_step(bad_flags[i],
							s, RU, &next), -EINVAL);
			ck_assert_uint_eq(n, 77);
			ck_assert_uint_eq(next, 99);
		}
	}
	for (dev = 0; dev < 4; dev++) {
		for (i = 0; i < N_BAD_STATES; i++) {
			for (s = 0; s < NST; s++) {
				n = 77;
				ck_assert_int_eq(devstate_mig2_path(
					legal_flags[dev], bad_states[i], s,
					path, NST, &n), -EINVAL);
				ck_assert_int_eq(devstate_mig2_path(
					legal_flags[dev], s, bad_states[i],
					path, NST, &n), -EINVAL);
				ck_assert_int_eq(devstate_mig2_next_step(
					legal_flags[dev], s, bad_states[i],
					&next), -EINVAL);
				ck_assert_uint_eq(n, 77);
			}
		}
	}
	/* NULL outputs */
	ck_assert_int_eq(devstate_mig2_next_step(F_ALL, RU, ST, NULL), -EINVAL);
	ck_assert_int_eq(devstate_mig2_path(F_ALL, RU, ST, path, NST, NULL),
			 -EINVAL);
	ck_assert_int_eq(devstate_mig2_path(F_ALL, RU, ST, NULL, NST, &n),
			 -EINVAL);
}
END_TEST

START_TEST(test_path_buffer)
{
	uint32_t path[NST];
	size_t n, k;

	/* exactly long enough */
	n = 0;
	ck_assert_int_eq(devstate_mig2_path(F_ALL, RS, PC, path, 4, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(path[3], PC);

	/* one short: -ENOSPC, length reported, buffer untouched */
	for (k = 0; k < NST; k++)
		path[k] = 0xdead;
	n = 0;
	ck_assert_int_eq(devstate_mig2_path(F_ALL, RS, PC, path, 3, &n),
			 -ENOSPC);
	ck_assert_uint_eq(n, 4);
	for (k = 0; k < NST; k++)
		ck_assert_uint_eq(path[k], 0xdead);

	/* no buffer at all: asks for the length */
	n = 0;
	ck_assert_int_eq(devstate_mig2_path(F_SC, RU, SC, NULL, 0, &n),
			 -ENOSPC);
	ck_assert_uint_eq(n, 2);

	/* same state: nothing to write, no buffer needed */
	n = 77;
	ck_assert_int_eq(devstate_mig2_path(F_SC, ST, ST, NULL, 0, &n), 0);
	ck_assert_uint_eq(n, 0);

	/* the bound holds for every route */
	ck_assert_uint_ge(DEVSTATE_MIG2_PATH_MAX, 4);
}
END_TEST

START_TEST(test_names)
{
	static const char *const names[NST] = {
		"error", "stop", "running", "stop-copy", "resuming",
		"running-p2p", "pre-copy", "pre-copy-p2p",
	};
	uint32_t s, got;
	size_t i;

	for (s = 0; s < NST; s++) {
		ck_assert_str_eq(devstate_mig2_state_name(s), names[s]);
		got = 99;
		ck_assert_int_eq(devstate_mig2_state_parse(names[s], &got), 0);
		ck_assert_uint_eq(got, s);
	}
	for (i = 0; i < N_BAD_STATES; i++)
		ck_assert_ptr_null(devstate_mig2_state_name(bad_states[i]));
}
END_TEST

START_TEST(test_parse_bad)
{
	static const char *const bad[] = {
		"", "STOP", "Stop", "stop_copy", "STOP_COPY", "precopy",
		"pre-copy-", "pre-copy-p2p ", " stop", "running+logging",
		"3", "0", "p2p", "running-p2p\n", "errorx",
	};
	uint32_t got;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		got = 77;
		ck_assert_msg(devstate_mig2_state_parse(bad[i], &got) ==
			      -EINVAL, "\"%s\" accepted", bad[i]);
		ck_assert_uint_eq(got, 77);
	}
	ck_assert_int_eq(devstate_mig2_state_parse(NULL, &got), -EINVAL);
	ck_assert_int_eq(devstate_mig2_state_parse("stop", NULL), -EINVAL);
}
END_TEST

static Suite *mig2_suite(void)
{
	Suite *s = suite_create("mig2");
	TCase *tc = tcase_create("mig2");

	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_kernel_constants);
	tcase_add_test(tc, test_flags_check);
	tcase_add_test(tc, test_state_valid);
	tcase_add_test(tc, test_saving);
	tcase_add_test(tc, test_arcs);
	tcase_add_test(tc, test_exhaustive);
	tcase_add_test(tc, test_literal);
	tcase_add_test(tc, test_literal_reference);
	tcase_add_test(tc, test_bad_requests);
	tcase_add_test(tc, test_path_buffer);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_parse_bad);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(mig2_suite());
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mig2-fsm: the pure v2 core (libdevstate/mig2.c) against a real kernel's
 * migration state machine.  Runs inside the guest of
 * tests/guest/mtty-fsm.sh, on two instances of the kernel's mtty sample.
 *
 *   mig2-fsm GROUP UUID SRC-GROUP SRC-UUID
 *
 * GROUP/UUID is the device under test, SRC-GROUP/SRC-UUID a second
 * instance whose saved state (read in STOP_COPY) is written to the device
 * under test whenever it enters RESUMING, so that RESUMING -> STOP loads a
 * real state instead of failing on an empty stream (a driver error, not a
 * state-machine answer).
 *
 * For every (from, to) pair, from in the seven non-ERROR states and to in
 * all eight: bring the device to from along devstate_mig2_path() one arc
 * per SET (each arc must be accepted), issue ONE SET of to (the kernel
 * routes it itself), record the kernel's answer (accepted or errno) and the
 * state it reports afterwards, close any data fd, and compare with the
 * core: accepted iff devstate_mig2_next_step() returns 0, the state
 * reached is to when accepted and from when refused, a refusal is EINVAL,
 * and the arcs the kernel took (mtty's dev_dbg records in /dev/kmsg) are
 * the core's devstate_mig2_path(), arc by arc.  Prints one line per pair
 * and the 8x8 table; exit status 0 when everything matches, 1 on any
 * mismatch, 2 when the test cannot run.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "libdevstate/mig2.h"
#include "tests/guest/guest-vfio.h"

/* mig2.h completes <linux/vfio.h> only when configure found it. */
#ifndef VFIO_MIGRATION_PRE_COPY
#error "mig2-fsm needs <linux/vfio.h> (HAVE_LINUX_VFIO_H)"
#endif

#define N DEVSTATE_MIG2_NR_STATES

static const char *name(uint32_t s)
{
	const char *n = devstate_mig2_state_name(s);

	return n ? n : "?";
}

/* The feature header and its payload, aligned for the u64 payloads. */
union feature_buf {
	struct vfio_device_feature hdr;
	uint64_t align[4];
	unsigned char bytes[sizeof(struct vfio_device_feature) + 16];
};

static int feature(int dev, uint32_t flags, union feature_buf *b,
		   size_t payload)
{
	b->hdr.argsz = (uint32_t)(sizeof(b->hdr) + payload);
	b->hdr.flags = flags;
	return ioctl(dev, VFIO_DEVICE_FEATURE, b);
}

static uint64_t mig_flags(int dev)
{
	union feature_buf b;
	struct vfio_device_feature_migration m;

	memset(&b, 0, sizeof(b));
	if (feature(dev, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
		    &b, sizeof(m)))
		die("GET VFIO_DEVICE_FEATURE_MIGRATION");
	memcpy(&m, b.hdr.data, sizeof(m));
	return m.flags;
}

/* The state the kernel reports; -errno on failure. */
static int get_state(int dev)
{
	union feature_buf b;
	struct vfio_device_feature_mig_state m;

	memset(&b, 0, sizeof(b));
	if (feature(dev, VFIO_DEVICE_FEATURE_GET |
			 VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &b, sizeof(m)))
		return -errno;
	memcpy(&m, b.hdr.data, sizeof(m));
	return (int)m.device_state;
}

/* One SET of MIG_DEVICE_STATE: 0 or -errno; *data_fd the fd it returned
 * (-1 for none). */
static int set_state(int dev, uint32_t state, int *data_fd)
{
	union feature_buf b;
	struct vfio_device_feature_mig_state m = { .device_state = state,
						   .data_fd = -1 };

	*data_fd = -1;
	memset(&b, 0, sizeof(b));
	memcpy(b.hdr.data, &m, sizeof(m));
	if (feature(dev, VFIO_DEVICE_FEATURE_SET |
			 VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &b, sizeof(m)))
		return -errno;
	memcpy(&m, b.hdr.data, sizeof(m));
	*data_fd = m.data_fd;
	return 0;
}

/* The saved state of the source instance. */
static unsigned char blob[65536];
static size_t blob_len;

static void feed_blob(int fd)
{
	size_t off = 0;

	while (off < blob_len) {
		ssize_t w = write(fd, blob + off, blob_len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write to the resuming data fd");
		off += (size_t)w;
	}
}

/*
 * The kernel's own route.  mtty logs every arc it takes with dev_dbg()
 * ("mtty_step_state: CUR -> NEW"); the guest loads it with dyndbg=+p and
 * this reads the records from /dev/kmsg, so each SET's route can be
 * compared arc by arc with the core's.  Without the records (no dynamic
 * debug) the routes are reported unobserved.
 */
static int kmsg = -1;
static int kmsg_seen;		/* any step record at all */

static void kmsg_open(void)
{
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg >= 0)
		lseek(kmsg, 0, SEEK_END);
}

/* The states entered since the last call (at most max kept); the number
 * of steps, or -1 when records were lost or malformed. */
static int kmsg_steps(uint32_t from, uint32_t *steps, size_t max)
{
	char rec[2048];
	uint32_t cur = from;
	int n = 0, bad = 0;

	if (kmsg < 0)
		return 0;
	for (;;) {
		ssize_t r = read(kmsg, rec, sizeof(rec) - 1);
		const char *p;
		int a, b;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EPIPE) {	/* overwritten records */
			bad = 1;
			continue;
		}
		if (r <= 0)
			break;
		rec[r] = '\0';
		p = strstr(rec, "mtty_step_state: ");
		if (!p)
			continue;
		kmsg_seen = 1;
		if (sscanf(p + 17, "%d -> %d", &a, &b) != 2 ||
		    a != (int)cur || b < 0 || b >= N) {
			bad = 1;
			continue;
		}
		if ((size_t)n < max)
			steps[n] = (uint32_t)b;
		n++;
		cur = (uint32_t)b;
	}
	return bad ? -1 : n;
}

static void print_route(const char *who, uint32_t from, const uint32_t *p,
			int n)
{
	int i;

	printf("      %-6s %s", who, name(from));
	for (i = 0; i < n && i < DEVSTATE_MIG2_PATH_MAX; i++)
		printf(" > %s", name(p[i]));
	if (n > DEVSTATE_MIG2_PATH_MAX)
		printf(" > ...");
	printf("\n");
}

/* Drive dev to target along the core's path, one arc per SET.  Any data
 * fd is closed; entering RESUMING feeds the saved state first.  0, or -1
 * after printing what went wrong. */
static int walk(int dev, uint64_t flags, uint32_t target)
{
	uint32_t path[DEVSTATE_MIG2_PATH_MAX];
	size_t n, i;
	int cur = get_state(dev), ret, fd;

	if (cur < 0) {
		printf("=== walk: GET state: %s\n", strerror(-cur));
		return -1;
	}
	ret = devstate_mig2_path(flags, (uint32_t)cur, target, path,
				 DEVSTATE_MIG2_PATH_MAX, &n);
	if (ret) {
		printf("=== walk: core has no path %s -> %s (%d)\n",
		       name((uint32_t)cur), name(target), ret);
		return -1;
	}
	for (i = 0; i < n; i++) {
		ret = set_state(dev, path[i], &fd);
		if (ret) {
			printf("=== walk: kernel refused the arc %s -> %s: %s\n",
			       name(i ? path[i - 1] : (uint32_t)cur),
			       name(path[i]), strerror(-ret));
			return -1;
		}
		if (fd >= 0) {
			if (path[i] == DEVSTATE_MIG2_RESUMING)
				feed_blob(fd);
			close(fd);
		}
	}
	cur = get_state(dev);
	if (cur != (int)target) {
		printf("=== walk: device in %s, not %s\n",
		       cur < 0 ? strerror(-cur) : name((uint32_t)cur),
		       name(target));
		return -1;
	}
	return 0;
}

/* Back to RUNNING: by the core's path, or by a reset from ERROR. */
static int home(int dev, uint64_t flags)
{
	int cur = get_state(dev);

	if (cur == DEVSTATE_MIG2_ERROR || cur < 0) {
		if (ioctl(dev, VFIO_DEVICE_RESET))
			die("VFIO_DEVICE_RESET");
		cur = get_state(dev);
	}
	if (cur == DEVSTATE_MIG2_RUNNING)
		return 0;
	return walk(dev, flags, DEVSTATE_MIG2_RUNNING);
}

static void save_source(int src, uint64_t flags)
{
	int fd, ret;
	ssize_t r;

	if (home(src, flags) || walk(src, flags, DEVSTATE_MIG2_STOP))
		die("source to STOP");
	ret = set_state(src, DEVSTATE_MIG2_STOP_COPY, &fd);
	if (ret || fd < 0) {
		errno = ret ? -ret : EBADF;
		die("source STOP -> STOP_COPY");
	}
	while ((r = read(fd, blob + blob_len, sizeof(blob) - blob_len)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read the source's data fd");
		blob_len += (size_t)r;
		if (blob_len == sizeof(blob)) {
			errno = EFBIG;
			die("source state");
		}
	}
	close(fd);
	if (home(src, flags))
		die("source back to RUNNING");
	printf("=== saved %zu bytes of state from the source instance\n",
	       blob_len);
}

static void data_size(int dev)
{
	union feature_buf b;
	struct vfio_device_feature_mig_data_size m;

	memset(&b, 0, sizeof(b));
	if (feature(dev, VFIO_DEVICE_FEATURE_GET |
			 VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &b, sizeof(m))) {
		printf("=== stop-copy-length unknown: %s\n", strerror(errno));
		return;
	}
	memcpy(&m, b.hdr.data, sizeof(m));
	printf("=== stop-copy-length %llu\n",
	       (unsigned long long)m.stop_copy_length);
}

struct answer {
	int kernel;		/* 0 accepted, else -errno */
	int reached;		/* state reported after the SET, or -errno */
	int core;		/* devstate_mig2_next_step() */
	size_t core_len;	/* arcs in the core's route */
	int kernel_len;		/* arcs the kernel took, -1 unknown */
	int route_ok;		/* the kernel's route is the core's */
	int ok;
};

int main(int argc, char **argv)
{
	struct answer t[N][N];
	uint64_t flags;
	uint32_t from, to;
	int dev, src, mismatches = 0;

	guest_open_two(argc, argv, 4, "GROUP UUID SRC-GROUP SRC-UUID", &dev,
		       &src);

	flags = mig_flags(dev);
	printf("=== flags 0x%llx%s%s%s\n", (unsigned long long)flags,
	       flags & DEVSTATE_MIG2_F_STOP_COPY ? " stop-copy" : "",
	       flags & DEVSTATE_MIG2_F_P2P ? " p2p" : "",
	       flags & DEVSTATE_MIG2_F_PRE_COPY ? " pre-copy" : "");
	if (devstate_mig2_flags_check(flags)) {
		printf("=== the core refuses these flags (%d)\n",
		       devstate_mig2_flags_check(flags));
		return 1;
	}
	if (mig_flags(src) != flags) {
		printf("=== the source instance has other flags\n");
		return 2;
	}
	data_size(dev);
	save_source(src, flags);
	kmsg_open();
	if (kmsg < 0)
		printf("=== no /dev/kmsg (%s): routes unobserved\n",
		       strerror(errno));

	for (from = 0; from < N; from++) {
		if (from == DEVSTATE_MIG2_ERROR ||
		    !devstate_mig2_state_valid(flags, from))
			continue;
		for (to = 0; to < N; to++) {
			struct answer *a = &t[from][to];
			uint32_t next, path[DEVSTATE_MIG2_PATH_MAX];
			uint32_t kpath[DEVSTATE_MIG2_PATH_MAX];
			size_t i;
			int fd;

			if (home(dev, flags) || walk(dev, flags, from)) {
				printf("=== cannot bring the device to %s\n",
				       name(from));
				return 1;
			}
			kmsg_steps(from, kpath, 0);	/* the walk's */
			a->kernel = set_state(dev, to, &fd);
			if (fd >= 0) {
				/* RESUMING -> STOP must load a state later */
				if (to == DEVSTATE_MIG2_RESUMING)
					feed_blob(fd);
				close(fd);
			}
			a->reached = get_state(dev);
			a->core = devstate_mig2_next_step(flags, from, to,
							  &next);
			a->core_len = 0;
			if (!a->core)
				devstate_mig2_path(flags, from, to, path,
						   DEVSTATE_MIG2_PATH_MAX,
						   &a->core_len);
			a->kernel_len = kmsg_steps(from, kpath,
						   DEVSTATE_MIG2_PATH_MAX);
			a->route_ok = a->kernel_len == (int)a->core_len;
			for (i = 0; a->route_ok && i < a->core_len; i++)
				a->route_ok = kpath[i] == path[i];
			if (kmsg < 0 || !kmsg_seen) {
				a->kernel_len = -1;
				a->route_ok = 1;	/* unobserved */
			}
			if (!a->core)
				a->ok = !a->kernel && a->reached == (int)to &&
					a->route_ok;
			else
				a->ok = a->kernel == -EINVAL &&
					a->reached == (int)from &&
					a->route_ok;
			if (!a->ok)
				mismatches++;
			printf("pair %-12s -> %-12s kernel %-8s reached %-12s core %s",
			       name(from), name(to),
			       a->kernel ? (a->kernel == -EINVAL ? "EINVAL" :
					    strerror(-a->kernel)) : "accepts",
			       a->reached < 0 ? strerror(-a->reached) :
					       name((uint32_t)a->reached),
			       a->core ? "refuses" : "accepts");
			if (!a->core)
				printf(" (%zu arc%s)", a->core_len,
				       a->core_len == 1 ? "" : "s");
			printf("%s\n", a->ok ? "" : "  MISMATCH");
			if (!a->route_ok) {
				print_route("kernel", from, kpath,
					    a->kernel_len);
				print_route("core", from, path,
					    (int)a->core_len);
			}
		}
	}
	if (home(dev, flags))
		return 1;
	if (kmsg < 0 || !kmsg_seen)
		printf("=== routes unobserved (no mtty_step_state records)\n");
	else
		printf("=== routes observed\n");

	/*
	 * The table: one cell per pair, "kernel/core".  Kernel: the number
	 * of arcs it took when it accepted and reached to ("=" when its
	 * route was unobserved, the state reached when that is not to), "E"
	 * for EINVAL, "e" followed by the errno otherwise.  Core: the number of arcs in its
	 * route ("0" for from == to), "E" when it refuses.  A mismatch is
	 * marked with "!".
	 */
	printf("=== table (cell: kernel/core; kernel: arcs it took to the "
	       "target, 'E' EINVAL; core: arcs in its route, 'E' refused; "
	       "'!' mismatch)\n");
	printf("%-13s", "from\\to");
	for (to = 0; to < N; to++)
		printf(" %-12s", name(to));
	printf("\n");
	for (from = 0; from < N; from++) {
		if (from == DEVSTATE_MIG2_ERROR ||
		    !devstate_mig2_state_valid(flags, from))
			continue;
		printf("%-13s", name(from));
		for (to = 0; to < N; to++) {
			const struct answer *a = &t[from][to];
			char k[16], c[8], cell[32];

			if (!a->kernel && a->reached == (int)to &&
			    a->kernel_len >= 0)
				snprintf(k, sizeof(k), "%d", a->kernel_len);
			else if (!a->kernel)
				snprintf(k, sizeof(k), "%s",
					 a->reached == (int)to ? "=" :
					 a->reached < 0 ? "?" :
					 name((uint32_t)a->reached));
			else if (a->kernel == -EINVAL)
				snprintf(k, sizeof(k), "E");
			else
				snprintf(k, sizeof(k), "e%d", -a->kernel);
			if (a->core)
				snprintf(c, sizeof(c), "E");
			else
				snprintf(c, sizeof(c), "%zu", a->core_len);
			snprintf(cell, sizeof(cell), "%s/%s%s", k, c,
				 a->ok ? "" : "!");
			printf(" %-12s", cell);
		}
		printf("\n");
	}
	printf("=== mismatches %d\n", mismatches);
	return mismatches ? 1 : 0;
}

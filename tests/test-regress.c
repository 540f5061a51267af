/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Regression tests for what the fuzzers (fuzz/) and the crash-safety
 * test found.  Each test names the target and the finding; the inputs
 * are rebuilt here as the smallest device or file that shows it.
 *
 * A "table device" plays the hostile device of fuzz/fuzz-save.c: region
 * sizes as given, every control field answered from a table, data
 * regions read as zeros, and every access checked against the regions it
 * announced (an access out of bounds fails the test, as the fuzzer's
 * invariant did).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devstate.h"
#include "libdevstate/core.h"
#include "libdevstate/device.h"
#include "libdevstate/stream.h"
#include "transports/fake.h"
#include "transports/transport.h"
#include "tests/testutil.h"

/* ---------------------------------------------------------------- */
/* The table device. */

struct table {
	struct devstate_regions reg;
	uint64_t ctl[32];	/* by offset / 4 */
	unsigned ctl_reads, data_ops;
};

static struct table *next_table;

static int t_open(const char *args, void **priv, char *err, size_t errlen)
{
	(void)args;
	(void)err;
	(void)errlen;
	*priv = next_table;
	return 0;
}

static void t_close(void *priv)
{
	(void)priv;
}

static int t_regions(void *priv, struct devstate_regions *out, char *err,
		     size_t errlen)
{
	struct table *t = priv;

	(void)err;
	(void)errlen;
	*out = t->reg;
	return 0;
}

static int t_ctl_read(void *priv, uint32_t off, void *buf, uint32_t len,
		      char *err, size_t errlen)
{
	struct table *t = priv;

	(void)err;
	(void)errlen;
	ck_assert_msg((uint64_t)off + len <= t->reg.size[DEVSTATE_REGION_CTL],
		      "control read of %u bytes at %u past the %llu-byte CTL region",
		      len, off,
		      (unsigned long long)t->reg.size[DEVSTATE_REGION_CTL]);
	ck_assert_uint_lt(off / 4, 32);
	t->ctl_reads++;
	devstate_le_put(buf, len, t->ctl[off / 4]);
	return 0;
}

static int t_ctl_write(void *priv, uint32_t off, const void *buf,
		       uint32_t len, char *err, size_t errlen)
{
	struct table *t = priv;

	(void)buf;
	(void)err;
	(void)errlen;
	ck_assert((uint64_t)off + len <= t->reg.size[DEVSTATE_REGION_CTL]);
	return 0;
}

static int t_data_read(void *priv, enum devstate_region r, uint64_t off,
		       void *buf, size_t len, char *err, size_t errlen)
{
	struct table *t = priv;

	(void)err;
	(void)errlen;
	ck_assert(t->reg.present[r]);
	ck_assert(off <= t->reg.size[r] && len <= t->reg.size[r] - off);
	t->data_ops++;
	memset(buf, 0, len);
	return 0;
}

static int t_data_write(void *priv, enum devstate_region r, uint64_t off,
			const void *buf, size_t len, char *err, size_t errlen)
{
	struct table *t = priv;

	(void)buf;
	(void)err;
	(void)errlen;
	ck_assert(t->reg.present[r]);
	ck_assert(off <= t->reg.size[r] && len <= t->reg.size[r] - off);
	t->data_ops++;
	return 0;
}

static const struct devstate_transport_ops table_ops = {
	.name = "table",
	.help = "table: a device answered from a table (tests)",
	.open = t_open,
	.close = t_close,
	.regions = t_regions,
	.ctl_read = t_ctl_read,
	.ctl_write = t_ctl_write,
	.data_read = t_data_read,
	.data_write = t_data_write,
};

/* A version-2 device with both caps and the given region sizes. */
static void table_init(struct table *t, uint64_t ctl, uint64_t config,
		       uint64_t memory, uint64_t bitmap)
{
	memset(t, 0, sizeof(*t));
	t->reg.present[DEVSTATE_REGION_CTL] = true;
	t->reg.size[DEVSTATE_REGION_CTL] = ctl;
	t->reg.present[DEVSTATE_REGION_CONFIG] = true;
	t->reg.size[DEVSTATE_REGION_CONFIG] = config;
	t->reg.present[DEVSTATE_REGION_MEMORY] = true;
	t->reg.size[DEVSTATE_REGION_MEMORY] = memory;
	t->reg.present[DEVSTATE_REGION_BITMAP] = true;
	t->reg.size[DEVSTATE_REGION_BITMAP] = bitmap;
	t->ctl[0] = 2;					/* version */
	t->ctl[2] = DEVSTATE_CAP_ALL;			/* caps */
	t->ctl[24 / 4] = 64;				/* config size */
}

static int table_open(struct devstate_device **dev, struct table *t,
		      unsigned flags, char *err, size_t errlen)
{
	next_table = t;
	return devstate_device_open_ops(dev, &table_ops, "", flags, err,
					errlen);
}

/* ---------------------------------------------------------------- */
/* fuzz-save: a CTL region shorter than the layout of the version it
 * announces.  Negotiation read caps (offset 8) before checking the CTL
 * size against the layout, so an 8-byte CTL region got a read past its
 * end (SPEC 11: never).  Now it is the CTL_TOO_SMALL blocker and only
 * version is read. */

START_TEST(test_ctl_shorter_than_layout)
{
	static const struct {
		uint32_t version;
		uint64_t ctl;
	} cases[] = { { 1, 8 }, { 1, 71 }, { 2, 8 }, { 2, 79 }, { 2, 72 } };
	struct devstate_device *dev;
	struct table t;
	char err[256];
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		table_init(&t, cases[i].ctl, 4096, 4096, 64);
		t.ctl[0] = cases[i].version;
		ck_assert_int_eq(table_open(&dev, &t, 0, err, sizeof(err)),
				 -EOPNOTSUPP);
		ck_assert_ptr_nonnull(strstr(err, "CTL region is"));
		ck_assert_uint_eq(t.ctl_reads, 1);	/* version only */

		table_init(&t, cases[i].ctl, 4096, 4096, 64);
		t.ctl[0] = cases[i].version;
		ck_assert_int_eq(table_open(&dev, &t, DEVSTATE_OPEN_INSPECT,
					    err, sizeof(err)), 0);
		ck_assert_int_eq(devstate_device_blocker(dev, NULL),
				 DEVSTATE_BLOCKER_CTL_TOO_SMALL);
		ck_assert_uint_eq(devstate_device_version(dev),
				  cases[i].version);
		devstate_device_free(dev);
	}
}
END_TEST

/* The same through the fake, which refuses the read past the end: the
 * blocker used to be "reading caps failed" (IO); now it names the cause. */
START_TEST(test_ctl_shorter_than_layout_fake)
{
	struct devstate_device *dev;
	char err[256];

	ck_assert_int_eq(devstate_device_open(&dev, "fake:version=1,ctl=8",
					      DEVSTATE_OPEN_INSPECT, err,
					      sizeof(err)), 0);
	ck_assert_int_eq(devstate_device_blocker(dev, NULL),
			 DEVSTATE_BLOCKER_CTL_TOO_SMALL);
	ck_assert_uint_eq(devstate_fake_op_count(devstate_fake_of(dev)), 1);
	devstate_device_free(dev);
}
END_TEST

/* ---------------------------------------------------------------- */
/* fuzz-save: a device announcing a huge DEVICE_MEMORY region made
 * devstate_save_new() allocate a bounce buffer of that size (an
 * out-of-memory report under the fuzzer; a 1 TiB malloc attempt
 * otherwise).  A stream cannot carry chunks over DEVSTATE_REGION_MAX
 * (256 MiB), so such a device is refused before anything is allocated;
 * the load side and the dirty-bitmap query are bounded the same way. */

static int null_write(void *opaque, const void *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
	return 0;
}

START_TEST(test_huge_memory_region)
{
	static const uint64_t sizes[] = {
		DEVSTATE_REGION_MAX + 1, 1ull << 40, UINT64_MAX
	};
	struct devstate_device *dev;
	struct devstate_save *s;
	struct devstate_load *l;
	struct table t;
	char err[256];
	unsigned i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		table_init(&t, 80, 4096, sizes[i], 64);
		ck_assert_int_eq(table_open(&dev, &t, 0, err, sizeof(err)), 0);
		ck_assert_int_eq(devstate_save_new(&s, dev, NULL, null_write,
						   NULL), -E2BIG);
		ck_assert_ptr_nonnull(strstr(devstate_device_error(dev),
					     "DEVICE_MEMORY region"));
		ck_assert_int_eq(devstate_load_new(&l, dev), -E2BIG);
		ck_assert_ptr_nonnull(strstr(devstate_device_error(dev),
					     "exceeds the limit"));
		devstate_device_free(dev);
	}
	/* at the limit it works */
	table_init(&t, 80, 4096, 4096, 64);
	ck_assert_int_eq(table_open(&dev, &t, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(devstate_save_new(&s, dev, NULL, null_write, NULL), 0);
	devstate_save_free(s);
	devstate_device_free(dev);
}
END_TEST

START_TEST(test_huge_bitmap_region)
{
	struct devstate_device *dev;
	uint64_t bm[2] = { 0 };
	struct table t;
	char err[256];

	table_init(&t, 80, 4096, 4096, 1ull << 40);
	ck_assert_int_eq(table_open(&dev, &t, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(devstate_device_set_state(dev,
			 DEVSTATE_STATE_RUNNING_LOGGING), 0);
	ck_assert_int_eq(devstate_device_dirty_bitmap(dev, 0, 100, bm), -E2BIG);
	ck_assert_ptr_nonnull(strstr(devstate_device_error(dev),
				     "DIRTY_BITMAP region"));
	ck_assert_uint_eq(t.data_ops, 0);
	devstate_device_free(dev);

	/* a bitmap region of the limit is fine (the slice is what moves) */
	table_init(&t, 80, 4096, 4096, 4096);
	ck_assert_int_eq(table_open(&dev, &t, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(devstate_device_set_state(dev,
			 DEVSTATE_STATE_RUNNING_LOGGING), 0);
	ck_assert_int_eq(devstate_device_dirty_bitmap(dev, 0, 100, bm), 0);
	devstate_device_free(dev);
}
END_TEST

/* ---------------------------------------------------------------- */
/* crash-safety: a save killed (SIGKILL) mid-write left its temporary
 * file behind for good.  Now the writer holds a lock on its temporary
 * file, and the next save of the same path removes the ones whose lock
 * it can take; a temporary file whose writer is alive is left alone. */

static unsigned count_tmp(const char *dir, const char *prefix)
{
	char cmd[512];
	unsigned n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -a '%s' | grep -c '^%s' || true", dir,
		 prefix);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(fscanf(p, "%u", &n), 1);
	pclose(p);
	return n;
}

START_TEST(test_stale_temporary_files)
{
	char dir[] = "/tmp/devstate-regress-XXXXXX";
	char path[256], stale[256], live[256], other[256];
	struct devstate_file *f;
	int fd_stale, fd_live, fd_other;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/snap", dir);
	/* a killed save's file (no lock), a running save's (locked), and
	 * a file of another snapshot */
	snprintf(stale, sizeof(stale), "%s/.snap.tmp.AAAAAA", dir);
	snprintf(live, sizeof(live), "%s/.snap.tmp.BBBBBB", dir);
	snprintf(other, sizeof(other), "%s/.snapx.tmp.CCCCCC", dir);
	fd_stale = open(stale, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	fd_live = open(live, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	fd_other = open(other, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert(fd_stale >= 0 && fd_live >= 0 && fd_other >= 0);
	close(fd_stale);
	close(fd_other);
	ck_assert_int_eq(flock(fd_live, LOCK_EX), 0);

	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	ck_assert_int_eq(access(stale, F_OK), -1);
	ck_assert_int_eq(access(live, F_OK), 0);
	ck_assert_int_eq(access(other, F_OK), 0);
	/* ours and the live one */
	ck_assert_uint_eq(count_tmp(dir, "\\.snap\\.tmp\\."), 2);
	ck_assert_int_eq(devstate_file_write(f, "x", 1), 0);
	ck_assert_int_eq(devstate_file_commit(f), 0);
	devstate_file_free(f);

	/* the writer is gone: the next save removes its file */
	close(fd_live);
	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	ck_assert_int_eq(access(live, F_OK), -1);
	devstate_file_free(f);
	ck_assert_uint_eq(count_tmp(dir, "\\.snap\\.tmp\\."), 0);

	unlink(other);
	unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *regress_suite(void)
{
	Suite *s = suite_create("regress");
	TCase *tc = tcase_create("fuzz");

	tcase_add_test(tc, test_ctl_shorter_than_layout);
	tcase_add_test(tc, test_ctl_shorter_than_layout_fake);
	tcase_add_test(tc, test_huge_memory_region);
	tcase_add_test(tc, test_huge_bitmap_region);
	suite_add_tcase(s, tc);
	tc = tcase_create("crash-safety");
	tcase_add_test(tc, test_stale_temporary_files);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(regress_suite());
}

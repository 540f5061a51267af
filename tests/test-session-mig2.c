/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Protocol family 2 (the kernel's migration uAPI v2) end to end against
 * the fake v2 device: the device handle's probe and calls, round trips
 * across flag sets with a workload during pre-copy, the fault sweep over
 * every transport operation of a save and of a load (source back to
 * RUNNING, destination to STOP, never a data session used after its state
 * was left), and the refusal of a stream of the other family both ways.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libdevstate/device.h"
#include "transports/fake.h"
#include "tests/testutil.h"

/* A save as a VMM runs it: setup, passes of pending/iterate with the
 * device writing pages between them, stop, complete, cleanup. */
static int run_save(struct devstate_device *dev, struct tu_sink *sk,
		    unsigned passes, unsigned pages, char *err, size_t errlen,
		    struct devstate_save_stats *stats)
{
	struct devstate_fake *f = devstate_fake_of(dev);
	struct devstate_save *s = NULL;
	uint64_t pending;
	unsigned i;
	int rc;

	rc = devstate_save_new(&s, dev, NULL, tu_sink_write, sk);
	if (rc < 0) {
		snprintf(err, errlen, "%s", devstate_device_error(dev));
		return rc;
	}
	rc = devstate_save_setup(s);
	for (i = 0; rc == 0 && i < passes; i++) {
		rc = devstate_save_pending(s, &pending);
		if (rc == 0)
			rc = devstate_save_iterate(s);
		if (rc == 0 && pages)
			devstate_fake_mig2_workload(f, pages);
	}
	if (rc == 0)
		rc = devstate_save_stop(s);
	if (rc == 0)
		rc = devstate_save_pending(s, &pending);
	if (rc == 0)
		rc = devstate_save_complete(s);
	if (rc == 0)
		rc = devstate_save_cleanup(s);
	if (rc < 0)
		snprintf(err, errlen, "%s", devstate_save_error(s));
	if (stats)
		devstate_save_get_stats(s, stats);
	devstate_save_free(s);
	return rc;
}

static uint32_t digest(struct devstate_device *dev)
{
	uint32_t crc = 0;

	ck_assert_int_eq(devstate_device_digest(dev, &crc), 0);
	return crc;
}

static uint64_t bad_fd_uses(struct devstate_device *dev)
{
	struct devstate_fake_mig2_stats st;

	devstate_fake_mig2_stats(devstate_fake_of(dev), &st);
	return st.bad_fd_uses;
}

/* ------------------------------------------------------------------ */

START_TEST(test_device_calls)
{
	struct devstate_device *dev = NULL;
	struct devstate_mig2_info info;
	char err[256];
	const char *reason;
	uint64_t bm[1] = { 0 }, size;

	dev = tu_open_dev("fake:mig2=all,memory=64K");
	ck_assert_uint_eq(devstate_device_protocol(dev), DEVSTATE_PROTOCOL_MIG2);
	ck_assert_uint_eq(devstate_device_state(dev), DEVSTATE_STATE_NONE);
	ck_assert_uint_eq(devstate_device_mig2_state(dev), DEVSTATE_MIG2_RUNNING);
	ck_assert_int_eq(devstate_device_mig2_info(dev, &info), 0);
	ck_assert_uint_eq(info.flags, 7);
	ck_assert_uint_eq(info.state, DEVSTATE_MIG2_RUNNING);
	ck_assert_int_eq(info.data_size_status, 0);
	ck_assert_uint_eq(info.stop_copy_bytes, 65536 + 65536 + 24 * 3);
	ck_assert_int_eq(info.precopy_status, -EBADF);
	/* the region-protocol calls say which call to use */
	ck_assert_int_eq(devstate_device_set_state(dev, DEVSTATE_STATE_STOP),
			 -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(devstate_device_error(dev),
				     "devstate_device_mig2_set_state()"));
	ck_assert_int_eq(devstate_device_dirty_bitmap(dev, 0, 1, bm),
			 -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(devstate_device_error(dev),
				     "reports no system-memory dirty pages"));
	ck_assert_int_eq(devstate_device_config_size(dev, &size), -EOPNOTSUPP);
	/* the route, one arc at a time: RUNNING -> RUNNING_P2P -> STOP */
	ck_assert_int_eq(devstate_device_mig2_set_state(dev, DEVSTATE_MIG2_STOP),
			 0);
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(dev)),
			  DEVSTATE_MIG2_STOP);
	ck_assert_int_eq(devstate_device_mig2_set_state(dev, DEVSTATE_MIG2_STOP_COPY),
			 0);
	ck_assert_int_eq(devstate_device_mig2_set_state(dev, DEVSTATE_MIG2_PRE_COPY),
			 -EINVAL);	/* refused outright */
	ck_assert_ptr_nonnull(strstr(devstate_device_error(dev), "no route from stop-copy to pre-copy"));
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(dev)),
			  DEVSTATE_MIG2_STOP_COPY);
	ck_assert_int_eq(devstate_device_mig2_set_state(dev, DEVSTATE_MIG2_RUNNING),
			 0);
	ck_assert_int_eq(devstate_fake_mig2_session_open(devstate_fake_of(dev)), 0);
	ck_assert_int_eq(devstate_device_mig2_set_state(dev, DEVSTATE_MIG2_PRE_COPY),
			 0);
	ck_assert_int_eq(devstate_device_mig2_info(dev, &info), 0);
	ck_assert_int_eq(info.precopy_status, 0);
	ck_assert_uint_eq(info.initial_bytes, 32 * (4096 + 24));
	/* a failed arc: the state is read back and named */
	devstate_fake_mig2_fail_to_error(devstate_fake_of(dev), 1);
	devstate_fake_fail_at(devstate_fake_of(dev),
			      devstate_fake_op_count(devstate_fake_of(dev)) + 1,
			      EIO);
	ck_assert_int_eq(devstate_device_mig2_set_state(dev, DEVSTATE_MIG2_RUNNING),
			 -EIO);
	ck_assert_ptr_nonnull(strstr(devstate_device_error(dev),
				     "moving the device from pre-copy to running"));
	ck_assert_ptr_nonnull(strstr(devstate_device_error(dev),
				     "the device now reports state error"));
	ck_assert_uint_eq(devstate_device_mig2_state(dev), DEVSTATE_MIG2_ERROR);
	devstate_device_free(dev);

	/* a region-protocol device is not a v2 one */
	dev = tu_open_dev("fake:memory=64K");
	ck_assert_uint_eq(devstate_device_protocol(dev), DEVSTATE_PROTOCOL_REGIONS);
	ck_assert_int_eq(devstate_device_mig2_info(dev, &info), -EOPNOTSUPP);
	ck_assert_int_eq(devstate_device_mig2_set_state(dev, 1), -EOPNOTSUPP);
	devstate_device_free(dev);

	/* flags the core refuses block the device */
	ck_assert_int_eq(devstate_device_open(&dev, "fake:mig2=9", 0, err,
					      sizeof(err)), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(err, "flags 0x9 this library does not know (0x8)"));
	ck_assert_int_eq(devstate_device_open(&dev, "fake:mig2=p2p", 0, err,
					      sizeof(err)), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(err, "lack STOP_COPY"));
	ck_assert_int_eq(devstate_device_open(&dev, "fake:mig2=p2p",
					      DEVSTATE_OPEN_INSPECT, err,
					      sizeof(err)), 0);
	ck_assert_int_eq(devstate_device_blocker(dev, &reason),
			 DEVSTATE_BLOCKER_MIG2_FLAGS);
	ck_assert_str_eq(devstate_blocker_name(DEVSTATE_BLOCKER_MIG2_FLAGS),
			 "mig2-flags");
	ck_assert_int_eq(devstate_device_mig2_set_state(dev, 1), -EOPNOTSUPP);
	devstate_device_free(dev);
}
END_TEST

static const char *const flag_sets[] = {
	"stop-copy", "stop-copy+p2p", "stop-copy+pre-copy", "all"
};

/* One errno vocabulary, in each family's terms (devstate_dev_fail): a v2
 * device's EBADF is its data session and the sentence names no region
 * state; a region-protocol device's EBUSY is its state table. */
static const char *fail_next(struct devstate_device *dev, int err,
			     uint32_t mig2_to, uint32_t to)
{
	struct devstate_fake *f = devstate_fake_of(dev);

	devstate_fake_fail_at(f, devstate_fake_op_count(f) + 1, err);
	if (devstate_device_protocol(dev) == DEVSTATE_PROTOCOL_MIG2)
		ck_assert_int_eq(devstate_device_mig2_set_state(dev, mig2_to),
				 -err);
	else
		ck_assert_int_eq(devstate_device_set_state(dev, to), -err);
	return devstate_device_error(dev);
}

START_TEST(test_device_error_words)
{
	struct devstate_device *dev;
	char want[128];
	const char *e;

	dev = tu_open_dev("fake:mig2=all,memory=64K");
	e = fail_next(dev, EBADF, DEVSTATE_MIG2_STOP, 0);
	ck_assert_msg(strstr(e, ": there is no data session") != NULL, "%s", e);
	ck_assert_msg(strstr(e, " in state ") == NULL, "%s", e);
	e = fail_next(dev, EINVAL, DEVSTATE_MIG2_STOP, 0);
	ck_assert_msg(strstr(e, ": the device refused the request as malformed or out of protocol") != NULL,
		      "%s", e);
	e = fail_next(dev, EBUSY, DEVSTATE_MIG2_STOP, 0);
	snprintf(want, sizeof(want), ": %s", strerror(EBUSY));
	ck_assert_msg(strstr(e, want) != NULL, "%s", e);
	devstate_device_free(dev);

	dev = tu_open_dev("fake:memory=64K");
	e = fail_next(dev, EBUSY, 0, DEVSTATE_STATE_STOP);
	ck_assert_msg(strstr(e, ": the device does not allow it in its current state (fake: ") != NULL,
		      "%s", e);
	ck_assert_msg(strstr(e, ") in state running") != NULL, "%s", e);
	e = fail_next(dev, EBADF, 0, DEVSTATE_STATE_STOP);
	snprintf(want, sizeof(want), ": %s (fake: ", strerror(EBADF));
	ck_assert_msg(strstr(e, want) != NULL, "%s", e);
	ck_assert_msg(strstr(e, ") in state running") != NULL, "%s", e);
	devstate_device_free(dev);
}
END_TEST

/* Every flag set to every flag set: the data is the driver's, so a source
 * with PRE_COPY feeds a destination without it. */
START_TEST(test_round_trip)
{
	const char *src_flags = flag_sets[_i / 4], *dst_flags = flag_sets[_i % 4];
	struct devstate_device *src, *dst;
	struct devstate_save_stats ss;
	struct devstate_load_stats ls;
	struct devstate_load *l;
	struct tu_sink sk = { 0 };
	char uri[128], err[512];
	int precopy = strstr(src_flags, "pre") || !strcmp(src_flags, "all");
	int rc;

	snprintf(uri, sizeof(uri), "fake:mig2=%s,memory=256K,config=3000,seed=%d,workload=4",
		 src_flags, _i + 1);
	src = tu_open_dev(uri);
	snprintf(uri, sizeof(uri), "fake:mig2=%s,memory=256K,config=3000,zero=yes",
		 dst_flags);
	dst = tu_open_dev(uri);
	ck_assert_uint_ne(digest(src), digest(dst));
	rc = run_save(src, &sk, 4, 6, err, sizeof(err), &ss);
	ck_assert_msg(rc == 0, "save %s: %s", src_flags, err);
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(src)),
			  DEVSTATE_MIG2_STOP);
	if (precopy) {
		/* the initial pass, then passes carrying what the workload
		 * wrote, then the stop-copy pass */
		ck_assert_uint_ge(ss.passes, 3);
		ck_assert_uint_gt(ss.memory_bytes, ss.stop_copy_bytes);
		ck_assert_uint_lt(ss.stop_copy_bytes, 12 * (4096 + 24) + 24);
	} else {
		ck_assert_uint_eq(ss.passes, 1);
		ck_assert_uint_eq(ss.memory_bytes, ss.stop_copy_bytes);
		ck_assert_uint_eq(ss.stop_copy_bytes,
				  256 * 1024 + 3000 + 24 * (4 + 1 + 1));
	}
	ck_assert_uint_eq(ss.stream_bytes, sk.len);
	rc = tu_run_load(dst, sk.buf, sk.len, 1000, 0, err, sizeof(err));
	ck_assert_msg(rc == 0, "load %s -> %s: %s", src_flags, dst_flags, err);
	ck_assert_uint_eq(digest(src), digest(dst));
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(dst)),
			  DEVSTATE_MIG2_RUNNING);
	ck_assert_uint_eq(devstate_device_mig2_state(dst), DEVSTATE_MIG2_RUNNING);
	ck_assert_uint_eq(bad_fd_uses(src), 0);
	ck_assert_uint_eq(bad_fd_uses(dst), 0);
	/* stats of a load */
	ck_assert_int_eq(devstate_load_new(&l, dst), 0);
	devstate_load_get_stats(l, &ls);
	ck_assert_uint_eq(ls.memory_bytes, 0);
	devstate_load_free(l);
	devstate_device_free(src);
	devstate_device_free(dst);
	free(sk.buf);
}
END_TEST

/* log_sync is refused without harming the session. */
START_TEST(test_log_sync_refused)
{
	struct devstate_device *src = tu_open_dev("fake:mig2=all,memory=64K");
	struct devstate_save *s = NULL;
	struct tu_sink sk = { 0 };
	uint64_t bm[1] = { 0 };

	ck_assert_int_eq(devstate_save_new(&s, src, NULL, tu_sink_write, &sk),
			 0);
	ck_assert_int_eq(devstate_save_setup(s), 0);
	ck_assert_int_eq(devstate_save_log_sync(s, 0, 64, bm), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(devstate_save_error(s),
				     "reports no system-memory dirty pages"));
	ck_assert_uint_eq(bm[0], 0);
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(src)),
			  DEVSTATE_MIG2_PRE_COPY);
	ck_assert_int_eq(devstate_save_iterate(s), 0);
	ck_assert_int_eq(devstate_save_complete(s), 0);
	/* free after complete gives the source back, running */
	devstate_save_free(s);
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(src)),
			  DEVSTATE_MIG2_RUNNING);
	devstate_device_free(src);
	free(sk.buf);
}
END_TEST

/* Cancel in every phase of a save puts the source back to RUNNING. */
START_TEST(test_cancel)
{
	unsigned phase;

	for (phase = 0; phase < 4; phase++) {
		struct devstate_device *src = tu_open_dev("fake:mig2=all,memory=64K");
		struct devstate_save *s = NULL;
		struct tu_sink sk = { 0 };

		ck_assert_int_eq(devstate_save_new(&s, src, NULL, tu_sink_write,
						   &sk), 0);
		ck_assert_int_eq(devstate_save_setup(s), 0);
		if (phase >= 1)
			ck_assert_int_eq(devstate_save_iterate(s), 0);
		if (phase >= 2)
			ck_assert_int_eq(devstate_save_stop(s), 0);
		if (phase >= 3)
			ck_assert_int_eq(devstate_save_complete(s), 0);
		ck_assert_int_eq(devstate_save_cancel(s), 0);
		ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(src)),
				  DEVSTATE_MIG2_RUNNING);
		ck_assert_int_eq(devstate_fake_mig2_session_open(devstate_fake_of(src)), 0);
		ck_assert_int_eq(devstate_save_iterate(s), -EPROTO);
		devstate_save_free(s);
		devstate_device_free(src);
		free(sk.buf);
	}
}
END_TEST

/*
 * Fail operation n of a save, for every n a clean save performs, in both
 * failure modes of the device (state kept; state ERROR): the save fails
 * with a sentence and the source ends RUNNING, or the failure hit an
 * operation whose failure the session tolerates and the save succeeded.
 */
START_TEST(test_save_fault_sweep)
{
	const char *uri = _i & 1 ? "fake:mig2=all,memory=64K,config=100,workload=2" :
				   "fake:mig2=stop-copy+p2p,memory=64K,config=100";
	int to_error = _i >= 2;
	struct devstate_device *src;
	struct tu_sink sk = { 0 };
	char err[512];
	uint64_t n, total, failed = 0;
	int rc;

	src = tu_open_dev(uri);
	n = devstate_fake_op_count(devstate_fake_of(src));
	ck_assert_int_eq(run_save(src, &sk, 3, 2, err, sizeof(err), NULL), 0);
	total = devstate_fake_op_count(devstate_fake_of(src));
	devstate_device_free(src);
	ck_assert_uint_gt(total, n + 5);
	for (n = n + 1; n <= total; n++) {
		sk.len = 0;
		src = tu_open_dev(uri);
		devstate_fake_mig2_fail_to_error(devstate_fake_of(src), to_error);
		devstate_fake_fail_at(devstate_fake_of(src), n, EIO);
		rc = run_save(src, &sk, 3, 2, err, sizeof(err), NULL);
		if (rc < 0) {
			failed++;
			ck_assert_msg(strstr(err, "injected failure"),
				      "op %llu: %s", (unsigned long long)n, err);
			ck_assert_msg(devstate_fake_mig2_state(devstate_fake_of(src)) ==
				      DEVSTATE_MIG2_RUNNING,
				      "op %llu: source left in %s: %s",
				      (unsigned long long)n,
				      devstate_mig2_state_name(devstate_fake_mig2_state(devstate_fake_of(src))),
				      err);
			ck_assert_int_eq(devstate_fake_mig2_session_open(devstate_fake_of(src)), 0);
		}
		ck_assert_msg(bad_fd_uses(src) == 0, "op %llu: %s",
			      (unsigned long long)n, err);
		devstate_device_free(src);
	}
	ck_assert_uint_ge(failed, (total - 1) / 2);
	free(sk.buf);
}
END_TEST

/* Fail operation n of a load: it fails and the destination ends STOP
 * with its old contents. */
START_TEST(test_load_fault_sweep)
{
	const char *dst_uri = _i ? "fake:mig2=all,memory=64K,config=100,zero=yes" :
				   "fake:mig2=stop-copy,memory=64K,config=100,zero=yes";
	int to_error = _i;
	struct devstate_device *src, *dst;
	struct tu_sink sk = { 0 };
	char err[512];
	uint64_t n, first, total;
	uint32_t before, want, now;
	int rc;

	src = tu_open_dev("fake:mig2=all,memory=64K,config=100,workload=2");
	ck_assert_int_eq(run_save(src, &sk, 3, 2, err, sizeof(err), NULL), 0);
	want = digest(src);
	devstate_device_free(src);
	dst = tu_open_dev(dst_uri);
	first = devstate_fake_op_count(devstate_fake_of(dst)) + 1;
	ck_assert_int_eq(tu_run_load(dst, sk.buf, sk.len, 4096, 0, err,
				     sizeof(err)),
			 0);
	total = devstate_fake_op_count(devstate_fake_of(dst));
	devstate_device_free(dst);
	for (n = first; n <= total; n++) {
		dst = tu_open_dev(dst_uri);
		before = digest(dst);
		devstate_fake_mig2_fail_to_error(devstate_fake_of(dst), to_error);
		devstate_fake_fail_at(devstate_fake_of(dst), n, EIO);
		rc = tu_run_load(dst, sk.buf, sk.len, 4096, 0, err,
				 sizeof(err));
		ck_assert_msg(rc < 0, "op %llu: the load succeeded",
			      (unsigned long long)n);
		ck_assert_msg(strstr(err, "injected failure"), "op %llu: %s",
			      (unsigned long long)n, err);
		ck_assert_msg(devstate_fake_mig2_state(devstate_fake_of(dst)) ==
			      DEVSTATE_MIG2_STOP,
			      "op %llu: destination left in %s: %s",
			      (unsigned long long)n,
			      devstate_mig2_state_name(devstate_fake_mig2_state(devstate_fake_of(dst))),
			      err);
		ck_assert_msg(strstr(err, "(device left in state stop)"),
			      "op %llu: %s", (unsigned long long)n, err);
		/* untouched, or (a failure after the device took the data on
		 * leaving RESUMING) the source's, never anything else */
		now = digest(dst);
		ck_assert_msg(now == before || now == want, "op %llu",
			      (unsigned long long)n);
		ck_assert_uint_eq(bad_fd_uses(dst), 0);
		devstate_device_free(dst);
	}
	free(sk.buf);
}
END_TEST

/* A corrupt v2 stream: the decoder stops it (the device never validates
 * garbage); data the decoder cannot judge is the device's to refuse. */
START_TEST(test_device_refuses_data)
{
	struct devstate_device *src, *dst;
	struct tu_sink sk = { 0 };
	char err[512];
	uint32_t before;

	src = tu_open_dev("fake:mig2=stop-copy,memory=64K,config=100");
	dst = tu_open_dev("fake:mig2=stop-copy,memory=128K,config=100,zero=yes");
	ck_assert_int_eq(run_save(src, &sk, 0, 0, err, sizeof(err), NULL), 0);
	before = digest(dst);
	/* another state size: the destination driver refuses the data */
	ck_assert_int_eq(tu_run_load(dst, sk.buf, sk.len, 100000, 0, err,
				  sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "finish: moving the device from resuming to stop"));
	ck_assert_ptr_nonnull(strstr(err, "fake mig2: refused the data: an END record for another state size"));
	ck_assert_msg(strstr(err, "(device left in state stop)"), "%s", err);
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(dst)),
			  DEVSTATE_MIG2_STOP);
	ck_assert_uint_eq(digest(dst), before);
	/* a truncated stream: no END, the device goes to STOP untouched */
	ck_assert_int_eq(tu_run_load(dst, sk.buf, sk.len - 1, 100000, 0, err,
				  sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "no END section"));
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(dst)),
			  DEVSTATE_MIG2_STOP);
	ck_assert_uint_eq(digest(dst), before);
	devstate_device_free(src);
	devstate_device_free(dst);
	free(sk.buf);
}
END_TEST

/* A stream that fails verification after the device took all of its data
 * (the stream's END cut short, or abandoned before finish): the device
 * must not load it.  Leaving RESUMING by its arc (-> STOP) is where a
 * driver loads what it took, so the way back is a reset, then STOP. */
START_TEST(test_failed_load_not_loaded)
{
	struct devstate_fake_mig2_stats st;
	struct devstate_device *src, *dst;
	struct devstate_load *l = NULL;
	struct tu_sink sk = { 0 };
	char err[512];
	uint32_t before, want;

	src = tu_open_dev("fake:mig2=stop-copy,memory=64K,config=100");
	ck_assert_int_eq(run_save(src, &sk, 0, 0, err, sizeof(err), NULL), 0);
	want = digest(src);
	dst = tu_open_dev("fake:mig2=stop-copy,memory=64K,config=100,zero=yes");
	before = digest(dst);
	ck_assert_uint_ne(before, want);

	/* every byte of device data, but the stream's END cut short */
	ck_assert_int_eq(tu_run_load(dst, sk.buf, sk.len - 1, 100000, 0, err,
				  sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "no END section"));
	ck_assert_msg(strstr(err, "(device left in state stop)"), "%s", err);
	devstate_fake_mig2_stats(devstate_fake_of(dst), &st);
	ck_assert_uint_eq(st.loads, 0);
	ck_assert_uint_ge(st.resets, 1);
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(dst)),
			  DEVSTATE_MIG2_STOP);
	ck_assert_uint_eq(digest(dst), before);

	/* the same stream fed whole but never finished: freeing the load
	 * abandons the data too */
	ck_assert_int_eq(devstate_load_new(&l, dst), 0);
	ck_assert_int_eq(devstate_load_begin(l), 0);
	ck_assert_int_eq(devstate_load_feed(l, sk.buf, sk.len), 0);
	devstate_load_free(l);
	devstate_fake_mig2_stats(devstate_fake_of(dst), &st);
	ck_assert_uint_eq(st.loads, 0);
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(dst)),
			  DEVSTATE_MIG2_STOP);
	ck_assert_uint_eq(digest(dst), before);
	ck_assert_uint_eq(bad_fd_uses(dst), 0);

	/* and the whole stream, finished, loads */
	ck_assert_int_eq(tu_run_load(dst, sk.buf, sk.len, 100000, 0, err,
				  sizeof(err)), 0);
	ck_assert_uint_eq(digest(dst), want);
	devstate_device_free(src);
	devstate_device_free(dst);
	free(sk.buf);
}
END_TEST

/* The session sentences and returns both families share (session-common):
 * order checks, the option check, a failed stream write with the device
 * put back to RUNNING from any phase, the load's phase checks. */
static bool dev_running(struct devstate_device *dev)
{
	if (devstate_device_protocol(dev) == DEVSTATE_PROTOCOL_MIG2)
		return devstate_device_mig2_state(dev) == DEVSTATE_MIG2_RUNNING;
	return devstate_device_state(dev) == DEVSTATE_STATE_RUNNING;
}

START_TEST(test_common_sentences)
{
	static const char *const uris[] = {
		"fake:memory=64K,config=1K,seed=2",
		"fake:mig2=all,memory=64K,seed=2",
	};
	struct devstate_save_opts opts = { .codec = 99 };
	struct devstate_device *dev = tu_open_dev(uris[_i]);
	struct tu_sink sk = { 0 };
	struct devstate_save *s = NULL;
	struct devstate_load *l = NULL;
	const char *e;
	uint64_t pending;
	size_t whole;
	char err[256];

	ck_assert_int_eq(devstate_save_new(&s, dev, &opts, tu_sink_write, &sk),
			 -EINVAL);
	ck_assert_str_eq(devstate_device_error(dev), "save: unknown codec 99");
	ck_assert_int_eq(devstate_save_new(&s, dev, NULL, tu_sink_write, &sk),
			 0);
	ck_assert_int_eq(devstate_save_stop(s), -EPROTO);
	ck_assert_str_eq(devstate_save_error(s),
			 "stop: not allowed now: the session is new");
	devstate_save_free(s);

	/* a whole save, then the same one failing on its last write (the
	 * END section, in stop-copy): the source is RUNNING again */
	ck_assert_int_eq(run_save(dev, &sk, 1, 0, err, sizeof(err), NULL), 0);
	whole = sk.len;
	ck_assert_int_eq(devstate_device_mig2_set_state(dev,
			 DEVSTATE_MIG2_RUNNING), devstate_device_protocol(dev) ==
			 DEVSTATE_PROTOCOL_MIG2 ? 0 : -EOPNOTSUPP);
	if (devstate_device_protocol(dev) != DEVSTATE_PROTOCOL_MIG2)
		ck_assert_int_eq(devstate_device_set_state(dev,
				 DEVSTATE_STATE_RUNNING), 0);
	sk.len = 0;
	sk.fail_after = whole - 1;
	ck_assert_int_eq(devstate_save_new(&s, dev, NULL, tu_sink_write, &sk),
			 0);
	ck_assert_int_eq(devstate_save_setup(s), 0);
	ck_assert_int_eq(devstate_save_pending(s, &pending), 0);
	ck_assert_int_eq(devstate_save_iterate(s), 0);
	ck_assert_int_eq(devstate_save_stop(s), 0);
	ck_assert(!dev_running(dev));
	ck_assert_int_eq(devstate_save_complete(s), -ENOSPC);
	e = devstate_save_error(s);
	ck_assert_msg(!strncmp(e, "complete: writing the stream: write of ",
			       39), "%s", e);
	ck_assert_msg(strstr(e, "No space left on device") != NULL, "%s", e);
	ck_assert(dev_running(dev));
	ck_assert_int_eq(devstate_save_iterate(s), -EPROTO);
	ck_assert_str_eq(devstate_save_error(s),
			 "iterate: not allowed now: the session is failed");
	devstate_save_free(s);
	ck_assert(dev_running(dev));

	/* the load's phase checks */
	ck_assert_int_eq(devstate_load_new(&l, dev), 0);
	ck_assert_int_eq(devstate_load_feed(l, sk.buf, 1), -EPROTO);
	ck_assert_str_eq(devstate_load_error(l),
			 "feed: not allowed now: the load is new");
	ck_assert_int_eq(devstate_load_begin(l), 0);
	ck_assert_int_eq(devstate_load_begin(l), -EPROTO);
	ck_assert_str_eq(devstate_load_error(l),
			 "begin: not allowed now: the load is waiting for the stream header");
	ck_assert_int_eq(devstate_load_feed(l, sk.buf, 10), 0);
	ck_assert_int_eq(devstate_load_finish(l), -EPROTO);
	ck_assert_str_eq(devstate_load_error(l),
			 "finish: the stream is incomplete (truncated after 10 bytes: no END section) (device left in state stop)");
	ck_assert_int_eq(devstate_load_finish(l), -EIO);
	ck_assert_str_eq(devstate_load_error(l),
			 "finish: the stream is incomplete (truncated after 10 bytes: no END section) (device left in state stop)");
	ck_assert_int_eq(devstate_load_feed(l, sk.buf, 1), -EIO);
	ck_assert_str_eq(devstate_load_error(l),
			 "feed: not allowed now: the load is failed");
	ck_assert_int_eq(devstate_load_begin(l), -EPROTO);
	ck_assert_str_eq(devstate_load_error(l),
			 "begin: not allowed now: the load is failed");
	devstate_load_free(l);
	free(sk.buf);
	devstate_device_free(dev);
}
END_TEST

/* A stream of one family is refused by a device of the other before
 * anything is written, both ways. */
START_TEST(test_cross_family)
{
	struct devstate_device *v1, *v2;
	struct devstate_fake_mig2_stats st;
	struct tu_sink sk = { 0 };
	char err[512];
	uint32_t before;
	struct devstate_save *s = NULL;

	/* region stream into a v2 device */
	v1 = tu_open_dev("fake:memory=64K,config=100");
	ck_assert_int_eq(devstate_save_new(&s, v1, NULL, tu_sink_write, &sk),
			 0);
	ck_assert_int_eq(devstate_save_setup(s), 0);
	ck_assert_int_eq(devstate_save_complete(s), 0);
	devstate_save_free(s);
	v2 = tu_open_dev("fake:mig2=all,memory=64K,config=100,zero=yes");
	before = digest(v2);
	ck_assert_int_eq(tu_run_load(v2, sk.buf, sk.len, 7, 0, err,
				     sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "stream header: the stream was saved from a device speaking the proposal's region protocol; this device speaks the kernel's migration uAPI v2 (device left in state stop)");
	ck_assert_uint_eq(devstate_fake_mig2_state(devstate_fake_of(v2)),
			  DEVSTATE_MIG2_STOP);
	devstate_fake_mig2_stats(devstate_fake_of(v2), &st);
	ck_assert_uint_eq(st.sessions, 0);	/* never RESUMING */
	ck_assert_uint_eq(st.bytes_written, 0);
	ck_assert_uint_eq(digest(v2), before);
	devstate_device_free(v1);
	devstate_device_free(v2);

	/* v2 stream into a region device */
	sk.len = 0;
	v2 = tu_open_dev("fake:mig2=all,memory=64K,config=100");
	ck_assert_int_eq(run_save(v2, &sk, 1, 0, err, sizeof(err), NULL), 0);
	v1 = tu_open_dev("fake:memory=64K,config=100,zero=yes");
	before = digest(v1);
	ck_assert_int_eq(tu_run_load(v1, sk.buf, sk.len, 7, 0, err,
				     sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "stream header: the stream was saved from a device speaking the kernel's migration uAPI v2; this device speaks the proposal's region protocol (device left in state stop)");
	ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(v1)),
			  DEVSTATE_STATE_STOP);
	ck_assert_uint_eq(devstate_fake_batches_loaded(devstate_fake_of(v1)), 0);
	ck_assert_uint_eq(digest(v1), before);
	devstate_device_free(v1);
	devstate_device_free(v2);
	free(sk.buf);
}
END_TEST

static Suite *session_mig2_suite(void)
{
	Suite *s = suite_create("session-mig2");
	TCase *tc = tcase_create("mig2");

	tcase_add_test(tc, test_device_calls);
	tcase_add_test(tc, test_device_error_words);
	tcase_add_loop_test(tc, test_round_trip, 0, 16);
	tcase_add_test(tc, test_log_sync_refused);
	tcase_add_test(tc, test_cancel);
	tcase_add_loop_test(tc, test_save_fault_sweep, 0, 4);
	tcase_add_loop_test(tc, test_load_fault_sweep, 0, 2);
	tcase_add_test(tc, test_device_refuses_data);
	tcase_add_test(tc, test_failed_load_not_loaded);
	tcase_add_test(tc, test_cross_family);
	tcase_add_loop_test(tc, test_common_sentences, 0, 2);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(session_mig2_suite());
}

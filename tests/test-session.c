/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session driver end to end against fake devices: round trips with a
 * workload, header checks, call order, the fault sweep over every
 * transport operation of a save and of a load, corruption and truncation
 * of a stream, and atomic snapshot writes.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libdevstate/device.h"
#include "transports/fake.h"
#include "tests/testutil.h"

/* ------------------------------------------------------------------ */
/* helpers */

struct save_plan {
	unsigned passes;	/* pre-copy iterations */
	uint64_t ram_pages;	/* log-sync range from address 0 */
	unsigned extra_pages;	/* test-driven workload per pass */
};

/* A full save as a VMM would run it.  Returns the first error. */
static int run_save(struct devstate_device *dev,
		    const struct devstate_save_opts *opts,
		    devstate_write_fn w, void *opaque,
		    const struct save_plan *plan, uint64_t *bitmap,
		    char *err, size_t errlen)
{
	struct devstate_fake *f = devstate_fake_of(dev);
	struct devstate_save *s = NULL;
	uint64_t pending;
	int sysmem = devstate_device_caps(dev) & DEVSTATE_CAP_SYSTEM_MEMORY;
	unsigned i;
	int rc;

	rc = devstate_save_new(&s, dev, opts, w, opaque);
	if (rc < 0) {
		snprintf(err, errlen, "new: %s", devstate_device_error(dev));
		return rc;
	}
	rc = devstate_save_setup(s);
	for (i = 0; rc == 0 && i < plan->passes; i++) {
		if (f && plan->extra_pages)
			devstate_fake_workload(f, plan->extra_pages);
		rc = devstate_save_pending(s, &pending);
		if (rc == 0)
			rc = devstate_save_iterate(s);
		if (rc == 0 && sysmem)
			rc = devstate_save_log_sync(s, 0, plan->ram_pages,
						    bitmap);
	}
	if (rc == 0)
		rc = devstate_save_stop(s);
	if (rc == 0 && sysmem)
		rc = devstate_save_log_sync(s, 0, plan->ram_pages, bitmap);
	if (rc == 0)
		rc = devstate_save_complete(s);
	if (rc == 0)
		rc = devstate_save_cleanup(s);
	if (rc < 0)
		snprintf(err, errlen, "%s", devstate_save_error(s));
	devstate_save_free(s);
	return rc;
}

static void assert_same_contents(struct devstate_device *a,
				 struct devstate_device *b)
{
	struct devstate_fake *fa = devstate_fake_of(a), *fb = devstate_fake_of(b);
	const uint8_t *ma, *mb, *ca, *cb;
	size_t la, lb, lca, lcb;

	ma = devstate_fake_memory(fa, &la);
	mb = devstate_fake_memory(fb, &lb);
	ck_assert_uint_eq(la, lb);
	ck_assert_msg(memcmp(ma, mb, la) == 0, "device memory differs");
	ca = devstate_fake_config(fa, &lca);
	cb = devstate_fake_config(fb, &lcb);
	ck_assert_uint_eq(lca, lcb);
	ck_assert_msg(memcmp(ca, cb, lca) == 0, "config differs");
}

/* ------------------------------------------------------------------ */
/* round trips */

struct rt_case {
	unsigned version;
	unsigned caps;
	const char *extra;	/* more fake keys */
	enum devstate_codec codec;
};

static const struct rt_case rt_cases[] = {
	{ 1, 3, "", DEVSTATE_CODEC_RAW },
	{ 2, 3, "", DEVSTATE_CODEC_RAW },
	{ 1, 1, "", DEVSTATE_CODEC_DEFLATE },
	{ 2, 1, "", DEVSTATE_CODEC_ZSTD },
	{ 1, 2, "", DEVSTATE_CODEC_RAW },
	{ 2, 2, "", DEVSTATE_CODEC_ZSTD },
	{ 1, 0, "", DEVSTATE_CODEC_RAW },
	{ 2, 0, "", DEVSTATE_CODEC_DEFLATE },
	/* chunk lengths that do not divide the batch sizes */
	{ 2, 3, ",chunk=12288", DEVSTATE_CODEC_RAW },
	{ 1, 3, ",chunk=5000", DEVSTATE_CODEC_ZSTD },
	{ 2, 3, ",chunk=777,bitmap=13", DEVSTATE_CODEC_DEFLATE },
	/* read/write instead of mmap, tiny bitmap region */
	{ 2, 3, ",mmap=no,bitmap=3", DEVSTATE_CODEC_RAW },
	{ 1, 3, ",mmap=no,chunk=65536", DEVSTATE_CODEC_ZSTD },
};

static const char *caps_key(unsigned caps)
{
	switch (caps) {
	case 0: return "none";
	case 1: return "device-memory";
	case 2: return "system-memory";
	default: return "device-memory+system-memory";
	}
}

START_TEST(test_round_trip)
{
	const struct rt_case *c = &rt_cases[_i];
	struct devstate_save_opts opts = { .codec = c->codec,
					   .record_bitmaps = 1 };
	struct save_plan plan = { .passes = 4, .ram_pages = 8192,
				  .extra_pages = 3 };
	struct devstate_device *src, *dst;
	struct tu_sink sk = { 0 };
	uint64_t *bitmap, npages, i, seed = 0x1234 + _i;
	const uint64_t *truth;
	char uri[256], err[512] = "";
	int rc;

	snprintf(uri, sizeof(uri),
		 "fake:version=%u,caps=%s,memory=256K,config=5000,sysmem=32M,seed=%d,workload=5%s",
		 c->version, caps_key(c->caps), 7 + _i, c->extra);
	src = tu_open_dev(uri);
	snprintf(uri, sizeof(uri),
		 "fake:version=%u,caps=%s,memory=256K,config=5000,sysmem=32M,zero=yes%s%s",
		 c->version, caps_key(c->caps), c->extra,
		 /* the destination may cut chunks differently */
		 _i % 2 ? ",chunk=8192" : "");
	dst = tu_open_dev(uri);
	bitmap = calloc(plan.ram_pages / 64, 8);
	ck_assert_ptr_nonnull(bitmap);

	rc = run_save(src, &opts, tu_sink_write, &sk, &plan, bitmap, err,
		      sizeof(err));
	ck_assert_msg(rc == 0, "save: %s", err);
	ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(src)),
			  DEVSTATE_STATE_STOP);
	rc = tu_run_load(dst, sk.buf, sk.len, 0, seed, err, sizeof(err));
	ck_assert_msg(rc == 0, "load: %s", err);
	ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(dst)),
			  DEVSTATE_STATE_RUNNING);
	assert_same_contents(src, dst);

	if (c->caps & DEVSTATE_CAP_SYSTEM_MEMORY) {
		uint64_t n = 0;

		truth = devstate_fake_sysmem_truth(devstate_fake_of(src),
						   &npages);
		ck_assert_uint_ge(npages, plan.ram_pages);
		for (i = 0; i < plan.ram_pages / 64; i++) {
			ck_assert_msg(bitmap[i] == truth[i],
				      "dirty bitmap word %llu: got %016llx want %016llx",
				      (unsigned long long)i,
				      (unsigned long long)bitmap[i],
				      (unsigned long long)truth[i]);
			n += (uint64_t)__builtin_popcountll(truth[i]);
		}
		ck_assert_msg(n > 0, "the workload dirtied no system page");
	}
	free(bitmap);
	free(sk.buf);
	devstate_device_free(src);
	devstate_device_free(dst);
}
END_TEST

/* The dirty baseline (SPEC 6): a write that lands after the whole
 * snapshot was read but before LOGGING is set must arrive.  The fake's
 * tick at the device_state write happens exactly in that window; with no
 * other workload and no pre-copy pass, only the final delta can carry it. */
START_TEST(test_dirty_baseline_window)
{
	struct devstate_device *src, *dst;
	struct devstate_save *s;
	struct tu_sink sk = { 0 };
	char err[512];
	int rc;

	src = tu_open_dev("fake:memory=64K,config=1K,sysmem=1M,seed=3");
	dst = tu_open_dev("fake:memory=64K,config=1K,sysmem=1M,zero=yes");
	ck_assert_int_eq(devstate_save_new(&s, src, NULL, tu_sink_write, &sk),
			 0);
	/* ticks only at the LOGGING transition: 4 pages each */
	devstate_fake_set_auto_workload(devstate_fake_of(src), 4);
	ck_assert_int_eq(devstate_save_setup(s), 0);
	devstate_fake_set_auto_workload(devstate_fake_of(src), 0);
	ck_assert_int_eq(devstate_save_complete(s), 0);
	ck_assert_int_eq(devstate_save_cleanup(s), 0);
	devstate_save_free(s);
	rc = tu_run_load(dst, sk.buf, sk.len, 0, 0, err, sizeof(err));
	ck_assert_msg(rc == 0, "load: %s", err);
	assert_same_contents(src, dst);
	free(sk.buf);
	devstate_device_free(src);
	devstate_device_free(dst);
}
END_TEST

/* pending reports an unread frozen batch instead of freezing again */
START_TEST(test_pending_reports_unread_batch)
{
	struct devstate_device *src;
	struct devstate_save *s;
	struct devstate_fake_counters c0, c1;
	struct tu_sink sk = { 0 };
	uint64_t p1, p2;

	src = tu_open_dev("fake:memory=64K,config=1K,seed=3");
	ck_assert_int_eq(devstate_save_new(&s, src, NULL, tu_sink_write, &sk),
			 0);
	ck_assert_int_eq(devstate_save_setup(s), 0);
	devstate_fake_workload(devstate_fake_of(src), 3);
	ck_assert_int_eq(devstate_save_pending(s, &p1), 0);
	ck_assert_uint_gt(p1, 3 * 4096);	/* 3 pages + record headers */
	devstate_fake_counters(devstate_fake_of(src), &c0);
	devstate_fake_workload(devstate_fake_of(src), 3);
	ck_assert_int_eq(devstate_save_pending(s, &p2), 0);
	devstate_fake_counters(devstate_fake_of(src), &c1);
	ck_assert_uint_eq(p1, p2);
	ck_assert_uint_eq(c1.ctl_reads, c0.ctl_reads);	/* no second freeze */
	/* complete drains it and then takes the final delta */
	ck_assert_int_eq(devstate_save_complete(s), 0);
	ck_assert_int_eq(devstate_save_cleanup(s), 0);
	devstate_save_free(s);
	free(sk.buf);
	devstate_device_free(src);
}
END_TEST

START_TEST(test_call_order)
{
	struct devstate_device *src;
	struct devstate_save *s;
	struct tu_sink sk = { 0 };
	uint64_t p, bm[1];

	src = tu_open_dev("fake:memory=64K,config=1K,sysmem=1M");
	ck_assert_int_eq(devstate_save_new(&s, src, NULL, tu_sink_write, &sk),
			 0);
	ck_assert_int_eq(devstate_save_pending(s, &p), -EPROTO);
	ck_assert_int_eq(devstate_save_iterate(s), -EPROTO);
	ck_assert_int_eq(devstate_save_log_sync(s, 0, 64, bm), -EPROTO);
	ck_assert_int_eq(devstate_save_complete(s), -EPROTO);
	ck_assert_int_eq(devstate_save_cleanup(s), -EPROTO);
	ck_assert_ptr_nonnull(strstr(devstate_save_error(s), "cleanup"));
	ck_assert_uint_eq(sk.len, 0);	/* nothing was executed */
	ck_assert_int_eq(devstate_save_setup(s), 0);
	ck_assert_int_eq(devstate_save_setup(s), -EPROTO);
	ck_assert_int_eq(devstate_save_cleanup(s), -EPROTO);
	ck_assert_int_eq(devstate_save_complete(s), 0);
	ck_assert_int_eq(devstate_save_complete(s), -EPROTO);
	ck_assert_int_eq(devstate_save_iterate(s), -EPROTO);
	ck_assert_int_eq(devstate_save_cleanup(s), 0);
	ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(src)),
			  DEVSTATE_STATE_STOP);
	/* freeing a finished session leaves the device as it is */
	devstate_save_free(s);
	ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(src)),
			  DEVSTATE_STATE_STOP);
	free(sk.buf);
	devstate_device_free(src);
}
END_TEST

START_TEST(test_cancel_and_free_restore_running)
{
	struct devstate_device *src;
	struct devstate_save *s;
	struct tu_sink sk = { 0 };

	src = tu_open_dev("fake:memory=64K,config=1K");
	ck_assert_int_eq(devstate_save_new(&s, src, NULL, tu_sink_write, &sk),
			 0);
	ck_assert_int_eq(devstate_save_setup(s), 0);
	ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(src)),
			  DEVSTATE_STATE_RUNNING_LOGGING);
	ck_assert_int_eq(devstate_save_stop(s), 0);
	ck_assert_int_eq(devstate_save_cancel(s), 0);
	ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(src)),
			  DEVSTATE_STATE_RUNNING);
	devstate_save_free(s);

	ck_assert_int_eq(devstate_save_new(&s, src, NULL, tu_sink_write, &sk),
			 0);
	ck_assert_int_eq(devstate_save_setup(s), 0);
	ck_assert_int_eq(devstate_save_complete(s), 0);
	devstate_save_free(s);	/* abandoned before cleanup */
	ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(src)),
			  DEVSTATE_STATE_RUNNING);
	free(sk.buf);
	devstate_device_free(src);
}
END_TEST

/* The destination refuses a stream that does not fit it, before it
 * writes anything. */
START_TEST(test_header_mismatch)
{
	static const struct {
		const char *dst;
		const char *field;
	} cases[] = {
		{ "fake:version=1,memory=64K,config=1K,zero=yes", "version" },
		{ "fake:caps=device-memory,memory=64K,config=1K,zero=yes", "caps" },
		{ "fake:memory=64K,config=2K,zero=yes", "config size" },
		{ "fake:memory=64K,config=1K,config-region=512,zero=yes", "config size" },
	};
	struct devstate_device *src, *dst;
	struct tu_sink sk = { 0 };
	struct save_plan plan = { .passes = 1, .ram_pages = 64 };
	uint64_t bm[1] = { 0 };
	char err[512];
	unsigned i;

	src = tu_open_dev("fake:version=2,memory=64K,config=1K,sysmem=1M,seed=5");
	ck_assert_int_eq(run_save(src, NULL, tu_sink_write, &sk, &plan, bm, err,
				  sizeof(err)), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct devstate_fake_counters c;

		dst = tu_open_dev(cases[i].dst);
		ck_assert_int_lt(tu_run_load(dst, sk.buf, sk.len, 0, 0, err,
					  sizeof(err)), 0);
		ck_assert_msg(strstr(err, cases[i].field), "'%s' lacks '%s'",
			      err, cases[i].field);
		devstate_fake_counters(devstate_fake_of(dst), &c);
		ck_assert_uint_eq(c.data_writes, 0);
		ck_assert_uint_eq(c.chunks_set, 0);
		ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(dst)),
				  DEVSTATE_STATE_STOP);
		devstate_device_free(dst);
	}
	free(sk.buf);
	devstate_device_free(src);
}
END_TEST

/* ------------------------------------------------------------------ */
/* fault sweep */

#define SWEEP_SRC "fake:version=%u,memory=96K,chunk=32K,config=3000,bitmap=64,sysmem=4M,seed=11,workload=2%s"
#define SWEEP_DST "fake:version=%u,memory=96K,chunk=32K,config=3000,bitmap=64,sysmem=4M,zero=yes%s"

static const char *const save_steps[] = {
	"setup:", "pending:", "iterate:", "log-sync:", "stop:", "complete:",
	"cleanup:", "recover:", NULL
};
static const char *const load_steps[] = {
	"begin:", "stream header:", "load memory:", "load config:",
	"finish:", NULL
};

static int names_step(const char *err, const char *const *steps)
{
	unsigned i;

	for (i = 0; steps[i]; i++)
		if (strstr(err, steps[i]))
			return 1;
	return 0;
}

static void sweep(unsigned version, const char *extra, int errno_val,
		  int shorts, uint64_t *nsave, uint64_t *nload)
{
	struct save_plan plan = { .passes = 2, .ram_pages = 1024 };
	struct devstate_device *src, *dst;
	struct tu_sink ref = { 0 };
	uint64_t bm[16], open_ops, total, n;
	char uri[256], err[512];
	int rc;

	/* a clean run counts the operations and gives the reference stream */
	snprintf(uri, sizeof(uri), SWEEP_SRC, version, extra);
	src = tu_open_dev(uri);
	open_ops = devstate_fake_op_count(devstate_fake_of(src));
	memset(bm, 0, sizeof(bm));
	rc = run_save(src, NULL, tu_sink_write, &ref, &plan, bm, err,
		      sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	total = devstate_fake_op_count(devstate_fake_of(src)) - open_ops;
	devstate_device_free(src);
	ck_assert_uint_gt(total, 20);

	for (n = 1; n <= total; n++) {
		struct tu_sink sk = { 0 };
		struct devstate_fake *f;

		src = tu_open_dev(uri);
		f = devstate_fake_of(src);
		if (shorts)
			devstate_fake_short_at(f, open_ops + n);
		else
			devstate_fake_fail_at(f, open_ops + n, errno_val);
		memset(bm, 0, sizeof(bm));
		rc = run_save(src, NULL, tu_sink_write, &sk, &plan, bm, err,
			      sizeof(err));
		if (shorts) {
			/* short transfers are retried: same stream */
			ck_assert_msg(rc == 0, "short op %llu: %s",
				      (unsigned long long)n, err);
			ck_assert_uint_eq(sk.len, ref.len);
			ck_assert(memcmp(sk.buf, ref.buf, ref.len) == 0);
		} else {
			ck_assert_msg(rc < 0, "save op %llu of %llu failed but the save succeeded",
				      (unsigned long long)n,
				      (unsigned long long)total);
			ck_assert_msg(names_step(err, save_steps),
				      "op %llu: error names no step: %s",
				      (unsigned long long)n, err);
			ck_assert_msg(devstate_fake_state(f) == DEVSTATE_STATE_RUNNING,
				      "op %llu: source left in state %u (%s)",
				      (unsigned long long)n,
				      devstate_fake_state(f), err);
		}
		free(sk.buf);
		devstate_device_free(src);
	}
	*nsave += total;

	/* load: count, then fail each operation */
	snprintf(uri, sizeof(uri), SWEEP_DST, version, extra);
	dst = tu_open_dev(uri);
	open_ops = devstate_fake_op_count(devstate_fake_of(dst));
	rc = tu_run_load(dst, ref.buf, ref.len, 0, 0, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	total = devstate_fake_op_count(devstate_fake_of(dst)) - open_ops;
	devstate_device_free(dst);
	ck_assert_uint_gt(total, 10);
	for (n = 1; n <= total; n++) {
		struct devstate_fake *f;

		dst = tu_open_dev(uri);
		f = devstate_fake_of(dst);
		if (shorts)
			devstate_fake_short_at(f, open_ops + n);
		else
			devstate_fake_fail_at(f, open_ops + n, errno_val);
		rc = tu_run_load(dst, ref.buf, ref.len, 0, n, err, sizeof(err));
		if (shorts) {
			ck_assert_msg(rc == 0, "short op %llu: %s",
				      (unsigned long long)n, err);
			ck_assert_uint_eq(devstate_fake_state(f),
					  DEVSTATE_STATE_RUNNING);
		} else {
			ck_assert_msg(rc < 0, "load op %llu failed but the load succeeded",
				      (unsigned long long)n);
			ck_assert_msg(names_step(err, load_steps),
				      "op %llu: error names no step: %s",
				      (unsigned long long)n, err);
			if (n == 1) {
				/* the STOP write itself failed: nothing was
				 * loaded and the device still runs */
				ck_assert_uint_eq(devstate_fake_batches_loaded(f), 0);
				ck_assert_uint_eq(devstate_fake_state(f),
						  DEVSTATE_STATE_RUNNING);
			} else {
				ck_assert_msg(devstate_fake_state(f) ==
						      DEVSTATE_STATE_STOP,
					      "op %llu: destination left in state %u",
					      (unsigned long long)n,
					      devstate_fake_state(f));
				ck_assert_ptr_nonnull(strstr(err, "device left in state stop"));
			}
		}
		devstate_device_free(dst);
	}
	*nload += total;
	free(ref.buf);
}

START_TEST(test_fault_sweep)
{
	static const struct {
		unsigned version;
		const char *extra;
		int err;
	} cases[] = {
		{ 2, "", EIO },
		{ 1, "", EINVAL },
		{ 2, ",mmap=no", EBUSY },
		{ 1, ",mmap=no", EIO },
	};
	uint64_t nsave = 0, nload = 0;

	sweep(cases[_i].version, cases[_i].extra, cases[_i].err, 0, &nsave,
	      &nload);
	fprintf(stderr, "fault sweep v%u%s errno %d: %llu save ops, %llu load ops failed one by one, all recovered\n",
		cases[_i].version, cases[_i].extra, cases[_i].err,
		(unsigned long long)nsave, (unsigned long long)nload);
}
END_TEST

START_TEST(test_short_sweep)
{
	uint64_t nsave = 0, nload = 0;

	sweep(_i ? 1 : 2, ",mmap=no", 0, 1, &nsave, &nload);
	fprintf(stderr, "short sweep: %llu save ops, %llu load ops made short, all succeeded\n",
		(unsigned long long)nsave, (unsigned long long)nload);
}
END_TEST

/* ------------------------------------------------------------------ */
/* corruption and truncation */

static void small_stream(struct tu_sink *sk, enum devstate_codec codec)
{
	struct devstate_save_opts opts = { .codec = codec, .record_bitmaps = 1 };
	struct save_plan plan = { .passes = 1, .ram_pages = 256 };
	struct devstate_device *src;
	uint64_t bm[4] = { 0 };
	char err[512];

	src = tu_open_dev("fake:memory=12K,chunk=8K,config=700,bitmap=8,sysmem=1M,seed=9,workload=1");
	ck_assert_int_eq(run_save(src, &opts, tu_sink_write, sk, &plan, bm, err,
				  sizeof(err)), 0);
	devstate_device_free(src);
}

START_TEST(test_corruption_every_byte)
{
	struct tu_sink sk = { 0 };
	char err[512];
	size_t i;
	uint8_t *copy;
	unsigned long fails = 0;

	small_stream(&sk, _i ? DEVSTATE_CODEC_ZSTD : DEVSTATE_CODEC_RAW);
	copy = malloc(sk.len);
	ck_assert_ptr_nonnull(copy);
	for (i = 0; i < sk.len; i++) {
		struct devstate_device *dst;
		int rc;

		memcpy(copy, sk.buf, sk.len);
		copy[i] ^= (uint8_t)(1u << (i % 8));
		dst = tu_open_dev("fake:memory=12K,chunk=8K,config=700,bitmap=8,sysmem=1M,zero=yes");
		rc = tu_run_load(dst, copy, sk.len, 0, 0, err, sizeof(err));
		ck_assert_msg(rc < 0, "flipped byte %zu of %zu was accepted", i,
			      sk.len);
		ck_assert_msg(devstate_fake_state(devstate_fake_of(dst)) !=
				      DEVSTATE_STATE_RUNNING,
			      "byte %zu: destination left running", i);
		fails++;
		devstate_device_free(dst);
	}
	ck_assert_uint_eq(fails, sk.len);
	free(copy);
	free(sk.buf);
}
END_TEST

START_TEST(test_truncation_every_offset)
{
	struct tu_sink sk = { 0 };
	char err[512];
	size_t i;

	/* raw: memory sections taken in pieces (zero-copy load) */
	small_stream(&sk, _i ? DEVSTATE_CODEC_RAW : DEVSTATE_CODEC_DEFLATE);
	for (i = 0; i < sk.len; i++) {
		struct devstate_device *dst;
		int rc;

		dst = tu_open_dev(_i == 2 ? "fake:memory=12K,chunk=8K,config=700,bitmap=8,sysmem=1M,zero=yes,mmap=no" :
				  "fake:memory=12K,chunk=8K,config=700,bitmap=8,sysmem=1M,zero=yes");
		rc = tu_run_load(dst, sk.buf, i, 0, 0, err, sizeof(err));
		ck_assert_msg(rc < 0, "truncation at %zu accepted", i);
		ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(dst)),
				  DEVSTATE_STATE_STOP);
		devstate_device_free(dst);
	}
	free(sk.buf);
}
END_TEST

/*
 * Zero-copy load: a raw MEMORY section's payload goes from the caller's
 * buffer straight into the data region, and its chunk is committed
 * (pos, SET_BUFFER) only after the section's CRC verified.  Flip one
 * payload byte of each MEMORY section in turn, feed the stream one byte
 * at a time (every piece is one byte): the load must fail, leave the
 * device STOPPED, commit no chunk that the bad section touches, and
 * leave the device's memory as it was.  Loop: mmap or read/write, and a
 * destination chunk equal to the source's (sections taken in pieces),
 * twice it (two sections per chunk, in pieces) or half (sections span
 * chunks: taken whole).
 */
static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

START_TEST(test_zero_copy_refuses_bad_piece)
{
	static const char *const dst_keys[] = {
		"mmap=yes,chunk=16K", "mmap=no,chunk=16K",
		"mmap=yes,chunk=32K", "mmap=no,chunk=8K",
	};
	struct save_plan plan = { 0 };
	struct devstate_save_opts opts = { .codec = DEVSTATE_CODEC_RAW };
	struct devstate_device *src;
	struct tu_sink sk = { 0 };
	uint64_t dchunk = _i == 2 ? 32768 : _i == 3 ? 8192 : 16384;
	unsigned tried = 0;
	char err[512], uri[160];
	size_t off;

	src = tu_open_dev("fake:caps=device-memory,memory=48K,chunk=16K,config=700,seed=4");
	ck_assert_int_eq(run_save(src, &opts, tu_sink_write, &sk, &plan, NULL,
				  err, sizeof(err)), 0);
	devstate_device_free(src);
	snprintf(uri, sizeof(uri),
		 "fake:caps=device-memory,memory=48K,config=700,seed=11,%s",
		 dst_keys[_i]);

	/* walk the sections: header length at offset 10 */
	for (off = (size_t)(sk.buf[10] | sk.buf[11] << 8); off < sk.len;) {
		uint32_t type = (uint32_t)le64(sk.buf + off) & 0xffffffffu;
		uint64_t raw = le64(sk.buf + off + 8);
		uint64_t stored = le64(sk.buf + off + 16);
		size_t meta = type == 1 ? 24 : type == 2 ? 0 : 16;
		struct devstate_fake_counters c0, c1;
		struct devstate_device *dst;
		struct devstate_load *l = NULL;
		uint32_t before, after;
		uint64_t pos;
		uint8_t *copy;
		size_t i;
		int rc;

		if (type != 1 || sk.buf[off + 4] != 0 || !raw) {
			off += 24 + meta + (size_t)stored + 4;
			continue;
		}
		pos = le64(sk.buf + off + 40);
		copy = malloc(sk.len);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, sk.buf, sk.len);
		copy[off + 24 + meta + (size_t)raw / 2] ^= 0x20;

		dst = tu_open_dev(uri);
		ck_assert_int_eq(devstate_device_digest(dst, &before), 0);
		devstate_fake_counters(devstate_fake_of(dst), &c0);
		ck_assert_int_eq(devstate_load_new(&l, dst), 0);
		rc = devstate_load_begin(l);
		for (i = 0; rc == 0 && i < sk.len; i++)
			rc = devstate_load_feed(l, copy + i, 1);
		ck_assert_msg(rc == -EBADMSG, "section at %zu: rc %d (%s)", off,
			      rc, devstate_load_error(l));
		ck_assert_ptr_nonnull(strstr(devstate_load_error(l),
					     "CRC mismatch"));
		ck_assert_ptr_nonnull(strstr(devstate_load_error(l),
					     "device left in state stop"));
		ck_assert_int_eq(devstate_load_finish(l), -EIO);
		devstate_load_free(l);
		ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(dst)),
				  DEVSTATE_STATE_STOP);
		/* only the chunks wholly before the bad section went in */
		devstate_fake_counters(devstate_fake_of(dst), &c1);
		ck_assert_uint_eq(c1.chunks_set - c0.chunks_set, pos / dchunk);
		ck_assert_int_eq(devstate_device_digest(dst, &after), 0);
		ck_assert_uint_eq(after, before);
		devstate_device_free(dst);
		free(copy);
		tried++;
		off += 24 + meta + (size_t)stored + 4;
	}
	ck_assert_uint_eq(tried, 4);	/* 3 x 16K and the 16-byte tail */
	free(sk.buf);
}
END_TEST

/* The same stream fed whole, 1 byte at a time and in random pieces loads
 * the same contents through both access paths and all three chunk
 * geometries (in pieces, several sections per chunk, spanning). */
START_TEST(test_zero_copy_round_trip)
{
	static const char *const dst_keys[] = {
		"mmap=yes,chunk=16K", "mmap=no,chunk=16K",
		"mmap=yes,chunk=32K", "mmap=no,chunk=32K",
		"mmap=yes,chunk=8K", "mmap=no,chunk=12K",
	};
	struct save_plan plan = { .passes = 2, .extra_pages = 3 };
	struct devstate_save_opts opts = { .codec = DEVSTATE_CODEC_RAW };
	struct devstate_device *src;
	struct tu_sink sk = { 0 };
	char err[512], uri[160];
	uint64_t seed;

	src = tu_open_dev("fake:caps=device-memory,memory=48K,chunk=16K,config=700,seed=4");
	ck_assert_int_eq(run_save(src, &opts, tu_sink_write, &sk, &plan, NULL,
				  err, sizeof(err)), 0);
	snprintf(uri, sizeof(uri),
		 "fake:caps=device-memory,memory=48K,config=700,zero=yes,%s",
		 dst_keys[_i]);
	for (seed = 0; seed < 3; seed++) {
		struct devstate_device *dst = tu_open_dev(uri);
		struct devstate_load *l = NULL;
		size_t i;
		int rc;

		if (seed == 1) {
			ck_assert_int_eq(devstate_load_new(&l, dst), 0);
			rc = devstate_load_begin(l);
			for (i = 0; rc == 0 && i < sk.len; i++)
				rc = devstate_load_feed(l, sk.buf + i, 1);
			if (rc == 0)
				rc = devstate_load_finish(l);
			ck_assert_msg(rc == 0, "%s", devstate_load_error(l));
			devstate_load_free(l);
		} else {
			rc = tu_run_load(dst, sk.buf, sk.len, 0, seed ? 77 : 0,
					 err, sizeof(err));
			ck_assert_msg(rc == 0, "%s", err);
		}
		assert_same_contents(src, dst);
		devstate_device_free(dst);
	}
	devstate_device_free(src);
	free(sk.buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* atomic snapshot files */

struct failing_file {
	struct devstate_file *f;
	size_t written, fail_after;
};

static int failing_write(void *opaque, const void *buf, size_t len)
{
	struct failing_file *ff = opaque;

	if (ff->written + len > ff->fail_after)
		return -EIO;
	ff->written += len;
	return devstate_file_write(ff->f, buf, len);
}

static unsigned count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

START_TEST(test_atomic_snapshot)
{
	struct save_plan plan = { .passes = 2, .ram_pages = 256 };
	struct devstate_verify_report rep;
	struct devstate_device *src;
	struct failing_file ff;
	char dir[] = "/tmp/devstate-test-XXXXXX", path[64], err[512];
	uint64_t bm[4];
	size_t cut;
	int rc;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/snap", dir);

	/* a first, good snapshot */
	src = tu_open_dev("fake:memory=64K,config=1K,sysmem=1M,seed=2,workload=2");
	ck_assert_int_eq(devstate_file_create(&ff.f, path), 0);
	ff.written = 0;
	ff.fail_after = SIZE_MAX;
	memset(bm, 0, sizeof(bm));
	ck_assert_int_eq(run_save(src, NULL, failing_write, &ff, &plan, bm,
				  err, sizeof(err)), 0);
	ck_assert_int_eq(devstate_file_commit(ff.f), 0);
	devstate_file_free(ff.f);
	devstate_device_free(src);
	ck_assert_int_eq(devstate_verify_file(path, &rep, err, sizeof(err)), 0);

	/* saves that fail at many points leave it intact and no temp file */
	for (cut = 1; cut < ff.written; cut += ff.written / 23 + 1) {
		struct failing_file bad = { .fail_after = cut };
		struct devstate_verify_report rep2;

		src = tu_open_dev("fake:memory=64K,config=1K,sysmem=1M,seed=3,workload=2");
		ck_assert_int_eq(devstate_file_create(&bad.f, path), 0);
		memset(bm, 0, sizeof(bm));
		rc = run_save(src, NULL, failing_write, &bad, &plan, bm, err,
			      sizeof(err));
		ck_assert_int_lt(rc, 0);
		ck_assert_uint_eq(devstate_fake_state(devstate_fake_of(src)),
				  DEVSTATE_STATE_RUNNING);
		devstate_file_free(bad.f);	/* no commit */
		devstate_device_free(src);
		ck_assert_int_eq(devstate_verify_file(path, &rep2, err,
						      sizeof(err)), 0);
		ck_assert_uint_eq(rep2.stream_bytes, rep.stream_bytes);
		ck_assert_uint_eq(count_entries(dir), 1);
	}
	unlink(path);
	rmdir(dir);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc;

	tc = tcase_create("round-trip");
	tcase_add_loop_test(tc, test_round_trip, 0,
			    sizeof(rt_cases) / sizeof(rt_cases[0]));
	tcase_add_test(tc, test_dirty_baseline_window);
	tcase_add_test(tc, test_pending_reports_unread_batch);
	tcase_add_test(tc, test_call_order);
	tcase_add_test(tc, test_cancel_and_free_restore_running);
	tcase_add_test(tc, test_header_mismatch);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, test_fault_sweep, 0, 4);
	tcase_add_loop_test(tc, test_short_sweep, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("corruption");
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, test_corruption_every_byte, 0, 2);
	tcase_add_loop_test(tc, test_truncation_every_offset, 0, 3);
	tcase_add_test(tc, test_atomic_snapshot);
	tcase_add_loop_test(tc, test_zero_copy_refuses_bad_piece, 0, 4);
	tcase_add_loop_test(tc, test_zero_copy_round_trip, 0, 6);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(session_suite());
}

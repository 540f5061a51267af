/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A program that knows libdevstate only through pkg-config: built and run
 * by `make installcheck` against the installed tree.  It migrates a fake
 * device under a workload and checks that the destination matches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devstate.h>

struct pipe {
	struct devstate_load *load;
};

static int to_load(void *opaque, const void *buf, size_t len)
{
	return devstate_load_feed(((struct pipe *)opaque)->load, buf, len);
}

#define CHECK(call, what) do { int rc_ = (call); if (rc_ < 0) { \
	fprintf(stderr, "consumer: %s failed (%d): %s\n", #call, rc_, what); \
	return 1; } } while (0)

int main(void)
{
	struct devstate_device *src, *dst;
	struct devstate_save *s;
	struct devstate_load *l;
	struct pipe p;
	uint64_t bitmap[1024 / 64], pending;
	uint32_t a, b;
	char err[256];
	int i;

	memset(bitmap, 0, sizeof(bitmap));
	CHECK(devstate_device_open(&src, "fake:memory=1M,sysmem=4M,workload=8,seed=4",
				   0, err, sizeof(err)), err);
	CHECK(devstate_device_open(&dst, "fake:memory=1M,sysmem=4M,zero=yes",
				   0, err, sizeof(err)), err);
	CHECK(devstate_load_new(&l, dst), devstate_device_error(dst));
	CHECK(devstate_load_begin(l), devstate_load_error(l));
	p.load = l;
	CHECK(devstate_save_new(&s, src, NULL, to_load, &p),
	      devstate_device_error(src));
	CHECK(devstate_save_setup(s), devstate_save_error(s));
	for (i = 0; i < 3; i++) {
		CHECK(devstate_save_pending(s, &pending), devstate_save_error(s));
		CHECK(devstate_save_iterate(s), devstate_save_error(s));
		CHECK(devstate_save_log_sync(s, 0, 1024, bitmap),
		      devstate_save_error(s));
	}
	CHECK(devstate_save_stop(s), devstate_save_error(s));
	CHECK(devstate_save_log_sync(s, 0, 1024, bitmap), devstate_save_error(s));
	CHECK(devstate_save_complete(s), devstate_save_error(s));
	CHECK(devstate_save_cleanup(s), devstate_save_error(s));
	CHECK(devstate_load_finish(l), devstate_load_error(l));
	CHECK(devstate_device_digest(src, &a), "digest");
	CHECK(devstate_device_digest(dst, &b), "digest");
	if (a != b || devstate_device_state(dst) != DEVSTATE_STATE_RUNNING) {
		fprintf(stderr, "consumer: destination differs (0x%08x vs 0x%08x)\n",
			b, a);
		return 1;
	}
	if (devstate_bitmap_count(bitmap, 0, 1024) == 0) {
		fprintf(stderr, "consumer: no dirty page was reported\n");
		return 1;
	}
	devstate_save_free(s);
	devstate_load_free(l);
	devstate_device_free(src);
	devstate_device_free(dst);
	printf("consumer: libdevstate %s: migrated, digest 0x%08x, %llu dirty pages\n",
	       devstate_version(), a,
	       (unsigned long long)devstate_bitmap_count(bitmap, 0, 1024));
	return 0;
}

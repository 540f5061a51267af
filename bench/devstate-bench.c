/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * devstate-bench: how close libdevstate's data path is to the machine's
 * limits.  Every figure is set against a baseline measured in the same
 * process, just before or after it (memcpy, write(2), a popcount loop,
 * gzip -1, zstd -1), so that a noisy, shared machine does not mislead:
 * read the ratio column, not the absolute numbers.  See bench/README.
 *
 * Prints one table (or JSON with --json) and a last line
 * "targets: N met, M missed"; exits 0 either way (a measurement, not a
 * test).  --smoke runs every row on tiny sizes (make check).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devstate.h"
#include "libdevstate/stream.h"
#include "transports/fake.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

struct cfg {
	uint64_t total;		/* device memory for rows 1-3, 6 */
	uint64_t chunk;		/* DEVICE_MEMORY region length */
	uint64_t bm_bits;	/* row 4 bitmap */
	uint64_t stream;	/* row 5 data */
	uint64_t rss_total;	/* row 7 device memory */
	uint64_t mig_total;	/* row 8 device memory */
	int reps;
	unsigned only;		/* bit n: run row group n only (--only) */
	bool smoke, json;
	const char *dir;
	char cli[PATH_MAX];
};

enum verdict { NO_TARGET = -1, MISSED = 0, MET = 1 };

struct row {
	char id[8];
	char what[80];
	double value;
	char unit[12];
	char base[40];
	double base_value;	/* same unit as value; 0 = none */
	double ratio;		/* value relative to the baseline; 0 = none */
	char target[32];
	enum verdict verdict;
};

#define ROWS_MAX 48
static struct row rows[ROWS_MAX];
static unsigned nrows;

static struct row *add_row(const char *id, const char *what, double value,
			   const char *unit)
{
	struct row *r = &rows[nrows < ROWS_MAX - 1 ? nrows++ : nrows];

	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	snprintf(r->what, sizeof(r->what), "%s", what);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	r->value = value;
	r->verdict = NO_TARGET;
	return r;
}

static void row_base(struct row *r, const char *base, double base_value,
		     double ratio)
{
	snprintf(r->base, sizeof(r->base), "%s", base);
	r->base_value = base_value;
	r->ratio = ratio;
}

/* A target on the ratio (or, with absolute, on the value): at least min
 * (or, with at_most, at most max). */
static void row_target(struct row *r, const char *desc, bool met)
{
	snprintf(r->target, sizeof(r->target), "%s", desc);
	r->verdict = met ? MET : MISSED;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double gbps(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes / secs / 1e9 : 0;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "devstate-bench: %s: %s\n", what, why);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("malloc", strerror(ENOMEM));
	return p;
}

/* Allocate and touch every page, so that page faults are not measured. */
static uint8_t *xalloc_touched(size_t n)
{
	uint8_t *p = xmalloc(n);

	memset(p, 0x5a, n);
	return p;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Row 5 data: per 4 KiB page, half random, a quarter text-like, a
 * quarter zero. */
static void gen_mixed(uint8_t *p, uint64_t n)
{
	static const char *const words[] = {
		"the", "device", "state", "migration", "of", "a", "memory",
		"region", "chunk", "dirty", "bitmap", "page", "and", "to",
		"in", "is", "for", "stream", "config", "save", "load", "vfio",
		"guest", "host", "buffer", "\n"
	};
	const unsigned nw = sizeof(words) / sizeof(words[0]);
	uint64_t pg, i;

	for (pg = 0; pg < n / 4096; pg++) {
		uint8_t *q = p + pg * 4096;
		size_t o = 0, l, j;
		const char *w;

		switch (pg % 4) {
		case 0:
		case 1:
			for (i = 0; i < 4096; i += 8) {
				uint64_t v = rnd();

				memcpy(q + i, &v, 8);
			}
			break;
		case 2:
			while (o < 4096) {
				w = words[rnd() % nw];
				l = strlen(w);
				for (j = 0; j < l && o < 4096; j++)
					q[o++] = (uint8_t)w[j];
				if (o < 4096)
					q[o++] = ' ';
			}
			break;
		default:
			memset(q, 0, 4096);
			break;
		}
	}
}

/* ---------------------------------------------------------------- */
/* Sinks.                                                           */

/* A VMM's migration buffer: copies every byte it is handed, once. */
struct msink {
	uint8_t *buf;
	size_t cap, len;
};

static int msink_write(void *opaque, const void *buf, size_t len)
{
	struct msink *m = opaque;

	if (len > m->cap - m->len)
		return -ENOSPC;
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}

/* Counts only (markers of zero chunks). */
static int count_write(void *opaque, const void *buf, size_t len)
{
	(void)buf;
	*(uint64_t *)opaque += len;
	return 0;
}

static int fd_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fd_write(void *opaque, const void *buf, size_t len)
{
	return fd_write_all(*(int *)opaque, buf, len);
}

/* ---------------------------------------------------------------- */
/* Devices.                                                         */

static struct devstate_device *open_dev(const char *uri)
{
	struct devstate_device *dev = NULL;
	char err[256];
	int rc;

	rc = devstate_device_open(&dev, uri, 0, err, sizeof(err));
	if (rc < 0)
		die(uri, err);
	return dev;
}

static uint64_t fake_ops(struct devstate_device *dev)
{
	struct devstate_fake_counters c;

	devstate_fake_counters(devstate_fake_of(dev), &c);
	return c.ctl_reads + c.ctl_writes + c.data_reads + c.data_writes +
	       c.maps;
}

static void fake_counts(struct devstate_device *dev, uint64_t *ops,
			uint64_t *got, uint64_t *set)
{
	struct devstate_fake_counters c;

	devstate_fake_counters(devstate_fake_of(dev), &c);
	*ops = c.ctl_reads + c.ctl_writes + c.data_reads + c.data_writes +
	       c.maps;
	*got = c.chunks_got;
	*set = c.chunks_set;
}

/* Seconds the fake spent on its own side of the data path so far
 * (filling the region on GET_BUFFER, taking it in on SET_BUFFER). */
static double fake_dev_time(struct devstate_device *dev)
{
	struct devstate_fake_counters c;

	devstate_fake_counters(devstate_fake_of(dev), &c);
	return (double)(c.fill_ns + c.drain_ns) / 1e9;
}

/* Rows "library alone": the same run without the fake's own time. */
static void add_lib_rows(const char *id, const char *what, uint64_t bytes,
			 double tdev, double tlib, double tcopy)
{
	char w[80];
	struct row *row;

	snprintf(w, sizeof(w), "%s: the fake's own copy", what);
	row = add_row(id, w, gbps(bytes, tdev), "GB/s");
	row_base(row, "memcpy", gbps(bytes, tcopy), tcopy / tdev);
	snprintf(w, sizeof(w), "%s: library alone", what);
	row = add_row(id, w, gbps(bytes, tlib), "GB/s");
	row_base(row, "memcpy", gbps(bytes, tcopy), tcopy / tlib);
}

/* One whole save (setup, complete, cleanup); the seconds it took. */
static double save_once(struct devstate_device *dev, devstate_write_fn w,
			void *opaque, enum devstate_codec codec)
{
	struct devstate_save_opts o = { .codec = codec };
	struct devstate_save *s = NULL;
	double t0 = now(), t;
	int rc;

	rc = devstate_save_new(&s, dev, &o, w, opaque);
	if (rc < 0)
		die("save", strerror(-rc));
	rc = devstate_save_setup(s);
	if (rc == 0)
		rc = devstate_save_complete(s);
	if (rc == 0)
		rc = devstate_save_cleanup(s);
	t = now() - t0;
	if (rc < 0)
		die("save", devstate_save_error(s));
	devstate_save_free(s);
	return t;
}

static double load_once(struct devstate_device *dev, const uint8_t *stream,
			size_t len)
{
	struct devstate_load *l = NULL;
	double t0 = now(), t;
	int rc;

	rc = devstate_load_new(&l, dev);
	if (rc < 0)
		die("load", strerror(-rc));
	rc = devstate_load_begin(l);
	if (rc == 0)
		rc = devstate_load_feed(l, stream, len);
	if (rc == 0)
		rc = devstate_load_finish(l);
	t = now() - t0;
	if (rc < 0)
		die("load", devstate_load_error(l));
	devstate_load_free(l);
	return t;
}

static double memcpy_time(void *dst, const void *src, size_t n)
{
	double t0 = now();

	memcpy(dst, src, n);
	/* keep the copy */
	__asm__ __volatile__("" : : "r"(dst) : "memory");
	return now() - t0;
}

static double min2(double a, double b)
{
	return a < b ? a : b;
}

/* ---------------------------------------------------------------- */
/* Rows 1, 2, 3, 6: save and load through the fake device.         */

static void bench_device(const struct cfg *c)
{
	const char *mode[2] = { "yes", "no" };
	char uri[256];
	struct msink m;
	uint64_t ops0 = 0, ops1 = 0, got0 = 0, got1 = 1, set0 = 0, set1 = 1;
	uint64_t nchunks;
	double tsave, tload, tcopy, tcopy2, r, d0, t;
	double sdev, slib, ldev, llib;
	uint64_t sops = 0, schunks = 1, lops = 0, lchunks = 1, hops, hchunks;
	struct devstate_device *half;
	char what[80];
	struct row *row;
	int k, i;

	m.cap = (size_t)(c->total + c->total / 16 + MIB);
	m.buf = xalloc_touched(m.cap);
	nchunks = (c->total + 16 + c->chunk - 1) / c->chunk;
	for (k = 0; k < 2; k++) {
		struct devstate_device *src, *dst;
		const uint8_t *mem;
		uint8_t *dmem;
		size_t mlen, dlen;

		snprintf(uri, sizeof(uri),
			 "fake:caps=device-memory,memory=%llu,chunk=%llu,config=4K,mmap=%s,seed=3",
			 (unsigned long long)c->total,
			 (unsigned long long)c->chunk, mode[k]);
		src = open_dev(uri);
		mem = devstate_fake_memory(devstate_fake_of(src), &mlen);
		snprintf(uri, sizeof(uri),
			 "fake:caps=device-memory,memory=%llu,chunk=%llu,config=4K,mmap=%s,zero=yes",
			 (unsigned long long)c->total,
			 (unsigned long long)c->chunk, mode[k]);
		dst = open_dev(uri);
		dmem = devstate_fake_memory_mut(devstate_fake_of(dst), &dlen);
		memset(dmem, 0, dlen);	/* fault it in */

		tsave = tcopy = tload = tcopy2 = 1e30;
		sdev = slib = ldev = llib = 1e30;
		for (i = 0; i < c->reps; i++) {
			tcopy = min2(tcopy, memcpy_time(m.buf, mem, mlen));
			m.len = 0;
			fake_counts(src, &ops0, &got0, &set0);
			d0 = fake_dev_time(src);
			t = save_once(src, msink_write, &m, DEVSTATE_CODEC_RAW);
			d0 = fake_dev_time(src) - d0;
			tsave = min2(tsave, t);
			sdev = min2(sdev, d0);
			slib = min2(slib, t - d0);
			fake_counts(src, &ops1, &got1, &set1);
		}
		sops = ops1 - ops0;
		schunks = got1 - got0;
		r = tcopy / tsave;
		row = add_row(k ? "2" : "1",
			      k ? "save, data region read/write, raw, to memory" :
				  "save, data region mmapped, raw, to memory",
			      gbps(c->total, tsave), "GB/s");
		row_base(row, "memcpy", gbps(c->total, tcopy), r);
		row_target(row, k ? ">= 0.40" : ">= 0.80", r >= (k ? 0.4 : 0.8));
		add_lib_rows(k ? "2" : "1", k ? "save, r/w" : "save, mmapped",
			     c->total, sdev, slib, tcopy);

		for (i = 0; i < c->reps; i++) {
			dmem = devstate_fake_memory_mut(devstate_fake_of(dst),
							&dlen);
			tcopy2 = min2(tcopy2, memcpy_time(dmem, mem, mlen));
			fake_counts(dst, &ops0, &got0, &set0);
			d0 = fake_dev_time(dst);
			t = load_once(dst, m.buf, m.len);
			d0 = fake_dev_time(dst) - d0;
			tload = min2(tload, t);
			ldev = min2(ldev, d0);
			llib = min2(llib, t - d0);
			fake_counts(dst, &ops1, &got1, &set1);
		}
		lops = ops1 - ops0;
		lchunks = set1 - set0;
		r = tcopy2 / tload;
		row = add_row("3", k ? "load, data region read/write, raw, from memory" :
				       "load, data region mmapped, raw, from memory",
			      gbps(c->total, tload), "GB/s");
		row_base(row, "memcpy", gbps(c->total, tcopy2), r);
		row_target(row, k ? ">= 0.40" : ">= 0.80", r >= (k ? 0.4 : 0.8));
		add_lib_rows("3", k ? "load, r/w" : "load, mmapped", c->total,
			     ldev, llib, tcopy2);
		/* the fake may swap in a new buffer on load */
		dmem = devstate_fake_memory_mut(devstate_fake_of(dst), &dlen);
		if (memcmp(mem, dmem, mlen))
			die("load", "destination memory differs from the source");

		/*
		 * Ops per chunk without the fixed cost of a session (state
		 * changes, freezes, config): the difference to a save and a
		 * load of a device half as large, per chunk of difference.
		 */
		snprintf(uri, sizeof(uri),
			 "fake:caps=device-memory,memory=%llu,chunk=%llu,config=4K,mmap=%s,zero=yes",
			 (unsigned long long)(c->total / 2),
			 (unsigned long long)c->chunk, mode[k]);
		half = open_dev(uri);
		m.len = 0;
		fake_counts(half, &ops0, &got0, &set0);
		save_once(half, msink_write, &m, DEVSTATE_CODEC_RAW);
		fake_counts(half, &ops1, &got1, &set1);
		hops = ops1 - ops0;
		hchunks = got1 - got0;
		fake_counts(dst, &ops0, &got0, &set0);
		load_once(dst, m.buf, m.len);
		fake_counts(dst, &ops1, &got1, &set1);
		devstate_device_free(half);
		snprintf(what, sizeof(what),
			 "transport ops per chunk, save (%s; %.2f with setup)",
			 k ? "r/w" : "mmap", (double)sops / (double)schunks);
		r = (double)(sops - hops) / (double)(schunks - hchunks);
		row = add_row("6", what, r, "ops");
		row_target(row, "<= 3", r <= 3.0);
		snprintf(what, sizeof(what),
			 "transport ops per chunk, load (%s; %.2f with setup)",
			 k ? "r/w" : "mmap", (double)lops / (double)lchunks);
		r = (double)(lops - (ops1 - ops0)) /
		    (double)(lchunks - (set1 - set0));
		row = add_row("6", what, r, "ops");
		row_target(row, "<= 3", r <= 3.0);
		(void)nchunks;
		devstate_device_free(src);
		devstate_device_free(dst);
	}
	free(m.buf);
}

/* Row 6, last part: a whole live migration in one process. */
struct feed_ctx {
	struct devstate_load *l;
};

static int feed_write(void *opaque, const void *buf, size_t len)
{
	struct feed_ctx *f = opaque;

	return devstate_load_feed(f->l, buf, len);
}

static void bench_migration_ops(const struct cfg *c)
{
	struct devstate_device *src, *dst;
	struct devstate_save *s = NULL;
	struct feed_ctx fc = { NULL };
	uint64_t sops, sgot, sset, dops, dgot, dset, pending, bm_words;
	uint64_t *bitmap;
	struct devstate_save_stats st;
	double t_stop = 0, stopped, tc;
	uint8_t *a, *b;
	char uri[256], what[80];
	struct row *row;
	int pass, rc;

	snprintf(uri, sizeof(uri),
		 "fake:memory=%llu,chunk=%llu,config=4K,workload=64,seed=5,sysmem=1G",
		 (unsigned long long)c->total, (unsigned long long)c->chunk);
	src = open_dev(uri);
	snprintf(uri, sizeof(uri),
		 "fake:memory=%llu,chunk=%llu,config=4K,zero=yes,sysmem=1G",
		 (unsigned long long)c->total, (unsigned long long)c->chunk);
	dst = open_dev(uri);
	bm_words = (1ull << 30) / 4096 / 64;
	bitmap = calloc(bm_words, 8);
	if (!bitmap)
		die("migration", strerror(ENOMEM));
	rc = devstate_load_new(&fc.l, dst);
	if (rc == 0)
		rc = devstate_load_begin(fc.l);
	if (rc == 0)
		rc = devstate_save_new(&s, src, NULL, feed_write, &fc);
	if (rc == 0)
		rc = devstate_save_setup(s);
	for (pass = 0; rc == 0 && pass < 4; pass++) {
		rc = devstate_save_pending(s, &pending);
		if (rc == 0)
			rc = devstate_save_iterate(s);
		if (rc == 0)
			rc = devstate_save_log_sync(s, 0, bm_words * 64, bitmap);
	}
	t_stop = now();
	if (rc == 0)
		rc = devstate_save_stop(s);
	if (rc == 0)
		rc = devstate_save_log_sync(s, 0, bm_words * 64, bitmap);
	if (rc == 0)
		rc = devstate_save_complete(s);
	if (rc == 0)
		rc = devstate_save_cleanup(s);
	if (rc == 0)
		rc = devstate_load_finish(fc.l);
	stopped = now() - t_stop;
	if (rc < 0)
		die("migration", s ? devstate_save_error(s) :
			devstate_load_error(fc.l));
	fake_counts(src, &sops, &sgot, &sset);
	fake_counts(dst, &dops, &dgot, &dset);
	/* everything: state changes, freezes, dirty-bitmap queries of 1 GiB
	 * of system memory per log-sync (8 slices of a 4 KiB region) */
	row = add_row("6", "ops per chunk, whole migration, source (all ops)",
		      (double)sops / (double)sgot, "ops");
	row = add_row("6", "ops per chunk, whole migration, dest. (all ops)",
		      (double)dops / (double)dset, "ops");

	/* the same migration's stop window, library and fake only: stop,
	 * final log-sync, complete, cleanup, destination finish */
	devstate_save_get_stats(s, &st);
	a = xalloc_touched((size_t)st.stop_copy_bytes + 1);
	b = xalloc_touched((size_t)st.stop_copy_bytes + 1);
	tc = memcpy_time(b, a, (size_t)st.stop_copy_bytes + 1);
	tc = min2(tc, memcpy_time(b, a, (size_t)st.stop_copy_bytes + 1));
	free(a);
	free(b);
	snprintf(what, sizeof(what),
		 "in-process migration %llu MiB, stopped for (%llu KiB)",
		 (unsigned long long)(c->total / MIB),
		 (unsigned long long)(st.stop_copy_bytes >> 10));
	row = add_row("8", what, stopped * 1e3, "ms");
	row_base(row, "memcpy of those bytes", tc * 1e3,
		 stopped > 0 ? tc / stopped : 0);
	devstate_save_free(s);
	devstate_load_free(fc.l);
	devstate_device_free(src);
	devstate_device_free(dst);
	free(bitmap);
	(void)fake_ops;
}

/* ---------------------------------------------------------------- */
/* Row 4: the bitmap slicer.                                        */

static uint64_t popcount_loop(const uint64_t *w, uint64_t n)
{
	uint64_t i, c = 0;

	for (i = 0; i < n; i++)
		c += (uint64_t)__builtin_popcountll(w[i]);
	return c;
}

/* Baseline for run iteration: a bit-by-bit scan. */
static uint64_t runs_naive(const uint64_t *w, uint64_t nbits)
{
	uint64_t i, runs = 0;
	bool in = false, b;

	for (i = 0; i < nbits; i++) {
		b = (w[i / 64] >> (i % 64)) & 1;
		if (b && !in)
			runs++;
		in = b;
	}
	return runs;
}

static uint64_t runs_lib(const uint64_t *w, uint64_t nbits)
{
	uint64_t from = 0, start, len, runs = 0;

	while (devstate_bitmap_next_run(w, nbits, from, &start, &len)) {
		runs++;
		from = start + len;
	}
	return runs;
}

static void bench_bitmap(const struct cfg *c)
{
	uint64_t nbits = c->bm_bits, nw = nbits / 64, i, n1 = 0, n2 = 0;
	uint64_t *src = xmalloc((nw + 2) * 8), *dst = xmalloc((nw + 2) * 8);
	double tc, tl, t0, r;
	const double dens[2] = { 0.001, 0.10 };
	struct row *row;
	char what[80];
	int k, rep;

	for (i = 0; i < nw; i++)
		src[i] = rnd();
	memset(dst, 0, (nw + 2) * 8);
	for (k = 0; k < 2; k++) {
		uint64_t off = k ? 13 : 64;

		tc = tl = 1e30;
		for (rep = 0; rep < c->reps * 2; rep++) {
			tc = min2(tc, memcpy_time(dst, src, nw * 8));
			t0 = now();
			devstate_bitmap_or(dst, off, src, nbits);
			tl = min2(tl, now() - t0);
		}
		r = tc / tl;
		snprintf(what, sizeof(what),
			 "bitmap OR-merge, %llu MiB, %s bit offset",
			 (unsigned long long)(nw * 8 / MIB), k ? "non-aligned" : "64-aligned");
		row = add_row("4", what, gbps(nw * 8, tl), "GB/s");
		row_base(row, "memcpy", gbps(nw * 8, tc), r);
		row_target(row, k ? ">= 0.50" : ">= 0.80", r >= (k ? 0.5 : 0.8));
	}
	tc = tl = 1e30;
	for (rep = 0; rep < c->reps * 2; rep++) {
		t0 = now();
		n1 = popcount_loop(src, nw);
		tc = min2(tc, now() - t0);
		t0 = now();
		n2 = devstate_bitmap_count(src, 0, nbits);
		tl = min2(tl, now() - t0);
	}
	if (n1 != n2)
		die("bitmap count", "differs from the popcount loop");
	r = tc / tl;
	row = add_row("4", "bitmap dirty count", gbps(nw * 8, tl), "GB/s");
	row_base(row, "popcount loop", gbps(nw * 8, tc), r);
	row_target(row, ">= 0.90", r >= 0.9);

	for (k = 0; k < 2; k++) {
		uint64_t thr = (uint64_t)(dens[k] * 4294967296.0);

		memset(src, 0, nw * 8);
		for (i = 0; i < nbits; i++)
			if ((rnd() & 0xffffffffull) < thr)
				src[i / 64] |= 1ull << (i % 64);
		t0 = now();
		n1 = runs_naive(src, nbits);
		tc = now() - t0;
		tl = 1e30;
		for (rep = 0; rep < c->reps; rep++) {
			t0 = now();
			n2 = runs_lib(src, nbits);
			tl = min2(tl, now() - t0);
		}
		if (n1 != n2)
			die("bitmap runs", "differ from the bit-by-bit scan");
		snprintf(what, sizeof(what), "bitmap dirty runs, %.1f%% dirty",
			 dens[k] * 100);
		row = add_row("4", what, (double)n2 / tl / 1e6, "Mruns/s");
		row_base(row, "bit-by-bit scan", (double)n1 / tc / 1e6, tc / tl);
	}
	free(src);
	free(dst);
}

/* ---------------------------------------------------------------- */
/* Row 5: the stream / snapshot writer.                             */

/* Encode data as MEMORY sections of c->chunk bytes; seconds. */
static double encode(const struct cfg *c, const uint8_t *data, uint64_t n,
		     enum devstate_codec codec, devstate_write_fn w,
		     void *opaque, uint64_t *bytes)
{
	struct devstate_stream_header h;
	struct devstate_enc *e = NULL;
	uint64_t pos;
	double t0, t;
	int rc;

	memset(&h, 0, sizeof(h));
	h.proto_version = 2;
	h.caps = DEVSTATE_CAP_DEVICE_MEMORY;
	h.region_len[DEVSTATE_REGION_CTL] = 80;
	h.region_len[DEVSTATE_REGION_CONFIG] = 4096;
	h.region_len[DEVSTATE_REGION_MEMORY] = c->chunk;
	snprintf(h.ident, sizeof(h.ident), "bench");
	t0 = now();
	rc = devstate_enc_new(&e, w, opaque, codec, 0);
	if (rc == 0)
		rc = devstate_enc_header(e, &h);
	for (pos = 0; rc == 0 && pos < n; pos += c->chunk)
		rc = devstate_enc_memory(e, 0, n, pos, data + pos,
					 (size_t)(n - pos < c->chunk ?
						  n - pos : c->chunk));
	if (rc == 0)
		rc = devstate_enc_end(e);
	t = now() - t0;
	if (rc < 0)
		die("encode", e ? devstate_enc_error(e) : strerror(-rc));
	*bytes = devstate_enc_bytes(e);
	devstate_enc_free(e);
	return t;
}

static int open_out(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		die(path, strerror(errno));
	return fd;
}

/* Before a timed file write, outside the timer: no dirty pages left
 * from the previous one (its writeback would compete) and no old file to
 * truncate. */
static void settle(const char *path)
{
	unlink(path);
	sync();
}

/* write(2) of n bytes in pieces of chunk; with_fsync: and fsync (both
 * inside the time). */
static double write_time(const char *path, const uint8_t *data, uint64_t n,
			 uint64_t chunk, bool with_fsync)
{
	int fd;
	uint64_t pos;
	double t0, t;

	settle(path);
	fd = open_out(path);
	t0 = now();
	for (pos = 0; pos < n; pos += chunk)
		if (fd_write_all(fd, data + pos, (size_t)(n - pos < chunk ?
							   n - pos : chunk)) < 0)
			die(path, strerror(errno));
	if (with_fsync && fsync(fd) < 0)
		die(path, strerror(errno));
	t = now() - t0;
	close(fd);
	return t;
}

static int file_sink(void *opaque, const void *buf, size_t len)
{
	return devstate_file_write(opaque, buf, len);
}

/* The raw stream of data into a snapshot file as devstate-cli save writes
 * one: devstate_file_create (a temporary file), devstate_file_write
 * (64 KiB gathering of small writes, large ones straight through),
 * devstate_file_commit (fsync, rename, fsync of the directory).  All of
 * it timed. */
static double snapshot_time(const struct cfg *c, const char *path,
			    const uint8_t *data, uint64_t n)
{
	struct devstate_file *f = NULL;
	uint64_t bytes;
	double t0, t;
	int rc;

	settle(path);
	t0 = now();
	rc = devstate_file_create(&f, path);
	if (rc < 0)
		die(path, strerror(-rc));
	encode(c, data, n, DEVSTATE_CODEC_RAW, file_sink, f, &bytes);
	rc = devstate_file_commit(f);
	t = now() - t0;
	if (rc < 0)
		die(path, strerror(-rc));
	devstate_file_free(f);
	return t;
}

/* Run a shell command; seconds, or -1 if it failed. */
static double run_time(const char *cmd)
{
	double t0 = now();
	int rc = system(cmd);

	return rc == 0 ? now() - t0 : -1;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void bench_stream(const struct cfg *c)
{
	uint64_t n = c->stream, bytes = 0;
	uint8_t *data = xmalloc(n), *zero, *dst;
	char pdata[PATH_MAX], pout[PATH_MAX], cmd[3 * PATH_MAX];
	double tw, te, t, tc, tz, r, gz_ratio = 0, gz_speed = 0;
	struct row *row;
	int fd, rep;
	uint32_t crc = 0;

	gen_mixed(data, n);
	snprintf(pdata, sizeof(pdata), "%s/devstate-bench-data.%d", c->dir,
		 (int)getpid());
	snprintf(pout, sizeof(pout), "%s/devstate-bench-out.%d", c->dir,
		 (int)getpid());

	/* raw stream to a file vs write(2) of the same bytes, both into
	 * the page cache (no fsync on either side) */
	tw = te = 1e30;
	for (rep = 0; rep < c->reps; rep++) {
		tw = min2(tw, write_time(pout, data, n, c->chunk, false));
		settle(pout);
		fd = open_out(pout);
		te = min2(te, encode(c, data, n, DEVSTATE_CODEC_RAW, fd_write,
				     &fd, &bytes));
		close(fd);
	}
	r = tw / te;
	row = add_row("5", "stream write, raw, to a file", gbps(n, te), "GB/s");
	row_base(row, "write(2)", gbps(n, tw), r);
	row_target(row, ">= 0.80", r >= 0.8);

	/* the same as a snapshot file, durable: vs write(2) + fsync */
	tw = te = 1e30;
	for (rep = 0; rep < c->reps; rep++) {
		tw = min2(tw, write_time(pout, data, n, c->chunk, true));
		te = min2(te, snapshot_time(c, pout, data, n));
	}
	r = tw / te;
	row = add_row("5", "snapshot file, raw, fsync + rename", gbps(n, te),
		      "GB/s");
	row_base(row, "write(2)+fsync", gbps(n, tw), r);
	settle(pout);
	/* gzip and zstd read the data from a file */
	fd = open_out(pdata);
	if (fd_write_all(fd, data, (size_t)n) < 0)
		die(pdata, strerror(errno));
	close(fd);

	/* deflate vs gzip -1 */
	snprintf(cmd, sizeof(cmd), "gzip -1 -c '%s' > '%s' 2>/dev/null", pdata,
		 pout);
	t = run_time(cmd);
	if (t > 0) {
		gz_speed = gbps(n, t);
		gz_ratio = (double)file_size(pout) / (double)n;
	}
	fd = open_out(pout);
	te = encode(c, data, n, DEVSTATE_CODEC_DEFLATE, fd_write, &fd, &bytes);
	close(fd);
	row = add_row("5", "stream write, deflate (zlib format)", gbps(n, te),
		      "GB/s");
	row_base(row, "gzip -1", gz_speed, gz_speed > 0 ? gbps(n, te) / gz_speed : 0);
	row_target(row, ">= 2.00", gz_speed > 0 && gbps(n, te) >= 2 * gz_speed);
	row = add_row("5", "stream deflate ratio (stored/raw)",
		      (double)bytes / (double)n, "");
	row_base(row, "gzip -1", gz_ratio,
		 gz_ratio > 0 ? ((double)bytes / (double)n) / gz_ratio : 0);
	row_target(row, "<= 1.05", gz_ratio > 0 &&
		   (double)bytes / (double)n <= 1.05 * gz_ratio);

	/* zstd vs zstd -1 */
	snprintf(cmd, sizeof(cmd), "zstd -q -1 -c '%s' > '%s' 2>/dev/null",
		 pdata, pout);
	t = run_time(cmd);
	gz_speed = gz_ratio = 0;
	if (t > 0) {
		gz_speed = gbps(n, t);
		gz_ratio = (double)file_size(pout) / (double)n;
	}
	fd = open_out(pout);
	te = encode(c, data, n, DEVSTATE_CODEC_ZSTD, fd_write, &fd, &bytes);
	close(fd);
	row = add_row("5", "stream write, zstd (fast codec)", gbps(n, te),
		      "GB/s");
	row_base(row, "zstd -1", gz_speed, gz_speed > 0 ? gbps(n, te) / gz_speed : 0);
	row_target(row, ">= 1 GB/s", gbps(n, te) >= 1.0);
	row = add_row("5", "stream zstd ratio (stored/raw)",
		      (double)bytes / (double)n, "");
	row_base(row, "zstd -1", gz_ratio,
		 gz_ratio > 0 ? ((double)bytes / (double)n) / gz_ratio : 0);
	unlink(pdata);
	unlink(pout);

	/* all-zero chunks vs memcpy of the same bytes */
	zero = xmalloc(n);
	memset(zero, 0, n);	/* real pages, not the shared zero page */
	dst = xalloc_touched(n);
	tc = tz = 1e30;
	for (rep = 0; rep < c->reps; rep++) {
		tc = min2(tc, memcpy_time(dst, zero, n));
		bytes = 0;
		tz = min2(tz, encode(c, zero, n, DEVSTATE_CODEC_RAW, count_write,
				     &bytes, &bytes));
	}
	r = tc / tz;
	row = add_row("5", "stream write, all-zero chunks", gbps(n, tz), "GB/s");
	row_base(row, "memcpy", gbps(n, tc), r);
	row_target(row, ">= 1.00", r >= 1.0);
	free(zero);

	/* the checksum alone vs memcpy */
	tc = t = 1e30;
	for (rep = 0; rep < c->reps; rep++) {
		double t0;

		tc = min2(tc, memcpy_time(dst, data, n));
		t0 = now();
		crc = devstate_crc32(crc, data, n);
		t = min2(t, now() - t0);
	}
	r = tc / t;
	row = add_row("5", "CRC-32 (devstate_crc32)", gbps(n, t), "GB/s");
	row_base(row, "memcpy", gbps(n, tc), r);
	row_target(row, ">= 1.00", r >= 1.0);
	free(dst);
	free(data);
	if (crc == 0x12345678)
		puts("");	/* keep the CRC */
}

/* ---------------------------------------------------------------- */
/* Row 7: peak resident memory added while saving to a file.        */

static long proc_status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kl = strlen(key);
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

static bool reset_hwm(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

static void bench_rss(const struct cfg *c)
{
	struct devstate_device *dev;
	char uri[256], path[PATH_MAX];
	long before, peak;
	double added, limit;
	struct row *row;
	int fd;

	snprintf(uri, sizeof(uri),
		 "fake:caps=device-memory,memory=%llu,chunk=%llu,config=4K,seed=9",
		 (unsigned long long)c->rss_total,
		 (unsigned long long)c->chunk);
	dev = open_dev(uri);
	snprintf(path, sizeof(path), "%s/devstate-bench-rss.%d", c->dir,
		 (int)getpid());
	fd = open_out(path);
	before = proc_status_kb("VmRSS");
	if (!reset_hwm())
		before = -1;
	save_once(dev, fd_write, &fd, DEVSTATE_CODEC_RAW);
	peak = proc_status_kb("VmHWM");
	close(fd);
	unlink(path);
	devstate_device_free(dev);
	limit = 3.0 * (double)c->chunk + 8.0 * MIB;
	if (before < 0 || peak < 0) {
		row = add_row("7", "peak RSS added by a save to a file (n/a)", 0,
			      "MiB");
		row_target(row, "<= 3 chunks+8M", false);
		return;
	}
	added = (double)(peak - before) * 1024.0;
	if (added < 0)
		added = 0;
	row = add_row("7", "peak RSS added, save of device memory to a file",
		      added / MIB, "MiB");
	row_base(row, "chunk (MiB)", (double)c->chunk / MIB,
		 added / (double)c->chunk);
	row_target(row, "<= 3 chunks+8M", added <= limit);
	snprintf(row->what, sizeof(row->what),
		 "peak RSS added, save of %llu MiB to a file",
		 (unsigned long long)(c->rss_total / MIB));
}

/* ---------------------------------------------------------------- */
/* Row 8: devstate-cli migrate with a workload.                     */

static double json_num(const char *s, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(s, pat);
	if (!p)
		return -1;
	p = strchr(p + strlen(pat), ':');
	return p ? strtod(p + 1, NULL) : -1;
}

static void bench_migrate(const struct cfg *c)
{
	char cmd[PATH_MAX + 512], *out;
	size_t cap = 1 << 20, len = 0, n;
	double stopped, bytes, tc;
	struct row *row;
	uint8_t *a, *b;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "'%s' migrate --json --no-progress 'fake:memory=%llu,workload=64,seed=7' 'fake:memory=%llu,zero=yes'",
		 c->cli, (unsigned long long)c->mig_total,
		 (unsigned long long)c->mig_total);
	out = xmalloc(cap + 1);
	p = popen(cmd, "r");
	if (p) {
		while ((n = fread(out + len, 1, cap - len, p)) > 0)
			len += n;
		if (pclose(p) != 0)
			len = 0;
	}
	out[len] = '\0';
	stopped = json_num(out, "stopped_seconds");
	bytes = json_num(out, "stop_copy_bytes");
	free(out);
	if (stopped < 0 || bytes < 0) {
		row = add_row("8", "devstate-cli migrate: failed or not found", 0,
			      "ms");
		return;
	}
	/* the physical limit: a memcpy of the bytes moved while stopped */
	a = xalloc_touched((size_t)bytes + 1);
	b = xalloc_touched((size_t)bytes + 1);
	tc = memcpy_time(b, a, (size_t)bytes + 1);
	tc = min2(tc, memcpy_time(b, a, (size_t)bytes + 1));
	free(a);
	free(b);
	row = add_row("8", "devstate-cli migrate, source stopped for",
		      stopped * 1e3, "ms");
	row_base(row, "memcpy of those bytes", tc * 1e3,
		 stopped > 0 ? tc / stopped : 0);
	row = add_row("8", "devstate-cli migrate, bytes in stop-and-copy",
		      bytes / 1024.0, "KiB");
	snprintf(row->what, sizeof(row->what),
		 "devstate-cli migrate %llu MiB, stop-and-copy bytes",
		 (unsigned long long)(c->mig_total / MIB));
}

/* ---------------------------------------------------------------- */
/* Output.                                                          */

static void print_table(void)
{
	unsigned i;

	printf("%-3s %-50s %10s %-7s %-22s %10s %7s  %-15s %s\n", "row",
	       "figure", "value", "unit", "baseline", "base", "ratio",
	       "target", "");
	for (i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		char ratio[16] = "", base[16] = "";

		if (r->base[0])
			snprintf(base, sizeof(base), "%.3f", r->base_value);
		if (r->ratio > 0)
			snprintf(ratio, sizeof(ratio), "%.2f", r->ratio);
		printf("%-3s %-50s %10.3f %-7s %-22s %10s %7s  %-15s %s\n",
		       r->id, r->what, r->value, r->unit, r->base, base, ratio,
		       r->target, r->verdict == MET ? "met" :
		       r->verdict == MISSED ? "MISSED" : "");
	}
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void print_json(unsigned met, unsigned missed)
{
	unsigned i;

	printf("{\"rows\":[");
	for (i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];

		printf("%s{\"row\":", i ? "," : "");
		json_str(r->id);
		printf(",\"figure\":");
		json_str(r->what);
		printf(",\"value\":%.6g,\"unit\":", r->value);
		json_str(r->unit);
		printf(",\"baseline\":");
		json_str(r->base);
		printf(",\"baseline_value\":%.6g,\"ratio\":%.6g,\"target\":",
		       r->base_value, r->ratio);
		json_str(r->target);
		printf(",\"met\":%s}", r->verdict == MET ? "true" :
		       r->verdict == MISSED ? "false" : "null");
	}
	printf("],\"met\":%u,\"missed\":%u}\n", met, missed);
}

static void find_cli(struct cfg *c)
{
	const char *env = getenv("DEVSTATE_CLI");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(c->cli, sizeof(c->cli), "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		/* libtool may run us from bench/.libs/ */
		slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		if (strlen(self) > 6 &&
		    !strcmp(self + strlen(self) - 6, "/.libs"))
			self[strlen(self) - 6] = '\0';
		snprintf(c->cli, sizeof(c->cli), "%.*s/../tools/devstate-cli",
			 PATH_MAX - 32, self);
		if (access(c->cli, X_OK) == 0)
			return;
	}
	snprintf(c->cli, sizeof(c->cli), "devstate-cli");
}

static const char usage[] =
	"Usage: devstate-bench [--smoke] [--json] [--dir DIR] [--reps N]\n"
	"                      [--only ROWS] [--mib N]\n"
	"--only 13: rows 1-3 and 6 only; --mib N: N MiB for rows 1-3, 5, 6, 8.\n"
	"Measure libdevstate's data path against baselines measured in the\n"
	"same run (see bench/README).  --dir: where the file rows write\n"
	"(default $TMPDIR or /tmp).  --smoke: every row on tiny sizes.\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "smoke", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "dir", required_argument, NULL, 'd' },
		{ "reps", required_argument, NULL, 'r' },
		{ "only", required_argument, NULL, 'o' },
		{ "mib", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cfg c = {
		.total = GIB, .chunk = MIB, .bm_bits = 32 * MIB * 8,
		.stream = GIB, .rss_total = 4 * GIB, .mig_total = GIB,
		.reps = 3,
	};
	unsigned i, met = 0, missed = 0;
	unsigned long long mib = 0;
	int ch, reps = 0;

	c.dir = getenv("TMPDIR");
	if (!c.dir || !*c.dir)
		c.dir = "/tmp";
	while ((ch = getopt_long(argc, argv, "sjd:r:o:m:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			c.smoke = true;
			break;
		case 'j':
			c.json = true;
			break;
		case 'd':
			c.dir = optarg;
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'm':
			mib = strtoull(optarg, NULL, 10);
			break;
		case 'o':
			for (; *optarg; optarg++)
				if (*optarg >= '1' && *optarg <= '8')
					c.only |= 1u << (*optarg - '0');
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (c.smoke) {
		c.total = 8 * MIB;
		c.bm_bits = 1 << 20;
		c.stream = 8 * MIB;
		c.rss_total = 16 * MIB;
		c.mig_total = 8 * MIB;
		c.reps = 1;
	}
	if (reps > 0)
		c.reps = reps;
	if (mib) {
		/* rows 1-3, 5, 6, 8 on another size (profiling) */
		c.total = c.stream = c.mig_total = mib * MIB;
	}
	find_cli(&c);
	if (!c.json)
		printf("devstate-bench%s: device %llu MiB, chunk %llu KiB, %d rep(s), best of each; ratio = figure / baseline (speed)\n",
		       c.smoke ? " --smoke" : "",
		       (unsigned long long)(c.total / MIB),
		       (unsigned long long)(c.chunk >> 10), c.reps);
	fflush(stdout);

	if (!c.only)
		c.only = ~0u;
	/* row 7 first, before the other rows' allocations */
	if (c.only & (1u << 7))
		bench_rss(&c);
	if (c.only & (1u << 1 | 1u << 2 | 1u << 3 | 1u << 6))
		bench_device(&c);
	if (c.only & (1u << 6 | 1u << 8))
		bench_migration_ops(&c);
	if (c.only & (1u << 4))
		bench_bitmap(&c);
	if (c.only & (1u << 5))
		bench_stream(&c);
	if (c.only & (1u << 8))
		bench_migrate(&c);

	for (i = 0; i < nrows; i++) {
		met += rows[i].verdict == MET;
		missed += rows[i].verdict == MISSED;
	}
	if (c.json)
		print_json(met, missed);
	else
		print_table();
	printf("targets: %u met, %u missed\n", met, missed);
	return 0;
}

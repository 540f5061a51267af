/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Snapshot files: the atomic writer, devstate_verify_file() and the
 * file-backed transport (a snapshot replayed as a read-only device).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devstate.h"
#include "libdevstate/stream.h"
#include "transports/transport.h"
#include "tests/testutil.h"

/* ---------------------------------------------------------------- */
/* Scratch directories and files. */

static char tmpdir[256];

static void dir_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test-file.XXXXXX",
		 base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void dir_teardown(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

/* Entries of the scratch directory whose name contains needle. */
static unsigned count_entries(const char *needle)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strstr(e->d_name, needle))
			n++;
	closedir(d);
	return n;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	p = malloc((size_t)st.st_size + 1);
	ck_assert_int_eq(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

static void spit(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
	close(fd);
}

/* ---------------------------------------------------------------- */
/* The snapshot every test replays. */

#define CHUNK		4096u
#define CONFIG_SIZE	1000u
#define CONFIG_REGION	2000u
#define BITMAP_REGION	64u	/* 512 pages per query */

static const uint64_t batch_sizes[] = { 10000, 4096, 5000 };
#define NBATCH 3

struct snap {
	uint8_t *mem[NBATCH];	/* each batch's bytes */
	uint8_t config[CONFIG_SIZE];
	uint32_t version;
	uint32_t caps;
	uint64_t sections;
	uint64_t bytes;
};

static void snap_free(struct snap *s)
{
	unsigned i;

	for (i = 0; i < NBATCH; i++)
		free(s->mem[i]);
}

static void bm_set(uint8_t *bm, uint64_t bit)
{
	bm[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

/*
 * Write a snapshot: three batches (10000 bytes in chunks 4096/4096/1808,
 * then 4096, then 5000), dirty bitmaps of pages {1, 5, 99} in [0, 100),
 * {53, 110} in [50, 114) and {1009} in [1000, 1010), the config.
 */
static void write_snapshot(const char *path, struct snap *s, uint32_t version,
			   uint32_t caps, enum devstate_codec codec,
			   bool with_config)
{
	struct devstate_stream_header h;
	struct devstate_enc *e;
	struct devstate_file *f;
	uint64_t seed = 17, pos;
	uint8_t bm[16];
	unsigned b, i;

	memset(s, 0, sizeof(*s));
	s->version = version;
	s->caps = caps;
	memset(&h, 0, sizeof(h));
	h.format_version = DEVSTATE_STREAM_FORMAT;
	h.protocol = DEVSTATE_PROTOCOL_REGIONS;
	h.proto_version = version;
	h.caps = caps;
	h.page_size = DEVSTATE_PAGE_SIZE;
	h.region_len[DEVSTATE_REGION_CTL] = version == 1 ? 72 : 80;
	h.region_len[DEVSTATE_REGION_CONFIG] = CONFIG_REGION;
	h.region_len[DEVSTATE_REGION_MEMORY] =
		caps & DEVSTATE_CAP_DEVICE_MEMORY ? CHUNK : 0;
	h.region_len[DEVSTATE_REGION_BITMAP] =
		caps & DEVSTATE_CAP_SYSTEM_MEMORY ? BITMAP_REGION : 0;
	h.config_size = CONFIG_SIZE;
	strcpy(h.ident, "file test");

	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	ck_assert_int_eq(devstate_enc_new(&e, devstate_file_write, f, codec,
					  0), 0);
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	for (b = 0; b < NBATCH; b++) {
		uint64_t size = batch_sizes[b];

		s->mem[b] = malloc(size);
		for (i = 0; i < size; i++)
			s->mem[b][i] = (uint8_t)(tu_rand(&seed) % 7 ?
						 i * (b + 1) : tu_rand(&seed));
		if (b == 1)
			memset(s->mem[b], 0, size);	/* a zero chunk */
		if (!(caps & DEVSTATE_CAP_DEVICE_MEMORY))
			continue;
		for (pos = 0; pos < size; pos += CHUNK)
			ck_assert_int_eq(devstate_enc_memory(e, b, size, pos,
							     s->mem[b] + pos,
							     size - pos < CHUNK ?
							     size - pos : CHUNK),
					 0);
		if (b == 0 && (caps & DEVSTATE_CAP_SYSTEM_MEMORY)) {
			memset(bm, 0, sizeof(bm));
			bm_set(bm, 1);
			bm_set(bm, 5);
			bm_set(bm, 99);
			ck_assert_int_eq(devstate_enc_bitmap(e, 0, 100, bm), 0);
			memset(bm, 0, sizeof(bm));
			bm_set(bm, 3);
			bm_set(bm, 60);
			ck_assert_int_eq(devstate_enc_bitmap(e, 50, 64, bm), 0);
			memset(bm, 0, sizeof(bm));
			ck_assert_int_eq(devstate_enc_bitmap(e, 300, 64, bm), 0);
		}
	}
	if (caps & DEVSTATE_CAP_SYSTEM_MEMORY) {
		memset(bm, 0, sizeof(bm));
		bm_set(bm, 9);
		ck_assert_int_eq(devstate_enc_bitmap(e, 1000, 10, bm), 0);
	}
	for (i = 0; i < CONFIG_SIZE; i++)
		s->config[i] = (uint8_t)(i * 7 + 3);
	if (with_config)
		ck_assert_int_eq(devstate_enc_config(e, s->config,
						     CONFIG_SIZE), 0);
	ck_assert_int_eq(devstate_enc_end(e), 0);
	s->sections = devstate_enc_sections(e);
	s->bytes = devstate_enc_bytes(e);
	devstate_enc_free(e);
	ck_assert_int_eq(devstate_file_commit(f), 0);
	devstate_file_free(f);
}

/* ---------------------------------------------------------------- */
/* The atomic writer. */

static int write_str(struct devstate_file *f, const char *str)
{
	return devstate_file_write(f, str, strlen(str));
}

START_TEST(test_writer_commit)
{
	struct devstate_file *f;
	char path[512];
	uint8_t *p, *big;
	size_t len, i;
	struct stat st;
	mode_t mask;

	path_of(path, sizeof(path), "snap");
	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	/* the temporary file sits beside PATH, hidden, until commit */
	ck_assert_uint_eq(count_entries(".snap.tmp."), 1);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(write_str(f, "hello "), 0);
	/* small and large writes, in order */
	big = malloc(200000);
	for (i = 0; i < 200000; i++)
		big[i] = (uint8_t)(i % 251);
	ck_assert_int_eq(devstate_file_write(f, big, 200000), 0);
	ck_assert_int_eq(write_str(f, "world"), 0);
	ck_assert_int_eq(devstate_file_write(f, big, 70000), 0);
	ck_assert_int_eq(devstate_file_write(f, NULL, 0), 0);
	ck_assert_int_eq(devstate_file_commit(f), 0);
	ck_assert_uint_eq(count_entries(".tmp."), 0);
	/* once only */
	ck_assert_int_eq(devstate_file_commit(f), -EINVAL);
	ck_assert_int_lt(write_str(f, "late"), 0);
	devstate_file_free(f);

	p = slurp(path, &len);
	ck_assert_uint_eq(len, 6 + 200000 + 5 + 70000);
	ck_assert_int_eq(memcmp(p, "hello ", 6), 0);
	ck_assert_int_eq(memcmp(p + 6, big, 200000), 0);
	ck_assert_int_eq(memcmp(p + 200006, "world", 5), 0);
	ck_assert_int_eq(memcmp(p + 200011, big, 70000), 0);
	free(p);
	free(big);
	/* an ordinary file: 0644 less the umask */
	mask = umask(022);
	umask(mask);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0644 & ~mask);

	/* commit replaces */
	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	ck_assert_int_eq(write_str(f, "second"), 0);
	ck_assert_int_eq(devstate_file_commit(f), 0);
	devstate_file_free(f);
	p = slurp(path, &len);
	ck_assert_uint_eq(len, 6);
	ck_assert_int_eq(memcmp(p, "second", 6), 0);
	free(p);
	ck_assert_uint_eq(count_entries("snap"), 1);
}
END_TEST

START_TEST(test_writer_abandon)
{
	struct devstate_file *f;
	char path[512];
	uint8_t *p;
	size_t len;

	path_of(path, sizeof(path), "keep");
	spit(path, "old contents", 12);
	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	ck_assert_int_eq(write_str(f, "new contents that never land"), 0);
	devstate_file_free(f);
	p = slurp(path, &len);
	ck_assert_uint_eq(len, 12);
	ck_assert_int_eq(memcmp(p, "old contents", 12), 0);
	free(p);
	ck_assert_uint_eq(count_entries(".tmp."), 0);
	ck_assert_uint_eq(count_entries("keep"), 1);

	/* a file that never existed stays absent */
	path_of(path, sizeof(path), "never");
	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	devstate_file_free(f);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_uint_eq(count_entries(".tmp."), 0);
	devstate_file_free(NULL);
}
END_TEST

/* A save that fails midway keeps the previous snapshot sound. */
START_TEST(test_writer_failed_save)
{
	struct devstate_verify_report rep;
	struct devstate_stream_header h;
	struct devstate_enc *e;
	struct devstate_file *f;
	char path[512], err[512];
	uint8_t data[CHUNK];
	struct snap s;

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, 2, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_RAW,
		       true);
	ck_assert_int_eq(devstate_verify_file(path, &rep, err, sizeof(err)),
			 0);

	memset(&h, 0, sizeof(h));
	h.proto_version = 2;
	h.caps = DEVSTATE_CAP_DEVICE_MEMORY;
	h.region_len[DEVSTATE_REGION_CONFIG] = 10;
	h.region_len[DEVSTATE_REGION_MEMORY] = CHUNK;
	memset(data, 0x11, sizeof(data));
	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	ck_assert_int_eq(devstate_enc_new(&e, devstate_file_write, f,
					  DEVSTATE_CODEC_RAW, 0), 0);
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	ck_assert_int_eq(devstate_enc_memory(e, 0, 3 * CHUNK, 0, data, CHUNK),
			 0);
	/* the save dies here */
	devstate_enc_free(e);
	devstate_file_free(f);

	ck_assert_int_eq(devstate_verify_file(path, &rep, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(rep.stream_bytes, s.bytes);
	ck_assert_uint_eq(count_entries(".tmp."), 0);
	snap_free(&s);
}
END_TEST

START_TEST(test_writer_errors)
{
	struct devstate_file *f = (struct devstate_file *)&f;
	char path[512];

	ck_assert_int_eq(devstate_file_create(&f, ""), -EINVAL);
	ck_assert_int_eq(devstate_file_create(&f, NULL), -EINVAL);
	path_of(path, sizeof(path), "");
	ck_assert_int_eq(devstate_file_create(&f, path), -EISDIR);
	path_of(path, sizeof(path), "no/such/dir/snap");
	ck_assert_int_eq(devstate_file_create(&f, path), -ENOENT);
	ck_assert_ptr_eq(f, (struct devstate_file *)&f);
	ck_assert_int_eq(devstate_file_commit(NULL), -EINVAL);
	ck_assert_int_eq(devstate_file_write(NULL, "x", 1), -EINVAL);
	/* commit over a directory fails; nothing is left behind */
	path_of(path, sizeof(path), "adir");
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	ck_assert_int_eq(write_str(f, "data"), 0);
	ck_assert_int_lt(devstate_file_commit(f), 0);
	devstate_file_free(f);
	ck_assert_uint_eq(count_entries(".tmp."), 0);
	ck_assert_int_eq(rmdir(path), 0);
}
END_TEST

/* ---------------------------------------------------------------- */
/* devstate_verify_file(). */

START_TEST(test_verify_good)
{
	struct devstate_verify_report rep;
	char path[512], err[512];
	struct snap s;
	unsigned c;

	for (c = DEVSTATE_CODEC_RAW; c <= DEVSTATE_CODEC_ZSTD; c++) {
		path_of(path, sizeof(path), "good");
		write_snapshot(path, &s, 1, DEVSTATE_CAP_ALL,
			       (enum devstate_codec)c, true);
		memset(&rep, 0xff, sizeof(rep));
		strcpy(err, "junk");
		ck_assert_int_eq(devstate_verify_file(path, &rep, err,
						      sizeof(err)), 0);
		ck_assert_str_eq(err, "");
		ck_assert_uint_eq(rep.protocol_version, 1);
		ck_assert_uint_eq(rep.caps, DEVSTATE_CAP_ALL);
		ck_assert_str_eq(rep.ident, "file test");
		/* 3 + 1 + 2 chunks, 4 bitmaps, config */
		ck_assert_uint_eq(rep.sections, s.sections);
		ck_assert_uint_eq(rep.sections, 11);
		ck_assert_uint_eq(rep.memory_sections, 6);
		ck_assert_uint_eq(rep.passes, 3);
		ck_assert_uint_eq(rep.memory_bytes, 10000 + 4096 + 5000);
		ck_assert_uint_eq(rep.config_bytes, CONFIG_SIZE);
		ck_assert_uint_eq(rep.bitmap_sections, 4);
		ck_assert_uint_eq(rep.stream_bytes, s.bytes);
		ck_assert_int_eq(devstate_verify_file(path, NULL, NULL, 0), 0);
		snap_free(&s);
	}
}
END_TEST

START_TEST(test_verify_bad)
{
	struct devstate_verify_report rep;
	char path[512], bad[512], err[1024], want[1024];
	uint8_t *p;
	size_t len, cut;
	struct snap s;
	int rc;

	path_of(path, sizeof(path), "good");
	path_of(bad, sizeof(bad), "bad");
	write_snapshot(path, &s, 2, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_DEFLATE,
		       true);
	p = slurp(path, &len);

	/* truncated anywhere */
	snprintf(want, sizeof(want), "%s: truncated: no END section", bad);
	for (cut = 0; cut < len; cut += 1 + cut / 3) {
		spit(bad, p, cut);
		rc = devstate_verify_file(bad, &rep, err, sizeof(err));
		ck_assert_int_eq(rc, -EINVAL);
		ck_assert_msg(!strncmp(err, want, strlen(want)),
			      "cut %zu: '%s'", cut, err);
	}
	spit(bad, p, len - 1);
	ck_assert_int_eq(devstate_verify_file(bad, &rep, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, want);

	/* corrupt: one byte of the first section's payload */
	p[120] ^= 0x40;
	spit(bad, p, len);
	ck_assert_int_eq(devstate_verify_file(bad, &rep, err, sizeof(err)),
			 -EBADMSG);
	snprintf(want, sizeof(want), "%s: section at offset 87 (MEMORY): CRC mismatch (stored 0x",
		 bad);
	ck_assert_msg(!strncmp(err, want, strlen(want)), "'%s'", err);
	p[120] ^= 0x40;
	/* not a snapshot */
	spit(bad, "#!/bin/sh\necho hello\n", 21);
	ck_assert_int_eq(devstate_verify_file(bad, &rep, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bad magic"));
	/* trailing bytes */
	p = realloc(p, len + 1);
	p[len] = '\n';
	spit(bad, p, len + 1);
	ck_assert_int_eq(devstate_verify_file(bad, &rep, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "byte after END"));
	/* absent */
	path_of(bad, sizeof(bad), "absent");
	ck_assert_int_eq(devstate_verify_file(bad, &rep, err, sizeof(err)),
			 -ENOENT);
	snprintf(want, sizeof(want), "%s: %s", bad, strerror(ENOENT));
	ck_assert_str_eq(err, want);
	/* a directory */
	ck_assert_int_lt(devstate_verify_file(tmpdir, &rep, err, sizeof(err)),
			 0);
	ck_assert_int_eq(devstate_verify_file(NULL, &rep, err, sizeof(err)),
			 -EINVAL);
	free(p);
	snap_free(&s);
}
END_TEST

/* ---------------------------------------------------------------- */
/* The file transport. */

#define OPS devstate_file_ops

struct dev {
	void *priv;
	uint32_t version;
	char err[DEVSTATE_ERR_MAX];
};

/* Field offsets; the system-memory ones depend on the version. */
#define O_VERSION	0
#define O_STATE		4
#define O_CAPS		8
#define O_CFG_ACTION	16
#define O_CFG_SIZE	24
#define O_MEM_ACTION	32
#define O_MEM_SIZE	40
#define O_MEM_POS	48
#define O_SYS_ACTION	56	/* v2 */
#define O_SYS_START(v)	((v) == 1 ? 56 : 64)
#define O_SYS_PAGE_NR(v) ((v) == 1 ? 64 : 72)

static void dev_open(struct dev *d, const char *path, uint32_t version)
{
	memset(d, 0, sizeof(*d));
	d->version = version;
	ck_assert_msg(OPS.open(path, &d->priv, d->err, sizeof(d->err)) == 0,
		      "%s", d->err);
}

static int rd(struct dev *d, uint32_t off, uint32_t width, uint64_t *v)
{
	uint8_t buf[8] = { 0 };
	int rc;

	d->err[0] = '\0';
	rc = OPS.ctl_read(d->priv, off, buf, width, d->err, sizeof(d->err));
	*v = devstate_le_get(buf, width);
	return rc;
}

static uint64_t rdv(struct dev *d, uint32_t off, uint32_t width)
{
	uint64_t v;

	ck_assert_msg(rd(d, off, width, &v) == 0, "read at %u: %s", off,
		      d->err);
	return v;
}

static int wr(struct dev *d, uint32_t off, uint32_t width, uint64_t v)
{
	uint8_t buf[8];

	d->err[0] = '\0';
	devstate_le_put(buf, width, v);
	return OPS.ctl_write(d->priv, off, buf, width, d->err, sizeof(d->err));
}

static void wrv(struct dev *d, uint32_t off, uint32_t width, uint64_t v)
{
	ck_assert_msg(wr(d, off, width, v) == 0, "write at %u: %s", off,
		      d->err);
}

/* GET_BUFFER the chunk at pos and compare it with the batch. */
static void check_chunk(struct dev *d, const uint8_t *batch, uint64_t size,
			uint64_t pos)
{
	uint8_t buf[CHUNK];
	uint64_t n = size - pos < CHUNK ? size - pos : CHUNK;

	wrv(d, O_MEM_POS, 8, pos);
	wrv(d, O_MEM_ACTION, 4, DEVSTATE_ACTION_GET_BUFFER);
	ck_assert_int_eq(OPS.data_read(d->priv, DEVSTATE_REGION_MEMORY, 0, buf,
				       CHUNK, d->err, sizeof(d->err)), 0);
	ck_assert_int_eq(memcmp(buf, batch + pos, n), 0);
}

static void check_batch(struct dev *d, const uint8_t *batch, uint64_t size)
{
	uint64_t pos;

	for (pos = 0; pos < size; pos += CHUNK)
		check_chunk(d, batch, size, pos);
}

START_TEST(test_transport_regions)
{
	struct devstate_regions r;
	char path[512];
	struct dev d;
	struct snap s;
	uint32_t v = (uint32_t)_i + 1;
	void *map = NULL;

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, v, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_ZSTD,
		       true);
	dev_open(&d, path, v);
	ck_assert_int_eq(OPS.regions(d.priv, &r, d.err, sizeof(d.err)), 0);
	ck_assert(r.present[DEVSTATE_REGION_CTL]);
	ck_assert_uint_eq(r.size[DEVSTATE_REGION_CTL], v == 1 ? 72 : 80);
	ck_assert(!r.mappable[DEVSTATE_REGION_CTL]);
	ck_assert(r.present[DEVSTATE_REGION_CONFIG]);
	ck_assert_uint_eq(r.size[DEVSTATE_REGION_CONFIG], CONFIG_REGION);
	ck_assert(r.present[DEVSTATE_REGION_MEMORY]);
	ck_assert_uint_eq(r.size[DEVSTATE_REGION_MEMORY], CHUNK);
	ck_assert(r.present[DEVSTATE_REGION_BITMAP]);
	ck_assert_uint_eq(r.size[DEVSTATE_REGION_BITMAP], BITMAP_REGION);
	ck_assert(r.mappable[DEVSTATE_REGION_CONFIG] &&
		  r.mappable[DEVSTATE_REGION_MEMORY] &&
		  r.mappable[DEVSTATE_REGION_BITMAP]);
	ck_assert_int_eq(OPS.data_map(d.priv, DEVSTATE_REGION_CTL, &map,
				      d.err, sizeof(d.err)), -EINVAL);
	ck_assert_int_eq(OPS.data_map(d.priv, DEVSTATE_REGION_MEMORY, &map,
				      d.err, sizeof(d.err)), 0);
	ck_assert_ptr_nonnull(map);

	/* version and caps from the header */
	ck_assert_uint_eq(rdv(&d, O_VERSION, 4), v);
	ck_assert_uint_eq(rdv(&d, O_CAPS, 4), DEVSTATE_CAP_ALL);
	ck_assert_uint_eq(rdv(&d, O_CFG_SIZE, 8), CONFIG_SIZE);
	ck_assert_uint_eq(rdv(&d, O_MEM_POS, 8), 0);

	/* the mapping shows what GET_BUFFER put there */
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 10000);
	wrv(&d, O_MEM_POS, 8, CHUNK);
	wrv(&d, O_MEM_ACTION, 4, DEVSTATE_ACTION_GET_BUFFER);
	ck_assert_int_eq(memcmp(map, s.mem[0] + CHUNK, CHUNK), 0);

	ck_assert_int_eq(OPS.digest(d.priv, &v), -EOPNOTSUPP);
	OPS.close(d.priv);
	snap_free(&s);
}
END_TEST

START_TEST(test_transport_access_rules)
{
	char path[512];
	uint8_t buf[16];
	struct dev d;
	struct snap s;
	uint64_t v;
	uint32_t ver = (uint32_t)_i + 1;
	uint32_t end = ver == 1 ? 72 : 80;

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, ver, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_RAW,
		       true);
	dev_open(&d, path, ver);
	/* wrong width, offset, span, past the end */
	ck_assert_int_eq(rd(&d, O_VERSION, 8, &v), -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "not exactly one field"));
	ck_assert_int_eq(rd(&d, 2, 4, &v), -EINVAL);
	ck_assert_int_eq(rd(&d, 12, 4, &v), -EINVAL);	/* padding */
	ck_assert_int_eq(rd(&d, O_CFG_SIZE + 4, 4, &v), -EINVAL);
	ck_assert_int_eq(rd(&d, O_MEM_SIZE, 4, &v), -EINVAL);
	ck_assert_int_eq(rd(&d, end, 4, &v), -EINVAL);
	ck_assert_int_eq(rd(&d, end - 4, 8, &v), -EINVAL);
	ck_assert_int_eq(OPS.ctl_read(d.priv, 0, buf, 2, d.err, sizeof(d.err)),
			 -EINVAL);
	ck_assert_int_eq(OPS.ctl_read(d.priv, 0, buf, 16, d.err,
				      sizeof(d.err)), -EINVAL);
	/* write-only fields are not read, read-only ones not written */
	ck_assert_int_eq(rd(&d, O_STATE, 4, &v), -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "write-only"));
	ck_assert_int_eq(rd(&d, O_CFG_ACTION, 4, &v), -EINVAL);
	ck_assert_int_eq(rd(&d, O_MEM_ACTION, 4, &v), -EINVAL);
	ck_assert_int_eq(rd(&d, O_SYS_START(ver), 8, &v), -EINVAL);
	ck_assert_int_eq(rd(&d, O_SYS_PAGE_NR(ver), 8, &v), -EINVAL);
	ck_assert_int_eq(wr(&d, O_VERSION, 4, 2), -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "read-only"));
	ck_assert_int_eq(wr(&d, O_CAPS, 4, 0), -EINVAL);
	ck_assert_int_eq(wr(&d, O_STATE, 8, 0), -EINVAL);
	/* states 0..3 only */
	ck_assert_int_eq(wr(&d, O_STATE, 4, 4), -EINVAL);
	ck_assert_int_eq(wr(&d, O_STATE, 4, 0xffffffff), -EINVAL);
	wrv(&d, O_STATE, 4, DEVSTATE_STATE_STOP);
	wrv(&d, O_STATE, 4, DEVSTATE_STATE_STOP);
	wrv(&d, O_STATE, 4, DEVSTATE_STATE_RUNNING);
	/* unknown actions */
	ck_assert_int_eq(wr(&d, O_CFG_ACTION, 4, 0), -EINVAL);
	ck_assert_int_eq(wr(&d, O_CFG_ACTION, 4, DEVSTATE_ACTION_GET_BITMAP),
			 -EINVAL);
	ck_assert_int_eq(wr(&d, O_MEM_ACTION, 4, 7), -EINVAL);
	/* GET_BUFFER before any freeze */
	ck_assert_int_eq(wr(&d, O_MEM_ACTION, 4, DEVSTATE_ACTION_GET_BUFFER),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "no batch frozen"));
	/* data regions: bounds, and CTL is not one */
	ck_assert_int_eq(OPS.data_read(d.priv, DEVSTATE_REGION_MEMORY, CHUNK,
				       buf, 1, d.err, sizeof(d.err)), -EINVAL);
	ck_assert_int_eq(OPS.data_read(d.priv, DEVSTATE_REGION_MEMORY,
				       UINT64_MAX, buf, 2, d.err,
				       sizeof(d.err)), -EINVAL);
	ck_assert_int_eq(OPS.data_read(d.priv, DEVSTATE_REGION_CTL, 0, buf, 4,
				       d.err, sizeof(d.err)), -EINVAL);
	ck_assert_int_eq(OPS.data_read(d.priv, DEVSTATE_REGION_CONFIG,
				       CONFIG_REGION - 4, buf, 4, d.err,
				       sizeof(d.err)), 0);
	OPS.close(d.priv);
	snap_free(&s);
}
END_TEST

START_TEST(test_transport_read_only)
{
	char path[512];
	uint8_t buf[16] = { 0 };
	struct dev d;
	struct snap s;

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, 2, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_RAW,
		       true);
	dev_open(&d, path, 2);
	wrv(&d, O_STATE, 4, DEVSTATE_STATE_STOP);	/* where loads go */
	ck_assert_int_eq(wr(&d, O_MEM_SIZE, 8, 10000), -EROFS);
	ck_assert_ptr_nonnull(strstr(d.err, "snapshot file is read-only"));
	ck_assert_int_eq(wr(&d, O_CFG_SIZE, 8, CONFIG_SIZE), -EROFS);
	ck_assert_ptr_nonnull(strstr(d.err, "snapshot file is read-only"));
	ck_assert_int_eq(wr(&d, O_MEM_ACTION, 4, DEVSTATE_ACTION_SET_BUFFER),
			 -EROFS);
	ck_assert_ptr_nonnull(strstr(d.err, "snapshot file is read-only"));
	ck_assert_int_eq(wr(&d, O_CFG_ACTION, 4, DEVSTATE_ACTION_SET_BUFFER),
			 -EROFS);
	ck_assert_ptr_nonnull(strstr(d.err, "snapshot file is read-only"));
	d.err[0] = '\0';
	ck_assert_int_eq(OPS.data_write(d.priv, DEVSTATE_REGION_MEMORY, 0, buf,
					16, d.err, sizeof(d.err)), -EROFS);
	ck_assert_ptr_nonnull(strstr(d.err, "snapshot file is read-only"));
	ck_assert_int_eq(OPS.data_write(d.priv, DEVSTATE_REGION_CONFIG, 0, buf,
					16, d.err, sizeof(d.err)), -EROFS);
	/* a bad range is still a bad range */
	ck_assert_int_eq(OPS.data_write(d.priv, DEVSTATE_REGION_CONFIG,
					CONFIG_REGION, buf, 16, d.err,
					sizeof(d.err)), -EINVAL);
	OPS.close(d.priv);
	snap_free(&s);
}
END_TEST

START_TEST(test_transport_replay)
{
	char path[512];
	struct dev d;
	struct snap s;

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, 2, DEVSTATE_CAP_ALL,
		       (enum devstate_codec)_i, true);
	dev_open(&d, path, 2);

	/* the first freeze: the whole snapshot (batch 0), in RUNNING */
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 10000);
	check_batch(&d, s.mem[0], 10000);
	/* chunks in any order, again and again */
	check_chunk(&d, s.mem[0], 10000, 8192);
	check_chunk(&d, s.mem[0], 10000, 0);
	/* pos must be a chunk of the batch */
	ck_assert_int_eq(wr(&d, O_MEM_POS, 8, 100), -EINVAL);
	wrv(&d, O_MEM_POS, 8, 3 * CHUNK);
	ck_assert_int_eq(wr(&d, O_MEM_ACTION, 4, DEVSTATE_ACTION_GET_BUFFER),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "pos 12288"));

	/* LOGGING: one recorded delta per freeze, then nothing */
	wrv(&d, O_STATE, 4, DEVSTATE_STATE_RUNNING_LOGGING);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 4096);
	check_batch(&d, s.mem[1], 4096);
	wrv(&d, O_STATE, 4, DEVSTATE_STATE_STOP_LOGGING);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 5000);
	check_batch(&d, s.mem[2], 5000);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 0);
	wrv(&d, O_MEM_POS, 8, 0);
	ck_assert_int_eq(wr(&d, O_MEM_ACTION, 4, DEVSTATE_ACTION_GET_BUFFER),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "empty"));
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 0);

	/* outside LOGGING: the whole snapshot again, and the replay
	 * restarts after it */
	wrv(&d, O_STATE, 4, DEVSTATE_STATE_STOP);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 10000);
	check_batch(&d, s.mem[0], 10000);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 10000);
	wrv(&d, O_STATE, 4, DEVSTATE_STATE_RUNNING_LOGGING);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 4096);
	check_batch(&d, s.mem[1], 4096);

	/* the config, in every state */
	for (uint32_t st = 0; st <= DEVSTATE_STATE_MAX; st++) {
		uint8_t cfg[CONFIG_REGION];

		wrv(&d, O_STATE, 4, st);
		ck_assert_uint_eq(rdv(&d, O_CFG_SIZE, 8), CONFIG_SIZE);
		wrv(&d, O_CFG_ACTION, 4, DEVSTATE_ACTION_GET_BUFFER);
		ck_assert_int_eq(OPS.data_read(d.priv, DEVSTATE_REGION_CONFIG,
					       0, cfg, sizeof(cfg), d.err,
					       sizeof(d.err)), 0);
		ck_assert_int_eq(memcmp(cfg, s.config, CONFIG_SIZE), 0);
	}
	OPS.close(d.priv);
	snap_free(&s);
}
END_TEST

/* A LOGGING state at the first freeze still gives the whole snapshot. */
START_TEST(test_transport_first_freeze_logging)
{
	char path[512];
	struct dev d;
	struct snap s;

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, 1, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_RAW,
		       true);
	dev_open(&d, path, 1);
	wrv(&d, O_STATE, 4, DEVSTATE_STATE_RUNNING_LOGGING);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 10000);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 4096);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 5000);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), 0);
	OPS.close(d.priv);
	snap_free(&s);
}
END_TEST

/* Query [first, first + n) and return the region's bits as a list. */
static unsigned query(struct dev *d, uint64_t first, uint64_t n, uint64_t *pages,
		      unsigned max)
{
	uint8_t bm[BITMAP_REGION];
	unsigned found = 0;
	uint64_t i;

	wrv(d, O_SYS_START(d->version), 8, first * DEVSTATE_PAGE_SIZE);
	if (d->version == 1) {
		wrv(d, O_SYS_PAGE_NR(1), 8, n);
	} else {
		wrv(d, O_SYS_PAGE_NR(2), 8, n);
		wrv(d, O_SYS_ACTION, 4, DEVSTATE_ACTION_GET_BITMAP);
	}
	ck_assert_int_eq(OPS.data_read(d->priv, DEVSTATE_REGION_BITMAP, 0, bm,
				       sizeof(bm), d->err, sizeof(d->err)), 0);
	for (i = 0; i < 8 * sizeof(bm); i++) {
		if (!(bm[i / 8] >> (i % 8) & 1))
			continue;
		/* never a bit outside the range */
		ck_assert_uint_lt(i, n);
		if (found < max)
			pages[found] = first + i;
		found++;
	}
	return found;
}

START_TEST(test_transport_bitmap)
{
	uint32_t v = (uint32_t)_i + 1;
	uint64_t pages[16];
	char path[512];
	struct dev d;
	struct snap s;

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, v, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_DEFLATE,
		       true);
	dev_open(&d, path, v);

	/* [0, 100): 1, 5, 99 and 53 from the second bitmap; not 110 */
	ck_assert_uint_eq(query(&d, 0, 100, pages, 16), 4);
	ck_assert_uint_eq(pages[0], 1);
	ck_assert_uint_eq(pages[1], 5);
	ck_assert_uint_eq(pages[2], 53);
	ck_assert_uint_eq(pages[3], 99);
	/* reported pages are forgotten */
	ck_assert_uint_eq(query(&d, 0, 100, pages, 16), 0);
	/* pages outside a query stay pending */
	ck_assert_uint_eq(query(&d, 64, 100, pages, 16), 1);
	ck_assert_uint_eq(pages[0], 110);
	ck_assert_uint_eq(query(&d, 1000, 512, pages, 16), 1);
	ck_assert_uint_eq(pages[0], 1009);
	ck_assert_uint_eq(query(&d, 0, 512, pages, 16), 0);
	ck_assert_uint_eq(query(&d, 0, 1, pages, 16), 0);

	/* the rules of a query */
	ck_assert_int_eq(wr(&d, O_SYS_START(v), 8, 100), -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "not page-aligned"));
	wrv(&d, O_SYS_START(v), 8, 0);
	if (v == 1) {
		ck_assert_int_eq(wr(&d, O_SYS_PAGE_NR(1), 8, 0), -EINVAL);
		ck_assert_int_eq(wr(&d, O_SYS_PAGE_NR(1), 8,
				    8 * BITMAP_REGION + 1), -EINVAL);
		ck_assert_ptr_nonnull(strstr(d.err, "not in 1..512"));
	} else {
		wrv(&d, O_SYS_PAGE_NR(2), 8, 8 * BITMAP_REGION + 1);
		ck_assert_int_eq(wr(&d, O_SYS_ACTION, 4,
				    DEVSTATE_ACTION_GET_BITMAP), -EINVAL);
		ck_assert_ptr_nonnull(strstr(d.err, "not in 1..512"));
		wrv(&d, O_SYS_PAGE_NR(2), 8, 0);
		ck_assert_int_eq(wr(&d, O_SYS_ACTION, 4,
				    DEVSTATE_ACTION_GET_BITMAP), -EINVAL);
		wrv(&d, O_SYS_PAGE_NR(2), 8, 10);
		ck_assert_int_eq(wr(&d, O_SYS_ACTION, 4,
				    DEVSTATE_ACTION_GET_BUFFER), -EINVAL);
		/* a huge start with a page count that would wrap */
		wrv(&d, O_SYS_START(2), 8, UINT64_MAX & ~4095ull);
		ck_assert_int_eq(wr(&d, O_SYS_ACTION, 4,
				    DEVSTATE_ACTION_GET_BITMAP), -EINVAL);
	}
	OPS.close(d.priv);
	snap_free(&s);
}
END_TEST

/* A query before start_addr was written (v2: before page_nr too). */
START_TEST(test_transport_bitmap_unset)
{
	char path[512];
	struct dev d;
	struct snap s;

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, 1, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_RAW,
		       true);
	dev_open(&d, path, 1);
	ck_assert_int_eq(wr(&d, O_SYS_PAGE_NR(1), 8, 10), -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "start_addr"));
	OPS.close(d.priv);
	snap_free(&s);

	write_snapshot(path, &s, 2, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_RAW,
		       true);
	dev_open(&d, path, 2);
	ck_assert_int_eq(wr(&d, O_SYS_ACTION, 4, DEVSTATE_ACTION_GET_BITMAP),
			 -EINVAL);
	OPS.close(d.priv);
	snap_free(&s);
}
END_TEST

/* A snapshot of a device without the optional caps. */
START_TEST(test_transport_no_caps)
{
	struct devstate_regions r;
	char path[512];
	struct dev d;
	struct snap s;
	uint64_t v;

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, 2, 0, DEVSTATE_CODEC_RAW, false);
	dev_open(&d, path, 2);
	ck_assert_int_eq(OPS.regions(d.priv, &r, d.err, sizeof(d.err)), 0);
	ck_assert(!r.present[DEVSTATE_REGION_MEMORY]);
	ck_assert(!r.present[DEVSTATE_REGION_BITMAP]);
	ck_assert(r.present[DEVSTATE_REGION_CONFIG]);
	ck_assert_uint_eq(rdv(&d, O_CAPS, 4), 0);
	ck_assert_int_eq(rd(&d, O_MEM_SIZE, 8, &v), -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "DEVICE_MEMORY"));
	ck_assert_int_eq(wr(&d, O_SYS_START(2), 8, 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(d.err, "SYSTEM_MEMORY"));
	/* this one was saved without its config */
	ck_assert_int_eq(wr(&d, O_CFG_ACTION, 4, DEVSTATE_ACTION_GET_BUFFER),
			 -ENODATA);
	ck_assert_ptr_nonnull(strstr(d.err, "no CONFIG section"));
	ck_assert_int_eq(OPS.data_read(d.priv, DEVSTATE_REGION_MEMORY, 0,
				       &v, 8, d.err, sizeof(d.err)), -EINVAL);
	OPS.close(d.priv);
	snap_free(&s);
}
END_TEST

START_TEST(test_transport_open_errors)
{
	char path[512], err[DEVSTATE_ERR_MAX], want[600];
	const struct devstate_transport_ops *ops = NULL;
	void *priv = NULL;
	uint8_t *p;
	size_t len;
	struct snap s;

	ck_assert_int_eq(OPS.open("", &priv, err, sizeof(err)), -EINVAL);
	path_of(path, sizeof(path), "absent");
	ck_assert_int_eq(OPS.open(path, &priv, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_int_eq(OPS.open(tmpdir, &priv, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));

	path_of(path, sizeof(path), "snap");
	write_snapshot(path, &s, 2, DEVSTATE_CAP_ALL, DEVSTATE_CODEC_RAW,
		       true);
	p = slurp(path, &len);
	spit(path, p, len - 10);
	ck_assert_int_eq(OPS.open(path, &priv, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: truncated: no END section", path);
	ck_assert_str_eq(err, want);
	p[200] ^= 1;
	spit(path, p, len);
	ck_assert_int_eq(OPS.open(path, &priv, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "CRC mismatch"));
	ck_assert_ptr_null(priv);

	/* through the registry */
	p[200] ^= 1;
	spit(path, p, len);
	snprintf(want, sizeof(want), "file:%s", path);
	ck_assert_int_eq(devstate_transport_open(want, &ops, &priv, err,
						 sizeof(err)), 0);
	ck_assert_ptr_eq(ops, &devstate_file_ops);
	ck_assert_str_eq(ops->name, "file");
	ops->close(priv);
	free(p);
	snap_free(&s);
}
END_TEST

/* A big snapshot: payloads are decoded from the file on demand. */
START_TEST(test_transport_large)
{
	const uint64_t size = 64ull * CHUNK + 17;
	struct devstate_stream_header h;
	struct devstate_enc *e;
	struct devstate_file *f;
	uint8_t *mem = malloc(size);
	uint64_t seed = 5, pos;
	char path[512];
	struct dev d;

	for (pos = 0; pos < size; pos++)
		mem[pos] = (uint8_t)(pos % 3 ? pos / 4096 : tu_rand(&seed));
	memset(&h, 0, sizeof(h));
	h.proto_version = 2;
	h.caps = DEVSTATE_CAP_DEVICE_MEMORY;
	h.region_len[DEVSTATE_REGION_CTL] = 80;
	h.region_len[DEVSTATE_REGION_CONFIG] = 16;
	h.region_len[DEVSTATE_REGION_MEMORY] = CHUNK;
	h.config_size = 16;
	path_of(path, sizeof(path), "big");
	ck_assert_int_eq(devstate_file_create(&f, path), 0);
	ck_assert_int_eq(devstate_enc_new(&e, devstate_file_write, f,
					  DEVSTATE_CODEC_DEFLATE, 6), 0);
	ck_assert_int_eq(devstate_enc_header(e, &h), 0);
	for (pos = 0; pos < size; pos += CHUNK)
		ck_assert_int_eq(devstate_enc_memory(e, 0, size, pos, mem + pos,
						     size - pos < CHUNK ?
						     size - pos : CHUNK), 0);
	ck_assert_int_eq(devstate_enc_config(e, mem, 16), 0);
	ck_assert_int_eq(devstate_enc_end(e), 0);
	devstate_enc_free(e);
	ck_assert_int_eq(devstate_file_commit(f), 0);
	devstate_file_free(f);

	dev_open(&d, path, 2);
	ck_assert_uint_eq(rdv(&d, O_MEM_SIZE, 8), size);
	check_batch(&d, mem, size);
	OPS.close(d.priv);
	free(mem);
}
END_TEST

static Suite *file_suite(void)
{
	Suite *s = suite_create("file");
	TCase *tc;

	tc = tcase_create("writer");
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_test(tc, test_writer_commit);
	tcase_add_test(tc, test_writer_abandon);
	tcase_add_test(tc, test_writer_failed_save);
	tcase_add_test(tc, test_writer_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_verify_good);
	tcase_add_test(tc, test_verify_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("transport");
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_transport_regions, 0, 2);
	tcase_add_loop_test(tc, test_transport_access_rules, 0, 2);
	tcase_add_test(tc, test_transport_read_only);
	tcase_add_loop_test(tc, test_transport_replay, 0, 3);
	tcase_add_test(tc, test_transport_first_freeze_logging);
	tcase_add_loop_test(tc, test_transport_bitmap, 0, 2);
	tcase_add_test(tc, test_transport_bitmap_unset);
	tcase_add_test(tc, test_transport_no_caps);
	tcase_add_test(tc, test_transport_open_errors);
	tcase_add_test(tc, test_transport_large);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(file_suite());
}

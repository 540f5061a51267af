/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* devstate-cli: save, load, migrate, verify. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"

#define READ_PIECE (1u << 20)

struct xfer_opts {
	struct devstate_save_opts save;
	uint64_t passes;	/* pre-copy pass limit */
	uint64_t threshold;	/* stop when pending <= threshold */
	uint64_t ram;		/* bytes of system memory to log-sync */
	int progress;		/* -1 auto */
	bool json;
	const char *snapshot;	/* migrate: go through this file */
	const char *bitmap_out;	/* write the merged dirty bitmap here */
};

enum { OPT_CODEC = 256, OPT_LEVEL, OPT_PASSES, OPT_THRESHOLD, OPT_RAM,
       OPT_PROGRESS, OPT_NO_PROGRESS, OPT_JSON, OPT_SNAPSHOT, OPT_DIRTY_BITMAP,
       OPT_HELP };

static const struct option xfer_options[] = {
	{ "codec", required_argument, NULL, OPT_CODEC },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "passes", required_argument, NULL, OPT_PASSES },
	{ "threshold", required_argument, NULL, OPT_THRESHOLD },
	{ "ram", required_argument, NULL, OPT_RAM },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "snapshot", required_argument, NULL, OPT_SNAPSHOT },
	{ "dirty-bitmap", required_argument, NULL, OPT_DIRTY_BITMAP },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Parse the options shared by the transfer commands; returns -1 to go on,
 * or an exit status. */
static int parse_xfer(const char *cmd, const char *help, int argc,
		      char **argv, struct xfer_opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->passes = 8;
	o->threshold = 256 << 10;
	o->ram = 1ull << 30;
	o->progress = -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", xfer_options, NULL)) != -1) {
		switch (c) {
		case OPT_CODEC:
			if (devstate_codec_parse(optarg, &o->save.codec) < 0)
				return cli_usage(cmd, "unknown codec '%s' (raw, deflate, zstd)",
						 optarg);
			break;
		case OPT_LEVEL:
			o->save.level = atoi(optarg);
			break;
		case OPT_PASSES:
			if (cli_parse_size(optarg, &o->passes) < 0)
				return cli_usage(cmd, "bad pass count '%s'", optarg);
			break;
		case OPT_THRESHOLD:
			if (cli_parse_size(optarg, &o->threshold) < 0)
				return cli_usage(cmd, "bad threshold '%s'", optarg);
			break;
		case OPT_RAM:
			if (cli_parse_size(optarg, &o->ram) < 0 ||
			    o->ram % DEVSTATE_PAGE_SIZE)
				return cli_usage(cmd, "bad RAM size '%s' (a multiple of 4K)",
						 optarg);
			break;
		case OPT_PROGRESS: o->progress = 1; break;
		case OPT_NO_PROGRESS: o->progress = 0; break;
		case OPT_JSON: o->json = true; break;
		case OPT_SNAPSHOT: o->snapshot = optarg; break;
		case OPT_DIRTY_BITMAP: o->bitmap_out = optarg; break;
		case OPT_HELP: fputs(help, stdout); return EXIT_OK;
		default: return cli_bad_option(cmd, argv, c);
		}
	}
	return -1;
}

static const char *strip_file(const char *s)
{
	return strncmp(s, "file:", 5) ? s : s + 5;
}

static int fd_write(void *opaque, const void *buf, size_t len)
{
	int fd = *(int *)opaque;
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The source side of a migration: setup, pre-copy passes, stop-and-copy,
 * cleanup.  Used by save and migrate. */

struct pass_row {
	uint64_t moved, pending_after, dirty;
};

struct run {
	struct pass_row rows[256];
	unsigned nrows;
	double t_stop;		/* when the source was stopped */
	uint64_t *bitmap;	/* merged dirty bitmap of --ram */
	uint64_t ram_pages;
	uint32_t src_digest;
	bool have_digest;
};

static int log_sync(struct devstate_save *s, struct devstate_device *dev,
		    struct run *r, uint64_t *dirty)
{
	struct devstate_save_stats st0, st1;
	int rc;

	*dirty = 0;
	if (!(devstate_device_caps(dev) & DEVSTATE_CAP_SYSTEM_MEMORY) ||
	    !r->ram_pages)
		return 0;
	devstate_save_get_stats(s, &st0);
	rc = devstate_save_log_sync(s, 0, r->ram_pages, r->bitmap);
	devstate_save_get_stats(s, &st1);
	*dirty = st1.dirty_pages - st0.dirty_pages;
	return rc;
}

static int run_source(struct devstate_save *s, struct devstate_device *dev,
		      const struct xfer_opts *o, struct run *r,
		      struct progress *pr)
{
	struct devstate_save_stats st;
	uint64_t before, pending, dirty;
	unsigned pass;
	int rc;

	r->ram_pages = o->ram / DEVSTATE_PAGE_SIZE;
	if (devstate_device_caps(dev) & DEVSTATE_CAP_SYSTEM_MEMORY &&
	    r->ram_pages) {
		r->bitmap = calloc((size_t)((r->ram_pages + 63) / 64), 8);
		if (!r->bitmap)
			return -ENOMEM;
	}
	rc = devstate_save_setup(s);
	if (rc < 0)
		return rc;
	devstate_save_get_stats(s, &st);
	r->rows[0].moved = st.memory_bytes;
	r->nrows = 1;
	progress_show(pr, "setup", st.stream_bytes);
	for (pass = 1; pass <= o->passes && r->nrows < 256; pass++) {
		struct pass_row *row = &r->rows[r->nrows];

		rc = devstate_save_pending(s, &pending);
		if (rc < 0)
			return rc;
		if (pending <= o->threshold && pass > 1)
			break;
		devstate_save_get_stats(s, &st);
		before = st.memory_bytes;
		rc = devstate_save_iterate(s);
		if (rc < 0)
			return rc;
		rc = log_sync(s, dev, r, &dirty);
		if (rc < 0)
			return rc;
		rc = devstate_save_pending(s, &row->pending_after);
		if (rc < 0)
			return rc;
		devstate_save_get_stats(s, &st);
		row->moved = st.memory_bytes - before;
		row->dirty = dirty;
		r->nrows++;
		progress_show(pr, "pre-copy", st.stream_bytes);
		if (row->pending_after <= o->threshold)
			break;
	}
	r->t_stop = cli_now();
	rc = devstate_save_stop(s);
	if (rc < 0)
		return rc;
	rc = log_sync(s, dev, r, &dirty);
	if (rc < 0)
		return rc;
	rc = devstate_save_complete(s);
	if (rc < 0)
		return rc;
	rc = devstate_save_cleanup(s);
	progress_done(pr);
	return rc;
}

/* The pass table and totals.  A device speaking the kernel's migration
 * uAPI v2 (mig2) has opaque data (no memory/config split) and reports no
 * dirty pages. */
static void print_run(FILE *f, const struct run *r,
		      const struct devstate_save_stats *st, double stopped,
		      bool mig2)
{
	char a[16], b[16];
	unsigned i;

	fprintf(f, "pass  moved       pending-after  dirty-pages\n");
	for (i = 0; i < r->nrows; i++) {
		char d[32] = "-";

		if (i == 0)
			snprintf(d, sizeof(d), "- (setup%s)",
				 mig2 ? "" : ": whole snapshot");
		else if (!mig2)
			snprintf(d, sizeof(d), "%" PRIu64, r->rows[i].dirty);
		fprintf(f, "%-4u  %-10s  %-13s  %s\n", i,
			cli_human(a, sizeof(a), r->rows[i].moved),
			i ? cli_human(b, sizeof(b), r->rows[i].pending_after) :
			"-", d);
	}
	fprintf(f, "stop-and-copy: %s moved, source stopped for %.3f ms\n",
		cli_human(a, sizeof(a), st->stop_copy_bytes), stopped * 1e3);
	if (mig2)
		fprintf(f, "total: %" PRIu64 " passes, %s of device data (migration uAPI v2), %s stream in %" PRIu64 " sections\n",
			st->passes, cli_human(a, sizeof(a), st->memory_bytes),
			cli_human(b, sizeof(b), st->stream_bytes),
			st->sections);
	else
		fprintf(f, "total: %" PRIu64 " memory batches, %s device memory, %s config, %s stream in %" PRIu64 " sections, %" PRIu64 " dirty pages\n",
			st->passes, cli_human(a, sizeof(a), st->memory_bytes),
			cli_human(b, sizeof(b), st->config_bytes),
			cli_human((char[16]){ 0 }, 16, st->stream_bytes),
			st->sections, st->dirty_pages);
}

static void json_run(struct json *j, const struct run *r,
		     const struct devstate_save_stats *st, double stopped)
{
	unsigned i;

	json_arr(j, "passes");
	for (i = 0; i < r->nrows; i++) {
		json_obj(j, NULL);
		json_u64(j, "pass", i);
		json_u64(j, "moved", r->rows[i].moved);
		json_u64(j, "pending_after", r->rows[i].pending_after);
		json_u64(j, "dirty_pages", r->rows[i].dirty);
		json_end_obj(j);
	}
	json_end_arr(j);
	json_u64(j, "memory_batches", st->passes);
	json_u64(j, "memory_bytes", st->memory_bytes);
	json_u64(j, "config_bytes", st->config_bytes);
	json_u64(j, "stream_bytes", st->stream_bytes);
	json_u64(j, "sections", st->sections);
	json_u64(j, "dirty_pages", st->dirty_pages);
	json_u64(j, "stop_copy_bytes", st->stop_copy_bytes);
	json_dbl(j, "stopped_seconds", stopped);
}

/* --dirty-bitmap FILE: the merged dirty bitmap of --ram, 64-bit
 * little-endian words, bit i = page i (empty without SYSTEM_MEMORY). */
static int write_bitmap(const char *path, const struct run *r)
{
	uint64_t i, words = r->bitmap ? (r->ram_pages + 63) / 64 : 0;
	unsigned char b[8];
	FILE *f = fopen(path, "we");
	int k;

	if (!f)
		return cli_fail(path, "%s", strerror(errno));
	for (i = 0; i < words; i++) {
		for (k = 0; k < 8; k++)
			b[k] = (unsigned char)(r->bitmap[i] >> (8 * k));
		if (fwrite(b, 1, 8, f) != 8)
			break;
	}
	if (fclose(f) != 0 || i < words)
		return cli_fail(path, "cannot write the dirty bitmap");
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */

static const char save_help[] =
	"Usage: devstate-cli save [OPTIONS] DEVICE OUT\n"
	"Save DEVICE's state as a live migration would (setup, pre-copy\n"
	"passes, stop-and-copy) into OUT: a snapshot file (written atomically)\n"
	"or - for standard output.  The device ends stopped.\n"
	"  --codec raw|deflate|zstd  --level N  --passes N  --threshold SIZE\n"
	"  --ram SIZE (system memory to log-sync, default 1G)\n"
	"  --dirty-bitmap FILE (write the merged dirty bitmap there)\n"
	"  --json  --progress  --no-progress\n";

int cmd_save(int argc, char **argv)
{
	struct devstate_device *dev = NULL;
	struct devstate_save *s = NULL;
	struct devstate_file *file = NULL;
	struct devstate_save_stats st;
	struct xfer_opts o;
	struct progress pr;
	struct run r;
	const char *out;
	char err[256];
	int rc, fd = STDOUT_FILENO, ret = EXIT_FAIL;
	bool to_stdout;

	rc = parse_xfer("save", save_help, argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return cli_usage("save", "expected DEVICE and OUT");
	out = argv[optind + 1];
	to_stdout = !strcmp(out, "-");
	if (to_stdout && isatty(STDOUT_FILENO))
		return cli_usage("save", "refusing to write a binary stream to a terminal");
	if (to_stdout && o.json)
		return cli_usage("save", "--json needs standard output, which carries the stream");
	o.save.record_bitmaps = 1;
	memset(&r, 0, sizeof(r));
	progress_init(&pr, o.progress);

	rc = devstate_device_open(&dev, argv[optind], 0, err, sizeof(err));
	if (rc < 0)
		return cli_fail(argv[optind], "%s", err);
	if (!to_stdout) {
		rc = devstate_file_create(&file, strip_file(out));
		if (rc < 0) {
			cli_fail(out, "cannot create a snapshot there: %s",
				 strerror(-rc));
			goto out;
		}
		rc = devstate_save_new(&s, dev, &o.save, devstate_file_write, file);
	} else {
		rc = devstate_save_new(&s, dev, &o.save, fd_write, &fd);
	}
	if (rc < 0) {
		cli_fail("save", "%s", devstate_device_error(dev));
		goto out;
	}
	rc = run_source(s, dev, &o, &r, &pr);
	if (rc < 0) {
		cli_fail("save", "%s", devstate_save_error(s)[0] ?
			 devstate_save_error(s) : strerror(-rc));
		goto out;
	}
	if (file) {
		rc = devstate_file_commit(file);
		if (rc < 0) {
			cli_fail(out, "committing the snapshot failed: %s",
				 strerror(-rc));
			goto out;
		}
	}
	devstate_save_get_stats(s, &st);
	if (o.bitmap_out && write_bitmap(o.bitmap_out, &r) != EXIT_OK)
		goto out;
	{
		FILE *f = to_stdout ? stderr : stdout;
		double stopped = cli_now() - r.t_stop;

		/* after the stop window: the source stays stopped, so this is
		 * its content at stop time */
		r.have_digest = devstate_device_digest(dev, &r.src_digest) == 0;

		if (o.json && !to_stdout) {
			struct json j;

			json_begin(&j, stdout);
			json_obj(&j, NULL);
			json_str(&j, "device", argv[optind]);
			json_str(&j, "output", out);
			json_run(&j, &r, &st, stopped);
			if (r.have_digest)
				json_u64(&j, "source_digest", r.src_digest);
			json_end_obj(&j);
			json_finish(&j);
		} else {
			print_run(f, &r, &st, stopped,
				  devstate_device_protocol(dev) ==
				  DEVSTATE_PROTOCOL_MIG2);
			if (r.have_digest)
				fprintf(f, "source digest: 0x%08x\n", r.src_digest);
		}
	}
	ret = EXIT_OK;
out:
	devstate_save_free(s);	/* cancels (device RUNNING) unless cleaned up */
	devstate_file_free(file);
	devstate_device_free(dev);
	free(r.bitmap);
	return ret;
}

/* ------------------------------------------------------------------ */

/* Feed a whole fd into a load session. */
static int load_from_fd(struct devstate_load *l, int fd, struct progress *pr)
{
	struct devstate_load_stats st;
	char *buf = malloc(READ_PIECE);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf, READ_PIECE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		rc = devstate_load_feed(l, buf, (size_t)n);
		if (rc < 0)
			break;
		devstate_load_get_stats(l, &st);
		progress_show(pr, "load", st.stream_bytes);
	}
	free(buf);
	progress_done(pr);
	return rc;
}

static const char load_help[] =
	"Usage: devstate-cli load [OPTIONS] IN DEVICE\n"
	"Load a stream or snapshot IN (a file, or - for standard input) into\n"
	"DEVICE: stop it, apply every section, and set it running.  A failed\n"
	"load leaves the device stopped.\n"
	"  --json  --progress  --no-progress\n";

int cmd_load(int argc, char **argv)
{
	struct devstate_device *dev = NULL;
	struct devstate_load *l = NULL;
	struct devstate_load_stats st;
	struct xfer_opts o;
	struct progress pr;
	const char *in;
	char err[256], a[16], b[16];
	int rc, fd = STDIN_FILENO, ret = EXIT_FAIL;
	uint32_t digest;
	bool have_digest;

	rc = parse_xfer("load", load_help, argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return cli_usage("load", "expected IN and DEVICE");
	in = argv[optind];
	progress_init(&pr, o.progress);
	if (strcmp(in, "-")) {
		fd = open(strip_file(in), O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return cli_fail(in, "%s", strerror(errno));
	}
	rc = devstate_device_open(&dev, argv[optind + 1], 0, err, sizeof(err));
	if (rc < 0) {
		cli_fail(argv[optind + 1], "%s", err);
		goto out;
	}
	rc = devstate_load_new(&l, dev);
	if (rc < 0) {
		cli_fail("load", "%s", devstate_device_error(dev));
		goto out;
	}
	rc = devstate_load_begin(l);
	if (rc == 0)
		rc = load_from_fd(l, fd, &pr);
	if (rc == 0)
		rc = devstate_load_finish(l);
	if (rc < 0) {
		cli_fail("load", "%s", devstate_load_error(l)[0] ?
			 devstate_load_error(l) : strerror(-rc));
		goto out;
	}
	devstate_load_get_stats(l, &st);
	have_digest = devstate_device_digest(dev, &digest) == 0;
	if (o.json) {
		struct json j;

		json_begin(&j, stdout);
		json_obj(&j, NULL);
		json_str(&j, "device", argv[optind + 1]);
		json_str(&j, "input", in);
		json_u64(&j, "memory_batches", st.passes);
		json_u64(&j, "memory_bytes", st.memory_bytes);
		json_u64(&j, "config_bytes", st.config_bytes);
		json_u64(&j, "stream_bytes", st.stream_bytes);
		json_u64(&j, "sections", st.sections);
		json_str(&j, "state", cli_state_name(dev));
		if (have_digest)
			json_u64(&j, "destination_digest", digest);
		json_end_obj(&j);
		json_finish(&j);
	} else if (devstate_device_protocol(dev) == DEVSTATE_PROTOCOL_MIG2) {
		printf("loaded %" PRIu64 " passes (%s of device data) from %s of stream; device %s\n",
		       st.passes, cli_human(a, sizeof(a), st.memory_bytes),
		       cli_human(b, sizeof(b), st.stream_bytes),
		       cli_state_name(dev));
		if (have_digest)
			printf("destination digest: 0x%08x\n", digest);
	} else {
		printf("loaded %" PRIu64 " memory batches (%s) and %s of config from %s of stream; device %s\n",
		       st.passes, cli_human(a, sizeof(a), st.memory_bytes),
		       cli_human(b, sizeof(b), st.config_bytes),
		       cli_human((char[16]){ 0 }, 16, st.stream_bytes),
		       cli_state_name(dev));
		if (have_digest)
			printf("destination digest: 0x%08x\n", digest);
	}
	ret = EXIT_OK;
out:
	devstate_load_free(l);
	devstate_device_free(dev);
	if (fd != STDIN_FILENO && fd >= 0)
		close(fd);
	return ret;
}

/* ------------------------------------------------------------------ */

struct pipe_ctx {
	struct devstate_load *l;
};

/* migrate without a file: the save's stream goes straight into the load */
static int pipe_write(void *opaque, const void *buf, size_t len)
{
	struct pipe_ctx *p = opaque;

	return devstate_load_feed(p->l, buf, len);
}

static const char migrate_help[] =
	"Usage: devstate-cli migrate [OPTIONS] SRC DST\n"
	"Live-migrate device SRC into device DST in one process: setup,\n"
	"pre-copy passes until the pending data falls under --threshold or\n"
	"--passes is reached, stop-and-copy, cleanup.  Prints a table per\n"
	"pass and the time the source was stopped, and compares the devices'\n"
	"contents when both can be read back.\n"
	"  --snapshot FILE  go through a snapshot file (source -> FILE -> DST)\n"
	"  --codec raw|deflate|zstd  --level N  --passes N (default 8)\n"
	"  --threshold SIZE (default 256K)  --ram SIZE (default 1G)\n"
	"  --dirty-bitmap FILE (write the merged dirty bitmap there)\n"
	"  --json  --progress  --no-progress\n";

int cmd_migrate(int argc, char **argv)
{
	struct devstate_device *src = NULL, *dst = NULL;
	struct devstate_save *s = NULL;
	struct devstate_load *l = NULL;
	struct devstate_file *file = NULL;
	struct devstate_save_stats st;
	struct pipe_ctx pc;
	struct xfer_opts o;
	struct progress pr;
	struct run r;
	char err[256];
	int rc, ret = EXIT_FAIL, fd = -1;
	uint32_t dst_digest = 0;
	bool have_dst = false, match;
	double stopped;

	rc = parse_xfer("migrate", migrate_help, argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return cli_usage("migrate", "expected SRC and DST");
	memset(&r, 0, sizeof(r));
	progress_init(&pr, o.progress);
	o.save.record_bitmaps = o.snapshot != NULL;

	rc = devstate_device_open(&src, argv[optind], 0, err, sizeof(err));
	if (rc < 0)
		return cli_fail(argv[optind], "%s", err);
	rc = devstate_device_open(&dst, argv[optind + 1], 0, err, sizeof(err));
	if (rc < 0) {
		cli_fail(argv[optind + 1], "%s", err);
		goto out;
	}
	rc = devstate_load_new(&l, dst);
	if (rc < 0) {
		cli_fail("migrate", "%s", devstate_device_error(dst));
		goto out;
	}
	if (o.snapshot) {
		rc = devstate_file_create(&file, strip_file(o.snapshot));
		if (rc < 0) {
			cli_fail(o.snapshot, "cannot create a snapshot there: %s",
				 strerror(-rc));
			goto out;
		}
		rc = devstate_save_new(&s, src, &o.save, devstate_file_write,
				       file);
	} else {
		/* the destination stops first, as it would on another host */
		rc = devstate_load_begin(l);
		if (rc < 0) {
			cli_fail("migrate: destination", "%s", devstate_load_error(l));
			goto out;
		}
		pc.l = l;
		rc = devstate_save_new(&s, src, &o.save, pipe_write, &pc);
	}
	if (rc < 0) {
		cli_fail("migrate", "%s", devstate_device_error(src));
		goto out;
	}
	rc = run_source(s, src, &o, &r, &pr);
	if (rc < 0) {
		const char *why = devstate_load_error(l);

		/* a failed feed surfaces as a write error of the save */
		if (!o.snapshot && why[0])
			cli_fail("migrate: destination", "%s", why);
		else
			cli_fail("migrate: source", "%s", devstate_save_error(s));
		goto out;
	}
	if (o.snapshot) {
		rc = devstate_file_commit(file);
		if (rc < 0) {
			cli_fail(o.snapshot, "committing the snapshot failed: %s",
				 strerror(-rc));
			goto out;
		}
		fd = open(strip_file(o.snapshot), O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			cli_fail(o.snapshot, "%s", strerror(errno));
			goto out;
		}
		rc = devstate_load_begin(l);
		if (rc == 0)
			rc = load_from_fd(l, fd, &pr);
	}
	if (rc == 0)
		rc = devstate_load_finish(l);
	if (rc < 0) {
		cli_fail("migrate: destination", "%s", devstate_load_error(l));
		goto out;
	}
	stopped = cli_now() - r.t_stop;
	devstate_save_get_stats(s, &st);
	if (o.bitmap_out && write_bitmap(o.bitmap_out, &r) != EXIT_OK)
		goto out;
	/* digests after the stop window; the source stays stopped */
	r.have_digest = devstate_device_digest(src, &r.src_digest) == 0;
	have_dst = devstate_device_digest(dst, &dst_digest) == 0;
	match = r.have_digest && have_dst && r.src_digest == dst_digest;
	if (o.json) {
		struct json j;

		json_begin(&j, stdout);
		json_obj(&j, NULL);
		json_str(&j, "source", argv[optind]);
		json_str(&j, "destination", argv[optind + 1]);
		json_str(&j, "snapshot", o.snapshot);
		json_run(&j, &r, &st, stopped);
		if (r.have_digest && have_dst) {
			json_u64(&j, "source_digest", r.src_digest);
			json_u64(&j, "destination_digest", dst_digest);
			json_bool(&j, "match", match);
		} else {
			json_null(&j, "match");
		}
		json_end_obj(&j);
		json_finish(&j);
	} else {
		print_run(stdout, &r, &st, stopped,
			  devstate_device_protocol(src) ==
			  DEVSTATE_PROTOCOL_MIG2);
		if (o.snapshot)
			printf("snapshot: %s\n", o.snapshot);
		if (r.have_digest && have_dst)
			printf("destination %s the source (digest 0x%08x, source 0x%08x)\n",
			       match ? "matches" : "DOES NOT MATCH", dst_digest,
			       r.src_digest);
		else
			printf("destination running; contents not compared (a device cannot be read back)\n");
	}
	ret = (r.have_digest && have_dst && !match) ? EXIT_FAIL : EXIT_OK;
	if (ret != EXIT_OK)
		cli_fail("migrate", "destination contents differ from the source");
out:
	devstate_save_free(s);
	devstate_load_free(l);
	devstate_file_free(file);
	if (fd >= 0)
		close(fd);
	devstate_device_free(dst);
	devstate_device_free(src);
	free(r.bitmap);
	return ret;
}

/* ------------------------------------------------------------------ */

static const char verify_help[] =
	"Usage: devstate-cli verify [--json] FILE\n"
	"Check a snapshot: its structure, every section CRC, the END count and\n"
	"the whole-stream CRC.  Exit 0 only for a sound file.\n";

int cmd_verify(int argc, char **argv)
{
	struct devstate_verify_report rep;
	struct xfer_opts o;
	char err[512], a[16], b[16];
	int rc;

	rc = parse_xfer("verify", verify_help, argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage("verify", "expected one FILE");
	memset(&rep, 0, sizeof(rep));
	rc = devstate_verify_file(strip_file(argv[optind]), &rep, err,
				  sizeof(err));
	if (o.json) {
		struct json j;

		json_begin(&j, stdout);
		json_obj(&j, NULL);
		json_str(&j, "file", argv[optind]);
		json_bool(&j, "ok", rc == 0);
		if (rc < 0)
			json_str(&j, "error", err);
		json_u64(&j, "protocol", rep.protocol);
		json_u64(&j, "protocol_version", rep.protocol_version);
		json_u64(&j, "caps", rep.caps);
		json_str(&j, "ident", rep.ident);
		json_u64(&j, "sections", rep.sections);
		json_u64(&j, "memory_sections", rep.memory_sections);
		json_u64(&j, "memory_batches", rep.passes);
		json_u64(&j, "memory_bytes", rep.memory_bytes);
		json_u64(&j, "config_bytes", rep.config_bytes);
		json_u64(&j, "bitmap_sections", rep.bitmap_sections);
		json_u64(&j, "stream_bytes", rep.stream_bytes);
		json_end_obj(&j);
		json_finish(&j);
		if (rc < 0)
			fprintf(stderr, "devstate-cli: verify: %s\n", err);
		return rc < 0 ? EXIT_FAIL : EXIT_OK;
	}
	if (rc < 0)
		return cli_fail("verify", "%s", err);
	if (rep.protocol == DEVSTATE_PROTOCOL_MIG2) {
		char flags[96];

		cli_mig2_flags(flags, sizeof(flags), rep.caps);
		printf("%s: ok: migration uAPI v2, flags %s, %" PRIu64 " sections (%" PRIu64 " data in %" PRIu64 " passes, %s), %s, ident '%s'\n",
		       argv[optind], flags, rep.sections, rep.memory_sections,
		       rep.passes, cli_human(a, sizeof(a), rep.memory_bytes),
		       cli_human(b, sizeof(b), rep.stream_bytes), rep.ident);
		return EXIT_OK;
	}
	printf("%s: ok: protocol version %u, caps 0x%x, %" PRIu64 " sections (%" PRIu64 " memory in %" PRIu64 " batches, %s; config %s; %" PRIu64 " dirty bitmaps), %s, ident '%s'\n",
	       argv[optind], rep.protocol_version, rep.caps, rep.sections,
	       rep.memory_sections, rep.passes,
	       cli_human(a, sizeof(a), rep.memory_bytes),
	       cli_human(b, sizeof(b), rep.config_bytes), rep.bitmap_sections,
	       cli_human((char[16]){ 0 }, 16, rep.stream_bytes), rep.ident);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */

struct inspect_ctx {
	struct json *j;		/* NULL: text */
	uint64_t n;
};

static int inspect_one(void *opaque, const struct devstate_section_info *s)
{
	struct inspect_ctx *c = opaque;
	char raw[16], stored[16];

	c->n++;
	if (c->j) {
		struct json *j = c->j;

		json_obj(j, NULL);
		json_str(j, "type", s->type_name);
		json_u64(j, "offset", s->offset);
		json_u64(j, "length", s->length);
		json_str(j, "codec", devstate_codec_name(s->codec));
		json_u64(j, "raw_length", s->raw_len);
		json_u64(j, "stored_length", s->stored_len);
		if (s->type == 1) {
			json_u64(j, "pass", s->pass);
			json_u64(j, "pos", s->pos);
			json_u64(j, "batch_size", s->batch_size);
		} else if (s->type == 5) {
			json_u64(j, "pass", s->pass);
			json_u64(j, "pos", s->pos);
			json_bool(j, "stop_copy", s->mig2_flags & 1);
		} else if (s->type == 3) {
			json_u64(j, "start_page", s->start_page);
			json_u64(j, "pages", s->page_nr);
		}
		json_bool(j, "crc_ok", s->crc_ok);
		json_end_obj(j);
		return 0;
	}
	printf("%-4" PRIu64 "  %-10" PRIu64 "  %-12s  %-7s  ", c->n, s->offset,
	       s->type_name, devstate_codec_name(s->codec));
	if (s->type == 1 || s->type == 5)
		printf("%-4u  %-10" PRIu64 "  ", s->pass, s->pos);
	else if (s->type == 3)
		printf("%-4s  %-10s  ", "-", "-");
	else
		printf("%-4s  %-10s  ", "-", "-");
	printf("%-9s  %-9s  %s", cli_human(raw, sizeof(raw), s->raw_len),
	       cli_human(stored, sizeof(stored), s->stored_len),
	       s->crc_ok ? "ok" : "BAD");
	if (s->type == 3)
		printf("  pages 0x%" PRIx64 "+%" PRIu64, s->start_page, s->page_nr);
	if (s->type == 5 && s->mig2_flags & 1)
		printf("  stop-copy");
	putchar('\n');
	return 0;
}

static const char inspect_help[] =
	"Usage: devstate-cli inspect [--json] FILE\n"
	"List the sections of a snapshot: type, codec, pass, position, raw and\n"
	"stored length, CRC.  A corrupt section ends the list with an error.\n";

int cmd_inspect(int argc, char **argv)
{
	struct devstate_verify_report rep;
	struct inspect_ctx c = { 0 };
	struct xfer_opts o;
	struct json j;
	char err[512];
	int rc;

	rc = parse_xfer("inspect", inspect_help, argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage("inspect", "expected one FILE");
	if (o.json) {
		json_begin(&j, stdout);
		json_obj(&j, NULL);
		json_str(&j, "file", argv[optind]);
		json_arr(&j, "sections");
		c.j = &j;
	} else {
		printf("#     offset      type          codec    pass  pos         raw        stored     crc\n");
	}
	rc = devstate_inspect_file(strip_file(argv[optind]), inspect_one, &c,
				   &rep, err, sizeof(err));
	if (o.json) {
		json_end_arr(&j);
		json_bool(&j, "ok", rc == 0);
		if (rc < 0)
			json_str(&j, "error", err);
		json_end_obj(&j);
		json_finish(&j);
	}
	if (rc < 0)
		return cli_fail("inspect", "%s", err);
	return EXIT_OK;
}

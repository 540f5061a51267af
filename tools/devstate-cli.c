/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * devstate-cli: inspect and drive a device's migration state by hand.
 * This file: dispatch, shared helpers, and the device-facing commands
 * (info, state, dirty).  Transfers live in cmd-transfer.c.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bsd/libutil.h>

#include "tools/cli.h"

/* ------------------------------------------------------------------ */
/* helpers */

int cli_fail(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "devstate-cli: %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "devstate-cli: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try 'devstate-cli %s --help')\n", cmd);
	return EXIT_USAGE;
}

const char *cli_human(char *buf, size_t len, uint64_t bytes)
{
	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	/* 8 bytes give "1.5 MiB", "64 KiB", "5.0 GiB" */
	if (len < 8 ||
	    humanize_number(buf, 8, (int64_t)bytes, "B", HN_AUTOSCALE,
			    HN_DECIMAL | HN_IEC_PREFIXES) < 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	return buf;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-')
		return -EINVAL;
	if (expand_number(s, out) < 0)
		return -EINVAL;
	return 0;
}

int cli_bad_option(const char *cmd, char **argv, int c)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		return cli_usage(cmd, "option '%s' needs a value", arg);
	return cli_usage(cmd, "unknown option '%s'", arg);
}

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* JSON */

void json_begin(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = true;
}

static void json_escape(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_key(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	if (key) {
		json_escape(j->f, key);
		fputc(':', j->f);
	}
}

static void json_open(struct json *j, const char *key, char c)
{
	if (j->depth > 0 || !j->first[0])
		json_key(j, key);
	else
		j->first[0] = false;
	fputc(c, j->f);
	if (j->depth < 15)
		j->depth++;
	j->first[j->depth] = true;
}

void json_obj(struct json *j, const char *key) { json_open(j, key, '{'); }
void json_arr(struct json *j, const char *key) { json_open(j, key, '['); }

void json_end_obj(struct json *j)
{
	fputc('}', j->f);
	j->depth--;
}

void json_end_arr(struct json *j)
{
	fputc(']', j->f);
	j->depth--;
}

void json_str(struct json *j, const char *key, const char *v)
{
	json_key(j, key);
	if (v)
		json_escape(j->f, v);
	else
		fputs("null", j->f);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void json_bool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_dbl(struct json *j, const char *key, double v)
{
	json_key(j, key);
	fprintf(j->f, "%.6f", v);
}

void json_null(struct json *j, const char *key)
{
	json_key(j, key);
	fputs("null", j->f);
}

void json_finish(struct json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}

/* ------------------------------------------------------------------ */
/* progress */

void progress_init(struct progress *p, int mode)
{
	p->on = mode < 0 ? isatty(STDERR_FILENO) : mode;
	p->last = 0;
}

void progress_show(struct progress *p, const char *what, uint64_t bytes)
{
	char h[16];
	double now;

	if (!p->on)
		return;
	now = cli_now();
	if (now - p->last < 0.2)
		return;
	p->last = now;
	fprintf(stderr, "\r%s: %s moved   ", what, cli_human(h, sizeof(h), bytes));
	fflush(stderr);
}

void progress_done(struct progress *p)
{
	if (p->on && p->last > 0)
		fputs("\r\033[K", stderr);
}

/* ------------------------------------------------------------------ */
/* info */

static void caps_text(uint32_t caps, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s (0x%x)",
		 caps & DEVSTATE_CAP_DEVICE_MEMORY ? "device-memory" : "",
		 (caps & DEVSTATE_CAP_DEVICE_MEMORY) &&
				 (caps & DEVSTATE_CAP_SYSTEM_MEMORY) ? ", " : "",
		 caps & DEVSTATE_CAP_SYSTEM_MEMORY ? "system-memory" :
		 (caps & DEVSTATE_CAP_ALL) ? "" : "config only", caps);
}

const char *cli_state_name(const struct devstate_device *dev)
{
	const char *n;

	if (devstate_device_protocol(dev) == DEVSTATE_PROTOCOL_MIG2)
		n = devstate_mig2_state_name(devstate_device_mig2_state(dev));
	else
		n = devstate_state_name(devstate_device_state(dev));
	return n ? n : "unknown";
}

void cli_mig2_flags(char *buf, size_t len, uint64_t flags)
{
	static const char *const names[] = { "stop-copy", "p2p", "pre-copy" };
	size_t n = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < 3; i++)
		if (flags & (1ull << i) && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s",
					      n ? ", " : "", names[i]);
	if (flags & ~(uint64_t)DEVSTATE_MIG2_F_KNOWN && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%sunknown bits",
				      n ? ", " : "");
	if (n < len)
		snprintf(buf + n, len - n, "%s(0x%" PRIx64 ")", n ? " " : "",
			 flags);
}

/* info for a device speaking the kernel's migration uAPI v2. */
static void info_mig2(struct devstate_device *dev, const char *name,
		      struct json *j)
{
	struct devstate_mig2_info mi;
	char flags[96], h[16];
	int rc;

	rc = devstate_device_mig2_info(dev, &mi);
	cli_mig2_flags(flags, sizeof(flags), mi.flags);
	if (j) {
		json_str(j, "device", name);
		json_str(j, "transport", devstate_device_transport(dev));
		json_u64(j, "protocol", DEVSTATE_PROTOCOL_MIG2);
		json_str(j, "protocol_name", "mig2");
		json_obj(j, "mig2");
		json_u64(j, "flags", mi.flags);
		json_arr(j, "flag_names");
		if (mi.flags & DEVSTATE_MIG2_F_STOP_COPY)
			json_str(j, NULL, "stop-copy");
		if (mi.flags & DEVSTATE_MIG2_F_P2P)
			json_str(j, NULL, "p2p");
		if (mi.flags & DEVSTATE_MIG2_F_PRE_COPY)
			json_str(j, NULL, "pre-copy");
		json_end_arr(j);
		if (rc == 0 && mi.data_size_status == 0)
			json_u64(j, "stop_copy_bytes", mi.stop_copy_bytes);
		else
			json_null(j, "stop_copy_bytes");
		json_end_obj(j);
		json_str(j, "state", rc == 0 ? devstate_mig2_state_name(mi.state) :
				     "unknown");
		return;
	}
	printf("device:     %s\n", name);
	printf("transport:  %s\n", devstate_device_transport(dev));
	printf("protocol:   migration uAPI v2 (%u)\n", DEVSTATE_PROTOCOL_MIG2);
	printf("flags:      %s\n", flags);
	printf("state:      %s\n", rc == 0 ? devstate_mig2_state_name(mi.state) :
				     "unknown");
	if (rc == 0 && mi.data_size_status == 0)
		printf("stop-copy:  %s (%" PRIu64 " bytes, the device's estimate)\n",
		       cli_human(h, sizeof(h), mi.stop_copy_bytes),
		       mi.stop_copy_bytes);
	else if (rc == 0)
		printf("stop-copy:  size not reported\n");
}

static const char info_help[] =
	"Usage: devstate-cli info [--json] DEVICE\n"
	"Show the device-state interface of DEVICE: its protocol family;\n"
	"for the region protocol version, caps, state and regions; for the\n"
	"kernel's migration uAPI v2 its flags, state and stop-copy size; and\n"
	"whether it can be migrated (or why not).\n"
	"Exit status: 0 migratable, 1 blocked or error, 2 usage error.\n";

/* Whether the device can be migrated, or why not: JSON members into j,
 * else text lines. */
static void info_blocker(struct json *j, enum devstate_blocker b,
			 const char *reason)
{
	if (!j) {
		if (b == DEVSTATE_BLOCKER_NONE)
			printf("migratable: yes\n");
		else
			printf("migratable: no\nblocker:    %s: %s\n",
			       devstate_blocker_name(b), reason);
		return;
	}
	json_bool(j, "migratable", b == DEVSTATE_BLOCKER_NONE);
	if (b == DEVSTATE_BLOCKER_NONE) {
		json_null(j, "blocker");
		return;
	}
	json_obj(j, "blocker");
	json_u64(j, "code", (uint64_t)b);
	json_str(j, "name", devstate_blocker_name(b));
	json_str(j, "reason", reason);
	json_end_obj(j);
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct devstate_device *dev;
	const char *reason;
	enum devstate_blocker b;
	char err[256], caps[96], h[16];
	bool json = false;
	int c, r, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(info_help, stdout); return EXIT_OK;
		default: return cli_bad_option("info", argv, c);
		}
	}
	if (argc - optind != 1)
		return cli_usage("info", "expected one DEVICE");
	rc = devstate_device_open(&dev, argv[optind], DEVSTATE_OPEN_INSPECT,
				  err, sizeof(err));
	if (rc < 0)
		return cli_fail(argv[optind], "%s", err);
	b = devstate_device_blocker(dev, &reason);
	caps_text(devstate_device_caps(dev), caps, sizeof(caps));
	if (devstate_device_protocol(dev) == DEVSTATE_PROTOCOL_MIG2) {
		struct json j;

		if (json) {
			json_begin(&j, stdout);
			json_obj(&j, NULL);
		}
		info_mig2(dev, argv[optind], json ? &j : NULL);
		info_raw_regions(dev, json ? &j : NULL);
		info_blocker(json ? &j : NULL, b, reason);
		if (json) {
			json_end_obj(&j);
			json_finish(&j);
		}
	} else if (json) {
		struct json j;

		json_begin(&j, stdout);
		json_obj(&j, NULL);
		json_str(&j, "device", argv[optind]);
		json_str(&j, "transport", devstate_device_transport(dev));
		json_u64(&j, "protocol", DEVSTATE_PROTOCOL_REGIONS);
		json_str(&j, "protocol_name", "regions");
		json_u64(&j, "version", devstate_device_version(dev));
		json_u64(&j, "caps", devstate_device_caps(dev));
		json_str(&j, "state",
			 devstate_state_name(devstate_device_state(dev)));
		json_arr(&j, "regions");
		for (r = 0; r < DEVSTATE_REGION_COUNT; r++) {
			struct devstate_region_info ri;

			devstate_device_region(dev, (enum devstate_region)r, &ri);
			json_obj(&j, NULL);
			json_str(&j, "name",
				 devstate_region_name((enum devstate_region)r));
			json_bool(&j, "present", ri.present);
			json_u64(&j, "size", ri.size);
			json_bool(&j, "mappable", ri.mappable);
			json_end_obj(&j);
		}
		json_end_arr(&j);
		info_raw_regions(dev, &j);
		info_blocker(&j, b, reason);
		json_end_obj(&j);
		json_finish(&j);
	} else {
		printf("device:     %s\n", argv[optind]);
		printf("transport:  %s\n", devstate_device_transport(dev));
		printf("protocol:   device-state regions (%u)\n",
		       DEVSTATE_PROTOCOL_REGIONS);
		if (devstate_device_version(dev))
			printf("version:    %u\n", devstate_device_version(dev));
		else
			printf("version:    unknown\n");
		printf("caps:       %s\n", caps);
		printf("state:      %s\n",
		       devstate_state_name(devstate_device_state(dev)));
		printf("regions:\n");
		for (r = 0; r < DEVSTATE_REGION_COUNT; r++) {
			struct devstate_region_info ri;

			devstate_device_region(dev, (enum devstate_region)r, &ri);
			if (!ri.present) {
				printf("  %-8s  absent\n",
				       devstate_region_name((enum devstate_region)r));
				continue;
			}
			if (ri.mappable)
				printf("  %-8s  %-8s  mmap\n",
				       devstate_region_name((enum devstate_region)r),
				       cli_human(h, sizeof(h), ri.size));
			else
				printf("  %-8s  %s\n",
				       devstate_region_name((enum devstate_region)r),
				       cli_human(h, sizeof(h), ri.size));
		}
		info_raw_regions(dev, NULL);
		info_blocker(NULL, b, reason);
	}
	if (b != DEVSTATE_BLOCKER_NONE) {
		fflush(stdout);
		cli_fail(argv[optind], "not migratable: %s", reason);
	}
	devstate_device_free(dev);
	return b == DEVSTATE_BLOCKER_NONE ? EXIT_OK : EXIT_FAIL;
}

/* ------------------------------------------------------------------ */

static const char main_help[] =
	"Usage: devstate-cli COMMAND [OPTIONS] ARGS\n"
	"Inspect and drive the migration state of a VFIO device.\n"
	"\n"
	"Commands:\n"
	"  info DEVICE            version, caps, state, regions, blocker\n"
	"  state DEVICE [STATE]   print or set the device state\n"
	"  dirty DEVICE --start ADDR --pages N\n"
	"                         query the system-memory dirty bitmap\n"
	"  save DEVICE OUT        save the device's state to OUT (- = stdout)\n"
	"  load IN DEVICE         load a stream (- = stdin) into DEVICE\n"
	"  migrate SRC DST        live-migrate SRC into DST in one process\n"
	"  verify FILE            check a snapshot's structure and CRCs\n"
	"  inspect FILE           list a snapshot's sections\n"
	"\n"
	"Devices: fake:[key=value,...]  file:PATH\n"
	"         vfio:/dev/vfio/GROUP/DEVICE[,type=N]  vfio:fd=N\n"
	"Options: --help, --version; each command has --help.\n"
	"See devstate-cli(1).\n";

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "info", cmd_info },
	{ "state", cmd_state },
	{ "dirty", cmd_dirty },
	{ "save", cmd_save },
	{ "load", cmd_load },
	{ "migrate", cmd_migrate },
	{ "verify", cmd_verify },
	{ "inspect", cmd_inspect },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2)
		return cli_usage("usage", "no command given");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(main_help, stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("devstate-cli %s (libdevstate %s)\n", PACKAGE_VERSION,
		       devstate_version());
		return EXIT_OK;
	}
	for (c = commands; c->name; c++)
		if (!strcmp(c->name, argv[1]))
			return c->fn(argc - 1, argv + 1);
	fprintf(stderr, "devstate-cli: unknown command '%s' (try 'devstate-cli --help')\n",
		argv[1]);
	return EXIT_USAGE;
}

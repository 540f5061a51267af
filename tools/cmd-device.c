/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* devstate-cli: state and dirty. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char state_help[] =
	"Usage: devstate-cli state [--json] DEVICE [STATE]\n"
	"Print the state the library holds for DEVICE, or set it to STATE\n"
	"(running, stop, running+logging, stop+logging).  device_state is\n"
	"write-only: the state printed is the last one the library confirmed,\n"
	"and a device returns to running when its last user closes it.\n"
	"A device speaking the kernel's migration uAPI v2 reports its state\n"
	"(error, stop, running, stop-copy, resuming, running-p2p, pre-copy,\n"
	"pre-copy-p2p) and is taken to STATE one arc at a time along the\n"
	"kernel's route.\n";

int cmd_state(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct devstate_device *dev;
	uint32_t want = 0;
	const char *before_name;
	bool json = false, set, mig2;
	char err[256];
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(state_help, stdout); return EXIT_OK;
		default: return cli_bad_option("state", argv, c);
		}
	}
	if (argc - optind != 1 && argc - optind != 2)
		return cli_usage("state", "expected DEVICE and an optional STATE");
	set = argc - optind == 2;
	if (set && devstate_state_parse(argv[optind + 1], &want) < 0 &&
	    devstate_mig2_state_parse(argv[optind + 1], &want) < 0)
		return cli_usage("state", "unknown state '%s' (running, stop, running+logging, stop+logging; uAPI v2: stop, running, stop-copy, resuming, running-p2p, pre-copy, pre-copy-p2p)",
				 argv[optind + 1]);
	rc = devstate_device_open(&dev, argv[optind], 0, err, sizeof(err));
	if (rc < 0)
		return cli_fail(argv[optind], "%s", err);
	mig2 = devstate_device_protocol(dev) == DEVSTATE_PROTOCOL_MIG2;
	if (set && mig2 &&
	    devstate_mig2_state_parse(argv[optind + 1], &want) < 0) {
		devstate_device_free(dev);
		return cli_usage("state", "'%s' is not a migration uAPI v2 state (stop, running, stop-copy, resuming, running-p2p, pre-copy, pre-copy-p2p)",
				 argv[optind + 1]);
	}
	if (set && !mig2 && devstate_state_parse(argv[optind + 1], &want) < 0) {
		devstate_device_free(dev);
		return cli_usage("state", "'%s' is not a region-protocol state (running, stop, running+logging, stop+logging)",
				 argv[optind + 1]);
	}
	before_name = cli_state_name(dev);
	if (set) {
		rc = mig2 ? devstate_device_mig2_set_state(dev, want) :
			    devstate_device_set_state(dev, want);
		if (rc < 0) {
			cli_fail(argv[optind], "%s", devstate_device_error(dev));
			devstate_device_free(dev);
			return EXIT_FAIL;
		}
	}
	if (json) {
		struct json j;

		json_begin(&j, stdout);
		json_obj(&j, NULL);
		json_str(&j, "device", argv[optind]);
		json_str(&j, "state", cli_state_name(dev));
		if (set)
			json_str(&j, "previous", before_name);
		json_end_obj(&j);
		json_finish(&j);
	} else if (set) {
		printf("%s -> %s\n", before_name, cli_state_name(dev));
	} else {
		printf("%s\n", cli_state_name(dev));
	}
	devstate_device_free(dev);
	return EXIT_OK;
}

static const char dirty_help[] =
	"Usage: devstate-cli dirty [OPTIONS] DEVICE --start ADDR --pages N\n"
	"Query the system-memory dirty bitmap of N 4 KiB pages from ADDR\n"
	"through the bitmap slicer; print the dirty count and the dirty runs.\n"
	"  --state STATE  set this state first (a device logs only in a\n"
	"                 LOGGING state)\n"
	"  --raw          print the bitmap itself (hex, 64 pages per word)\n"
	"  --json\n";

enum { D_START = 256, D_PAGES, D_STATE, D_RAW, D_JSON, D_HELP };

int cmd_dirty(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "start", required_argument, NULL, D_START },
		{ "pages", required_argument, NULL, D_PAGES },
		{ "state", required_argument, NULL, D_STATE },
		{ "raw", no_argument, NULL, D_RAW },
		{ "json", no_argument, NULL, D_JSON },
		{ "help", no_argument, NULL, D_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct devstate_device *dev;
	uint64_t start = 0, pages = 0, words, i, rs, rl, from, dirty;
	uint64_t *bm;
	uint32_t state = 0;
	bool json = false, raw = false, have_start = false, set = false;
	char err[256];
	int c, rc, ret = EXIT_FAIL;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case D_START:
			if (cli_parse_size(optarg, &start) < 0 ||
			    start % DEVSTATE_PAGE_SIZE)
				return cli_usage("dirty", "bad start address '%s' (a multiple of 4096)",
						 optarg);
			have_start = true;
			break;
		case D_PAGES:
			if (cli_parse_size(optarg, &pages) < 0 || !pages ||
			    pages > (1ull << 36))
				return cli_usage("dirty", "bad page count '%s' (1 to 2^36)",
						 optarg);
			break;
		case D_STATE:
			if (devstate_state_parse(optarg, &state) < 0)
				return cli_usage("dirty", "unknown state '%s'", optarg);
			set = true;
			break;
		case D_RAW: raw = true; break;
		case D_JSON: json = true; break;
		case D_HELP: fputs(dirty_help, stdout); return EXIT_OK;
		default: return cli_bad_option("dirty", argv, c);
		}
	}
	if (argc - optind != 1)
		return cli_usage("dirty", "expected one DEVICE");
	if (!have_start || !pages)
		return cli_usage("dirty", "--start and --pages are required");
	words = (pages + 63) / 64;
	bm = calloc((size_t)words, sizeof(*bm));
	if (!bm)
		return cli_fail("dirty", "out of memory for %" PRIu64 " pages", pages);
	rc = devstate_device_open(&dev, argv[optind], 0, err, sizeof(err));
	if (rc < 0) {
		free(bm);
		return cli_fail(argv[optind], "%s", err);
	}
	rc = set ? devstate_device_set_state(dev, state) : 0;
	if (rc == 0)
		rc = devstate_device_dirty_bitmap(dev, start, pages, bm);
	if (rc < 0) {
		cli_fail(argv[optind], "%s", devstate_device_error(dev));
		goto out;
	}
	dirty = devstate_bitmap_count(bm, 0, pages);
	if (json) {
		struct json j;

		json_begin(&j, stdout);
		json_obj(&j, NULL);
		json_str(&j, "device", argv[optind]);
		json_u64(&j, "start", start);
		json_u64(&j, "pages", pages);
		json_u64(&j, "dirty", dirty);
		json_arr(&j, "runs");
		for (from = 0; devstate_bitmap_next_run(bm, pages, from, &rs, &rl);
		     from = rs + rl) {
			json_obj(&j, NULL);
			json_u64(&j, "start", start + rs * DEVSTATE_PAGE_SIZE);
			json_u64(&j, "pages", rl);
			json_end_obj(&j);
		}
		json_end_arr(&j);
		if (raw) {
			json_arr(&j, "bitmap");
			for (i = 0; i < words; i++)
				json_u64(&j, NULL, bm[i]);
			json_end_arr(&j);
		}
		json_end_obj(&j);
		json_finish(&j);
	} else {
		printf("dirty pages: %" PRIu64 " of %" PRIu64 " in 0x%" PRIx64 "-0x%" PRIx64 "\n",
		       dirty, pages, start, start + pages * DEVSTATE_PAGE_SIZE - 1);
		if (raw) {
			for (i = 0; i < words; i++)
				printf("%016" PRIx64 "%c", bm[i],
				       i % 4 == 3 || i + 1 == words ? '\n' : ' ');
		} else {
			for (from = 0;
			     devstate_bitmap_next_run(bm, pages, from, &rs, &rl);
			     from = rs + rl)
				printf("0x%" PRIx64 "-0x%" PRIx64 "\n",
				       start + rs * DEVSTATE_PAGE_SIZE,
				       start + (rs + rl) * DEVSTATE_PAGE_SIZE - 1);
		}
	}
	ret = EXIT_OK;
out:
	devstate_device_free(dev);
	free(bm);
	return ret;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target 2: a load session fed arbitrary bytes into a fake device.
 *
 * Input: one selector byte, then the stream.  The fake destination is
 * shaped after the stream's header when it has a plausible one (so that
 * valid streams load all the way), with a DEVICE_MEMORY region of the
 * same or another length (the loader re-cuts chunks), mapped or not.  The
 * stream is fed in pieces whose sizes the selector picks.
 *
 * Invariants (SPEC 6, 11): the device is RUNNING only after
 * devstate_load_finish() succeeded, which needs a stream that decodes to
 * END; a load that fails leaves the device STOPPED; the library's view of
 * the state is the fake's real state.
 *
 * A stream whose header says protocol family 2 (the kernel's migration
 * uAPI v2) goes into a fake:mig2 device instead (load_mig2()): flags from
 * the header's caps or from the selector, memory and config sized as
 * fuzz/make-corpus.sh saves them, so the seeds load all the way.  The same
 * invariants in v2 states: never RUNNING before a finish that needs END
 * and the device's acceptance of the data (leaving RESUMING), STOP after
 * any failure (the device's real state and the library's view), and no
 * use of the data session once its state was left (the fake counts
 * that: bad_fd_uses).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devstate.h"
#include "libdevstate/stream.h"
#include "transports/fake.h"
#include "fuzz/fuzz.h"

#define SMALL (64u << 10)

/* The header, if the stream starts with a valid one. */
static bool peek_header(const uint8_t *p, size_t n,
			struct devstate_stream_header *h)
{
	struct devstate_dec *d;
	size_t used;
	bool ok = false;

	if (devstate_dec_new(&d) < 0)
		return false;
	if (devstate_dec_feed(d, p, n, &used) == DEVSTATE_DEC_HEADER) {
		*h = *devstate_dec_header(d);
		ok = true;
	}
	devstate_dec_free(d);
	return ok;
}

static bool stream_ends(const uint8_t *p, size_t n)
{
	struct devstate_dec *d;
	size_t used;
	int rc = 0;

	if (devstate_dec_new(&d) < 0)
		return false;
	while (n) {
		rc = devstate_dec_feed(d, p, n, &used);
		if (rc < 0)
			break;
		p += used;
		n -= used;
	}
	devstate_dec_free(d);
	return rc == DEVSTATE_DEC_END;
}

/* Piece sizes for feeding, from the selector. */
static size_t piece_of(uint8_t sel, size_t left)
{
	size_t piece = left;

	switch (sel >> 5) {
	case 0:
		break;
	case 1:
		piece = 1;
		break;
	default:
		piece = (size_t)(sel >> 3) * 13 + 1;
		break;
	}
	return piece > left ? left : piece;
}

static void check_mig2_fds(struct devstate_fake *f)
{
	struct devstate_fake_mig2_stats st;

	devstate_fake_mig2_stats(f, &st);
	FZ_ASSERT(st.bad_fd_uses == 0);
}

static void load_mig2(uint8_t sel, const struct devstate_stream_header *h,
		      const uint8_t *data, size_t size)
{
	static const char *const flagset[] = {
		"stop-copy", "stop-copy+p2p", "stop-copy+pre-copy", "all"
	};
	struct devstate_fake_mig2_stats st;
	struct devstate_mig2_info info;
	struct devstate_device *dev;
	struct devstate_load *l;
	struct devstate_fake *f;
	char uri[256], err[512];
	uint64_t loads_before;
	size_t off, piece;
	uint32_t real;
	int rc, frc;

	/* selector bit 0: the header's flags (the source's; unknown bits
	 * would block the device, so only the known ones), else bits 1-2
	 * pick a set: a destination may lack what the source had; bit 4:
	 * 4K of memory, not what the seeds were saved from (the device
	 * refuses their data) */
	if (sel & 1)
		snprintf(uri, sizeof(uri),
			 "fake:mig2=%" PRIu32 ",memory=8K,config=200,zero=yes",
			 (h->caps & DEVSTATE_MIG2_F_KNOWN) |
			 DEVSTATE_MIG2_F_STOP_COPY);
	else
		snprintf(uri, sizeof(uri),
			 "fake:mig2=%s,memory=%s,config=200,zero=yes",
			 flagset[(sel >> 1) & 3], sel & 0x10 ? "4K" : "8K");
	FZ_ASSERT(devstate_device_open(&dev, uri, 0, err, sizeof(err)) == 0);
	FZ_ASSERT(devstate_device_protocol(dev) == DEVSTATE_PROTOCOL_MIG2);
	f = devstate_fake_of(dev);
	FZ_ASSERT(f);
	devstate_fake_mig2_stats(f, &st);
	loads_before = st.loads;
	FZ_ASSERT(devstate_load_new(&l, dev) == 0);
	rc = devstate_load_begin(l);
	FZ_ASSERT(rc == 0);
	FZ_ASSERT(devstate_fake_mig2_state(f) == DEVSTATE_MIG2_STOP);
	for (off = 0; off < size && rc == 0; off += piece) {
		piece = piece_of(sel, size - off);
		rc = devstate_load_feed(l, data + off, piece);
		real = devstate_fake_mig2_state(f);
		/* STOP until a family-2 header, RESUMING while data goes in
		 * (or STOP again after a failure); never RUNNING */
		FZ_ASSERT(real == DEVSTATE_MIG2_STOP ||
			  (rc == 0 && real == DEVSTATE_MIG2_RESUMING));
		FZ_ASSERT(devstate_device_mig2_state(dev) == real);
		check_mig2_fds(f);
	}
	if (rc < 0)
		FZ_ASSERT(devstate_load_error(l)[0]);
	frc = devstate_load_finish(l);
	real = devstate_fake_mig2_state(f);
	devstate_fake_mig2_stats(f, &st);
	if (getenv("FUZZ_LOAD_VERBOSE"))	/* which seeds load all the way */
		fprintf(stderr, "mig2 load (%s): feed %d, finish %d%s%s\n",
			uri, rc, frc, frc ? ": " : "",
			frc ? devstate_load_error(l) : "");
	if (frc == 0) {
		FZ_ASSERT(rc == 0);
		FZ_ASSERT(stream_ends(data, size));
		/* the device took the data (left RESUMING) */
		FZ_ASSERT(st.loads == loads_before + 1);
		FZ_ASSERT(real == DEVSTATE_MIG2_RUNNING);
	} else {
		FZ_ASSERT(devstate_load_error(l)[0]);
		/* a failed load never lets the device load what it took:
		 * leaving RESUMING by its arc (-> STOP) is where a driver
		 * loads, so the way back from RESUMING is a reset.  Only a
		 * stream that verified to END was handed over (and a
		 * later step failed). */
		FZ_ASSERT(st.loads == loads_before || stream_ends(data, size));
		FZ_ASSERT(real == DEVSTATE_MIG2_STOP);
	}
	FZ_ASSERT(!devstate_fake_mig2_session_open(f));
	FZ_ASSERT(devstate_device_mig2_state(dev) == real);
	FZ_ASSERT(devstate_device_mig2_info(dev, &info) == 0);
	FZ_ASSERT(info.state == real);
	check_mig2_fds(f);
	devstate_load_free(l);
	/* freeing the load leaves the device as it was */
	FZ_ASSERT(devstate_fake_mig2_state(f) == real);
	check_mig2_fds(f);
	devstate_device_free(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct devstate_stream_header h;
	struct devstate_device *dev;
	struct devstate_load *l;
	struct devstate_fake *f;
	uint8_t *fixed = NULL;
	char uri[256], err[512];
	uint8_t sel;
	size_t off, piece;
	int rc, frc = -1;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	if (sel & 8) {
		/* get past the CRCs: make them right */
		fixed = malloc(size ? size : 1);
		FZ_ASSERT(fixed);
		memcpy(fixed, data, size);
		fz_fix_crcs(fixed, size);
		data = fixed;
	}
	if (peek_header(data, size, &h) &&
	    h.protocol == DEVSTATE_PROTOCOL_MIG2) {
		load_mig2(sel, &h, data, size);
		free(fixed);
		return 0;
	}
	if (peek_header(data, size, &h) &&
	    h.config_size <= SMALL && h.region_len[DEVSTATE_REGION_CONFIG] <= SMALL &&
	    h.region_len[DEVSTATE_REGION_MEMORY] <= SMALL &&
	    h.region_len[DEVSTATE_REGION_BITMAP] <= 4096) {
		uint64_t chunk = h.region_len[DEVSTATE_REGION_MEMORY];

		if (chunk && (sel & 3) == 1)
			chunk = chunk / 2 ? chunk / 2 : 1;
		else if (chunk && (sel & 3) == 2)
			chunk = chunk * 3 <= SMALL ? chunk * 3 : chunk;
		snprintf(uri, sizeof(uri),
			 "fake:version=%" PRIu32 ",caps=%" PRIu32
			 ",config=%" PRIu64 ",chunk=%" PRIu64 ",bitmap=%" PRIu64
			 ",memory=64K,sysmem=1M,zero=yes,mmap=%s",
			 h.proto_version, h.caps, h.config_size, chunk,
			 h.region_len[DEVSTATE_REGION_BITMAP],
			 sel & 4 ? "no" : "yes");
	} else {
		snprintf(uri, sizeof(uri),
			 "fake:version=%u,memory=64K,chunk=16K,config=1K,sysmem=1M,bitmap=64,zero=yes,mmap=%s",
			 1 + (sel & 1), sel & 4 ? "no" : "yes");
	}
	if (devstate_device_open(&dev, uri, 0, err, sizeof(err)) < 0) {
		free(fixed);
		return 0;
	}
	f = devstate_fake_of(dev);
	FZ_ASSERT(f);
	FZ_ASSERT(devstate_load_new(&l, dev) == 0);
	rc = devstate_load_begin(l);
	FZ_ASSERT(rc == 0);
	FZ_ASSERT(devstate_fake_state(f) == DEVSTATE_STATE_STOP);
	for (off = 0; off < size && rc == 0; off += piece) {
		piece = piece_of(sel, size - off);
		rc = devstate_load_feed(l, data + off, piece);
		/* never RUNNING before finish */
		FZ_ASSERT(devstate_fake_state(f) == DEVSTATE_STATE_STOP);
	}
	if (rc < 0)
		FZ_ASSERT(devstate_load_error(l)[0]);
	frc = devstate_load_finish(l);
	if (frc == 0) {
		FZ_ASSERT(rc == 0);
		FZ_ASSERT(stream_ends(data, size));
		FZ_ASSERT(devstate_fake_state(f) == DEVSTATE_STATE_RUNNING);
	} else {
		FZ_ASSERT(devstate_load_error(l)[0]);
		FZ_ASSERT(devstate_fake_state(f) == DEVSTATE_STATE_STOP);
	}
	FZ_ASSERT(devstate_device_state(dev) == devstate_fake_state(f));
	devstate_load_free(l);
	/* freeing a failed load leaves the device as it was */
	FZ_ASSERT(devstate_fake_state(f) ==
		  (frc == 0 ? DEVSTATE_STATE_RUNNING : DEVSTATE_STATE_STOP));
	devstate_device_free(dev);
	free(fixed);
	return 0;
}

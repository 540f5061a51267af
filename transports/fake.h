/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The in-memory fake device: a strict *vendor-side* model of SPEC 3-8 and
 * every access rule of SPEC 11.  Opened as "fake:key=value,..." through
 * the transport table; this header is the test-only window into it (not
 * installed, not exported).
 *
 * URI keys (all optional; sizes take K/M/G suffixes):
 *   version=1|2            control layout version           (default 2)
 *   caps=none|device-memory|system-memory|device-memory+system-memory|N
 *                                                   (default both)
 *   memory=SIZE            device memory                    (default 16M)
 *   config=SIZE            config data size                 (default 64K)
 *   config-region=SIZE     DEVICE_CONFIG region length      (default = config)
 *   chunk=SIZE             DEVICE_MEMORY region length; 0 = no region
 *                          (alias memory-region)             (default 1M)
 *   bitmap=SIZE            DIRTY_BITMAP region length; 0 = no region
 *                          (alias bitmap-region)             (default 4K)
 *   ctl=SIZE               CTL region length (default: layout size); 0 = none
 *   sysmem=SIZE            system memory tracked            (default 1G)
 *   seed=N                 contents and workload seed       (default 1)
 *   workload=N             pages dirtied per device "tick"  (default 0)
 *   mmap=yes|no            data regions mappable            (default yes)
 *   log-limit=N            dirty-log capacity in pages before ENOSPC
 *                          (default 0 = unlimited)
 *   zero=yes|no            start with all-zero memory/config (default no;
 *                          a destination usually wants yes)
 *   mig2=FLAGS             speak the kernel's migration uAPI v2 instead
 *                          (protocol family 2): FLAGS is stop-copy,
 *                          p2p, pre-copy joined by '+', "all", or a
 *                          number (any bits: unknown ones must block).
 *                          The state is memory || config; see
 *                          fake-mig2.c for the model.  With it, the
 *                          region-protocol ops still answer but the
 *                          library never uses them.
 *   state-file=PATH        test knob: at open and at every confirmed state
 *                          change, write "state=NAME loaded=N digest=0xCRC"
 *                          (state, memory batches + configs loaded since
 *                          open, contents digest) to PATH atomically, so
 *                          a test can check the state after a SIGKILL
 *
 * A device "tick" happens (when workload > 0 and the device is running,
 * i.e. STOP clear) at the start of every device_memory.size read and of
 * every device_state write: it dirties `workload` device-memory pages and,
 * while LOGGING, `workload` system-memory pages, chosen by a seeded PRNG.
 */
#ifndef DEVSTATE_FAKE_H
#define DEVSTATE_FAKE_H

#include <stdint.h>
#include <stddef.h>

struct devstate_fake;
struct devstate_device;

/* The fake behind a device handle, or NULL if it is not a fake. */
struct devstate_fake *devstate_fake_of(struct devstate_device *dev);

/* Fault injection.  Operations are counted from 1 over every transport
 * op (ctl_read, ctl_write, data_read, data_write, data_map).  Operation
 * number nth fails with -err (err > 0); 0 disables. */
void devstate_fake_fail_at(struct devstate_fake *f, uint64_t nth, int err);
/* Operation number nth, if it is a data-region transfer, is split into
 * short transfers (the transport must retry them); 0 disables. */
void devstate_fake_short_at(struct devstate_fake *f, uint64_t nth);
/* Every data-region transfer is short (for retry tests). */
void devstate_fake_short_all(struct devstate_fake *f, int on);
/* Operations performed so far. */
uint64_t devstate_fake_op_count(const struct devstate_fake *f);
/* Per-kind counters for benchmarks: ctl reads/writes, data reads/writes. */
struct devstate_fake_counters {
	uint64_t ctl_reads, ctl_writes, data_reads, data_writes, maps;
	uint64_t chunks_got, chunks_set;
	/* inner data transfers that moved less than asked (and were
	 * retried): shows that short transfers happened */
	uint64_t short_transfers;
	/* nanoseconds the device spent on its own side of the data path:
	 * GET_BUFFER filling the DEVICE_MEMORY region from its memory (or
	 * batch), SET_BUFFER taking the region in and applying a completed
	 * batch.  A real device does this work itself (DMA, firmware); the
	 * benchmark reports the library's time without it next to the
	 * total (bench/README) */
	uint64_t fill_ns, drain_ns;
};
void devstate_fake_counters(const struct devstate_fake *f,
			    struct devstate_fake_counters *c);

/* The state the device is really in (the library cannot read it). */
uint32_t devstate_fake_state(const struct devstate_fake *f);

/* Device contents. */
const uint8_t *devstate_fake_memory(const struct devstate_fake *f,
				    size_t *len);
uint8_t *devstate_fake_memory_mut(struct devstate_fake *f, size_t *len);
const uint8_t *devstate_fake_config(const struct devstate_fake *f,
				    size_t *len);
/* Mark device-memory page (4 KiB) dirty as if the device wrote it; the
 * caller changes the bytes through devstate_fake_memory_mut() first. */
void devstate_fake_touch_memory(struct devstate_fake *f, uint64_t page);
/* Device writes system-memory page (recorded only while LOGGING). */
void devstate_fake_touch_sysmem(struct devstate_fake *f, uint64_t page);

/* Run the seeded workload for `pages` pages now (as a tick does). */
void devstate_fake_workload(struct devstate_fake *f, unsigned pages);
/* Enable/disable automatic ticks (default: on when workload=N > 0). */
void devstate_fake_set_auto_workload(struct devstate_fake *f, unsigned pages);

/* Truth: every system-memory page the device wrote while LOGGING since
 * the last transition into a LOGGING state from a non-LOGGING state
 * (cumulative; never cleared by queries).  Bitmap in devstate.h format;
 * *npages = sysmem / 4096. */
const uint64_t *devstate_fake_sysmem_truth(const struct devstate_fake *f,
					   uint64_t *npages);

/* Number of memory batches fully loaded (destination side), and whether
 * the config has been loaded in the current STOP period. */
uint64_t devstate_fake_batches_loaded(const struct devstate_fake *f);
int devstate_fake_config_loaded(const struct devstate_fake *f);

/* ---------------------------------------------------------------- */
/* mig2=FLAGS fakes (transports/fake-mig2.c).  Fault injection and the
 * op counter above cover the mig2 ops too (probe, get/set state, read,
 * write, pre-copy info, data size, reset). */

/* The v2 state the device is really in; UINT32_MAX without mig2=. */
uint32_t devstate_fake_mig2_state(struct devstate_fake *f);
/* The device writes `pages` memory pages now (pending data if it is
 * pre-copying). */
void devstate_fake_mig2_workload(struct devstate_fake *f, unsigned pages);
/* An injected set-state failure leaves the device in ERROR (as a driver
 * whose step failed half-way) instead of where it was. */
void devstate_fake_mig2_fail_to_error(struct devstate_fake *f, int on);
/* 1 while a data session (the kernel's data fd) is open. */
int devstate_fake_mig2_session_open(struct devstate_fake *f);

struct devstate_fake_mig2_stats {
	uint64_t arcs;		/* state changes performed */
	uint64_t refused_arcs;	/* requests that were not one arc */
	uint64_t sessions;	/* data sessions opened */
	uint64_t bytes_read, bytes_written;
	uint64_t dirtied;	/* pages dirtied while pre-copying */
	uint64_t bad_fd_uses;	/* read/write/info without a session: the
				   library must never cause one */
	uint64_t loads, loads_refused;
	uint64_t resets;
};
void devstate_fake_mig2_stats(struct devstate_fake *f,
			      struct devstate_fake_mig2_stats *st);

#endif /* DEVSTATE_FAKE_H */

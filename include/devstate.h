/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdevstate - save and restore the state of a VFIO device for live
 * migration (the VFIO device-state interface: control region plus config,
 * memory and dirty-bitmap data regions; states RUNNING / STOP / LOGGING).
 *
 * Conventions (see libdevstate(3)):
 * - Every function returns 0 (or a non-negative count where stated) on
 *   success and a negative errno on failure.  Functions that can fail for a
 *   reason worth printing also leave a one-line sentence behind, readable
 *   with devstate_device_error() / devstate_save_error() /
 *   devstate_load_error().
 * - Handles are opaque.  A constructor ("..._new(&out, ...)") leaves
 *   *out untouched on failure; the handle belongs to the caller, who frees
 *   it with the matching ..._free() (NULL is accepted).
 * - Nothing here is thread-safe on one handle; distinct handles are
 *   independent.
 */
#ifndef DEVSTATE_H
#define DEVSTATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Device state (SPEC 4): bit 0 STOP, bit 1 LOGGING.                   */

#define DEVSTATE_STATE_RUNNING		0u
#define DEVSTATE_STATE_STOP		1u
#define DEVSTATE_STATE_LOGGING		2u	/* flag, never alone */
#define DEVSTATE_STATE_RUNNING_LOGGING	2u
#define DEVSTATE_STATE_STOP_LOGGING	3u
#define DEVSTATE_STATE_MAX		3u

/* Capabilities read from the control region. */
#define DEVSTATE_CAP_DEVICE_MEMORY	1u
#define DEVSTATE_CAP_SYSTEM_MEMORY	2u
#define DEVSTATE_CAP_ALL		3u

/* The page size of system memory for dirty bitmaps (SPEC 11). */
#define DEVSTATE_PAGE_SIZE		4096u

/* Device-state regions (SPEC 2). */
enum devstate_region {
	DEVSTATE_REGION_CTL = 0,
	DEVSTATE_REGION_CONFIG = 1,
	DEVSTATE_REGION_MEMORY = 2,
	DEVSTATE_REGION_BITMAP = 3
};
#define DEVSTATE_REGION_COUNT 4

/* Why a device cannot be migrated (SPEC 5).  Stable numbers. */
enum devstate_blocker {
	DEVSTATE_BLOCKER_NONE = 0,
	DEVSTATE_BLOCKER_NO_STATE_REGIONS = 1, /* no device-state region at all */
	DEVSTATE_BLOCKER_NO_CTL = 2,
	DEVSTATE_BLOCKER_NO_CONFIG = 3,
	DEVSTATE_BLOCKER_CTL_TOO_SMALL = 4,
	DEVSTATE_BLOCKER_BAD_VERSION = 5,
	DEVSTATE_BLOCKER_UNKNOWN_CAPS = 6,
	DEVSTATE_BLOCKER_NO_MEMORY_REGION = 7,
	DEVSTATE_BLOCKER_NO_BITMAP_REGION = 8,
	DEVSTATE_BLOCKER_CONFIG_REGION_EMPTY = 9,
	DEVSTATE_BLOCKER_MEMORY_REGION_EMPTY = 10,
	DEVSTATE_BLOCKER_BITMAP_REGION_EMPTY = 11,
	DEVSTATE_BLOCKER_IO = 12, /* reading version/caps failed */
	DEVSTATE_BLOCKER_MIG2_FLAGS = 13 /* uAPI v2 flags without STOP_COPY
					    or with an unknown bit */
};

/* Name of a state ("running", "stop", "running+logging",
 * "stop+logging"), or NULL for an invalid value. */
const char *devstate_state_name(uint32_t state);
/* Parse such a name (also accepts "0".."3"); 0 or -EINVAL. */
int devstate_state_parse(const char *name, uint32_t *state);
/* Stable identifier of a blocker code ("no-ctl-region", ...). */
const char *devstate_blocker_name(enum devstate_blocker code);
/* Name of a region ("ctl", "config", "memory", "bitmap"). */
const char *devstate_region_name(enum devstate_region region);

/* ------------------------------------------------------------------ */
/* Dirty bitmaps (SPEC 8).  A bitmap is an array of uint64_t words in
 * host order; bit i of word w stands for page 64*w + i (on little-endian
 * hosts this is exactly the wire format: little-endian 64-bit words).
 * The caller owns every bitmap; none of these functions allocates.     */

/* OR nbits bits of src (a little-endian byte array, bit i = byte i/8
 * bit i%8, src_bits bits long) starting at src bit 0 into dst starting at
 * bit dst_bit.  No bit of dst outside [dst_bit, dst_bit + nbits) changes. */
void devstate_bitmap_or(uint64_t *dst, uint64_t dst_bit, const void *src,
			uint64_t nbits);
/* Set bits [first, first + n) of dst. */
void devstate_bitmap_set_range(uint64_t *dst, uint64_t first, uint64_t n);
/* Number of set bits in [first, first + n). */
uint64_t devstate_bitmap_count(const uint64_t *bm, uint64_t first,
			       uint64_t n);
/* Find the first run of set bits at or after bit from, below nbits.
 * Returns 1 and fills *start and *len, or 0 when there is none. */
int devstate_bitmap_next_run(const uint64_t *bm, uint64_t nbits,
			     uint64_t from, uint64_t *start, uint64_t *len);
/* Convert a 4 KiB-page bitmap of npages pages into one at a granularity
 * of (4096 << shift) bytes for shift >= 0 (OR-combine) or (4096 >> -shift)
 * for shift < 0 (each bit repeated).  dst must hold the converted bit
 * count; it is overwritten, not ORed.  0 or -EINVAL (|shift| > 12). */
int devstate_bitmap_regrain(uint64_t *dst, const uint64_t *src,
			    uint64_t npages, int shift);

/* ------------------------------------------------------------------ */
/* Devices.                                                            */

struct devstate_device;

/* Open flags. */
#define DEVSTATE_OPEN_INSPECT	(1u << 0) /* open a blocked device for
					     inspection only */

/*
 * Open the device named by uri: "fake:[key=value,...]", "file:PATH" (a
 * snapshot, read-only) or "vfio:..." (see devstate-cli(1)).  Negotiates
 * the protocol (SPEC 5).  A blocked device fails with -EOPNOTSUPP unless
 * DEVSTATE_OPEN_INSPECT is given, in which case the handle is returned but
 * every operation that would touch device state fails with -EOPNOTSUPP.
 * On failure, a sentence is written to errbuf (if not NULL) and *out is
 * untouched.  The device starts (and is assumed) RUNNING.
 */
int devstate_device_open(struct devstate_device **out, const char *uri,
			 unsigned flags, char *errbuf, size_t errlen);
/* Close the device and release the transport.  NULL is a no-op. */
void devstate_device_free(struct devstate_device *dev);

/* The last error sentence for this handle ("" if none).  Owned by the
 * handle, valid until the next call on it. */
const char *devstate_device_error(const struct devstate_device *dev);
/* Blocker code (DEVSTATE_BLOCKER_NONE when migratable) and, if reason is
 * not NULL, its sentence (owned by the handle). */
enum devstate_blocker devstate_device_blocker(const struct devstate_device *dev,
					      const char **reason);
/* Transport name: "fake", "file", "vfio". */
const char *devstate_device_transport(const struct devstate_device *dev);
/* Control-layout version and caps (0 if they could not be read). */
uint32_t devstate_device_version(const struct devstate_device *dev);
uint32_t devstate_device_caps(const struct devstate_device *dev);
/* The state the library last confirmed (SPEC 11: it cannot be read).
 * DEVSTATE_STATE_NONE on a protocol-family-2 handle, whose states are
 * another set (devstate_device_mig2_state()). */
uint32_t devstate_device_state(const struct devstate_device *dev);
#define DEVSTATE_STATE_NONE		0xffffffffu

struct devstate_region_info {
	int present;		/* 0: the device has no such region */
	uint64_t size;		/* bytes */
	int mappable;		/* data can be mmapped */
};
/* Describe one of the four device-state regions. 0 or -EINVAL. */
int devstate_device_region(const struct devstate_device *dev,
			   enum devstate_region region,
			   struct devstate_region_info *info);
/* Read device_config.size (allowed in every state). */
int devstate_device_config_size(struct devstate_device *dev, uint64_t *size);
/* Set the device state (SPEC 4).  On failure the library's view of the
 * state is unchanged and an error sentence is left. */
int devstate_device_set_state(struct devstate_device *dev, uint32_t state);
/* Query the system-memory dirty bitmap for [start_addr, start_addr +
 * page_nr * 4096) through the slicer and OR it into bitmap (bit 0 = the
 * page at start_addr).  A device that reports ENOSPC (log overflow) gets
 * the whole slice marked dirty.  Needs cap SYSTEM_MEMORY. */
int devstate_device_dirty_bitmap(struct devstate_device *dev,
				 uint64_t start_addr, uint64_t page_nr,
				 uint64_t *bitmap);
/* A CRC-32 over the device's memory and config contents, for transports
 * that can read them back (the fake device); -EOPNOTSUPP otherwise (a
 * snapshot holds the vendor's opaque batches, not the contents). */
int devstate_device_digest(struct devstate_device *dev, uint32_t *crc);

/* ------------------------------------------------------------------ */
/* Protocol families.  A device speaks one, found at open by probing:
 * the kernel's migration uAPI v2 first, then the region protocol.       */

#define DEVSTATE_PROTOCOL_REGIONS	1u /* the proposal's device-state
					      regions (everything above) */
#define DEVSTATE_PROTOCOL_MIG2		2u /* the kernel's VFIO migration
					      uAPI v2 (MIG_DEVICE_STATE and a
					      data fd) */
/* Which family dev speaks (DEVSTATE_PROTOCOL_*); 0 when a blocked device
 * was opened for inspection before its family was known. */
uint32_t devstate_device_protocol(const struct devstate_device *dev);

/*
 * uAPI v2 states, numbered as the kernel's enum vfio_device_mig_state.
 * The saving group is STOP_COPY, PRE_COPY and PRE_COPY_P2P.
 */
enum devstate_mig2_state {
	DEVSTATE_MIG2_ERROR = 0,	/* failed; only a reset leaves it */
	DEVSTATE_MIG2_STOP = 1,
	DEVSTATE_MIG2_RUNNING = 2,
	DEVSTATE_MIG2_STOP_COPY = 3,	/* saving group */
	DEVSTATE_MIG2_RESUMING = 4,
	DEVSTATE_MIG2_RUNNING_P2P = 5,	/* needs P2P */
	DEVSTATE_MIG2_PRE_COPY = 6,	/* saving group; needs PRE_COPY */
	DEVSTATE_MIG2_PRE_COPY_P2P = 7,	/* saving group; needs P2P|PRE_COPY */
	DEVSTATE_MIG2_NR_STATES
};

/*
 * uAPI v2 device flags (vfio_device_feature_migration.flags).  STOP_COPY
 * is mandatory; P2P and PRE_COPY are optional.  A device with any other
 * bit is blocked (DEVSTATE_BLOCKER_MIG2_FLAGS).
 */
#define DEVSTATE_MIG2_F_STOP_COPY	(1u << 0)
#define DEVSTATE_MIG2_F_P2P		(1u << 1)
#define DEVSTATE_MIG2_F_PRE_COPY	(1u << 2)
#define DEVSTATE_MIG2_F_KNOWN		(DEVSTATE_MIG2_F_STOP_COPY | \
					 DEVSTATE_MIG2_F_P2P | \
					 DEVSTATE_MIG2_F_PRE_COPY)

/* "stop-copy", "pre-copy-p2p", ...; NULL for a number that is no state. */
const char *devstate_mig2_state_name(uint32_t state);
/* The state such a name names; 0 or -EINVAL (*state untouched). */
int devstate_mig2_state_parse(const char *name, uint32_t *state);

struct devstate_mig2_info {
	uint64_t flags;			/* DEVSTATE_MIG2_F_* */
	uint32_t state;			/* as the device reports it now */
	int data_size_status;		/* 0, or -errno: -EOPNOTSUPP when the
					   device does not report it */
	uint64_t stop_copy_bytes;	/* MIG_DATA_SIZE: estimate of the
					   stop-copy data, when status 0 */
	int precopy_status;		/* 0 in PRE_COPY / PRE_COPY_P2P with
					   a data session open, else -errno
					   (-EBADF outside pre-copy) */
	uint64_t initial_bytes;		/* PRECOPY_INFO, when status 0 */
	uint64_t dirty_bytes;
};
/* Ask a protocol-2 device for its flags, state, stop-copy size and (while
 * pre-copying) pre-copy info.  -EOPNOTSUPP on a protocol-1 handle; the
 * state read updates devstate_device_mig2_state(). */
int devstate_device_mig2_info(struct devstate_device *dev,
			      struct devstate_mig2_info *info);
/* The v2 state the library last confirmed (DEVSTATE_MIG2_ERROR on a
 * protocol-1 handle). */
uint32_t devstate_device_mig2_state(const struct devstate_device *dev);
/* Take a protocol-2 device to state, one arc at a time along the kernel's
 * route.  A target in the saving group or RESUMING opens a data session
 * that only the session API can use; this call is for the other states
 * and for inspection.  On failure the state the device then reports is
 * recorded and named in the error sentence.  -EOPNOTSUPP on a protocol-1
 * handle, -EINVAL when the core has no route. */
int devstate_device_mig2_set_state(struct devstate_device *dev,
				   uint32_t state);

/* ------------------------------------------------------------------ */
/* Stream codecs (SPEC 9). */
enum devstate_codec {
	DEVSTATE_CODEC_RAW = 0,
	DEVSTATE_CODEC_DEFLATE = 1,	/* zlib format */
	DEVSTATE_CODEC_ZSTD = 2,
	DEVSTATE_CODEC_ZERO = 3		/* all-zero marker (never chosen) */
};
const char *devstate_codec_name(enum devstate_codec codec);
int devstate_codec_parse(const char *name, enum devstate_codec *codec);

/* The stream goes out through this callback: return 0, or a negative
 * errno to fail the save.  buf is valid only during the call. */
typedef int (*devstate_write_fn)(void *opaque, const void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Save session (source), one call per VMM migration phase (SPEC 6).   */

struct devstate_save;

struct devstate_save_opts {
	enum devstate_codec codec;	/* default RAW */
	int level;			/* codec level, 0 = codec default */
	int record_bitmaps;		/* write DIRTY_BITMAP sections for every
					   log-sync (a snapshot wants them; a
					   VMM's own stream usually not) */
};

struct devstate_save_stats {
	uint64_t passes;		/* memory batches moved */
	uint64_t memory_bytes;		/* device-memory bytes moved */
	uint64_t config_bytes;
	uint64_t stream_bytes;		/* bytes handed to the write callback */
	uint64_t sections;
	uint64_t dirty_pages;		/* pages found dirty by log-syncs */
	uint64_t stop_copy_bytes;	/* memory + config moved in complete */
};

/*
 * Create a save session on dev (borrowed: dev must outlive the session).
 * opts may be NULL for defaults; it is copied.  write/opaque receive the
 * stream.  The device must be migratable.
 */
int devstate_save_new(struct devstate_save **out, struct devstate_device *dev,
		      const struct devstate_save_opts *opts,
		      devstate_write_fn write, void *opaque);
/* Frees the session.  A session that did not reach cleanup is cancelled
 * first (the device is set back to RUNNING). */
void devstate_save_free(struct devstate_save *s);
/* Stream header, whole device-memory snapshot, then RUNNING|LOGGING. */
int devstate_save_setup(struct devstate_save *s);
/* Device-memory bytes waiting to move (freezes a batch unless an unread
 * one is pending, SPEC 11). */
int devstate_save_pending(struct devstate_save *s, uint64_t *bytes);
/* Move the pending batch (freezing one first if none is pending). */
int devstate_save_iterate(struct devstate_save *s);
/* Dirty system pages in [start_addr, start_addr + page_nr * 4096), ORed
 * into bitmap. */
int devstate_save_log_sync(struct devstate_save *s, uint64_t start_addr,
			   uint64_t page_nr, uint64_t *bitmap);
/* Optional: STOP|LOGGING now (vCPUs stopped), so that the final
 * log_sync calls are answered by a stopped device and recorded before the
 * END section.  complete() does it if this was not called. */
int devstate_save_stop(struct devstate_save *s);
/* STOP|LOGGING (if not yet), drain and move the final dirty memory, then
 * the whole config, then the END section.  log_sync stays allowed until
 * cleanup (but is no longer recorded in the stream). */
int devstate_save_complete(struct devstate_save *s);
/* STOP (after complete): the device stays stopped for hand-over. */
int devstate_save_cleanup(struct devstate_save *s);
/* Abandon the migration: the device ends RUNNING with LOGGING clear. */
int devstate_save_cancel(struct devstate_save *s);
const char *devstate_save_error(const struct devstate_save *s);
void devstate_save_get_stats(const struct devstate_save *s,
			     struct devstate_save_stats *stats);

/* ------------------------------------------------------------------ */
/* Load session (destination).                                         */

struct devstate_load;

struct devstate_load_stats {
	uint64_t passes;
	uint64_t memory_bytes;
	uint64_t config_bytes;
	uint64_t stream_bytes;
	uint64_t sections;
	uint64_t bitmap_sections;	/* DIRTY_BITMAP sections seen */
};

/* Create a load session on dev (borrowed). */
int devstate_load_new(struct devstate_load **out, struct devstate_device *dev);
/* Frees the session.  A load that did not finish leaves the device
 * STOPPED (it is never set RUNNING with partial state). */
void devstate_load_free(struct devstate_load *l);
/* Set the device STOP. */
int devstate_load_begin(struct devstate_load *l);
/* Feed any number of stream bytes.  Fails (device left STOPPED) on a
 * corrupt stream, a header that does not fit the device, or a device
 * error.  Raw device-memory bytes go from buf straight into the
 * DEVICE_MEMORY region; a chunk is committed (pos, SET_BUFFER) only after
 * the CRC of every section in it verified.  buf is borrowed for the call
 * only. */
int devstate_load_feed(struct devstate_load *l, const void *buf, size_t len);
/* The END section was seen and everything applied: set RUNNING. */
int devstate_load_finish(struct devstate_load *l);
const char *devstate_load_error(const struct devstate_load *l);
void devstate_load_get_stats(const struct devstate_load *l,
			     struct devstate_load_stats *stats);

/* ------------------------------------------------------------------ */
/* Snapshot files (SPEC 9).                                            */

struct devstate_file;	/* an atomic snapshot writer */

/* Create .BASENAME.tmp.XXXXXX in PATH's directory; commit fsyncs it and
 * renames it over PATH; free without commit removes it, so a failed save
 * never destroys the snapshot already at PATH. */
int devstate_file_create(struct devstate_file **out, const char *path);
/* A devstate_write_fn for devstate_save_new(), opaque = the file. */
int devstate_file_write(void *file, const void *buf, size_t len);
int devstate_file_commit(struct devstate_file *f);
void devstate_file_free(struct devstate_file *f);

/* Check a snapshot: structure, every CRC, the END count and stream CRC.
 * 0 when sound; otherwise -EINVAL / -EIO etc. and a sentence in errbuf. */
struct devstate_verify_report {
	uint32_t protocol_version;
	uint32_t caps;
	uint64_t sections;
	uint64_t memory_sections;
	uint64_t passes;
	uint64_t memory_bytes;
	uint64_t config_bytes;
	uint64_t bitmap_sections;
	uint64_t stream_bytes;
	char ident[65];
	uint32_t protocol;		/* DEVSTATE_PROTOCOL_*; with
					   DEVSTATE_PROTOCOL_MIG2, caps holds
					   the v2 flags and memory_bytes and
					   passes count the device's data */
};
int devstate_verify_file(const char *path, struct devstate_verify_report *rep,
			 char *errbuf, size_t errlen);

/* One section of a snapshot, as devstate_inspect_file() reports it. */
struct devstate_section_info {
	uint32_t type;		/* 1 memory, 2 config, 3 dirty bitmap, 4 end,
				   5 mig2 data */
	const char *type_name;	/* "memory", "config", "dirty-bitmap", "end",
				   "mig2-data" */
	enum devstate_codec codec;
	uint64_t offset;	/* of the section in the file */
	uint64_t length;	/* bytes of the section in the file */
	uint64_t raw_len;	/* payload bytes after decoding */
	uint64_t stored_len;	/* payload bytes in the file */
	uint32_t pass;		/* memory: batch pass number */
	uint64_t batch_size;	/* memory */
	uint64_t pos;		/* memory: chunk position in the batch */
	uint64_t start_page;	/* dirty bitmap */
	uint64_t page_nr;	/* dirty bitmap */
	uint32_t mig2_flags;	/* mig2 data: 1 = stop-copy data (pass is the
				   pass, pos the running data offset) */
	int crc_ok;		/* always 1: a bad section ends the walk */
};
/* Return 0 to go on, a negative errno to stop the walk. */
typedef int (*devstate_section_fn)(void *opaque,
				   const struct devstate_section_info *info);
/* Walk a snapshot like devstate_verify_file(), calling fn for every
 * verified section including END.  A corrupt section ends the walk with
 * an error naming it (the sections before it were reported). */
int devstate_inspect_file(const char *path, devstate_section_fn fn,
			  void *opaque, struct devstate_verify_report *rep,
			  char *errbuf, size_t errlen);

/* Library version string, e.g. "0.1.0". */
const char *devstate_version(void);

/* ------------------------------------------------------------------ */
/* VFIO devices (the "vfio" transport).                                */

/* devstate_device_open_vfio_fd() flag: from a successful open on, the
 * library owns fd and closes it in devstate_device_free(). */
#define DEVSTATE_OPEN_CLOSE_FD	(1u << 1)

/*
 * Open a VFIO device from a device file descriptor the VMM already has
 * (VFIO_GROUP_GET_DEVICE_FD).  The fd is borrowed: the library never
 * closes it unless flags has DEVSTATE_OPEN_CLOSE_FD, and never on a failed
 * open.  options is NULL or the keys of a "vfio:" device string
 * ("type=N"); flags may also have DEVSTATE_OPEN_INSPECT.  Otherwise as
 * devstate_device_open(); the device is the same as "vfio:fd=N".
 */
int devstate_device_open_vfio_fd(struct devstate_device **out, int fd,
				 const char *options, unsigned flags,
				 char *errbuf, size_t errlen);

/* VFIO_DEVICE_FLAGS_* as the kernel reports them. */
#define DEVSTATE_VFIO_DEVICE_RESET	(1u << 0)
#define DEVSTATE_VFIO_DEVICE_PCI	(1u << 1)
#define DEVSTATE_VFIO_DEVICE_PLATFORM	(1u << 2)
#define DEVSTATE_VFIO_DEVICE_AMBA	(1u << 3)
#define DEVSTATE_VFIO_DEVICE_CCW	(1u << 4)
#define DEVSTATE_VFIO_DEVICE_AP		(1u << 5)
#define DEVSTATE_VFIO_DEVICE_FSL_MC	(1u << 6)
#define DEVSTATE_VFIO_DEVICE_CAPS	(1u << 7)

struct devstate_vfio_info {
	uint32_t flags;		/* DEVSTATE_VFIO_DEVICE_* */
	uint32_t num_regions;	/* region indexes 0 .. num_regions - 1 */
	uint32_t num_irqs;
	uint32_t state_type;	/* region type of the device-state regions */
	int state_searched;	/* 0 on a CCW device: its type 2 is
				   VFIO_REGION_TYPE_CCW, never device state */
	char iommu[16];		/* "type1v2", "type1", "noiommu"; "" when
				   the device was opened from an fd */
};

/* VFIO_REGION_INFO_FLAG_* as the kernel reports them. */
#define DEVSTATE_VFIO_REGION_READ	(1u << 0)
#define DEVSTATE_VFIO_REGION_WRITE	(1u << 1)
#define DEVSTATE_VFIO_REGION_MMAP	(1u << 2)
#define DEVSTATE_VFIO_REGION_CAPS	(1u << 3)

/* Sparse mmap areas reported in struct devstate_vfio_region (a region
 * may have more: nr_areas counts them all). */
#define DEVSTATE_VFIO_AREAS_MAX		16

struct devstate_vfio_area {
	uint64_t offset;	/* within the region */
	uint64_t size;
};

struct devstate_vfio_region {
	uint32_t index;
	int status;		/* 0, or the negative errno the kernel gave
				   for this index (-EINVAL: no such region,
				   e.g. VGA on a device that is not VGA);
				   the other fields are then 0 */
	uint32_t flags;		/* DEVSTATE_VFIO_REGION_* */
	uint64_t size;		/* bytes */
	uint64_t offset;	/* of the region in the device fd */
	int has_type;		/* a VFIO_REGION_INFO_CAP_TYPE was found */
	uint32_t type;
	uint32_t subtype;
	int state_region;	/* the enum devstate_region it is, or -1 */
	int msix_mappable;	/* VFIO_REGION_INFO_CAP_MSIX_MAPPABLE */
	int sparse;		/* VFIO_REGION_INFO_CAP_SPARSE_MMAP: only the
				   areas below may be mapped */
	uint32_t nr_areas;
	struct devstate_vfio_area areas[DEVSTATE_VFIO_AREAS_MAX];
	uint32_t other_caps;	/* capabilities of other ids (skipped) */
};

/* The device as VFIO_DEVICE_GET_INFO described it.  -EOPNOTSUPP when dev
 * is not a VFIO device. */
int devstate_device_vfio_info(const struct devstate_device *dev,
			      struct devstate_vfio_info *info);
/* Region index as VFIO_DEVICE_GET_REGION_INFO and its capability chain
 * described it.  -EOPNOTSUPP when dev is not a VFIO device, -ERANGE past
 * the last index. */
int devstate_device_vfio_region(const struct devstate_device *dev,
				uint32_t index,
				struct devstate_vfio_region *region);

#ifdef __cplusplus
}
#endif

#endif /* DEVSTATE_H */

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Transports move bytes; they decide nothing.  One file per backend, each
 * with a static const ops table registered in registry.c.  Every op
 * returns 0 or a negative errno, and leaves a sentence in err (naming the
 * region and offset involved) when it fails.
 *
 * Short transfers and EINTR on data regions are retried inside the
 * transport.  Control-region accesses are single fields (4 or 8 bytes)
 * and are never split: a short control access is -EIO.
 */
#ifndef DEVSTATE_TRANSPORT_H
#define DEVSTATE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "libdevstate/core.h"

#define DEVSTATE_ERR_MAX 256

struct devstate_transport_ops {
	const char *name;	/* URI scheme: "fake", "file", "vfio" */
	const char *help;	/* one line for --help */

	/* args: the URI after "name:".  On success *priv is the
	 * transport's private state. */
	int (*open)(const char *args, void **priv, char *err, size_t errlen);
	void (*close)(void *priv);

	/* Which device-state regions exist, their sizes, and whether the
	 * data can be mapped. */
	int (*regions)(void *priv, struct devstate_regions *out,
		       char *err, size_t errlen);

	/* One control field: off/len exactly as in the layout. */
	int (*ctl_read)(void *priv, uint32_t off, void *buf, uint32_t len,
			char *err, size_t errlen);
	int (*ctl_write)(void *priv, uint32_t off, const void *buf,
			 uint32_t len, char *err, size_t errlen);

	/* Data regions (CONFIG, MEMORY, BITMAP). */
	int (*data_read)(void *priv, enum devstate_region r, uint64_t off,
			 void *buf, size_t len, char *err, size_t errlen);
	int (*data_write)(void *priv, enum devstate_region r, uint64_t off,
			  const void *buf, size_t len, char *err,
			  size_t errlen);
	/* Optional (NULL or -EOPNOTSUPP: use read/write): map the whole
	 * data region; the mapping lives until close. */
	int (*data_map)(void *priv, enum devstate_region r, void **addr,
			char *err, size_t errlen);

	/* Optional: CRC-32 over the device's memory and config contents
	 * (-EOPNOTSUPP when they cannot be read back). */
	int (*digest)(void *priv, uint32_t *crc);

	/* Optional: one line listing the regions the device has (for the
	 * "no device-state regions" blocker), e.g. "0 (128 KiB), 7 (4 KiB)". */
	void (*describe)(void *priv, char *buf, size_t len);

	/*
	 * Protocol family 2: the kernel's migration uAPI v2
	 * (VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE and a data fd).  A transport
	 * that cannot speak it leaves every mig2_* op NULL.  States are
	 * DEVSTATE_MIG2_* (libdevstate/mig2.h), flags DEVSTATE_MIG2_F_*.
	 * The core (mig2.c) decides every arc; these ops only carry it out.
	 */

	/* 0 with *flags when the device speaks uAPI v2 (the MIGRATION
	 * feature answered); -EOPNOTSUPP when it does not (the region
	 * protocol is probed next); another -errno is a failure. */
	int (*mig2_probe)(void *priv, uint64_t *flags, char *err,
			  size_t errlen);
	/* The state the device reports now. */
	int (*mig2_get_state)(void *priv, uint32_t *state, char *err,
			      size_t errlen);
	/* Request one arc (the caller checked it with the core).  The data
	 * session: a data fd the device returns replaces the current one
	 * (which is closed); without a new one the current one is kept only
	 * when both states are in the saving group (PRE_COPY* -> STOP_COPY
	 * carries on reading the same fd), else it is closed.  On failure
	 * the current data fd is closed: it is never reused. */
	int (*mig2_set_state)(void *priv, uint32_t state, char *err,
			      size_t errlen);
	/* Read up to len bytes of migration data from the current data fd:
	 * 0 with *got > 0; 0 with *got == 0 at the end of what the device has
	 * now (pre-copy: ENOMSG or a 0-byte read; stop-copy: end of file).
	 * EINTR is retried.  -EBADF when there is no data fd. */
	int (*mig2_read)(void *priv, void *buf, size_t len, size_t *got,
			 char *err, size_t errlen);
	/* Write all len bytes to the data fd (RESUMING); short writes and
	 * EINTR are continued.  -EBADF when there is no data fd. */
	int (*mig2_write)(void *priv, const void *buf, size_t len, char *err,
			  size_t errlen);
	/* VFIO_MIG_GET_PRECOPY_INFO on the data fd (pre-copy states only). */
	int (*mig2_precopy_info)(void *priv, uint64_t *initial_bytes,
				 uint64_t *dirty_bytes, char *err,
				 size_t errlen);
	/* VFIO_DEVICE_FEATURE_MIG_DATA_SIZE; -EOPNOTSUPP when the device
	 * does not report it. */
	int (*mig2_data_size)(void *priv, uint64_t *stop_copy_bytes,
			      char *err, size_t errlen);
	/* VFIO_DEVICE_RESET (the way out of ERROR); the device is RUNNING
	 * afterwards and any data fd is closed. */
	int (*mig2_reset)(void *priv, char *err, size_t errlen);
};

/* Write "<prefix><message>" to err (if any) and return rc: the one way
 * transports word their errors. */
int devstate_transport_err(char *err, size_t errlen, int rc,
			   const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* registry.c: find the transport for a URI and open it. */
int devstate_transport_open(const char *uri,
			    const struct devstate_transport_ops **ops,
			    void **priv, char *err, size_t errlen);
/* The registered transports, NULL-terminated. */
extern const struct devstate_transport_ops *const devstate_transports[];

extern const struct devstate_transport_ops devstate_fake_ops;
extern const struct devstate_transport_ops devstate_file_ops;
extern const struct devstate_transport_ops devstate_vfio_ops;

#endif /* DEVSTATE_TRANSPORT_H */

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The save and load sessions for protocol family 2 (the kernel's migration
 * uAPI v2), behind the public devstate_save_* / devstate_load_* calls:
 * session.c hands a family-2 device's session to these, one line per call.
 * Internal; the behaviour is documented in devstate_save_new(3) and
 * devstate_load_new(3).
 */
#ifndef DEVSTATE_SESSION_MIG2_H
#define DEVSTATE_SESSION_MIG2_H

#include "libdevstate/device.h"

struct devstate_m2_save;
struct devstate_m2_load;

int devstate_m2_save_new(struct devstate_m2_save **out,
			 struct devstate_device *dev,
			 const struct devstate_save_opts *opts,
			 devstate_write_fn write, void *opaque);
void devstate_m2_save_free(struct devstate_m2_save *s);
int devstate_m2_save_setup(struct devstate_m2_save *s);
int devstate_m2_save_pending(struct devstate_m2_save *s, uint64_t *bytes);
int devstate_m2_save_iterate(struct devstate_m2_save *s);
int devstate_m2_save_log_sync(struct devstate_m2_save *s);
int devstate_m2_save_stop(struct devstate_m2_save *s);
int devstate_m2_save_complete(struct devstate_m2_save *s);
int devstate_m2_save_cleanup(struct devstate_m2_save *s);
int devstate_m2_save_cancel(struct devstate_m2_save *s);
const char *devstate_m2_save_error(const struct devstate_m2_save *s);
void devstate_m2_save_get_stats(const struct devstate_m2_save *s,
				struct devstate_save_stats *stats);

int devstate_m2_load_new(struct devstate_m2_load **out,
			 struct devstate_device *dev);
void devstate_m2_load_free(struct devstate_m2_load *l);
int devstate_m2_load_begin(struct devstate_m2_load *l);
int devstate_m2_load_feed(struct devstate_m2_load *l, const void *buf,
			  size_t len);
int devstate_m2_load_finish(struct devstate_m2_load *l);
const char *devstate_m2_load_error(const struct devstate_m2_load *l);
void devstate_m2_load_get_stats(const struct devstate_m2_load *l,
				struct devstate_load_stats *stats);

#endif /* DEVSTATE_SESSION_MIG2_H */

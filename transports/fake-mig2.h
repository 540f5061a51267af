/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal seam between fake.c (the fake transport: URI, op counting,
 * fault injection, contents) and fake-mig2.c (its kernel-like uAPI v2
 * device model).  Not installed; the test window is transports/fake.h.
 */
#ifndef DEVSTATE_FAKE_MIG2_H
#define DEVSTATE_FAKE_MIG2_H

#include <stddef.h>
#include <stdint.h>

struct fake_mig2;

/* Parse the value of the mig2= key: "stop-copy", "stop-copy+p2p",
 * "stop-copy+p2p+pre-copy" (any order), "all", or a number (any bits, so
 * a test can present flags the library must refuse).  0 or -EINVAL. */
int fake_mig2_parse_flags(const char *s, uint64_t *flags);

/* A v2 device whose state is mem || cfg (both owned by fake.c, changed in
 * place by the workload and by a successful resume).  NULL: no memory. */
struct fake_mig2 *fake_mig2_new(uint64_t flags, uint8_t *mem, uint64_t mem_len,
				uint8_t *cfg, uint64_t cfg_len, uint64_t seed,
				unsigned workload);
void fake_mig2_free(struct fake_mig2 *m);

/* From fake.c: the model behind a fake's priv (NULL when the fake does
 * not speak v2), and op counting with fault injection (0 or the injected
 * -errno with its sentence). */
struct fake_mig2 *devstate_fake_m2(void *priv);
int devstate_fake_count_op(void *priv, char *err, size_t errlen);

/* The transport ops (transport.h), priv being the fake's. */
int fake_mig2_probe(void *priv, uint64_t *flags, char *err, size_t errlen);
int fake_mig2_get_state(void *priv, uint32_t *state, char *err,
			size_t errlen);
int fake_mig2_set_state(void *priv, uint32_t state, char *err, size_t errlen);
int fake_mig2_read(void *priv, void *buf, size_t len, size_t *got, char *err,
		   size_t errlen);
int fake_mig2_write(void *priv, const void *buf, size_t len, char *err,
		    size_t errlen);
int fake_mig2_precopy_info(void *priv, uint64_t *initial_bytes,
			   uint64_t *dirty_bytes, char *err, size_t errlen);
int fake_mig2_data_size(void *priv, uint64_t *stop_copy_bytes, char *err,
			size_t errlen);
int fake_mig2_reset(void *priv, char *err, size_t errlen);

#endif /* DEVSTATE_FAKE_MIG2_H */

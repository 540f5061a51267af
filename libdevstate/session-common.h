/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the save and load sessions of both protocol families share
 * (session.c for the region protocol, session-mig2.c for the kernel's
 * migration uAPI v2): the phases and their names, the error sentence, the
 * phase-order checks, the counted stream writer, the way back to RUNNING
 * after a failed save.  Internal.
 */
#ifndef DEVSTATE_SESSION_COMMON_H
#define DEVSTATE_SESSION_COMMON_H

#include "libdevstate/device.h"

enum devstate_save_phase {
	SAVE_NEW = 0,	/* nothing sent to the device yet */
	SAVE_ACTIVE,	/* setup done, pre-copy */
	SAVE_STOPPED,	/* stop-and-copy */
	SAVE_COMPLETED,	/* everything sent, END written */
	SAVE_CLEANED,	/* the device is stopped */
	SAVE_CANCELLED,	/* back to RUNNING on request */
	SAVE_FAILED	/* back to RUNNING after an error */
};

enum devstate_load_phase {
	LOAD_NEW = 0,
	LOAD_BEGUN,	/* stopped, waiting for the header */
	LOAD_STREAM,	/* header accepted, applying sections */
	LOAD_ENDED,	/* END seen */
	LOAD_FINISHED,	/* RUNNING */
	LOAD_FAILED	/* stopped, with a reason */
};

/* A set of phases, for the order checks. */
#define P(x) (1u << (x))

/*
 * What a save session of either family keeps alike.  err points to the
 * session's sentence buffer of err_size bytes (the families differ in
 * how much room a sentence has).
 */
struct devstate_save_base {
	struct devstate_device *dev;
	struct devstate_enc *enc;
	devstate_write_fn write;
	void *opaque;
	enum devstate_save_phase phase;
	struct devstate_save_stats stats;
	char *err;
	size_t err_size;
};

/* Write a sentence into buf (size bytes). */
void devstate_sess_err(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Append fmt (with one string argument) to the sentence in buf; a
 * sentence cut at the end of the buffer is still one. */
void devstate_sess_append(char *buf, size_t size, const char *fmt,
			  const char *a);

/* Keep the first error: when buf is empty, the device's sentence, else
 * what rc means. */
void devstate_sess_first_err(char *buf, size_t size,
			     const struct devstate_device *dev, int rc);

/*
 * Set up b for a save on dev: the options checked (the codec; a NULL
 * opts is all defaults, copied to *o), the encoder writing through
 * write/opaque and counting stats.stream_bytes.  The sentence goes to
 * err.  0 or -errno (the device's sentence says why).
 */
int devstate_save_base_init(struct devstate_save_base *b,
			    struct devstate_device *dev,
			    const struct devstate_save_opts *opts,
			    struct devstate_save_opts *o,
			    devstate_write_fn write, void *opaque,
			    char *err, size_t err_size);

#define save_base_err(b, ...) \
	devstate_sess_err((b)->err, (b)->err_size, __VA_ARGS__)

/* -EPROTO with a sentence unless the session is in one of the phases in
 * allowed (a P() set). */
int devstate_save_base_order(struct devstate_save_base *b, const char *step,
			     unsigned allowed);

/*
 * A failed save: keep the first error, put the device back to RUNNING
 * (the region protocol: without LOGGING; uAPI v2: along the core's route,
 * or by a reset) and say if that failed.  The phase becomes SAVE_FAILED;
 * returns rc.
 */
int devstate_save_base_fail(struct devstate_save_base *b, int rc);

/*
 * In one of the phases allowed, take the device to state (the region
 * protocol's device_state, or a uAPI v2 state along the core's route);
 * then the session is in phase next.  -EPROTO (out of order) or a failed
 * save (the device's sentence, back to RUNNING).
 */
int devstate_save_base_step(struct devstate_save_base *b, const char *step,
			    unsigned allowed, uint32_t state,
			    enum devstate_save_phase next);

/* A device error: the device's sentence, then the way back. */
int devstate_save_base_dev_fail(struct devstate_save_base *b, int rc);

/* The encoder failed at step: its sentence, then the way back. */
int devstate_save_base_enc_fail(struct devstate_save_base *b, int rc,
				const char *step);

void devstate_save_base_stats(const struct devstate_save_base *b,
			      struct devstate_save_stats *st);

/* The name of a load phase, for "not allowed now" sentences. */
extern const char *const devstate_load_phase_names[];

/* -EPROTO with a sentence in err unless phase is in allowed (a P() set). */
int devstate_load_order(char *err, size_t size, const char *step,
			enum devstate_load_phase phase, unsigned allowed);

/*
 * The phase check of load finish: 0 after END; -EIO after a failure (its
 * sentence is kept); else -EPROTO with a sentence in err (a load begun
 * but without END is "incomplete" after stream_bytes).
 */
int devstate_load_finish_order(char *err, size_t size,
			       enum devstate_load_phase phase,
			       unsigned long long stream_bytes);

/* The short names both session files use: s is a save session with a
 * struct devstate_save_base b, l a load session with a char err[]. */
#define save_err(s, ...)	save_base_err(&(s)->b, __VA_ARGS__)
#define save_order(s, step, allowed) \
	devstate_save_base_order(&(s)->b, step, allowed)
#define save_fail(s, rc)	devstate_save_base_fail(&(s)->b, rc)
#define save_dev_fail(s, rc)	devstate_save_base_dev_fail(&(s)->b, rc)
#define save_enc_fail(s, rc, step) \
	devstate_save_base_enc_fail(&(s)->b, rc, step)
#define load_err(l, ...) \
	devstate_sess_err((l)->err, sizeof((l)->err), __VA_ARGS__)

#endif /* DEVSTATE_SESSION_COMMON_H */

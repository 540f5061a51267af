/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* devstate-cli: shared helpers.  The CLI only parses arguments and
 * prints; every decision is the library's. */
#ifndef DEVSTATE_CLI_H
#define DEVSTATE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <devstate.h>

#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2

/* "devstate-cli: <what>: <why>" on stderr; returns EXIT_FAIL. */
int cli_fail(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "devstate-cli: <cmd>: <why>\nTry '...'" on stderr; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* After getopt returned '?' or ':'; returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, char **argv, int c);
/* 1.5M style (libbsd humanize_number), into buf. */
const char *cli_human(char *buf, size_t len, uint64_t bytes);
/* Parse a size with K/M/G suffix (libbsd expand_number). */
int cli_parse_size(const char *s, uint64_t *out);
double cli_now(void);

/* Minimal JSON writer: objects, arrays, strings with escaping. */
struct json {
	FILE *f;
	int depth;
	bool first[16];
};
void json_begin(struct json *j, FILE *f);
void json_obj(struct json *j, const char *key);	/* key NULL in arrays */
void json_arr(struct json *j, const char *key);
void json_end_obj(struct json *j);
void json_end_arr(struct json *j);
void json_str(struct json *j, const char *key, const char *v);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_bool(struct json *j, const char *key, bool v);
void json_dbl(struct json *j, const char *key, double v);
void json_null(struct json *j, const char *key);
void json_finish(struct json *j);

/* Progress line on stderr (only when enabled). */
struct progress {
	bool on;
	double last;
};
void progress_init(struct progress *p, int mode); /* -1 auto, 0 off, 1 on */
void progress_show(struct progress *p, const char *what, uint64_t bytes);
void progress_done(struct progress *p);

/* info: print the transport's full region table, if it has one (text on
 * stdout when j is NULL, else a "device_regions" JSON array). */
void info_raw_regions(struct devstate_device *dev, struct json *j);

/* Subcommands. */
/* The state the library holds for dev, named in its protocol family's
 * terms ("running", "stop-copy", ...). */
const char *cli_state_name(const struct devstate_device *dev);
/* "stop-copy, p2p, pre-copy (0x7)" */
void cli_mig2_flags(char *buf, size_t len, uint64_t flags);

int cmd_info(int argc, char **argv);
int cmd_state(int argc, char **argv);
int cmd_dirty(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

#endif

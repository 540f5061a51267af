/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mig2-migrate: a live migration of one mtty instance's state to another
 * over the kernel's migration uAPI v2, on the real device.  Runs inside the
 * guest of tests/guest/mtty-migrate.sh.
 *
 *   mig2-migrate SRC-GROUP SRC-UUID DST-GROUP DST-UUID CLI
 *
 * Both instances are opened here (one process may hold a VFIO group), in
 * one type1v2 container.  mtty emulates a 16550-like UART per port behind
 * BARn (region n, at n << 40 of the device fd): this writes recognizable
 * values into the source's registers (LCR, MCR, SCR, the FIFO control) and
 * bytes into its loopback FIFO (THR writes queue them, RX reads them back),
 * and other values into the destination's, then migrates twice:
 *
 *   round "ops": through the VFIO transport's mig2_* ops (the layer under
 *     the session), arc by arc as the core routes them: the source RUNNING
 *     -> PRE_COPY (data fd; read to the end of the pre-copy data) ->
 *     PRE_COPY_P2P -> STOP_COPY (the same fd, read to EOF) -> STOP, the
 *     destination RUNNING -> STOP -> RESUMING (write it all) -> STOP ->
 *     RUNNING;
 *   round "cli": with new values, `CLI info vfio:fd=S` and
 *     `CLI migrate vfio:fd=S vfio:fd=D` in a child that inherits both
 *     device fds (borrowed, never closed by the CLI).
 *
 * After each round the destination's registers and FIFO bytes are read
 * back and compared with what was written into the source.  A last round
 * "fail" gives the destination a truncated state (the pre-copy part only):
 * leaving RESUMING must be refused, the data fd closed, VFIO_DEVICE_RESET
 * must bring the device back to RUNNING and its registers stay as they
 * were.  Prints
 * "=== " lines for tests/guest/mtty-migrate.sh; exit status 0 when both
 * rounds match, 1 on a mismatch, 2 when the test cannot run.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdevstate/mig2.h"
#include "transports/transport.h"
#include "tests/guest/guest-vfio.h"

/* 16550 registers (offsets in the port's BAR) and the bits used. */
#define REG_THR		0	/* write: into the loopback FIFO */
#define REG_RX		0	/* read: out of it */
#define REG_IER		1
#define REG_FCR		2	/* write */
#define REG_LCR		3
#define REG_MCR		4
#define REG_LSR		5
#define REG_SCR		7
#define LSR_DR		0x01	/* a byte waits in the FIFO */
#define FCR_FIFO	0xc7	/* enable, clear both, trigger 14 */

#define PORTS		2	/* mtty-2 */
#define FIFO_MAX	16

static const struct devstate_transport_ops *const T = &devstate_vfio_ops;

struct port_values {
	uint8_t lcr, mcr, scr;
	const char *fifo;	/* at most 16 bytes */
};

/* What each round writes into the source, and the junk the destination
 * holds before it (so that only a migration can make them equal). */
static const struct port_values round_ops[PORTS] = {
	{ 0x03, 0x13, 0x5a, "devstate" },
	{ 0x1b, 0x1b, 0xa5, "mtty-p1!" },
};
static const struct port_values round_cli[PORTS] = {
	{ 0x07, 0x11, 0x3c, "cli-v2" },
	{ 0x3b, 0x1a, 0xc3, "migrate-p1" },
};
static const struct port_values junk = { 0x00, 0x00, 0x00, "x" };

static off_t reg_off(int port, int reg)
{
	return (off_t)(((uint64_t)port << 40) | (uint64_t)reg);
}

static void reg_write(int fd, int port, int reg, uint8_t v)
{
	if (pwrite(fd, &v, 1, reg_off(port, reg)) != 1)
		die("BAR register write");
}

static uint8_t reg_read(int fd, int port, int reg)
{
	uint8_t v;

	if (pread(fd, &v, 1, reg_off(port, reg)) != 1)
		die("BAR register read");
	return v;
}

static void port_write(int fd, int port, const struct port_values *pv)
{
	const char *c;

	reg_write(fd, port, REG_LCR, 0x03);	/* DLAB off: THR is data */
	reg_write(fd, port, REG_IER, 0);
	reg_write(fd, port, REG_FCR, FCR_FIFO);
	for (c = pv->fifo; *c; c++)
		reg_write(fd, port, REG_THR, (uint8_t)*c);
	reg_write(fd, port, REG_MCR, pv->mcr);
	reg_write(fd, port, REG_SCR, pv->scr);
	reg_write(fd, port, REG_LCR, pv->lcr);
}

/* Read a port back: registers, then the FIFO until LSR says empty (this
 * empties it).  0 when it matches pv. */
static int port_check(int fd, int port, const char *who,
		      const struct port_values *pv)
{
	uint8_t lcr = reg_read(fd, port, REG_LCR);
	uint8_t mcr = reg_read(fd, port, REG_MCR);
	uint8_t scr = reg_read(fd, port, REG_SCR);
	uint8_t lsr = reg_read(fd, port, REG_LSR);
	char fifo[FIFO_MAX + 2];
	size_t n = 0;
	int bad;

	while (n <= FIFO_MAX && (reg_read(fd, port, REG_LSR) & LSR_DR))
		fifo[n++] = (char)reg_read(fd, port, REG_RX);
	fifo[n] = '\0';
	bad = lcr != pv->lcr || mcr != pv->mcr || scr != pv->scr ||
	      !(lsr & LSR_DR) || strcmp(fifo, pv->fifo);
	printf("=== port %d %-11s lcr 0x%02x mcr 0x%02x scr 0x%02x lsr 0x%02x fifo '%s'%s\n",
	       port, who, lcr, mcr, scr, lsr, fifo, bad ? " MISMATCH" : "");
	return bad;
}

/* What was written into the source (its registers read back; its FIFO
 * is left alone, reading it would empty it). */
static void port_show(int fd, int port, const struct port_values *pv)
{
	printf("=== port %d %-11s lcr 0x%02x mcr 0x%02x scr 0x%02x lsr 0x%02x fifo '%s' (written)\n",
	       port, "source", reg_read(fd, port, REG_LCR),
	       reg_read(fd, port, REG_MCR), reg_read(fd, port, REG_SCR),
	       reg_read(fd, port, REG_LSR), pv->fifo);
}

/* ---- round "ops": the transport's mig2_* ops ---- */

static char err[DEVSTATE_ERR_MAX];

static void check(int rc, const char *what)
{
	if (rc < 0) {
		printf("=== fatal %s: %s\n", what, err);
		fflush(stdout);
		exit(2);
	}
}

static uint32_t state_of(void *p)
{
	uint32_t s;

	check(T->mig2_get_state(p, &s, err, sizeof(err)), "get state");
	return s;
}

/* Walk the core's route to target, one SET per arc. */
static void go(void *p, uint64_t flags, const char *who, uint32_t target)
{
	uint32_t path[DEVSTATE_MIG2_PATH_MAX];
	size_t n, i;

	if (devstate_mig2_path(flags, state_of(p), target, path,
			       DEVSTATE_MIG2_PATH_MAX, &n) < 0) {
		printf("=== fatal %s: no route to %s\n", who,
		       devstate_mig2_state_name(target));
		exit(2);
	}
	for (i = 0; i < n; i++) {
		check(T->mig2_set_state(p, path[i], err, sizeof(err)),
		      "set state");
		printf("    %s -> %s\n", who, devstate_mig2_state_name(path[i]));
	}
	if (state_of(p) != target) {
		printf("=== fatal %s: not in %s after the route\n", who,
		       devstate_mig2_state_name(target));
		exit(2);
	}
}

/* Read the data fd until the op reports the end; returns the bytes. */
static size_t drain(void *p, uint8_t *buf, size_t cap, size_t at)
{
	size_t got;

	do {
		if (at == cap) {
			printf("=== fatal more than %zu bytes of state\n", cap);
			exit(2);
		}
		/* small pieces: several reads, as a channel would take them */
		check(T->mig2_read(p, buf + at, cap - at < 16 ? cap - at : 16,
				   &got, err, sizeof(err)), "read");
		at += got;
	} while (got);
	return at;
}

/* The state round "ops" moved (round "fail" replays a piece of it). */
static uint8_t blob[4096];
static size_t blob_len, blob_pre;

static void migrate_ops(void *s, void *d, uint64_t flags)
{
	uint64_t initial, dirty, size;
	size_t pre, all;

	if (T->mig2_data_size(s, &size, err, sizeof(err)) == 0)
		printf("=== data-size %" PRIu64 "\n", size);
	go(s, flags, "source", DEVSTATE_MIG2_PRE_COPY);
	check(T->mig2_precopy_info(s, &initial, &dirty, err, sizeof(err)),
	      "precopy info");
	printf("=== precopy-info initial %" PRIu64 " dirty %" PRIu64 "\n",
	       initial, dirty);
	pre = drain(s, blob, sizeof(blob), 0);
	printf("=== pre-copy %zu bytes\n", pre);
	go(s, flags, "source", DEVSTATE_MIG2_STOP_COPY);
	all = drain(s, blob, sizeof(blob), pre);
	printf("=== stop-copy %zu bytes, %zu in all\n", all - pre, all);
	go(s, flags, "source", DEVSTATE_MIG2_STOP);

	go(d, flags, "destination", DEVSTATE_MIG2_RESUMING);
	check(T->mig2_write(d, blob, all, err, sizeof(err)), "write");
	go(d, flags, "destination", DEVSTATE_MIG2_STOP);
	go(d, flags, "destination", DEVSTATE_MIG2_RUNNING);
	blob_len = all;
	blob_pre = pre;
}

/* ---- round "fail": a truncated state on the real device ---- */

/* RESUMING with only the pre-copy part (mtty's header) written: leaving
 * RESUMING must fail (mtty's load wants every port), the data fd is then
 * closed (a write is -EBADF, never a write to the old fd), and a reset
 * brings the device back to RUNNING with its registers untouched.  0 when
 * all of that holds. */
static int fail_round(void *d, int dst, uint64_t flags,
		      const struct port_values *before)
{
	uint32_t st;
	int rc, bad = 0, port;

	go(d, flags, "destination", DEVSTATE_MIG2_RESUMING);
	check(T->mig2_write(d, blob, blob_pre, err, sizeof(err)), "write");
	rc = T->mig2_set_state(d, DEVSTATE_MIG2_STOP, err, sizeof(err));
	printf("=== truncated load: RESUMING -> STOP answered %d (%s)\n", rc,
	       rc < 0 ? err : "accepted");
	bad |= rc != -EINVAL;
	rc = T->mig2_write(d, blob, 1, err, sizeof(err));
	printf("=== write after the failed arc: %d\n", rc);
	bad |= rc != -EBADF;
	st = state_of(d);
	printf("=== state after the failed arc: %s\n",
	       devstate_mig2_state_name(st));
	check(T->mig2_reset(d, err, sizeof(err)), "reset");
	st = state_of(d);
	printf("=== state after VFIO_DEVICE_RESET: %s\n",
	       devstate_mig2_state_name(st));
	bad |= st != DEVSTATE_MIG2_RUNNING;
	for (port = 0; port < PORTS; port++) {
		uint8_t lcr = reg_read(dst, port, REG_LCR);
		uint8_t mcr = reg_read(dst, port, REG_MCR);
		uint8_t scr = reg_read(dst, port, REG_SCR);
		int differ = lcr != before[port].lcr ||
			     mcr != before[port].mcr ||
			     scr != before[port].scr;

		printf("=== port %d %-11s lcr 0x%02x mcr 0x%02x scr 0x%02x (after the failed load)%s\n",
		       port, "destination", lcr, mcr, scr,
		       differ ? " MISMATCH" : "");
		bad |= differ;
	}
	return bad;
}

/* ---- round "cli": devstate-cli with the inherited fds ---- */

static int run(char *const argv[])
{
	pid_t pid;
	int status, i;

	printf("=== run");
	for (i = 0; argv[i]; i++)
		printf(" %s", argv[i]);
	printf("\n");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execv(argv[0], argv);
		printf("=== fatal exec %s: %s\n", argv[0], strerror(errno));
		fflush(stdout);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void inherit(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0 || fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
		die("fcntl FD_CLOEXEC");
}

static void *open_ops(int fd)
{
	char args[32];
	void *p = NULL;

	snprintf(args, sizeof(args), "fd=%d", fd);
	check(T->open(args, &p, err, sizeof(err)), "open");
	return p;
}

int main(int argc, char **argv)
{
	char src_uri[32], dst_uri[32];
	uint64_t flags, dflags;
	int src, dst, port, bad = 0, rc;
	void *s, *d;

	guest_open_two(argc, argv, 5, "SRC-GROUP SRC-UUID DST-GROUP DST-UUID CLI",
		       &src, &dst);
	s = open_ops(src);
	d = open_ops(dst);
	check(T->mig2_probe(s, &flags, err, sizeof(err)), "probe source");
	check(T->mig2_probe(d, &dflags, err, sizeof(err)), "probe destination");
	printf("=== flags 0x%" PRIx64 " (destination 0x%" PRIx64 ")\n", flags,
	       dflags);
	if (devstate_mig2_flags_check(flags) || flags != dflags) {
		printf("=== fatal flags the core refuses, or two different devices\n");
		return 2;
	}
	/* both instances start RUNNING (mtty keeps its state across opens:
	 * a previous run may have left them elsewhere) */
	if (state_of(s) != DEVSTATE_MIG2_RUNNING)
		check(T->mig2_reset(s, err, sizeof(err)), "reset source");
	if (state_of(d) != DEVSTATE_MIG2_RUNNING)
		check(T->mig2_reset(d, err, sizeof(err)), "reset destination");

	/* round "ops" */
	printf("=== round ops\n");
	for (port = 0; port < PORTS; port++) {
		port_write(src, port, &round_ops[port]);
		port_write(dst, port, &junk);
		port_show(src, port, &round_ops[port]);
	}
	migrate_ops(s, d, flags);
	for (port = 0; port < PORTS; port++)
		bad |= port_check(dst, port, "destination", &round_ops[port]);
	printf("=== round ops %s\n", bad ? "MISMATCH" : "ok");

	/* round "cli": the source RUNNING again, new values; the transport
	 * handles closed (the device fds are borrowed: they stay open) */
	go(s, flags, "source", DEVSTATE_MIG2_RUNNING);
	T->close(s);
	T->close(d);
	printf("=== round cli\n");
	for (port = 0; port < PORTS; port++) {
		port_write(src, port, &round_cli[port]);
		port_write(dst, port, &junk);
		port_show(src, port, &round_cli[port]);
	}
	inherit(src);
	inherit(dst);
	snprintf(src_uri, sizeof(src_uri), "vfio:fd=%d", src);
	snprintf(dst_uri, sizeof(dst_uri), "vfio:fd=%d", dst);
	{
		static char cmd_info[] = "info", cmd_migrate[] = "migrate";
		char *info[] = { argv[5], cmd_info, src_uri, NULL };
		char *mig[] = { argv[5], cmd_migrate, src_uri, dst_uri, NULL };

		rc = run(info);
		printf("=== cli info rc %d\n", rc);
		rc = run(mig);
		printf("=== cli migrate rc %d\n", rc);
	}
	rc = rc != 0;
	for (port = 0; port < PORTS; port++)
		rc |= port_check(dst, port, "destination", &round_cli[port]);
	printf("=== round cli %s\n", rc ? "MISMATCH" : "ok");
	bad |= rc;

	/* round "fail", on the destination as the CLI left it */
	printf("=== round fail\n");
	d = open_ops(dst);
	rc = fail_round(d, dst, flags, round_cli);
	T->close(d);
	printf("=== round fail %s\n", rc ? "MISMATCH" : "ok");
	bad |= rc;
	return bad ? 1 : 0;
}

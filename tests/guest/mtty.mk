# SPDX-License-Identifier: LGPL-2.1-or-later
# Included from tests/guest/local.mk: the v2 state machine of the pure core
# (libdevstate/mig2.c) against a real kernel's.  tests/guest/mtty-fsm.sh
# builds the kernel's mtty sample for Debian's 6.12 kernel, boots that
# kernel under qemu and runs tests/guest/mig2-fsm on two mtty instances; it
# needs the packages of tools/deps/mtty.txt and skips (77) without them.
# mig2-fsm runs only inside that guest: it is a noinst program (built with
# the tree, never installed), not a check_PROGRAMS entry, which TESTS and
# check-valgrind would run on the host.
noinst_PROGRAMS += tests/guest/mig2-fsm
tests_guest_mig2_fsm_SOURCES = tests/guest/mig2-fsm.c tests/guest/guest-vfio.h \
	libdevstate/mig2.c \
	libdevstate/mig2.h
# Own flags, so that its objects do not clash with the library's mig2.
tests_guest_mig2_fsm_CFLAGS = $(AM_CFLAGS)
TESTS += tests/guest/mtty-fsm.sh
# (The log is .sh.log unless TEST_EXTENSIONS ever lists .sh.)
tests/guest/mtty-fsm.sh.log tests/guest/mtty-fsm.log: tests/guest/mig2-fsm$(EXEEXT)
EXTRA_DIST += tests/guest/mtty-fsm.sh tests/guest/mtty-init.sh \
	tests/guest/mtty.mk

# The migration itself: tests/guest/mtty-migrate.sh boots the same guest
# and runs tests/guest/mig2-migrate on two mtty instances (the VFIO
# transport's v2 ops, then devstate-cli migrate), comparing the UART
# registers and FIFO bytes of source and destination.  mig2-migrate links
# the internal library (it calls the transport's ops directly).
noinst_PROGRAMS += tests/guest/mig2-migrate
tests_guest_mig2_migrate_SOURCES = tests/guest/mig2-migrate.c \
	tests/guest/guest-vfio.h
tests_guest_mig2_migrate_LDADD = libdevstate-internal.la
TESTS += tests/guest/mtty-migrate.sh
tests/guest/mtty-migrate.sh.log tests/guest/mtty-migrate.log: \
	tests/guest/mig2-migrate$(EXEEXT) tools/devstate-cli$(EXEEXT)
EXTRA_DIST += tests/guest/mtty-migrate.sh

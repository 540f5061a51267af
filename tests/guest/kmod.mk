# SPDX-License-Identifier: LGPL-2.1-or-later
# Included from tests/guest/local.mk: the device-state interface over real
# VFIO fds.  tests/guest/kmod-migrate.sh builds the sample vendor driver
# tests/kmod/mdevstate.c for Debian's 6.12 kernel, boots that kernel under
# qemu and migrates between two instances with devstate-cli while
# tests/guest/kmod-work drives a workload; it needs the packages of
# tools/deps/mtty.txt (not linux-source) and skips (77) without them.
# kmod-work runs only inside that guest: a noinst program, not a
# check_PROGRAMS entry.
noinst_PROGRAMS += tests/guest/kmod-work
tests_guest_kmod_work_SOURCES = tests/guest/kmod-work.c libdevstate/layout.c \
	libdevstate/core.h tests/guest/guest-vfio.h
tests_guest_kmod_work_CFLAGS = $(AM_CFLAGS)
TESTS += tests/guest/kmod-migrate.sh
tests/guest/kmod-migrate.sh.log tests/guest/kmod-migrate.log: \
	tests/guest/kmod-work$(EXEEXT) tools/devstate-cli$(EXEEXT)
EXTRA_DIST += tests/guest/kmod-migrate.sh tests/guest/kmod-init.sh \
	tests/guest/kmod.mk tests/kmod/mdevstate.c tests/kmod/Kbuild \
	tests/kmod/README

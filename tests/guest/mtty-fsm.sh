#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The pure v2 core (libdevstate/mig2.c) against the real kernel's VFIO
# migration state machine.
#
# Builds the kernel's own mtty sample (samples/vfio-mdev/mtty.c, extracted
# from Debian's linux-source-6.12 at test time into a scratch directory of
# the build tree, never kept) out of tree against linux-headers for the
# newest installed 6.12.*+deb12-amd64 kernel, boots that kernel under
# qemu-system-x86_64 (TCG) with an initramfs of busybox, the vfio, type1,
# mdev modules and mtty.ko and this build's tests/guest/mig2-fsm with its
# shared libraries.  The guest (tests/guest/mtty-init.sh) creates two
# mtty-2 instances and runs mig2-fsm, which drives every (from, to) pair of
# states through the kernel and compares each answer with the core's (see
# mig2-fsm.c): accepted or EINVAL, the state reached and, from mtty's
# dynamic-debug records, the route the kernel took, arc by arc.  mdevs need
# no IOMMU: a type1v2 container takes them.
#
# Exit 77 (skip) only when a package it needs is missing (the list is
# tools/deps/mtty.txt); everything else that goes wrong is a failure.
#
# Environment: top_srcdir, top_builddir (make check sets them);
# DEVSTATE_GUEST_TIMEOUT seconds for the guest (default 180);
# DEVSTATE_GUEST_KEEP=1 keeps the scratch directory.
set -u

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$srcdir/tests/guest/lib.sh"
guest_start 180

# --- what the test needs ------------------------------------------------
mtty_require
guest_binary fsm tests/guest/mig2-fsm

# --- mtty.ko, the initramfs, the boot, the common checks ---------------------
GUEST_ARGS=
mtty_run mtty-fsm "$fsm" mig2-fsm

# --- verdict --------------------------------------------------------------
guest_need '^=== flags 0x7 stop-copy p2p pre-copy$' \
	"mtty's flags STOP_COPY|P2P|PRE_COPY"
guest_need '^=== saved [1-9][0-9]* bytes' "a saved state of the source instance"
pairs=$(grep -c '^pair ' "$r")
[ "$pairs" -eq 56 ] || { echo "$pairs pairs, not 7 x 8 = 56"; bad=1; }
if grep -q 'MISMATCH' "$r"; then
	echo "kernel and core disagree on:"
	grep 'MISMATCH' "$r"
	bad=1
fi
guest_need '^=== routes observed$' "the kernel's routes (mtty's dyndbg records)"
guest_need '^=== mismatches 0$' "no mismatch"
[ $bad -eq 0 ] || { guest_console; fail "the kernel's state machine and the core's differ (or the run broke)"; }
echo "ok: 56 pairs and their routes agree, real kernel $kver vs libdevstate/mig2.c, in $(($(date +%s) - start)) s (mtty.ko: $MTTY_TIMES; boot + test $GUEST_SECONDS s)"

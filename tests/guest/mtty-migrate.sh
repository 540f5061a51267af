#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# A live migration over the kernel's migration uAPI v2 on a real device:
# the kernel's own mtty sample in Debian's 6.12 kernel under qemu.
#
# The guest is the one tests/guest/mtty-fsm.sh boots (lib.sh builds
# mtty.ko from linux-source-6.12 against the newest installed
# 6.12.*+deb12-amd64 headers, and the initramfs): two mtty-2 instances,
# and tests/guest/mig2-migrate with this build's devstate-cli.  mig2-migrate
# writes recognizable values into the source's UART registers (LCR, MCR,
# SCR) and bytes into its loopback FIFOs through its BARs, migrates the
# source to the destination twice (the VFIO transport's v2 ops one arc at
# a time, then `devstate-cli migrate vfio:fd=S vfio:fd=D` with the device
# fds inherited; `devstate-cli info` first) and reads the destination's
# registers and FIFO bytes back; then gives the destination a truncated
# state, which the kernel must refuse (the data fd closed, a reset back to
# RUNNING, the registers untouched).  The verdict needs mtty's flags and data
# size, a pre-copy and a stop-copy part of the state, and both rounds'
# values equal on both sides.
#
# Exit 77 (skip) only when a package it needs is missing (the list is
# tools/deps/mtty.txt); everything else that goes wrong is a failure.
#
# Environment: top_srcdir, top_builddir (make check sets them);
# DEVSTATE_GUEST_TIMEOUT seconds for the guest (default 180);
# DEVSTATE_GUEST_KEEP=1 keeps the scratch directory; DEVSTATE_MTTY_KO=PATH
# a mtty.ko built before for the same kernel (skips the extraction).
set -u

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$srcdir/tests/guest/lib.sh"
guest_start 180

# --- what the test needs ------------------------------------------------
mtty_require
guest_binary prog tests/guest/mig2-migrate
guest_binary cli tools/devstate-cli

# --- mtty.ko, the initramfs, the boot, the common checks ---------------------
GUEST_ARGS=/devstate-cli
mtty_run mtty-migrate "$prog" mig2-migrate "$cli" devstate-cli

# --- verdict --------------------------------------------------------------
guest_need '^=== flags 0x7 ' "mtty's flags STOP_COPY|P2P|PRE_COPY"
guest_need '^=== data-size [1-9][0-9]*$' "mtty's MIG_DATA_SIZE"
guest_need '^=== pre-copy [1-9][0-9]* bytes$' "pre-copy data"
guest_need '^=== stop-copy [1-9][0-9]* bytes' "stop-copy data"
guest_need '^=== round ops ok$' "the registers migrated by the transport's ops"
guest_need '^=== cli info rc 0$' "devstate-cli info on the source"
guest_need '^=== cli migrate rc 0$' "devstate-cli migrate's exit status 0"
guest_need '^=== round cli ok$' "the registers migrated by devstate-cli migrate"
guest_need '^=== truncated load: RESUMING -> STOP answered -22 ' \
	"mtty refusing a truncated state"
guest_need '^=== write after the failed arc: -9$' "no data fd after a failed arc"
guest_need '^=== state after VFIO_DEVICE_RESET: running$' "RUNNING after a reset"
guest_need '^=== round fail ok$' "the failure round"
dest=$(grep -c '^=== port [01] destination .*fifo' "$r")
[ "$dest" -eq 4 ] || { echo "$dest destination port reports, not 2 x 2"; bad=1; }
if grep -q 'MISMATCH' "$r"; then
	echo "source and destination differ:"
	grep 'MISMATCH' "$r"
	bad=1
fi
[ $bad -eq 0 ] || { guest_console; fail "the migration did not carry the device's state (or the run broke)"; }
echo "ok: mtty's UART state migrated twice (transport ops, devstate-cli migrate) and a truncated state refused, real kernel $kver, in $(($(date +%s) - start)) s (mtty.ko: $MTTY_TIMES; boot + test $GUEST_SECONDS s)"

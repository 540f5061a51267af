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
builddir=$(cd "${top_builddir:-.}" && pwd)
limit=${DEVSTATE_GUEST_TIMEOUT:-180}
here=$srcdir/tests/guest

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

start=$(date +%s)

# --- what the test needs ------------------------------------------------
qemu=$(command -v qemu-system-x86_64) ||
	skip "no qemu-system-x86_64 (Debian package qemu-system-x86)"
busybox=$(command -v busybox || ls /bin/busybox 2>/dev/null) ||
	skip "no busybox (Debian package busybox-static)"
command -v timeout >/dev/null || skip "no timeout (coreutils)"

. "$here/lib.sh"
guest_kernel_612
source=$(ls /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n 1)
[ -n "$source" ] ||
	skip "no /usr/src/linux-source-6.12.tar.* (Debian package linux-source-6.12)"
command -v make >/dev/null || skip "no make (build-essential)"

fsm=$builddir/tests/guest/mig2-fsm
head -c 4 "$fsm" 2>/dev/null | grep -q ELF ||
	fail "no $fsm binary (make tests/guest/mig2-fsm first)"

# A scratch directory in the build tree (srcdir may be read-only).
mkdir -p "$builddir/tests/guest" &&
work=$(mktemp -d "$builddir/tests/guest/mtty-fsm.XXXXXX") ||
	fail "mktemp failed"
cleanup() { [ "${DEVSTATE_GUEST_KEEP:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

# --- mtty.ko ----------------------------------------------------------------
t0=$(date +%s)
mkdir -p "$work/src" "$work/mtty"
tar -xaf "$source" -C "$work/src" --occurrence=1 --wildcards \
	'*/samples/vfio-mdev/mtty.c' || fail "cannot extract mtty.c from $source"
mtty_c=$(find "$work/src" -name mtty.c | head -n 1)
[ -n "$mtty_c" ] || fail "no samples/vfio-mdev/mtty.c in $source"
mv "$mtty_c" "$work/mtty/mtty.c" && rm -rf "$work/src"
echo 'obj-m := mtty.o' >"$work/mtty/Kbuild"
t1=$(date +%s)
guest_build_module "$work/mtty"
[ -f "$work/mtty/mtty.ko" ] || fail "the kernel build made no mtty.ko"
t2=$(date +%s)

# --- the initramfs --------------------------------------------------------
root=$work/root
mkdir -p "$root/bin" "$root/modules" "$root/proc" "$root/sys" \
	"$root/dev" "$root/tmp"

guest_add_base "$here/mtty-init.sh"
guest_add_program "$fsm" mig2-fsm
# vfio_iommu_type1 and mdev with their dependencies, then mtty (which
# needs vfio and mdev).
guest_add_modules "$kver" vfio_iommu_type1 mdev
modules=$GUEST_MODULES
cp "$work/mtty/mtty.ko" "$root/modules/mtty.ko" || fail "cannot copy mtty.ko"
modules="$modules mtty"

cat >"$root/guest.conf" <<EOT
LIBPATH=$(guest_libpath)
MODULES="$modules"
EOT

guest_pack "$work/initramfs.cpio"

echo "kernel:   $kernel"
echo "source:   $source"
echo "modules: $modules"
echo "program:  $fsm"
echo "qemu:     $("$qemu" --version | head -n 1)"
echo "mtty.ko:  extract $((t1 - t0)) s, build $((t2 - t1)) s"

# --- boot -----------------------------------------------------------------
guest_boot "$work/initramfs.cpio"

echo "--- guest output (boot + test: $((end - boot)) s)"
cat "$work/results.txt"
echo "---"

# --- verdict --------------------------------------------------------------
r=$work/results.txt
bad=0
need() {
	grep -q "$1" "$r" || { echo "missing from the guest output: $2"; bad=1; }
}
if grep -q '^=== insmod-failed\|^=== create-failed\|^=== fatal' "$r"; then
	grep '^=== insmod-failed\|^=== create-failed\|^=== fatal' "$r"
	bad=1
fi
need "^=== kernel $kver\$" "the kernel $kver"
need '^=== flags 0x7 stop-copy p2p pre-copy$' \
	"mtty's flags STOP_COPY|P2P|PRE_COPY"
need '^=== saved [1-9][0-9]* bytes' "a saved state of the source instance"
pairs=$(grep -c '^pair ' "$r")
[ "$pairs" -eq 56 ] || { echo "$pairs pairs, not 7 x 8 = 56"; bad=1; }
if grep -q 'MISMATCH' "$r"; then
	echo "kernel and core disagree on:"
	grep 'MISMATCH' "$r"
	bad=1
fi
need '^=== routes observed$' "the kernel's routes (mtty's dyndbg records)"
need '^=== mismatches 0$' "no mismatch"
need '^=== rc 0$' "mig2-fsm's exit status 0"
need '^=== done$' "the end of the guest's run"
[ $bad -eq 0 ] || { guest_console; fail "the kernel's state machine and the core's differ (or the run broke)"; }
echo "ok: 56 pairs and their routes agree, real kernel $kver vs libdevstate/mig2.c, in $(($(date +%s) - start)) s (mtty.ko $((t2 - t0)) s, boot + test $((end - boot)) s)"

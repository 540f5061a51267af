#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The proposed device-state interface over real VFIO fds: libdevstate and
# devstate-cli against the sample vendor driver tests/kmod/mdevstate.c in
# a real Linux 6.12 kernel.
#
# Builds mdevstate.ko out of tree (into a scratch directory of the build
# tree: srcdir may be read-only) against linux-headers for the newest
# installed 6.12.*+deb12-amd64 kernel, boots that kernel under
# qemu-system-x86_64 (TCG) with slub_debug=FZP and an initramfs of
# busybox, the vfio, type1 and mdev modules, mdevstate.ko, and this
# build's devstate-cli and tests/guest/kmod-work with their shared
# libraries.  For control layouts 1 and 2 the guest (kmod-init.sh) shows
# an instance with devstate-cli info, runs devstate-cli migrate between
# two instances while kmod-work writes the source's device memory and
# rings its DMA doorbell, and runs kmod-work's hostile checks on a third.
# Passes when: the regions are found with their types, sizes and mmap;
# destination BAR0 and registers equal the source's at stop time; the
# merged dirty bitmap equals the pages the device DMA-wrote while
# logging; every hostile request fails with the expected errno; the
# module unloads; and the kernel log has no WARNING, BUG or oops.
#
# Exit 77 (skip) only when a package it needs is missing (the list is
# tools/deps/mtty.txt, minus linux-source); everything else that goes
# wrong is a failure.
#
# Environment: top_srcdir, top_builddir (make check sets them);
# DEVSTATE_GUEST_TIMEOUT seconds for the guest (default 300);
# DEVSTATE_GUEST_KEEP=1 keeps the scratch directory.
set -u

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$srcdir/tests/guest/lib.sh"
guest_start 300

# --- what the test needs ------------------------------------------------
guest_kernel_612
guest_binary cli tools/devstate-cli
guest_binary work_prog tests/guest/kmod-work

guest_workdir kmod-migrate

# --- mdevstate.ko ---------------------------------------------------------
t0=$(date +%s)
mkdir -p "$work/kmod"
cp "$srcdir/tests/kmod/mdevstate.c" "$srcdir/tests/kmod/Kbuild" "$work/kmod/" ||
	fail "cannot copy tests/kmod"
guest_build_module "$work/kmod"
[ -f "$work/kmod/mdevstate.ko" ] || fail "the kernel build made no mdevstate.ko"
if grep -q 'warning:' "$work/kmod/kbuild.log"; then
	cat "$work/kmod/kbuild.log"
	fail "mdevstate.c builds with warnings"
fi
t1=$(date +%s)

# --- the initramfs --------------------------------------------------------
guest_root "$here/kmod-init.sh"
guest_add_program "$cli" devstate-cli
guest_add_program "$work_prog" kmod-work
guest_add_modules "$kver" vfio_iommu_type1 mdev
cp "$work/kmod/mdevstate.ko" "$root/modules/" || fail "cannot copy mdevstate.ko"
cat >"$root/guest.conf" <<EOT
LIBPATH=$(guest_libpath)
MODULES="$GUEST_MODULES"
EOT
guest_pack "$work/initramfs.cpio"

echo "kernel:   $kernel"
echo "modules: $GUEST_MODULES, then mdevstate (layout=1, then 2)"
echo "programs: $cli $work_prog"
echo "qemu:     $("$qemu" --version | head -n 1)"
echo "mdevstate.ko: build $((t1 - t0)) s"

# --- boot -----------------------------------------------------------------
GUEST_APPEND=slub_debug=FZP
guest_boot

# --- verdict --------------------------------------------------------------
r=$work/results.txt
bad=0
if grep -q '^=== insmod-failed\|^=== create-failed\|^=== fatal\|^=== remove-failed\|^=== rmmod-failed\|^=== hostile-bad\|DIFFER' "$r"; then
	grep '^=== insmod-failed\|^=== create-failed\|^=== fatal\|^=== remove-failed\|^=== rmmod-failed\|^=== hostile-bad\|DIFFER' "$r"
	bad=1
fi
guest_need "^=== kernel $kver\$" "the kernel $kver"
guest_need "^=== cmdline .*slub_debug=FZP" "slub_debug=FZP on the kernel command line"
for v in 1 2; do
	# the regions as libdevstate found them through the kernel
	json=$(sed -n "/^=== layout $v\$/,/^=== layout\|^=== done/p" "$r" |
		sed -n 's/^=== info-json //p')
	for reg in '"name":"ctl","present":true,"size":'$((72 + 8 * (v - 1)))',"mappable":false' \
		'"name":"config","present":true,"size":4096,"mappable":true' \
		'"name":"memory","present":true,"size":65536,"mappable":true' \
		'"name":"bitmap","present":true,"size":4096,"mappable":true' \
		"\"version\":$v," '"caps":3,' '"migratable":true' \
		'"index":9,"name":"region9","present":true,"flags":11,' \
		'"type":2,"subtype":1,"state_region":"ctl"' \
		'"type":2,"subtype":4,"state_region":"bitmap"'; do
		case "$json" in
		*"$reg"*) ;;
		*) echo "layout $v: devstate-cli info --json lacks $reg"; bad=1 ;;
		esac
	done
	guest_need "^=== migrate-rc $v 0 " "layout $v: a migration that passed its checks"
	guest_need "^=== hostile-rc $v 0\$" "layout $v: the hostile checks"
	guest_need "^=== rmmod $v ok\$" "layout $v: the module unloaded"
done
[ "$(grep -c '^=== bar0 equal ' "$r")" -eq 2 ] || { echo "BAR0 not equal twice"; bad=1; }
[ "$(grep -c '^=== dirty dma-written [1-9][0-9]* merged [1-9][0-9]* differ 0$' "$r")" -eq 2 ] ||
	{ echo "the merged dirty bitmap is not the DMA-written pages (twice)"; bad=1; }
[ "$(grep -c '^=== states source 1 destination 0$' "$r")" -eq 2 ] ||
	{ echo "not source STOP, destination RUNNING (twice)"; bad=1; }
guest_need '^=== kernel-log-clean$' "a kernel log without WARNING, BUG or oops"
guest_need '^=== done$' "the end of the guest's run"
[ $bad -eq 0 ] || { guest_console; fail "the migration through mdevstate failed (see above)"; }
echo "ok: layouts 1 and 2 migrate through mdevstate in $kver under a workload, dirty bitmaps exact, hostile input refused, clean kernel log, in $(($(date +%s) - start)) s (module $((t1 - t0)) s, boot + test $GUEST_SECONDS s)"

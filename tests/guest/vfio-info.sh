#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The VFIO transport against a real Linux kernel.
#
# Boots the distribution's kernel (linux-image-amd64) under
# qemu-system-x86_64 with software emulation, an emulated Intel IOMMU
# (Debian's kernels have no CONFIG_VFIO_NOIOMMU, so every device gets its
# own IOMMU group and the type1v2 path runs for real) and three emulated
# PCI devices: edu (a 1 MiB mmappable BAR), pci-testdev and e1000e (its
# MSI-X BAR carries a MSIX_MAPPABLE capability, which needs the argsz
# retry).  The guest (tests/guest/init.sh) binds each to vfio-pci and runs
# devstate-cli info vfio:/dev/vfio/GROUP/BDF, text and JSON;
# tests/guest/check-info.py compares the region table with the guest
# kernel's sysfs and checks the blocker.
#
# The initramfs holds busybox, the vfio modules of that kernel (with their
# dependencies from modules.dep, decompressed) and the devstate-cli of
# this build with the shared libraries ldd finds for it, at the same
# paths, so whatever this build is (x86-64, i386, sanitizers) runs as is.
#
# Exit 77 (skip) only when a package it needs is missing (the list is
# tools/deps/guest.txt; tools/bootstrap.sh deps installs it); everything
# else that goes wrong is a failure.
#
# Environment: top_srcdir, top_builddir (make check sets them);
# DEVSTATE_GUEST_TIMEOUT seconds for the guest (default 180: about 15 s
# alone, more on a loaded machine);
# DEVSTATE_GUEST_KEEP=1 keeps the work directory.
set -u

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$srcdir/tests/guest/lib.sh"
guest_start 180

# --- what the test needs ------------------------------------------------
command -v python3 >/dev/null || skip "no python3 (Debian package python3)"

# The newest installed kernel that has vfio-pci.
kver=""
for k in $(ls /boot 2>/dev/null | sed -n 's/^vmlinuz-//p' | sort -V); do
	dep=/lib/modules/$k/modules.dep
	[ -f "$dep" ] && grep -q '/vfio-pci\.ko' "$dep" && kver=$k
done
[ -n "$kver" ] ||
	skip "no /boot/vmlinuz-* with vfio-pci modules (Debian package linux-image-amd64)"
kernel=/boot/vmlinuz-$kver
[ -r "$kernel" ] || skip "$kernel is not readable (needs root)"

guest_binary cli tools/devstate-cli

guest_workdir vfio-info

# --- the initramfs --------------------------------------------------------
guest_root "$here/init.sh"
guest_add_program "$cli" devstate-cli
guest_add_modules "$kver" vfio_iommu_type1 vfio_pci
modules=$GUEST_MODULES

cat >"$root/guest.conf" <<EOF
CLI=/devstate-cli
LIBPATH=$(guest_libpath)
MODULES="$modules"
EOF

guest_pack "$work/initramfs.cpio"

echo "kernel:   $kernel"
echo "modules: $modules"
echo "cli:      $cli"
echo "qemu:     $("$qemu" --version | head -n 1)"

# --- boot -----------------------------------------------------------------
# An emulated IOMMU and three PCI devices; e1000e has no netdev (its link
# goes nowhere).
GUEST_QEMU="-device intel-iommu,intremap=on -device edu -device pci-testdev -device e1000e,romfile="
GUEST_APPEND="intel_iommu=on no_timer_check"
guest_boot
python3 "$here/check-info.py" "$work/results.txt" || {
	guest_console
	fail "the guest's report does not match its kernel"
}
echo "ok: real-kernel VFIO test in $(($(date +%s) - start)) s (boot + test $GUEST_SECONDS s)"

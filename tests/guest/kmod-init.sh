#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# /init of the guest that tests/guest/kmod-migrate.sh boots (busybox sh).
# For each control layout (1, then 2): loads the sample driver mdevstate
# with layout=N, creates three instances, shows the first with
# devstate-cli info (text and JSON), migrates it into the second with
# kmod-work running a workload during pre-copy, runs kmod-work's hostile
# checks on the third, removes the instances and unloads the module.
# Then reports every WARNING, BUG or oops of the kernel log (the kernel
# runs with slub_debug=FZP).  Everything goes to the second serial port
# (/dev/ttyS1; init-lib.sh); kmod-migrate.sh reads the "=== " lines.

# LIBPATH and MODULES come from /guest.conf (kmod-migrate.sh writes it).
. /init-lib.sh
export LD_LIBRARY_PATH=$LIBPATH

echo "=== cmdline $(cat /proc/cmdline)"
for m in $MODULES; do
	guest_insmod "$m"
done

types=/sys/devices/virtual/mdevstate/mdevstate/mdev_supported_types
src=5e1f0a2c-6d1b-4c6e-9b8a-000000000001
dst=5e1f0a2c-6d1b-4c6e-9b8a-000000000002
hos=5e1f0a2c-6d1b-4c6e-9b8a-000000000003
for v in 1 2; do
	echo "=== layout $v"
	guest_insmod mdevstate layout=$v
	echo "=== available $(cat $types/mdevstate-1/available_instances 2>&1)"
	mdev_create "$types/mdevstate-1" $src $dst $hos
	gs=$(mdev_group $src)
	gd=$(mdev_group $dst)
	gh=$(mdev_group $hos)
	echo "=== groups $gs $gd $gh"
	echo "=== info-text $v"
	/devstate-cli info "vfio:/dev/vfio/$gs/$src"
	echo "=== info-rc $?"
	echo "=== info-json $(/devstate-cli info --json "vfio:/dev/vfio/$gs/$src")"
	start=$(cut -d' ' -f1 /proc/uptime)
	/kmod-work migrate $v $gs $src $gd $dst /devstate-cli /tmp/bitmap
	echo "=== migrate-rc $v $? (started at ${start} s uptime)"
	/kmod-work hostile $v $gh $hos
	echo "=== hostile-rc $v $?"
	mdev_remove $src $dst $hos
	rmmod mdevstate && echo "=== rmmod $v ok" || echo "=== rmmod-failed $v"
done
# the kernel's log: nothing may have gone wrong in it
dmesg >/tmp/dmesg
if grep -E 'WARNING|BUG|Oops|general protection|Call Trace|kernel BUG|Redzone|Poison overwritten|Object padding|slab_err|UBSAN|KASAN' /tmp/dmesg; then
	echo "=== kernel-log-dirty"
else
	echo "=== kernel-log-clean"
fi
grep mdevstate /tmp/dmesg
guest_done

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
# (/dev/ttyS1); kmod-migrate.sh reads the "=== " lines.
PATH=/bin
export PATH
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/ttyS1 2>&1

# LIBPATH and MODULES, written by kmod-migrate.sh
. /guest.conf
export LD_LIBRARY_PATH=$LIBPATH

echo "=== kernel $(uname -r)"
echo "=== cmdline $(cat /proc/cmdline)"
for m in $MODULES; do
	insmod "/modules/$m.ko" || echo "=== insmod-failed $m"
done

types=/sys/devices/virtual/mdevstate/mdevstate/mdev_supported_types
src=5e1f0a2c-6d1b-4c6e-9b8a-000000000001
dst=5e1f0a2c-6d1b-4c6e-9b8a-000000000002
hos=5e1f0a2c-6d1b-4c6e-9b8a-000000000003
group() {
	g=$(readlink "/sys/bus/mdev/devices/$1/iommu_group")
	echo "${g##*/}"
}
for v in 1 2; do
	echo "=== layout $v"
	insmod /modules/mdevstate.ko layout=$v || echo "=== insmod-failed mdevstate layout=$v"
	echo "=== available $(cat $types/mdevstate-1/available_instances 2>&1)"
	for u in $src $dst $hos; do
		echo "$u" >"$types/mdevstate-1/create" || echo "=== create-failed $u"
	done
	gs=$(group $src)
	gd=$(group $dst)
	gh=$(group $hos)
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
	for u in $src $dst $hos; do
		echo 1 >"/sys/bus/mdev/devices/$u/remove" || echo "=== remove-failed $u"
	done
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
echo "=== done"
sync
poweroff -f

#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# /init of the guest that tests/guest/mtty-fsm.sh boots (busybox sh).
# Loads vfio, vfio_iommu_type1, mdev and the mtty sample built for this
# kernel, creates two mtty-2 instances and runs mig2-fsm on them (the
# first under test, the second the source of a saved state).  Everything
# it reports goes to the second serial port (/dev/ttyS1), away from the
# kernel's console on ttyS0; mtty-fsm.sh reads the "=== " lines.
PATH=/bin
export PATH
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/ttyS1 2>&1

# LIBPATH and MODULES, written by mtty-fsm.sh
. /guest.conf

echo "=== kernel $(uname -r)"
# mtty with its dev_dbg() records on: mig2-fsm reads the kernel's route,
# arc by arc, from /dev/kmsg.
for m in $MODULES; do
	case $m in mtty) param=dyndbg=+p ;; *) param= ;; esac
	insmod "/modules/$m.ko" $param || echo "=== insmod-failed $m"
done

types=/sys/devices/virtual/mtty/mtty/mdev_supported_types
dev=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
src=83b8f4f2-509f-382f-3c1e-e6bfe0fa1002
echo "=== mtty-2 available $(cat $types/mtty-2/available_instances 2>&1)"
groups=""
for u in $dev $src; do
	echo "$u" >"$types/mtty-2/create" || echo "=== create-failed $u"
	g=$(readlink "/sys/bus/mdev/devices/$u/iommu_group")
	g=${g##*/}
	echo "=== instance $u group $g"
	groups="$groups $g"
done
set -- $groups
LD_LIBRARY_PATH=$LIBPATH /mig2-fsm "/dev/vfio/$1" $dev "/dev/vfio/$2" $src
echo "=== rc $?"
for u in $dev $src; do
	echo 1 >"/sys/bus/mdev/devices/$u/remove" || echo "=== remove-failed $u"
done
echo "=== done"
sync
poweroff -f

#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# /init of the guests that tests/guest/mtty-fsm.sh and mtty-migrate.sh boot
# (busybox sh).  Loads vfio, vfio_iommu_type1, mdev and the mtty sample
# built for this kernel, creates two mtty-2 instances and runs the test's
# program on them: "PROGRAM GROUP-1 UUID-1 GROUP-2 UUID-2 ARGS" (mig2-fsm:
# the first under test, the second the source of a saved state;
# mig2-migrate: the first the source, the second the destination).
# Everything it reports goes to the second serial port (/dev/ttyS1;
# init-lib.sh), away from the kernel's console on ttyS0; the test reads
# the "=== " lines.

# LIBPATH, MODULES, PROGRAM and ARGS come from /guest.conf (lib.sh's
# mtty_initramfs writes it).
. /init-lib.sh

# mtty with its dev_dbg() records on: mig2-fsm reads the kernel's route,
# arc by arc, from /dev/kmsg (mig2-migrate does not need them).
for m in $MODULES; do
	case $m in mtty) param=dyndbg=+p ;; *) param= ;; esac
	guest_insmod "$m" $param
done

types=/sys/devices/virtual/mtty/mtty/mdev_supported_types
one=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
two=83b8f4f2-509f-382f-3c1e-e6bfe0fa1002
echo "=== mtty-2 available $(cat $types/mtty-2/available_instances 2>&1)"
mdev_create "$types/mtty-2" $one $two
groups=""
for u in $one $two; do
	g=$(mdev_group $u)
	echo "=== instance $u group $g"
	groups="$groups $g"
done
set -- $groups
LD_LIBRARY_PATH=$LIBPATH $PROGRAM "/dev/vfio/$1" $one "/dev/vfio/$2" $two $ARGS
echo "=== rc $?"
mdev_remove $one $two
guest_done

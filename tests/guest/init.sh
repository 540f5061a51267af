#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# /init of the guest that tests/guest/vfio-info.sh boots (busybox sh).
# Loads the vfio modules, binds every emulated test device to vfio-pci and
# runs devstate-cli info on it.  Everything it reports goes to the second
# serial port (/dev/ttyS1; init-lib.sh), away from the kernel's console on
# ttyS0, in sections that tests/guest/check-info.py reads:
#   === device NAME BDF / --- KEY / ... / === end NAME / === done

# CLI, LIBPATH and MODULES come from /guest.conf (vfio-info.sh writes it).
. /init-lib.sh

for m in $MODULES; do
	guest_insmod "$m"
done

name_of() {
	case "$1:$2" in
	0x1234:0x11e8) echo edu ;;
	0x1b36:0x0005) echo pci-testdev ;;
	0x8086:0x10d3) echo e1000e ;;
	*) echo "" ;;
	esac
}

for d in /sys/bus/pci/devices/*; do
	bdf=${d##*/}
	name=$(name_of "$(cat "$d/vendor")" "$(cat "$d/device")")
	[ -n "$name" ] || continue
	echo vfio-pci >"$d/driver_override"
	echo "$bdf" >/sys/bus/pci/drivers_probe
	drv=$(readlink "$d/driver")
	group=$(readlink "$d/iommu_group")
	group=${group##*/}
	echo "=== device $name $bdf"
	echo "--- driver"
	echo "${drv##*/}"
	echo "--- group"
	echo "$group"
	echo "--- resource"
	cat "$d/resource"
	echo "--- config-size"
	stat -c %s "$d/config"
	echo "--- config"
	od -An -tx1 -v -N 256 "$d/config"
	echo "--- info"
	LD_LIBRARY_PATH=$LIBPATH "$CLI" info "vfio:/dev/vfio/$group/$bdf"
	rc=$?
	echo "--- info-rc"
	echo $rc
	echo "--- json"
	LD_LIBRARY_PATH=$LIBPATH "$CLI" info --json "vfio:/dev/vfio/$group/$bdf" 2>/tmp/err
	rc=$?
	echo "--- json-rc"
	echo $rc
	echo "--- json-stderr"
	cat /tmp/err
	echo "=== end $name"
done
guest_done

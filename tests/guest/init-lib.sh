# SPDX-License-Identifier: LGPL-2.1-or-later
# What every guest's /init (init.sh, kmod-init.sh, mtty-init.sh; busybox
# sh) sources first: lib.sh's guest_root installs it as /init-lib.sh.
# Mounts proc, sys and dev, installs busybox's applets, sends everything
# that follows to the second serial port (/dev/ttyS1), away from the
# kernel's console on ttyS0, reads /guest.conf (written by the test on
# the host) and reports the kernel as "=== kernel VERSION".
PATH=/bin
export PATH
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/ttyS1 2>&1

. /guest.conf

echo "=== kernel $(uname -r)"

# insmod /modules/NAME.ko [PARAM...]; "=== insmod-failed NAME [PARAM...]"
# when it fails.
guest_insmod() {
	insmod_name=$1
	shift
	insmod "/modules/$insmod_name.ko" "$@" ||
		echo "=== insmod-failed $insmod_name${1:+ $*}"
}

# mdev_create TYPE-DIR UUID...: an instance of the mdev type in TYPE-DIR
# (a mdev_supported_types/NAME directory) per UUID; "=== create-failed
# UUID" for each that fails.  mdev_remove UUID...: the reverse,
# "=== remove-failed UUID".  mdev_group UUID: the instance's IOMMU group.
mdev_create() {
	mdev_type=$1
	shift
	for mdev_uuid; do
		echo "$mdev_uuid" >"$mdev_type/create" ||
			echo "=== create-failed $mdev_uuid"
	done
}

mdev_remove() {
	for mdev_uuid; do
		echo 1 >"/sys/bus/mdev/devices/$mdev_uuid/remove" ||
			echo "=== remove-failed $mdev_uuid"
	done
}

mdev_group() {
	mdev_link=$(readlink "/sys/bus/mdev/devices/$1/iommu_group")
	echo "${mdev_link##*/}"
}

# The end of every guest's run: "=== done", then power off.
guest_done() {
	echo "=== done"
	sync
	poweroff -f
}

# SPDX-License-Identifier: LGPL-2.1-or-later
# Included from the top-level Makefile.am: the real-kernel test.  It boots
# the distribution's kernel under qemu (software emulation), binds emulated
# PCI devices to vfio-pci and runs this build's devstate-cli on them
# (vfio-info.sh says how); it needs the packages of tools/deps/guest.txt
# and skips (77) without them.
guest_scripts = tests/guest/vfio-info.sh
TESTS += $(guest_scripts)
EXTRA_DIST += $(guest_scripts) tests/guest/init.sh tests/guest/check-info.py \
	tests/guest/lib.sh tests/guest/init-lib.sh
include $(srcdir)/tests/guest/mtty.mk
include $(srcdir)/tests/guest/kmod.mk

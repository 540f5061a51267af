# SPDX-License-Identifier: LGPL-2.1-or-later
# Included from the top-level Makefile.am: transports beyond fake and file.

# The VFIO transport (a real device fd) and its system-call seam.
libdevstate_internal_la_SOURCES += \
	transports/vfio.c \
	transports/vfio-sys.h

# Its unit tests: the kernel's VFIO ioctls played from tables.
check_PROGRAMS += tests/test-vfio
tests_test_vfio_SOURCES = tests/test-vfio.c tests/testutil.h
tests_test_vfio_CFLAGS = $(TEST_CFLAGS)
tests_test_vfio_LDADD = $(TEST_LIBS)

# Its man pages (libdevstate(3) and devstate-cli(1) describe it too).
dist_man_MANS += \
	man/devstate_device_open_vfio_fd.3 \
	man/devstate_device_vfio_info.3 \
	man/devstate_device_vfio_region.3

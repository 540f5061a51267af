/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the guest programs (mig2-fsm, mig2-migrate, kmod-work) share:
 * opening mdev instances through their VFIO groups into one type1v2
 * container, the start of main for the two that take "GROUP UUID GROUP
 * UUID ...", and dying with a "=== fatal" line (exit status 2) the guest
 * tests look for.  Header-only (static functions): each program is one
 * translation unit.
 */
#ifndef DEVSTATE_GUEST_VFIO_H
#define DEVSTATE_GUEST_VFIO_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

static int guest_container = -1;
static int guest_iommu_set;

static void die(const char *what)
{
	printf("=== fatal %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(2);
}

/* Open one mdev through its group, attaching the group to the shared
 * type1v2 container (set up with the first group).  mdevs need no IOMMU:
 * a type1v2 container takes them. */
static int open_device(const char *group_path, const char *uuid)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	int group, dev;

	if (guest_container < 0) {
		guest_container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
		if (guest_container < 0)
			die("open /dev/vfio/vfio");
		if (ioctl(guest_container, VFIO_GET_API_VERSION) !=
		    VFIO_API_VERSION)
			die("VFIO_GET_API_VERSION");
		if (ioctl(guest_container, VFIO_CHECK_EXTENSION,
			  VFIO_TYPE1v2_IOMMU) != 1)
			die("no VFIO_TYPE1v2_IOMMU");
	}
	group = open(group_path, O_RDWR | O_CLOEXEC);
	if (group < 0)
		die(group_path);
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &st))
		die("VFIO_GROUP_GET_STATUS");
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = EBUSY;
		die("group not viable");
	}
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &guest_container))
		die("VFIO_GROUP_SET_CONTAINER");
	/* The IOMMU is set once, after the first group joined. */
	if (!guest_iommu_set) {
		if (ioctl(guest_container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
			die("VFIO_SET_IOMMU");
		guest_iommu_set = 1;
	}
	dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, uuid);
	if (dev < 0)
		die("VFIO_GROUP_GET_DEVICE_FD");
	return dev;
}

/* The start of main for a program run as "PROGRAM GROUP-1 UUID-1 GROUP-2
 * UUID-2 ..." (GROUP a /dev/vfio/N path): standard output line-buffered
 * (the report goes to a serial port), "usage: PROGRAM USAGE" and exit
 * status 2 unless there are exactly NARGS arguments, and both instances
 * opened, into *first and *second. */
static inline void guest_open_two(int argc, char **argv, int nargs,
				  const char *usage, int *first,
				  int *second)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != nargs + 1) {
		fprintf(stderr, "usage: %s %s\n", argv[0], usage);
		exit(2);
	}
	*first = open_device(argv[1], argv[2]);
	*second = open_device(argv[3], argv[4]);
}

#endif /* DEVSTATE_GUEST_VFIO_H */

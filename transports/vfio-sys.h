/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The system calls the VFIO transport makes, behind one table so that the
 * unit tests can play the kernel (tests/test-vfio.c).  Internal: not
 * installed, not exported.
 *
 * Every entry has the libc convention (-1 and errno, MAP_FAILED for mmap);
 * the transport turns that into -errno.  The default table calls the real
 * system calls.
 */
#ifndef DEVSTATE_VFIO_SYS_H
#define DEVSTATE_VFIO_SYS_H

#include <stddef.h>
#include <sys/types.h>

struct devstate_vfio_sys {
	/* open(path, O_RDWR | O_CLOEXEC) */
	int (*open)(const char *path, int flags);
	int (*close)(int fd);
	/* every VFIO ioctl takes a pointer (or nothing: arg NULL) */
	int (*ioctl)(int fd, unsigned long request, void *arg);
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd,
		      off_t off);
	int (*munmap)(void *addr, size_t len);
	/* an ioctl with an integer argument (VFIO_CHECK_EXTENSION,
	 * VFIO_SET_IOMMU) */
	int (*ioctl_int)(int fd, unsigned long request, unsigned long arg);
	/* the migration data fd of uAPI v2 (read in the saving states,
	 * write in RESUMING) */
	ssize_t (*read)(int fd, void *buf, size_t len);
	ssize_t (*write)(int fd, const void *buf, size_t len);
};

/* The table in use; NULL restores the real system calls.  Tests only:
 * not safe while a VFIO device is open. */
void devstate_vfio_set_sys(const struct devstate_vfio_sys *sys);

#endif /* DEVSTATE_VFIO_SYS_H */

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target 4: the VFIO transport's region-info and capability-chain
 * parser, fed raw kernel answers through the system-call seam
 * (transports/vfio-sys.h), then a short save session over the device it
 * found, so that reads and writes of hostile regions are exercised too.
 *
 * Script (the fuzzer's bytes, consumed in call order; 0 when exhausted,
 * and then every call fails with EIO):
 *   every call     1 byte: >= 0xf0 fails the call with an errno
 *   GET_INFO       u32 flags, u8 num_regions (0xff: a u32 follows),
 *                  u8 num_irqs
 *   GET_REGION_INFO  u16 n, then n raw bytes copied over the caller's
 *                  buffer (at most its argsz): the kernel's answer, fixed
 *                  part (argsz, flags, index, cap_offset, size, offset)
 *                  and capability chain alike
 *   pread          u8 k (0xff: end of file; bit 7: short), then the bytes
 *   pwrite         u8 k (bit 7: short)
 *   mmap           u8 k (< 0x80 and at most 1 MiB: mapped, else fails)
 *
 * The kernel's migration uAPI v2 (probed first at open):
 *   VFIO_DEVICE_FEATURE  the call's byte: < 0xe0 ENOTTY (no uAPI v2, as
 *                  the region-protocol seeds have it), 0xe0..0xef
 *                  answered, >= 0xf0 an errno.  Answers: MIGRATION u8
 *                  flags (0xff: a u64 follows); GET MIG_DEVICE_STATE u8
 *                  state (0xff: a u32 follows); SET MIG_DEVICE_STATE u8
 *                  k: < 0x80 no data fd, 0x80..0xfd a new data fd,
 *                  0xfe the device fd, 0xff a u32 fd number;
 *                  MIG_DATA_SIZE a u64
 *   VFIO_MIG_GET_PRECOPY_INFO (on a data fd)  two u64
 *   VFIO_DEVICE_RESET  the call's byte only
 *   read (data fd) u8 k: 0 end / nothing more now, 0xfe more than
 *                  asked, else min(k, asked) bytes from the script
 * The data fds the "kernel" hands out are tracked: read or ioctl only
 * while open, closed exactly once, none left open after the device is
 * freed.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/vfio.h>

#include "devstate.h"
#include "libdevstate/mig2.h"
#include "transports/vfio-sys.h"
#include "fuzz/fuzz.h"

#define FD		1000
#define MAP_MAX		(1u << 20)

static struct fz z;

/* data fds handed out by SET MIG_DEVICE_STATE: DATA_FD0 + i */
#define DATA_FD0	2000
#define DATA_FDS	64
static bool data_open[DATA_FDS];
static unsigned data_next;

static bool is_data_fd(int fd)
{
	return fd >= DATA_FD0 && fd < DATA_FD0 + DATA_FDS;
}

static const int errs[] = { EINVAL, EIO, ENOTTY, EFAULT, ENOMEM, EINTR,
			    EAGAIN, ENODEV, EPERM, E2BIG, ENOMSG };

static int fail_now(void)
{
	uint8_t b;

	if (!fz_left(&z)) {
		errno = EIO;
		return 1;
	}
	b = fz_u8(&z);
	if (b < 0xf0)
		return 0;
	errno = errs[(b - 0xf0) % (sizeof(errs) / sizeof(errs[0]))];
	return 1;
}

static int s_open(const char *path, int flags)
{
	(void)path;
	(void)flags;
	errno = ENOENT;
	return -1;
}

static int s_close(int fd)
{
	FZ_ASSERT(fd != FD);	/* borrowed: never closed */
	if (is_data_fd(fd)) {
		FZ_ASSERT(data_open[fd - DATA_FD0]);	/* once */
		data_open[fd - DATA_FD0] = false;
	}
	return 0;
}

/* VFIO_DEVICE_FEATURE: what the kernel answers (the call's byte is
 * already taken and was < 0xf0). */
static int feature(struct vfio_device_feature *f, uint8_t b)
{
	uint32_t what = f->flags & VFIO_DEVICE_FEATURE_MASK;
	void *data = f->data;

	FZ_ASSERT(f->argsz >= sizeof(*f));
	if (b < 0xe0) {
		errno = ENOTTY;
		return -1;
	}
	if (what == VFIO_DEVICE_FEATURE_MIGRATION) {
		struct vfio_device_feature_migration m;
		uint8_t k = fz_u8(&z);

		FZ_ASSERT(f->argsz >= sizeof(*f) + sizeof(m));
		FZ_ASSERT(f->flags & VFIO_DEVICE_FEATURE_GET);
		m.flags = k == 0xff ? fz_u64(&z) : k;
		memcpy(data, &m, sizeof(m));
		return 0;
	}
	if (what == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) {
		struct vfio_device_feature_mig_state m;
		uint8_t k = fz_u8(&z);

		FZ_ASSERT(f->argsz >= sizeof(*f) + sizeof(m));
		memcpy(&m, data, sizeof(m));
		if (f->flags & VFIO_DEVICE_FEATURE_GET) {
			m.device_state = k == 0xff ? fz_u32(&z) : k;
		} else if (k < 0x80) {
			m.data_fd = -1;
		} else if (k == 0xfe) {
			m.data_fd = FD;
		} else if (k == 0xff) {
			m.data_fd = (int32_t)fz_u32(&z);
			/* a number the library must not close: only ours */
			if (m.data_fd != -1 && !is_data_fd(m.data_fd) &&
			    m.data_fd != FD)
				m.data_fd = -7;
			if (is_data_fd(m.data_fd))
				data_open[m.data_fd - DATA_FD0] = true;
		} else {
			unsigned i = data_next++ % DATA_FDS;

			if (data_open[i]) {	/* all taken: none */
				m.data_fd = -1;
			} else {
				data_open[i] = true;
				m.data_fd = DATA_FD0 + (int)i;
			}
		}
		memcpy(data, &m, sizeof(m));
		return 0;
	}
	if (what == VFIO_DEVICE_FEATURE_MIG_DATA_SIZE) {
		struct vfio_device_feature_mig_data_size m;

		FZ_ASSERT(f->argsz >= sizeof(*f) + sizeof(m));
		m.stop_copy_length = fz_u64(&z);
		memcpy(data, &m, sizeof(m));
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

static int s_ioctl(int fd, unsigned long req, void *arg)
{
	if (is_data_fd(fd)) {
		struct vfio_precopy_info *pi = arg;

		FZ_ASSERT(data_open[fd - DATA_FD0]);
		FZ_ASSERT(req == VFIO_MIG_GET_PRECOPY_INFO);
		FZ_ASSERT(pi->argsz >= sizeof(*pi));
		if (fail_now())
			return -1;
		pi->initial_bytes = fz_u64(&z);
		pi->dirty_bytes = fz_u64(&z);
		return 0;
	}
	FZ_ASSERT(fd == FD);
	if (req == VFIO_DEVICE_FEATURE) {
		uint8_t b;

		if (!fz_left(&z)) {
			errno = EIO;
			return -1;
		}
		b = fz_u8(&z);
		if (b >= 0xf0) {
			errno = errs[(b - 0xf0) % (sizeof(errs) /
						   sizeof(errs[0]))];
			return -1;
		}
		return feature(arg, b);
	}
	if (fail_now())
		return -1;
	if (req == VFIO_DEVICE_RESET)
		return 0;
	if (req == VFIO_DEVICE_GET_INFO) {
		struct vfio_device_info di;
		uint32_t argsz;

		memcpy(&argsz, arg, sizeof(argsz));
		FZ_ASSERT(argsz >= 16);
		memset(&di, 0, sizeof(di));
		di.argsz = argsz;
		di.flags = fz_u32(&z);
		di.num_regions = fz_u8(&z);
		if (di.num_regions == 0xff)
			di.num_regions = fz_u32(&z);
		di.num_irqs = fz_u8(&z);
		memcpy(arg, &di, 16);
		return 0;
	}
	if (req == VFIO_DEVICE_GET_REGION_INFO) {
		uint32_t argsz;
		size_t n;

		memcpy(&argsz, arg, sizeof(argsz));
		FZ_ASSERT(argsz >= 32);
		n = fz_u8(&z);
		n |= (size_t)fz_u8(&z) << 8;
		if (n > argsz)
			n = argsz;
		if (n > fz_left(&z))
			n = fz_left(&z);
		/* the caller's buffer is argsz bytes: ASan checks it */
		memcpy(arg, z.p + z.pos, n);
		z.pos += n;
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

static int s_ioctl_int(int fd, unsigned long req, unsigned long arg)
{
	(void)fd;
	(void)req;
	(void)arg;
	errno = ENOTTY;
	return -1;
}

static ssize_t s_pread(int fd, void *buf, size_t len, off_t off)
{
	uint8_t k;
	size_t n;

	FZ_ASSERT(fd == FD && off >= 0 && len > 0);
	if (fail_now())
		return -1;
	k = fz_u8(&z);
	if (k == 0xff)
		return 0;
	n = k & 0x80 ? (len + 1) / 2 : len;
	if (n <= fz_left(&z)) {
		memcpy(buf, z.p + z.pos, n);
		z.pos += n;
	} else {
		memset(buf, 0, n);
		z.pos = z.len;
	}
	return (ssize_t)n;
}

static ssize_t s_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	const volatile uint8_t *p = buf;
	uint8_t k, x = 0;
	size_t i;

	FZ_ASSERT(fd == FD && off >= 0 && len > 0);
	for (i = 0; i < len; i++)
		x ^= p[i];
	(void)x;
	if (fail_now())
		return -1;
	k = fz_u8(&z);
	return (ssize_t)(k & 0x80 ? (len + 1) / 2 : len);
}

static ssize_t s_read(int fd, void *buf, size_t len)
{
	uint8_t k;
	size_t n;

	FZ_ASSERT(is_data_fd(fd) && data_open[fd - DATA_FD0]);
	FZ_ASSERT(len > 0);
	if (fail_now())
		return -1;
	k = fz_u8(&z);
	if (k == 0xfe)
		return (ssize_t)len + 1;
	n = k < len ? k : len;
	if (n <= fz_left(&z)) {
		memcpy(buf, z.p + z.pos, n);
		z.pos += n;
	} else {
		memset(buf, 0, n);
		z.pos = z.len;
	}
	return (ssize_t)n;
}

static ssize_t s_write(int fd, const void *buf, size_t len)
{
	(void)fd;
	(void)buf;
	(void)len;
	FZ_ASSERT(!"migration data written during a save");
	return -1;
}

static void *s_mmap(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off)
{
	void *p;

	(void)flags;
	FZ_ASSERT(fd == FD && off >= 0 && len > 0);
	if (fail_now())
		return MAP_FAILED;
	if (fz_u8(&z) >= 0x80 || len > MAP_MAX) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	p = mmap(addr, len, prot | PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	return p;
}

static int s_munmap(void *addr, size_t len)
{
	return munmap(addr, len);
}

static const struct devstate_vfio_sys sys_script = {
	.open = s_open,
	.close = s_close,
	.ioctl = s_ioctl,
	.pread = s_pread,
	.pwrite = s_pwrite,
	.mmap = s_mmap,
	.munmap = s_munmap,
	.ioctl_int = s_ioctl_int,
	.read = s_read,
	.write = s_write,
};

static int sink(void *opaque, const void *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
	return 0;
}

static void save(struct devstate_device *dev)
{
	struct devstate_save *s;
	uint64_t pending, bm[2] = { 0 };
	int rc;

	if (devstate_save_new(&s, dev, NULL, sink, NULL) < 0)
		return;
	rc = devstate_save_setup(s);
	if (rc == 0)
		rc = devstate_save_pending(s, &pending);
	if (rc == 0)
		rc = devstate_save_iterate(s);
	if (rc == 0 && (devstate_device_caps(dev) & DEVSTATE_CAP_SYSTEM_MEMORY))
		rc = devstate_save_log_sync(s, 0, 100, bm);
	if (rc == 0)
		rc = devstate_save_complete(s);
	if (rc == 0)
		devstate_save_cleanup(s);
	if (getenv("FUZZ_VFIO_VERBOSE"))	/* which seeds save */
		fprintf(stderr, "save (protocol %u): %d%s%s\n",
			devstate_device_protocol(dev), rc, rc ? ": " : "",
			rc ? devstate_save_error(s) : "");
	devstate_save_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct devstate_device *dev;
	struct devstate_vfio_info info;
	struct devstate_vfio_region reg;
	char err[512];
	uint32_t i;
	int rc;

	fz_init(&z, data, size);
	memset(data_open, 0, sizeof(data_open));
	data_next = 0;
	devstate_vfio_set_sys(&sys_script);
	rc = devstate_device_open_vfio_fd(&dev, FD, NULL, DEVSTATE_OPEN_INSPECT,
					  err, sizeof(err));
	if (rc < 0) {
		FZ_ASSERT(err[0]);
		for (i = 0; i < DATA_FDS; i++)
			FZ_ASSERT(!data_open[i]);
		devstate_vfio_set_sys(NULL);
		return 0;
	}
	FZ_ASSERT(devstate_device_vfio_info(dev, &info) == 0);
	for (i = 0; i < info.num_regions && i < 64; i++) {
		FZ_ASSERT(devstate_device_vfio_region(dev, i, &reg) == 0);
		FZ_ASSERT(reg.nr_areas <= (1u << 16));
	}
	FZ_ASSERT(devstate_device_vfio_region(dev, info.num_regions, &reg) ==
		  -ERANGE);
	if (devstate_device_blocker(dev, NULL) == DEVSTATE_BLOCKER_NONE)
		save(dev);
	devstate_device_free(dev);
	for (i = 0; i < DATA_FDS; i++)	/* every data fd closed */
		FZ_ASSERT(!data_open[i]);
	devstate_vfio_set_sys(NULL);
	return 0;
}

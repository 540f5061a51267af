// SPDX-License-Identifier: GPL-2.0
/*
 * mdevstate: a sample mediated-device vendor driver that implements the
 * VFIO device-state regions of libdevstate's SPEC (the interface proposed
 * for VFIO live migration, whose kernel side never merged), so that
 * libdevstate can be tested through real VFIO group and device fds, real
 * region ioctls and real mmap.  Test code: not meant for production.
 *
 * Each instance ("mdevstate-1" type, parent /sys/devices/virtual/mdevstate/
 * mdevstate) is a small PCI-like device:
 *
 *   region 0 (BAR0)  device memory, mem_kb KiB, read/write only (never
 *                    mmap), so the driver sees every write and tracks
 *                    dirty pages exactly.  Writes are refused (EBUSY)
 *                    while the device is stopped.
 *   region 1 (BAR1)  registers, each accessed at its offset and width:
 *                    0 DMA_ADDR u64 rw, 8 DMA_LEN u32 rw, 12 DMA_VALUE u32
 *                    rw, 16 DOORBELL u32 wo (any value: the device writes
 *                    DMA_LEN bytes of DMA_VALUE, repeated, at IOVA
 *                    DMA_ADDR of the container's mappings with
 *                    vfio_dma_rw), 20 STATUS u32 ro (bits 0-1 the device
 *                    state, bit 8: the last doorbell's pages went into the
 *                    system-memory dirty log).
 *   regions 9-12     the device-state regions of SPEC 2, each with a
 *                    VFIO_REGION_INFO_CAP_TYPE capability (type
 *                    region_type, subtypes 1-4): the control region (read/
 *                    write at the offsets of layout version 1 or 2), and
 *                    the config, device-memory and dirty-bitmap data
 *                    regions (read/write and mmap).
 *
 * The device's config (what DEVICE_CONFIG moves) is config_kb KiB whose
 * first 24 bytes are the BAR1 register file, so loading a config restores
 * the registers.  The vendor semantics follow libdevstate's fake device
 * (transports/fake.c) rule by rule: the same batches, dirty baseline,
 * system-memory log and errnos; tests/kmod/README lists the differences.
 *
 * Locking: one mutex per instance guards all of its state; everything that
 * may sleep (copy_{to,from}_user, vfio_dma_rw, allocation) runs under it
 * and nothing runs in atomic context.  Unload with a device open is
 * refused by the module reference vfio takes at open.
 */
#include <linux/bitmap.h>
#include <linux/device.h>
#include <linux/init.h>
#include <linux/math64.h>
#include <linux/kernel.h>
#include <linux/mdev.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vfio.h>
#include <linux/vmalloc.h>

#define DRV_NAME	"mdevstate"
#define TYPE_NAME	"1"

/* ---------------------------------------------------------------- */
/* Parameters (fixed at load: 0444).                                 */

#define MDS_PARAM(name, def, desc)			\
	static unsigned int name = def;			\
	module_param(name, uint, 0444);			\
	MODULE_PARM_DESC(name, desc)

MDS_PARAM(mem_kb, 1024,
	  "device memory (BAR0) per instance, KiB, multiple of 4 (default 1024)");

MDS_PARAM(chunk_kb, 64,
	  "DEVICE_MEMORY region length, KiB, multiple of 4 (default 64)");

MDS_PARAM(config_kb, 4,
	  "device config size = DEVICE_CONFIG region length, KiB, multiple of 4 (default 4)");

MDS_PARAM(bitmap_bytes, 4096,
	  "DIRTY_BITMAP region length, bytes, multiple of 4096 (default 4096)");

MDS_PARAM(sysmem_mb, 1024,
	  "system memory the dirty log covers, MiB (default 1024)");

MDS_PARAM(layout, 2,
	  "control layout version, 1 or 2 (default 2)");

MDS_PARAM(region_type, 2,
	  "VFIO region type of the device-state regions (default 2)");

MDS_PARAM(log_limit, 0,
	  "dirty-log capacity in pages, 0 = unlimited; beyond it queries fail with ENOSPC");

MDS_PARAM(max_instances, 4,
	  "instances the parent offers (default 4)");

/* ---------------------------------------------------------------- */
/* The interface (SPEC 2-4).                                        */

#define PAGE_4K		4096ull
#define REC_HDR		16u
#define STATE_STOP	1u
#define STATE_LOGGING	2u
#define STATE_MAX	3u
#define ACT_GET_BUFFER	1u
#define ACT_SET_BUFFER	2u
#define ACT_GET_BITMAP	3u
#define CAP_DEVICE_MEMORY	1u
#define CAP_SYSTEM_MEMORY	2u

enum field {
	F_VERSION, F_STATE, F_CAPS, F_CFG_ACTION, F_CFG_SIZE, F_MEM_ACTION,
	F_MEM_SIZE, F_MEM_POS, F_SYS_ACTION, F_SYS_START, F_SYS_PAGE_NR,
	F_COUNT
};

#define ACC_R 1
#define ACC_W 2

struct field_desc {
	u32 off, width, access;
};

/* Offsets are ABI (SPEC 3), written out as numbers.  Both versions
 * share the fields up to F_MEM_POS; version 2 inserts SYS_ACTION at 56. */
#define LAYOUT_COMMON_FIELDS				\
	[F_VERSION]	= { 0, 4, ACC_R },		\
	[F_STATE]	= { 4, 4, ACC_W },		\
	[F_CAPS]	= { 8, 4, ACC_R },		\
	[F_CFG_ACTION]	= { 16, 4, ACC_W },		\
	[F_CFG_SIZE]	= { 24, 8, ACC_R | ACC_W },	\
	[F_MEM_ACTION]	= { 32, 4, ACC_W },		\
	[F_MEM_SIZE]	= { 40, 8, ACC_R | ACC_W },	\
	[F_MEM_POS]	= { 48, 8, ACC_R | ACC_W }

static const struct field_desc layout_v1[F_COUNT] = {
	LAYOUT_COMMON_FIELDS,
	[F_SYS_ACTION]	= { 0, 0, 0 },		/* none in version 1 */
	[F_SYS_START]	= { 56, 8, ACC_W },
	[F_SYS_PAGE_NR]	= { 64, 8, ACC_W },
};

static const struct field_desc layout_v2[F_COUNT] = {
	LAYOUT_COMMON_FIELDS,
	[F_SYS_ACTION]	= { 56, 4, ACC_W },
	[F_SYS_START]	= { 64, 8, ACC_W },
	[F_SYS_PAGE_NR]	= { 72, 8, ACC_W },
};

/* VFIO region indices: the PCI ones, then the device-state regions. */
enum {
	R_BAR0 = VFIO_PCI_BAR0_REGION_INDEX,
	R_BAR1 = VFIO_PCI_BAR1_REGION_INDEX,
	R_CTL = VFIO_PCI_NUM_REGIONS,
	R_CONFIG,
	R_MEMORY,
	R_BITMAP,
	R_COUNT
};

#define OFF_SHIFT	40
#define OFF_MASK	((1ull << OFF_SHIFT) - 1)
#define R_OFFSET(i)	((u64)(i) << OFF_SHIFT)

/* BAR1 registers */
#define REG_DMA_ADDR	0
#define REG_DMA_LEN	8
#define REG_DMA_VALUE	12
#define REG_DOORBELL	16
#define REG_STATUS	20
#define BAR1_SIZE	32
#define REG_FILE	16	/* bytes of the register file kept in config */
#define STATUS_LOGGED	0x100u
#define DMA_MAX		(1u << 20)

/* ---------------------------------------------------------------- */
/* An instance.                                                     */

struct out_batch {
	bool valid;
	u8 *data;		/* kvmalloc'd copy */
	u64 size;
	u64 nchunks;
	u64 ngot;
	unsigned long *got;	/* one bit per chunk */
};

struct in_batch {
	bool active;
	u64 size;
	u64 next;
};

struct mstate {
	struct vfio_device vdev;
	struct mutex lock;
	const struct field_desc *lay;
	u32 version;
	u64 ctl_len;

	/* device memory, config (its first REG_FILE bytes are BAR1's
	 * register file), data regions (vmalloc_user: mmappable) */
	u8 *mem;
	u64 mem_len, mem_pages;
	u8 *cfg;
	u64 cfg_len;
	u8 *rbuf[R_COUNT];
	u64 rlen[R_COUNT];

	u32 state;
	u32 status_logged;

	/* save side */
	unsigned long *mem_dirty;
	bool tracking, frozen_once;
	struct out_batch out;
	u64 pos;

	/* load side */
	struct in_batch in;
	u8 *stage;
	u64 stage_cap;
	bool cfg_size_set, cfg_loaded;

	/* system memory log */
	u64 sys_pages;
	unsigned long *sys_log;
	u64 sys_pending;
	bool overflow;
	u64 start_addr, page_nr;
	bool start_set, page_nr_set;
};

static struct mdev_type mdevstate_type = {
	.sysfs_name = TYPE_NAME,
	.pretty_name = DRV_NAME "-" TYPE_NAME,
};

static struct mdev_type *mdevstate_types[] = { &mdevstate_type };

static struct device parent_dev;
static struct mdev_parent parent;
static atomic_t avail;
static const struct vfio_device_ops mdevstate_ops;

static struct mstate *to_ms(struct vfio_device *vdev)
{
	return container_of(vdev, struct mstate, vdev);
}

static u64 le_get(const u8 *p, u32 w)
{
	return w == 8 ? get_unaligned_le64(p) : get_unaligned_le32(p);
}

static void le_put(u8 *p, u32 w, u64 v)
{
	if (w == 8)
		put_unaligned_le64(v, p);
	else
		put_unaligned_le32((u32)v, p);
}

static u64 chunks(u64 size, u64 len)
{
	return size ? div64_u64(size - 1, len) + 1 : 0;
}

/* ---------------------------------------------------------------- */
/* Device activity.                                                 */

static void empty_sys_log(struct mstate *ms)
{
	bitmap_zero(ms->sys_log, ms->sys_pages);
	ms->sys_pending = 0;
	ms->overflow = false;
}

static void log_sysmem(struct mstate *ms, u64 page)
{
	if (page >= ms->sys_pages || !(ms->state & STATE_LOGGING))
		return;
	if (ms->overflow || test_bit(page, ms->sys_log))
		return;
	set_bit(page, ms->sys_log);
	ms->sys_pending++;
	if (log_limit && ms->sys_pending > log_limit) {
		empty_sys_log(ms);
		ms->overflow = true;
	}
}

/* DOORBELL: the device writes DMA_LEN bytes into system memory. */
static int doorbell(struct mstate *ms)
{
	u64 iova = get_unaligned_le64(ms->cfg + REG_DMA_ADDR);
	u32 len = get_unaligned_le32(ms->cfg + REG_DMA_LEN);
	u32 value = get_unaligned_le32(ms->cfg + REG_DMA_VALUE);
	u64 sys_len = ms->sys_pages * PAGE_4K, p;
	u32 *buf;
	u32 i;
	int rc;

	if (ms->state & STATE_STOP)
		return -EBUSY;
	if (!len || len > DMA_MAX || len % 4 || iova > sys_len ||
	    len > sys_len - iova)
		return -EINVAL;
	buf = kvmalloc(len, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < len / 4; i++)
		buf[i] = cpu_to_le32(value);
	rc = vfio_dma_rw(&ms->vdev, iova, buf, len, true);
	kvfree(buf);
	if (rc)
		return rc;
	ms->status_logged = (ms->state & STATE_LOGGING) ? STATUS_LOGGED : 0;
	for (p = iova / PAGE_4K; p <= (iova + len - 1) / PAGE_4K; p++)
		log_sysmem(ms, p);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Device state.                                                    */

static void free_out(struct mstate *ms)
{
	kvfree(ms->out.data);
	bitmap_free(ms->out.got);
	memset(&ms->out, 0, sizeof(ms->out));
}

static void reset_load(struct mstate *ms)
{
	memset(&ms->in, 0, sizeof(ms->in));
	ms->cfg_size_set = false;
	ms->cfg_loaded = false;
}

static int set_state(struct mstate *ms, u64 v)
{
	u32 old = ms->state;

	if (v > STATE_MAX)
		return -EINVAL;
	if (v == old)
		return 0;
	if ((old ^ (u32)v) & STATE_LOGGING)
		empty_sys_log(ms);
	if (old == STATE_STOP)
		reset_load(ms);
	ms->state = (u32)v;
	return 0;
}

/* Back to the state after open: RUNNING, no batch, no log. */
static void reset_session(struct mstate *ms)
{
	ms->state = 0;
	ms->status_logged = 0;
	free_out(ms);
	reset_load(ms);
	bitmap_zero(ms->mem_dirty, ms->mem_pages);
	ms->tracking = false;
	ms->frozen_once = false;
	ms->pos = 0;
	empty_sys_log(ms);
	ms->start_set = ms->page_nr_set = false;
	ms->start_addr = ms->page_nr = 0;
}

/* ---------------------------------------------------------------- */
/* Device memory, save side.                                        */

static void put_rec(u8 *p, u64 off, u64 len)
{
	put_unaligned_le64(off, p);
	put_unaligned_le64(len, p + 8);
}

/* One record per run [i, n) of dirty pages; the dirty bits cleared. */
static int build_delta(struct mstate *ms, u8 **data, u64 *size)
{
	unsigned long i, n;
	u64 total = 0;
	u8 *buf, *p;

	for_each_set_bitrange(i, n, ms->mem_dirty, ms->mem_pages)
		total += REC_HDR + (n - i) * PAGE_4K;
	*size = total;
	*data = NULL;
	if (!total)
		return 0;
	buf = kvmalloc(total, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	p = buf;
	for_each_set_bitrange(i, n, ms->mem_dirty, ms->mem_pages) {
		put_rec(p, i * PAGE_4K, (n - i) * PAGE_4K);
		memcpy(p + REC_HDR, ms->mem + i * PAGE_4K, (n - i) * PAGE_4K);
		p += REC_HDR + (n - i) * PAGE_4K;
	}
	bitmap_zero(ms->mem_dirty, ms->mem_pages);
	*data = buf;
	return 0;
}

/* Reading device_memory.size: freeze one batch. */
static int freeze(struct mstate *ms, u64 *size)
{
	struct out_batch b = { .valid = true };
	bool delta = (ms->state & STATE_LOGGING) && ms->frozen_once;
	int rc = 0;

	if (delta && ms->out.valid && ms->out.size &&
	    ms->out.ngot < ms->out.nchunks)
		return -EINVAL;	/* the previous batch was not read to its end */
	if (delta) {
		rc = build_delta(ms, &b.data, &b.size);
	} else {
		b.size = REC_HDR + ms->mem_len;
		b.data = kvmalloc(b.size, GFP_KERNEL);
		if (b.data) {
			put_rec(b.data, 0, ms->mem_len);
			memcpy(b.data + REC_HDR, ms->mem, ms->mem_len);
		} else {
			rc = -ENOMEM;
		}
	}
	if (rc)
		return rc;
	b.nchunks = chunks(b.size, ms->rlen[R_MEMORY]);
	b.got = bitmap_zalloc(b.nchunks ? b.nchunks : 1, GFP_KERNEL);
	if (!b.got) {
		kvfree(b.data);
		return -ENOMEM;
	}
	if (!delta) {
		bitmap_zero(ms->mem_dirty, ms->mem_pages);
		ms->tracking = true;
	}
	ms->frozen_once = true;
	free_out(ms);
	ms->out = b;
	*size = b.size;
	return 0;
}

static int mem_get_buffer(struct mstate *ms)
{
	u64 L = ms->rlen[R_MEMORY], n, idx;

	if (!ms->out.valid || !ms->out.size || ms->pos >= ms->out.size)
		return -EINVAL;
	n = min(ms->out.size - ms->pos, L);
	memcpy(ms->rbuf[R_MEMORY], ms->out.data + ms->pos, n);
	memset(ms->rbuf[R_MEMORY] + n, 0, L - n);
	idx = div64_u64(ms->pos, L);
	if (!test_bit(idx, ms->out.got)) {
		set_bit(idx, ms->out.got);
		ms->out.ngot++;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* Device memory and config, load side.                             */

static u64 in_batch_max(struct mstate *ms)
{
	return ms->mem_len + REC_HDR * (ms->mem_pages + 1);
}

/* Validate every record, then apply them all (or none). */
static int apply_batch(struct mstate *ms, const u8 *p, u64 size)
{
	u64 at, off, len = 0;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		for (at = 0; at < size; at += REC_HDR + len) {
			if (size - at < REC_HDR)
				return -EINVAL;
			off = get_unaligned_le64(p + at);
			len = get_unaligned_le64(p + at + 8);
			if (len > size - at - REC_HDR || off > ms->mem_len ||
			    len > ms->mem_len - off)
				return -EINVAL;
			if (pass && len)
				memcpy(ms->mem + off, p + at + REC_HDR, len);
		}
	}
	return 0;
}

static int mem_load_size(struct mstate *ms, u64 size)
{
	u8 *data;

	if (ms->state != STATE_STOP)
		return -EBUSY;
	if (ms->cfg_loaded || ms->in.active || size > in_batch_max(ms))
		return -EINVAL;
	if (size > ms->stage_cap) {
		data = kvmalloc(size, GFP_KERNEL);
		if (!data)
			return -ENOMEM;
		kvfree(ms->stage);
		ms->stage = data;
		ms->stage_cap = size;
	}
	ms->in.size = size;
	ms->in.next = 0;
	ms->in.active = size != 0;
	return 0;
}

static int mem_set_buffer(struct mstate *ms)
{
	u64 L = ms->rlen[R_MEMORY], n;
	int rc;

	if (ms->state != STATE_STOP)
		return -EBUSY;
	if (ms->cfg_loaded || !ms->in.active || ms->pos != ms->in.next)
		return -EINVAL;
	n = min(ms->in.size - ms->pos, L);
	memcpy(ms->stage + ms->pos, ms->rbuf[R_MEMORY], n);
	ms->in.next += n;
	if (ms->in.next < ms->in.size)
		return 0;
	rc = apply_batch(ms, ms->stage, ms->in.size);
	ms->in.active = false;
	return rc;
}

static int cfg_action(struct mstate *ms, u64 action)
{
	if (action == ACT_GET_BUFFER) {
		memcpy(ms->rbuf[R_CONFIG], ms->cfg, ms->cfg_len);
		return 0;
	}
	if (action != ACT_SET_BUFFER)
		return -EINVAL;
	if (ms->state != STATE_STOP)
		return -EBUSY;
	if (!ms->cfg_size_set || ms->in.active)
		return -EINVAL;
	memcpy(ms->cfg, ms->rbuf[R_CONFIG], ms->cfg_len);
	ms->cfg_loaded = true;
	return 0;
}

static int mem_action(struct mstate *ms, u64 action)
{
	if (action == ACT_GET_BUFFER)
		return mem_get_buffer(ms);
	if (action == ACT_SET_BUFFER)
		return mem_set_buffer(ms);
	return -EINVAL;
}

/* ---------------------------------------------------------------- */
/* System memory dirty bitmap.                                      */

static int sys_check_range(struct mstate *ms, u64 start, u64 page_nr)
{
	if (!page_nr || page_nr > ms->rlen[R_BITMAP] * 8)
		return -EINVAL;
	if (start / PAGE_4K > ms->sys_pages ||
	    page_nr > ms->sys_pages - start / PAGE_4K)
		return -EINVAL;
	return 0;
}

static int sys_query(struct mstate *ms)
{
	u8 *bm = ms->rbuf[R_BITMAP];
	u64 first, i;
	int rc;

	if (!ms->start_set || !ms->page_nr_set)
		return -EINVAL;
	rc = sys_check_range(ms, ms->start_addr, ms->page_nr);
	if (rc)
		return rc;
	if ((ms->state & STATE_LOGGING) && ms->overflow)
		return -ENOSPC;
	first = ms->start_addr / PAGE_4K;
	memset(bm, 0, (ms->page_nr + 7) / 8);
	if (!(ms->state & STATE_LOGGING))
		return 0;
	for (i = 0; i < ms->page_nr; i++) {
		if (!test_bit(first + i, ms->sys_log))
			continue;
		bm[i / 8] |= (u8)(1u << (i % 8));
		clear_bit(first + i, ms->sys_log);
		ms->sys_pending--;
	}
	return 0;
}

static int sys_start(struct mstate *ms, u64 addr)
{
	if (addr % PAGE_4K || addr / PAGE_4K >= ms->sys_pages)
		return -EINVAL;
	ms->start_addr = addr;
	ms->start_set = true;
	return 0;
}

static int sys_page_nr(struct mstate *ms, u64 page_nr)
{
	bool v1 = ms->version == 1;
	int rc;

	rc = sys_check_range(ms, ms->start_set ? ms->start_addr : 0, page_nr);
	if (rc)
		return rc;
	if (v1 && !ms->start_set)
		return -EINVAL;
	ms->page_nr = page_nr;
	ms->page_nr_set = true;
	return v1 ? sys_query(ms) : 0;
}

/* ---------------------------------------------------------------- */
/* Control region: exactly one field per access.                    */

static int ctl_field(struct mstate *ms, u64 off, size_t len, u32 access)
{
	int i;

	if (off >= ms->ctl_len || len > ms->ctl_len - off)
		return -EINVAL;
	for (i = 0; i < F_COUNT; i++) {
		const struct field_desc *d = &ms->lay[i];

		if (d->width && d->off == off && d->width == len)
			return (d->access & access) ? i : -EINVAL;
	}
	return -EINVAL;
}

static ssize_t ctl_read(struct mstate *ms, u64 off, char __user *ubuf,
			size_t len)
{
	u8 b[8];
	u64 v = 0;
	int f, rc = 0;

	f = ctl_field(ms, off, len, ACC_R);
	if (f < 0)
		return f;
	switch (f) {
	case F_VERSION:
		v = ms->version;
		break;
	case F_CAPS:
		v = CAP_DEVICE_MEMORY | CAP_SYSTEM_MEMORY;
		break;
	case F_CFG_SIZE:
		v = ms->cfg_len;
		break;
	case F_MEM_SIZE:
		rc = freeze(ms, &v);
		break;
	case F_MEM_POS:
		v = ms->pos;
		break;
	default:
		rc = -EINVAL;
	}
	if (rc)
		return rc;
	le_put(b, len, v);
	if (copy_to_user(ubuf, b, len))
		return -EFAULT;
	return len;
}

static ssize_t ctl_write(struct mstate *ms, u64 off, const char __user *ubuf,
			 size_t len)
{
	u8 b[8];
	u64 v;
	int f, rc;

	f = ctl_field(ms, off, len, ACC_W);
	if (f < 0)
		return f;
	if (copy_from_user(b, ubuf, len))
		return -EFAULT;
	v = le_get(b, len);
	switch (f) {
	case F_STATE:
		rc = set_state(ms, v);
		break;
	case F_CFG_ACTION:
		rc = cfg_action(ms, v);
		break;
	case F_CFG_SIZE:
		if (ms->state != STATE_STOP)
			rc = -EBUSY;
		else if (v != ms->cfg_len)
			rc = -EINVAL;
		else
			ms->cfg_size_set = true, rc = 0;
		break;
	case F_MEM_ACTION:
		rc = mem_action(ms, v);
		break;
	case F_MEM_SIZE:
		rc = mem_load_size(ms, v);
		break;
	case F_MEM_POS:
		if (v % ms->rlen[R_MEMORY])
			rc = -EINVAL;
		else
			ms->pos = v, rc = 0;
		break;
	case F_SYS_ACTION:
		rc = v == ACT_GET_BITMAP ? sys_query(ms) : -EINVAL;
		break;
	case F_SYS_START:
		rc = sys_start(ms, v);
		break;
	case F_SYS_PAGE_NR:
		rc = sys_page_nr(ms, v);
		break;
	default:
		rc = -EINVAL;
	}
	return rc ? rc : (ssize_t)len;
}

/* ---------------------------------------------------------------- */
/* BAR1 registers.                                                  */

static ssize_t bar1_rw(struct mstate *ms, u64 off, char __user *ubuf,
		       size_t len, bool write)
{
	u8 b[8];
	u64 v = 0;
	int rc = 0;

	switch (off) {
	case REG_DMA_ADDR:
		if (len != 8)
			return -EINVAL;
		break;
	case REG_DMA_LEN:
	case REG_DMA_VALUE:
		if (len != 4)
			return -EINVAL;
		break;
	case REG_DOORBELL:
		if (len != 4 || !write)
			return -EINVAL;
		break;
	case REG_STATUS:
		if (len != 4 || write)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (write) {
		if (copy_from_user(b, ubuf, len))
			return -EFAULT;
		if (off == REG_DOORBELL)
			rc = doorbell(ms);
		else
			memcpy(ms->cfg + off, b, len);
		return rc ? rc : (ssize_t)len;
	}
	if (off == REG_STATUS)
		v = ms->state | ms->status_logged;
	else
		v = le_get(ms->cfg + off, len);
	le_put(b, len, v);
	if (copy_to_user(ubuf, b, len))
		return -EFAULT;
	return len;
}

/* ---------------------------------------------------------------- */
/* vfio_device_ops                                                  */

static ssize_t mdevstate_rw(struct vfio_device *vdev, char __user *ubuf,
			    size_t count, loff_t *ppos, bool write)
{
	struct mstate *ms = to_ms(vdev);
	u64 index = (u64)*ppos >> OFF_SHIFT, off = (u64)*ppos & OFF_MASK;
	ssize_t rc;

	if (*ppos < 0 || !count)
		return -EINVAL;
	mutex_lock(&ms->lock);
	switch (index) {
	case R_BAR0:
		if (off >= ms->mem_len || count > ms->mem_len - off) {
			rc = -EINVAL;
		} else if (write) {
			u64 p;

			if (ms->state & STATE_STOP) {
				rc = -EBUSY;
				break;
			}
			if (copy_from_user(ms->mem + off, ubuf, count)) {
				rc = -EFAULT;
				break;
			}
			if (ms->tracking)
				for (p = off / PAGE_4K;
				     p <= (off + count - 1) / PAGE_4K; p++)
					set_bit(p, ms->mem_dirty);
			rc = count;
		} else {
			rc = copy_to_user(ubuf, ms->mem + off, count) ?
				-EFAULT : (ssize_t)count;
		}
		break;
	case R_BAR1:
		rc = bar1_rw(ms, off, ubuf, count, write);
		break;
	case R_CTL:
		rc = write ? ctl_write(ms, off, ubuf, count) :
			ctl_read(ms, off, ubuf, count);
		break;
	case R_CONFIG:
	case R_MEMORY:
	case R_BITMAP:
		if (off >= ms->rlen[index] || count > ms->rlen[index] - off)
			rc = -EINVAL;
		else if (write)
			rc = copy_from_user(ms->rbuf[index] + off, ubuf, count) ?
				-EFAULT : (ssize_t)count;
		else
			rc = copy_to_user(ubuf, ms->rbuf[index] + off, count) ?
				-EFAULT : (ssize_t)count;
		break;
	default:
		rc = -EINVAL;
	}
	mutex_unlock(&ms->lock);
	if (rc > 0)
		*ppos += rc;
	return rc;
}

static ssize_t mdevstate_read(struct vfio_device *vdev, char __user *buf,
			      size_t count, loff_t *ppos)
{
	return mdevstate_rw(vdev, buf, count, ppos, false);
}

static ssize_t mdevstate_write(struct vfio_device *vdev,
			       const char __user *buf, size_t count,
			       loff_t *ppos)
{
	return mdevstate_rw(vdev, (char __user *)buf, count, ppos, true);
}

static int mdevstate_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
	struct mstate *ms = to_ms(vdev);
	u64 index = vma->vm_pgoff >> (OFF_SHIFT - PAGE_SHIFT);
	u64 pgoff = vma->vm_pgoff & (OFF_MASK >> PAGE_SHIFT);

	if (index != R_CONFIG && index != R_MEMORY && index != R_BITMAP)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_end - vma->vm_start > ms->rlen[index] ||
	    pgoff > (ms->rlen[index] >> PAGE_SHIFT) -
		    ((vma->vm_end - vma->vm_start) >> PAGE_SHIFT))
		return -EINVAL;
	/* the buffers live until release, after the last munmap */
	return remap_vmalloc_range(vma, ms->rbuf[index], pgoff);
}

static int region_info(struct mstate *ms, struct vfio_region_info *info,
		       struct vfio_info_cap *caps)
{
	struct vfio_region_info_cap_type cap = {
		.header.id = VFIO_REGION_INFO_CAP_TYPE,
		.header.version = 1,
	};
	const u32 rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;

	if (info->index >= R_COUNT)
		return -EINVAL;
	info->offset = R_OFFSET(info->index);
	info->size = 0;
	info->flags = 0;
	info->cap_offset = 0;
	switch (info->index) {
	case R_BAR0:
		info->size = ms->mem_len;
		info->flags = rw;
		return 0;
	case R_BAR1:
		info->size = BAR1_SIZE;
		info->flags = rw;
		return 0;
	case R_CTL:
		info->size = ms->ctl_len;
		info->flags = rw;
		break;
	case R_CONFIG:
	case R_MEMORY:
	case R_BITMAP:
		info->size = ms->rlen[info->index];
		info->flags = rw | VFIO_REGION_INFO_FLAG_MMAP;
		break;
	default:
		return 0;
	}
	cap.type = region_type;
	cap.subtype = info->index - R_CTL + 1;
	return vfio_info_add_capability(caps, &cap.header, sizeof(cap));
}

static long mdevstate_ioctl(struct vfio_device *vdev, unsigned int cmd,
			    unsigned long arg)
{
	struct mstate *ms = to_ms(vdev);
	unsigned long minsz;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO: {
		struct vfio_device_info info;

		minsz = offsetofend(struct vfio_device_info, num_irqs);
		if (copy_from_user(&info, (void __user *)arg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		info.flags = VFIO_DEVICE_FLAGS_PCI;
		info.num_regions = R_COUNT;
		info.num_irqs = 0;
		return copy_to_user((void __user *)arg, &info, minsz) ?
			-EFAULT : 0;
	}
	case VFIO_DEVICE_GET_REGION_INFO: {
		struct vfio_info_cap caps = { .buf = NULL, .size = 0 };
		struct vfio_region_info info;
		int rc;

		minsz = offsetofend(struct vfio_region_info, offset);
		if (copy_from_user(&info, (void __user *)arg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		rc = region_info(ms, &info, &caps);
		if (rc) {
			kfree(caps.buf);
			return rc;
		}
		if (caps.size) {
			info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
			if (info.argsz < sizeof(info) + caps.size) {
				info.argsz = sizeof(info) + caps.size;
				info.cap_offset = 0;
			} else {
				vfio_info_cap_shift(&caps, sizeof(info));
				if (copy_to_user((void __user *)arg +
						 sizeof(info), caps.buf,
						 caps.size)) {
					kfree(caps.buf);
					return -EFAULT;
				}
				info.cap_offset = sizeof(info);
			}
			kfree(caps.buf);
		}
		return copy_to_user((void __user *)arg, &info, minsz) ?
			-EFAULT : 0;
	}
	case VFIO_DEVICE_GET_IRQ_INFO:
		return -EINVAL;
	}
	return -ENOTTY;
}

/* Last user gone: the device returns to RUNNING (SPEC 11). */
static void mdevstate_close(struct vfio_device *vdev)
{
	struct mstate *ms = to_ms(vdev);

	mutex_lock(&ms->lock);
	reset_session(ms);
	mutex_unlock(&ms->lock);
}

/* Everything an instance holds, freed: at release, and when its init
 * failed part of the way (every pointer is then NULL or valid). */
static void free_instance(struct mstate *ms)
{
	int i;

	free_out(ms);
	kvfree(ms->stage);
	for (i = R_CONFIG; i < R_COUNT; i++)
		vfree(ms->rbuf[i]);
	bitmap_free(ms->sys_log);
	bitmap_free(ms->mem_dirty);
	kvfree(ms->cfg);
	vfree(ms->mem);
	mutex_destroy(&ms->lock);
}

static int mdevstate_init_dev(struct vfio_device *vdev)
{
	struct mstate *ms = to_ms(vdev);
	int i;

	mutex_init(&ms->lock);
	ms->version = layout;
	ms->lay = layout == 1 ? layout_v1 : layout_v2;
	ms->ctl_len = layout == 1 ? 72 : 80;
	ms->mem_len = (u64)mem_kb << 10;
	ms->mem_pages = ms->mem_len / PAGE_4K;
	ms->cfg_len = (u64)config_kb << 10;
	ms->sys_pages = ((u64)sysmem_mb << 20) / PAGE_4K;
	ms->rlen[R_CONFIG] = ms->cfg_len;
	ms->rlen[R_MEMORY] = (u64)chunk_kb << 10;
	ms->rlen[R_BITMAP] = bitmap_bytes;

	ms->mem = vzalloc(ms->mem_len);
	ms->cfg = kvzalloc(ms->cfg_len, GFP_KERNEL);
	ms->mem_dirty = bitmap_zalloc(ms->mem_pages, GFP_KERNEL);
	ms->sys_log = bitmap_zalloc(ms->sys_pages, GFP_KERNEL);
	for (i = R_CONFIG; i < R_COUNT; i++)
		ms->rbuf[i] = vmalloc_user(ms->rlen[i]);
	if (!ms->mem || !ms->cfg || !ms->mem_dirty || !ms->sys_log ||
	    !ms->rbuf[R_CONFIG] || !ms->rbuf[R_MEMORY] || !ms->rbuf[R_BITMAP])
		goto nomem;
	/* the config past the register file: this instance's own bytes,
	 * so that a config that was not moved shows */
	get_random_bytes(ms->cfg + REG_FILE, ms->cfg_len - REG_FILE);
	return 0;
nomem:
	free_instance(ms);	/* vfio calls no release after a failed init */
	return -ENOMEM;
}

static void mdevstate_release_dev(struct vfio_device *vdev)
{
	free_instance(to_ms(vdev));
	atomic_inc(&avail);
}

static int mdevstate_probe(struct mdev_device *mdev)
{
	struct mstate *ms;
	int rc;

	if (atomic_dec_if_positive(&avail) < 0)
		return -ENOSPC;
	ms = vfio_alloc_device(mstate, vdev, &mdev->dev, &mdevstate_ops);
	if (IS_ERR(ms)) {
		atomic_inc(&avail);
		return PTR_ERR(ms);
	}
	rc = vfio_register_emulated_iommu_dev(&ms->vdev);
	if (rc) {
		vfio_put_device(&ms->vdev);	/* release gives avail back */
		return rc;
	}
	dev_set_drvdata(&mdev->dev, ms);
	return 0;
}

static void mdevstate_remove(struct mdev_device *mdev)
{
	struct mstate *ms = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&ms->vdev);
	vfio_put_device(&ms->vdev);
}

static unsigned int mdevstate_get_available(struct mdev_type *mtype)
{
	return atomic_read(&avail);
}

static const struct vfio_device_ops mdevstate_ops = {
	.name = DRV_NAME,
	.init = mdevstate_init_dev,
	.release = mdevstate_release_dev,
	.close_device = mdevstate_close,
	.read = mdevstate_read,
	.write = mdevstate_write,
	.mmap = mdevstate_mmap,
	.ioctl = mdevstate_ioctl,
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
};

static struct mdev_driver mdevstate_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = DRV_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = mdevstate_probe,
	.remove = mdevstate_remove,
	.get_available = mdevstate_get_available,
};

static const struct class mdevstate_class = {
	.name = DRV_NAME,
};

static void parent_release(struct device *dev)
{
}

static bool params_ok(void)
{
	if (layout != 1 && layout != 2)
		return false;
	if (!mem_kb || mem_kb % 4 || mem_kb > (64u << 10))
		return false;
	if (!chunk_kb || chunk_kb % 4 || chunk_kb > (16u << 10))
		return false;
	if (!config_kb || config_kb % 4 || config_kb > 1024)
		return false;
	if (!bitmap_bytes || bitmap_bytes % 4096 || bitmap_bytes > (1u << 20))
		return false;
	if (!sysmem_mb || sysmem_mb > (16u << 10))
		return false;
	return max_instances && max_instances <= 64;
}

static int __init mdevstate_init(void)
{
	int rc;

	if (!params_ok()) {
		pr_err(DRV_NAME ": bad module parameters (see modinfo)\n");
		return -EINVAL;
	}
	atomic_set(&avail, max_instances);
	rc = mdev_register_driver(&mdevstate_driver);
	if (rc)
		return rc;
	rc = class_register(&mdevstate_class);
	if (rc)
		goto err_driver;
	parent_dev.class = &mdevstate_class;
	parent_dev.release = parent_release;
	dev_set_name(&parent_dev, "%s", DRV_NAME);
	rc = device_register(&parent_dev);
	if (rc)
		goto err_put;
	rc = mdev_register_parent(&parent, &parent_dev, &mdevstate_driver,
				  mdevstate_types, ARRAY_SIZE(mdevstate_types));
	if (rc)
		goto err_device;
	pr_info(DRV_NAME ": layout %u, type %u, %u KiB device memory\n",
		layout, region_type, mem_kb);
	return 0;

err_device:
	device_del(&parent_dev);
err_put:
	put_device(&parent_dev);
	class_unregister(&mdevstate_class);
err_driver:
	mdev_unregister_driver(&mdevstate_driver);
	return rc;
}

static void __exit mdevstate_exit(void)
{
	mdev_unregister_parent(&parent);
	device_unregister(&parent_dev);
	class_unregister(&mdevstate_class);
	mdev_unregister_driver(&mdevstate_driver);
}

module_init(mdevstate_init);
module_exit(mdevstate_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Sample mdev driver with libdevstate's VFIO device-state regions (test code)");

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kmod-work: the guest side of tests/guest/kmod-migrate.sh, against two
 * (or one) instances of the sample driver tests/kmod/mdevstate.c.
 *
 *   kmod-work migrate VERSION GROUP-A UUID-A GROUP-B UUID-B CLI BITMAP
 *	Puts both groups into one type1v2 container, maps a buffer of its
 *	own for the device's DMA, fills A's device memory, then runs
 *	"CLI migrate vfio:fd=A vfio:fd=B" (the device fds inherited) while
 *	it writes A's BAR0 and rings A's DMA doorbell, until A refuses (it
 *	is stopped).  Then checks: B's BAR0 and registers equal A's, the
 *	merged dirty bitmap CLI wrote to BITMAP equals the pages A
 *	DMA-wrote while logging (as A's STATUS register reported each one),
 *	and every DMA really landed in the buffer.
 *   kmod-work hostile VERSION GROUP UUID
 *	Bad offsets, widths, sizes, states, actions and mappings against
 *	one instance: each must fail with the errno of SPEC 11 (the fake's),
 *	and unloading the module while the device is open must be refused.
 *
 * Reports "=== " lines on standard output; exit 0 when every check held.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "libdevstate/core.h"
#include "tests/guest/guest-vfio.h"

/* The sample device (tests/kmod/mdevstate.c). */
#define R_BAR0		0
#define R_BAR1		1
#define R_CTL		9
#define R_CONFIG	10
#define R_MEMORY	11
#define R_BITMAP	12
#define R_COUNT		13
#define REG_DMA_ADDR	0
#define REG_DMA_LEN	8
#define REG_DMA_VALUE	12
#define REG_DOORBELL	16
#define REG_STATUS	20
#define STATUS_LOGGED	0x100u

#define PAGE		4096u
#define DMA_BYTES	(4u << 20)	/* the buffer the device writes into */
#define DMA_PAGES	(DMA_BYTES / PAGE)
#define RAM_BYTES	(1u << 30)	/* --ram, and the driver's sysmem_mb */
#define RAM_PAGES	(RAM_BYTES / PAGE)

struct dev {
	int fd;
	uint64_t off[R_COUNT], size[R_COUNT];
};

static int bad;

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void get_regions(struct dev *d)
{
	unsigned i;

	for (i = 0; i < R_COUNT; i++) {
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = i };

		if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
			die("VFIO_DEVICE_GET_REGION_INFO");
		d->off[i] = ri.offset;
		d->size[i] = ri.size;
	}
}

/* The instances (group numbers and UUIDs) in guest-vfio.h's type1v2
 * container, and our DMA buffer mapped there at IOVA 0. */
static uint8_t *setup(const char **groups, const char **uuids, int n,
		      struct dev *devs)
{
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	char path[64];
	uint8_t *buf;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/dev/vfio/%s", groups[i]);
		devs[i].fd = open_device(path, uuids[i]);
		get_regions(&devs[i]);
	}
	buf = mmap(NULL, DMA_BYTES, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap of the DMA buffer");
	memset(buf, 0, DMA_BYTES);
	map.vaddr = (uintptr_t)buf;
	map.iova = 0;
	map.size = DMA_BYTES;
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	if (ioctl(guest_container, VFIO_IOMMU_MAP_DMA, &map) < 0)
		die("VFIO_IOMMU_MAP_DMA");
	return buf;
}

/* pread/pwrite of one access; 0 or -errno (a short transfer is -EIO). */
static int rd(struct dev *d, int r, uint64_t off, void *buf, size_t len)
{
	ssize_t n = pread(d->fd, buf, len, (off_t)(d->off[r] + off));

	return n < 0 ? -errno : (size_t)n == len ? 0 : -EIO;
}

static int wr(struct dev *d, int r, uint64_t off, const void *buf, size_t len)
{
	ssize_t n = pwrite(d->fd, buf, len, (off_t)(d->off[r] + off));

	return n < 0 ? -errno : (size_t)n == len ? 0 : -EIO;
}

static int wr32(struct dev *d, int r, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	devstate_le_put(b, 4, v);
	return wr(d, r, off, b, 4);
}

static int wr64(struct dev *d, int r, uint64_t off, uint64_t v)
{
	uint8_t b[8];

	devstate_le_put(b, 8, v);
	return wr(d, r, off, b, 8);
}

static uint32_t rd32(struct dev *d, int r, uint64_t off)
{
	uint8_t b[4];

	if (rd(d, r, off, b, 4) < 0)
		die("register read");
	return (uint32_t)devstate_le_get(b, 4);
}

/* ------------------------------------------------------------------ */

static void set_bit64(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ull << (i % 64);
}

/* A write of the workload answered RC: true when the workload ends,
 * because the device refused it as stopped (EBUSY: the migration stopped
 * it) or it failed (counted in bad). */
static bool workload_ends(int rc, const char *what)
{
	if (rc == -EBUSY)
		return true;
	if (rc < 0) {
		printf("=== fatal %s: %s\n", what, strerror(-rc));
		bad++;
		return true;
	}
	return false;
}

static int do_migrate(char **argv)
{
	const char *groups[2] = { argv[1], argv[3] };
	const char *uuids[2] = { argv[2], argv[4] };
	const char *cli = argv[5], *bitmap_path = argv[6];
	uint64_t *expect, *merged, writes = 0, rings = 0, logged = 0;
	uint64_t mem, i, expect_n = 0, merged_n = 0, diff = 0;
	uint8_t *buf, *a, *b, chunk[64];
	struct dev d[2];
	char fa[16], fb[16], ram[32];
	int status;
	pid_t pid;
	FILE *f;

	buf = setup(groups, uuids, 2, d);
	mem = d[0].size[R_BAR0];
	if (!mem || mem != d[1].size[R_BAR0]) {
		printf("=== fatal BAR0 sizes %" PRIu64 " and %" PRIu64 "\n",
		       mem, d[1].size[R_BAR0]);
		return 1;
	}
	/* A: random contents and registers; B: zeros */
	a = malloc(mem);
	b = malloc(mem);
	expect = calloc(RAM_PAGES / 64, 8);
	merged = calloc(RAM_PAGES / 64, 8);
	if (!a || !b || !expect || !merged)
		die("malloc");
	for (i = 0; i < mem; i++)
		a[i] = (uint8_t)rnd();
	memset(b, 0, mem);
	if (wr(&d[0], R_BAR0, 0, a, mem) < 0 || wr(&d[1], R_BAR0, 0, b, mem) < 0)
		die("BAR0 fill");

	snprintf(fa, sizeof(fa), "vfio:fd=%d", d[0].fd);
	snprintf(fb, sizeof(fb), "vfio:fd=%d", d[1].fd);
	snprintf(ram, sizeof(ram), "%u", RAM_BYTES);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		fcntl(d[0].fd, F_SETFD, 0);
		fcntl(d[1].fd, F_SETFD, 0);
		execl(cli, cli, "migrate", "--json", "--no-progress",
		      "--passes", "4",
		      "--threshold", "0", "--ram", ram, "--dirty-bitmap",
		      bitmap_path, fa, fb, (char *)NULL);
		_exit(127);
	}
	/* the workload, until A refuses: it has been stopped */
	for (;;) {
		uint64_t page = rnd() % (mem / PAGE);
		uint64_t off = page * PAGE + (rnd() % (PAGE / 64)) * 64;
		uint64_t addr = (rnd() % DMA_PAGES) * PAGE + (rnd() % 1024) * 4;
		uint32_t len = 4 * (1 + (uint32_t)(rnd() % 2048));
		uint32_t value = (uint32_t)rnd() | 1, st;

		if (addr + len > DMA_BYTES)
			len = (uint32_t)(DMA_BYTES - addr);
		for (i = 0; i < sizeof(chunk); i++)
			chunk[i] = (uint8_t)rnd();
		if (workload_ends(wr(&d[0], R_BAR0, off, chunk, sizeof(chunk)),
				  "BAR0 write"))
			break;
		writes++;
		if (wr64(&d[0], R_BAR1, REG_DMA_ADDR, addr) < 0 ||
		    wr32(&d[0], R_BAR1, REG_DMA_LEN, len) < 0 ||
		    wr32(&d[0], R_BAR1, REG_DMA_VALUE, value) < 0)
			die("DMA registers");
		if (workload_ends(wr32(&d[0], R_BAR1, REG_DOORBELL, 1),
				  "doorbell"))
			break;
		rings++;
		for (i = 0; i < len; i += 4) {
			uint32_t v;

			memcpy(&v, buf + addr + i, 4);
			if (v != value) {
				printf("=== dma-mismatch at 0x%" PRIx64 "\n",
				       addr + i);
				bad++;
				break;
			}
		}
		st = rd32(&d[0], R_BAR1, REG_STATUS);
		if (st & STATUS_LOGGED) {
			logged++;
			for (i = addr / PAGE; i <= (addr + len - 1) / PAGE; i++)
				set_bit64(expect, i);
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			pid = -1;
			break;
		}
	}
	if (pid > 0 && waitpid(pid, &status, 0) != pid)
		die("waitpid");
	printf("=== workload bar0-writes %" PRIu64 " doorbells %" PRIu64 " logged %" PRIu64 "\n",
	       writes, rings, logged);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		printf("=== fatal migrate status 0x%x\n", status);
		bad++;
		goto out;
	}
	if (!logged) {
		printf("=== no doorbell while logging: pre-copy had no DMA\n");
		bad++;
	}

	/* A is stopped since it refused: its memory is the one at stop time */
	if (rd(&d[0], R_BAR0, 0, a, mem) < 0 || rd(&d[1], R_BAR0, 0, b, mem) < 0)
		die("BAR0 read-back");
	for (i = 0; i < mem && a[i] == b[i]; i++)
		;
	if (i < mem) {
		printf("=== bar0 DIFFER at %" PRIu64 "\n", i);
		bad++;
	} else {
		printf("=== bar0 equal %" PRIu64 " bytes\n", mem);
	}
	{
		uint8_t ra[8], rb[8];
		bool same = rd(&d[0], R_BAR1, REG_DMA_ADDR, ra, 8) == 0 &&
			rd(&d[1], R_BAR1, REG_DMA_ADDR, rb, 8) == 0 &&
			!memcmp(ra, rb, 8) &&
			rd32(&d[0], R_BAR1, REG_DMA_LEN) ==
			rd32(&d[1], R_BAR1, REG_DMA_LEN) &&
			rd32(&d[0], R_BAR1, REG_DMA_VALUE) ==
			rd32(&d[1], R_BAR1, REG_DMA_VALUE);

		printf("=== registers %s\n", same ? "equal" : "DIFFER");
		bad += !same;
	}
	printf("=== states source %u destination %u\n",
	       rd32(&d[0], R_BAR1, REG_STATUS) & 3,
	       rd32(&d[1], R_BAR1, REG_STATUS) & 3);

	f = fopen(bitmap_path, "rb");
	if (!f)
		die(bitmap_path);
	for (i = 0; i < RAM_PAGES / 64; i++) {
		uint8_t w[8];

		if (fread(w, 1, 8, f) != 8)
			break;
		merged[i] = devstate_le_get(w, 8);
	}
	fclose(f);
	if (i != RAM_PAGES / 64) {
		printf("=== bitmap file has %" PRIu64 " of %u words\n", i,
		       RAM_PAGES / 64);
		bad++;
	}
	for (i = 0; i < RAM_PAGES / 64; i++) {
		expect_n += (uint64_t)__builtin_popcountll(expect[i]);
		merged_n += (uint64_t)__builtin_popcountll(merged[i]);
		diff += (uint64_t)__builtin_popcountll(expect[i] ^ merged[i]);
	}
	printf("=== dirty dma-written %" PRIu64 " merged %" PRIu64 " differ %" PRIu64 "\n",
	       expect_n, merged_n, diff);
	bad += diff != 0 || !expect_n;
	printf("=== migrate-check %s\n", bad ? "FAILED" : "ok");
out:
	free(a);
	free(b);
	free(expect);
	free(merged);
	return bad ? 1 : 0;
}

/* ------------------------------------------------------------------ */

static void expect_rc(const char *what, int rc, int want)
{
	bool ok = rc == -want;

	printf("hostile %-44s %-8s %s\n", what,
	       rc ? strerror(-rc) : "success", ok ? "ok" : "BAD");
	if (!ok) {
		printf("=== hostile-bad %s: got %d, want -%d\n", what, rc, want);
		bad++;
	}
}

static int do_hostile(char **argv)
{
	const char *groups[1] = { argv[1] };
	const char *uuids[1] = { argv[2] };
	const struct devstate_layout *lay;
	struct dev d[1];
	uint32_t ver = (uint32_t)atoi(argv[0]);
	uint64_t ctl_len, L, R, mem, v64;
	uint8_t b[16];
	void *p;
	int rc;

	lay = devstate_layout_find(ver);
	if (!lay) {
		printf("=== fatal no layout %u\n", ver);
		return 1;
	}
#define OFF(f) (lay->fields[DEVSTATE_FIELD_##f].offset)
	setup(groups, uuids, 1, d);
	ctl_len = d->size[R_CTL];
	L = d->size[R_MEMORY];
	R = d->size[R_BITMAP];
	mem = d->size[R_BAR0];

	/* control region: exactly one field at its width */
	expect_rc("ctl read inside a field (offset 1)", rd(d, R_CTL, 1, b, 4), EINVAL);
	expect_rc("ctl read version at width 8", rd(d, R_CTL, 0, b, 8), EINVAL);
	expect_rc("ctl read of 2 bytes", rd(d, R_CTL, 0, b, 2), EINVAL);
	expect_rc("ctl read spanning two fields", rd(d, R_CTL, 4, b, 8), EINVAL);
	expect_rc("ctl read padding (offset 12)", rd(d, R_CTL, 12, b, 4), EINVAL);
	expect_rc("ctl read past the end", rd(d, R_CTL, ctl_len, b, 4), EINVAL);
	expect_rc("ctl read at offset 2^39", rd(d, R_CTL, 1ull << 39, b, 4), EINVAL);
	expect_rc("ctl read of write-only device_state",
		  rd(d, R_CTL, OFF(DEVICE_STATE), b, 4), EINVAL);
	expect_rc("ctl write of read-only version", wr32(d, R_CTL, 0, 1), EINVAL);
	expect_rc("ctl write of read-only caps", wr32(d, R_CTL, OFF(CAPS), 0), EINVAL);
	expect_rc("device_state 4", wr32(d, R_CTL, OFF(DEVICE_STATE), 4), EINVAL);
	expect_rc("device_state 0xffffffff",
		  wr32(d, R_CTL, OFF(DEVICE_STATE), 0xffffffffu), EINVAL);
	expect_rc("device_config.action 7", wr32(d, R_CTL, OFF(CONFIG_ACTION), 7), EINVAL);
	expect_rc("device_memory.action 0", wr32(d, R_CTL, OFF(MEMORY_ACTION), 0), EINVAL);
	expect_rc("GET_BUFFER with no frozen batch",
		  wr32(d, R_CTL, OFF(MEMORY_ACTION), DEVSTATE_ACTION_GET_BUFFER), EINVAL);
	expect_rc("device_memory.pos not a chunk multiple",
		  wr64(d, R_CTL, OFF(MEMORY_POS), 1), EINVAL);

	/* system memory: page_nr before start_addr */
	if (ver == 1) {
		expect_rc("v1 page_nr before start_addr",
			  wr64(d, R_CTL, OFF(SYSMEM_PAGE_NR), 1), EINVAL);
	} else {
		expect_rc("v2 page_nr before start_addr (stored)",
			  wr64(d, R_CTL, OFF(SYSMEM_PAGE_NR), 1), 0);
		expect_rc("v2 GET_BITMAP before start_addr",
			  wr32(d, R_CTL, OFF(SYSMEM_ACTION), DEVSTATE_ACTION_GET_BITMAP), EINVAL);
		expect_rc("v2 system_memory.action 1",
			  wr32(d, R_CTL, OFF(SYSMEM_ACTION), 1), EINVAL);
	}
	expect_rc("start_addr not page-aligned",
		  wr64(d, R_CTL, OFF(SYSMEM_START), 4097), EINVAL);
	expect_rc("start_addr beyond system memory",
		  wr64(d, R_CTL, OFF(SYSMEM_START), RAM_BYTES), EINVAL);
	expect_rc("start_addr 2^63", wr64(d, R_CTL, OFF(SYSMEM_START), 1ull << 63), EINVAL);
	expect_rc("start_addr 0", wr64(d, R_CTL, OFF(SYSMEM_START), 0), 0);
	expect_rc("page_nr 0", wr64(d, R_CTL, OFF(SYSMEM_PAGE_NR), 0), EINVAL);
	expect_rc("page_nr 8R+1", wr64(d, R_CTL, OFF(SYSMEM_PAGE_NR), 8 * R + 1), EINVAL);
	expect_rc("page_nr 2^64-1", wr64(d, R_CTL, OFF(SYSMEM_PAGE_NR), ~0ull), EINVAL);
	expect_rc("start_addr last page",
		  wr64(d, R_CTL, OFF(SYSMEM_START), RAM_BYTES - PAGE), 0);
	expect_rc("page_nr past the end of system memory",
		  wr64(d, R_CTL, OFF(SYSMEM_PAGE_NR), 2), EINVAL);

	/* loading is for STOP only */
	expect_rc("device_memory.size in RUNNING",
		  wr64(d, R_CTL, OFF(MEMORY_SIZE), 16), EBUSY);
	expect_rc("SET_BUFFER in RUNNING",
		  wr32(d, R_CTL, OFF(MEMORY_ACTION), DEVSTATE_ACTION_SET_BUFFER), EBUSY);
	expect_rc("device_config.size in RUNNING",
		  wr64(d, R_CTL, OFF(CONFIG_SIZE), 4096), EBUSY);
	expect_rc("config SET_BUFFER in RUNNING",
		  wr32(d, R_CTL, OFF(CONFIG_ACTION), DEVSTATE_ACTION_SET_BUFFER), EBUSY);
	expect_rc("STOP|LOGGING", wr32(d, R_CTL, OFF(DEVICE_STATE), 3), 0);
	expect_rc("device_memory.size in STOP|LOGGING",
		  wr64(d, R_CTL, OFF(MEMORY_SIZE), 16), EBUSY);
	expect_rc("BAR0 write while stopped", wr32(d, R_BAR0, 0, 1), EBUSY);
	expect_rc("doorbell while stopped", wr32(d, R_BAR1, REG_DOORBELL, 1), EBUSY);
	expect_rc("STOP", wr32(d, R_CTL, OFF(DEVICE_STATE), 1), 0);
	expect_rc("device_config.size wrong", wr64(d, R_CTL, OFF(CONFIG_SIZE), 1), EINVAL);
	expect_rc("config SET_BUFFER before its size",
		  wr32(d, R_CTL, OFF(CONFIG_ACTION), DEVSTATE_ACTION_SET_BUFFER), EINVAL);
	expect_rc("device_memory.size 2^63", wr64(d, R_CTL, OFF(MEMORY_SIZE), 1ull << 63), EINVAL);
	expect_rc("SET_BUFFER before a batch size",
		  wr32(d, R_CTL, OFF(MEMORY_ACTION), DEVSTATE_ACTION_SET_BUFFER), EINVAL);
	expect_rc("device_memory.size 2L+1", wr64(d, R_CTL, OFF(MEMORY_SIZE), 2 * L + 1), 0);
	expect_rc("pos L", wr64(d, R_CTL, OFF(MEMORY_POS), L), 0);
	expect_rc("SET_BUFFER of chunk 1 before chunk 0",
		  wr32(d, R_CTL, OFF(MEMORY_ACTION), DEVSTATE_ACTION_SET_BUFFER), EINVAL);
	expect_rc("device_memory.size with a batch incomplete",
		  wr64(d, R_CTL, OFF(MEMORY_SIZE), 16), EINVAL);
	memset(b, 0xff, sizeof(b));	/* a record of length 2^64-1 */
	expect_rc("write a malformed record to the MEMORY region",
		  wr(d, R_MEMORY, 0, b, 16), 0);
	expect_rc("pos 0", wr64(d, R_CTL, OFF(MEMORY_POS), 0), 0);
	expect_rc("SET_BUFFER chunk 0", wr32(d, R_CTL, OFF(MEMORY_ACTION), DEVSTATE_ACTION_SET_BUFFER), 0);
	expect_rc("pos L", wr64(d, R_CTL, OFF(MEMORY_POS), L), 0);
	expect_rc("SET_BUFFER chunk 1", wr32(d, R_CTL, OFF(MEMORY_ACTION), DEVSTATE_ACTION_SET_BUFFER), 0);
	expect_rc("pos 2L", wr64(d, R_CTL, OFF(MEMORY_POS), 2 * L), 0);
	expect_rc("SET_BUFFER of the last chunk: malformed batch",
		  wr32(d, R_CTL, OFF(MEMORY_ACTION), DEVSTATE_ACTION_SET_BUFFER), EINVAL);
	expect_rc("device_config.size", wr64(d, R_CTL, OFF(CONFIG_SIZE), d->size[R_CONFIG]), 0);
	expect_rc("config SET_BUFFER",
		  wr32(d, R_CTL, OFF(CONFIG_ACTION), DEVSTATE_ACTION_SET_BUFFER), 0);
	expect_rc("device_memory.size after the config",
		  wr64(d, R_CTL, OFF(MEMORY_SIZE), 0), EINVAL);
	expect_rc("RUNNING", wr32(d, R_CTL, OFF(DEVICE_STATE), 0), 0);

	/* saving: batches are read to their end */
	rc = rd(d, R_CTL, OFF(MEMORY_SIZE), b, 8);
	v64 = devstate_le_get(b, 8);
	expect_rc("freeze in RUNNING (whole snapshot)", rc, 0);
	if (v64 != 16 + mem) {
		printf("=== hostile-bad whole snapshot of %" PRIu64 " bytes, want %" PRIu64 "\n",
		       v64, 16 + mem);
		bad++;
	}
	expect_rc("pos at the batch's end",
		  wr64(d, R_CTL, OFF(MEMORY_POS), (v64 + L - 1) / L * L), 0);
	expect_rc("GET_BUFFER at pos >= size",
		  wr32(d, R_CTL, OFF(MEMORY_ACTION), DEVSTATE_ACTION_GET_BUFFER), EINVAL);
	expect_rc("RUNNING|LOGGING", wr32(d, R_CTL, OFF(DEVICE_STATE), 2), 0);
	expect_rc("freeze with the previous batch unread",
		  rd(d, R_CTL, OFF(MEMORY_SIZE), b, 8), EINVAL);
	expect_rc("RUNNING", wr32(d, R_CTL, OFF(DEVICE_STATE), 0), 0);

	/* data regions, BAR0, BAR1, unknown regions */
	expect_rc("CONFIG region read past the end",
		  rd(d, R_CONFIG, d->size[R_CONFIG] - 4, b, 8), EINVAL);
	expect_rc("MEMORY region write across the end", wr(d, R_MEMORY, L - 1, b, 2), EINVAL);
	expect_rc("BITMAP region read at 2^39", rd(d, R_BITMAP, 1ull << 39, b, 4), EINVAL);
	expect_rc("BAR0 read across the end", rd(d, R_BAR0, mem - 4, b, 8), EINVAL);
	expect_rc("BAR0 write at the end", wr(d, R_BAR0, mem, b, 1), EINVAL);
	expect_rc("BAR1 read of the doorbell", rd(d, R_BAR1, REG_DOORBELL, b, 4), EINVAL);
	expect_rc("BAR1 write of STATUS", wr32(d, R_BAR1, REG_STATUS, 0), EINVAL);
	expect_rc("BAR1 DMA_ADDR at width 4", wr32(d, R_BAR1, REG_DMA_ADDR, 0), EINVAL);
	expect_rc("BAR1 past its end", rd(d, R_BAR1, 4096, b, 4), EINVAL);
	expect_rc("DMA_LEN 0", wr32(d, R_BAR1, REG_DMA_LEN, 0), 0);
	expect_rc("doorbell with DMA_LEN 0", wr32(d, R_BAR1, REG_DOORBELL, 1), EINVAL);
	expect_rc("DMA_LEN 3", wr32(d, R_BAR1, REG_DMA_LEN, 3), 0);
	expect_rc("doorbell with DMA_LEN 3", wr32(d, R_BAR1, REG_DOORBELL, 1), EINVAL);
	expect_rc("DMA_LEN 4", wr32(d, R_BAR1, REG_DMA_LEN, 4), 0);
	expect_rc("DMA_ADDR 2^64-4", wr64(d, R_BAR1, REG_DMA_ADDR, ~3ull), 0);
	expect_rc("doorbell beyond system memory", wr32(d, R_BAR1, REG_DOORBELL, 1), EINVAL);
	expect_rc("DMA_ADDR 512M (not mapped)", wr64(d, R_BAR1, REG_DMA_ADDR, 512u << 20), 0);
	expect_rc("doorbell into unmapped IOVA", wr32(d, R_BAR1, REG_DOORBELL, 1), EINVAL);
	expect_rc("region 5 (absent) read", rd(d, 5, 0, b, 4), EINVAL);
	d->off[0] = (uint64_t)R_COUNT << 40;
	expect_rc("region 13 (none) read", rd(d, R_BAR0, 0, b, 4), EINVAL);
	d->off[0] = 0;
	{
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = R_COUNT };

		rc = ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0 ? -errno : 0;
		expect_rc("GET_REGION_INFO index 13", rc, EINVAL);
		ri.index = R_CTL;
		ri.argsz = 8;
		rc = ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0 ? -errno : 0;
		expect_rc("GET_REGION_INFO argsz 8", rc, EINVAL);
	}

	/* mmap */
#define MAPS(r_, len_, prot_, flags_, at_) \
	((p = mmap(NULL, (len_), (prot_), (flags_), d->fd, \
		   (off_t)(d->off[r_] + (at_)))) == MAP_FAILED ? -errno : \
	 (munmap(p, (len_)), 0))
	expect_rc("mmap of CTL", MAPS(R_CTL, 4096, PROT_READ, MAP_SHARED, 0), EINVAL);
	expect_rc("mmap of BAR0", MAPS(R_BAR0, 4096, PROT_READ, MAP_SHARED, 0), EINVAL);
	expect_rc("mmap of MEMORY, twice its length",
		  MAPS(R_MEMORY, 2 * L, PROT_READ, MAP_SHARED, 0), EINVAL);
	expect_rc("mmap of MEMORY at an offset past it",
		  MAPS(R_MEMORY, 4096, PROT_READ, MAP_SHARED, L), EINVAL);
	expect_rc("mmap of BITMAP, private",
		  MAPS(R_BITMAP, R, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0), EINVAL);
	expect_rc("mmap of MEMORY, its last page",
		  MAPS(R_MEMORY, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, L - 4096), 0);
	expect_rc("mmap of CONFIG, whole",
		  MAPS(R_CONFIG, d->size[R_CONFIG], PROT_READ, MAP_SHARED, 0), 0);

	/* unloading with a device open */
	rc = syscall(SYS_delete_module, "mdevstate", O_NONBLOCK) < 0 ? -errno : 0;
	expect_rc("rmmod mdevstate with the device open", rc, EWOULDBLOCK);
	printf("=== hostile %s (%d bad)\n", bad ? "FAILED" : "ok", bad);
	return bad ? 1 : 0;
#undef OFF
#undef MAPS
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	rng ^= (uint64_t)time(NULL);
	if (argc == 9 && !strcmp(argv[1], "migrate"))
		return do_migrate(argv + 2);
	if (argc == 5 && !strcmp(argv[1], "hostile"))
		return do_hostile(argv + 2);
	fprintf(stderr, "usage: kmod-work migrate VERSION GROUP-A UUID-A GROUP-B UUID-B CLI BITMAP\n"
		"       kmod-work hostile VERSION GROUP UUID\n");
	return 2;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file-backed snapshot transport, "file:PATH": a saved snapshot
 * presented as a read-only device, as lspci -F replays a dump.
 *
 * At open the whole file goes through the stream decoder (every length,
 * CRC and ordering rule checked) and its sections are indexed by file
 * offset; payloads are decoded again from the file when the device is
 * asked for them, so memory stays bounded by the index plus the regions,
 * whatever the size of the snapshot.
 *
 * As a source the device replays what it recorded, in order (SPEC 9):
 * the first device_memory.size read freezes the first recorded batch (the
 * whole snapshot); each later read in a LOGGING state freezes the next
 * recorded batch, 0 when none is left; a read in a non-LOGGING state
 * freezes the whole snapshot again and restarts the replay after it.  The
 * config is the recorded CONFIG section.  Dirty-bitmap queries report the
 * bits of every recorded DIRTY_BITMAP section within the queried range,
 * whatever the state, and forget the range they covered.  Anything that
 * would load state into the device fails with EROFS.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libdevstate/stream.h"
#include "transports/transport.h"

#define READ_SIZE	(1u << 20)

struct file_batch {
	size_t first;		/* index of its pos-0 chunk in mem[] */
	uint64_t size;
	uint32_t pass;
};

struct page_range {
	uint64_t start, end;	/* [start, end) */
};

struct file_dev {
	int fd;
	char *path;
	struct devstate_stream_header hdr;
	const struct devstate_layout *layout;
	uint64_t rlen[DEVSTATE_REGION_COUNT];

	/* the index */
	struct devstate_section *mem;	/* MEMORY sections, stream order */
	size_t nmem, cap_mem;
	struct file_batch *batch;
	size_t nbatch, cap_batch;
	struct devstate_section *bm;	/* DIRTY_BITMAP sections */
	size_t nbm, cap_bm;
	struct devstate_section config;
	bool has_config;

	uint8_t *rbuf[DEVSTATE_REGION_COUNT];	/* data regions, lazily */
	uint8_t *sbuf;			/* one section re-read from the file */
	size_t scap;

	/* device state */
	uint32_t state;
	bool frozen_any;		/* a batch was frozen since open */
	bool frozen_valid;		/* frozen names a recorded batch */
	size_t frozen;			/* index in batch[] */
	size_t next_batch;		/* the next delta to replay */
	uint64_t pos;
	uint64_t start_addr, page_nr;
	bool start_set, page_nr_set;
	struct page_range *forgot;	/* ranges already reported */
	size_t nforgot, cap_forgot;
};

#define file_err(err, errlen, rc, ...) \
	devstate_transport_err(err, errlen, rc, "", __VA_ARGS__)


static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

static const char *region_str(enum devstate_region r)
{
	const char *n = devstate_region_name(r);

	return n ? n : "unknown";
}

/* Append one element to a growing array. */
static int push(void **arr, size_t *n, size_t *cap, size_t size,
		const void *elem)
{
	void *p;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;

		if (ncap > SIZE_MAX / size)
			return -ENOMEM;
		p = realloc(*arr, ncap * size);
		if (!p)
			return -ENOMEM;
		*arr = p;
		*cap = ncap;
	}
	memcpy((uint8_t *)*arr + *n * size, elem, size);
	(*n)++;
	return 0;
}

static void file_close(void *priv)
{
	struct file_dev *f = priv;
	unsigned r;

	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++)
		free(f->rbuf[r]);
	free(f->mem);
	free(f->batch);
	free(f->bm);
	free(f->sbuf);
	free(f->forgot);
	free(f->path);
	free(f);
}

/* ---------------------------------------------------------------- */
/* Opening: verify and index. */

static int index_section(struct file_dev *f, const struct devstate_section *s)
{
	struct devstate_section c = *s;
	struct file_batch b;

	c.data = NULL;	/* only valid during the decoder call */
	switch (c.type) {
	case DEVSTATE_SEC_MEMORY:
		if (c.pos == 0) {
			b.first = f->nmem;
			b.size = c.batch_size;
			b.pass = c.pass;
			if (push((void **)&f->batch, &f->nbatch, &f->cap_batch,
				 sizeof(b), &b) < 0)
				return -ENOMEM;
		}
		return push((void **)&f->mem, &f->nmem, &f->cap_mem, sizeof(c),
			    &c);
	case DEVSTATE_SEC_CONFIG:
		f->config = c;
		f->has_config = true;
		return 0;
	case DEVSTATE_SEC_DIRTY_BITMAP:
		/* an all-zero bitmap reports nothing: not worth keeping */
		if (c.codec == DEVSTATE_CODEC_ZERO)
			return 0;
		return push((void **)&f->bm, &f->nbm, &f->cap_bm, sizeof(c),
			    &c);
	default:
		return 0;
	}
}

static ssize_t read_some(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int file_scan(struct file_dev *f, char *err, size_t errlen)
{
	struct devstate_dec *d = NULL;
	uint8_t *buf;
	bool ended = false;
	int rc;

	buf = malloc(READ_SIZE);
	if (!buf)
		return file_err(err, errlen, -ENOMEM, "%s: out of memory",
				f->path);
	rc = devstate_dec_new(&d);
	if (rc < 0) {
		free(buf);
		return file_err(err, errlen, rc, "%s: out of memory", f->path);
	}
	for (;;) {
		ssize_t n = read_some(f->fd, buf, READ_SIZE);
		size_t off = 0, used;

		if (n < 0) {
			rc = file_err(err, errlen, (int)n,
				      "%s: read at offset %llu: %s", f->path,
				      ull(devstate_dec_offset(d)),
				      strerror((int)-n));
			goto out;
		}
		if (n == 0)
			break;
		while (off < (size_t)n) {
			rc = devstate_dec_feed(d, buf + off, (size_t)n - off,
					       &used);
			off += used;
			if (rc < 0) {
				file_err(err, errlen, rc, "%s: %s", f->path,
					 devstate_dec_error(d));
				goto out;
			}
			if (rc == DEVSTATE_DEC_HEADER) {
				f->hdr = *devstate_dec_header(d);
			} else if (rc == DEVSTATE_DEC_SECTION) {
				rc = index_section(f, devstate_dec_section(d));
				if (rc < 0) {
					file_err(err, errlen, rc,
						 "%s: out of memory indexing the snapshot",
						 f->path);
					goto out;
				}
			} else if (rc == DEVSTATE_DEC_END) {
				ended = true;
			}
		}
	}
	if (!ended) {
		rc = file_err(err, errlen, -EINVAL,
			      "%s: truncated: no END section", f->path);
		goto out;
	}
	rc = 0;
out:
	devstate_dec_free(d);
	free(buf);
	return rc;
}

static int file_open(const char *args, void **priv, char *err, size_t errlen)
{
	struct file_dev *f;
	struct stat st;
	unsigned r;
	int rc;

	if (!args || !*args)
		return file_err(err, errlen, -EINVAL,
				"file: no path given (file:PATH)");
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fd = -1;
	f->path = strdup(args);
	if (!f->path) {
		free(f);
		return -ENOMEM;
	}
	f->fd = open(args, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		rc = -errno;
		file_err(err, errlen, rc, "%s: %s", args, strerror(-rc));
		goto fail;
	}
	if (fstat(f->fd, &st) < 0) {
		rc = -errno;
		file_err(err, errlen, rc, "%s: %s", args, strerror(-rc));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = file_err(err, errlen, -EINVAL,
			      "%s: not a regular file", args);
		goto fail;
	}
	rc = file_scan(f, err, errlen);
	if (rc < 0)
		goto fail;
	if (f->hdr.protocol != DEVSTATE_PROTOCOL_REGIONS) {
		/* a replay of the region protocol cannot present it */
		rc = file_err(err, errlen, -EOPNOTSUPP,
			      "%s: the snapshot was saved from a device speaking the kernel's migration uAPI v2; the file transport replays only the region protocol (load it into a device, or verify/inspect it)",
			      args);
		goto fail;
	}
	f->layout = devstate_layout_find(f->hdr.proto_version);
	if (!f->layout) {
		rc = file_err(err, errlen, -EINVAL,
			      "%s: protocol version %u not supported", args,
			      f->hdr.proto_version);
		goto fail;
	}
	f->rlen[DEVSTATE_REGION_CTL] = f->layout->size;
	for (r = DEVSTATE_REGION_CONFIG; r < DEVSTATE_REGION_COUNT; r++)
		f->rlen[r] = f->hdr.region_len[r];
	f->state = DEVSTATE_STATE_RUNNING;
	*priv = f;
	return 0;
fail:
	file_close(f);
	return rc;
}

static int file_regions(void *priv, struct devstate_regions *out, char *err,
			size_t errlen)
{
	struct file_dev *f = priv;
	unsigned r;

	(void)err;
	(void)errlen;
	memset(out, 0, sizeof(*out));
	for (r = 0; r < DEVSTATE_REGION_COUNT; r++) {
		out->present[r] = f->rlen[r] != 0;
		out->size[r] = f->rlen[r];
		out->mappable[r] = r != DEVSTATE_REGION_CTL && f->rlen[r];
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* Payloads, decoded again from the file. */

static uint8_t *region_buf(struct file_dev *f, enum devstate_region r)
{
	if (!f->rbuf[r] && f->rlen[r])
		f->rbuf[r] = calloc(1, (size_t)f->rlen[r]);
	return f->rbuf[r];
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;	/* the file shrank under us */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Decode section s into out (s->raw_len bytes). */
static int load_section(struct file_dev *f, const struct devstate_section *s,
			void *out, const char *what, char *err, size_t errlen)
{
	char why[DEVSTATE_ERR_MAX];
	uint8_t *p;
	int rc;

	if (f->scap < s->total_len) {
		p = realloc(f->sbuf, (size_t)s->total_len);
		if (!p)
			return file_err(err, errlen, -ENOMEM,
					"%s: out of memory for a section of %llu bytes",
					what, ull(s->total_len));
		f->sbuf = p;
		f->scap = (size_t)s->total_len;
	}
	rc = pread_all(f->fd, f->sbuf, (size_t)s->total_len, s->offset);
	if (rc < 0)
		return file_err(err, errlen, rc == -EIO ? -EIO : rc,
				"%s: %s: reading %llu bytes at offset %llu: %s",
				what, f->path, ull(s->total_len),
				ull(s->offset),
				rc == -EIO ? "the file shrank" : strerror(-rc));
	why[0] = '\0';
	rc = devstate_section_redecode(s, f->sbuf, out, why, sizeof(why));
	if (rc < 0)
		return file_err(err, errlen, rc, "%s: %s: %s", what, f->path,
				why[0] ? why : strerror(-rc));
	return 0;
}

/* ---------------------------------------------------------------- */
/* Device memory: the replay. */

static uint64_t frozen_size(const struct file_dev *f)
{
	return f->frozen_valid ? f->batch[f->frozen].size : 0;
}

static void freeze(struct file_dev *f)
{
	if (!f->frozen_any || !(f->state & DEVSTATE_STATE_LOGGING)) {
		/* the whole snapshot, and the replay restarts after it */
		f->frozen_any = true;
		f->frozen_valid = f->nbatch > 0;
		f->frozen = 0;
		f->next_batch = f->nbatch > 0 ? 1 : 0;
		return;
	}
	if (f->next_batch < f->nbatch) {
		f->frozen_valid = true;
		f->frozen = f->next_batch++;
	} else {
		f->frozen_valid = false;	/* nothing changed */
	}
}

static int mem_get_buffer(struct file_dev *f, char *err, size_t errlen)
{
	const char *what = "device_memory.action GET_BUFFER";
	uint64_t L = f->rlen[DEVSTATE_REGION_MEMORY], size;
	const struct devstate_section *s;
	uint8_t *out;
	int rc;

	if (!f->frozen_any)
		return file_err(err, errlen, -EINVAL,
				"%s: no batch frozen (read device_memory.size first)",
				what);
	size = frozen_size(f);
	if (!size)
		return file_err(err, errlen, -EINVAL, "%s: the frozen batch is empty",
				what);
	if (f->pos >= size || f->pos % L)
		return file_err(err, errlen, -EINVAL,
				"%s: pos %llu is not a chunk of the %llu-byte batch (chunk length %llu)",
				what, ull(f->pos), ull(size), ull(L));
	/* chunks of a batch are contiguous from pos 0 (the decoder saw to
	 * it): chunk pos/L of the batch is this section */
	s = &f->mem[f->batch[f->frozen].first + f->pos / L];
	out = region_buf(f, DEVSTATE_REGION_MEMORY);
	if (!out)
		return file_err(err, errlen, -ENOMEM,
				"%s: out of memory for the DEVICE_MEMORY region",
				what);
	rc = load_section(f, s, out, what, err, errlen);
	if (rc < 0)
		return rc;
	/* only size - pos bytes of a short last chunk mean anything */
	if (s->raw_len < L)
		memset(out + s->raw_len, 0, (size_t)(L - s->raw_len));
	return 0;
}

static int cfg_get_buffer(struct file_dev *f, char *err, size_t errlen)
{
	const char *what = "device_config.action GET_BUFFER";
	uint8_t *out;

	if (!f->has_config)
		return file_err(err, errlen, -ENODATA,
				"%s: the snapshot has no CONFIG section", what);
	out = region_buf(f, DEVSTATE_REGION_CONFIG);
	if (!out && f->config.raw_len)
		return file_err(err, errlen, -ENOMEM,
				"%s: out of memory for the DEVICE_CONFIG region",
				what);
	return load_section(f, &f->config, out, what, err, errlen);
}

/* ---------------------------------------------------------------- */
/* Dirty bitmap replay. */

static bool bit_get(const uint8_t *p, uint64_t i)
{
	return p[i / 8] >> (i % 8) & 1;
}

static void bit_set(uint8_t *p, uint64_t i)
{
	p[i / 8] |= (uint8_t)(1u << (i % 8));
}

static void bit_clear(uint8_t *p, uint64_t i)
{
	p[i / 8] &= (uint8_t)~(1u << (i % 8));
}

/* Remember that [start, end) was reported: kept sorted and merged. */
static int forget(struct file_dev *f, uint64_t start, uint64_t end)
{
	struct page_range nr = { start, end };
	size_t i, j;

	/* absorb every range that overlaps or touches [start, end) */
	for (i = 0; i < f->nforgot && f->forgot[i].end < start; i++)
		;
	for (j = i; j < f->nforgot && f->forgot[j].start <= end; j++) {
		if (f->forgot[j].start < nr.start)
			nr.start = f->forgot[j].start;
		if (f->forgot[j].end > nr.end)
			nr.end = f->forgot[j].end;
	}
	if (j > i) {
		f->forgot[i] = nr;
		memmove(&f->forgot[i + 1], &f->forgot[j],
			(f->nforgot - j) * sizeof(nr));
		f->nforgot -= j - i - 1;
		return 0;
	}
	if (push((void **)&f->forgot, &f->nforgot, &f->cap_forgot, sizeof(nr),
		 &nr) < 0)
		return -ENOMEM;
	memmove(&f->forgot[i + 1], &f->forgot[i],
		(f->nforgot - 1 - i) * sizeof(nr));
	f->forgot[i] = nr;
	return 0;
}

static int sys_query(struct file_dev *f, const char *what, char *err,
		     size_t errlen)
{
	uint64_t max = f->rlen[DEVSTATE_REGION_BITMAP] * 8;
	uint64_t first, last, p;
	uint8_t *out, *tmp = NULL;
	size_t k, tcap = 0;
	int rc;

	if (!f->start_set || !f->page_nr_set)
		return file_err(err, errlen, -EINVAL,
				"%s: start_addr and page_nr must be written first",
				what);
	if (!f->page_nr || f->page_nr > max)
		return file_err(err, errlen, -EINVAL,
				"%s: page_nr %llu is not in 1..%llu", what,
				ull(f->page_nr), ull(max));
	first = f->start_addr / DEVSTATE_PAGE_SIZE;
	if (f->page_nr > UINT64_MAX / DEVSTATE_PAGE_SIZE + 1 - first)
		return file_err(err, errlen, -EINVAL,
				"%s: pages [%llu, +%llu) beyond 64-bit addresses",
				what, ull(first), ull(f->page_nr));
	last = first + f->page_nr;
	out = region_buf(f, DEVSTATE_REGION_BITMAP);
	if (!out)
		return file_err(err, errlen, -ENOMEM,
				"%s: out of memory for the DIRTY_BITMAP region",
				what);
	memset(out, 0, (size_t)((f->page_nr + 7) / 8));

	for (k = 0; k < f->nbm; k++) {
		const struct devstate_section *s = &f->bm[k];
		uint64_t lo, hi, b;

		lo = s->start_page > first ? s->start_page : first;
		hi = s->start_page + s->page_nr < last ?
		     s->start_page + s->page_nr : last;
		if (lo >= hi)
			continue;
		if (tcap < s->raw_len) {
			uint8_t *t = realloc(tmp, (size_t)s->raw_len);

			if (!t) {
				free(tmp);
				return file_err(err, errlen, -ENOMEM,
						"%s: out of memory for a bitmap of %llu bytes",
						what, ull(s->raw_len));
			}
			tmp = t;
			tcap = (size_t)s->raw_len;
		}
		rc = load_section(f, s, tmp, what, err, errlen);
		if (rc < 0) {
			free(tmp);
			return rc;
		}
		/* whole zero bytes are skipped: cost follows the set bits */
		for (b = lo - s->start_page; b < hi - s->start_page;) {
			if (b % 8 == 0 && !tmp[b / 8]) {
				b += 8;
				continue;
			}
			if (bit_get(tmp, b))
				bit_set(out, s->start_page + b - first);
			b++;
		}
	}
	free(tmp);

	/* what an earlier query reported is gone */
	for (k = 0; k < f->nforgot && f->forgot[k].start < last; k++) {
		uint64_t lo = f->forgot[k].start > first ?
			      f->forgot[k].start : first;
		uint64_t hi = f->forgot[k].end < last ? f->forgot[k].end : last;

		for (p = lo; p < hi; p++)
			bit_clear(out, p - first);
	}
	rc = forget(f, first, last);
	if (rc < 0)
		return file_err(err, errlen, rc, "%s: out of memory", what);
	return 0;
}

/* ---------------------------------------------------------------- */
/* The control region. */

static int read_only(const char *what, char *err, size_t errlen)
{
	return file_err(err, errlen, -EROFS, "%s: snapshot file is read-only",
			what);
}

static bool has_cap(const struct file_dev *f, uint32_t cap)
{
	return (f->hdr.caps & cap) != 0;
}

static int ctl_field(struct file_dev *f, uint32_t off, uint32_t len,
		     unsigned access, enum devstate_field *field,
		     const struct devstate_field_desc **desc, char *err,
		     size_t errlen)
{
	const char *dir = access == DEVSTATE_ACCESS_R ? "read" : "write";
	const struct devstate_field_desc *d;

	if (devstate_layout_field_at(f->layout, off, len, field) < 0)
		return file_err(err, errlen, -EINVAL,
				"CTL %s of %u bytes at offset %u: not exactly one field of the version %u layout",
				dir, len, off, f->layout->version);
	d = devstate_layout_field(f->layout, *field);
	if (!d || !(d->access & access))
		return file_err(err, errlen, -EINVAL,
				"CTL %s at offset %u: field %s is %s", dir, off,
				d && d->name ? d->name : "?",
				access == DEVSTATE_ACCESS_R ?
				"write-only" : "read-only");
	switch (*field) {
	case DEVSTATE_FIELD_MEMORY_ACTION:
	case DEVSTATE_FIELD_MEMORY_SIZE:
	case DEVSTATE_FIELD_MEMORY_POS:
		if (!has_cap(f, DEVSTATE_CAP_DEVICE_MEMORY))
			return file_err(err, errlen, -EINVAL,
					"CTL %s of %s: the snapshot has no cap DEVICE_MEMORY",
					dir, d->name);
		break;
	case DEVSTATE_FIELD_SYSMEM_ACTION:
	case DEVSTATE_FIELD_SYSMEM_START:
	case DEVSTATE_FIELD_SYSMEM_PAGE_NR:
		if (!has_cap(f, DEVSTATE_CAP_SYSTEM_MEMORY))
			return file_err(err, errlen, -EINVAL,
					"CTL %s of %s: the snapshot has no cap SYSTEM_MEMORY",
					dir, d->name);
		break;
	default:
		break;
	}
	*desc = d;
	return 0;
}

static int file_ctl_read(void *priv, uint32_t off, void *buf, uint32_t len,
			 char *err, size_t errlen)
{
	struct file_dev *f = priv;
	const struct devstate_field_desc *d;
	enum devstate_field field;
	uint64_t v;
	int rc;

	if (!buf)
		return -EINVAL;
	rc = ctl_field(f, off, len, DEVSTATE_ACCESS_R, &field, &d, err,
		       errlen);
	if (rc < 0)
		return rc;
	switch (field) {
	case DEVSTATE_FIELD_VERSION:
		v = f->hdr.proto_version;
		break;
	case DEVSTATE_FIELD_CAPS:
		v = f->hdr.caps;
		break;
	case DEVSTATE_FIELD_CONFIG_SIZE:
		v = f->hdr.config_size;
		break;
	case DEVSTATE_FIELD_MEMORY_SIZE:
		freeze(f);
		v = frozen_size(f);
		break;
	case DEVSTATE_FIELD_MEMORY_POS:
		v = f->pos;
		break;
	default:
		return file_err(err, errlen, -EINVAL,
				"CTL read at offset %u: field %s is not readable",
				off, d->name);
	}
	devstate_le_put(buf, len, v);
	return 0;
}

static int file_ctl_write(void *priv, uint32_t off, const void *buf,
			  uint32_t len, char *err, size_t errlen)
{
	struct file_dev *f = priv;
	const struct devstate_field_desc *d;
	enum devstate_field field;
	uint64_t v, L;
	int rc;

	if (!buf)
		return -EINVAL;
	rc = ctl_field(f, off, len, DEVSTATE_ACCESS_W, &field, &d, err,
		       errlen);
	if (rc < 0)
		return rc;
	v = devstate_le_get(buf, len);
	switch (field) {
	case DEVSTATE_FIELD_DEVICE_STATE:
		if (!devstate_state_valid((uint32_t)v) || v > UINT32_MAX)
			return file_err(err, errlen, -EINVAL,
					"device_state: invalid state %llu",
					ull(v));
		f->state = (uint32_t)v;
		return 0;
	case DEVSTATE_FIELD_CONFIG_ACTION:
		if (v == DEVSTATE_ACTION_GET_BUFFER)
			return cfg_get_buffer(f, err, errlen);
		if (v == DEVSTATE_ACTION_SET_BUFFER)
			return read_only("device_config.action SET_BUFFER",
					 err, errlen);
		return file_err(err, errlen, -EINVAL,
				"device_config.action: invalid action %llu",
				ull(v));
	case DEVSTATE_FIELD_CONFIG_SIZE:
		return read_only("device_config.size write", err, errlen);
	case DEVSTATE_FIELD_MEMORY_ACTION:
		if (v == DEVSTATE_ACTION_GET_BUFFER)
			return mem_get_buffer(f, err, errlen);
		if (v == DEVSTATE_ACTION_SET_BUFFER)
			return read_only("device_memory.action SET_BUFFER",
					 err, errlen);
		return file_err(err, errlen, -EINVAL,
				"device_memory.action: invalid action %llu",
				ull(v));
	case DEVSTATE_FIELD_MEMORY_SIZE:
		return read_only("device_memory.size write", err, errlen);
	case DEVSTATE_FIELD_MEMORY_POS:
		L = f->rlen[DEVSTATE_REGION_MEMORY];
		if (!L || v % L)
			return file_err(err, errlen, -EINVAL,
					"device_memory.pos: %llu is not a multiple of the chunk length %llu",
					ull(v), ull(L));
		f->pos = v;
		return 0;
	case DEVSTATE_FIELD_SYSMEM_ACTION:
		if (v != DEVSTATE_ACTION_GET_BITMAP)
			return file_err(err, errlen, -EINVAL,
					"system_memory.action: invalid action %llu",
					ull(v));
		return sys_query(f, "system_memory.action GET_BITMAP", err,
				 errlen);
	case DEVSTATE_FIELD_SYSMEM_START:
		if (v % DEVSTATE_PAGE_SIZE)
			return file_err(err, errlen, -EINVAL,
					"system_memory.start_addr: 0x%llx is not page-aligned",
					ull(v));
		f->start_addr = v;
		f->start_set = true;
		return 0;
	case DEVSTATE_FIELD_SYSMEM_PAGE_NR:
		f->page_nr = v;
		f->page_nr_set = true;
		if (!f->layout->bitmap_action)	/* v1: the write queries */
			return sys_query(f, "system_memory.page_nr", err,
					 errlen);
		return 0;
	default:
		return file_err(err, errlen, -EINVAL,
				"CTL write at offset %u: field %s is not writable",
				off, d->name);
	}
}

/* ---------------------------------------------------------------- */
/* Data regions. */

static int data_check(struct file_dev *f, enum devstate_region r,
		      uint64_t off, size_t len, const char *what, char *err,
		      size_t errlen)
{
	if ((unsigned)r >= DEVSTATE_REGION_COUNT || r == DEVSTATE_REGION_CTL)
		return file_err(err, errlen, -EINVAL,
				"%s: region %s is not a data region", what,
				region_str(r));
	if (!f->rlen[r])
		return file_err(err, errlen, -EINVAL,
				"%s: the snapshot has no %s region", what,
				region_str(r));
	if (off > f->rlen[r] || len > f->rlen[r] - off)
		return file_err(err, errlen, -EINVAL,
				"%s of %zu bytes at offset %llu: past the end of the %llu-byte %s region",
				what, len, ull(off), ull(f->rlen[r]),
				region_str(r));
	return 0;
}

static int file_data_read(void *priv, enum devstate_region r, uint64_t off,
			  void *buf, size_t len, char *err, size_t errlen)
{
	struct file_dev *f = priv;
	int rc;

	rc = data_check(f, r, off, len, "data read", err, errlen);
	if (rc < 0)
		return rc;
	if (!len)
		return 0;
	if (f->rbuf[r])
		memcpy(buf, f->rbuf[r] + off, len);
	else
		memset(buf, 0, len);	/* never filled */
	return 0;
}

static int file_data_write(void *priv, enum devstate_region r, uint64_t off,
			   const void *buf, size_t len, char *err,
			   size_t errlen)
{
	struct file_dev *f = priv;
	int rc;

	(void)buf;
	rc = data_check(f, r, off, len, "data write", err, errlen);
	if (rc < 0)
		return rc;
	return read_only("data write", err, errlen);
}

static int file_data_map(void *priv, enum devstate_region r, void **addr,
			 char *err, size_t errlen)
{
	struct file_dev *f = priv;
	uint8_t *p;

	if ((unsigned)r >= DEVSTATE_REGION_COUNT || r == DEVSTATE_REGION_CTL)
		return file_err(err, errlen, -EINVAL,
				"map: region %s is not a data region",
				region_str(r));
	if (!f->rlen[r])
		return file_err(err, errlen, -EOPNOTSUPP,
				"map: the snapshot has no %s region",
				region_str(r));
	p = region_buf(f, r);
	if (!p)
		return file_err(err, errlen, -ENOMEM,
				"map: out of memory for the %llu-byte %s region",
				ull(f->rlen[r]), region_str(r));
	*addr = p;
	return 0;
}

static int file_digest(void *priv, uint32_t *crc)
{
	(void)priv;
	(void)crc;
	/* device memory is the vendor's opaque encoding: a snapshot holds
	 * batches, not the contents they describe */
	return -EOPNOTSUPP;
}

const struct devstate_transport_ops devstate_file_ops = {
	.name = "file",
	.help = "file:PATH  a saved snapshot, replayed as a read-only device",
	.open = file_open,
	.close = file_close,
	.regions = file_regions,
	.ctl_read = file_ctl_read,
	.ctl_write = file_ctl_write,
	.data_read = file_data_read,
	.data_write = file_data_write,
	.data_map = file_data_map,
	.digest = file_digest,
};

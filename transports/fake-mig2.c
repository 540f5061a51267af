/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fake device speaking the kernel's migration uAPI v2 ("fake:mig2=...").
 * A strict, kernel-like *driver-side* model:
 *
 * - flags as configured (STOP_COPY mandatory, P2P and PRE_COPY optional);
 * - only single arcs are accepted (-EINVAL otherwise, as a driver's step
 *   function answers; the kernel's multi-arc routing is the library's job
 *   here, which always asks for one arc); ERROR is left only by a reset;
 * - a data session ("fd") opens on entering the saving group or RESUMING,
 *   carries on from PRE_COPY* into STOP_COPY, and closes with any other
 *   change and with every failed one;
 * - the device state is the fake's memory || config, in 4 KiB pages.
 *   Entering PRE_COPY makes every page "initial" data; while it pre-copies
 *   the workload (workload=N pages per tick) changes pages, which become
 *   dirty data.  A read session returns what is pending now and then 0 (the
 *   end of what the device has now, as a driver's ENOMSG); the next read
 *   starts a new session after a tick.  STOP_COPY returns the pages still
 *   pending (all of them without pre-copy), then an END record carrying
 *   the CRC of the whole state, then end of file;
 * - RESUMING accepts any bytes and parses them as they come into a staging
 *   copy; leaving RESUMING for STOP validates (framing, per-record CRC,
 *   every page received, the END record's CRC of the whole state) and only
 *   then replaces the device state.  Bad data: -EINVAL and state ERROR, as
 *   a driver's failed load.
 *
 * Data records (little-endian): u32 magic "FM2R", u32 kind (1 data, 2
 * end), u64 offset (data: byte offset in the state; end: state length),
 * u32 length (data bytes; end: 0), u32 CRC-32 (data: of the bytes; end: of
 * the whole state), then the bytes.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libdevstate/core.h"
#include "libdevstate/device.h"
#include "libdevstate/le.h"
#include "libdevstate/mig2.h"
#include "libdevstate/stream.h"
#include "transports/fake-mig2.h"
#include "transports/fake.h"
#include "transports/transport.h"

#define PAGE		4096u
#define REC_HDR		24u
#define REC_MAGIC	0x52324d46u	/* "FM2R" */
#define REC_DATA	1u
#define REC_END		2u
#define RUN_PAGES	16u		/* pages per data record at most */

#define m2_err(err, errlen, rc, ...) \
	devstate_transport_err(err, errlen, rc, "fake mig2: ", __VA_ARGS__)

struct fake_mig2 {
	uint64_t flags;
	uint32_t state;
	uint8_t *mem, *cfg;
	uint64_t mem_len, cfg_len, total;
	uint64_t npages, mem_pages;
	bool fail_to_error;

	/* save side */
	bool fd;		/* a data session is open */
	bool stop_copy;		/* it is in STOP_COPY */
	bool session_end;	/* the last read answered "nothing more now" */
	bool end_sent;		/* STOP_COPY: END record emitted */
	uint64_t *pending;	/* pages to send */
	uint64_t *initial;	/* of those, the initial ones */
	uint64_t cursor;
	uint8_t *out;		/* the record being read */
	size_t out_len, out_pos;

	/* workload */
	unsigned workload;
	uint64_t rng;

	/* load side */
	uint8_t *stage;
	uint64_t *covered;
	uint8_t hdr[REC_HDR];
	size_t hdr_have;
	bool in_body;
	uint64_t rec_off;
	uint32_t rec_len, rec_got, rec_crc, rec_want;
	bool saw_end;
	uint32_t end_crc;
	bool bad;
	char bad_why[128];

	struct devstate_fake_mig2_stats st;
};

/* ---------------------------------------------------------------- */

static bool bt(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

static void bs(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ull << (i % 64);
}

static void bc(uint64_t *bm, uint64_t i)
{
	bm[i / 64] &= ~(1ull << (i % 64));
}

static size_t bm_bytes(uint64_t n)
{
	return (size_t)((n + 63) / 64 * 8);
}

static void bm_fill(uint64_t *bm, uint64_t n, bool on)
{
	uint64_t i;

	memset(bm, 0, bm_bytes(n));
	if (on)
		for (i = 0; i < n; i++)
			bs(bm, i);
}

static uint64_t bm_count(const uint64_t *a, const uint64_t *mask, bool invert,
			 uint64_t n)
{
	uint64_t i, c = 0;

	for (i = 0; i < n; i++)
		if (bt(a, i) && (!mask || bt(mask, i) != invert))
			c++;
	return c;
}

/* Byte offset and length of page p of the state (the config's last page
 * may be short; memory pages never span into the config). */
static void page_span(const struct fake_mig2 *m, uint64_t p, uint64_t *off,
		      uint64_t *len)
{
	uint64_t end;

	if (p < m->mem_pages) {
		*off = p * PAGE;
		*len = PAGE;
		return;
	}
	*off = m->mem_len + (p - m->mem_pages) * PAGE;
	end = *off + PAGE;
	if (end > m->total)
		end = m->total;
	*len = end - *off;
}

static uint8_t *state_ptr(struct fake_mig2 *m, uint8_t *mem, uint8_t *cfg,
			  uint64_t off)
{
	return off < m->mem_len ? mem + off : cfg + (off - m->mem_len);
}

static uint32_t state_crc(const struct fake_mig2 *m, const uint8_t *mem,
			  const uint8_t *cfg)
{
	uint32_t c = 0;

	if (m->mem_len)
		c = devstate_crc32(c, mem, (size_t)m->mem_len);
	if (m->cfg_len)
		c = devstate_crc32(c, cfg, (size_t)m->cfg_len);
	return c;
}

static uint64_t rand64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The device writes `pages` memory pages; while it pre-copies they become
 * pending (dirty) data. */
static void workload(struct fake_mig2 *m, unsigned pages)
{
	unsigned i;

	if (!m->mem_pages)
		return;
	for (i = 0; i < pages; i++) {
		uint64_t p = rand64(&m->rng) % m->mem_pages;
		uint64_t v = rand64(&m->rng);

		memcpy(m->mem + p * PAGE + (v % (PAGE / 8)) * 8, &v, 8);
		if (m->fd && !m->stop_copy) {
			bs(m->pending, p);
			m->st.dirtied++;
		}
	}
}

static void tick(struct fake_mig2 *m)
{
	if (m->workload && (m->state == DEVSTATE_MIG2_PRE_COPY ||
			    m->state == DEVSTATE_MIG2_RUNNING))
		workload(m, m->workload);
}

static void close_fd(struct fake_mig2 *m)
{
	m->fd = false;
	m->stop_copy = false;
	m->session_end = false;
	m->end_sent = false;
	m->out_len = m->out_pos = 0;
	m->hdr_have = 0;
	m->in_body = false;
}

static void open_save(struct fake_mig2 *m, bool all_initial)
{
	close_fd(m);
	m->fd = true;
	bm_fill(m->pending, m->npages, true);
	bm_fill(m->initial, m->npages, all_initial);
	m->cursor = 0;
	m->st.sessions++;
}

static void open_resume(struct fake_mig2 *m)
{
	close_fd(m);
	m->fd = true;
	memcpy(m->stage, m->mem, (size_t)m->mem_len);
	memcpy(m->stage + m->mem_len, m->cfg, (size_t)m->cfg_len);
	bm_fill(m->covered, m->npages, false);
	m->saw_end = false;
	m->bad = false;
	m->bad_why[0] = '\0';
	m->st.sessions++;
}

/* ---------------------------------------------------------------- */
/* Save side: records out. */

/* Build the next record into m->out; false when nothing is pending now. */
static bool next_record(struct fake_mig2 *m)
{
	uint64_t p, q, off, len, o2, l2, total = 0;
	uint8_t *h = m->out;

	for (p = m->cursor; p < m->npages && !bt(m->pending, p); p++)
		;
	if (p >= m->npages) {
		m->cursor = m->npages;
		if (!m->stop_copy || m->end_sent)
			return false;
		memset(h, 0, REC_HDR);
		put32(h, REC_MAGIC);
		put32(h + 4, REC_END);
		put64(h + 8, m->total);
		put32(h + 20, state_crc(m, m->mem, m->cfg));
		m->out_len = REC_HDR;
		m->out_pos = 0;
		m->end_sent = true;
		return true;
	}
	page_span(m, p, &off, &len);
	total = len;
	/* a run of pending pages on the same side of the memory/config
	 * boundary */
	for (q = p + 1; q < m->npages && q - p < RUN_PAGES &&
	     bt(m->pending, q) && (q < m->mem_pages) == (p < m->mem_pages);
	     q++) {
		page_span(m, q, &o2, &l2);
		total += l2;
	}
	memcpy(h + REC_HDR, state_ptr(m, m->mem, m->cfg, off), (size_t)total);
	put32(h, REC_MAGIC);
	put32(h + 4, REC_DATA);
	put64(h + 8, off);
	put32(h + 16, (uint32_t)total);
	put32(h + 20, devstate_crc32(0, h + REC_HDR, (size_t)total));
	for (; p < q; p++) {
		bc(m->pending, p);
		bc(m->initial, p);
	}
	m->cursor = q;
	m->out_len = REC_HDR + (size_t)total;
	m->out_pos = 0;
	return true;
}

/* ---------------------------------------------------------------- */
/* Load side: records in. */

static void latch(struct fake_mig2 *m, const char *why)
{
	if (m->bad)
		return;
	m->bad = true;
	snprintf(m->bad_why, sizeof(m->bad_why), "%s", why);
}

static void take(struct fake_mig2 *m, const uint8_t *p, size_t n)
{
	while (n && !m->bad) {
		if (!m->in_body) {
			size_t k = REC_HDR - m->hdr_have;

			if (k > n)
				k = n;
			memcpy(m->hdr + m->hdr_have, p, k);
			m->hdr_have += k;
			p += k;
			n -= k;
			if (m->hdr_have < REC_HDR)
				return;
			m->hdr_have = 0;
			if (m->saw_end) {
				latch(m, "a record after the END record");
				return;
			}
			if (get32(m->hdr) != REC_MAGIC) {
				latch(m, "bad record magic");
				return;
			}
			if (get32(m->hdr + 4) == REC_END) {
				if (get64(m->hdr + 8) != m->total ||
				    get32(m->hdr + 16)) {
					latch(m, "an END record for another state size");
					return;
				}
				m->saw_end = true;
				m->end_crc = get32(m->hdr + 20);
				continue;
			}
			if (get32(m->hdr + 4) != REC_DATA) {
				latch(m, "unknown record kind");
				return;
			}
			m->rec_off = get64(m->hdr + 8);
			m->rec_len = get32(m->hdr + 16);
			m->rec_want = get32(m->hdr + 20);
			if (!m->rec_len || m->rec_off % PAGE ||
			    m->rec_off > m->total ||
			    m->rec_len > m->total - m->rec_off ||
			    m->rec_len > RUN_PAGES * PAGE ||
			    (m->rec_off < m->mem_len &&
			     m->rec_off + m->rec_len > m->mem_len)) {
				latch(m, "a record outside the state");
				return;
			}
			m->rec_got = 0;
			m->rec_crc = 0;
			m->in_body = true;
			continue;
		}
		{
			size_t k = m->rec_len - m->rec_got;
			uint64_t at = m->rec_off + m->rec_got;

			if (k > n)
				k = n;
			memcpy(m->stage + at, p, k);
			m->rec_crc = devstate_crc32(m->rec_crc, p, k);
			m->rec_got += (uint32_t)k;
			p += k;
			n -= k;
			if (m->rec_got < m->rec_len)
				return;
			m->in_body = false;
			if (m->rec_crc != m->rec_want) {
				latch(m, "record CRC mismatch");
				return;
			}
			{
				uint64_t a = m->rec_off / PAGE,
					 b = (m->rec_off + m->rec_len - 1) / PAGE,
					 pg;

				if (m->rec_off >= m->mem_len) {
					a = m->mem_pages +
					    (m->rec_off - m->mem_len) / PAGE;
					b = m->mem_pages +
					    (m->rec_off + m->rec_len - 1 -
					     m->mem_len) / PAGE;
				}
				for (pg = a; pg <= b; pg++)
					bs(m->covered, pg);
			}
		}
	}
}

/* RESUMING -> STOP: the driver loads what it received, or fails. */
static int finish_resume(struct fake_mig2 *m, char *err, size_t errlen)
{
	uint64_t missing;

	if (!m->bad && (m->in_body || m->hdr_have))
		latch(m, "the data ends inside a record");
	if (!m->bad && !m->saw_end)
		latch(m, "no END record");
	missing = m->npages - bm_count(m->covered, NULL, false, m->npages);
	if (!m->bad && missing)
		latch(m, "pages of the state never received");
	if (!m->bad &&
	    state_crc(m, m->stage, m->stage + m->mem_len) != m->end_crc)
		latch(m, "the state received does not match the END record's CRC");
	if (m->bad) {
		m->state = DEVSTATE_MIG2_ERROR;
		m->st.loads_refused++;
		close_fd(m);
		return m2_err(err, errlen, -EINVAL,
			      "refused the data: %s",
			      m->bad_why);
	}
	memcpy(m->mem, m->stage, (size_t)m->mem_len);
	memcpy(m->cfg, m->stage + m->mem_len, (size_t)m->cfg_len);
	m->st.loads++;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Ops. */

int fake_mig2_parse_flags(const char *s, uint64_t *flags)
{
	static const struct {
		const char *name;
		uint64_t bit;
	} names[] = {
		{ "stop-copy", DEVSTATE_MIG2_F_STOP_COPY },
		{ "p2p", DEVSTATE_MIG2_F_P2P },
		{ "pre-copy", DEVSTATE_MIG2_F_PRE_COPY },
		{ "all", DEVSTATE_MIG2_F_KNOWN },
	};
	uint64_t f = 0;
	const char *p, *end;
	unsigned i;

	if (!*s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9')
		return devstate_parse_u64(s, UINT64_MAX, flags) < 0 ?
		       -EINVAL : 0;
	for (p = s; *p; p = *end ? end + 1 : end) {
		size_t len;

		end = strchr(p, '+');
		if (!end)
			end = p + strlen(p);
		len = (size_t)(end - p);
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len &&
			    !strncmp(p, names[i].name, len))
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return -EINVAL;
		f |= names[i].bit;
		if (*end && !end[1])
			return -EINVAL;
	}
	*flags = f;
	return 0;
}

struct fake_mig2 *fake_mig2_new(uint64_t flags, uint8_t *mem, uint64_t mem_len,
				uint8_t *cfg, uint64_t cfg_len, uint64_t seed,
				unsigned wl)
{
	struct fake_mig2 *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->flags = flags;
	m->state = DEVSTATE_MIG2_RUNNING;
	m->mem = mem;
	m->cfg = cfg;
	m->mem_len = mem_len;
	m->cfg_len = cfg_len;
	m->total = mem_len + cfg_len;
	m->mem_pages = mem_len / PAGE;
	m->npages = m->mem_pages + (cfg_len + PAGE - 1) / PAGE;
	m->workload = wl;
	m->rng = seed ^ 0x6d696732ull;
	m->pending = calloc(1, bm_bytes(m->npages) + 8);
	m->initial = calloc(1, bm_bytes(m->npages) + 8);
	m->covered = calloc(1, bm_bytes(m->npages) + 8);
	m->out = malloc(REC_HDR + RUN_PAGES * PAGE);
	m->stage = malloc((size_t)m->total + 1);
	if (!m->pending || !m->initial || !m->covered || !m->out ||
	    !m->stage) {
		fake_mig2_free(m);
		return NULL;
	}
	return m;
}

void fake_mig2_free(struct fake_mig2 *m)
{
	if (!m)
		return;
	free(m->pending);
	free(m->initial);
	free(m->covered);
	free(m->out);
	free(m->stage);
	free(m);
}

/* Every op: the fake's uAPI v2 model (-EOPNOTSUPP, *m NULL, for a
 * region-protocol fake, not counted: its op numbers stay), then the op
 * counted (an injected failure is returned). */
static int op_enter(void *priv, struct fake_mig2 **m, char *err,
		    size_t errlen)
{
	*m = devstate_fake_m2(priv);
	if (!*m)
		return -EOPNOTSUPP;
	return devstate_fake_count_op(priv, err, errlen);
}

int fake_mig2_probe(void *priv, uint64_t *flags, char *err, size_t errlen)
{
	struct fake_mig2 *m;
	int rc;

	rc = op_enter(priv, &m, err, errlen);
	if (rc < 0)
		return rc;
	*flags = m->flags;
	return 0;
}

int fake_mig2_get_state(void *priv, uint32_t *state, char *err,
			size_t errlen)
{
	struct fake_mig2 *m;
	int rc;

	rc = op_enter(priv, &m, err, errlen);
	if (rc < 0)
		return rc;
	*state = m->state;
	return 0;
}

int fake_mig2_set_state(void *priv, uint32_t to, char *err, size_t errlen)
{
	struct fake_mig2 *m;
	uint32_t from;
	bool saving_from, saving_to;
	int rc;

	rc = op_enter(priv, &m, err, errlen);
	if (rc < 0) {
		if (!m)
			return rc;
		close_fd(m);	/* a failed change never leaves a session */
		if (m->fail_to_error)
			m->state = DEVSTATE_MIG2_ERROR;
		return rc;
	}
	from = m->state;
	if (from == DEVSTATE_MIG2_ERROR) {
		close_fd(m);
		return m2_err(err, errlen, -EINVAL,
			      "the device is in state error: only a reset leaves it");
	}
	if (!devstate_mig2_state_valid(m->flags, to) ||
	    devstate_mig2_arc(m->flags, from, to) < 0) {
		close_fd(m);
		m->st.refused_arcs++;
		return m2_err(err, errlen, -EINVAL,
			      "%s -> %s is not one arc of this device (flags 0x%" PRIx64 ")",
			      devstate_mig2_state_name(from) ?
			      devstate_mig2_state_name(from) : "?",
			      devstate_mig2_state_name(to) ?
			      devstate_mig2_state_name(to) : "?", m->flags);
	}
	if (from == DEVSTATE_MIG2_RESUMING) {
		rc = finish_resume(m, err, errlen);
		if (rc < 0)
			return rc;
	}
	saving_from = devstate_mig2_state_saving(from);
	saving_to = devstate_mig2_state_saving(to);
	if (saving_to && !saving_from) {
		/* PRE_COPY: everything is initial data; STOP_COPY from STOP:
		 * everything is the final state */
		open_save(m, to != DEVSTATE_MIG2_STOP_COPY);
		m->stop_copy = to == DEVSTATE_MIG2_STOP_COPY;
	} else if (saving_to && saving_from) {
		if (to == DEVSTATE_MIG2_STOP_COPY && !m->stop_copy) {
			/* what is still pending, from the start, then END */
			m->stop_copy = true;
			m->cursor = 0;
			m->session_end = false;
		}
	} else if (to == DEVSTATE_MIG2_RESUMING) {
		open_resume(m);
	} else {
		close_fd(m);
	}
	m->state = to;
	m->st.arcs++;
	return 0;
}

int fake_mig2_read(void *priv, void *buf, size_t len, size_t *got, char *err,
		   size_t errlen)
{
	struct fake_mig2 *m;
	uint8_t *dst = buf;
	size_t done = 0;
	int rc;

	*got = 0;
	rc = op_enter(priv, &m, err, errlen);
	if (rc < 0)
		return rc;
	if (!m->fd || !devstate_mig2_state_saving(m->state)) {
		m->st.bad_fd_uses++;
		return m2_err(err, errlen, -EBADF,
			      "read without a saving data session (state %s)",
			      devstate_mig2_state_name(m->state));
	}
	if (m->session_end && !m->stop_copy) {
		/* a new read session: the device has run meanwhile */
		m->session_end = false;
		m->cursor = 0;
		tick(m);
	}
	while (done < len) {
		size_t n;

		if (m->out_pos == m->out_len && !next_record(m))
			break;
		n = m->out_len - m->out_pos;
		if (n > len - done)
			n = len - done;
		memcpy(dst + done, m->out + m->out_pos, n);
		m->out_pos += n;
		done += n;
	}
	if (!done)
		m->session_end = true;
	m->st.bytes_read += done;
	*got = done;
	return 0;
}

int fake_mig2_write(void *priv, const void *buf, size_t len, char *err,
		    size_t errlen)
{
	struct fake_mig2 *m;
	int rc;

	rc = op_enter(priv, &m, err, errlen);
	if (rc < 0)
		return rc;
	if (!m->fd || m->state != DEVSTATE_MIG2_RESUMING) {
		m->st.bad_fd_uses++;
		return m2_err(err, errlen, -EBADF,
			      "write without a resuming data session (state %s)",
			      devstate_mig2_state_name(m->state));
	}
	take(m, buf, len);
	m->st.bytes_written += len;
	return 0;
}

int fake_mig2_precopy_info(void *priv, uint64_t *initial, uint64_t *dirty,
			   char *err, size_t errlen)
{
	struct fake_mig2 *m;
	uint64_t pi, pd;
	int rc;

	rc = op_enter(priv, &m, err, errlen);
	if (rc < 0)
		return rc;
	if (!m->fd || (m->state != DEVSTATE_MIG2_PRE_COPY &&
		       m->state != DEVSTATE_MIG2_PRE_COPY_P2P)) {
		m->st.bad_fd_uses += !m->fd;
		return m2_err(err, errlen, m->fd ? -EINVAL : -EBADF,
			      "pre-copy info outside pre-copy (state %s)",
			      devstate_mig2_state_name(m->state));
	}
	tick(m);
	pi = bm_count(m->pending, m->initial, false, m->npages);
	pd = bm_count(m->pending, m->initial, true, m->npages);
	*initial = pi * (PAGE + REC_HDR);
	*dirty = pd * (PAGE + REC_HDR);
	return 0;
}

int fake_mig2_data_size(void *priv, uint64_t *bytes, char *err,
			size_t errlen)
{
	struct fake_mig2 *m;
	int rc;

	rc = op_enter(priv, &m, err, errlen);
	if (rc < 0)
		return rc;
	/* the whole state in records of RUN_PAGES, and the END record */
	*bytes = m->total + REC_HDR * ((m->npages + RUN_PAGES - 1) / RUN_PAGES +
				       1);
	return 0;
}

int fake_mig2_reset(void *priv, char *err, size_t errlen)
{
	struct fake_mig2 *m;
	int rc;

	rc = op_enter(priv, &m, err, errlen);
	if (rc < 0)
		return rc;
	close_fd(m);
	m->state = DEVSTATE_MIG2_RUNNING;
	m->st.resets++;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Test-only API (fake.h). */

uint32_t devstate_fake_mig2_state(struct devstate_fake *f)
{
	struct fake_mig2 *m = devstate_fake_m2(f);

	return m ? m->state : UINT32_MAX;
}

void devstate_fake_mig2_workload(struct devstate_fake *f, unsigned pages)
{
	struct fake_mig2 *m = devstate_fake_m2(f);

	if (m)
		workload(m, pages);
}

void devstate_fake_mig2_fail_to_error(struct devstate_fake *f, int on)
{
	struct fake_mig2 *m = devstate_fake_m2(f);

	if (m)
		m->fail_to_error = on != 0;
}

void devstate_fake_mig2_stats(struct devstate_fake *f,
			      struct devstate_fake_mig2_stats *st)
{
	struct fake_mig2 *m = devstate_fake_m2(f);

	if (m)
		*st = m->st;
	else
		memset(st, 0, sizeof(*st));
}

int devstate_fake_mig2_session_open(struct devstate_fake *f)
{
	struct fake_mig2 *m = devstate_fake_m2(f);

	return m && m->fd;
}

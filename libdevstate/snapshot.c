/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Snapshot files (SPEC 9): an atomic writer and a verifier.
 *
 * A save goes to DIR/.BASENAME.tmp.XXXXXX (mkstemp) beside PATH; commit
 * fsyncs it, renames it over PATH and fsyncs DIR, so PATH is always either
 * the previous snapshot or the complete new one.  free without commit
 * removes the temporary file.  A process killed mid-save leaves its
 * temporary file behind: the writer holds an flock(2) on its temporary
 * file from creation until after the rename, so the next save of the same
 * PATH removes every .BASENAME.tmp.XXXXXX whose lock it can take (its
 * writer is gone) and leaves those of saves still running alone.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libdevstate/core.h"
#include "libdevstate/stream.h"

#define WBUF_SIZE	(64u << 10)	/* small writes are gathered */
#define RBUF_SIZE	(1u << 20)	/* verify reads this much at a time */

struct devstate_file {
	int fd;
	char *path;		/* the snapshot */
	char *tmp;		/* the temporary file, until committed */
	char *dir;		/* PATH's directory */
	int failed;		/* sticky write error */
	bool committed;
	size_t wlen;
	uint8_t wbuf[WBUF_SIZE];
};

/* The process umask, without changing it (umask(2) would, racily). */
static mode_t current_umask(void)
{
	char line[128];
	mode_t mask = 022;
	FILE *f;

	f = fopen("/proc/self/status", "re");
	if (!f)
		return mask;
	while (fgets(line, sizeof(line), f)) {
		unsigned int m;

		if (sscanf(line, "Umask: %o", &m) == 1) {
			mask = (mode_t)(m & 0777);
			break;
		}
	}
	fclose(f);
	return mask;
}

/* Remove DIR/.BASE.tmp.XXXXXX files left by saves that were killed: a
 * live writer holds the lock on its own, so taking it means the owner is
 * gone.  Best effort: anything unexpected is left alone. */
static void remove_stale(const char *dir, const char *base)
{
	size_t plen = strlen(base) + sizeof("..tmp.") - 1;
	struct dirent *e;
	char *prefix;
	DIR *d;

	prefix = malloc(plen + 1);
	if (!prefix)
		return;
	snprintf(prefix, plen + 1, ".%s.tmp.", base);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		struct stat st, now;
		int fd;

		if (strncmp(e->d_name, prefix, plen) ||
		    strlen(e->d_name) != plen + 6)
			continue;
		fd = openat(dirfd(d), e->d_name,
			    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    fstatat(dirfd(d), e->d_name, &now,
			    AT_SYMLINK_NOFOLLOW) == 0 &&
		    now.st_dev == st.st_dev && now.st_ino == st.st_ino)
			unlinkat(dirfd(d), e->d_name, 0);
		close(fd);
	}
	if (d)
		closedir(d);
	free(prefix);
}

/* mkstemp, then the writer's lock at once; a file a cleaner removed in
 * between (no links left) is given up and another one made. */
static int create_locked(char *tmp, size_t n, const char *templ)
{
	unsigned tries;

	for (tries = 0; tries < 8; tries++) {
		struct stat st;
		int fd;

		snprintf(tmp, n, "%s", templ);
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
		    st.st_nlink > 0)
			return fd;
		close(fd);
	}
	return -EAGAIN;
}

DEVSTATE_EXPORT int devstate_file_create(struct devstate_file **out,
					 const char *path)
{
	struct devstate_file *f;
	const char *slash, *base;
	char *templ;
	size_t dlen, n;
	int rc;

	if (!out || !path || !*path)
		return -EINVAL;
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	if (!*base)
		return -EISDIR;	/* "dir/" names no file */
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fd = -1;
	if (!slash)
		f->dir = strdup(".");
	else if (slash == path)
		f->dir = strdup("/");
	else
		f->dir = strndup(path, (size_t)(slash - path));
	f->path = strdup(path);
	dlen = slash ? (size_t)(base - path) : 0;
	n = dlen + 1 + strlen(base) + sizeof(".tmp.XXXXXX");
	f->tmp = malloc(n);
	if (!f->dir || !f->path || !f->tmp) {
		rc = -ENOMEM;
		goto fail;
	}
	snprintf(f->tmp, n, "%.*s.%s.tmp.XXXXXX", (int)dlen, path, base);
	templ = strdup(f->tmp);
	if (!templ) {
		rc = -ENOMEM;
		goto fail;
	}
	/* first the leftovers of killed saves, then our own file: a save
	 * that got as far as its temporary file has cleaned up before it */
	remove_stale(f->dir, base);
	f->fd = create_locked(f->tmp, n, templ);
	free(templ);
	if (f->fd < 0) {
		rc = f->fd;
		goto fail;
	}
	/* mkstemp creates 0600; a snapshot is an ordinary file */
	if (fchmod(f->fd, 0644 & ~current_umask()) < 0) {
		rc = -errno;
		close(f->fd);
		unlink(f->tmp);
		goto fail;
	}
	*out = f;
	return 0;
fail:
	free(f->dir);
	free(f->path);
	free(f->tmp);
	free(f);
	return rc;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_flush(struct devstate_file *f)
{
	int rc;

	if (!f->wlen)
		return 0;
	rc = write_all(f->fd, f->wbuf, f->wlen);
	f->wlen = 0;
	if (rc < 0)
		f->failed = rc;
	return rc;
}

DEVSTATE_EXPORT int devstate_file_write(void *file, const void *buf,
					size_t len)
{
	struct devstate_file *f = file;
	int rc;

	if (!f || (!buf && len))
		return -EINVAL;
	if (f->failed)
		return f->failed;
	if (f->fd < 0)
		return -EBADF;	/* committed */
	if (!len)
		return 0;
	if (len < WBUF_SIZE - f->wlen) {
		memcpy(f->wbuf + f->wlen, buf, len);
		f->wlen += len;
		return 0;
	}
	rc = file_flush(f);
	if (rc < 0)
		return rc;
	if (len < WBUF_SIZE) {
		memcpy(f->wbuf, buf, len);
		f->wlen = len;
		return 0;
	}
	rc = write_all(f->fd, buf, len);
	if (rc < 0)
		f->failed = rc;
	return rc;
}

static int fsync_dir(const char *dir)
{
	int fd, rc = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL)	/* EINVAL: not supported */
		rc = -errno;
	close(fd);
	return rc;
}

DEVSTATE_EXPORT int devstate_file_commit(struct devstate_file *f)
{
	int rc, fd;

	if (!f)
		return -EINVAL;
	if (f->failed)
		return f->failed;
	if (f->committed || f->fd < 0)
		return -EINVAL;
	rc = file_flush(f);
	if (rc < 0)
		return rc;
	if (fsync(f->fd) < 0) {
		f->failed = -errno;
		return f->failed;
	}
	/* rename while the lock is held: a concurrent save's cleanup never
	 * removes a temporary file that is about to become the snapshot */
	if (rename(f->tmp, f->path) < 0) {
		f->failed = -errno;
		return f->failed;
	}
	f->committed = true;
	fd = f->fd;
	f->fd = -1;
	if (close(fd) < 0) {
		f->failed = -errno;
		return f->failed;
	}
	/* make the rename itself durable */
	return fsync_dir(f->dir);
}

DEVSTATE_EXPORT void devstate_file_free(struct devstate_file *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	if (!f->committed)
		unlink(f->tmp);
	free(f->dir);
	free(f->path);
	free(f->tmp);
	free(f);
}

/* ---------------------------------------------------------------- */

static void report_section(struct devstate_verify_report *rep,
			   const struct devstate_section *s)
{
	rep->sections++;
	switch (s->type) {
	case DEVSTATE_SEC_MEMORY:
		rep->memory_sections++;
		rep->memory_bytes += s->raw_len;
		if (s->pos == 0)
			rep->passes++;
		break;
	case DEVSTATE_SEC_CONFIG:
		rep->config_bytes += s->raw_len;
		break;
	case DEVSTATE_SEC_DIRTY_BITMAP:
		rep->bitmap_sections++;
		break;
	case DEVSTATE_SEC_MIG2_DATA:
		/* the device's opaque data; passes: the source's last + 1 */
		rep->memory_sections++;
		rep->memory_bytes += s->raw_len;
		rep->passes = (uint64_t)s->pass + 1;
		break;
	default:
		break;
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

static const char *const section_names[] = {
	[DEVSTATE_SEC_MEMORY] = "memory",
	[DEVSTATE_SEC_CONFIG] = "config",
	[DEVSTATE_SEC_DIRTY_BITMAP] = "dirty-bitmap",
	[DEVSTATE_SEC_END] = "end",
	[DEVSTATE_SEC_MIG2_DATA] = "mig2-data",
};

/* Hand one verified section to an inspect callback. */
static int emit_section(devstate_section_fn fn, void *opaque,
			const struct devstate_section *s)
{
	struct devstate_section_info info;

	memset(&info, 0, sizeof(info));
	info.type = s->type;
	info.type_name = s->type < sizeof(section_names) / sizeof(section_names[0]) ?
			 section_names[s->type] : "unknown";
	info.codec = (enum devstate_codec)s->codec;
	info.offset = s->offset;
	info.length = s->total_len;
	info.raw_len = s->raw_len;
	info.stored_len = s->stored_len;
	info.pass = s->pass;
	info.batch_size = s->batch_size;
	info.pos = s->pos;
	info.start_page = s->start_page;
	info.page_nr = s->page_nr;
	info.mig2_flags = s->mig2_flags;
	info.crc_ok = 1;	/* the decoder reports only verified sections */
	return fn(opaque, &info);
}

/* Read a snapshot through the decoder; verify and inspect share it. */
static int scan_file(const char *path, devstate_section_fn fn, void *opaque,
		     struct devstate_verify_report *rep, char *errbuf,
		     size_t errlen)
{
	struct devstate_verify_report local;
	const struct devstate_stream_header *h;
	struct devstate_dec *d = NULL;
	uint8_t *buf = NULL;
	bool ended = false;
	int fd = -1, rc;

	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	devstate_msg(errbuf, errlen, "%s", "");
	if (!path) {
		devstate_msg(errbuf, errlen, "no path");
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		devstate_msg(errbuf, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	buf = malloc(RBUF_SIZE);
	rc = buf ? devstate_dec_new(&d) : -ENOMEM;
	if (rc < 0) {
		devstate_msg(errbuf, errlen, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read_some(fd, buf, RBUF_SIZE);
		size_t off = 0, used;

		if (n < 0) {
			rc = (int)n;
			devstate_msg(errbuf, errlen, "%s: read at offset %llu: %s",
				     path,
				     (unsigned long long)devstate_dec_offset(d),
				     strerror(-rc));
			goto out;
		}
		if (n == 0)
			break;
		while (off < (size_t)n) {
			rc = devstate_dec_feed(d, buf + off, (size_t)n - off,
					       &used);
			off += used;
			if (rc < 0) {
				devstate_msg(errbuf, errlen, "%s: %s", path,
					     devstate_dec_error(d));
				goto out;
			}
			if (rc == DEVSTATE_DEC_HEADER) {
				h = devstate_dec_header(d);
				rep->protocol = h->protocol;
				rep->protocol_version = h->proto_version;
				rep->caps = h->caps;
				memcpy(rep->ident, h->ident, h->ident_len);
				rep->ident[h->ident_len] = '\0';
			} else if (rc == DEVSTATE_DEC_SECTION) {
				report_section(rep, devstate_dec_section(d));
			} else if (rc == DEVSTATE_DEC_END) {
				ended = true;
			}
			if (fn && (rc == DEVSTATE_DEC_SECTION ||
				   rc == DEVSTATE_DEC_END)) {
				rc = emit_section(fn, opaque,
						  devstate_dec_section(d));
				if (rc < 0) {
					devstate_msg(errbuf, errlen,
						     "%s: stopped by the caller (%d)",
						     path, rc);
					goto out;
				}
			}
		}
	}
	rep->stream_bytes = devstate_dec_offset(d);
	if (!ended) {
		rc = -EINVAL;
		if (!devstate_dec_header(d))
			devstate_msg(errbuf, errlen, "%s: truncated: no END section (%s)",
				     path, rep->stream_bytes ?
				     "incomplete header" : "empty file");
		else
			devstate_msg(errbuf, errlen, "%s: truncated: no END section",
				     path);
		goto out;
	}
	rc = 0;
out:
	if (rep->stream_bytes == 0 && d)
		rep->stream_bytes = devstate_dec_offset(d);
	devstate_dec_free(d);
	free(buf);
	close(fd);
	return rc;
}

DEVSTATE_EXPORT int devstate_verify_file(const char *path,
					 struct devstate_verify_report *rep,
					 char *errbuf, size_t errlen)
{
	return scan_file(path, NULL, NULL, rep, errbuf, errlen);
}

DEVSTATE_EXPORT int devstate_inspect_file(const char *path,
					  devstate_section_fn fn, void *opaque,
					  struct devstate_verify_report *rep,
					  char *errbuf, size_t errlen)
{
	if (!fn) {
		devstate_msg(errbuf, errlen, "no callback");
		return -EINVAL;
	}
	return scan_file(path, fn, opaque, rep, errbuf, errlen);
}

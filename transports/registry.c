/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The transport registry: a device string "scheme:args" becomes a
 * transport.  One static table; the first entry is the default. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "transports/transport.h"

const struct devstate_transport_ops *const devstate_transports[] = {
	&devstate_fake_ops,
	&devstate_file_ops,
	&devstate_vfio_ops,
	NULL,
};

int devstate_transport_err(char *err, size_t errlen, int rc,
			   const char *prefix, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || !errlen)
		return rc;
	n = snprintf(err, errlen, "%s", prefix);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int devstate_transport_open(const char *uri,
			    const struct devstate_transport_ops **ops,
			    void **priv, char *err, size_t errlen)
{
	const char *colon;
	size_t n;
	unsigned i;

	if (!uri || !*uri) {
		devstate_msg(err, errlen, "empty device string");
		return -EINVAL;
	}
	colon = strchr(uri, ':');
	if (!colon) {
		devstate_msg(err, errlen,
			     "device string '%s' has no scheme (fake:, file:, vfio:)",
			     uri);
		return -EINVAL;
	}
	n = (size_t)(colon - uri);
	for (i = 0; devstate_transports[i]; i++) {
		const struct devstate_transport_ops *t = devstate_transports[i];
		int rc;

		if (strlen(t->name) != n || strncmp(t->name, uri, n))
			continue;
		rc = t->open(colon + 1, priv, err, errlen);
		if (rc < 0)
			return rc;
		*ops = t;
		return 0;
	}
	devstate_msg(err, errlen, "unknown device type '%.*s' in '%s'",
		     (int)n, uri, uri);
	return -ENODEV;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* devstate-cli info: the transport's own region table (VFIO devices). */
#include "config.h"

#include "tools/cli.h"

void info_raw_regions(struct devstate_device *dev, struct json *j)
{
	(void)dev;
	(void)j;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * devstate-cli info: the transport's own region table.  For a VFIO device
 * every region the kernel describes (index, flags, size, offset, the
 * type/subtype of its capability chain, sparse mmap areas), a small
 * "lspci -v" for VFIO.  Public API only.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

/* vfio-pci's fixed indexes (VFIO_PCI_*_REGION_INDEX). */
static const char *const pci_region_names[] = {
	"bar0", "bar1", "bar2", "bar3", "bar4", "bar5", "rom", "config", "vga",
};

static const char *region_name(const struct devstate_vfio_info *info,
			       uint32_t index, char *buf, size_t len)
{
	if ((info->flags & DEVSTATE_VFIO_DEVICE_PCI) &&
	    index < sizeof(pci_region_names) / sizeof(pci_region_names[0]))
		return pci_region_names[index];
	snprintf(buf, len, "region%u", index);
	return buf;
}

static const char *device_flags(uint32_t flags, char *buf, size_t len)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ DEVSTATE_VFIO_DEVICE_PCI, "pci" },
		{ DEVSTATE_VFIO_DEVICE_PLATFORM, "platform" },
		{ DEVSTATE_VFIO_DEVICE_AMBA, "amba" },
		{ DEVSTATE_VFIO_DEVICE_CCW, "ccw" },
		{ DEVSTATE_VFIO_DEVICE_AP, "ap" },
		{ DEVSTATE_VFIO_DEVICE_FSL_MC, "fsl-mc" },
		{ DEVSTATE_VFIO_DEVICE_RESET, "reset" },
		{ DEVSTATE_VFIO_DEVICE_CAPS, "caps" },
	};
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(flags & names[i].bit))
			continue;
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0,
					 "%s%s", used ? "," : "",
					 names[i].name);
		flags &= ~names[i].bit;
	}
	if (flags && used < len)
		snprintf(buf + used, len - used, "%s0x%x", used ? "," : "",
			 flags);
	else if (!used)
		snprintf(buf, len, "none");
	return buf;
}

static const char *region_flags(uint32_t flags, char *buf, size_t len)
{
	snprintf(buf, len, "%c%c%c",
		 flags & DEVSTATE_VFIO_REGION_READ ? 'r' : '-',
		 flags & DEVSTATE_VFIO_REGION_WRITE ? 'w' : '-',
		 flags & DEVSTATE_VFIO_REGION_MMAP ? 'm' : '-');
	return buf;
}

static const char *region_type(const struct devstate_vfio_region *r,
			       char *buf, size_t len)
{
	if (!r->has_type)
		return "-";
	if (r->state_region >= 0)
		snprintf(buf, len, "%u/%u %s", r->type, r->subtype,
			 devstate_region_name((enum devstate_region)r->state_region));
	else if (r->type & 0x80000000u)	/* PCI vendor type */
		snprintf(buf, len, "0x%x/0x%x", r->type, r->subtype);
	else
		snprintf(buf, len, "%u/%u", r->type, r->subtype);
	return buf;
}

static void print_text(const struct devstate_vfio_info *info,
		       struct devstate_device *dev)
{
	char fl[96], nbuf[24], rf[8], ty[48], h[16], sz[48];
	unsigned nstate = 0;
	const char *name;
	uint32_t i, a;

	printf("vfio:       %s; %u regions, %u irqs%s%s\n",
	       device_flags(info->flags, fl, sizeof(fl)), info->num_regions,
	       info->num_irqs, info->iommu[0] ? "; iommu " : "",
	       info->iommu);
	printf("device regions:\n");
	printf("  %-5s %-8s %-5s %-20s %-16s %s\n", "index", "name", "flags",
	       "size", "offset", "type/subtype");
	for (i = 0; i < info->num_regions; i++) {
		struct devstate_vfio_region r;

		if (devstate_device_vfio_region(dev, i, &r) < 0)
			break;
		name = region_name(info, i, nbuf, sizeof(nbuf));
		if (r.status) {
			printf("  %-5u %-8s %-5s %-20s %-16s %s\n", i, name,
			       "-", "-", "-", "-");
			printf("        no such region: %s\n",
			       strerror(-r.status));
			continue;
		}
		if (r.size)
			snprintf(sz, sizeof(sz), "0x%" PRIx64 " (%s)", r.size,
				 cli_human(h, sizeof(h), r.size));
		else
			snprintf(sz, sizeof(sz), "0");
		printf("  %-5u %-8s %-5s %-20s 0x%-14" PRIx64 " %s\n", i,
		       name, region_flags(r.flags, rf, sizeof(rf)), sz,
		       r.offset, region_type(&r, ty, sizeof(ty)));
		if (r.state_region >= 0)
			nstate++;
		if (r.msix_mappable)
			printf("        msix-mappable: the MSI-X table may be mapped\n");
		if (r.sparse) {
			printf("        sparse mmap: %u area%s", r.nr_areas,
			       r.nr_areas == 1 ? "" : "s");
			for (a = 0; a < r.nr_areas && a < DEVSTATE_VFIO_AREAS_MAX;
			     a++)
				printf(" [0x%" PRIx64 ", 0x%" PRIx64 ")",
				       r.areas[a].offset,
				       r.areas[a].offset + r.areas[a].size);
			if (r.nr_areas > DEVSTATE_VFIO_AREAS_MAX)
				printf(" ...");
			printf("\n");
		}
		if (r.other_caps)
			printf("        %u other capabilit%s\n", r.other_caps,
			       r.other_caps == 1 ? "y" : "ies");
	}
	if (!info->state_searched)
		printf("device-state regions: not searched (a CCW device: its region type %u is VFIO_REGION_TYPE_CCW)\n",
		       info->state_type);
	else if (!nstate && devstate_device_protocol(dev) == DEVSTATE_PROTOCOL_MIG2)
		printf("device-state regions: none (not needed: the device migrates by the kernel's migration uAPI v2)\n");
	else if (!nstate)
		printf("device-state regions: none (no region has type %u with subtype ctl=1, config=2, memory=3 or bitmap=4)\n",
		       info->state_type);
	else
		printf("device-state regions: %u of type %u\n", nstate,
		       info->state_type);
}

static void print_json(const struct devstate_vfio_info *info,
		       struct devstate_device *dev, struct json *j)
{
	char fl[96], name[24];
	uint32_t i, a;

	json_obj(j, "vfio");
	json_u64(j, "flags", info->flags);
	json_str(j, "flag_names", device_flags(info->flags, fl, sizeof(fl)));
	json_u64(j, "num_regions", info->num_regions);
	json_u64(j, "num_irqs", info->num_irqs);
	json_str(j, "iommu", info->iommu[0] ? info->iommu : NULL);
	json_u64(j, "state_type", info->state_type);
	json_bool(j, "state_searched", info->state_searched);
	json_end_obj(j);

	json_arr(j, "device_regions");
	for (i = 0; i < info->num_regions; i++) {
		struct devstate_vfio_region r;

		if (devstate_device_vfio_region(dev, i, &r) < 0)
			break;
		json_obj(j, NULL);
		json_u64(j, "index", i);
		json_str(j, "name", region_name(info, i, name, sizeof(name)));
		if (r.status) {
			json_bool(j, "present", false);
			json_u64(j, "errno", (uint64_t)-r.status);
			json_str(j, "error", strerror(-r.status));
			json_end_obj(j);
			continue;
		}
		json_bool(j, "present", true);
		json_u64(j, "flags", r.flags);
		json_bool(j, "read", r.flags & DEVSTATE_VFIO_REGION_READ);
		json_bool(j, "write", r.flags & DEVSTATE_VFIO_REGION_WRITE);
		json_bool(j, "mmap", r.flags & DEVSTATE_VFIO_REGION_MMAP);
		json_u64(j, "size", r.size);
		json_u64(j, "offset", r.offset);
		if (r.has_type) {
			json_u64(j, "type", r.type);
			json_u64(j, "subtype", r.subtype);
		} else {
			json_null(j, "type");
			json_null(j, "subtype");
		}
		if (r.state_region >= 0)
			json_str(j, "state_region",
				 devstate_region_name((enum devstate_region)r.state_region));
		else
			json_null(j, "state_region");
		json_bool(j, "msix_mappable", r.msix_mappable);
		if (r.sparse) {
			json_u64(j, "sparse_areas", r.nr_areas);
			json_arr(j, "sparse");
			for (a = 0; a < r.nr_areas && a < DEVSTATE_VFIO_AREAS_MAX;
			     a++) {
				json_obj(j, NULL);
				json_u64(j, "offset", r.areas[a].offset);
				json_u64(j, "size", r.areas[a].size);
				json_end_obj(j);
			}
			json_end_arr(j);
		} else {
			json_null(j, "sparse");
		}
		json_u64(j, "other_caps", r.other_caps);
		json_end_obj(j);
	}
	json_end_arr(j);
}

void info_raw_regions(struct devstate_device *dev, struct json *j)
{
	struct devstate_vfio_info info;

	/* only VFIO devices have a raw region table */
	if (devstate_device_vfio_info(dev, &info) < 0)
		return;
	if (j)
		print_json(&info, dev, j);
	else
		print_text(&info, dev);
}

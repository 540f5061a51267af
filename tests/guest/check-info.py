#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Check what the guest of tests/guest/vfio-info.sh reported.

For every emulated device, `devstate-cli info vfio:/dev/vfio/GROUP/BDF`
must show the regions vfio-pci has, with what the guest kernel's sysfs
says about the device (BAR and ROM sizes from `resource`, config space
size, I/O or memory BARs, the BAR of the MSI-X table from the capability
list in `config`), and must block migration with no-state-regions.
Usage: check-info.py RESULTS
"""
import json
import sys

EXPECTED = ("edu", "pci-testdev", "e1000e")
IORESOURCE_IO = 0x100
IORESOURCE_MEM = 0x200
PAGE = 4096
VFIO_PCI_NUM_REGIONS = 9  # BAR0-5, ROM, config, VGA


def parse(path):
    """{name: {"bdf": ..., key: [lines]}} and the global markers."""
    devices, marks = {}, []
    dev = key = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("=== device "):
                _, _, name, bdf = line.split()[:4]
                dev = devices.setdefault(name, {"bdf": bdf})
                key = None
            elif line.startswith("=== end "):
                dev = key = None
            elif line.startswith("=== "):
                marks.append(line[4:])
            elif dev is not None and line.startswith("--- "):
                key = line[4:]
                dev[key] = []
            elif dev is not None and key is not None:
                dev[key].append(line)
    return devices, marks


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, ok, what):
        if not ok:
            self.failures += 1
            print(f"FAIL: {what}")
        return ok


def msix_bir(config_hex):
    """The BAR index of the MSI-X table, from the capability list."""
    data = bytes(int(x, 16) for line in config_hex for x in line.split())
    if len(data) < 64 or not data[6] & 0x10:  # status: capability list
        return None
    off, seen = data[0x34] & 0xFC, set()
    while off and off not in seen and off + 8 <= len(data):
        seen.add(off)
        if data[off] == 0x11:
            return int.from_bytes(data[off + 4:off + 8], "little") & 7
        off = data[off + 1] & 0xFC
    return None


def check_device(c, name, d):
    tag = f"{name} {d['bdf']}"
    c.check(d.get("driver") == ["vfio-pci"], f"{tag}: bound to {d.get('driver')}, not vfio-pci")
    group = (d.get("group") or [""])[0]
    c.check(group.isdigit(), f"{tag}: no IOMMU group ({group!r})")
    c.check(d.get("info-rc") == ["1"], f"{tag}: info exit status {d.get('info-rc')}, expected 1 (blocked)")
    c.check(d.get("json-rc") == ["1"], f"{tag}: info --json exit status {d.get('json-rc')}, expected 1")

    text = "\n".join(d.get("info", []))
    for want in ("transport:  vfio", "device regions:",
                 "device-state regions: none",
                 "migratable: no",
                 "blocker:    no-state-regions: device has no device-state regions"):
        c.check(want in text, f"{tag}: info does not say {want!r}")

    try:
        j = json.loads("\n".join(d.get("json", [])))
    except ValueError as e:
        c.check(False, f"{tag}: info --json is not JSON: {e}")
        return
    c.check(j.get("transport") == "vfio", f"{tag}: transport {j.get('transport')}")
    c.check(j.get("migratable") is False, f"{tag}: migratable {j.get('migratable')}")
    b = j.get("blocker") or {}
    c.check(b.get("name") == "no-state-regions", f"{tag}: blocker {b}")
    c.check(all(not r["present"] for r in j.get("regions", [])),
            f"{tag}: a device-state region was found: {j.get('regions')}")
    v = j.get("vfio") or {}
    c.check("pci" in v.get("flag_names", ""), f"{tag}: not a vfio-pci device: {v}")
    c.check(v.get("iommu") == "type1v2", f"{tag}: IOMMU type {v.get('iommu')}, expected type1v2")
    c.check(v.get("state_type") == 2 and v.get("state_searched") is True,
            f"{tag}: device-state search {v}")

    regs = j.get("device_regions") or []
    c.check(len(regs) == v.get("num_regions") and len(regs) >= VFIO_PCI_NUM_REGIONS,
            f"{tag}: {len(regs)} regions listed, device has {v.get('num_regions')}")
    if len(regs) < VFIO_PCI_NUM_REGIONS:
        return
    c.check([r["index"] for r in regs] == list(range(len(regs))), f"{tag}: region indexes")
    for r in regs:
        if r["present"]:
            c.check(r["type"] is None and r["state_region"] is None and r["sparse"] is None,
                    f"{tag}: region {r['index']} has caps the kernel does not give vfio-pci BARs: {r}")

    # BARs and ROM against sysfs resource lines 0-6
    res = []
    for line in d.get("resource", []):
        start, end, flags = (int(x, 16) for x in line.split())
        res.append((start, end, flags))
    c.check(len(res) >= 7, f"{tag}: sysfs resource has {len(res)} lines")
    bir = msix_bir(d.get("config", []))
    if name == "e1000e":
        c.check(bir is not None, f"{tag}: no MSI-X capability in config space")
    for i, (start, end, flags) in enumerate(res[:7]):
        r = regs[i]
        size = end - start + 1 if end else 0
        what = f"{tag}: region {i} ({r['name']})"
        c.check(r["present"], f"{what}: missing")
        c.check(r["size"] == size, f"{what}: size {r['size']:#x}, sysfs says {size:#x}")
        if i == 6:
            c.check(r["read"] == bool(size) and not r["write"] and not r["mmap"],
                    f"{what}: ROM flags {r['flags']:#x}")
            continue
        if not size:
            c.check(r["flags"] == 0, f"{what}: unimplemented BAR with flags {r['flags']:#x}")
            continue
        c.check(r["read"] and r["write"], f"{what}: not read/write")
        if flags & IORESOURCE_IO:
            c.check(not r["mmap"], f"{what}: I/O BAR offered for mmap")
        elif flags & IORESOURCE_MEM and size >= PAGE:
            c.check(r["mmap"], f"{what}: {size:#x}-byte memory BAR not mmappable")
        c.check(r["msix_mappable"] == (i == bir),
                f"{what}: msix_mappable {r['msix_mappable']}, MSI-X table is in BAR {bir}")

    cfg = regs[7]
    size = int((d.get("config-size") or ["-1"])[0])
    c.check(cfg["name"] == "config" and cfg["size"] == size,
            f"{tag}: config region {cfg['size']:#x} bytes, sysfs config {size:#x}")
    c.check(cfg["read"] and cfg["write"] and not cfg["mmap"], f"{tag}: config flags {cfg['flags']:#x}")
    vga = regs[8]
    c.check(vga["name"] == "vga" and not vga["present"] and vga.get("errno") == 22,
            f"{tag}: VGA region should answer EINVAL: {vga}")

    if name == "edu":
        c.check(regs[0]["size"] == 1 << 20 and regs[0]["mmap"], f"{tag}: BAR0 is not 1 MiB mmappable")
    if name == "e1000e":
        c.check(bir is not None and regs[bir]["msix_mappable"] and regs[bir]["mmap"],
                f"{tag}: MSI-X BAR {bir} without MSIX_MAPPABLE")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    devices, marks = parse(sys.argv[1])
    c = Checker()
    c.check("done" in marks, "the guest did not finish its run")
    c.check(not [m for m in marks if m.startswith("insmod-failed")],
            f"module loading failed: {marks}")
    passed = 0
    for name in EXPECTED:
        if c.check(name in devices, f"{name}: the guest did not find the device"):
            before = c.failures
            check_device(c, name, devices[name])
            if c.failures == before:
                d = devices[name]
                passed += 1
                print(f"ok: {name} {d['bdf']} (group {d['group'][0]}): "
                      "region table matches sysfs, blocker no-state-regions")
    print(f"{passed} passed, {len(EXPECTED) - passed} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())

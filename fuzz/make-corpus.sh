#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build the fuzzers' seed corpus: small valid streams of every protocol
# version x caps x codec combination, saved by devstate-cli from fake
# devices (plus all-zero devices, for the zero-chunk marker), and seeds
# for the load, save (hostile device) and VFIO targets derived from them.
#   fuzz/make-corpus.sh CLI [OUTDIR]     (OUTDIR defaults to fuzz/corpus)
# The corpus in the tree is this script's output; rerun it when the
# stream format changes.
set -eu
cli=${1:?usage: make-corpus.sh path/to/devstate-cli [outdir]}
here=$(cd "$(dirname "$0")" && pwd)
out=${2:-$here/corpus}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rm -rf "$out/stream" "$out/load" "$out/save" "$out/vfio" "$out/mig2"
mkdir -p "$out/stream" "$out/load" "$out/save" "$out/vfio" "$out/mig2"

n=0
for v in 1 2; do
	for caps in none device-memory system-memory device-memory+system-memory; do
		for codec in raw deflate zstd; do
			for zero in no yes; do
				# zero=yes: mostly-zero chunks, so deflate and
				# zstd sections (and zero markers) appear
				name="v$v-$caps-$codec"
				[ "$zero" = yes ] && name="$name-zero"
				dev="fake:version=$v,caps=$caps,memory=8K,chunk=2K,config=200,bitmap=16,sysmem=128K,workload=1,seed=$((n + 1)),zero=$zero"
				"$cli" save --ram 128K --passes 1 --codec "$codec" \
					"$dev" "$tmp/$name.ds" >/dev/null
				"$cli" verify "$tmp/$name.ds" >/dev/null
				cp "$tmp/$name.ds" "$out/stream/$name"
				n=$((n + 1))
			done
		done
	done
done

# Protocol family 2 (the kernel's migration uAPI v2): one stream per flag
# set and codec, with pre-copy passes where the flags allow them.
for flags in stop-copy stop-copy+p2p stop-copy+pre-copy all; do
	for codec in raw zstd; do
		name="mig2-$flags-$codec"
		dev="fake:mig2=$flags,memory=8K,config=200,workload=1,seed=$((n + 1))"
		"$cli" save --passes 2 --codec "$codec" "$dev" "$tmp/$name.ds" \
			>/dev/null
		"$cli" verify "$tmp/$name.ds" >/dev/null
		cp "$tmp/$name.ds" "$out/stream/$name"
		n=$((n + 1))
	done
done

# Load target: a selector byte, then the stream.  Selectors (see
# fuzz/fuzz-load.c): whole feed, CRCs fixed up after mutation; 1-byte
# pieces, no mmap, CRCs fixed up.
for f in "$out"/stream/*; do
	b=$(basename "$f")
	for sel in 08 2c; do
		{ printf "\\$(printf '%03o' "0x$sel")"; cat "$f"; } >"$out/load/$b-$sel"
	done
done

# Save target: scripts of a hostile device that starts out plausible
# (fuzz/fuzz-save.c reads them: regions, version, caps, then answers).
# byte: 0 = no error; region bytes; size codes (fz_size: 0..31 literal).
hostile() {
	printf "$2" >"$out/save/$1"
}
#       regions: err, CTL, CONFIG(128), MEMORY(256), BITMAP(64); version; caps
hostile v2-all   '\0\0\10\30\0\0\2\0\3\0\20\0\20\0\20\0\10\0\0\0\0\0\0\0\0\2\2\2\4\4\5\0'
hostile v1-all   '\0\0\10\30\0\0\1\0\3\0\20\0\20\0\20\0\10\0\0\0\0\0\0\0\0\2\2\2\4\4\5\0'
hostile v2-none  '\0\0\10\1\1\0\2\0\0\0\20\0\0\0\0\0\0\0\0\0\0\0\0\5\0'
hostile v2-mmap  '\0\0\12\32\2\0\2\0\3\0\0\0\0\0\20\0\0\0\20\0\0\0\0\2\2\3\3\4\1\1\5\0'
hostile v1-huge  '\0\0\14\377\4\377\0\0\1\0\3\0\20\0\20\0\0\0\0\0\0\0\2\2\2\5\0'

# VFIO target: scripted kernel answers (layout in fuzz/fuzz-vfio.c): a
# device with the four device-state regions found through their type
# capabilities (argsz retry included), variants with a sparse mmap area,
# a CCW device, protocol version 1, and a capability chain that loops.
python3 - "$out/vfio" <<'PY'
import struct, sys, os
out = sys.argv[1]

def info(flags, nregions):
    return b"\0" + struct.pack("<IBB", flags, nregions, 0)

def region(index, size, flags, caps):
    """the answers to both GET_REGION_INFO calls (argsz 32, then more)"""
    b = b""
    full = 32 + len(caps)
    if caps:
        fixed = struct.pack("<IIIIQQ", full, flags | 8, index, 32, size,
                            index << 16)
        b += b"\0" + struct.pack("<H", 32) + fixed
    fixed = struct.pack("<IIIIQQ", full, flags | (8 if caps else 0), index,
                        32 if caps else 0, size, index << 16)
    ans = fixed + caps
    return b + b"\0" + struct.pack("<H", len(ans)) + ans

def typecap(sub, nxt=0, typ=2):
    return struct.pack("<HHIII", 2, 1, nxt, typ, sub)

def sparse(areas, nxt=0):
    c = struct.pack("<HHIII", 1, 1, nxt, len(areas), 0)
    for o, sz in areas:
        c += struct.pack("<QQ", o, sz)
    return c

def pread(data):
    return b"\0\0" + data

RW = 3
sizes = [80, 256, 4096, 64]

def device(version=2, caps=3, flags=2, mmap_memory=False, loop=False):
    s = info(flags, 4)
    for i in range(4):
        f = RW
        c = typecap(i + 1)
        if i == 2 and mmap_memory:
            f |= 4
            c = typecap(3, 48) + sparse([(0, 4096)])
        if i == 1 and loop:
            c = typecap(2, 32)
        s += region(i, sizes[i], f, c)
    s += pread(struct.pack("<I", version)) + pread(struct.pack("<I", caps))
    # config size, then a few plausible answers
    s += pread(struct.pack("<Q", 64)) + b"\0\0" * 8
    return s

seeds = {
    "v2-all": device(),
    "v1-all": device(version=1),
    "v2-none": device(caps=0),
    "v2-sparse-mmap": device(mmap_memory=True),
    "ccw": device(flags=0x10),
    "loop": device(loop=True),
    "no-regions": info(2, 0),
}
# uAPI v2 (probed first): a PCI device without regions whose
# VFIO_DEVICE_FEATURE answers (0xe0) say flags, states and data fds, and
# whose data fd reads 64 bytes, then nothing more
FEAT = b"\xe0"
r64 = b"\0\x40" + bytes(range(64)) + b"\0\0" * 2
v2 = info(2, 0) + FEAT + b"\1" + (FEAT + b"\2") * 2
seeds["mig2-stop-copy"] = (v2 + FEAT + b"\0" + FEAT + b"\x80" + r64
                           + FEAT + b"\0")
v2 = info(2, 0) + FEAT + b"\5" + (FEAT + b"\2") * 2
seeds["mig2-pre-copy"] = (v2 + FEAT + b"\x80" + b"\0" + (b"\x10" + b"\0" * 7) * 2
                          + r64 + FEAT + b"\0" + r64 + FEAT + b"\0")
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
PY
# mig2 target: scripts of a hostile uAPI v2 device whose saves complete
# (layout in fuzz/fuzz-mig2.c; every call takes an error byte, 0 = none,
# then its answer): probe flags, state at open, state at setup, the
# arcs to PRE_COPY with the flag, harness steps (0 pending, 2 iterate,
# 5 stop, 6 done) with their answers, the stop-copy reads (0x40: 64 bytes
# follow; 0: end), the arc to STOP; the last byte picks the codec.
python3 - "$out/mig2" <<'PY'
import os, sys
out = sys.argv[1]
d = bytes(range(64))
read64 = b"\0\x40" + d
end = b"\0\0"
ok = b"\0"
seeds = {
    # RUNNING -> STOP -> STOP_COPY in complete
    "stop-copy": b"\0\1" + b"\0\0" * 2 + b"\6" + ok * 2 + read64 + end
                 + ok + b"\0",
    # a pending (data size) and an empty iterate after stop
    "stop-copy-stopped": b"\0\1" + b"\0\0" * 2 + b"\5" + ok * 2
                 + b"\0" + b"\0\x10" + b"\2" + read64 + end + b"\6"
                 + end + ok + b"\1",
    # PRE_COPY: pending (info), iterate, stop, pending (data size)
    "pre-copy": b"\0\5" + b"\0\0" * 2 + ok + b"\0" + b"\0\x08\x08"
                 + b"\2" + read64 + end + b"\5" + ok + b"\0" + b"\0\x10"
                 + b"\6" + read64 + end + ok + b"\2",
    # P2P and PRE_COPY: PRE_COPY -> PRE_COPY_P2P -> STOP_COPY
    "all": b"\0\7" + b"\0\0" * 2 + ok + b"\2" + read64 + read64 + end
                 + b"\5" + ok * 2 + b"\6" + read64 + end + ok + b"\0",
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
PY
echo "make-corpus: $n streams; $(ls "$out/load" | wc -l) load, $(ls "$out/save" | wc -l) save, $(ls "$out/vfio" | wc -l) vfio, $(ls "$out/mig2" | wc -l) mig2 seeds in $out"

#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# CI stage: build and run the whole suite as 32-bit x86 code (gcc -m32).
# The control layouts are where i386 and x86-64 differ (a __u64 is 4-byte
# aligned on i386), so every layout table and encode/decode is proven on
# both ABIs.  Nothing is skipped: a missing package is a failure.
#   DEVSTATE_I386_BUILD   build directory (default /tmp/devstate-build-i386)
#   DEVSTATE_I386_SETUP=0 do not touch apt (packages already there)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${DEVSTATE_I386_BUILD:-/tmp/devstate-build-i386}
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
APT="-q -o DPkg::Lock::Timeout=120"

# Packages for the i386 build (check and libbsd are Multi-Arch: same, so
# their :i386 copies install beside the amd64 ones; zlib1g-dev:i386 would
# replace the amd64 one, lib32z1-dev does not).
PKGS="gcc-multilib lib32z1-dev check:i386 libbsd-dev:i386 libdeflate-dev:i386"
# libzstd is Multi-Arch: same too, but the amd64 copy comes from the
# security mirror (no i386 index), so libzstd1:i386 of the same version
# cannot be installed beside it.  The i386 library of the main archive is
# unpacked into a private directory instead and linked by path (the
# headers are the installed amd64 ones: zstd.h is the same on both).
ZSTD32=${DEVSTATE_I386_ZSTD:-/tmp/devstate-zstd-i386}

have_all() {
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "ok installed" || return 1
	done
}

# The security mirror serves no i386 index: restrict every deb822 stanza
# that names debian-security (and has no Architectures: line yet) to amd64
# so that apt-get update does not exit 100.
restrict_security() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		grep -q debian-security "$f" || continue
		awk '
			function flush() {
				if (n) {
					if (sec && !arch)
						print "Architectures: amd64"
					n = 0
				}
				sec = 0; arch = 0
			}
			/^[ \t]*$/ { flush(); print; next }
			{ n++; if ($0 ~ /debian-security/) sec = 1
			  if ($0 ~ /^Architectures:/) arch = 1; print }
			END { flush() }
		' "$f" >"$f.new"
		if cmp -s "$f" "$f.new"; then
			rm -f "$f.new"
		else
			$sudo mv "$f.new" "$f"
			echo "30-i386: restricted debian-security in $f to amd64"
		fi
	done
	if [ -f /etc/apt/sources.list ] &&
	   grep -q '^deb [^[]*debian-security' /etc/apt/sources.list; then
		$sudo sed -i 's/^deb \([^[]*debian-security\)/deb [arch=amd64] \1/' \
			/etc/apt/sources.list
	fi
}

setup() {
	have_all && return 0
	dpkg --print-foreign-architectures | grep -qx i386 ||
		$sudo dpkg --add-architecture i386
	restrict_security
	$sudo apt-get update $APT
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y $APT $PKGS
	have_all
}

setup_zstd() {
	[ -e "$ZSTD32/libzstd.so.1" ] && [ -e "$ZSTD32/libzstd.so" ] && return 0
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -q libzstd1:i386)
	dpkg-deb -x "$tmp"/libzstd1_*_i386.deb "$tmp/root"
	mkdir -p "$ZSTD32"
	cp -a "$tmp"/root/usr/lib/i386-linux-gnu/libzstd.so.1* "$ZSTD32/"
	ln -sf libzstd.so.1 "$ZSTD32/libzstd.so"
	rm -rf "$tmp"
	[ -e "$ZSTD32/libzstd.so.1" ]
}

[ "${DEVSTATE_I386_SETUP:-1}" = 0 ] || setup
setup_zstd

start=$(date +%s)
[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
rm -rf "$b"
mkdir -p "$b"
cd "$b"
"$top/configure" -q --enable-werror \
	CC="gcc -m32" \
	PKG_CONFIG_LIBDIR=/usr/lib/i386-linux-gnu/pkgconfig:/usr/share/pkgconfig \
	ZLIB_CFLAGS=-I/usr/include ZLIB_LIBS=-lz \
	ZSTD_CFLAGS=-I/usr/include ZSTD_LIBS="-L$ZSTD32 -lzstd" \
	LDFLAGS="-L$ZSTD32 -Wl,-rpath,$ZSTD32 -Wl,-rpath-link,$ZSTD32"
# Prove we really built 32-bit code before trusting a green suite.
make -j"$(nproc)"
file tools/.libs/devstate-cli 2>/dev/null | grep -q 'ELF 32-bit' ||
	file tools/devstate-cli | grep -q 'ELF 32-bit' || {
	echo "30-i386: devstate-cli is not a 32-bit binary" >&2; exit 1; }
make -j"$(nproc)" check || { cat test-suite.log; exit 1; }
echo "30-i386: ok ($(($(date +%s) - start)) s)"

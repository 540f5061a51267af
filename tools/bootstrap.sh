#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The project's own setup command.  On a fresh Debian machine:
#   tools/bootstrap.sh demo    install dependencies, build, migrate a fake device
#   tools/bootstrap.sh check   install dependencies, build, run every test
#   tools/bootstrap.sh deps    only install the dependencies
#   tools/bootstrap.sh build   only build (into ./build)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# Debian packages and why:
#  build-essential autoconf automake libtool pkg-config: the build
#  check: unit tests; libbsd-dev: humanize_number/expand_number in the CLI
#  zlib1g-dev: CRC-32 and the deflate codec; libzstd-dev: the zstd codec
#  groff-base: man-page lint; valgrind: make check-valgrind
#  python3: JSON validation of the CLI's golden tests; xz-utils: make dist
PKGS="build-essential autoconf automake libtool pkg-config check libbsd-dev \
zlib1g-dev libzstd-dev groff-base valgrind python3 xz-utils"

deps() {
	missing=""
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	echo "bootstrap: installing$missing"
	$sudo apt-get update -q -o DPkg::Lock::Timeout=120
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
		-o DPkg::Lock::Timeout=120 $missing
}

build() {
	autoreconf -fi
	mkdir -p build
	(cd build && ../configure -q --enable-werror && make -j"$(nproc)")
}

case "${1:-}" in
deps)
	deps ;;
build)
	deps; build ;;
demo)
	deps; build
	cli=build/tools/devstate-cli
	$cli info fake:
	$cli migrate --snapshot build/demo.snap \
		'fake:memory=64M,workload=64,seed=7' 'fake:memory=64M,zero=yes'
	$cli verify build/demo.snap ;;
check)
	deps; build
	make -C build -j"$(nproc)" check || { cat build/test-suite.log; exit 1; }
	make -C build -j"$(nproc)" distcheck ;;
*)
	sed -n '3,8p' "$0"; exit 2 ;;
esac

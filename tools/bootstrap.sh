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

# Debian packages and why: tools/deps/*.txt (one package a line, with a
# comment giving its reason).
PKGS=$(sed -e 's/#.*//' tools/deps/*.txt | tr -s ' \t\n' ' ')

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
	# INITRD=No: the kernel packages need not rebuild a host boot image
	# (the guest tests build their own initramfs); saves ~90 s
	$sudo env INITRD=No DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
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
	# source -> snapshot file -> destination, under a workload
	$cli migrate --passes 4 --snapshot build/demo.snap \
		'fake:memory=64M,workload=64,seed=7' 'fake:memory=64M,zero=yes' ;;
check)
	deps; build
	make -C build -j"$(nproc)" check || { cat build/test-suite.log; exit 1; }
	make -C build -j"$(nproc)" distcheck
	# further CI stages (sanitizers, valgrind, 32-bit, fuzzing, ...)
	for stage in tools/ci.d/*.sh; do
		[ -x "$stage" ] || continue
		echo "bootstrap: stage $stage"
		"$stage"
	done ;;
*)
	sed -n '3,8p' "$0"; exit 2 ;;
esac

#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# CI stage: a fresh out-of-tree build with ASan + UBSan
# (--enable-sanitizers: -fno-sanitize-recover, so any report fails the
# test), then the whole suite.  Check keeps its fork mode, so every
# report is tied to the test that caused it; LeakSanitizer checks each
# forked test at its exit.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${DEVSTATE_SAN_BUILD:-/tmp/devstate-build-san}
start=$(date +%s)
rm -rf "$b"
mkdir -p "$b"
cd "$b"
"$top/configure" -q --enable-werror --enable-sanitizers
make -j"$(nproc)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS UBSAN_OPTIONS
make -j"$(nproc)" check || { cat test-suite.log; exit 1; }
# a sanitizer report that did not fail its test still fails the stage
if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' tests/*.log 2>/dev/null; then
	echo "10-sanitizers: sanitizer reports above" >&2
	exit 1
fi
echo "10-sanitizers: ok ($(($(date +%s) - start)) s)"

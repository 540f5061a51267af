#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# CI stage: the whole suite under valgrind memcheck (make check-valgrind:
# full leak check, any error fails; Check in no-fork mode), in the plain
# build bootstrap.sh made.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${DEVSTATE_BUILD:-$top/build}
start=$(date +%s)
command -v valgrind >/dev/null || { echo "20-valgrind: valgrind is not installed" >&2; exit 1; }
make -C "$b" -j"$(nproc)" check-valgrind || { cat "$b/test-suite.log"; exit 1; }
echo "20-valgrind: ok ($(($(date +%s) - start)) s)"

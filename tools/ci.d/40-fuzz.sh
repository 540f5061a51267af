#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# CI stage: build the libFuzzer targets (clang, ASan + UBSan) with
# `make fuzz`, rebuild the seed corpus from this tree's devstate-cli (so
# it always speaks the current format) and run each target for
# DEVSTATE_FUZZ_SECONDS (default 60) on it and on the corpus in the tree.
# Any crash, leak, timeout or UBSan report fails the stage.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${DEVSTATE_BUILD:-$top/build}
start=$(date +%s)
make -C "$b" -j"$(nproc)" fuzz
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
"$top/fuzz/make-corpus.sh" "$b/tools/devstate-cli" "$seeds"
cd "$b"
FUZZ_EXTRA_CORPUS=$seeds FUZZ_ARTIFACTS=$b/fuzz-artifacts \
	"$top/fuzz/run.sh" "$b/fuzz-build" "${DEVSTATE_FUZZ_SECONDS:-60}"
echo "40-fuzz: ok ($(($(date +%s) - start)) s)"

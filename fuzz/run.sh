#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run every libFuzzer target for a bounded time from the seed corpus.
#   fuzz/run.sh FUZZBUILD [SECONDS] [TARGET...]
# FUZZBUILD is a build tree configured with CC=clang --enable-fuzzing (or
# one whose `make fuzz` made FUZZBUILD/fuzz-build).  SECONDS defaults to
# 60 per target.  The seed corpus (fuzz/corpus/TARGET) is copied to a
# scratch directory first, so the tree never changes; what a run finds is
# left in $FUZZ_ARTIFACTS (default ./fuzz-artifacts) and the run fails.
# Any crash, leak, timeout (> 10 s for one input), out-of-memory (> 2 GB)
# or UBSan report (-fno-sanitize-recover) is a failure.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
b=${1:?usage: fuzz/run.sh FUZZBUILD [SECONDS] [TARGET...]}
secs=${2:-60}
[ $# -ge 2 ] && shift 2 || shift $#
targets=${*:-stream load save vfio mig2}
[ -x "$b/fuzz/fuzz-stream" ] || b=$b/fuzz-build
art=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
mkdir -p "$art"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for t in $targets; do
	bin=$b/fuzz/fuzz-$t
	[ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz)" >&2; exit 1; }
	mkdir -p "$work/$t"
	if [ -d "$here/corpus/$t" ]; then
		cp "$here/corpus/$t"/* "$work/$t"/ 2>/dev/null || true
	fi
	if [ -n "${FUZZ_EXTRA_CORPUS:-}" ] && [ -d "$FUZZ_EXTRA_CORPUS/$t" ]; then
		cp "$FUZZ_EXTRA_CORPUS/$t"/* "$work/$t"/ 2>/dev/null || true
	fi
	log=$art/fuzz-$t.log
	start=$(date +%s)
	rc=0
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-malloc_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix="$art/$t-" "$work/$t" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 |
	      sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/\1 edges, \2 features, corpus \3/p')
	if [ "$rc" -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|invariant failed' "$log"; then
		echo "fuzz-$t: FAILED after $(($(date +%s) - start)) s (exit $rc); log: $log"
		grep -E 'ERROR|runtime error|invariant|SUMMARY|Test unit written' "$log" | head -20
		status=1
	else
		echo "fuzz-$t: ok, ${execs:-?} executions in $(($(date +%s) - start)) s, ${cov:-coverage unknown}"
	fi
done
exit $status

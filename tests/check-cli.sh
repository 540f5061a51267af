#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Golden-output tests for devstate-cli.  Each tests/cli/NAME.cmd is a shell
# fragment run with $CLI (the built tool) in a scratch directory; its
# standard output must equal NAME.out (after replacing timings), its exit
# status NAME.status.  A failing command must print exactly one line on
# standard error, starting "devstate-cli: "; a succeeding one none.
# Cases whose name contains "json" must print valid JSON.
set -u
CLI="${top_builddir:-.}/tools/devstate-cli"
dir="${top_srcdir:-.}/tests/cli"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0

normalize() {
	sed -E -e 's/stopped for [0-9.]+ ms/stopped for N ms/' \
	       -e 's/"stopped_seconds":[0-9.]+/"stopped_seconds":N/' "$1"
}

for cmd in "$dir"/*.cmd; do
	name=$(basename "$cmd" .cmd)
	n=$((n + 1))
	work="$tmp/$name"
	mkdir -p "$work"
	(cd "$work" && CLI="$CLI" sh "$cmd") >"$work/.out" 2>"$work/.err"
	status=$?
	want=$(cat "$dir/$name.status")
	normalize "$work/.out" >"$work/.norm"
	if ! diff -u "$dir/$name.out" "$work/.norm"; then
		echo "FAIL: $name: standard output differs"
		fail=$((fail + 1))
		continue
	fi
	if [ "$status" != "$want" ]; then
		echo "FAIL: $name: exit status $status, expected $want"
		cat "$work/.err"
		fail=$((fail + 1))
		continue
	fi
	lines=$(wc -l <"$work/.err")
	if [ "$want" = 0 ] && [ "$lines" != 0 ]; then
		echo "FAIL: $name: succeeded but wrote to standard error:"
		cat "$work/.err"
		fail=$((fail + 1))
		continue
	fi
	if [ "$want" != 0 ]; then
		if [ "$lines" != 1 ] || ! grep -q '^devstate-cli: ' "$work/.err"; then
			echo "FAIL: $name: error output is not one 'devstate-cli: ' line:"
			cat "$work/.err"
			fail=$((fail + 1))
			continue
		fi
	fi
	case "$name" in
	*json*)
		# a usage error prints no JSON at all
		[ "$want" = 2 ] && [ ! -s "$work/.out" ] && { echo "ok: $name"; continue; }
		if ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/.out"; then
			echo "FAIL: $name: output is not valid JSON"
			fail=$((fail + 1))
			continue
		fi ;;
	esac
	echo "ok: $name"
done
echo "$((n - fail)) passed, $fail failed"
[ "$fail" = 0 ]

#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Man pages: every page renders without a single warning (groff exits 0
# even when it warns, so any output on stderr fails), every .so link
# points at a page, and every function in devstate.h has a page.
set -u
src="${top_srcdir:-.}"
command -v groff >/dev/null 2>&1 || { echo "groff not installed"; exit 77; }
fail=0 n=0
for p in "$src"/man/*.[0-9]; do
	n=$((n + 1))
	first=$(head -n 1 "$p")
	case "$first" in
	.so\ *)
		target="$src/man/$(basename "${first#.so }")"
		[ -f "$target" ] || { echo "FAIL: $p: .so target $target missing"; fail=1; }
		continue ;;
	esac
	out=$(groff -man -ww -z "$p" 2>&1)
	if [ -n "$out" ]; then
		echo "FAIL: $p:"; echo "$out"; fail=1
	fi
done
for fn in $(grep -oE '\bdevstate_[a-z0-9_]+\(' "$src/include/devstate.h" | tr -d '(' | sort -u); do
	[ -f "$src/man/$fn.3" ] || { echo "FAIL: no man page for $fn"; fail=1; }
done
[ $fail = 0 ] && echo "ok: $n pages lint clean, every public function documented"
exit $fail

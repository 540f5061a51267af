#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every dynamic symbol libdevstate.so exports must be devstate_-prefixed
# and declared in the public header; every function the header declares
# must be exported.
set -u
lib="${top_builddir:-.}/.libs/libdevstate.so"
hdr="${top_srcdir:-.}/include/devstate.h"
NM="${NM:-nm}"
[ -f "$lib" ] || { echo "no $lib (shared library disabled?)"; exit 77; }
syms=$($NM -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ { print $3 }' | sed 's/@.*//' | sort -u)
[ -n "$syms" ] || { echo "FAIL: no exported symbols found in $lib"; exit 1; }
fail=0
for s in $syms; do
	case "$s" in
	DEVSTATE_*) continue ;;		# version node
	devstate_*) ;;
	*) echo "FAIL: exported symbol without devstate_ prefix: $s"; fail=1; continue ;;
	esac
	grep -q "\b$s(" "$hdr" || { echo "FAIL: $s is exported but not declared in devstate.h"; fail=1; }
done
# functions declared in the header (name followed by '(' at the start of a
# declaration line or after a return type)
decl=$(grep -oE '\bdevstate_[a-z0-9_]+\(' "$hdr" | tr -d '(' | sort -u)
for d in $decl; do
	echo "$syms" | grep -qx "$d" || { echo "FAIL: $d is declared in devstate.h but not exported"; fail=1; }
done
n=$(echo "$syms" | wc -l)
[ $fail -eq 0 ] && echo "ok: $n exported symbols, all devstate_ and declared"
exit $fail

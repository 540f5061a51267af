#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The public header stands alone: C89 and C99 pedantic, and C++.
set -eu
hdr="${top_srcdir:-.}/include"
CC="${CC:-cc}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <devstate.h>\nint main(void) { return devstate_state_name(0) == 0; }\n' > "$tmp/t.c"
for std in c89 c99 c11; do
	$CC -std=$std -pedantic -Wall -Wextra -Werror -I"$hdr" -c "$tmp/t.c" -o "$tmp/t.o"
	echo "ok: -std=$std -pedantic"
done
if command -v c++ >/dev/null 2>&1; then
	cp "$tmp/t.c" "$tmp/t.cc"
	c++ -std=c++11 -pedantic -Wall -Wextra -Werror -I"$hdr" -c "$tmp/t.cc" -o "$tmp/t2.o"
	nm "$tmp/t2.o" | grep -q ' U devstate_state_name$' || { echo "FAIL: C++ sees a mangled name (no extern \"C\")"; exit 1; }
	echo "ok: C++ with C linkage"
fi

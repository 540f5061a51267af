#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every benchmark row on tiny sizes, so that the benchmark cannot rot:
# it must run, print every row and the targets line, and exit 0.  The
# figures themselves are not judged here (a measurement, not a test).
set -u
bench="${top_builddir:-.}/bench/devstate-bench"
[ -x "$bench" ] || { echo "smoke: $bench not built"; exit 99; }
out=$(DEVSTATE_CLI="${top_builddir:-.}/tools/devstate-cli" "$bench" --smoke) || {
	echo "smoke: devstate-bench --smoke failed"; echo "$out"; exit 1; }
echo "$out"
for r in 1 2 3 4 5 6 7 8; do
	echo "$out" | grep -q "^$r " || { echo "smoke: row $r missing"; exit 1; }
done
echo "$out" | grep -q 'devstate-cli migrate, source stopped' || {
	echo "smoke: row 8 (devstate-cli migrate) did not run"; exit 1; }
echo "$out" | tail -n 1 | grep -Eq '^targets: [0-9]+ met, [0-9]+ missed$' || {
	echo "smoke: no targets line"; exit 1; }
json=$(DEVSTATE_CLI="${top_builddir:-.}/tools/devstate-cli" "$bench" --smoke --json) || exit 1
if command -v python3 >/dev/null 2>&1; then
	echo "$json" | head -n 1 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["rows"]) > 10' || {
		echo "smoke: --json is not valid JSON"; exit 1; }
fi
exit 0

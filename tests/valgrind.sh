#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# LOG_COMPILER for `make check-valgrind`: run one test under valgrind
# memcheck (full leak check; any error or leak fails the test).  Check
# runs in no-fork mode so that valgrind sees each test's own process.
# Shell tests (*.sh) run directly: they are not C code (the programs
# they start are covered by the suites).
set -eu
prog=$1
shift
case "$prog" in
*.sh)
	exec "$prog" "$@" ;;
esac
CK_FORK=no
export CK_FORK
VALGRIND=${VALGRIND:-valgrind}
set -- "$prog" "$@"
# a libtool wrapper script: valgrind the real program behind it
if head -c 4096 "$prog" 2>/dev/null | grep -q 'libtool wrapper'; then
	set -- "${top_builddir:-.}/libtool" --mode=execute "$VALGRIND" \
		--quiet --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect,possible \
		--show-leak-kinds=definite,indirect,possible \
		--track-origins=yes --num-callers=30 "$@"
	exec "$@"
fi
exec "$VALGRIND" --quiet --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect,possible \
	--show-leak-kinds=definite,indirect,possible \
	--track-origins=yes --num-callers=30 "$@"

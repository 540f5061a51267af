# SPDX-License-Identifier: LGPL-2.1-or-later
# Included from the top-level Makefile.am.
#
# The benchmark (bench/README): `make bench` builds and runs it
# (BENCH_FLAGS=--json for JSON); never installed.  `make check` runs it
# on tiny sizes (--smoke) so that it cannot rot.  A noinst program (not
# EXTRA_PROGRAMS, which fuzz/local.mk owns), so -Werror sees it in every
# build.
noinst_PROGRAMS = bench/devstate-bench
bench_devstate_bench_SOURCES = bench/devstate-bench.c
bench_devstate_bench_CFLAGS = $(AM_CFLAGS)
bench_devstate_bench_LDADD = libdevstate-internal.la

BENCH_FLAGS =
bench: bench/devstate-bench$(EXEEXT) tools/devstate-cli$(EXEEXT)
	DEVSTATE_CLI='$(abs_top_builddir)/tools/devstate-cli' \
		./bench/devstate-bench$(EXEEXT) $(BENCH_FLAGS)
.PHONY: bench

TESTS += bench/smoke.sh
EXTRA_DIST += bench/smoke.sh bench/README
# (the smoke test needs the program and the CLI: both are built by `all`,
# which `check` builds first)

# SPDX-License-Identifier: LGPL-2.1-or-later
# Included from the top-level Makefile.am.
#
# libFuzzer targets.  They are never built by `make` or `make check`:
#   make fuzz        in a tree configured with CC=clang --enable-fuzzing,
#                    builds fuzz/fuzz-*; in any other build tree, configures
#                    such a tree in ./fuzz-build and builds them there.
#   fuzz/run.sh      runs each target for a bounded time (CI: 40-fuzz.sh)
#   fuzz/make-corpus.sh   regenerates the seed corpus (fuzz/corpus/)
FUZZ_TARGETS = \
	fuzz/fuzz-stream \
	fuzz/fuzz-load \
	fuzz/fuzz-save \
	fuzz/fuzz-vfio \
	fuzz/fuzz-mig2
EXTRA_PROGRAMS = $(FUZZ_TARGETS)
FUZZ_CFLAGS_ALL = $(AM_CFLAGS) $(ZLIB_CFLAGS) $(ZSTD_CFLAGS)
FUZZ_LIBS = libdevstate-internal.la
fuzz_fuzz_stream_SOURCES = fuzz/fuzz-stream.c fuzz/fuzz.h
fuzz_fuzz_stream_CFLAGS = $(FUZZ_CFLAGS_ALL)
fuzz_fuzz_stream_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
fuzz_fuzz_stream_LDADD = $(FUZZ_LIBS)
fuzz_fuzz_load_SOURCES = fuzz/fuzz-load.c fuzz/fuzz.h
fuzz_fuzz_load_CFLAGS = $(FUZZ_CFLAGS_ALL)
fuzz_fuzz_load_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
fuzz_fuzz_load_LDADD = $(FUZZ_LIBS)
fuzz_fuzz_save_SOURCES = fuzz/fuzz-save.c fuzz/fuzz.h
fuzz_fuzz_save_CFLAGS = $(FUZZ_CFLAGS_ALL)
fuzz_fuzz_save_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
fuzz_fuzz_save_LDADD = $(FUZZ_LIBS)
fuzz_fuzz_vfio_SOURCES = fuzz/fuzz-vfio.c fuzz/fuzz.h
fuzz_fuzz_vfio_CFLAGS = $(FUZZ_CFLAGS_ALL)
fuzz_fuzz_vfio_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
fuzz_fuzz_vfio_LDADD = $(FUZZ_LIBS)
fuzz_fuzz_mig2_SOURCES = fuzz/fuzz-mig2.c fuzz/fuzz.h
fuzz_fuzz_mig2_CFLAGS = $(FUZZ_CFLAGS_ALL)
fuzz_fuzz_mig2_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
fuzz_fuzz_mig2_LDADD = $(FUZZ_LIBS)
CLEANFILES += $(FUZZ_TARGETS)

if ENABLE_FUZZING
fuzz: $(FUZZ_TARGETS)
else
fuzz:
	@echo "fuzz: building the libFuzzer targets in $(abs_builddir)/fuzz-build (CC=clang --enable-fuzzing)"
	@mkdir -p fuzz-build
	cd fuzz-build && $(abs_top_srcdir)/configure -q CC=clang --enable-fuzzing \
		--disable-shared && $(MAKE) $(AM_MAKEFLAGS) fuzz
endif
.PHONY: fuzz

# Regression tests for what the fuzzers (and the hostile-device model)
# found, and the SIGKILL crash-safety test of devstate-cli save/load.
check_PROGRAMS += tests/test-regress
tests_test_regress_SOURCES = tests/test-regress.c tests/testutil.h
tests_test_regress_CFLAGS = $(TEST_CFLAGS)
tests_test_regress_LDADD = $(TEST_LIBS)
script_tests += tests/crash-safety.sh

EXTRA_DIST += fuzz/fuzz.h fuzz/fuzz-stream.c fuzz/fuzz-load.c \
	fuzz/fuzz-save.c fuzz/fuzz-vfio.c fuzz/fuzz-mig2.c fuzz/make-corpus.sh fuzz/run.sh \
	fuzz/corpus fuzz/README
# the CI stages (sanitizers, valgrind, i386, fuzzing) that bootstrap.sh
# check runs after make check and distcheck
EXTRA_DIST += tools/ci.d

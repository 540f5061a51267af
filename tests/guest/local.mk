# SPDX-License-Identifier: LGPL-2.1-or-later
# Included from the top-level Makefile.am.

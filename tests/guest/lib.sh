# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the guest tests (sourced): their start (guest_start), building
# an initramfs from the host's busybox, programs with their libraries, and
# kernel modules, and booting it.  A test begins with
#	set -u
#	srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
#	. "$srcdir/tests/guest/lib.sh"
#	guest_start DEFAULT-SECONDS

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# The variables every test uses: builddir (make check's top_builddir, for
# the programs and libdevstate's .libs), limit (seconds for the guest:
# DEVSTATE_GUEST_TIMEOUT, else DEFAULT-SECONDS), here (this directory)
# and start (the test's start, date +%s); then guest_require.
guest_start() {
	start=$(date +%s)
	builddir=$(cd "${top_builddir:-.}" && pwd) ||
		fail "no build directory ${top_builddir:-.}"
	limit=${DEVSTATE_GUEST_TIMEOUT:-$1}
	here=$srcdir/tests/guest
	guest_require
}

# The real binary of this build's program DIR/NAME (not libtool's
# wrapper script: DIR/.libs/NAME when there is one) into the variable
# VAR; fails unless it is an ELF file.
guest_binary() {
	b=$builddir/$(dirname "$2")/.libs/$(basename "$2")
	[ -f "$b" ] || b=$builddir/$2
	head -c 4 "$b" 2>/dev/null | grep -q ELF ||
		fail "no $b binary (make $2 first)"
	eval "$1=\$b"
}

# Copy the libraries ldd resolves for a program, each to its own absolute
# path under $root; GUEST_LIBDIRS collects their directories.
GUEST_LIBDIRS=""
guest_copy_libs() {
	out=$(LD_LIBRARY_PATH=$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
		ldd "$1" 2>&1)
	case "$out" in
	*"not a dynamic executable"*|*"statically linked"*) return 0 ;;
	esac
	if echo "$out" | grep -q "not found"; then
		echo "$out"
		fail "ldd cannot resolve every library of $1"
	fi
	for lib in $(echo "$out" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[ \t]*\(\/[^ ]*\) (0x.*/\1/p'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib" || fail "cannot copy $lib"
		case " $GUEST_LIBDIRS " in
		*" $(dirname "$lib") "*) ;;
		*) GUEST_LIBDIRS="$GUEST_LIBDIRS $(dirname "$lib")" ;;
		esac
	done
}

# Install a program as $root/NAME with its libraries.
guest_add_program() {
	cp -L "$1" "$root/$2" || fail "cannot copy $1"
	guest_copy_libs "$1"
}

# The initramfs tree: sets root ($work/root) and makes its directories,
# busybox as /bin/busybox and /bin/sh, INIT as /init and init-lib.sh
# (what every /init sources first) as /init-lib.sh.
guest_root() {
	root=$work/root
	mkdir -p "$root/bin" "$root/modules" "$root/proc" "$root/sys" \
		"$root/dev" "$root/tmp" || fail "cannot create $root"
	cp -L "$busybox" "$root/bin/busybox" || fail "cannot copy $busybox"
	ln -s busybox "$root/bin/sh"
	guest_copy_libs "$busybox"
	cp "$1" "$root/init" && chmod 755 "$root/init" &&
		cp "$here/init-lib.sh" "$root/init-lib.sh" ||
		fail "cannot install $1 and init-lib.sh"
}

# The wanted modules of kernel KVER with their modules.dep dependencies,
# each after what it needs (as modprobe loads them), unpacked into
# $root/modules/NAME.ko; GUEST_MODULES lists the names in load order.
GUEST_MODULES=""
guest_add_modules() {
	kver=$1
	shift
	moddir=/lib/modules/$kver
	order=$(awk -v want="$*" '
		function norm(p, b) {
			b = p; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b)
			gsub(/-/, "_", b); return b
		}
		function emit(p) { if (!(p in done)) { done[p] = 1; print p } }
		{ k = $1; sub(/:$/, "", k); line[norm(k)] = $0; path[norm(k)] = k }
		END {
			n = split(want, w, " ")
			for (i = 1; i <= n; i++) {
				if (!(w[i] in line)) { print "MISSING:" w[i]; continue }
				m = split(line[w[i]], f, " ")
				for (j = m; j >= 2; j--) emit(f[j])
				emit(path[w[i]])
			}
		}' "$moddir/modules.dep")
	for p in $order; do
		case "$p" in MISSING:*) fail "module ${p#MISSING:} not in $moddir/modules.dep" ;; esac
		base=$(basename "$p")
		name=${base%%.ko*}
		case "$base" in
		*.ko) cp "$moddir/$p" "$root/modules/$name.ko" ;;
		*.ko.xz) xz -dc "$moddir/$p" >"$root/modules/$name.ko" ;;
		*.ko.zst) zstd -qdc "$moddir/$p" >"$root/modules/$name.ko" ;;
		*.ko.gz) gzip -dc "$moddir/$p" >"$root/modules/$name.ko" ;;
		*) false ;;
		esac || fail "cannot unpack module $moddir/$p"
		GUEST_MODULES="$GUEST_MODULES $name"
	done
}

# The colon-separated library path for the guest.
guest_libpath() {
	echo $GUEST_LIBDIRS | tr ' ' ':'
}

# Pack $root into OUT (newc cpio, by busybox).
guest_pack() {
	(cd "$root" && find . | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) \
		>"$1" || fail "cannot build the initramfs"
	[ -s "$1" ] || fail "empty initramfs"
}

# --- booting guests (vfio-info.sh, mtty-*.sh, kmod-migrate.sh) --------------

# What booting a guest needs: qemu, busybox, timeout.  Sets qemu, busybox.
guest_require() {
	qemu=$(command -v qemu-system-x86_64) ||
		skip "no qemu-system-x86_64 (Debian package qemu-system-x86)"
	busybox=$(command -v busybox || ls /bin/busybox 2>/dev/null) ||
		skip "no busybox (Debian package busybox-static)"
	command -v timeout >/dev/null || skip "no timeout (coreutils)"
}

# The newest installed 6.12 Debian kernel with the mdev module and its
# headers (the image alone is not enough: the tests build a module for
# it).  Sets kver, kernel (the image) and kbuild (its build tree), or
# skips.
guest_kernel_612() {
	kver=""
	image=""
	for k in $(ls /boot 2>/dev/null | sed -n 's/^vmlinuz-\(6\.12\..*+deb12-amd64\)$/\1/p' | sort -V); do
		dep=/lib/modules/$k/modules.dep
		[ -f "$dep" ] && grep -q '/mdev\.ko' "$dep" || continue
		image=$k
		[ -f "/lib/modules/$k/build/Makefile" ] && kver=$k
	done
	[ -n "$image" ] ||
		skip "no /boot/vmlinuz-6.12.*+deb12-amd64 with its modules (Debian package linux-image-6.12-amd64)"
	[ -n "$kver" ] ||
		skip "no /lib/modules/$image/build (Debian package linux-headers-$image)"
	kernel=/boot/vmlinuz-$kver
	[ -r "$kernel" ] || skip "$kernel is not readable (needs root)"
	kbuild=/lib/modules/$kver/build
	command -v make >/dev/null || skip "no make (build-essential)"
}

# Build the out-of-tree module in DIR (its sources and Kbuild there)
# against $kbuild, the log in DIR/kbuild.log; the kernel's make must not
# see this make's command line or jobserver.
guest_build_module() {
	(unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
	 make -C "$kbuild" M="$1" modules) >"$1/kbuild.log" 2>&1 || {
		cat "$1/kbuild.log"
		fail "cannot build the module in $1 against $kbuild"
	}
}

# guest_kernel_612, and the kernel source mtty.c comes from.  Sets kver,
# kernel, kbuild, source.
mtty_require() {
	guest_kernel_612
	source=$(ls /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n 1)
	[ -n "$source" ] ||
		skip "no /usr/src/linux-source-6.12.tar.* (Debian package linux-source-6.12)"
}

# samples/vfio-mdev/mtty.c out of $source, built against $kbuild into
# $work/mtty/mtty.ko (the source is extracted into the scratch directory,
# never kept).  DEVSTATE_MTTY_KO=PATH uses a mtty.ko built before for
# this kernel instead (development: the extraction takes tens of
# seconds).  Sets MTTY_TIMES ("extract N s, build N s").
mtty_build() {
	mkdir -p "$work/mtty"
	if [ -n "${DEVSTATE_MTTY_KO:-}" ]; then
		cp "$DEVSTATE_MTTY_KO" "$work/mtty/mtty.ko" ||
			fail "cannot copy DEVSTATE_MTTY_KO=$DEVSTATE_MTTY_KO"
		MTTY_TIMES="prebuilt $DEVSTATE_MTTY_KO"
		return 0
	fi
	t0=$(date +%s)
	mkdir -p "$work/src"
	tar -xaf "$source" -C "$work/src" --occurrence=1 --wildcards \
		'*/samples/vfio-mdev/mtty.c' ||
		fail "cannot extract mtty.c from $source"
	mtty_c=$(find "$work/src" -name mtty.c | head -n 1)
	[ -n "$mtty_c" ] || fail "no samples/vfio-mdev/mtty.c in $source"
	mv "$mtty_c" "$work/mtty/mtty.c" && rm -rf "$work/src"
	echo 'obj-m := mtty.o' >"$work/mtty/Kbuild"
	t1=$(date +%s)
	guest_build_module "$work/mtty"
	[ -f "$work/mtty/mtty.ko" ] || fail "the kernel build made no mtty.ko"
	t2=$(date +%s)
	MTTY_TIMES="extract $((t1 - t0)) s, build $((t2 - t1)) s"
}

# The initramfs of an mtty guest in $work/initramfs.cpio: busybox,
# mtty-init.sh as /init, PROGRAM as /NAME (with its libraries; more
# "PATH NAME" pairs may follow), the vfio, type1 and mdev modules and
# mtty.ko.  The guest runs "/NAME GROUP-1 UUID-1 GROUP-2 UUID-2 ARGS...";
# ARGS is set in GUEST_ARGS before the call.
mtty_initramfs() {
	guest_root "$here/mtty-init.sh"
	program=/$2
	while [ $# -ge 2 ]; do
		guest_add_program "$1" "$2"
		echo "program:  $1 as /$2"
		shift 2
	done
	# vfio_iommu_type1 and mdev with their dependencies, then mtty
	# (which needs vfio and mdev).
	guest_add_modules "$kver" vfio_iommu_type1 mdev
	cp "$work/mtty/mtty.ko" "$root/modules/mtty.ko" ||
		fail "cannot copy mtty.ko"
	modules="$GUEST_MODULES mtty"
	cat >"$root/guest.conf" <<EOT
LIBPATH=$(guest_libpath)
MODULES="$modules"
PROGRAM=$program
ARGS="${GUEST_ARGS:-}"
EOT
	guest_pack "$work/initramfs.cpio"
	echo "kernel:   $kernel"
	echo "source:   $source"
	echo "modules: $modules"
	echo "qemu:     $("$qemu" --version | head -n 1)"
	echo "mtty.ko:  $MTTY_TIMES"
}

# An mtty test's run up to its own checks: the scratch directory NAME,
# mtty.ko, the initramfs (mtty_initramfs PROGRAM NAME [PATH NAME]...),
# the boot and mtty_verdict_common; sets r (the guest's report) and bad
# (1 when a common check failed, else 0).
mtty_run() {
	guest_workdir "$1"
	shift
	mtty_build
	mtty_initramfs "$@"
	guest_boot
	r=$work/results.txt
	bad=0
	mtty_verdict_common "$2"
}

guest_console() {
	echo "--- guest console (last 40 lines)"
	tr -d '\r' <"$work/console.log" | tail -n 40
}

# Boot $kernel with $work/initramfs.cpio under qemu (TCG), the console on
# ttyS0 ($work/console.log), the test's output on ttyS1
# ($work/results.txt); fails unless the guest powers off within $limit s.
# GUEST_QEMU (more qemu arguments, split on blanks) and GUEST_APPEND (more
# kernel arguments) are optional.  No network; no reboot: panic=-1 and
# -no-reboot turn any guest failure into a qemu exit.  Sets GUEST_SECONDS.
guest_boot() {
	boot=$(date +%s)
	timeout -k 5 "$limit" "$qemu" \
		-machine q35,accel=tcg -smp 1 -m 512M -nodefaults -display none \
		-no-reboot -kernel "$kernel" -initrd "$work/initramfs.cpio" \
		-append "console=ttyS0 ${GUEST_APPEND:-}${GUEST_APPEND:+ }panic=-1 quiet" \
		-serial "file:$work/console.log" -serial "file:$work/results.log" \
		${GUEST_QEMU:-} >"$work/qemu.log" 2>&1
	rc=$?
	GUEST_SECONDS=$(($(date +%s) - boot))
	tr -d '\r' <"$work/results.log" >"$work/results.txt" 2>/dev/null
	if [ $rc -ne 0 ]; then
		echo "--- qemu"
		cat "$work/qemu.log"
		guest_console
		echo "--- guest output"
		cat "$work/results.txt"
		[ $rc -eq 124 ] || [ $rc -eq 137 ] &&
			fail "the guest did not finish within $limit s"
		fail "qemu exited with status $rc"
	fi
	echo "--- guest output (boot + test: $GUEST_SECONDS s)"
	cat "$work/results.txt"
	echo "---"
}

# Verdict helpers over $work/results.txt: guest_need PATTERN WHAT sets
# bad=1 when no line matches.
guest_need() {
	grep -q "$1" "$work/results.txt" ||
		{ echo "missing from the guest output: $2"; bad=1; }
}

# A scratch directory $work in the build tree (srcdir may be read-only),
# removed at exit unless DEVSTATE_GUEST_KEEP=1.
guest_workdir() {
	mkdir -p "$builddir/tests/guest" &&
	work=$(mktemp -d "$builddir/tests/guest/$1.XXXXXX") ||
		fail "mktemp failed"
	trap '[ "${DEVSTATE_GUEST_KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
}

# What every mtty guest run must show: no failed insmod, instance or
# fatal error, the kernel $kver, the program's exit status 0 and the end
# of the run.  Sets bad=1 otherwise.
mtty_verdict_common() {
	if grep -q '^=== insmod-failed\|^=== create-failed\|^=== fatal' "$work/results.txt"; then
		grep '^=== insmod-failed\|^=== create-failed\|^=== fatal' "$work/results.txt"
		bad=1
	fi
	guest_need "^=== kernel $kver\$" "the kernel $kver"
	guest_need '^=== rc 0$' "$1's exit status 0"
	guest_need '^=== done$' "the end of the guest's run"
}

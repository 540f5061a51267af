# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the guest tests (sourced): building an initramfs from the
# host's busybox, programs with their libraries, and kernel modules;
# picking the 6.12 kernel, building a module for it, booting it.
# The caller defines fail() and skip() and sets root (the initramfs tree,
# with bin/ and modules/), builddir (for libdevstate's .libs), busybox,
# and for guest_boot qemu, work (a scratch directory) and limit.

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

# busybox as /bin/busybox and /bin/sh, and INIT as /init.
guest_add_base() {
	cp -L "$busybox" "$root/bin/busybox" || fail "cannot copy $busybox"
	ln -s busybox "$root/bin/sh"
	guest_copy_libs "$busybox"
	cp "$1" "$root/init" && chmod 755 "$root/init" ||
		fail "cannot install $1"
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

# The newest installed 6.12 Debian kernel with the mdev module and its
# headers (the image alone is not enough: the tests build a module for
# it).  Sets kver, kernel (the image) and kbuild (its build tree), or
# skips (the caller defines skip()).
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
}

# Build the out-of-tree module in DIR (its sources and Kbuild there)
# against $kbuild; the kernel's make must not see this make's command
# line or jobserver.
guest_build_module() {
	(unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
	 make -C "$kbuild" M="$1" modules) >"$1/kbuild.log" 2>&1 || {
		cat "$1/kbuild.log"
		fail "cannot build the module in $1 against $kbuild"
	}
}

# Boot $kernel under qemu (TCG) with INITRAMFS and the extra kernel
# command line EXTRA, within $limit seconds; the guest's ttyS0 goes to
# $work/console.log, its ttyS1 (the test's report) to $work/results.txt.
# Sets boot and end (seconds); on failure prints what there is and fails.
guest_console() {
	echo "--- guest console (last ${1:-40} lines)"
	tr -d '\r' <"$work/console.log" | tail -n "${1:-40}"
}
guest_boot() {
	boot=$(date +%s)
	timeout -k 5 "$limit" "$qemu" \
		-machine q35,accel=tcg -smp 1 -m 512M -nodefaults -display none \
		-no-reboot -kernel "$kernel" -initrd "$1" \
		-append "console=ttyS0 panic=-1 quiet${2:+ $2}" \
		-serial "file:$work/console.log" -serial "file:$work/results.log" \
		>"$work/qemu.log" 2>&1
	rc=$?
	end=$(date +%s)
	tr -d '\r' <"$work/results.log" >"$work/results.txt" 2>/dev/null
	[ $rc -eq 0 ] && return 0
	echo "--- qemu"
	cat "$work/qemu.log"
	guest_console
	echo "--- guest output"
	cat "$work/results.txt"
	[ $rc -eq 124 ] || [ $rc -eq 137 ] &&
		fail "the guest did not finish within $limit s"
	fail "qemu exited with status $rc"
}

# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the guest tests (sourced): building an initramfs from the
# host's busybox, programs with their libraries, and kernel modules.
# The caller defines fail() and sets root (the initramfs tree, with bin/
# and modules/), builddir (for libdevstate's .libs) and busybox.

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

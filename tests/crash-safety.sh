#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash safety: SIGKILL devstate-cli save and load at many points.
#
# save: a snapshot at PATH exists; a new save to PATH is killed, again
# and again, at DEVSTATE_CRASH_MIN (default 55) points spread over the
# write: save k dies as soon as its temporary file holds k/(N+1) of a
# snapshot's size.  After every kill PATH must verify and be either the
# previous snapshot or a complete new one, and the temporary file of any
# earlier killed save must be gone as soon as a later save got as far as
# creating its own (a writer holds a lock on its temporary file; the next
# save removes those whose lock it can take).  A last, uninterrupted save
# leaves no temporary file.
#
# load: a fake destination records every confirmed state change in a
# state file (fake key state-file=); loader k reads the snapshot from a
# pipe and is killed once k/(N+1) of it went into the pipe.  The recorded state
# must never be RUNNING with state loaded unless the contents are the
# complete source's (same digest).
set -u
CLI="${top_builddir:-.}/tools/devstate-cli"
MIN=${DEVSTATE_CRASH_MIN:-55}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
snap="$tmp/snap.ds"
SRC='fake:memory=16M,config=64K,workload=16'
DST='fake:memory=16M,config=64K,zero=yes'
fail=0

die() {
	echo "FAIL: $*"
	exit 1
}

now_ms() {
	date +%s%3N
}

# seconds with three decimals for sleep(1)
secs() {
	printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

strays() {
	find "$tmp" -maxdepth 1 -name '.snap.ds.tmp.*' | sort
}

# --- save ---------------------------------------------------------------
"$CLI" save --passes 2 "$SRC,seed=1" "$snap" >/dev/null 2>"$tmp/err" ||
	die "first save: $(cat "$tmp/err")"
"$CLI" verify "$snap" >/dev/null || die "first snapshot does not verify"
t0=$(now_ms)
"$CLI" save --passes 2 "$SRC,seed=2" "$snap" >/dev/null 2>"$tmp/err" ||
	die "timing save: $(cat "$tmp/err")"
total=$(($(now_ms) - t0))
[ "$total" -ge 1 ] || total=1
cp "$snap" "$tmp/prev"

# The kill points are spread over the write by what was written: save
# number k is killed as soon as its temporary file holds k/(N+1) of a
# snapshot's size (N kill points), polled as it grows.
fsize=$(stat -c %s "$snap")
N=$MIN

# wait until the new temporary file of save $1 (pid) holds $2 bytes
wait_size() {
	while kill -0 "$1" 2>/dev/null; do
		for f in "$tmp"/.snap.ds.tmp.*; do
			[ -e "$f" ] || continue
			case " $prev_strays " in *" $f "*) continue ;; esac
			sz=$(stat -c %s "$f" 2>/dev/null || echo 0)
			[ "$sz" -ge "$2" ] && return 0
		done
	done
	return 1
}

tried=0 mid=0 before=0 after=0 cleaned=0
prev_strays=""
for k in $(seq 1 "$N"); do
	target=$((fsize * k / (N + 1)))
	"$CLI" save --passes 2 "$SRC,seed=$((k + 2))" "$snap" >/dev/null 2>&1 &
	pid=$!
	wait_size "$pid" "$target"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	tried=$((tried + 1))
	step="$target bytes"

	"$CLI" verify "$snap" >/dev/null 2>"$tmp/err" ||
		die "save killed after $step (try $tried): $snap does not verify: $(cat "$tmp/err")"
	cur_strays=$(strays)
	new_tmp=""
	for s in $cur_strays; do
		case " $prev_strays " in
		*" $s "*) ;;
		*) new_tmp=$s ;;
		esac
	done
	committed=0
	if cmp -s "$snap" "$tmp/prev"; then
		if [ -n "$new_tmp" ]; then
			mid=$((mid + 1))
		else
			before=$((before + 1))
		fi
	else
		committed=1	# a complete new snapshot (it verified)
		after=$((after + 1))
		cp "$snap" "$tmp/prev"
	fi
	# a save that got as far as its own temporary file has removed
	# those that killed saves left before it
	if [ -n "$new_tmp" ] || [ "$committed" = 1 ]; then
		for s in $prev_strays; do
			[ -e "$s" ] &&
				die "save killed after $step (try $tried): the temporary file $s of an earlier killed save is still there"
			cleaned=$((cleaned + 1))
		done
	fi
	prev_strays=$cur_strays
done
[ "$mid" -ge $((MIN * 9 / 10)) ] ||
	die "only $mid of $tried kills landed while the snapshot was written"
"$CLI" save --passes 2 "$SRC,seed=999" "$snap" >/dev/null 2>"$tmp/err" ||
	die "final save: $(cat "$tmp/err")"
"$CLI" verify "$snap" >/dev/null || die "final snapshot does not verify"
[ -z "$(strays)" ] || die "temporary files left after a complete save: $(strays)"
echo "save: $tried kills spread over a $fsize-byte write: $mid during the write, $before before it, $after after the commit; every time the snapshot verified; $cleaned temporary files of killed saves removed by the next save, none left at the end"

# --- load ---------------------------------------------------------------
out=$("$CLI" save --passes 2 "$SRC,seed=7" "$snap" 2>"$tmp/err") ||
	die "load source save: $(cat "$tmp/err")"
digest=$(printf '%s\n' "$out" | sed -n 's/^source digest: //p')
[ -n "$digest" ] || die "no source digest in: $out"
state="$tmp/state"

rm -f "$state"
"$CLI" load "$snap" "$DST,state-file=$state" >/dev/null 2>"$tmp/err" ||
	die "load: $(cat "$tmp/err")"
grep -qx "state=running loaded=[1-9][0-9]* digest=$digest" "$state" ||
	die "a complete load recorded: $(cat "$state"), expected digest $digest"
fsize=$(stat -c %s "$snap")

# loader k reads the snapshot from a pipe, as a stream from the network
# would come, and is killed once k/(N+1) of it has been written to the
# pipe: blocked waiting for more, or (every other k, killed at once)
# still applying what it got
mkfifo "$tmp/pipe"
tried=0 midl=0 early=0 done_=0
for k in $(seq 1 "$N"); do
	target=$((fsize * k / (N + 1)))
	step="$target bytes"
	rm -f "$state" "$state.tmp"
	"$CLI" load - "$DST,state-file=$state" <"$tmp/pipe" >/dev/null 2>&1 &
	pid=$!
	exec 3>"$tmp/pipe"
	head -c "$target" "$snap" >&3 2>/dev/null
	[ $((k % 2)) = 0 ] && sleep 0.05
	kill -9 "$pid" 2>/dev/null
	exec 3>&-
	wait "$pid" 2>/dev/null
	tried=$((tried + 1))
	rec=$(cat "$state" 2>/dev/null || echo "none")
	case "$rec" in
	none | "state=running loaded=0 "*)
		early=$((early + 1)) ;;	# before any state moved
	"state=stop "*)
		midl=$((midl + 1)) ;;	# stopped, partial or not
	"state=running loaded="*" digest=$digest")
		done_=$((done_ + 1)) ;;	# complete
	*)
		die "loader killed after $step (try $tried): the destination recorded '$rec' (source digest $digest)" ;;
	esac
done
[ "$midl" -ge $((MIN * 9 / 10)) ] ||
	die "only $midl of $tried kills landed during the load ($early before, $done_ after)"
echo "load: $tried kills spread over a $fsize-byte stream: $midl during the load (destination STOPPED), $early before it, $done_ after it (RUNNING with the complete state); never RUNNING with partial state"
exit $fail

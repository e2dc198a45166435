#!/usr/bin/env bash
# tests/gdb/test-gdb.sh KERNEL_ELF - drive gdb in batch mode against the
# booted kernel (make test-gdb):
#
#   qemu -S -gdb tcp:127.0.0.1:PORT (a free port), serial to a file;
#   gdb -batch -nx -x tools/gdb/peachheap.py -ex 'target remote :PORT'
#       -ex 'break kernel_selftest_done' -ex continue
#       -ex heap-stats -ex heap-map -ex heap-check
#       -ex 'heap-map 1 64 --blocks=256'
#
# and compare gdb's view with what the kernel printed itself before it
# stopped: the same statistics (used, free, largest free run, allocations,
# rejected frees), the same whole-heap map line for line, the same map of
# the first 256 blocks, and heap-check OK. qemu is killed at the end;
# everything runs under timeouts. Logs in build/gdb/.
set -u
elf=${1:-build/kernel/peachos.elf}
out=build/gdb
mkdir -p "$out"
serial=$out/test-serial.log
gdblog=$out/test-gdb.log
timeout_s=${QEMU_TIMEOUT:-60}
qpid=
cleanup() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null; }
trap cleanup EXIT

fail() {
    echo "test-gdb: FAIL: $*"
    echo "--- gdb output ($gdblog):"
    sed 's/^/    /' "$gdblog" 2>/dev/null | tail -40
    exit 1
}

# A free port: start qemu on candidate ports until one binds (qemu exits at
# once when the port is taken).
port=
for try in $(seq 1 20); do
    p=$((20000 + (RANDOM % 20000)))
    rm -f "$serial"
    timeout "$timeout_s" qemu-system-i386 -kernel "$elf" -m 128M -serial "file:$serial" -display none -net none \
        -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -S -gdb "tcp:127.0.0.1:$p" \
        2>"$out/test-qemu.stderr" &
    qpid=$!
    sleep 0.3
    if kill -0 "$qpid" 2>/dev/null; then
        port=$p
        break
    fi
    wait "$qpid" 2>/dev/null
    qpid=
done
[ -n "$port" ] || fail "could not start qemu with a gdb stub (last error: $(cat "$out/test-qemu.stderr"))"
echo "test-gdb: qemu (pid $qpid) waits for gdb on 127.0.0.1:$port"

timeout "$timeout_s" gdb -batch -nx -x tools/gdb/peachheap.py \
    -ex "target remote 127.0.0.1:$port" \
    -ex 'break kernel_selftest_done' -ex continue \
    -ex heap-stats -ex heap-map -ex heap-check -ex 'heap-map 1 64 --blocks=256' \
    -ex 'python s = bytes(gdb.selected_inferior().read_memory(0xb8000, 80 * 25 * 2))[::2].decode("ascii", "replace"); print("\n".join("VGA|" + s[i:i + 80].rstrip() for i in range(0, len(s), 80)))' \
    -ex 'echo corrupting the last table entry:\n' \
    -ex 'set var *(unsigned char*)(kernel_heap.table->entries + 25599) = 0x80' -ex heap-check \
    -ex 'set var *(unsigned char*)(kernel_heap.table->entries + 25599) = 0' -ex heap-check \
    "$elf" >"$gdblog" 2>&1
rc=$?
[ $rc -eq 124 ] && fail "gdb timed out after ${timeout_s}s"
grep -q '^Breakpoint 1, kernel_selftest_done' "$gdblog" || fail "gdb did not stop at kernel_selftest_done (gdb exit $rc)"
grep -qi 'Python Exception\|Undefined command' "$gdblog" && fail "the gdb script failed"

tr -d '\r' <"$serial" >"$serial.txt"
grep -q '^selftest: [0-9]* passed, 0 failed$' "$serial.txt" || fail "the kernel's self-test did not pass before the breakpoint"

# 1. heap-stats agrees with the kernel's own statistics line.
kstats=$(sed -nE 's/^kheap stats: (total=[0-9]+ used=[0-9]+ free=[0-9]+ largest_free=[0-9]+ allocations=[0-9]+ rejected_frees=[0-9]+ failed_allocs=[0-9]+)$/\1/p' "$serial.txt")
gstats=$(sed -nE 's/^heap-stats: (total=.*)$/\1/p' "$gdblog")
[ -n "$kstats" ] || fail "no 'kheap stats:' line in the kernel's output ($serial)"
[ "$kstats" = "$gstats" ] || fail "heap-stats says '$gstats', the kernel said '$kstats'"
grep -q '^heap-stats: counters .*: agree with the table$' "$gdblog" || fail "heap-stats: counters disagree with the table"
used=$(sed -nE 's/.* used=([0-9]+) .*/\1/p' <<<"$kstats")
[ "${used:-0}" -gt 0 ] || fail "expected live allocations at the breakpoint"

# 2. heap-map prints the kernel's maps, line for line.
maps() { # FILE -> the map blocks (header, rows, end line)
    awk '/^HEAPMAP v1/{m=1} m{print} /^HEAPMAP end/{m=0}' "$1"
}
# The kernel prints the 256-block map first, gdb second: compare as sets of maps.
kmaps=$(maps "$serial.txt")
gmaps=$(maps "$gdblog")
kwhole=$(awk '/^HEAPMAP v1 blocks=25600/{m=1} m{print} /^HEAPMAP end/{m=0}' <<<"$kmaps")
gwhole=$(awk '/^HEAPMAP v1 blocks=25600/{m=1} m{print} /^HEAPMAP end/{m=0}' <<<"$gmaps")
kwin=$(awk '/^HEAPMAP v1 blocks=256 /{m=1} m{print} /^HEAPMAP end/{m=0}' <<<"$kmaps")
gwin=$(awk '/^HEAPMAP v1 blocks=256 /{m=1} m{print} /^HEAPMAP end/{m=0}' <<<"$gmaps")
[ -n "$kwhole" ] && [ -n "$kwin" ] || fail "the kernel printed no heap maps"
[ "$kwhole" = "$gwhole" ] || fail "heap-map differs from the kernel's whole-heap map:
$(diff <(echo "$kwhole") <(echo "$gwhole"))"
[ "$kwin" = "$gwin" ] || fail "'heap-map 1 64 --blocks=256' differs from the kernel's map of blocks 0..255:
$(diff <(echo "$kwin") <(echo "$gwin"))"

# 3. print went to the VGA screen too: its last lines are the end of the map.
# (80 columns: the end line wraps, so compare the map's last row.)
last_row=$(tail -2 <<<"$kwhole" | head -1)
sed -n 's/^VGA|//p' "$gdblog" | grep -qxF -- "$last_row" || fail "the VGA screen does not show the map's last row ('$last_row')"

# 4. heap-check finds nothing wrong.
grep -q '^heap-check: OK (25600 blocks' "$gdblog" || fail "heap-check did not print OK"
[ "$(grep -c '^heap-check: OK (25600 blocks' "$gdblog")" -eq 2 ] || fail "heap-check: expected OK before and after the corruption"

# 5. ... and finds a corruption made through gdb (a stray HAS_NEXT on a free
# entry, the last block: free in the kernel's final map), which is then undone.
[ "$(tail -c 2 <<<"$(grep -E '^00005dc0 ' <<<"$kwhole")")" = "." ] || fail "expected the last block to be free"
grep -q '^heap-check: BAD block 25599 .*flags on a free entry' "$gdblog" || fail "heap-check missed a stray flag on a free entry"

echo "test-gdb: ok: breakpoint hit; heap-stats ($gstats) = kernel; heap-map = kernel's maps; heap-check OK, and BAD on a corrupted entry; VGA shows the map"

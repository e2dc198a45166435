#!/usr/bin/env bash
# tests/gdb/test-gdb.sh KERNEL_ELF [ARCH [BOOT_ELF [MEM]]] - drive gdb in batch
# mode against the booted kernel (make test-gdb):
#
#   qemu -S -gdb tcp:127.0.0.1:PORT (a free port), serial to a file;
#   gdb -batch -nx -x tools/gdb/peachheap.py -ex 'target remote :PORT'
#       -ex 'break kernel_selftest_done' -ex continue
#       -ex heap-stats -ex heap-map -ex heap-check
#       -ex 'heap-map 1 64 --blocks=256 --region=0'
#
# and compare gdb's view with what the kernel printed itself before it
# stopped: for every heap region the same statistics (used, free, largest
# free run, allocations, rejected frees, failed allocations) and the same
# map line for line, the same map of the first 256 blocks, heap-check OK
# on every region and on the multiheap; then a corruption made through gdb
# in the highest region is found there, and undone.
#
# ARCH i686 (default): KERNEL_ELF is booted by qemu-system-i386 (-m 128M:
# two regions). ARCH x86_64: gdb reads the ELF64 KERNEL_ELF (symbols) with
# `set architecture i386:x86-64` and a hardware breakpoint (the CPU starts
# in 32-bit mode), qemu-system-x86_64 boots BOOT_ELF (the ELF32 copy) with
# -m 6G: three regions, one above 4 GiB. qemu is killed at the end;
# everything runs under timeouts. Logs in build/gdb/ (ARCH in the names).
set -u
elf=${1:-build/kernel/peachos.elf}
arch=${2:-i686}
boot_elf=${3:-$elf}
out=build/gdb
mkdir -p "$out"
if [ "$arch" = x86_64 ]; then
    qemu=qemu-system-x86_64 mem=${4:-6G} tag=-x86_64
    gdb_arch=(-ex 'set architecture i386:x86-64') brk=hbreak
else
    qemu=qemu-system-i386 mem=${4:-128M} tag=
    gdb_arch=() brk=break
fi
serial=$out/test-serial$tag.log
gdblog=$out/test-gdb$tag.log
timeout_s=${QEMU_TIMEOUT:-60}
qpid=
cleanup() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null; }
trap cleanup EXIT

fail() {
    echo "test-gdb ($arch): FAIL: $*"
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
    timeout "$timeout_s" "$qemu" -kernel "$boot_elf" -m "$mem" -serial "file:$serial" -display none -net none \
        -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -S -gdb "tcp:127.0.0.1:$p" \
        2>"$out/test-qemu$tag.stderr" &
    qpid=$!
    sleep 0.3
    if kill -0 "$qpid" 2>/dev/null; then
        port=$p
        break
    fi
    wait "$qpid" 2>/dev/null
    qpid=
done
[ -n "$port" ] || fail "could not start qemu with a gdb stub (last error: $(cat "$out/test-qemu$tag.stderr"))"
echo "test-gdb ($arch): $qemu -m $mem (pid $qpid) waits for gdb on 127.0.0.1:$port"

# The highest region's last table entry, through the kernel's own multiheap.
last='set var $h = &kernel_regions.slot[kernel_regions.order[kernel_regions.count - 1]].heap'
timeout "$timeout_s" gdb -batch -nx -x tools/gdb/peachheap.py "${gdb_arch[@]}" \
    -ex "target remote 127.0.0.1:$port" \
    -ex "$brk kernel_selftest_done" -ex continue \
    -ex 'echo ==stats==\n' -ex heap-stats -ex 'echo ==maps==\n' -ex heap-map -ex 'echo ==end==\n' \
    -ex heap-check -ex 'echo ==window==\n' -ex 'heap-map 1 64 --blocks=256 --region=0' \
    -ex 'python s = bytes(gdb.selected_inferior().read_memory(0xb8000, 80 * 25 * 2))[::2].decode("ascii", "replace"); print("\n".join("VGA|" + s[i:i + 80].rstrip() for i in range(0, len(s), 80)))' \
    -ex 'echo corrupting the last table entry of the highest region:\n' -ex "$last" \
    -ex 'set var $h->table->entries[$h->table->total - 1] = 0x80' -ex heap-check \
    -ex 'set var $h->table->entries[$h->table->total - 1] = 0' -ex heap-check \
    "$elf" >"$gdblog" 2>&1
rc=$?
[ $rc -eq 124 ] && fail "gdb timed out after ${timeout_s}s"
grep -q 'kernel_selftest_done' "$gdblog" && grep -Eq '^(Breakpoint|Hardware assisted breakpoint) 1, ' "$gdblog" ||
    fail "gdb did not stop at kernel_selftest_done (gdb exit $rc)"
grep -qi 'Python Exception\|Undefined command\|^Error' "$gdblog" && fail "the gdb script failed"

tr -d '\r' <"$serial" >"$serial.txt"
grep -q '^selftest: [0-9]* passed, 0 failed$' "$serial.txt" || fail "the kernel's self-test did not pass before the breakpoint"
regions=$(sed -nE 's/^kheap: ([0-9]+) regions, .*/\1/p' "$serial.txt")
[ -n "$regions" ] && [ "$regions" -ge 2 ] || fail "expected several heap regions, the kernel says '${regions}'"

between() { # FILE FROM TO: the lines strictly between two marker lines
    awk -v a="$2" -v b="$3" '$0 == b {m = 0} m {print} $0 == a {m = 1}' "$1"
}
sections() { # the regions' maps: each `HEAPMAP region` line, then its map (other lines skipped)
    awk '/^HEAPMAP region /{r = $0; next} /^HEAPMAP v1 / && r != "" {print r; m = 1} m {print} /^HEAPMAP end/{m = 0; r = ""}'
}

# 1. heap-stats agrees with the kernel's statistics of every region.
kstats=$(sed -nE 's/^kheap region ([0-9]+): (total=.*)$/\1 \2/p' "$serial.txt")
gstats=$(between "$gdblog" '==stats==' '==maps==' |
    awk '/^HEAPMAP region /{k = $3} /^heap-stats: total=/{sub(/^heap-stats: /, ""); print k " " $0}')
[ "$(wc -l <<<"$kstats")" -eq "$regions" ] || fail "the kernel printed $(wc -l <<<"$kstats") region statistics, not $regions"
[ "$kstats" = "$gstats" ] || fail "heap-stats per region differs from the kernel's:
$(diff <(echo "$kstats") <(echo "$gstats"))"
[ "$(between "$gdblog" '==stats==' '==maps==' | grep -c ': agree with the table$')" -eq "$regions" ] ||
    fail "heap-stats: counters disagree with the table"
grep -q "^heap-stats: regions=$regions total=" "$gdblog" || fail "heap-stats printed no totals line"
used=$(sed -nE 's/^0 total=[0-9]+ used=([0-9]+) .*/\1/p' <<<"$kstats")
[ "${used:-0}" -gt 0 ] || fail "expected live allocations in region 0 at the breakpoint"

# 2. heap-map prints the kernel's sections (region line and map), line for line.
kmaps=$(sections <"$serial.txt")
gmaps=$(between "$gdblog" '==maps==' '==end==' | sections)
[ "$(grep -c '^HEAPMAP region ' <<<"$kmaps")" -eq "$regions" ] || fail "the kernel printed no map for some region"
[ "$kmaps" = "$gmaps" ] || fail "heap-map differs from the kernel's regions' maps:
$(diff <(echo "$kmaps") <(echo "$gmaps") | head -20)"
kwin=$(awk '/^HEAPMAP v1 blocks=256 /{m=1} m{print} /^HEAPMAP end/{m=0}' "$serial.txt")
gwin=$(between "$gdblog" '==window==' 'VGA|' | awk '/^HEAPMAP v1 blocks=256 /{m=1} m{print} /^HEAPMAP end/{m=0}')
[ -n "$kwin" ] || fail "the kernel printed no map of blocks 0..255"
[ "$kwin" = "$gwin" ] || fail "'heap-map 1 64 --blocks=256 --region=0' differs from the kernel's map of blocks 0..255:
$(diff <(echo "$kwin") <(echo "$gwin"))"

# 3. print went to the VGA screen too: it shows the last region's last map row.
last_row=$(tail -2 <<<"$kmaps" | head -1)
sed -n 's/^VGA|//p' "$gdblog" | grep -qxF -- "$last_row" || fail "the VGA screen does not show the last map row ('$last_row')"

# 4. heap-check finds nothing wrong, before and after the corruption.
[ "$(grep -c "^heap-check: OK ($regions regions, " "$gdblog")" -eq 2 ] || fail "heap-check: expected OK for the $regions regions before and after the corruption"
# (every region OK before and after; all but the corrupted one during)
[ "$(grep -c '^heap-check: region [0-9]*: OK' "$gdblog")" -eq $((3 * regions - 1)) ] || fail "heap-check: expected every region OK"

# 5. ... and finds a corruption made through gdb (a stray HAS_NEXT on the
# highest region's last entry, free in the kernel's map), which is then undone.
top=$((regions - 1))
blocks=$(sed -nE "s/^HEAPMAP region $top of $regions .* blocks=([0-9]+)$/\1/p" "$serial.txt")
[ "$(tail -c 2 <<<"$(tail -2 <<<"$kmaps" | head -1)")" = "." ] || fail "expected the highest region's last block to be free"
grep -q "^heap-check: region $top: BAD block $((blocks - 1)) .*flags on a free entry" "$gdblog" ||
    fail "heap-check missed a stray flag on region $top's block $((blocks - 1))"
grep -q "^heap-check: BAD (1 of $regions regions)" "$gdblog" || fail "heap-check: no summary naming the bad region"

echo "test-gdb ($arch): ok: breakpoint hit; $regions regions: heap-stats = the kernel's statistics of each, heap-map = its maps; heap-check OK, and BAD at region $top's block $((blocks - 1)) after a corruption; VGA shows the map"

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
# x86_64 also has the kvmalloc window (--window): `heap-stats --window`,
# `heap-map --window` and `heap-check --window` must print the kernel's
# window section (its `HEAPMAP window` line, statistics, map and
# `HEAPMAP backing` lines) exactly, with the live window allocations the
# self-test leaves (one backed by several runs of region 0, one by the
# highest region); heap-check --window says OK, then names V4, V3 and V6
# after gdb breaks the record's order, points an entry at a non-VMAP block
# and rewrites a page table entry of the window, each undone.
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
    # the window: its section, then V4, V3 and V6 faults made and undone
    win_cmds=(-ex 'echo ==kvstats==\n' -ex 'heap-stats --window' -ex 'echo ==kvmap==\n' -ex 'heap-map --window'
        -ex 'echo ==kvcheck==\n' -ex 'heap-check --window'
        -ex 'set var $b0 = kernel_window.backing[0]' -ex 'set var $b1 = kernel_window.backing[1]'
        -ex 'set var kernel_window.backing[1] = $b0' -ex 'heap-check --window'
        -ex 'set var kernel_window.backing[1] = $b1' -ex 'set var kernel_window.backing[0] = kernel_regions.slot[kernel_regions.order[0]].heap.saddr'
        -ex 'heap-check --window' -ex 'set var kernel_window.backing[0] = $b0'
        -ex 'set var window_pt[0][0] = window_pt[0][0] ^ 0x1000' -ex 'heap-check --window'
        -ex 'set var window_pt[0][0] = window_pt[0][0] ^ 0x1000' -ex 'heap-check --window' -ex 'echo ==kvend==\n')
else
    qemu=qemu-system-i386 mem=${4:-128M} tag=
    gdb_arch=() brk=break
    win_cmds=(-ex 'echo ==kvcheck==\n' -ex 'heap-check --window' -ex 'echo ==kvend==\n')
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
    "${win_cmds[@]}" \
    -ex 'echo corrupting the last table entry of the highest region:\n' -ex "$last" \
    -ex 'set var $h->table->entries[$h->table->total - 1] = 0x80' -ex heap-check \
    -ex 'set var $h->table->entries[$h->table->total - 1] = 0' -ex heap-check \
    "$elf" >"$gdblog" 2>&1
rc=$?
[ $rc -eq 124 ] && fail "gdb timed out after ${timeout_s}s"
grep -q 'kernel_selftest_done' "$gdblog" && grep -Eq '^(Breakpoint|Hardware assisted breakpoint) 1, ' "$gdblog" ||
    fail "gdb did not stop at kernel_selftest_done (gdb exit $rc)"
grep -v -e '^peachheap: --window: this kernel has no kvmalloc window' -e '^peachheap: commands ' "$gdblog" |
    grep -qi 'Python Exception\|Undefined command\|^Error\|^peachheap: ' && fail "the gdb script failed"

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

# 3. print went to the VGA screen too: it shows the last region's last map
# row (i686), or the first 80 columns of the window's last line (x86_64).
last_row=$(tail -2 <<<"$kmaps" | head -1)
[ "$arch" = x86_64 ] && last_row=$(grep '^HEAPMAP backing end ' "$serial.txt" | tail -1 | cut -c1-80 | sed 's/ *$//')
sed -n 's/^VGA|//p' "$gdblog" | grep -qxF -- "$last_row" || fail "the VGA screen does not show the last line printed ('$last_row')"

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

# 6. the kvmalloc window (x86_64): the kernel's section, line for line.
window_note=
if [ "$arch" = x86_64 ]; then
    kwsec=$(awk '/^HEAPMAP window /{m = 1} m {print} /^HEAPMAP backing end /{m = 0}' "$serial.txt")
    [ -n "$kwsec" ] || fail "the kernel printed no HEAPMAP window section"
    kwhead=$(grep '^HEAPMAP window ' <<<"$kwsec")
    [ "$(between "$gdblog" '==kvstats==' '==kvmap==' | head -2)" = "$kwhead
$(grep '^kheap window: ' <<<"$kwsec")" ] ||
        fail "heap-stats --window differs from the kernel's window line and statistics:
$(between "$gdblog" '==kvstats==' '==kvmap==')"
    between "$gdblog" '==kvstats==' '==kvmap==' | grep -q '^heap-stats: window counters .*: agree with the table$' ||
        fail "heap-stats --window: counters disagree with the table"
    gwsec=$(between "$gdblog" '==kvmap==' '==kvcheck==')
    [ "$(grep -v '^kheap window: ' <<<"$kwsec")" = "$gwsec" ] || fail "heap-map --window differs from the kernel's window section:
$(diff <(grep -v '^kheap window: ' <<<"$kwsec") <(echo "$gwsec") | head -20)"
    # the live window allocations the self-test left: two, one with several runs in region 0, one in the highest
    grep -Eq '^HEAPMAP backing alloc=1 window=0 blocks=48 runs=([2-9]|[1-9][0-9]+) 0:[0-9]+\+[0-9]+ 0:' <<<"$gwsec" ||
        fail "heap-map --window: no window allocation of 48 blocks backed by several runs of region 0"
    grep -Eq "^HEAPMAP backing alloc=2 window=64 blocks=32 runs=1 $((regions - 1)):[0-9]+\+32\$" <<<"$gwsec" ||
        fail "heap-map --window: no window allocation of 32 blocks backed by region $((regions - 1))"
    grep -q '^HEAPMAP end used=80 free=16304 largest_free=16288 allocations=2 ' <<<"$gwsec" || fail "heap-map --window: the window's end line"
    checks=$(between "$gdblog" '==kvcheck==' '==kvend==' | grep '^heap-check: window: ')
    [ "$(wc -l <<<"$checks")" -eq 5 ] || fail "heap-check --window: expected 5 verdicts, got:
$checks"
    sed -n 1p <<<"$checks" | grep -Eq '^heap-check: window: OK \(16384 blocks, 80 used in 2 allocations, 80 backing blocks in [0-9]+ runs over '"$regions"' regions; V1..V5, V6 against the page tables\)$' ||
        fail "heap-check --window: not OK at first"
    sed -n 2p <<<"$checks" | grep -q '^heap-check: window: BAD V4 window block 1 (0x8000001000): ' || fail "heap-check --window missed a record out of order (V4)"
    sed -n 3p <<<"$checks" | grep -q '^heap-check: window: BAD V3 window block 0 (0x8000000000): backing\[0\] = 0x1000000 (region 0 block 0) has table byte 0x[0-9a-f]*, not 0x45' ||
        fail "heap-check --window missed an entry naming a non-VMAP block (V3)"
    sed -n 4p <<<"$checks" | grep -q '^heap-check: window: BAD V6 window block 0 (0x8000000000): the page table maps ' || fail "heap-check --window missed a rewritten page table entry (V6)"
    [ "$(sed -n 5p <<<"$checks")" = "$(sed -n 1p <<<"$checks")" ] || fail "heap-check --window: not OK again after the faults were undone"
    window_note="; the window: heap-map --window = the kernel's section ($(grep -c '^HEAPMAP backing alloc=' <<<"$gwsec") backing lines), heap-check --window OK, then V4, V3, V6 found"
else
    between "$gdblog" '==kvcheck==' '==kvend==' | grep -q '^peachheap: --window: this kernel has no kvmalloc window' ||
        fail "heap-check --window on the i686 kernel: expected 'no kvmalloc window'"
fi

echo "test-gdb ($arch): ok: breakpoint hit; $regions regions: heap-stats = the kernel's statistics of each, heap-map = its maps; heap-check OK, and BAD at region $top's block $((blocks - 1)) after a corruption; VGA shows the map$window_note"

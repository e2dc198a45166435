#!/usr/bin/env bash
# tests/boot/test-boot.sh KERNEL_ELF PANIC_ELF - boot the kernel under QEMU
# (TCG) and check what it prints on serial (make test-boot):
#
#   1. -m 128M: exit status 33 (self-test passed), "selftest: N passed, 0 failed"
#      (N >= 30), no FAIL line, the paging cases (selftest_paging.c), the
#      statistics line, both heap maps with their end lines, and the boot
#      checks' lines.
#      The memory map and the heap regions built from it: the seed's region
#      first, the RAM above it (0x07400000..128 MiB) a second region, the
#      regions case (a run only the second region can give lands there,
#      every byte read back), one section per region at the end.
#   2. -m 512M: the same boot; the second region holds the RAM up to 512 MiB
#      and the regions case's run is one block more than the seed's region.
#   3. -m 64M: the kernel refuses cleanly: its message and exit status 37.
#   4. The panic build (PEACHOS_HEAP_PANIC_ON_BAD_FREE=1, SELFTEST_PANIC_PROBE):
#      right after kheap_init it frees a block twice; the second free must
#      be reported and end in "PANIC: bad free of <that block>", exit 39.
#
# A hang ends at the timeout (exit 124), a triple fault exits 0: both fail
# with a message saying so. Logs: build/kernel/boot-128M.log, boot-512M.log, boot-64M.log,
# build/kernel-panic/boot-panic.log.
set -u
elf=${1:-build/kernel/peachos.elf}
panic_elf=${2:-build/kernel-panic/peachos.elf}
out=$(dirname "$elf")
timeout_s=${QEMU_TIMEOUT:-60}

STEP=test-boot
# shellcheck source=tests/boot/boot-lib.sh
. "$(dirname "$0")/boot-lib.sh"

boot() { # MEM LOG [ELF] -> sets rc
    local start=$(date +%s%N)
    timeout "$timeout_s" qemu-system-i386 -kernel "${3:-$elf}" -m "$1" -serial stdio -display none -net none \
        -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null 2>"$2.stderr" | tr -d '\r' >"$2"
    rc=${PIPESTATUS[0]}
    local ms=$((($(date +%s%N) - start) / 1000000))
    echo "test-boot: ${3:+panic build, }-m $1: qemu exit $rc: $(explain "$rc"), $((ms / 1000)).$(printf %03d $((ms % 1000)))s, $(wc -l <"$2") lines in $2"
}

need_line() { # LOG REGEX WHAT
    grep -Eq -- "$2" "$1" || fail "$3: no line matching /$2/ in $1"
}

# ---- 1. a machine with enough memory: everything passes ----
log=$out/boot-128M.log
boot 128M "$log"
[ "$rc" -eq 33 ] || fail "-m 128M: expected qemu exit 33, got $(explain "$rc")"
need_line "$log" '^boot: multiboot magic ok, lower memory [0-9]+ KiB, upper memory [0-9]+ KiB' "boot check"
need_line "$log" '^kheap: ready$' "kheap_init"
need_line "$log" '^selftest: [0-9]+ passed, 0 failed$' "self-test summary"
if grep -q '^FAIL' "$log"; then
    fail "failed self-test cases:"
    grep -A0 -B3 '^FAIL' "$log" | sed 's/^/    /'
fi
passed=$(sed -nE 's/^selftest: ([0-9]+) passed, 0 failed$/\1/p' "$log")
[ -n "$passed" ] && [ "$passed" -ge 30 ] || fail "expected at least 30 passed cases, got '${passed}'"
[ "$(grep -c '^PASS' "$log")" = "${passed:-x}" ] || fail "PASS lines ($(grep -c '^PASS' "$log")) != summary (${passed})"
need_line "$log" 'exactly 25600 blocks' "exhaustion case"
# The kmalloc family's edges ran and passed.
need_line "$log" '^PASS kmalloc family: kcalloc zeroes; n \* size overflow returns NULL' "kcalloc case"
need_line "$log" '^PASS kmalloc family: krealloc\(NULL, n\) allocates, krealloc\(p, 0\) frees' "krealloc NULL/0 case"
need_line "$log" '^PASS kmalloc family: krealloc shrinks in place' "krealloc resize case"
need_line "$log" '^PASS kmalloc family: ksize is 0 for NULL, interior, freed and outside' "ksize case"
need_line "$log" '^PASS kcache: an overrun into a slab changes no allocator state' "overrun into a slab case"
need_line "$log" '^PASS kcache poison: a write after free is reported' "poison case"
# The paging consumer (selftest_paging.c): kmalloc-family memory mapped into a
# user page directory page by page, the way PeachOS maps it.
need_line "$log" '^PASS paging: kernel directory identity-maps 4 GiB' "paging on"
need_line "$log" '^PASS paging: paging_map_to refuses an unaligned virt, phys or phys_end' "paging alignment rule"
need_line "$log" '^PASS paging: kzalloc/kmalloc/kcalloc buffers at every class boundary and past a block: 4096-aligned' "paging: whole-page buffers"
need_line "$log" '^PASS paging: every buffer mapped page by page into a user directory' "paging: user mappings"
need_line "$log" '^PASS paging: a pattern per buffer written through the user directory' "paging: writes through the user directory"
need_line "$log" '^PASS paging: everything freed, paging off' "paging: teardown"
need_line "$log" '^kheap stats: total=25600 used=[0-9]+ free=[0-9]+ largest_free=[0-9]+ allocations=[0-9]+' "statistics"
need_line "$log" '^kcache stats: slabs=[0-9]+' "cache statistics"
need_line "$log" '^HEAPMAP v1 blocks=256 per_char=1 width=64$' "detailed map header"
need_line "$log" '^HEAPMAP v1 blocks=25600 per_char=25 width=64$' "whole map header"
# The self-test's two maps come before the regions' sections.
[ "$(sed '/^heap map: every region/q' "$log" | grep -Ec '^[0-9a-f]{8} [.#=Cc1-9?]{1,64}$')" -eq 20 ] ||
    fail "expected 4 + 16 map lines before the regions' sections"
grep -Eq '^[0-9a-f]{8} .*\?' "$log" && fail "the map shows invalid ('?') entries"
# The map's end line agrees with the statistics line.
stats=$(sed -nE 's/^kheap stats: total=25600 used=([0-9]+) free=([0-9]+) largest_free=([0-9]+) allocations=([0-9]+) rejected_frees=([0-9]+).*/used=\1 free=\2 largest_free=\3 allocations=\4 rejected_frees=\5/p' "$log")
grep -q "^HEAPMAP end $stats\$" "$log" || fail "no 'HEAPMAP end $stats' matching the statistics line"
used=$(sed -nE 's/^kheap stats: .* used=([0-9]+) .*/\1/p' "$log")
[ "${used:-0}" -gt 0 ] || fail "the self-test should leave live allocations (used=${used})"
need_line "$log" '^kernel: self-test passed, exiting$' "final line"

# The map and the regions (both machines).
regions_boot() { # LOG MEM KPALLOC_REGEX
    local log=$1 mem=$2
    need_line "$log" '^mmap: 0x0000000000100000\.\.0x00000000[0-9a-f]{8} length 0x[0-9a-f]+ type 1 available' "$mem: the map's RAM above 1 MiB"
    need_line "$log" '^mmap: [0-9]+ MiB available, highest available address 0x[0-9a-f]+$' "$mem: the map's summary"
    need_line "$log" '^kheap: region 1: pool 0x00000000074[0-9a-f]{5}\.\.0x00000000[0-9a-f]{8} \([0-9]+ blocks, [0-9]+ MiB\), table at 0x7400000$' "$mem: a region of the RAM above the seed's"
    check_regions "$log" "$mem"
    [ "$regions" = 2 ] || fail "$mem: expected 2 regions, got '$regions'"
    need_line "$log" "^regions: [0-9]+ runs filled the 1 region\\(s\\) below the highest; kpalloc\\($3\\) = 0x74[0-9a-f]{5} \\(region 1 at 0x74[0-9a-f]{5}\\); $3 bytes written and read back, 0 words differ$" "$mem: the regions case's allocation"
    need_line "$log" '^PASS kheap regions: a run the lower regions cannot give lands in the highest region' "$mem: the regions case"
}
regions_boot "$log" 128M '[0-9]+'
passed128=$passed

# ---- 2. more memory: the second region grows ----
log=$out/boot-512M.log
boot 512M "$log"
[ "$rc" -eq 33 ] || fail "-m 512M: expected qemu exit 33, got $(explain "$rc")"
need_line "$log" '^selftest: [0-9]+ passed, 0 failed$' "512M: self-test summary"
grep -q '^FAIL' "$log" && fail "512M: failed self-test cases: $(grep '^FAIL' "$log" | head -3)"
need_line "$log" '^kheap: region 1: pool 0x00000000074[0-9a-f]{5}\.\.0x000000001ffe0000 \(101319 blocks, 395 MiB\)' "512M: the second region up to 512 MiB"
regions_boot "$log" 512M 104861696
passed=$passed128

# ---- 3. too little memory: a clean refusal ----
log=$out/boot-64M.log
boot 64M "$log"
[ "$rc" -eq 37 ] || fail "-m 64M: expected qemu exit 37 (refused), got $(explain "$rc")"
need_line "$log" '^boot: REFUSED: not enough memory for the kernel heap' "refusal message"
need_line "$log" '^boot: the heap needs memory up to 0x07400000' "refusal details"
grep -q '^kheap: ready' "$log" && fail "-m 64M: the kernel created the heap anyway"
grep -q '^selftest:' "$log" && fail "-m 64M: the kernel ran the self-test anyway"

# ---- 4. the panic build: an unannounced bad free halts the kernel ----
panic_log=$(dirname "$panic_elf")/boot-panic.log
boot 128M "$panic_log" "$panic_elf"
[ "$rc" -eq 39 ] || fail "panic build: expected qemu exit 39 (panic), got $(explain "$rc")"
need_line "$panic_log" '^kheap: ready$' "panic build: kheap_init"
# The probe names its block; the report and the PANIC line must name the same.
block=$(sed -nE 's/^probe: kmalloc\(4096\) = (0x[0-9a-f]{8}), pattern intact; freeing it twice.*/\1/p' "$panic_log")
if [ -z "$block" ]; then
    fail "panic build: no 'probe: kmalloc(4096) = <ptr>, pattern intact' line in $panic_log"
else
    need_line "$panic_log" "^kheap: refused free of $block \\(block [0-9]+\\): block is free \\(double free\\?\\) \\(reason 3\\)\$" \
        "panic build: the report of the double free (not marked as expected)"
    [ "$(tail -n 1 "$panic_log")" = "PANIC: bad free of $block: block is free (double free?) (reason 3, PEACHOS_HEAP_PANIC_ON_BAD_FREE=1)" ] ||
        fail "panic build: the last line is '$(tail -n 1 "$panic_log")', expected 'PANIC: bad free of $block: ...'"
fi
grep -q '^probe: the bad free returned' "$panic_log" && fail "panic build: the bad free returned instead of panicking"
grep -q '^selftest:' "$panic_log" && fail "panic build: the self-test ran after the bad free"

if [ "$fails" -ne 0 ]; then
    echo "test-boot: $fails problem(s); serial logs: $out/boot-128M.log $out/boot-512M.log $out/boot-64M.log $panic_log"
    exit 1
fi
echo "test-boot: ok (128M: $passed cases passed, 2 regions, exit 33; 512M: 2 regions, 101,319 blocks above the seed's, exit 33; 64M: refused, exit 37; panic build: PANIC on the bad free, exit 39)"

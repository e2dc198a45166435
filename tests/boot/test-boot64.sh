#!/usr/bin/env bash
# tests/boot/test-boot64.sh KERNEL64_ELF - boot the x86_64 kernel under
# qemu-system-x86_64 (TCG) and check what it prints on serial (make test-boot64):
#
#   1. -m 128M, -m 3584M (QEMU's PCI hole splits RAM: 3 GiB below 4 GiB, the
#      rest above) and -m 6G (3 GiB above 4 GiB): exit 33; long mode (EFER.LMA);
#      the identity map reaches the highest available RAM; the memory map
#      lists the RAM QEMU was given (within 2 MiB), above 4 GiB when there is
#      some, and the words written there read back; the self-test passes
#      (at least 32 cases, 0 failed, among them the six paging cases over
#      4-level tables), statistics, both maps. The heap regions built from the
#      map (src/kernel/kheap_port_regions.c): the seed's first, one of RAM
#      above it, with RAM above 4 GiB (3584M, 6G) a region there; the
#      regions case's PASS line (a run only the highest region can give
#      lands there - above 4 GiB, one block more than the seed's region, at
#      3584M and 6G - every byte read back); one section per region at the
#      end (boot-lib.sh's check_regions). The window of virtually
#      contiguous allocations (selftest_vmalloc64.c, kheap_window64.c): the
#      first region fragmented to single free blocks, kmalloc(32 MiB) from
#      8,192 of them mapped in the window, every byte read back, 0 words
#      differ, and its PASS line, at every layout. Then the window
#      allocations it leaves live for the map (48 blocks from several runs
#      of region 0, 32 from the highest region, a hole between) and the
#      window's section at the end (boot-lib.sh's check_window).
#   2. -m 32M: refused (exit 37) with the memory map shown first.
#   3. -cpu qemu32 (no long mode): refused by boot64.S (exit 37).
#
# A hang ends at the timeout (124), a triple fault exits 0: both fail.
# Logs: build/kernel64/boot64-<mem>.log.
set -u
elf=${1:-build/kernel64/peachos64.elf}
out=$(dirname "$elf")
timeout_s=${QEMU_TIMEOUT:-60}
summary=()

STEP=test-boot64
# shellcheck source=tests/boot/boot-lib.sh
. "$(dirname "$0")/boot-lib.sh"

boot() { # MEM LOG [QEMU ARGS...] -> sets rc
    local mem=$1 log=$2 start
    shift 2
    start=$(date +%s%N)
    timeout "$timeout_s" qemu-system-x86_64 -kernel "$elf" -m "$mem" "$@" -serial stdio -display none -net none \
        -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null 2>"$log.stderr" | tr -d '\r' >"$log"
    rc=${PIPESTATUS[0]}
    local ms=$((($(date +%s%N) - start) / 1000000))
    echo "test-boot64: -m $mem${*:+ $*}: qemu exit $rc: $(explain "$rc"), $((ms / 1000)).$(printf %03d $((ms % 1000)))s, $(wc -l <"$log") lines in $log"
}

need_line() { # LOG REGEX WHAT
    grep -Eq -- "$2" "$1" || fail "$3: no line matching /$2/ in $1"
}

# ---- 1. enough memory: long mode, the map, the self-test ----
for mem in 128M 3584M 6G; do
    log=$out/boot64-$mem.log
    boot "$mem" "$log"
    [ "$rc" -eq 33 ] || fail "-m $mem: expected qemu exit 33, got $(explain "$rc")"
    need_line "$log" '^boot: long mode: EFER 0x[0-9a-f]+ \(LME 1, LMA 1\), CR0.PG 1, CR4.PAE 1, CS 0x8,' "$mem: long mode"
    need_line "$log" '^boot: multiboot magic ok' "$mem: boot check"
    mib=$(( ${mem%[MG]} * $([ "${mem: -1}" = G ] && echo 1024 || echo 1) ))
    avail=$(sed -nE 's/^mmap: ([0-9]+) MiB available, highest available address (0x[0-9a-f]+)$/\1/p' "$log")
    top=$(sed -nE 's/^mmap: [0-9]+ MiB available, highest available address (0x[0-9a-f]+)$/\1/p' "$log")
    gib=$(sed -nE 's/^paging: identity map 0x0\.\.0x[0-9a-f]+ \(([0-9]+) GiB\) in 2 MiB pages.*/\1/p' "$log")
    if [ -z "$avail" ] || [ -z "$gib" ]; then
        fail "$mem: no 'mmap: N MiB available' or 'paging: identity map' line"
    else
        [ "$avail" -le "$mib" ] && [ "$avail" -ge $((mib - 2)) ] ||
            fail "$mem: the map lists $avail MiB available, expected $mib MiB less the BIOS's bits"
        [ $((gib << 30)) -ge $((top)) ] || fail "$mem: $gib GiB mapped, RAM reaches $top"
    fi
    [ "$(grep -c '^mmap: 0x[0-9a-f]\{16\}\.\.0x[0-9a-f]\{16\} length 0x[0-9a-f]* type [0-9]' "$log")" -ge 3 ] ||
        fail "$mem: fewer than 3 memory map entries printed"
    if [ "$mib" -gt 3072 ]; then
        need_line "$log" '^mmap: 0x00000001[0-9a-f]{8}\.\.0x[0-9a-f]{16} length 0x[0-9a-f]+ type 1 available' "$mem: RAM above 4 GiB"
        need_line "$log" '^mmap:   above 4 GiB: [0-9]+ words .* written and read back, 0 differ$' "$mem: RAM above 4 GiB reads back"
    else
        grep -q 'above 4 GiB' "$log" && fail "$mem: RAM above 4 GiB reported on a machine with $mib MiB"
    fi
    need_line "$log" '^kheap: ready$' "$mem: kheap_init"
    need_line "$log" "^kheap: region 0: pool 0x0000000001000000\.\.0x0000000007400000 \(25600 blocks, 100 MiB\), table at 0x7e00 - the seed's" "$mem: the seed's region first"
    need_line "$log" '^kheap: region 1: pool 0x00000000074[0-9a-f]{5}\.\.' "$mem: a region of the RAM above the seed's"
    need_line "$log" '^kheap: [0-9]+ regions, [0-9]+ blocks' "$mem: the regions' summary"
    if [ "$mib" -gt 3072 ]; then
        need_line "$log" '^kheap: region [0-9]+: pool 0x00000001[0-9a-f]{8}\.\.0x[0-9a-f]{16} \([0-9]+ blocks, [0-9]+ MiB\), table at 0x1[0-9a-f]{8} - above 4 GiB$' "$mem: a heap region above 4 GiB"
        need_line "$log" '^regions: [0-9]+ runs filled the 2 region\(s\) below the highest; kpalloc\(104861696\) = 0x1[0-9a-f]{8} \(region 2 at 0x1[0-9a-f]{8}, above 4 GiB\); 104861696 bytes written and read back, 0 words differ$' "$mem: the allocation above 4 GiB"
    else
        need_line "$log" '^regions: [0-9]+ runs filled the 1 region\(s\) below the highest; kpalloc\([0-9]+\) = 0x74[0-9a-f]{5} .* 0 words differ$' "$mem: the allocation in the second region"
    fi
    need_line "$log" '^PASS kheap regions: a run the lower regions cannot give lands in the highest region' "$mem: the regions case"
    need_line "$log" '^vmalloc: first region fragmented \([0-9]+ single free blocks, longest run 1\); kmalloc\(33554432\) = 0x[0-9a-f]+ in the window at 0x[0-9a-f]+; 33554432 bytes written and read back, 0 words differ$' "$mem: kmalloc from scattered blocks through the window"
    need_line "$log" '^PASS kheap vmalloc: more than the longest free run, from scattered blocks in address order mapped in the window' "$mem: the vmalloc case"
    grep -q '^SKIP kheap vmalloc' "$log" && fail "$mem: the vmalloc case was skipped (kernel built without PEACHOS_KHEAP_VMALLOC)"
    check_regions "$log" "$mem"
    need_line "$log" "^vmalloc: left live in the window for the map: 0x8000000000 \\(48 blocks, backed by ([2-9]|[1-9][0-9]+) runs of region 0\\), 0x8000040000 \\(32 blocks, backed by 1 run\\(s\\) of region $((regions - 1))\\), a hole of 16 blocks between; 0 words differ\$" "$mem: window allocations left live"
    need_line "$log" '^PASS kheap vmalloc: window allocations left live for the map, backed by scattered blocks of the first region and by the highest region, kheap_check clean$' "$mem: the live window case"
    window_runs=
    check_window "$log" "$mem"
    # selftest_paging.c's cases over 4-level tables (src/kernel64/paging64.c)
    need_line "$log" '^PASS paging: kernel PML4 identity-maps 4 GiB in 4 KiB pages .* and the RAM above in 2 MiB pages, CR3 loaded' "$mem: paging: the identity PML4"
    need_line "$log" '^PASS paging: paging_map_to refuses an unaligned virt, phys or phys_end' "$mem: paging alignment rule"
    need_line "$log" '^PASS paging: kzalloc/kmalloc/kcalloc buffers at every class boundary and past a block: 4096-aligned' "$mem: paging: whole-page buffers"
    need_line "$log" '^PASS paging: every buffer mapped page by page into a user directory' "$mem: paging: user mappings"
    need_line "$log" '^PASS paging: a pattern per buffer written through the user directory' "$mem: paging: writes through the user directory"
    need_line "$log" "^PASS paging: everything freed, boot64.S's page tables back in CR3" "$mem: paging: teardown"
    if grep -q '^FAIL' "$log"; then
        fail "$mem: failed self-test cases:"
        grep -B3 '^FAIL' "$log" | sed 's/^/    /'
    fi
    passed=$(sed -nE 's/^selftest: ([0-9]+) passed, 0 failed$/\1/p' "$log")
    [ -n "$passed" ] && [ "$passed" -ge 33 ] || fail "$mem: expected at least 33 passed cases and 0 failed, got '${passed}'"
    [ "$(grep -c '^PASS' "$log")" = "${passed:-x}" ] || fail "$mem: PASS lines != the summary's ${passed}"
    need_line "$log" 'exactly 25600 blocks' "$mem: exhaustion case"
    need_line "$log" '^kheap stats: total=25600 used=[0-9]+' "$mem: statistics"
    need_line "$log" '^HEAPMAP v1 blocks=25600 per_char=25 width=64$' "$mem: whole map"
    need_line "$log" '^kernel: self-test passed, exiting$' "$mem: final line"
    summary+=("$mem: $passed passed, $avail MiB in the map, $gib GiB mapped, window: 80 blocks in 2 allocations from ${window_runs:-?} runs")
done

# ---- 2. too little memory: a clean refusal, after the map ----
log=$out/boot64-32M.log
boot 32M "$log"
[ "$rc" -eq 37 ] || fail "-m 32M: expected qemu exit 37 (refused), got $(explain "$rc")"
need_line "$log" '^mmap: [0-9]+ MiB available' "32M: the memory map"
need_line "$log" '^boot: REFUSED: not enough memory for the kernel heap' "32M: refusal message"
grep -q '^kheap: ready' "$log" && fail "-m 32M: the kernel created the heap anyway"

# ---- 3. no long mode: boot64.S refuses ----
log=$out/boot64-qemu32.log
boot 128M "$log" -cpu qemu32
[ "$rc" -eq 37 ] || fail "-cpu qemu32: expected qemu exit 37 (refused), got $(explain "$rc")"
need_line "$log" '^boot: REFUSED: this CPU has no long mode' "qemu32: refusal message"

if [ "$fails" -ne 0 ]; then
    echo "test-boot64: $fails problem(s); serial logs in $out/boot64-*.log"
    exit 1
fi
joined=$(printf "%s; " "${summary[@]}")
echo "test-boot64: ok (${joined}32M: refused, exit 37; no long mode: refused, exit 37)"

# tests/boot/boot-lib.sh - what the boot tests share (sourced by
# test-boot.sh and test-boot64.sh): failures counted under the step's name
# (STEP), and the words for a QEMU exit status (docs/kernel.md's codes).
fails=0

fail() {
    echo "$STEP: FAIL: $*"
    fails=$((fails + 1))
}

explain() { # qemu exit status -> words
    case $1 in
    33) echo "success (33)" ;;
    35) echo "self-test failed (35)" ;;
    37) echo "kernel refused to boot (37)" ;;
    39) echo "kernel panic (39)" ;;
    41) echo "kheap_init failed (41)" ;;
    124) echo "TIMEOUT after ${timeout_s}s: the kernel hangs" ;;
    0) echo "exit 0: triple fault or reset, the kernel never reached isa-debug-exit" ;;
    *) echo "unexpected status $1" ;;
    esac
}

# check_regions LOG WHAT: the heap regions a kernel built from the memory map
# (PEACHOS_KHEAP_REGIONS) and printed: the seed's region first (pool
# 0x01000000..0x07400000, table at 0x7e00), the summary, and at the end one
# section per region - a `HEAPMAP region k of n` line whose pool and blocks
# are those of the `kheap: region k` line, its `kheap region k:` statistics
# (used + free = its blocks) and its map, whose end line agrees with them -
# and the totals line, whose blocks are the sum. Sets regions (the count).
check_regions() {
    local log=$1 what=$2 problems
    grep -Eq "^kheap: region 0: pool 0x0000000001000000\.\.0x0000000007400000 \(25600 blocks, 100 MiB\), table at 0x7e00 - the seed's" "$log" ||
        fail "$what: the seed's region is not region 0"
    regions=$(sed -nE 's/^kheap: ([0-9]+) regions, [0-9]+ blocks.*/\1/p' "$log")
    [ -n "$regions" ] || { fail "$what: no 'kheap: N regions' summary"; regions=0; return; }
    problems=$(awk -v n="$regions" '
        /^kheap: region [0-9]+: pool / { k = $3 + 0; split($5, p, "\\.\\."); pool[k] = p[1] ".." p[2]; b = $6; sub(/\(/, "", b); blocks[k] = b + 0; listed++ }
        /^HEAPMAP region / { k = $3 + 0; sec = k; seen[k]++; if ($5 != n) print "section " k " says of " $5;
            split($6, p, "="); if (p[2] != pool[k]) print "section " k " pool " p[2] " != listed " pool[k];
            split($8, q, "="); if (q[2] + 0 != blocks[k]) print "section " k " blocks " q[2] " != listed " blocks[k] }
        /^kheap region [0-9]+: total=/ { k = $3 + 0; for (i = 4; i <= NF; i++) { split($i, f, "="); s[k, f[1]] = f[2] + 0 }
            if (s[k, "total"] != blocks[k] || s[k, "used"] + s[k, "free"] != blocks[k]) print "region " k " statistics do not add up";
            want[k] = "used=" s[k, "used"] " free=" s[k, "free"] " largest_free=" s[k, "largest_free"] " allocations=" s[k, "allocations"] }
        /^HEAPMAP end / && sec != "" { if (index($0, want[sec]) != 13) print "region " sec " map end line: " $0 " (statistics: " want[sec] ")"; ends[sec]++; sec = "" }
        /^kheap regions: [0-9]+ regions, total=/ { split($5, t, "="); total = t[2] + 0 }
        END { sum = 0; for (k = 0; k < n; k++) { sum += blocks[k]; if (seen[k] != 1 || ends[k] != 1) print "region " k ": " seen[k] + 0 " sections, " ends[k] + 0 " maps" }
              if (listed != n) print listed + 0 " regions listed, summary says " n;
              if (total != sum) print "totals line says " total " blocks, the regions " sum }' "$log")
    [ -z "$problems" ] || fail "$what: the regions' sections: $(echo "$problems" | head -5 | tr '\n' ';')"
}

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

# check_window LOG WHAT: the kvmalloc window's section the x86_64 kernel
# prints after the regions (src/kernel/regions_print.c), with the window
# allocations selftest_vmalloc64.c leaves live: a `HEAPMAP window` line
# (64 MiB at 512 GiB, 16,384 blocks), its statistics (80 blocks used in 2
# allocations, 80 backing blocks), its map one block per character (first
# row: 48 blocks, a hole of 16, 32 blocks) whose end line agrees, and the
# `HEAPMAP backing` lines: allocation 1 (window blocks 0..47) backed by
# several runs of region 0, allocation 2 (64..95) by one run of the highest
# region, every run inside its region, the runs adding up to each line's
# blocks, and the end line's totals. Needs check_regions' `regions`.
check_window() {
    local log=$1 what=$2 problems
    problems=$(awk -v n="${regions:-0}" '
        /^kheap: region [0-9]+: pool / { b = $6; sub(/\(/, "", b); size[$3 + 0] = b + 0 }
        /^HEAPMAP window / { headers++; if ($3 != "range=0x0000008000000000..0x0000008004000000" || $6 != "blocks=16384") print "window line: " $0 }
        /^kheap window: / { stats++; if (index($0, "kheap window: total=16384 used=80 free=16304 largest_free=16288 allocations=2 ") != 1 || $0 !~ / backing=80 map_failures=0$/) print "window statistics: " $0 }
        /^HEAPMAP v1 blocks=16384 per_char=1 width=128$/ { map = 1; next }
        map && /^00000000 / { row0 = $2 }
        map && /^HEAPMAP end / { map = 0; if (index($0, "HEAPMAP end used=80 free=16304 largest_free=16288 allocations=2 ") != 1) print "window map end line: " $0 }
        /^HEAPMAP backing alloc=/ { lines++; split($3, a, "="); split($4, w, "="); split($5, bl, "="); split($6, r, "=");
            sum = 0; regs = ""
            for (i = 7; i <= NF; i++) { split($i, t, /[:+]/); sum += t[3]; regs = regs " " t[1];
                if (!((t[1] + 0) in size) || t[2] + t[3] > size[t[1] + 0]) print "run " $i " outside its region" }
            if (NF - 6 != r[2] || sum != bl[2]) print "backing line does not add up: " $0
            alloc[a[2]] = w[2] " " bl[2] " " r[2]; where[a[2]] = regs; runs += r[2]; blocks += bl[2] }
        /^HEAPMAP backing end / { ends++; want = "HEAPMAP backing end allocations=2 blocks=" blocks " runs=" runs " lines=" lines " outside_regions=0"
            if ($0 != want) print "backing end line: " $0 " (the lines say: " want ")" }
        END {
            if (headers != 1 || stats != 1 || ends != 1) print headers + 0 " window lines, " stats + 0 " statistics, " ends + 0 " backing end lines"
            if (row0 != sprintf("#%s%s#%s%s", rep("=", 47), rep(".", 16), rep("=", 31), rep(".", 32))) print "window map row 0: " row0
            split(alloc[1], a1, " "); split(alloc[2], a2, " ")
            if (a1[1] != 0 || a1[2] != 48 || a1[3] < 2 || where[1] !~ /^( 0)+$/) print "allocation 1: window " alloc[1] " regions" where[1]
            if (a2[1] != 64 || a2[2] != 32 || a2[3] != 1 || where[2] != " " n - 1) print "allocation 2: window " alloc[2] " regions" where[2]
            if (blocks != 80) print "backing blocks: " blocks + 0 }
        function rep(c, k,   s) { s = ""; while (k-- > 0) s = s c; return s }' "$log")
    [ -z "$problems" ] || fail "$what: the window's section: $(echo "$problems" | head -5 | tr '\n' ';')"
    window_runs=$(sed -nE 's/^HEAPMAP backing end allocations=[0-9]+ blocks=[0-9]+ runs=([0-9]+) .*/\1/p' "$log")
}

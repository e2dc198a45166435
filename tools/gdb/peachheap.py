# tools/gdb/peachheap.py - look inside the PeachOS kernel heap from gdb.
#
#   gdb -x tools/gdb/peachheap.py -ex 'target remote :1234' build/kernel/peachos.elf
#   (or: make debug)
#
# Commands (they read the live block tables of a stopped kernel: every
# region of the multiheap `kernel_regions` (src/memory/heap/kheap_regions.c)
# when the kernel has one - PEACHOS_KHEAP_REGIONS, both demo kernels - one
# section per region in address order, each after a `HEAPMAP region k of n
# pool=.. table=.. blocks=..` line, the kernel's own format; else the one
# heap `kernel_heap` of src/memory/heap/kheap.c). --region=K picks one
# region, --heap=EXPR any struct heap:
#
#   heap-map   [PER_CHAR [WIDTH [MAX_LINES]]] [--from=B] [--blocks=N] [--color] [--region=K|--heap=EXPR]
#              the table as text, in heap_dump_map's format and alphabet
#              (heap.h, docs/encoding.md): with one block per character
#              '.' free, '#' first block, '=' further block, 'C'/'c' the same
#              for small-object slabs, 'V'/'v' for blocks behind the kvmalloc
#              window, '?' invalid entry; with k > 1 blocks per
#              character '.' all free, '#' all taken, '1'..'9' taken share in
#              tenths (rounded up), '?' any invalid entry. Defaults: PER_CHAR 0
#              (= the smallest that fits MAX_LINES lines), WIDTH 64, MAX_LINES
#              16 - the same map the kernel prints at the end of `make run`.
#   heap-stats [--region=K|--heap=EXPR]
#              total / used / free blocks, largest free run, live allocations,
#              slab blocks, computed from the table, next to the counters kept
#              in struct heap (used_blocks, live_allocations, rejected_frees,
#              failed_allocs); a disagreement is flagged. With several
#              regions, then the totals (largest_free: the largest of any).
#   heap-check [--region=K|--heap=EXPR]
#              the table invariants, as heap_check() verifies them: every run
#              starts with TAKEN|IS_FIRST, HAS_NEXT chains stay inside the table
#              and end on a TAKEN entry without HAS_NEXT, continuation blocks
#              carry TAKEN, no IS_FIRST and the run's type, no stray flags on
#              free entries, only known bits and types; then the counters.
#              Prints "heap-check: OK ..." or the first bad block and why.
#              With several regions: each region, then the multiheap's own
#              invariants (regions sorted by address, pools disjoint, no table
#              inside another region's pool, total_blocks the sum).
#              (The placement index is not verified here; heap_check does.)
#
# --window (x86_64 kernel, PEACHOS_KHEAP_VMALLOC: the static `kernel_window`
# behind kheap_window(), src/memory/heap/kheap_vmalloc.c) works on the
# kvmalloc window instead, in the kernel's own format (regions_print.c):
#
#   heap-map --window    the `HEAPMAP window` line, the window heap's map (one
#                        block per character, 128 wide, unless numbers say
#                        otherwise) and one `HEAPMAP backing alloc=A window=W
#                        blocks=N runs=R K:B+C ...` line per window allocation
#                        (region K's blocks B..B+C-1 behind it, in order), then
#                        `HEAPMAP backing end ...`
#   heap-stats --window  the kernel's `kheap window:` statistics line, from the
#                        window's table and counters
#   heap-check --window  kvmalloc.h's invariants: V1 the window's table (every
#                        allocation PLAIN); V2 backing[w] set exactly at taken
#                        window blocks; V3 each entry a one-block VMAP block (table
#                        byte 45) of a region; V4 rising within an allocation; V5
#                        the record's count = the window's used blocks = the VMAP
#                        blocks of all regions, and its fingerprint; V6 the
#                        window's page tables (`window_pt`, kheap_window64.c) map
#                        each taken block to its entry and nothing else.
#
# Works with plain Debian gdb (Python 3 API only: gdb.parse_and_eval,
# Inferior.read_memory). Nothing here writes to the target.

import gdb

HAS_NEXT = 0x80
IS_FIRST = 0x40
TYPE_MASK = 0x0E
TYPE_PLAIN = 0x00
TYPE_CACHE = 0x02
TYPE_VMAP = 0x04  # a block behind the kvmalloc window (kvmalloc.h): table byte 45, 'V' in the map
KNOWN_TYPES = (TYPE_PLAIN, TYPE_CACHE, TYPE_VMAP)
TAKEN = 0x01
KNOWN_BITS = HAS_NEXT | IS_FIRST | TYPE_MASK | TAKEN
MAX_WIDTH = 256

COLOURS = {
    ".": "\x1b[32m",
    "#": "\x1b[97;41m",
    "=": "\x1b[31;101m",
    "C": "\x1b[97;44m",
    "c": "\x1b[34;104m",
    "?": "\x1b[1;93;45m",
}
for _d in "123456789":
    COLOURS[_d] = "\x1b[30;43m"
RESET = "\x1b[0m"


class HeapSnapshot:
    """The heap's table and counters, read once from the target."""

    def __init__(self, expr):
        if isinstance(expr, gdb.Value):
            heap = expr
        else:
            try:
                heap = gdb.parse_and_eval(expr)
            except gdb.error as err:
                raise gdb.GdbError("peachheap: cannot read '%s': %s (is the kernel's ELF loaded?)" % (expr, err))
        if heap.type.strip_typedefs().code == gdb.TYPE_CODE_PTR:
            heap = heap.dereference()
        table_ptr = heap["table"]
        if int(table_ptr) == 0:
            raise gdb.GdbError("peachheap: %s.table is NULL: the heap is not created yet (stop after kheap_init)" % expr)
        table = table_ptr.dereference()
        self.total = int(table["total"])
        self.entries_addr = int(table["entries"])
        self.saddr = int(heap["saddr"])
        self.used_blocks = int(heap["used_blocks"])
        self.live_allocations = int(heap["live_allocations"])
        self.rejected_frees = int(heap["rejected_frees"])
        self.failed_allocs = int(heap["failed_allocs"])
        self.indexed = int(heap["index"]) != 0
        if self.total <= 0 or self.total > (1 << 32):
            raise gdb.GdbError("peachheap: implausible table size %d" % self.total)
        try:
            mem = gdb.selected_inferior().read_memory(self.entries_addr, self.total)
        except gdb.MemoryError as err:
            raise gdb.GdbError("peachheap: cannot read the table at 0x%x: %s" % (self.entries_addr, err))
        self.entries = bytes(mem)

    def largest_free_run(self):
        best = run = 0
        for e in self.entries:
            run = run + 1 if e == 0 else 0
            if run > best:
                best = run
        return best

    def table_counts(self):
        used = sum(1 for e in self.entries if e & TAKEN)
        firsts = sum(1 for e in self.entries if e & TAKEN and e & IS_FIRST)
        slab = sum(1 for e in self.entries if e & TAKEN and e & TYPE_MASK == TYPE_CACHE)
        slabs = sum(1 for e in self.entries if e & TAKEN and e & IS_FIRST and e & TYPE_MASK == TYPE_CACHE)
        return used, firsts, slab, slabs


def entry_is_bad(e):
    t = e & TYPE_MASK
    return e != 0 and ((e & ~KNOWN_BITS) != 0 or not (e & TAKEN) or t not in KNOWN_TYPES)


def block_char(e):
    if e == 0:
        return "."
    if entry_is_bad(e):
        return "?"
    first, more = {TYPE_CACHE: ("C", "c"), TYPE_VMAP: ("V", "v")}.get(e & TYPE_MASK, ("#", "="))
    return first if e & IS_FIRST else more


def group_char(entries):
    taken = 0
    for e in entries:
        if entry_is_bad(e):
            return "?"
        taken += e != 0
    n = len(entries)
    if taken == 0:
        return "."
    if taken == n:
        return "#"
    tenths = (taken * 10 + n - 1) // n
    return str(min(tenths, 9))


def parse_args(arg, numbers_allowed):
    """Split 'heap-map' style arguments into numbers and --options."""
    nums, opts = [], {}
    for word in gdb.string_to_argv(arg):
        if word.startswith("--"):
            key, _, value = word[2:].partition("=")
            opts[key] = value if value != "" else True
        elif numbers_allowed:
            try:
                nums.append(int(word, 0))
            except ValueError:
                raise gdb.GdbError("peachheap: not a number: %s" % word)
        else:
            raise gdb.GdbError("peachheap: unexpected argument: %s" % word)
    return nums, opts


def multiheap_regions():
    """The regions of the kernel's multiheap in address order (struct heap
    values), or None when the kernel has none (one region) or not yet."""
    try:
        mh = gdb.parse_and_eval("kernel_regions")
        count = int(mh["count"])
    except gdb.error:
        return None
    if count <= 0 or count > 64:
        return None
    return [mh["slot"][int(mh["order"][k])]["heap"] for k in range(count)]


def region_line(k, n, snap):
    """The kernel's own header of region k's section (regions_print.c)."""
    return ("HEAPMAP region %d of %d pool=0x%016x..0x%016x table=0x%016x blocks=%d"
            % (k, n, snap.saddr, snap.saddr + snap.total * 4096, snap.entries_addr, snap.total))


def heaps(opts):
    """[(k, n, HeapSnapshot)]: every region (k, n), or one heap (k None)."""
    expr = opts.get("heap")
    if expr is True:
        raise gdb.GdbError("peachheap: --heap needs an expression, e.g. --heap=kernel_heap")
    if expr is not None:
        return [(None, 1, HeapSnapshot(expr))]
    regions = multiheap_regions()
    want = opts.get("region")
    if regions is None:
        if want not in (None, True) and int(want, 0) != 0:
            raise gdb.GdbError("peachheap: --region=%s: the kernel has one heap (kernel_heap)" % want)
        return [(None, 1, HeapSnapshot("kernel_heap"))]
    n = len(regions)
    if want not in (None, True):
        k = int(want, 0)
        if k < 0 or k >= n:
            raise gdb.GdbError("peachheap: --region=%d: the kernel has regions 0..%d" % (k, n - 1))
        return [(k, n, HeapSnapshot(regions[k]))]
    return [(k, n, HeapSnapshot(h)) for k, h in enumerate(regions)]


MIX_MASK = (1 << 64) - 1


def kvmalloc_mix(address):
    """kvmalloc.c's kvmalloc_mix: the record's fingerprint of one block address."""
    x = address & MIX_MASK
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MIX_MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MIX_MASK
    return x ^ (x >> 31)


class WindowSnapshot:
    """The kernel's kvmalloc window (kheap_vmalloc.c's `kernel_window`), read once."""

    def __init__(self):
        try:
            kv = gdb.parse_and_eval("kernel_window")
            ready = int(gdb.parse_and_eval("kernel_window_ready"))
        except gdb.error:
            raise gdb.GdbError("peachheap: --window: this kernel has no kvmalloc window "
                               "(built without PEACHOS_KHEAP_VMALLOC; the x86_64 kernel has one)")
        if not ready:
            raise gdb.GdbError("peachheap: --window: the window is not set up (stop after kheap_init)")
        self.heap = HeapSnapshot(kv["window"])
        self.total = self.heap.total
        self.backing_addr = int(kv["backing"])
        self.count = int(kv["blocks"])
        self.fingerprint = int(kv["fingerprint"])
        self.failed_allocs = int(kv["failed_allocs"])
        self.map_failures = int(kv["map_failures"])
        self.sources = [HeapSnapshot(kv["source"][i]) for i in range(int(kv["sources"]))]
        size = gdb.lookup_type("void").pointer().sizeof
        raw = bytes(gdb.selected_inferior().read_memory(self.backing_addr, self.total * size))
        self.backing = [int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), size)]

    def place(self, address):
        """(region, block) of a backing address, or None."""
        for k, src in enumerate(self.sources):
            if src.saddr <= address < src.saddr + src.total * 4096:
                return k, (address - src.saddr) // 4096
        return None

    def allocations(self):
        """[(first window block, blocks)] from the window's table."""
        out, e, w = [], self.heap.entries, 0
        while w < self.total:
            if e[w] & TAKEN and e[w] & IS_FIRST:
                n = 1
                while e[w + n - 1] & HAS_NEXT and w + n < self.total:
                    n += 1
                out.append((w, n))
                w += n
            else:
                w += 1
        return out

    def header(self):
        return ("HEAPMAP window range=0x%016x..0x%016x table=0x%016x backing=0x%016x blocks=%d sources=%d"
                % (self.heap.saddr, self.heap.saddr + self.total * 4096, self.heap.entries_addr, self.backing_addr,
                   self.total, len(self.sources)))

    def backing_lines(self, per_line=16):
        """The kernel's `HEAPMAP backing` lines (regions_print.c's print_backing)."""
        lines, allocs, blocks, runs, strays = [], 0, 0, 0, 0
        for a, (w0, n) in enumerate(self.allocations(), 1):
            allocs += 1
            line, start = [], w0
            for w in range(w0, w0 + n):
                where = self.place(self.backing[w])
                if where is None:
                    strays += 1
                    if line:
                        lines.append((a, start, line))
                    line, start = [], w + 1
                    continue
                blocks += 1
                k, b = where
                if line and line[-1][0] == k and line[-1][1] + line[-1][2] == b:
                    line[-1][2] += 1
                    continue
                if len(line) == per_line:
                    lines.append((a, start, line))
                    start += sum(r[2] for r in line)
                    line = []
                line.append([k, b, 1])
                runs += 1
            if line:
                lines.append((a, start, line))
        out = ["HEAPMAP backing alloc=%d window=%d blocks=%d runs=%d %s"
               % (a, start, sum(r[2] for r in line), len(line), " ".join("%d:%d+%d" % tuple(r) for r in line))
               for a, start, line in lines]
        out.append("HEAPMAP backing end allocations=%d blocks=%d runs=%d lines=%d outside_regions=%d"
                   % (allocs, blocks, runs, len(lines), strays))
        return out

    def stats_line(self):
        used, firsts, _, _ = self.heap.table_counts()
        return ("kheap window: total=%d used=%d free=%d largest_free=%d allocations=%d rejected_frees=%d "
                "failed_allocs=%d backing=%d map_failures=%d"
                % (self.total, used, self.total - used, self.heap.largest_free_run(), firsts,
                   self.heap.rejected_frees, self.failed_allocs, self.count, self.map_failures))

    def page_tables(self):
        """The window's page table entries (kheap_window64.c's window_pt), or None."""
        try:
            pt = gdb.parse_and_eval("window_pt")
        except gdb.error:
            return None
        size = pt.type.sizeof
        if size < self.total * 8:
            return None
        raw = bytes(gdb.selected_inferior().read_memory(int(pt.address), self.total * 8))
        return [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]

    def first_problem(self):
        """(invariant, window block or None, why) of the first fault, or None."""
        block, why = HeapCheck.first_problem(self.heap)
        if why is not None:
            return "V1", block, "the window's table: " + why
        e = self.heap.entries
        for w in range(self.total):
            if e[w] & TAKEN and e[w] & TYPE_MASK != TYPE_PLAIN:
                return "V1", w, "window entry 0x%02x is not a PLAIN allocation" % e[w]
            if bool(e[w] & TAKEN) != (self.backing[w] != 0):
                return "V2", w, ("taken, but backing[%d] is NULL" % w if e[w] & TAKEN
                                 else "free, but backing[%d] = 0x%x" % (w, self.backing[w]))
        fingerprint = 0
        for w0, n in self.allocations():
            prev = None
            for w in range(w0, w0 + n):
                at = self.backing[w]
                where = self.place(at)
                if where is None or at % 4096 != 0:
                    return "V3", w, "backing[%d] = 0x%x is no block of any region" % (w, at)
                k, b = where
                byte = self.sources[k].entries[b]
                if byte != TAKEN | IS_FIRST | TYPE_VMAP:
                    return "V3", w, ("backing[%d] = 0x%x (region %d block %d) has table byte 0x%02x, not 0x45 "
                                     "(a one-block VMAP allocation)" % (w, at, k, b, byte))
                if prev is not None and at <= prev:
                    return "V4", w, ("backing[%d] = 0x%x does not rise above the block before it (0x%x)"
                                     % (w, at, prev))
                prev = at
                fingerprint = (fingerprint + kvmalloc_mix(at)) & MIX_MASK
        used = self.heap.table_counts()[0]
        vmap = sum(1 for src in self.sources for x in src.entries if x & TAKEN and x & TYPE_MASK == TYPE_VMAP)
        if not self.count == used == vmap:
            return "V5", None, ("the record counts %d blocks, the window has %d used, the regions %d VMAP blocks"
                                % (self.count, used, vmap))
        if fingerprint != self.fingerprint:
            return "V5", None, "the record's fingerprint 0x%x, its entries give 0x%x" % (self.fingerprint, fingerprint)
        ptes = self.page_tables()
        for w, pte in enumerate(ptes or []):
            mapped = pte & 0x000FFFFFFFFFF000 if pte & 1 else 0
            if mapped != self.backing[w]:
                return "V6", w, "the page table maps 0x%x to 0x%x, the record says 0x%x" % (
                    self.heap.saddr + w * 4096, mapped, self.backing[w])
        return None


class HeapMap(gdb.Command):
    """Print the kernel heap's block table as a text map (heap_dump_map's format).
Usage: heap-map [PER_CHAR [WIDTH [MAX_LINES]]] [--from=BLOCK] [--blocks=N] [--color] [--region=K|--heap=EXPR|--window]
PER_CHAR 0 (default) picks the smallest that fits MAX_LINES (default 16) lines of WIDTH (default 64).
Every region of the kernel's multiheap, one section each, unless --region or --heap picks one.
--window: the kvmalloc window's section as the kernel prints it (map, then the region blocks behind each allocation)."""

    def __init__(self):
        super().__init__("heap-map", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        nums, opts = parse_args(arg, True)
        if "window" in opts:
            win = WindowSnapshot()
            gdb.write(win.header() + "\n")
            self.draw(win.heap, nums if nums else [1, 128, 0], {k: v for k, v in opts.items() if k == "color"})
            gdb.write("\n".join(win.backing_lines()) + "\n")
            return
        for k, n, snap in heaps(opts):
            if k is not None:
                gdb.write(region_line(k, n, snap) + "\n")
            self.draw(snap, nums, opts)

    @staticmethod
    def draw(snap, nums, opts):
        per_char = nums[0] if len(nums) > 0 else 0
        width = nums[1] if len(nums) > 1 else 64
        max_lines = nums[2] if len(nums) > 2 else 16
        first = int(opts.get("from", 0), 0) if opts.get("from") not in (None, True) else 0
        count = int(opts.get("blocks"), 0) if opts.get("blocks") not in (None, True) else snap.total - first
        if first < 0 or first >= snap.total or count <= 0:
            raise gdb.GdbError("peachheap: --from/--blocks outside the table (%d blocks)" % snap.total)
        count = min(count, snap.total - first)
        entries = snap.entries[first:first + count]
        colour = "color" in opts or "colour" in opts
        if width <= 0 or width > MAX_WIDTH:
            width = 64
        if per_char <= 0:
            lines = max(max_lines, 1)
            cells = width * lines
            per_char = max(1, (count + cells - 1) // cells)
        out = ["HEAPMAP v1 blocks=%d per_char=%d width=%d" % (count, per_char, width)]
        block = 0
        while block < count:
            chars = []
            line_start = block
            while len(chars) < width and block < count:
                n = min(per_char, count - block)
                group = entries[block:block + n]
                chars.append(block_char(group[0]) if per_char == 1 else group_char(group))
                block += n
            text = "".join(chars)
            if colour:
                text = "".join(COLOURS.get(ch, "") + ch + RESET for ch in text)
            out.append("%08x %s" % (first + line_start, text))
        if first == 0 and count == snap.total:
            used, allocations = snap.used_blocks, snap.live_allocations
        else:  # a window: its own counts, from the table
            used = sum(1 for e in entries if e & TAKEN)
            allocations = sum(1 for e in entries if e & TAKEN and e & IS_FIRST)
        best = run = 0
        for e in entries:
            run = run + 1 if e == 0 else 0
            best = max(best, run)
        out.append("HEAPMAP end used=%d free=%d largest_free=%d allocations=%d rejected_frees=%d"
                   % (used, count - used, best, allocations, snap.rejected_frees))
        gdb.write("\n".join(out) + "\n")


class HeapStats(gdb.Command):
    """Print the kernel heap's statistics, computed from its live table and read from its counters.
Usage: heap-stats [--region=K|--heap=EXPR|--window]"""

    def __init__(self):
        super().__init__("heap-stats", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        _, opts = parse_args(arg, False)
        if "window" in opts:
            win = WindowSnapshot()
            gdb.write(win.header() + "\n" + win.stats_line() + "\n")
            used, firsts, _, _ = win.heap.table_counts()
            agree = used == win.heap.used_blocks == win.count and firsts == win.heap.live_allocations
            gdb.write("heap-stats: window counters used_blocks=%d live_allocations=%d record blocks=%d: %s\n"
                      % (win.heap.used_blocks, win.heap.live_allocations, win.count,
                         "agree with the table" if agree else "DISAGREE with the table"))
            return
        sums = [0] * 7
        listed = heaps(opts)
        for k, n, snap in listed:
            if k is not None:
                gdb.write(region_line(k, n, snap) + "\n")
            figures = self.region(snap)
            sums = [a + b for a, b in zip(sums, figures)]
            sums[3] = max(sums[3] - figures[3], figures[3])  # the largest run of any one region
        if len(listed) > 1:
            gdb.write("heap-stats: regions=%d total=%d used=%d free=%d largest_free=%d allocations=%d "
                      "rejected_frees=%d failed_allocs=%d (the regions' own counters)\n" % tuple([len(listed)] + sums))

    @staticmethod
    def region(snap):
        used, firsts, slab_blocks, slabs = snap.table_counts()
        largest = snap.largest_free_run()
        free = snap.total - used
        frag = 0.0 if free == 0 else 1.0 - largest / free
        gdb.write("heap-stats: pool 0x%08x..0x%08x, table at 0x%08x, %s placement\n"
                  % (snap.saddr, snap.saddr + snap.total * 4096, snap.entries_addr,
                     "indexed" if snap.indexed else "linear"))
        gdb.write("heap-stats: total=%d used=%d free=%d largest_free=%d allocations=%d rejected_frees=%d "
                  "failed_allocs=%d\n" % (snap.total, used, free, largest, firsts, snap.rejected_frees,
                                          snap.failed_allocs))
        gdb.write("heap-stats: slabs=%d slab_blocks=%d fragmentation=%.3f (1 - largest free run / free blocks)\n"
                  % (slabs, slab_blocks, frag))
        agree = used == snap.used_blocks and firsts == snap.live_allocations
        gdb.write("heap-stats: counters used_blocks=%d live_allocations=%d: %s\n"
                  % (snap.used_blocks, snap.live_allocations,
                     "agree with the table" if agree else "DISAGREE with the table"))
        return [snap.total, used, free, largest, firsts, snap.rejected_frees, snap.failed_allocs]


class HeapCheck(gdb.Command):
    """Verify the kernel heap's table invariants (as heap_check does) and its counters.
Usage: heap-check [--region=K|--heap=EXPR|--window]
--window: the kvmalloc window's invariants V1..V6 (kvmalloc.h) instead."""

    def __init__(self):
        super().__init__("heap-check", gdb.COMMAND_DATA)

    @staticmethod
    def first_problem(snap):
        entries, total = snap.entries, snap.total
        used = allocations = 0
        i = 0
        while i < total:
            e = entries[i]
            if e == 0:
                i += 1
                continue
            if e & ~KNOWN_BITS:
                return i, "entry 0x%02x has reserved bits set" % e
            if not (e & TAKEN):
                return i, "entry 0x%02x: flags on a free entry (TAKEN clear)" % e
            if not (e & IS_FIRST):
                return i, "entry 0x%02x: continuation block outside any allocation (no IS_FIRST)" % e
            kind = e & TYPE_MASK
            if kind not in KNOWN_TYPES:
                return i, "entry 0x%02x: unknown type bits 0x%02x" % (e, kind)
            j = i
            while entries[j] & HAS_NEXT:
                j += 1
                if j == total:
                    return j - 1, "HAS_NEXT chain of the allocation at block %d runs off the table" % i
                c = entries[j]
                if c & ~KNOWN_BITS or not (c & TAKEN) or c & IS_FIRST or (c & TYPE_MASK) != kind:
                    return j, ("entry 0x%02x breaks the chain of the allocation at block %d "
                               "(expected TAKEN, no IS_FIRST, type 0x%02x)" % (c, i, kind))
            used += j - i + 1
            allocations += 1
            i = j + 1
        if used != snap.used_blocks:
            return None, "counter used_blocks=%d but the table has %d taken blocks" % (snap.used_blocks, used)
        if allocations != snap.live_allocations:
            return None, ("counter live_allocations=%d but the table has %d allocations"
                          % (snap.live_allocations, allocations))
        return None, None

    @staticmethod
    def multiheap_problem(snaps):
        """The multiheap's own invariants over its regions (address order)."""
        for a, b in zip(snaps, snaps[1:]):
            if a.saddr + a.total * 4096 > b.saddr:
                return "the pools of regions at 0x%x and 0x%x overlap or are out of order" % (a.saddr, b.saddr)
        for i, t in enumerate(snaps):
            for j, p in enumerate(snaps):
                if i != j and p.saddr < t.entries_addr + t.total and t.entries_addr < p.saddr + p.total * 4096:
                    return "the table of region %d (0x%x) lies in the pool of region %d" % (i, t.entries_addr, j)
        total = int(gdb.parse_and_eval("kernel_regions")["total_blocks"])
        if total != sum(p.total for p in snaps):
            return "total_blocks=%d but the regions have %d" % (total, sum(p.total for p in snaps))
        return None

    def invoke(self, arg, from_tty):
        _, opts = parse_args(arg, False)
        if "window" in opts:
            self.window()
            return
        listed = heaps(opts)
        bad = 0
        for k, n, snap in listed:
            where = "" if k is None else "region %d: " % k
            block, why = self.first_problem(snap)
            bad += why is not None
            if why is None:
                used, firsts, _, _ = snap.table_counts()
                gdb.write("heap-check: %sOK (%d blocks, %d used in %d allocations)\n" % (where, snap.total, used, firsts))
            elif block is None:
                gdb.write("heap-check: %sBAD counters: %s\n" % (where, why))
            else:
                gdb.write("heap-check: %sBAD block %d (address 0x%08x, table entry at 0x%08x): %s\n"
                          % (where, block, snap.saddr + block * 4096, snap.entries_addr + block, why))
        if len(listed) > 1:
            why = self.multiheap_problem([snap for _, _, snap in listed])
            if why is not None:
                gdb.write("heap-check: BAD multiheap: %s\n" % why)
            elif bad == 0:
                gdb.write("heap-check: OK (%d regions, %d blocks)\n" % (len(listed), sum(p.total for _, _, p in listed)))
            else:
                gdb.write("heap-check: BAD (%d of %d regions)\n" % (bad, len(listed)))


def heap_check_window(self):
    win = WindowSnapshot()
    problem = win.first_problem()
    if problem is None:
        allocs = win.allocations()
        runs = sum(1 for l in win.backing_lines() if l.startswith("HEAPMAP backing alloc=")
                   for _ in l.split()[6:])
        gdb.write("heap-check: window: OK (%d blocks, %d used in %d allocations, %d backing blocks in %d runs over "
                  "%d regions; V1..V5%s)\n" % (win.total, win.count, len(allocs), win.count, runs, len(win.sources),
                                               ", V6 against the page tables" if win.page_tables() is not None
                                               else "; V6 not checked: no window_pt"))
        return
    inv, block, why = problem
    where = "" if block is None else " window block %d (0x%x)" % (block, win.heap.saddr + block * 4096)
    gdb.write("heap-check: window: BAD %s%s: %s\n" % (inv, where, why))


HeapCheck.window = heap_check_window

HeapMap()
HeapStats()
HeapCheck()
gdb.write("peachheap: commands heap-map, heap-stats, heap-check (help heap-map; --window: the kvmalloc window)\n")

#!/usr/bin/env python3
"""tests/fuzz/make_corpus.py - writes the hand-made seed inputs of the fuzz
targets into tests/fuzz/corpus/<target>/seed-*. Run it again after changing
an input layout; the fuzzer-found inputs (other names) are kept.

The byte layouts are documented at the top of fuzz_heap_ops.c and
fuzz_table_check.c; all numbers are little-endian.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v):
    return struct.pack("<B", v & 0xFF)


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# ---------------------------------------------------------------- heap ops
def header(blocks, placement=0, kflags=0):
    """Heap size and options; heap_ops() adds the length of the heap part."""
    assert 1 <= blocks <= 4096
    return u16(blocks - 1) + u8(placement | (kflags << 2))


def heap_ops(head, ops, kpart=b""):
    return head + u16(len(ops)) + ops + kpart


def malloc_blocks(k, sub=0):
    return u8(0) + u16(k) + u16(sub)


def malloc_small(n):  # n = 1..8 blocks
    return u8(1) + u8(n - 1)


def malloc_raw(size):
    return u8(2) + u64(size)


def malloc_special(sel):
    return u8(3) + u8(sel)


def malloc_typed(n, t):
    return u8(4) + u8(n) + u8(t)


def free_live(i, wrong=0):
    return u8(5) + u16(i) + u8(wrong)


def free_interior(i, off):
    return u8(7) + u16(i) + u32(off)


def free_garbage(raw, absolute=False, cache=False):
    return u8(8) + u8((1 if absolute else 0) | (2 if cache else 0)) + u64(raw)


def free_stale(i):
    return u8(9) + u8(i)


def free_null():
    return u8(10)


def grow(i, want):
    return u8(11) + u8(1) + u16(i) + u16(want)


def shrink(i, want):
    return u8(11) + u8(0) + u16(i) + u16(want)


def lookup(off, first):
    return u8(12) + u64(off) + u16(first)


def heap_map(k, width, lines):
    return u8(13) + u8(1) + u8(k) + u16(width) + u16(lines)


def corrupt(block, value):  # block must be inside a live allocation
    return u8(13) + u8(0) + u16(block) + u8(value)


def create(sel):
    return u8(14) + u8(1) + u8(sel)


def fill(leave):
    return u8(14) + u8(0) + u8(leave)


def free_all(reverse=0):
    return u8(15) + u8(reverse)


def kheap(blocks, extra=0):
    """kheap part header: pool of blocks * 4096 + extra * 16 bytes."""
    return u8(blocks) + u8(extra)


def ksz(size):  # ksize_arg encoding: selector 0 (u8), 2 (u16) or 4 (u64)
    if size < 256:
        return u8(0) + u8(size)
    if size < 65536:
        return u8(2) + u16(size)
    return u8(4) + u64(size)


def kmalloc(size, seed=1, zero=False):
    return u8(1 if zero else 0) + ksz(size) + u8(seed)


def kpalloc(size, seed=3):
    return u8(3) + ksz(size) + u8(seed)


def kcalloc(n, size, seed=5):  # sel 4: raw u64 n, u64 size
    return u8(2) + u8(4) + u64(n) + u64(size) + u8(seed)


def kcalloc_small(n, size, seed=5):  # sel 0: u8 n, u8 size
    return u8(2) + u8(0) + u8(n) + u8(size) + u8(seed)


def kcalloc_edge(k, d, over=True, swap=False, seed=5):
    """n = 2^k, size = (SIZE_MAX >> k) + 1 + d (overflows) or (SIZE_MAX >> k) - d."""
    return u8(2) + u8((2 if over else 3) | (0x80 if swap else 0)) + u8(k - 1) + u8(d) + u8(seed)


def kfree_live(i):
    return u8(4) + u16(i)


# krealloc of live object i: how 0 absolute size, 1 shrink to 1 + v % size,
# 2 size + v % (usable - size + 1), 3 usable + 1 + v % 64, 4 usable + 1 + 16 v,
# 5 SIZE_MAX - v, 6 size 0, 7 (v % 8 + 1) * 4096 - (v >> 8) % 3.
def krealloc(i, size):
    return u8(5) + u16(i) + u8(0) + u16(0) + ksz(size)


def krealloc_rel(i, how, v=0):
    assert 1 <= how <= 7
    return u8(5) + u16(i) + u8(how) + u16(v)


def krealloc_null(size, seed=6):
    return u8(6) + ksz(size) + u8(seed)


def ksize_live(i):
    return u8(7) + u16(i)


# A pointer kfree must refuse, given to kfree (call 0), krealloc (1, with a
# size) or ksize (2).
def kbad_interior(i, off, call=0, size=8):
    return u8(8) + u8(call) + u8(0) + u16(i) + u32(off) + (ksz(size) if call == 1 else b"")


def kbad_stale(i, call=0, size=8):
    return u8(8) + u8(call) + u8(1) + u8(i) + (ksz(size) if call == 1 else b"")


def kbad_garbage(raw, absolute=False, call=0, size=8):
    return u8(8) + u8(call) + u8(2) + u8(1 if absolute else 0) + u64(raw) + (ksz(size) if call == 1 else b"")


# old names, for the seeds below
def kfree_interior(i, off):
    return kbad_interior(i, off)


def kfree_stale(i):
    return kbad_stale(i)


def kfree_garbage(raw, absolute=False):
    return kbad_garbage(raw, absolute)


FAULT_SLAB, FAULT_BLOCKS, FAULT_GROW, FAULT_MOVE = 1, 2, 4, 8


def kfault(successes, sites):  # sites 0: off
    return u8(9) + u8(successes) + u8(sites)


def kcheck():  # kfree(NULL), kheap_trim
    return u8(10)


HEAP_OPS = {
    "basic": heap_ops(header(16), malloc_small(1) + malloc_small(2) + malloc_small(3) + free_live(1)
                      + malloc_small(1) + malloc_small(2) + free_live(0) + free_all(1)),
    "sizes": heap_ops(header(64), malloc_raw(0) + malloc_raw(1) + malloc_raw(4095) + malloc_raw(4096)
                      + malloc_raw(4097) + malloc_raw(2**64 - 1) + malloc_raw(2**64 - 4096) + malloc_raw(2**63)
                      + b"".join(malloc_special(i) for i in range(14)) + malloc_blocks(65, 0)
                      + malloc_blocks(3, 4095)),
    "bad-frees": heap_ops(header(32), malloc_small(3) + malloc_small(2) + free_interior(0, 4096)
                          + free_interior(0, 1) + free_interior(1, 4095) + free_garbage(0, True)
                          + free_garbage(1 << 20) + free_garbage(2**64 - 1, True) + free_garbage(2**64 - 4096)
                          + free_garbage(32 * 4096) + free_garbage(31 * 4096) + free_live(0) + free_stale(0)
                          + free_stale(0) + free_null() + free_live(0, 0xF2) + free_garbage(0, cache=True)),
    "typed": heap_ops(header(24), malloc_typed(3, 2) + malloc_typed(2, 0) + malloc_typed(1, 4)
                      + malloc_typed(1, 0x0E) + malloc_typed(1, 1) + malloc_typed(0, 0) + free_live(0, 0xF0)
                      + free_live(0, 0xF2) + free_live(1, 0xF2) + free_live(0) + free_live(0)),
    "exhausted": heap_ops(header(40), fill(0) + malloc_raw(1) + free_live(7) + malloc_raw(1) + free_all()),
    "one-free": heap_ops(header(40), fill(1) + malloc_raw(4097) + malloc_raw(1) + malloc_raw(1) + free_live(3)
                         + free_live(4) + malloc_small(2)),
    "grow-shrink": heap_ops(header(20), malloc_small(2) + malloc_small(1) + grow(0, 3) + free_live(1) + grow(0, 3)
                            + grow(0, 20) + grow(0, 21) + shrink(0, 1) + shrink(0, 0) + shrink(0, 5) + grow(0, 2)
                            + free_live(0)),
    "lookup": heap_ops(header(12), malloc_small(3) + malloc_small(1) + lookup(0, 0) + lookup(4096 + 7, 1)
                       + lookup(3 * 4096, 3) + lookup(5 * 4096, 5) + lookup(2**64 - 1, 13) + lookup(16 * 4096, 12)),
    "map": heap_ops(header(200), malloc_small(8) + malloc_typed(3, 2) + malloc_small(1) + free_live(2)
                    + heap_map(1, 64, 0) + heap_map(0, 16, 2) + heap_map(2, 10, 0) + heap_map(3, 0, 1)
                    + heap_map(4, 299, 7)),
    "corrupt": heap_ops(header(16), malloc_small(3) + malloc_small(1) + malloc_typed(2, 2)
                        + corrupt(0, 0x41) + corrupt(1, 0x01) + corrupt(2, 0x81) + corrupt(3, 0x00)
                        + corrupt(4, 0xC3) + corrupt(5, 0x23) + corrupt(1, 0x10) + corrupt(2, 0xC1)),
    "create": heap_ops(header(8), malloc_small(2) + b"".join(create(s) for s in range(9)) + malloc_small(1)),
    "big-indexed": heap_ops(header(4096), malloc_blocks(1000) + malloc_blocks(3000) + malloc_blocks(97)
                            + free_live(0) + malloc_blocks(999) + malloc_small(1) + malloc_small(1) + free_all()),
    "top-of-memory": heap_ops(header(100, placement=2), malloc_small(4) + free_garbage(2**64 - 4096, True)
                              + free_garbage(0, True) + free_interior(0, 5) + free_live(0)
                              + lookup(2**64 - 1, 0)),
    "near-zero": heap_ops(header(100, placement=1), malloc_small(4) + free_garbage(0, True)
                          + free_garbage(4095, True) + free_garbage(4096, True) + free_live(0)),
    "kheap": heap_ops(header(4), malloc_small(1),
                      kheap(20) + kmalloc(1) + kmalloc(100, 2) + kmalloc(4096, 3) + kmalloc(4097, 4)
                      + kmalloc(3 * 4096 + 5, 5, zero=True) + kmalloc(0) + kmalloc(2**64 - 1)
                      + kfree_interior(1, 4095) + kfree_interior(4, 4096) + kfree_live(0) + kfree_stale(0)
                      + kfree_garbage(2**64 - 8, True) + kfree_garbage(0, True) + kfree_garbage(19 * 4096)
                      + kcheck() + kfree_live(1)),
    "kheap-full": heap_ops(header(2), b"", kheap(8) + kmalloc(8 * 4096, 9) + kmalloc(1) + kfree_live(0)
                           + kmalloc(1) + kmalloc(7 * 4096, 7) + kmalloc(1, 8) + kcheck()),
    "kheap-indexed": heap_ops(header(2, kflags=1), b"",
                              kheap(100, 200) + b"".join(kmalloc(n * 997 + 1, n) for n in range(30))
                              + b"".join(kfree_live(i * 7) for i in range(10)) + kcheck()),
    "kheap-none": heap_ops(header(2), b"", kheap(0, 255) + kmalloc(1) + kfree_garbage(4096, True) + kcheck()),
    "kheap-fail-init": heap_ops(header(2, kflags=0x3E), b"", kheap(50) + kmalloc(1) + kfree_garbage(4096, True)
                                + krealloc_null(10) + kbad_garbage(4096, True, call=1) + kbad_garbage(8, call=2)
                                + kcalloc_small(2, 3) + kpalloc(1) + kcheck()),
    # small objects: stay put while the class fits, move on a class change,
    # to whole blocks above 2048; too big fails with the object intact
    "krealloc-small": heap_ops(header(2), b"",
                               kheap(40) + kmalloc(24, 1) + kmalloc(100, 2) + kmalloc(500, 3) + kmalloc(2048, 4)
                               + krealloc_rel(0, 1, 5) + krealloc_rel(0, 2, 3) + ksize_live(0)
                               + krealloc_rel(0, 3, 0) + krealloc_rel(1, 3, 7) + krealloc(2, 520)
                               + krealloc(2, 3000) + krealloc_rel(3, 5, 0) + krealloc_rel(3, 4, 1)
                               + krealloc_rel(1, 2, 9) + krealloc(0, 1) + krealloc_rel(1, 6) + ksize_live(2)
                               + kcheck() + kfree_live(0)),
    # block memory: shrinks in place, grows in place when the next blocks
    # are free, else moves; stays whole blocks below 2048 bytes
    "krealloc-blocks": heap_ops(header(2), b"",
                                kheap(30) + kpalloc(1, 1) + kmalloc(3 * 4096, 2) + kmalloc(5000, 3)
                                + krealloc(1, 100) + krealloc_rel(1, 7, 1) + krealloc_rel(1, 7, 2)
                                + krealloc_rel(0, 7, 2) + krealloc(2, 4 * 4096) + krealloc_rel(0, 5, 7)
                                + krealloc(0, 2**64 - 4096) + krealloc(1, 16) + krealloc_rel(1, 3, 0)
                                + krealloc_rel(2, 4, 300) + krealloc(2, 29 * 4096) + krealloc(0, 0)
                                + ksize_live(0) + kfree_live(0) + kcheck()),
    # exact fits: krealloc to the usable size stays put; kzalloc / kcalloc
    # reuse a freed slot that held a pattern and must zero all of it
    "krealloc-fit": heap_ops(header(2), b"",
                             kheap(10) + kmalloc(24, 1) + krealloc(0, 32) + krealloc(0, 16) + krealloc(0, 1)
                             + krealloc(0, 33) + kmalloc(600, 2) + krealloc(1, 640) + krealloc(1, 641)
                             + kmalloc(100, 7) + kfree_live(2) + kmalloc(100, 1, zero=True) + kfree_live(2)
                             + kcalloc_small(10, 10) + kfree_live(2) + kmalloc(5000, 9) + kfree_live(2)
                             + kmalloc(5000, 2, zero=True) + krealloc(2, 8192) + krealloc(2, 8191) + kcheck()),
    "krealloc-null": heap_ops(header(2), b"", kheap(12) + krealloc_null(0) + krealloc_null(10, 1)
                              + krealloc_null(5000, 2) + krealloc_null(2**64 - 1) + krealloc_null(2048, 3)
                              + krealloc_rel(0, 6) + kcheck()),
    "kcalloc": heap_ops(header(2), b"",
                        kheap(20) + kcalloc_small(3, 10) + kcalloc_small(0, 10) + kcalloc_small(10, 0)
                        + kcalloc(2, 5000) + kcalloc(2**32, 2**32) + kcalloc(2**63, 2) + kcalloc(2**64 - 1, 1)
                        + kcalloc_edge(1, 0) + kcalloc_edge(12, 3, swap=True) + kcalloc_edge(63, 0)
                        + kcalloc_edge(32, 0, over=False) + kcalloc_edge(2, 9, over=False, swap=True)
                        + kcalloc(4096, 1) + kcalloc(1, 2049) + ksize_live(3)
                        # products that wrap around to small sizes
                        + kcalloc(2**60 + 1, 16) + kcalloc(2**52 + 3, 4096) + kcalloc_edge(12, 3)
                        + kcalloc_edge(4, 1, swap=True) + kcheck()),
    "kpalloc": heap_ops(header(2), b"",
                        kheap(16) + kpalloc(1) + kpalloc(16) + kpalloc(2048) + kpalloc(4096) + kpalloc(4097)
                        + kpalloc(0) + kpalloc(2**64 - 1) + kpalloc(17 * 4096) + krealloc(0, 1)
                        + krealloc_rel(1, 7, 2) + krealloc(2, 9000) + ksize_live(3) + kfree_live(4) + kcheck()),
    # bad pointers to kfree, krealloc and ksize: refused, nothing changed
    "kbad": heap_ops(header(2), b"",
                     kheap(24) + kmalloc(40, 1) + kmalloc(3000, 2) + kpalloc(10, 3) + kmalloc(40, 4)
                     + kbad_interior(0, 0, call=1) + kbad_interior(0, 15, call=2) + kbad_interior(1, 4095, call=1)
                     + kbad_interior(2, 100, call=0) + kbad_interior(1, 4096, call=2) + kfree_live(3)
                     + kbad_stale(0, call=1, size=0) + kbad_stale(0, call=2) + kbad_stale(0, call=0)
                     + kbad_garbage(2**64 - 16, True, call=1, size=100) + kbad_garbage(0, True, call=2)
                     + kbad_garbage(17, call=1) + kbad_garbage(24 * 4096, call=1) + kbad_garbage(5 * 4096 + 48)
                     + krealloc(1, 0) + kbad_stale(1, call=1, size=5000) + kcheck()),
    # fault injection: growth, whole blocks, growing in place, moving
    "kfault": heap_ops(header(2), b"",
                       kheap(40) + kmalloc(5000, 1) + kmalloc(20, 2) + kfault(0, FAULT_GROW)
                       + krealloc(0, 3 * 4096) + kfault(0, FAULT_MOVE | FAULT_GROW) + krealloc(0, 6 * 4096)
                       + krealloc_rel(1, 3, 0) + kfault(1, FAULT_SLAB) + kmalloc(600, 3) + kmalloc(700, 4)
                       + kfault(0, FAULT_BLOCKS) + kmalloc(9000, 5) + kpalloc(1) + kfault(0, 0)
                       + kmalloc(700, 6) + kcheck()),
    # out of memory: small objects, whole blocks and krealloc moves fail
    # only when the heap has no room, even after trimming the spare slabs
    "koom": heap_ops(header(2), b"",
                     kheap(4) + kmalloc(20, 1) + kmalloc(3 * 4096, 2) + kmalloc(4096, 3) + kmalloc(100, 4)
                     + krealloc_rel(0, 3, 40) + kfree_live(0) + kmalloc(4096, 5) + kmalloc(30, 6)
                     + krealloc(0, 2 * 4096) + kmalloc(2000, 7) + kfree_live(1) + kfree_live(0) + kcheck()
                     + kmalloc(4 * 4096, 8) + krealloc(0, 5 * 4096) + kcheck()),
}

# ---------------------------------------------------------------- tables
ALPHA = [0x00, 0x41, 0xC1, 0x81, 0x01, 0x43, 0xC3, 0x83, 0x03]


def table_input(table, flags=0, used=0, live=0, rejected=0, flip=0, k=1, width=64, max_lines=0):
    return (u8(flags) + u64(used) + u64(live) + u64(rejected) + u16(flip) + u8(k) + u16(width)
            + u64(max_lines) + bytes(table))


VALID = [0x00, 0x41, 0xC1, 0x01, 0x00, 0xC1, 0x81, 0x81, 0x01, 0x43, 0xC3, 0x83, 0x03, 0x00, 0x00]
TABLES = {
    "empty": table_input([]),
    "free": table_input([0] * 100, flags=1),
    "valid-exact": table_input(VALID, flags=1),
    "valid-indexed": table_input(VALID * 20, flags=1 | 4),
    "valid-index-flip": table_input(VALID * 20, flags=1 | 4 | 8, flip=37),
    "valid-counts-wrong": table_input(VALID, used=3, live=2),
    "orphan-tail": table_input([0x00, 0x81, 0x01], flags=1),
    "off-the-end": table_input([0x41, 0xC1, 0x81], flags=1),
    "type-mismatch": table_input([0xC1, 0x83, 0x01], flags=1),
    "unknown-type": table_input([0x45, 0x00], flags=1),
    "reserved-bits": table_input([0x41, 0x51], flags=1),
    "free-with-flags": table_input([0x40], flags=1),
    "alphabet": table_input(list(range(9)) * 30, flags=2 | 1),
    "map-auto": table_input(VALID * 50, flags=1 | 16, width=10, max_lines=3),
    "map-auto-huge-lines": table_input(VALID * 5, flags=1 | 16, width=0, max_lines=2**62),
    "map-groups": table_input(VALID * 9 + [0x99, 0x00], flags=1, k=7, width=5),
    "all-bytes": table_input(list(range(256)), flags=0, used=2**64 - 1, live=2**63),
}


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    for name, data in HEAP_OPS.items():
        write("fuzz_heap_ops", name, data)
    for name, data in TABLES.items():
        write("fuzz_table_check", name, data)
    print("wrote %d + %d seed inputs" % (len(HEAP_OPS), len(TABLES)))


if __name__ == "__main__":
    main()

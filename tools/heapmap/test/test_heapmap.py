#!/usr/bin/env python3
"""tools/heapmap/test/test_heapmap.py - test-heapmap: the heapmap tool on known tables.

usage: test_heapmap.py HEAPMAP_BINARY WORK_DIR BENCH_PEACH_BINARY

Checks, for raw, hex and text input (also wrapped in serial noise, ANSI
colours and CRLF), that the statistics the tool prints equal the numbers
worked out by hand in the fixtures' comments, that the PNG is a PNG of the
announced size whose cells have the colours of their states (with a dark
edge on every first block), and that the SVG parses as XML of the same size.
Then replay: W3 and the example trace against hand-computed results, and a
recorded W1 trace replayed to the same end state. Then the benchmark's own
traces: bench-peach --trace-out writes the trace its run replays (its FNV-1a
hash must equal the trace_hash of the benchmark's row), heapmap replays it,
and the final table must equal, byte for byte, the table bench-peach ended
with (--dump-table), whose hash is the row's end_state. Last, tools/colorize-map
(what `make run` pipes the kernel's serial output through on a terminal)
must colour a known map with ANSI escapes and change nothing else.
"""
import os
import re
import stat
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
TOOL = os.path.abspath(sys.argv[1])
WORK = os.path.abspath(sys.argv[2])
BENCH = os.path.abspath(sys.argv[3])
COLORIZE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "colorize-map")

checks = 0
failures = []


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


def run(args, expect_ok=True, stdin=None):
    p = subprocess.run([TOOL] + args, cwd=WORK, capture_output=True, text=True, input=stdin)
    if expect_ok and p.returncode != 0:
        print(p.stdout + p.stderr)
    check((p.returncode == 0) == expect_ok, "exit status of heapmap %s: %d" % (" ".join(args), p.returncode))
    return p


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def lines_starting(out, word):
    return [l for l in out.splitlines() if l.startswith(word + " ")]


# Known table (tools/heapmap/test/known.hex, worked out in its comments).
KNOWN = {"blocks": "48", "per_cell": "1", "cells": "48", "used": "16", "free": "32", "largest_free": "10",
         "allocations": "8", "cache_blocks": "3", "invalid": "1", "fragmentation": "0.6875"}
# Its states, block by block: F free, A first, M further, K cache first, k cache further, X invalid
# (and V vmap first, v vmap further).
KNOWN_STATES = "AMMFAFFKkFFFFFFFAMMMKFFFFFFFFFFXAMFFFFFFAAFFFFFF"
CORRUPT = {"blocks": "12", "used": "9", "free": "3", "largest_free": "1", "allocations": "1",
           "cache_blocks": "1", "vmap_blocks": "0", "invalid": "8", "fragmentation": "0.6667"}
# tools/heapmap/test/vmap.hex: blocks behind the kvmalloc window (V first, v further).
VMAP = {"blocks": "16", "used": "13", "free": "3", "largest_free": "1", "allocations": "8",
        "cache_blocks": "1", "vmap_blocks": "6", "invalid": "3", "fragmentation": "0.6667"}
VMAP_STATES = "VVFAVVvFAMVFKXXX"
CORRUPT_STATES = "XFXFXXKXXXXF"

# The tool's palette (render.c), by state; M and k alternate per allocation.
COLOURS = {"F": [(0xe3, 0xe7, 0xec)], "A": [(0x1d, 0x4f, 0x8c)], "M": [(0x4f, 0x8f, 0xd6), (0x86, 0xb6, 0xea)],
           "K": [(0x9c, 0x4a, 0x06)], "k": [(0xee, 0x9a, 0x3a), (0xf6, 0xc2, 0x7f)], "X": [(0xd6, 0x27, 0x28)],
           "V": [(0x1b, 0x5e, 0x20)], "v": [(0x4c, 0xaf, 0x50), (0x9c, 0xcc, 0x65)]}
EDGE = (0x0a, 0x1a, 0x33)


def read_png(path):
    """Decode an 8-bit RGB/RGBA PNG with zlib: (width, height, rows of (r,g,b))."""
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", path + ": PNG signature")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        check(zlib.crc32(kind + body) & 0xffffffff == crc, path + ": CRC of chunk " + kind.decode())
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, ctype, _, _, interlace = ihdr
    check(depth == 8 and ctype in (2, 6) and interlace == 0, path + ": 8-bit RGB(A), not interlaced")
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xff
            elif f == 2:
                line[i] = (line[i] + b) & 0xff
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def check_images(out, name, states=None, section=None):
    """The PNG and SVG of the last 'image' line of `out`; cell colours if states given
    (in the grid of the 'section' line `section` when given: `heapmap regions`)."""
    img = fields(lines_starting(out, "image")[-1])
    if section is not None:
        img.update((k, v) for k, v in fields(section).items() if k in ("grid_x", "grid_y", "cell", "cols", "rows"))
    png, svg = os.path.join(WORK, img["png"]), os.path.join(WORK, img["svg"])
    w, h = int(img["width"]), int(img["height"])
    check(os.path.getsize(png) > 0 and os.path.getsize(svg) > 0, name + ": PNG and SVG written")
    pw, ph, rows = read_png(png)
    check((pw, ph) == (w, h), "%s: PNG is %dx%d, tool said %dx%d" % (name, pw, ph, w, h))
    cols, cell, gx, gy = int(img["cols"]), int(img["cell"]), int(img["grid_x"]), int(img["grid_y"])
    check(w >= gx + cols * cell and h >= gy + int(img["rows"]) * cell, name + ": grid inside the picture")
    root = ET.parse(svg).getroot()
    check(root.tag == "{http://www.w3.org/2000/svg}svg", name + ": SVG root element")
    check(root.get("width") == "%dpx" % w and root.get("height") == "%dpx" % h, name + ": SVG size = PNG size")
    check(len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 0, name + ": SVG has paths")
    if states is None:
        return
    shade_of_alloc = {}
    alloc = 0
    for i, s in enumerate(states):
        x, y = gx + (i % cols) * cell, gy + (i // cols) * cell
        body = rows[y + cell // 5][x + cell // 2]
        check(body in COLOURS[s], "%s: block %d (%s) has colour %s" % (name, i, s, body))
        edge = rows[y + cell // 2][x + 1]
        if s in "AKV":
            alloc += 1
            check(edge == EDGE, "%s: block %d starts an allocation: dark left edge" % (name, i))
        elif s != "X":
            check(edge != EDGE, "%s: block %d has no allocation edge" % (name, i))
        if s in "Mkv":
            shade_of_alloc.setdefault(alloc, body)
            check(shade_of_alloc[alloc] == body, "%s: block %d: one shade per allocation" % (name, i))
    # further blocks of consecutive allocations alternate shades
    allocs = sorted(shade_of_alloc)
    for a, b in zip(allocs, allocs[1:]):
        if b == a + 1:
            check(shade_of_alloc[a] != shade_of_alloc[b], "%s: allocations %d, %d differ in shade" % (name, a, b))


def check_stats(out, expected, name):
    got = fields(out if out.startswith("snapshot ") else lines_starting(out, "stats")[-1])
    for k, v in expected.items():
        check(got.get(k) == v, "%s: %s=%s, expected %s" % (name, k, got.get(k), v))


def hex_to_bytes(path):
    text = re.sub(r"#.*", "", open(path).read())
    return bytes(int(t, 16) for t in text.split())


def fnv1a(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def run_bench(args, expect_ok=True):
    p = subprocess.run([BENCH] + args, cwd=WORK, capture_output=True, text=True)
    if expect_ok and p.returncode != 0:
        print(p.stdout + p.stderr)
    check((p.returncode == 0) == expect_ok, "exit status of bench-peach %s: %d" % (" ".join(args), p.returncode))
    return p


ROW_FIELDS = ["workload", "allocator", "blocks", "unit", "ops_timed", "ops_latency", "median_ns", "mean_ns", "p99_ns",
              "max_ns", "allocs", "failures", "trace_hash", "end_state", "note"]


def bench_rows(out):
    return [dict(zip(ROW_FIELDS, l.split(",", len(ROW_FIELDS))[1:])) for l in out.splitlines() if l.startswith("row,")]


def bench_traces():
    """11. The benchmark's traces (--smoke op counts, 16 MiB) replay in heapmap to the benchmark's own table."""
    blocks = "4096"
    traces = {}
    for w in ("w1-50", "w1-90", "w3"):
        path = "bench-%s.trace" % w
        p = run_bench(["--workload", w, "--blocks", blocks, "--smoke", "--trace-out", path])
        info = fields(lines_starting(p.stdout, "trace")[0]) if lines_starting(p.stdout, "trace") else {}
        check(info.get("ops") == info.get("total_ops") and info.get("phases") == "4",
              "%s: --trace-out writes every op and 4 phase ends: %s" % (w, info))
        lines = open(os.path.join(WORK, path)).read().splitlines()
        ops = [l.split() for l in lines if l[:2] in ("m ", "f ")]
        check(len(ops) == int(info.get("total_ops", "-1")), "%s: %d m/f lines" % (w, len(ops)))
        check(lines_starting("\n".join(lines), "heap") == ["heap " + blocks], w + ": heap line")
        snaps = [i for i, l in enumerate(l for l in lines if l[:2] in ("m ", "f ") or l.startswith("snap "))
                 if l.startswith("snap ")]
        check(len(snaps) == 4, "%s: 4 snap lines" % w)
        traces[w] = (path, info, ops)

        # replay it in heapmap: final table, failed allocations, heap_check
        r = run(["replay", "--workload", path, "--no-plot", "--dump", "hm-%s.bin" % w, "-o", "bench-" + w])
        end = fields(lines_starting(r.stdout, "replay")[0]) if lines_starting(r.stdout, "replay") else {}
        check(end.get("heap_check") == "clean" and end.get("ops") == info.get("total_ops"),
              "%s: heapmap replays every op, heap clean: %s" % (w, end))
        labels = [re.search(r'label="([^"]*)"', l).group(1) for l in lines_starting(r.stdout, "snapshot")]
        check(len(labels) == 4 and "bench_check" in labels[-1], "%s: heapmap snapshots at the 4 phase ends: %s"
              % (w, labels))
        hm_table = open(os.path.join(WORK, "hm-%s.bin" % w), "rb").read()

        # the benchmark itself, on both PeachOS heaps, dumping the table it checked
        for alloc in ("indexed", "scan"):
            dump = "bench-%s-%s.bin" % (w, alloc)
            b = run_bench(["--alloc", alloc, "--workload", w, "--blocks", blocks, "--smoke", "--dump-table", dump])
            rows = bench_rows(b.stdout)
            check(len(rows) >= 1, "%s %s: the benchmark printed its rows" % (w, alloc))
            if not rows:
                continue
            row = rows[0]
            name = "%s on %s" % (w, alloc)
            check(all(x["trace_hash"] == info.get("trace_hash") for x in rows),
                  "%s: the row's trace_hash %s is the written trace's %s" % (name, row["trace_hash"],
                                                                         info.get("trace_hash")))
            bench_table = open(os.path.join(WORK, dump), "rb").read()
            check(len(bench_table) == int(blocks), "%s: --dump-table writes one byte per block" % name)
            check("%016x" % fnv1a(bench_table) == row["end_state"],
                  "%s: the dumped table is the one bench_check hashed (end_state %s)" % (name, row["end_state"]))
            diff = [i for i in range(min(len(hm_table), len(bench_table))) if hm_table[i] != bench_table[i]]
            check(hm_table == bench_table, "%s: heapmap's replay ends with the benchmark's table (%d blocks differ, "
                  "first %s)" % (name, len(diff), diff[:1]))
            failed = sum(int(x["failures"]) for x in rows)
            m = re.search(r"setup_failures=(\d+)", row["note"])
            failed += int(m.group(1)) if m else 0
            check(str(failed) == end.get("failed_allocs"), "%s: heapmap counts %s failed allocations, the benchmark "
                  "%d" % (name, end.get("failed_allocs"), failed))

    # W1's trace is the benchmark's op list: its hash, computed from the file, is the row's trace_hash
    for w in ("w1-50", "w1-90"):
        path, info, ops = traces[w]
        data = b"".join(struct.pack("<II", int(o[1]), int(o[2]) if o[0] == "m" else 0) for o in ops)
        check("%016x" % fnv1a(data) == info.get("trace_hash"), "%s: FNV-1a of the file's ops is the trace_hash" % w)
    # at 90% some allocations fail and are freed later: the free(NULL) path is exercised
    w1_90 = fields(lines_starting(run(["replay", "--workload", traces["w1-90"][0], "--no-plot", "-o", "again"]).stdout,
                                  "replay")[0])
    check(int(w1_90.get("failed_allocs", "0")) > 0, "w1-90 (smoke) has failed allocations that are freed later")

    # --trace-ops K: the first K ops of the same trace, and the phase ends among them
    p = run_bench(["--workload", "w1-90", "--blocks", blocks, "--smoke", "--trace-ops", "500", "--trace-out", "cut.trace"])
    cut = open(os.path.join(WORK, "cut.trace")).read().splitlines()
    cut_ops = [l.split() for l in cut if l[:2] in ("m ", "f ")]
    check(cut_ops == traces["w1-90"][2][:500], "--trace-ops 500 writes the first 500 ops of the trace")
    check(len([l for l in cut if l.startswith("snap ")]) == 1 and cut[-1].startswith("# cut after 500 of"),
          "--trace-ops 500: only the warm-up's end, and a note that the trace is cut")
    # bad selections
    run_bench(["--workload", "w1-90", "--trace-out", "x.trace"], expect_ok=False)
    run_bench(["--workload", "w1-90", "--blocks", "1000", "--trace-out", "x.trace"], expect_ok=False)
    run_bench(["--workload", "w1-90", "--blocks", blocks, "--dump-table", "x.bin"], expect_ok=False)


def colorize():
    """12. tools/colorize-map: a known map gets ANSI colours, the rest of the output does not change."""
    check(os.stat(COLORIZE).st_mode & stat.S_IXUSR != 0, "tools/colorize-map is executable")
    body = open(os.path.join(HERE, "known.txt")).read()
    plain = "SeaBIOS (version 1.16)\nPeachOS: kheap ready, 48 blocks # = . ? C c\n" + body + "halted.\n"
    check("\x1b" not in plain, "the plain input has no escape sequence")
    p = subprocess.run([COLORIZE], input=plain, capture_output=True, text=True)
    check(p.returncode == 0, "colorize-map exits 0: " + p.stderr)
    out = p.stdout
    escapes = re.findall(r"\x1b\[[0-9;]*m", out)
    check(len(escapes) > 10, "colorize-map output has ANSI escapes (%d)" % len(escapes))
    check(re.sub(r"\x1b\[[0-9;]*m", "", out) == plain, "without its escapes the output is the input")
    out_lines, plain_lines = out.splitlines(), plain.splitlines()
    check(len(out_lines) == len(plain_lines), "colorize-map keeps the lines")
    for o, i in zip(out_lines, plain_lines):
        is_data = re.match(r"^[0-9a-f]{8} ", i) is not None
        check(("\x1b[" in o) == is_data, "only map data lines are coloured: %r" % o)
    for ch, code in (("#", "\x1b[97;41m"), ("=", "\x1b[31;101m"), ("C", "\x1b[97;44m"), ("c", "\x1b[34;104m"),
                     ("?", "\x1b[1;93;45m"), (".", "\x1b[32m")):
        check(re.search(re.escape(code) + re.escape(ch) + r"+\x1b\[0m", out) is not None,
              "colorize-map: %r cells in their colour" % ch)
    # heapmap reads the coloured map back (as if captured from a terminal)
    open(os.path.join(WORK, "coloured.log"), "w").write(out)
    r = run(["coloured.log", "-o", "coloured"])
    check_stats(r.stdout, KNOWN, "colorize-map output read back")


def vmap():
    """Type 0x04 (HEAP_BLOCK_TYPE_VMAP, table byte 45): 'V'/'v' as the library's heap_map.c draws them."""
    vmap_hex = os.path.join(HERE, "vmap.hex")
    open(os.path.join(WORK, "vmap.bin"), "wb").write(hex_to_bytes(vmap_hex))
    check(len(hex_to_bytes(vmap_hex)) == 16, "vmap.hex has 16 entries")
    p = run([vmap_hex, "--labels", "-o", "vmap"])
    check_stats(p.stdout, VMAP, "vmap hex")
    check_images(p.stdout, "vmap hex", VMAP_STATES)
    p = run(["vmap.bin", "-o", "vmap-raw"])
    check_stats(p.stdout, VMAP, "vmap raw")
    # the library's text map of it: V and v (heap_map.c marks only bad bytes '?', not broken chains)
    p = run(["text", "vmap.bin", "--width", "16"])
    check(p.stdout.splitlines()[1] == "00000000 VV.#VVv.#=V.CvVc", "vmap text map:\n" + p.stdout)
    open(os.path.join(WORK, "vmap.txt"), "w").write(p.stdout)
    # read back: 'v' after 'C' and 'c' after 'V' are orphans, 'V' at 14 is a one-block allocation
    p = run(["vmap.txt", "-o", "vmap-text"])
    check_stats(p.stdout, {"used": "13", "free": "3", "allocations": "9", "cache_blocks": "1", "vmap_blocks": "7",
                           "invalid": "2"}, "vmap text map read back")
    check_images(p.stdout, "vmap text map read back", "VVFAVVvFAMVFKXVX")
    # a map where every window block sits between plain ones, 1 block each (what kvmalloc leaves)
    p = run(["-", "--format", "hex", "-o", "vmap-scattered"], stdin="41 45 41 45 41 45 41 45\n")
    check_stats(p.stdout, {"used": "8", "allocations": "8", "vmap_blocks": "4", "invalid": "0"}, "scattered vmap")
    check_images(p.stdout, "scattered vmap", "AVAVAVAV")


def regions():
    """heapmap regions: a kernel's per-region sections (docs/kernel.md), drawn one below the other."""
    known = open(os.path.join(HERE, "known.txt")).read()
    # region 1: 12 blocks, from a text map (states and statistics worked out by hand)
    second = "HEAPMAP v1 blocks=12 per_char=1 width=16\n00000000 #==..Cc.#...\n" \
             "HEAPMAP end used=6 free=6 largest_free=3 allocations=3 rejected_frees=0\n"
    second_stats = {"blocks": "12", "used": "6", "free": "6", "largest_free": "3", "allocations": "3",
                    "cache_blocks": "2", "invalid": "0", "fragmentation": "0.5000"}
    second_states = "AMMFFKkFAFFF"
    older = "HEAPMAP v1 blocks=4 per_char=1 width=16\n00000000 ....\nHEAPMAP end used=0 free=4 largest_free=4 " \
            "allocations=0 rejected_frees=0\n"
    serial = ("booting\n" + older + "heap map: every region, one section each\n"
              "HEAPMAP region 0 of 2 pool=0x0000000001000000..0x0000000001030000 table=0x0000000000007e00 blocks=48\n"
              "kheap region 0: total=48 used=16\n" + known +
              "HEAPMAP region 1 of 2 pool=0x0000000100000000..0x000000010000c000 table=0x00000000ffff0000 blocks=12\n"
              + second + "kheap regions: 2 regions\n").replace("\n", "\r\n")
    open(os.path.join(WORK, "regions.log"), "w", newline="").write(serial)
    p = run(["regions", "regions.log", "-o", "regions"])
    regs = lines_starting(p.stdout, "region")
    check(len(regs) == 2, "regions: one line per region (%d)" % len(regs))
    if len(regs) == 2:
        check(fields(regs[0])["pool"] == "0x0000000001000000..0x0000000001030000" and
              fields(regs[1])["table"] == "0x00000000ffff0000", "regions: the sections' addresses")
        check_stats("stats " + regs[0].split(" stats ", 1)[1], KNOWN, "region 0")
        check_stats("stats " + regs[1].split(" stats ", 1)[1], second_stats, "region 1")
    total = fields(lines_starting(p.stdout, "regions")[0])
    check(total == {"count": "2", "blocks": "60", "used": "22", "free": "38", "largest_free": "10",
                    "allocations": "11", "fragmentation": "0.7368"}, "regions: the totals line: %s" % total)
    sections = lines_starting(p.stdout, "section")
    img = fields(lines_starting(p.stdout, "image")[-1])
    check(len(sections) == 2 and img["sections"] == "2", "regions: two sections drawn")
    if len(sections) == 2:
        a, b = fields(sections[0]), fields(sections[1])
        check(int(a["y"]) == 0 and int(b["y"]) == int(a["height"]) and
              int(img["height"]) == int(a["height"]) + int(b["height"]), "regions: sections stacked, lowest first")
        check_images(p.stdout, "region 0", KNOWN_STATES, sections[0])
        check_images(p.stdout, "region 1", second_states, sections[1])
    p = run(["regions", "regions.log", "--region", "1", "-o", "region1"])
    check(len(lines_starting(p.stdout, "region")) == 1 and lines_starting(p.stdout, "section")[0].startswith(
        "section 1 y=0 "), "regions --region 1: that section alone")
    check_images(p.stdout, "region 1 alone", second_states, lines_starting(p.stdout, "section")[0])
    run(["regions", "regions.log", "--region", "2", "-o", "x"], expect_ok=False)
    # a section whose map disagrees with its line, a missing section, no section at all
    for text, what in ((serial.replace("ffff0000 blocks=12", "ffff0000 blocks=13"), "another block count"),
                       (serial.replace("region 1 of 2", "region 1 of 3"), "region count differs"),
                       (known, "no \"HEAPMAP region \" section")):
        open(os.path.join(WORK, "bad-regions.log"), "w").write(text)
        r = run(["regions", "bad-regions.log", "-o", "x"], expect_ok=False)
        check(what in r.stderr, "regions: refused (%s): %s" % (what, r.stderr.strip()))
    p = run(["regions.log", "-o", "regions-last"])
    check("heapmap regions" in p.stderr, "render of a regions log says that `heapmap regions` draws them all")


def cell_xy(section, c):
    """Top-left pixel of cell c in the grid of a `section` line's picture."""
    f = fields(section)
    cols, cell = int(f["cols"]), int(f["cell"])
    return int(f["grid_x"]) + (c % cols) * cell, int(f["grid_y"]) + (c // cols) * cell, cell


def rgb(hexcolour):
    return tuple(int(hexcolour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))


def check_margins(png, name):
    """Nothing drawn in the picture's right margin (its last 8 pixel columns all background):
    no title or legend line runs past the right edge and is clipped."""
    w, _, rows = read_png(os.path.join(WORK, png))
    inked = [y for y, row in enumerate(rows) if any(px != (255, 255, 255) for px in row[w - 8:])]
    check(not inked, "%s: nothing in the right margin, so nothing clipped (ink in rows %s)" % (name, inked[:5]))


def check_window_cut(p, name, rows, drawn, not_drawn):
    """The window's grid: `rows` rows, blocks 0..drawn-1 drawn, `not_drawn` ("A..B" or "none") named as
    free and not drawn; below the last row, no grid (background)."""
    sec = [l for l in lines_starting(p.stdout, "section") if l.split()[1] == "window"]
    f = fields(sec[0]) if sec else {}
    check((f.get("rows"), f.get("drawn_blocks"), f.get("not_drawn")) == (str(rows), str(drawn), not_drawn),
          "%s: window grid of %s rows, drawn_blocks=%s, not_drawn=%s" % (name, f.get("rows"), f.get("drawn_blocks"),
                                                                         f.get("not_drawn")))
    if sec:
        png = fields(lines_starting(p.stdout, "image")[-1])["png"]
        _, _, px = read_png(os.path.join(WORK, png))
        x, y, cell = cell_xy(sec[0], rows * int(f["cols"]))
        check(px[y + cell // 2][x + cell // 2] == (255, 255, 255), "%s: no grid row past row %d" % (name, rows - 1))


def check_window_picture(p, name, region_blocks):
    """Each walloc's window cells filled in its colour, the free ones not; a
    frame in that colour on every region cell holding one of its backing
    blocks (top edge), and on no other cell. region_blocks: {k: blocks}."""
    img = fields(lines_starting(p.stdout, "image")[-1])
    _, _, rows = read_png(os.path.join(WORK, img["png"]))
    sections = {l.split()[1]: l for l in lines_starting(p.stdout, "section")}
    wallocs = [fields(l) for l in lines_starting(p.stdout, "walloc")]
    colours = {rgb(a["colour"]) for a in wallocs}
    window = sections.get("window")
    check(window is not None and len(wallocs) > 0, name + ": a window section and its allocations")
    if window is None:
        return
    taken, marked = {}, {}
    for a in wallocs:
        lo, hi = (int(x) for x in a["window"].split(".."))
        for b in range(lo, hi + 1):
            taken[b] = rgb(a["colour"])
        for run in a["backing"].split(","):
            k, rest = run.split(":")
            b, n = (int(x) for x in rest.split("+"))
            per = int(fields(sections[k])["per_cell"])
            for c in range(b // per, (b + n - 1) // per + 1):
                marked[(k, c)] = rgb(a["colour"])
    last = max(taken) + 2
    for b in range(0, last):
        x, y, cell = cell_xy(window, b)
        body = rows[y + cell // 5][x + cell // 2]
        if b in taken:
            check(body == taken[b], "%s: window block %d has its allocation's colour (%s)" % (name, b, body))
        else:
            check(body == COLOURS["F"][0], "%s: window block %d is free (%s)" % (name, b, body))
    for k, blocks in region_blocks.items():
        per = int(fields(sections[k])["per_cell"])
        for c in range((blocks + per - 1) // per):
            x, y, cell = cell_xy(sections[k], c)
            top = rows[y][x + cell // 2]
            if (k, c) in marked:
                check(top == marked[(k, c)], "%s: region %s cell %d framed in its window allocation's colour (%s)"
                      % (name, k, c, top))
            else:
                check(top not in colours, "%s: region %s cell %d is not framed (%s)" % (name, k, c, top))
    return marked


def window():
    """heapmap regions with the kvmalloc window's section (regions_print.c): the window drawn under
    the regions, each window allocation linked by colour to the region blocks behind it."""
    # 1. the x86_64 kernel at -m 6G (tools/heapmap/examples/regions-6g.log, from test-boot64's boot)
    p = run(["regions", os.path.join(EXAMPLES, "regions-6g.log"), "--title", "x86_64 kernel at -m 6G", "-o",
             "window-6g"])
    win = lines_starting(p.stdout, "window")
    check(len(win) == 1 and fields(win[0])["range"] == "0x0000008000000000..0x0000008004000000",
          "6G: the window line and its range")
    if len(win) == 1:
        check_stats("stats " + win[0].split(" stats ", 1)[1], {
            "blocks": "16384", "per_cell": "1", "used": "80", "free": "16304", "largest_free": "16288",
            "allocations": "2", "invalid": "0"}, "6G window")
    back = lines_starting(p.stdout, "window_backing")
    check(len(back) == 1 and fields(back[0]) == {"count": "80", "allocations": "2", "runs": "8", "regions": "2",
                                                 "map_failures": "0"}, "6G: window_backing line: %s" % back)
    wallocs = [fields(l) for l in lines_starting(p.stdout, "walloc")]
    check([(a["window"], a["blocks"], a["runs"]) for a in wallocs] == [("0..47", "48", "7"), ("64..95", "32", "1")],
          "6G: the two live window allocations: %s" % wallocs)
    if len(wallocs) == 2:
        check(wallocs[0]["backing"] == "0:10+3,0:20+4,0:39+1,0:48+2,0:55+3,0:65+4,0:80+31" and
              wallocs[1]["backing"] == "2:0+32" and wallocs[1]["address"] == "0x8000040000",
              "6G: allocation 1 from 7 runs of region 0, allocation 2 from region 2: %s" % wallocs)
        check(wallocs[0]["colour"] != wallocs[1]["colour"], "6G: one colour per window allocation")
    img = fields(lines_starting(p.stdout, "image")[-1])
    check(img["sections"] == "4" and len(lines_starting(p.stdout, "section")) == 4, "6G: 3 regions + the window")
    marked = check_window_picture(p, "6G", {"0": 25600, "1": 756519, "2": 786240}) or {}
    check(sorted(marked) == [("0", c) for c in range(5)] + [("2", 0)], "6G: framed cells %s" % sorted(marked))
    # the window drawn up to one free row past its last used block (95: row 0 of 128 blocks), the 16,128
    # free blocks after it named, not drawn; its statistics (above) still the whole window's
    check_window_cut(p, "6G", 2, 256, "256..16383")
    secs = {l.split()[1]: fields(l) for l in lines_starting(p.stdout, "section")}
    check(int(img["height"]) <= 1600 and int(secs.get("window", {}).get("height", 9999)) <= 400,
          "6G: the picture %s px high, the window's section %s px" % (img["height"], secs.get("window", {})
                                                                     .get("height")))
    # the long titles broken into lines, nothing clipped at the right edge
    check([secs.get(k, {}).get("title_lines") for k in ("0", "1", "2")] == ["2", "2", "2"],
          "6G: each region's title on two lines")
    check_margins(img["png"], "6G")
    w = run(["regions", os.path.join(EXAMPLES, "regions-6g.log"), "--whole-window", "-o", "whole-window"])
    check_window_cut(w, "--whole-window", 128, 16384, "none")
    check(lines_starting(w.stdout, "window") == lines_starting(p.stdout, "window"), "--whole-window: same statistics")
    check_margins("whole-window.png", "--whole-window")
    q = run(["regions", os.path.join(EXAMPLES, "regions-6g.log"), "--no-window", "-o", "no-window"])
    check(not lines_starting(q.stdout, "window") and fields(lines_starting(q.stdout, "image")[-1])["sections"] == "3",
          "--no-window: the regions alone")

    # 2. a small machine worked out by hand: one block per character everywhere
    log = ("HEAPMAP region 0 of 2 pool=0x0000000001000000..0x0000000001010000 table=0x0000000000007e00 blocks=16\n"
           "HEAPMAP v1 blocks=16 per_char=1 width=16\n00000000 #=VV.V..V.......\n"
           "HEAPMAP end used=6 free=10 largest_free=7 allocations=5 rejected_frees=0\n"
           "HEAPMAP region 1 of 2 pool=0x0000000100000000..0x0000000100008000 table=0x00000000ffff0000 blocks=8\n"
           "HEAPMAP v1 blocks=8 per_char=1 width=16\n00000000 VVV.....\n"
           "HEAPMAP end used=3 free=5 largest_free=5 allocations=3 rejected_frees=0\n"
           "kheap regions: 2 regions\n"
           "HEAPMAP window range=0x0000008000000000..0x0000008000010000 table=0x0000000000172000 "
           "backing=0x0000000000176000 blocks=16 sources=2\n"
           "kheap window: total=16 used=7 free=9 largest_free=8 allocations=2 rejected_frees=0 failed_allocs=0 "
           "backing=7 map_failures=0\n"
           "HEAPMAP v1 blocks=16 per_char=1 width=16\n00000000 #===.#==........\n"
           "HEAPMAP end used=7 free=9 largest_free=8 allocations=2 rejected_frees=0\n"
           "HEAPMAP backing alloc=1 window=0 blocks=4 runs=3 0:2+2 0:5+1 0:8+1\n"
           "HEAPMAP backing alloc=2 window=5 blocks=3 runs=1 1:0+3\n"
           "HEAPMAP backing end allocations=2 blocks=7 runs=4 lines=2 outside_regions=0\n")
    open(os.path.join(WORK, "window.log"), "w", newline="").write(log.replace("\n", "\r\n"))
    p = run(["regions", "window.log", "-o", "window-small"])
    check(fields(lines_starting(p.stdout, "window_backing")[0]) == {
        "count": "7", "allocations": "2", "runs": "4", "regions": "2", "map_failures": "0"}, "small: window_backing")
    check_stats("stats " + lines_starting(p.stdout, "window")[0].split(" stats ", 1)[1], {
        "used": "7", "free": "9", "largest_free": "8", "allocations": "2", "fragmentation": "0.1111"}, "small window")
    wallocs = [fields(l) for l in lines_starting(p.stdout, "walloc")]
    check([(a["window"], a["runs"], a["backing"]) for a in wallocs] == [("0..3", "3", "0:2+2,0:5+1,0:8+1"),
                                                                      ("5..7", "1", "1:0+3")], "small: %s" % wallocs)
    marked = check_window_picture(p, "small", {"0": 16, "1": 8}) or {}
    check_window_cut(p, "small (one row: all drawn)", 1, 16, "none")
    check_margins("window-small.png", "small")
    check(sorted(marked) == [("0", 2), ("0", 3), ("0", 5), ("0", 8), ("1", 0), ("1", 1), ("1", 2)],
          "small: the framed cells are the backing blocks: %s" % sorted(marked))
    # the frame leaves the cell's own state visible: a VMAP first block inside
    sec0 = [l for l in lines_starting(p.stdout, "section") if l.split()[1] == "0"][0]
    _, _, rows = read_png(os.path.join(WORK, "window-small.png"))
    x, y, cell = cell_xy(sec0, 5)
    check(rows[y + cell // 2][x + cell // 2] == COLOURS["V"][0], "small: a framed cell still shows its VMAP block")
    # refusals: a run on a block that is no VMAP block, runs that do not add up, an end line that
    # disagrees, a backed range that is not one allocation, a run past its region
    for old, new, what in (("0:2+2 0:5+1 0:8+1", "0:1+2 0:5+1 0:8+1", "not a VMAP block"),
                           ("runs=3 0:2+2", "runs=2 0:2+2", "another number of runs"),
                           ("end allocations=2 blocks=7", "end allocations=2 blocks=8", "disagree"),
                           ("00000000 #===.#==", "00000000 #=#=.#==", "not one allocation"),
                           ("1:0+3", "1:6+3", "outside every region")):
        open(os.path.join(WORK, "bad-window.log"), "w").write(log.replace(old, new))
        r = run(["regions", "bad-window.log", "-o", "x"], expect_ok=False)
        check(what in r.stderr, "window: refused (%s): %s" % (what, r.stderr.strip()))
    open(os.path.join(WORK, "bad-window.log"), "w").write(log.replace("0:2+2 0:5+1 0:8+1", "0:1+2 0:5+1 0:8+1"))
    r = run(["regions", "bad-window.log", "--no-window", "-o", "x"])
    check(fields(lines_starting(r.stdout, "image")[-1])["sections"] == "2", "--no-window reads no window section")
    # a 64-block window used in its first row only: rows 0 and 1 drawn, blocks 32..63 named, not drawn
    big = (log.replace("0x0000008000010000", "0x0000008000040000").replace("blocks=16 sources", "blocks=64 sources")
           .replace("total=16 used=7 free=9 largest_free=8", "total=64 used=7 free=57 largest_free=56")
           .replace("HEAPMAP v1 blocks=16 per_char=1 width=16\n00000000 #===.#==........\n"
                    "HEAPMAP end used=7 free=9 largest_free=8",
                    "HEAPMAP v1 blocks=64 per_char=1 width=16\n00000000 #===.#==........\n"
                    + "".join("%08x ................\n" % (16 * r) for r in (1, 2, 3))
                    + "HEAPMAP end used=7 free=57 largest_free=56"))
    open(os.path.join(WORK, "window-64.log"), "w").write(big)
    p = run(["regions", "window-64.log", "-o", "window-64"])
    check_stats("stats " + lines_starting(p.stdout, "window")[0].split(" stats ", 1)[1], {
        "blocks": "64", "used": "7", "free": "57", "largest_free": "56"}, "64-block window: the whole window's")
    check_window_cut(p, "64-block window", 2, 32, "32..63")
    check_window_picture(p, "64-block window", {"0": 16, "1": 8})
    p = run(["regions", "window-64.log", "--whole-window", "-o", "window-64-whole"])
    check_window_cut(p, "64-block window, --whole-window", 4, 64, "none")


def titles():
    """A title wider than the picture is broken into lines (after ": " where it can); nothing is clipped."""
    long_title = ("A title much wider than the picture it names: " + "word " * 40).strip()
    p = run([os.path.join(HERE, "known.hex"), "--title", long_title, "-o", "long-title"])
    q = run([os.path.join(HERE, "known.hex"), "--title", "short", "-o", "short-title"])
    a, b = fields(lines_starting(p.stdout, "image")[-1]), fields(lines_starting(q.stdout, "image")[-1])
    check(a["width"] == b["width"] and int(a["grid_y"]) >= int(b["grid_y"]) + 2 * 19,
          "long title: same width, the grid moved down by its extra lines (%s -> %s)" % (b["grid_y"], a["grid_y"]))
    check_margins("long-title.png", "long title")
    check_images(p.stdout, "long title", KNOWN_STATES)


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    known_hex = os.path.join(HERE, "known.hex")
    known_bin = os.path.join(WORK, "known.bin")
    open(known_bin, "wb").write(hex_to_bytes(known_hex))
    check(len(hex_to_bytes(known_hex)) == 48, "known.hex has 48 entries")

    # 1. hex, raw (forced and detected), labels
    p = run([known_hex, "-o", "hex"])
    check_stats(p.stdout, KNOWN, "hex")
    check_images(p.stdout, "hex", KNOWN_STATES)
    for args, name in (([known_bin, "--format", "raw", "-o", "raw"], "raw"), ([known_bin, "-o", "auto"], "auto")):
        p = run(args)
        check_stats(p.stdout, KNOWN, name)
        check_images(p.stdout, name, KNOWN_STATES)
    p = run([known_bin, "--labels", "--title", "known", "--cols", "8", "-o", "labels"])
    check_images(p.stdout, "labels")
    check(fields(lines_starting(p.stdout, "image")[-1])["cols"] == "8", "--cols 8 gives 8 columns")

    # 2. the library's own heap_dump_map of the table equals the committed text map
    p = run(["text", known_bin, "--width", "16"])
    expected_text = open(os.path.join(HERE, "known.txt")).read()
    check(p.stdout == expected_text, "heapmap text (heap_dump_map) output equals known.txt:\n" + p.stdout)

    # 3. text map: plain, then inside serial noise with ANSI colours and CRLF, after an older map
    p = run([os.path.join(HERE, "known.txt"), "-o", "text"])
    check_stats(p.stdout, KNOWN, "text")
    check_images(p.stdout, "text", KNOWN_STATES)
    older = "HEAPMAP v1 blocks=48 per_char=1 width=16\n" + "".join(
        "%08x %s\n" % (r * 16, "." * 16) for r in range(3)) + \
        "HEAPMAP end used=0 free=48 largest_free=48 allocations=0 rejected_frees=0\n"
    body = expected_text.splitlines()
    colour = [re.sub(r"([#=Cc?]+)", "\x1b[1;34m\\1\x1b[0m", l) if l[:1].isdigit() else l for l in body]
    serial = ("SeaBIOS (version 1.16)\nbooting PeachOS\n" + older + "kheap: ready\n" + "\r\n".join(
        colour[:2] + ["timer: tick 42"] + colour[2:]) + "\r\nhalted.\n")
    open(os.path.join(WORK, "serial.log"), "w", newline="").write(serial)
    p = run(["serial.log", "-o", "serial"])
    check_stats(p.stdout, KNOWN, "serial (last map)")
    check_images(p.stdout, "serial", KNOWN_STATES)
    check("ignored 1 line" in p.stderr, "serial: the noise line inside the map is reported")
    p = run(["serial.log", "--map", "1", "-o", "serial-first"])
    check_stats(p.stdout, {"used": "0", "free": "48", "largest_free": "48", "fragmentation": "0.0000"},
                "serial --map 1")
    run(["serial.log", "--map", "3", "-o", "serial-none"], expect_ok=False)
    p = run(["-", "-o", "stdin"], stdin=expected_text)
    check_stats(p.stdout, KNOWN, "stdin")
    # a map with a lost line: cells drawn missing, the rest still counted
    cut = "\n".join(body[:2] + body[3:]) + "\n"
    p = run(["-", "-o", "cut"], stdin=cut)
    check("16 of 48 cells missing" in p.stderr, "cut map: missing cells reported")
    check_stats(p.stdout, {"used": "10", "free": "22", "largest_free": "7"}, "cut map (rows 0 and 2 only)")

    # 4. grouped text map (per_char 4): statistics come from the end line
    p = run(["text", known_bin, "--per-char", "4", "--width", "8"])
    check(p.stdout.splitlines()[1:3] == ["00000000 853.#3.?", "00000020 5.5."], "grouped map:\n" + p.stdout)
    open(os.path.join(WORK, "grouped.txt"), "w").write(p.stdout)
    p = run(["grouped.txt", "-o", "grouped"])
    check_stats(p.stdout, {"blocks": "48", "per_cell": "4", "cells": "12", "used": "16", "free": "32",
                           "largest_free": "10", "allocations": "8", "cache_blocks": "?", "vmap_blocks": "?",
                           "invalid": "1",
                           "fragmentation": "0.6875"}, "grouped")
    check_images(p.stdout, "grouped")
    grouped = open(os.path.join(WORK, "grouped.txt")).read().splitlines()
    open(os.path.join(WORK, "noend.txt"), "w").write("\n".join(grouped[:3]) + "\n")
    p = run(["noend.txt", "-o", "noend"])
    check_stats(p.stdout, {"used": "?", "fragmentation": "?"}, "grouped without end line")

    # 5. every kind of broken entry
    p = run([os.path.join(HERE, "corrupt.hex"), "-o", "corrupt"])
    check_stats(p.stdout, CORRUPT, "corrupt")
    check_images(p.stdout, "corrupt", CORRUPT_STATES)

    # 6. bad input
    run(["no-such-file.bin", "-o", "x"], expect_ok=False)
    open(os.path.join(WORK, "bad.hex"), "w").write("c1 zz\n")
    run(["bad.hex", "-o", "x"], expect_ok=False)
    run(["-", "--format", "text", "-o", "x"], expect_ok=False, stdin="no map here\n")

    # 7. replay W3 on 256 blocks: 192 singles, 96 freed, 64 blocks at 192..255, the next request fails
    p = run(["replay", "-w", "w3", "--blocks", "256", "-o", "w3"])
    snaps = lines_starting(p.stdout, "snapshot")
    check([fields(s)["op"] for s in snaps] == ["192", "288", "290"], "w3 snapshots at 192, 288, 290")
    check_stats(snaps[-1], {"used": "160", "free": "96", "largest_free": "1", "allocations": "97",
                            "fragmentation": "0.9896"}, "w3 end")
    check_stats(snaps[1], {"used": "96", "free": "160", "largest_free": "64"}, "w3 after frees")
    end = fields(lines_starting(p.stdout, "replay")[-1])
    check(end.get("ops") == "290" and end.get("failed_allocs") == "1" and end.get("heap_check") == "clean",
          "w3 replay summary: " + str(end))
    check_images(p.stdout, "w3 end")
    tl = fields(lines_starting(p.stdout, "timeline")[-1])
    read_png(os.path.join(WORK, tl["png"]))
    check(ET.parse(os.path.join(WORK, tl["svg"])).getroot().tag.endswith("svg"), "timeline SVG parses")
    dat = [l.split() for l in open(os.path.join(WORK, tl["dat"])) if not l.startswith("#")]
    check(len(dat) == 291 and dat[0][:2] == ["0", "0.000"] and dat[-1][0] == "290", "w3 timeline has ops 0..290")
    check(dat[-1][1] == "62.500" and dat[-1][4] == "1", "w3 timeline ends at 62.5% used, 1 failed")

    # 8. the example trace, worked out in tools/heapmap/examples/mixed.trace
    p = run(["replay", "-w", os.path.join(EXAMPLES, "mixed.trace"), "--no-plot", "--dump", "mixed.bin",
             "-o", "mixed"])
    check_stats(lines_starting(p.stdout, "snapshot")[-1],
                {"blocks": "64", "used": "37", "free": "27", "largest_free": "18", "allocations": "10",
                 "cache_blocks": "4"}, "mixed.trace")
    mixed = "KA" + "FF" + "AK" + "AMMMM" + "F" * 5 + "AKk" + "FF" + "AMM" + "AMMMMM" + "A" + "M" * 15 + "F" * 18
    check(len(mixed) == 64, "mixed.trace expectation covers 64 blocks")
    check_images(p.stdout, "mixed.trace", mixed)
    # --dump writes the final table as raw bytes, which render reads back
    check(os.path.getsize(os.path.join(WORK, "mixed.bin")) == 64, "--dump writes one byte per block")
    d = run(["mixed.bin", "-o", "mixed-dump"])
    check(re.sub(r"^.*? stats ", "stats ", lines_starting(p.stdout, "snapshot")[-1]) ==
          lines_starting(d.stdout, "stats")[0], "the dumped table renders with the snapshot's statistics")

    # 9. W1 recorded, then replayed from its trace: same states at the same operations
    p = run(["replay", "-w", "w1", "--blocks", "512", "--ops", "400", "--occupancy", "60,95", "--seed", "7",
             "--record", "w1.trace", "--every", "100", "--no-plot", "-o", "w1"])
    a = lines_starting(p.stdout, "snapshot")
    ops_a = [int(fields(s)["op"]) for s in a]
    last = int(fields(lines_starting(p.stdout, "replay")[0])["ops"])
    check(set(range(100, last + 1, 100)) <= set(ops_a) and ops_a[-1] == last and ops_a == sorted(set(ops_a)),
          "w1 snapshots every 100 ops and at each phase end: %s" % ops_a)
    check(last > 800, "w1: warm-ups plus 2 x 400 steady-state operations (%d)" % last)
    trace = [l.split() for l in open(os.path.join(WORK, "w1.trace")) if l[:1] in "mf"]
    sizes = [int(t[2]) for t in trace if t[0] == "m"]
    check(len(trace) == last and all(1 <= (b + 63) // 4096 <= 16 and (b + 63) % 4096 < 64 for b in sizes),
          "w1 requests are n * 4096 - r bytes, n in 1..16, r in 0..63")
    q = run(["replay", "-w", "w1.trace", "--every", "100", "--no-plot", "-o", "w1r"])
    b = lines_starting(q.stdout, "snapshot")
    strip = lambda s: re.sub(r'label="[^"]*" ', "", s)
    check([strip(s) for s in a] == [strip(s) for s in b], "recorded W1 trace replays to the same states")
    check(lines_starting(p.stdout, "replay")[0].split()[2:] == lines_starting(q.stdout, "replay")[0].split()[2:],
          "same summary for W1 and its trace")
    at60 = [s for s in a if "60% occupancy" in s]
    check(len(at60) == 1 and int(fields(a[-1])["used"]) > int(fields(at60[0])["used"]),
          "W1's 95% phase ends fuller than its 60% phase")

    # 10. trace errors
    for text, what in (("m 1 4096\nf 2\n", "free of an id never allocated"), ("m 1 4096\nm 1 10\n", "id still live"),
                       ("x 1\n", "unknown operation"), ("m 1\n", "missing size")):
        open(os.path.join(WORK, "bad.trace"), "w").write(text)
        r = run(["replay", "-w", "bad.trace", "--no-plot", "-o", "bad"], expect_ok=False)
        check("line" in r.stderr, "bad trace (%s) names the line: %s" % (what, r.stderr.strip()))

    vmap()
    regions()
    window()
    titles()
    bench_traces()
    colorize()

    print("test-heapmap: %d checks, %d failed" % (checks, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

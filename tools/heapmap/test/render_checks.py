"""tools/heapmap/test/render_checks.py - `heapmap [render]` and `heapmap text`
on the known tables: raw, hex and text input (also inside serial noise, ANSI
colours and CRLF, with a lost line, grouped), their statistics against the
numbers worked out by hand and every cell's colour, bad input, VMAP blocks
(vmap.hex), and long titles broken into lines.
"""
import os
import re

from harness import (CORRUPT, CORRUPT_STATES, HERE, KNOWN, KNOWN_STATES, VMAP, VMAP_STATES, WORK, check, check_stats,
                     fields, hex_to_bytes, lines_starting, run)
from pictures import check_images, check_margins


def inputs():
    """1-6. The known table through every input format, and bad input."""
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

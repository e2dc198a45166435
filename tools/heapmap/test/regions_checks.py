"""tools/heapmap/test/regions_checks.py - `heapmap regions`: a log with two
region sections (one the known map, one worked out by hand) inside serial
noise and CRLF, stacked in address order with every cell's colour,
`--region` and the refusals; then the kvmalloc window: the 6G example and a
small machine worked out by hand, each window block in its allocation's
colour, exactly the region cells behind it framed in that colour, the
window's grid cut one free row past its last used block, `--whole-window`,
`--no-window` and the refusals.
"""
import os

from harness import EXAMPLES, HERE, KNOWN, KNOWN_STATES, WORK, check, check_stats, fields, lines_starting, run
from pictures import COLOURS, cell_xy, check_images, check_margins, read_png, rgb


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

"""tools/heapmap/test/pictures.py - what heapmap draws, checked pixel by
pixel: PNGs decoded with zlib alone, every cell's colour against its state
in the tool's palette (render.c), the dark edge of every first block, the
SVG's size, cells located in a `section` line's grid, and the empty right
margin that shows no text was clipped. Used by every part of test-heapmap
that looks at a picture.
"""
import os
import struct
import xml.etree.ElementTree as ET
import zlib

from harness import WORK, check, fields, lines_starting

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

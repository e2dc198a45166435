"""tools/heapmap/test/colorize_checks.py - tools/colorize-map, the filter
`make run` puts on the kernel's serial output when stdout is a terminal: a
known map comes out with ANSI colours on its map lines only, each character
class in its colour, is the input again once the escapes are removed, and
heapmap reads the coloured map back.
"""
import os
import re
import stat
import subprocess

from harness import HERE, KNOWN, WORK, check, check_stats, run

COLORIZE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "colorize-map")


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

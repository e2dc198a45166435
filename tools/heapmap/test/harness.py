"""tools/heapmap/test/harness.py - what every part of test-heapmap shares: the
command line's paths, running heapmap and counting the checks, reading the
`key=value` lines it prints, and the statistics worked out by hand for the
fixtures (known.hex, corrupt.hex, vmap.hex). test_heapmap.py runs the parts
and prints the count. Pictures are decoded and checked in pictures.py.
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
TOOL = os.path.abspath(sys.argv[1])
WORK = os.path.abspath(sys.argv[2])
BENCH = os.path.abspath(sys.argv[3])

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


def check_stats(out, expected, name):
    got = fields(out if out.startswith("snapshot ") else lines_starting(out, "stats")[-1])
    for k, v in expected.items():
        check(got.get(k) == v, "%s: %s=%s, expected %s" % (name, k, got.get(k), v))


def hex_to_bytes(path):
    text = re.sub(r"#.*", "", open(path).read())
    return bytes(int(t, 16) for t in text.split())


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

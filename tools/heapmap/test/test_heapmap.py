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

This file runs the parts, in that order, and prints the number of checks:
render_checks.py (render and text), replay_checks.py (replay and the
benchmark's traces), regions_checks.py (regions and the kvmalloc window) and
colorize_checks.py, on the shared harness.py (running the tool, counting the
checks, the fixtures' figures) and pictures.py (PNG and SVG checks).
"""
import os
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import colorize_checks  # noqa: E402
import harness  # noqa: E402
import regions_checks  # noqa: E402
import render_checks  # noqa: E402
import replay_checks  # noqa: E402


def main():
    shutil.rmtree(harness.WORK, ignore_errors=True)
    os.makedirs(harness.WORK)
    render_checks.inputs()
    replay_checks.workloads()
    render_checks.vmap()
    regions_checks.regions()
    regions_checks.window()
    render_checks.titles()
    replay_checks.bench_traces()
    colorize_checks.colorize()

    print("test-heapmap: %d checks, %d failed" % (harness.checks, len(harness.failures)))
    return 1 if harness.failures else 0


if __name__ == "__main__":
    sys.exit(main())

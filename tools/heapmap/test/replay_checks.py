"""tools/heapmap/test/replay_checks.py - `heapmap replay`: W3 and the example
trace against hand-computed results, a recorded W1 trace replayed to the same
states, trace errors, and the benchmark's own traces: bench-peach --trace-out
writes the trace its run replays (its FNV-1a hash must equal the trace_hash
of the benchmark's row), heapmap replays it, and the final table must equal,
byte for byte, the table bench-peach ended with (--dump-table), whose hash is
the row's end_state.
"""
import os
import re
import struct
import subprocess
import xml.etree.ElementTree as ET

from harness import BENCH, EXAMPLES, WORK, check, check_stats, fields, lines_starting, run
from pictures import check_images, read_png


def workloads():
    """7-10. Replays of the built-in workloads and of traces, and bad traces."""
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

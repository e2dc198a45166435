#!/usr/bin/env python3
"""bench/run.py - run `make bench` and write docs/bench/.

    python3 bench/run.py --build build/bench --out docs/bench --command "make bench"
    python3 bench/run.py --smoke ...      tiny op counts (test-bench-build)

1. Asks every build/bench/bench-* binary (--list) for its allocators and
   workloads.
2. Runs each (workload, heap size, allocator) in its own process, one at a
   time, allocators interleaved cell by cell, and collects the `row,` lines.
3. Runs the same cells under callgrind (--instr-atstart=no: only the
   measured operations are instrumented) and reads the instruction counts
   from the labelled dumps.
4. Cross-checks: every allocator of a cell replayed the same trace (hash),
   the scan and the indexed heap ended in the same table state, and the
   scan set up with the scan itself ends where the index-assisted set-up does.
5. Writes results.csv, results.md (with the goals, MET / NOT MET computed
   from this run's numbers) and gnuplot plots (PNG + SVG) per workload.
Standard library only.
"""
import argparse
import csv
import datetime
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import time

ALLOC_ORDER = ["scan", "indexed", "glibc", "jemalloc", "mimalloc"]
COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"]
ROW_FIELDS = ["workload", "allocator", "blocks", "unit", "ops_timed", "ops_latency", "median_ns", "mean_ns",
              "p99_ns", "max_ns", "allocs", "failures", "trace_hash", "end_state", "note"]
CSV_FIELDS = ["workload", "allocator", "heap_mib", "blocks", "unit", "median_ns", "median_min_ns", "median_max_ns",
              "mean_ns", "p99_ns", "max_ns", "fail_rate", "allocs", "failures", "ir_per_op", "ir_ops", "rounds",
              "ops_timed", "ops_latency", "trace_hash", "end_state", "note"]
BLOCK = 4096
TIMER = []   # timer overhead (ns) reported by each native process
SEED = set()
SIZE_16M, SIZE_100M, SIZE_1G = 4096, 25600, 262144


def log(msg):
    print(msg, flush=True)


def alloc_key(name):
    return (ALLOC_ORDER.index(name) if name in ALLOC_ORDER else len(ALLOC_ORDER), name)


def mib(blocks):
    v = blocks * BLOCK / (1 << 20)
    return int(v) if v == int(v) else round(v, 2)


def size_label(blocks):
    m = mib(blocks)
    return "1 GiB" if m == 1024 else f"{m} MiB"


def discover(build):
    allocs, workloads = {}, {}
    for path in sorted(glob.glob(os.path.join(build, "bench-*"))):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)) or "." in os.path.basename(path):
            continue
        out = subprocess.run([path, "--list"], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split(" ", 3)
            if parts[0] == "alloc":
                allocs[parts[1]] = {"binary": path, "bounded": parts[2] == "bounded",
                                    "describe": parts[3] if len(parts) > 3 else ""}
            elif parts[0] == "workload":
                sizes = [int(x) for x in line.split()[2:]]
                if workloads.setdefault(parts[1], sizes) != sizes:
                    sys.exit(f"run.py: binaries disagree on the sizes of {parts[1]}")
    if not allocs or not workloads:
        sys.exit(f"run.py: no bench binaries in {build} (make bench-build)")
    return allocs, workloads


def run_cell(cmd, native=True):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        sys.exit(f"run.py: failed: {' '.join(cmd)}")
    rows = []
    for line in p.stdout.splitlines():
        m = re.match(r"# seed (\d+) timer_overhead_ns (\d+)", line)
        if m and native:
            TIMER.append(int(m.group(2)))
            SEED.add(int(m.group(1)))
        if line.startswith("row,"):
            values = line.split(",", len(ROW_FIELDS))[1:]
            rows.append(dict(zip(ROW_FIELDS, values)))
    return rows, time.time() - t0


def read_callgrind(prefix):
    """{(workload, allocator, blocks): (Ir, ops)} from the labelled dumps prefix.N."""
    found = {}
    for path in glob.glob(prefix + ".*"):
        label, total = None, None
        with open(path) as f:
            for line in f:
                if line.startswith("desc: Trigger: Client Request: cg|"):
                    label = line.split("Client Request: ", 1)[1].strip()
                elif line.startswith("totals:"):
                    total = int(line.split()[1])
        if label and total is not None:
            _, workload, allocator, blocks, ops = label.split("|")
            found[(workload, allocator, int(blocks))] = (total, int(ops))
    return found


def machine_info():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or str(os.cpu_count())
    cc = subprocess.run([os.environ.get("HOST_CC", "gcc"), "--version"], capture_output=True,
                        text=True).stdout.splitlines()
    vg = shutil.which("valgrind")
    vgv = subprocess.run([vg, "--version"], capture_output=True, text=True).stdout.strip() if vg else "not installed"
    return {"cpu": cpu, "nproc": nproc, "kernel": platform.release(), "cc": cc[0] if cc else "?", "valgrind": vgv}


def fnum(v, digits=0):
    if v is None:
        return "-"
    if v >= 100 or digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/bench")
    ap.add_argument("--out", default="docs/bench")
    ap.add_argument("--command", default="python3 bench/run.py")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--rounds", type=int, default=5, help="native sweeps; the median of the cell medians is kept")
    args = ap.parse_args()

    started = time.time()
    load_start = os.getloadavg()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    allocs, workloads = discover(args.build)
    order = sorted(allocs, key=alloc_key)
    smoke = ["--smoke"] if args.smoke else []
    os.makedirs(args.out, exist_ok=True)

    # 1. native timing, one process per cell, allocators interleaved; the
    #    whole sweep is repeated `rounds` times so that a burst of other work
    #    on the machine spoils one round of a cell, not its figure
    rounds = 1 if args.smoke else args.rounds
    samples = {}
    for k in range(rounds):
        log(f"round {k + 1} of {rounds}")
        for w in sorted(workloads):
            for n in workloads[w]:
                if args.smoke and n != workloads[w][0]:
                    continue
                for a in order:
                    cmd = [allocs[a]["binary"], "--alloc", a, "--workload", w, "--blocks", str(n)] + smoke
                    got, secs = run_cell(cmd)
                    for r in got:
                        samples.setdefault((r["workload"], r["allocator"], int(r["blocks"])), []).append(r)
                    log(f"  {w:6} {size_label(n):>8} {a:9} {secs:6.2f} s  "
                        + "  ".join(f"{r['workload']} {float(r['median_ns']):,.0f} ns" for r in got))
    rows = [aggregate(rs) for rs in samples.values()]

    # 2. the scan heap set up with the scan itself must end where the
    #    index-assisted set-up ends (same table bytes)
    problems = []
    if "scan" in allocs:
        for w in sorted(workloads):
            n = workloads[w][0]
            got, _ = run_cell([allocs["scan"]["binary"], "--alloc", "scan", "--workload", w, "--blocks", str(n),
                               "--scan-real-setup"] + smoke)
            for r in got:
                ref = [x for x in rows if x["workload"] == r["workload"] and x["allocator"] == "scan"
                       and int(x["blocks"]) == n]
                if not ref or ref[0]["end_state"] != r["end_state"]:
                    problems.append(f"scan with real set-up ends in another state on {r['workload']} {n} blocks")
        log(f"  scan set-up check (--scan-real-setup at the smallest size): "
            f"{'ok' if not problems else 'MISMATCH'}")

    # 3. callgrind
    ir = {}
    have_vg = shutil.which("valgrind") is not None
    if not args.no_callgrind and have_vg:
        cgdir = os.path.join(args.build, "callgrind")
        os.makedirs(cgdir, exist_ok=True)
        for f in glob.glob(os.path.join(cgdir, "cg-*")):
            os.remove(f)
        for w in sorted(workloads):
            for n in workloads[w]:
                if args.smoke and n != workloads[w][0]:
                    continue
                for a in order:
                    prefix = os.path.join(cgdir, f"cg-{w}-{n}-{a}")
                    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
                           f"--callgrind-out-file={prefix}", allocs[a]["binary"], "--callgrind", "--alloc", a,
                           "--workload", w, "--blocks", str(n)] + smoke
                    _, secs = run_cell(cmd, native=False)
                    found = read_callgrind(prefix)
                    ir.update(found)
                    log(f"  callgrind {w:6} {size_label(n):>8} {a:9} {secs:6.2f} s  "
                        + "  ".join(f"{k[0]} {v[0] / v[1]:,.0f} Ir/op" for k, v in sorted(found.items())))
    elif not args.no_callgrind:
        log("  valgrind not installed: no instruction counts (tools/need valgrind)")

    # 4. cross-checks
    cells = {}
    for r in rows:
        cells.setdefault((r["workload"], int(r["blocks"])), []).append(r)
    for (w, n), rs in sorted(cells.items()):
        for r in rs:
            for k in ("trace_hash", "end_state"):
                if r[k] == "differs-between-rounds":
                    problems.append(f"{w} {n} blocks {r['allocator']}: {k} differs between rounds")
        if len({r["trace_hash"] for r in rs}) != 1:
            problems.append(f"{w} {n} blocks: allocators replayed different traces")
        states = {r["end_state"] for r in rs if allocs[r["allocator"]]["bounded"]}
        if len(states) > 1:
            problems.append(f"{w} {n} blocks: scan and indexed heaps ended in different states")

    # 5. results
    for r in rows:
        n = int(r["blocks"])
        r["heap_mib"] = mib(n)
        for k in ("median_ns", "median_min_ns", "median_max_ns", "mean_ns", "p99_ns", "max_ns"):
            r[k] = float(r[k])
        for k in ("blocks", "allocs", "failures", "ops_timed", "ops_latency", "rounds"):
            r[k] = int(r[k])
        r["fail_rate"] = r["failures"] / r["allocs"] if r["allocs"] else 0.0
        got = ir.get((r["workload"], r["allocator"], n))
        r["ir_per_op"] = got[0] / got[1] if got else None
        r["ir_ops"] = got[1] if got else None
    rows.sort(key=lambda r: (r["workload"], r["blocks"], alloc_key(r["allocator"])))

    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(CSV_FIELDS)
        for r in rows:
            out = []
            for k in CSV_FIELDS:
                v = r.get(k)
                if v is None:
                    out.append("")
                elif isinstance(v, float):
                    out.append(f"{v:.6g}" if k == "fail_rate" else f"{v:.1f}")
                else:
                    out.append(v)
            wr.writerow(out)

    goals = compute_goals(rows)
    plots = [] if args.no_plots or not shutil.which("gnuplot") else make_plots(rows, workloads, args)
    info = machine_info()
    info.update(date=date, load_start=load_start, load_end=os.getloadavg(), seconds=time.time() - started)
    write_markdown(os.path.join(args.out, "results.md"), rows, goals, plots, info, allocs, args, problems)

    log("")
    log(f"Goals ({'SMOKE RUN: tiny op counts, not figures' if args.smoke else 'this run'}):")
    for g in goals:
        log(f"  {g['status']:10} {g['goal']}: {g['measured']}")
    log(f"wrote {args.out}/results.md, results.csv" + (f" and {len(plots)} plots" if plots else "")
        + f" in {time.time() - started:.0f} s")
    if problems:
        for p in problems:
            log(f"PROBLEM: {p}")
        sys.exit(1)


def aggregate(rs):
    """One row from the rounds of a cell: median of the medians and of the
    p99s, mean of the means, max of the maxima; spread of the medians kept."""
    def med(values):
        v = sorted(values)
        return v[(len(v) - 1) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    out = dict(rs[0])
    medians = [float(r["median_ns"]) for r in rs]
    out["median_ns"] = med(medians)
    out["median_min_ns"] = min(medians)
    out["median_max_ns"] = max(medians)
    out["p99_ns"] = med(float(r["p99_ns"]) for r in rs)
    out["mean_ns"] = sum(float(r["mean_ns"]) for r in rs) / len(rs)
    out["max_ns"] = max(float(r["max_ns"]) for r in rs)
    out["allocs"] = sum(int(r["allocs"]) for r in rs)
    out["failures"] = sum(int(r["failures"]) for r in rs)
    out["rounds"] = len(rs)
    for k in ("trace_hash", "end_state"):
        if len({r[k] for r in rs}) != 1:
            out[k] = "differs-between-rounds"
    return out


def find(rows, workload, allocator, blocks):
    for r in rows:
        if r["workload"] == workload and r["allocator"] == allocator and r["blocks"] == blocks:
            return r
    return None


def compute_goals(rows):
    goals = []

    def missing(goal):
        goals.append({"goal": goal, "measured": "not measured in this run", "status": "NOT MEASURED"})

    # 1. indexed >= 100x faster than the scan, W1 90%, 100 MiB
    goals.append(scan_goal(rows, "indexed >= 100x faster than scan, W1 90%, 100 MiB", 100))

    # 2. indexed 1 GiB cost <= 2x its 16 MiB cost, W1 90%
    g = "indexed 1 GiB cost <= 2x its 16 MiB cost, W1 90%"
    a, b = find(rows, "w1-90", "indexed", SIZE_16M), find(rows, "w1-90", "indexed", SIZE_1G)
    if a and b and a["median_ns"] > 0:
        ratio = b["median_ns"] / a["median_ns"]
        m = f"{ratio:.2f}x ({b['median_ns']:,.0f} / {a['median_ns']:,.0f} ns per pair)"
        if a["ir_per_op"] and b["ir_per_op"]:
            m += f"; by instructions {b['ir_per_op'] / a['ir_per_op']:.2f}x"
        goals.append({"goal": g, "measured": m, "status": "MET" if ratio <= 2 else "NOT MET"})
    else:
        missing(g)

    # 3. W3 at 1 GiB under 1 us, indexed: both requests
    g = "W3 at 1 GiB < 1 us, indexed (both requests)"
    f, nf = find(rows, "w3-fit", "indexed", SIZE_1G), find(rows, "w3-nofit", "indexed", SIZE_1G)
    if f and nf:
        worst = max(f["median_ns"], nf["median_ns"])
        m = (f"fits-at-end {f['median_ns']:,.0f} ns, cannot-fit {nf['median_ns']:,.0f} ns median "
             f"(p99 {f['p99_ns']:,.0f} / {nf['p99_ns']:,.0f} ns)")
        goals.append({"goal": g, "measured": m, "status": "MET" if worst < 1000 else "NOT MET"})
    else:
        missing(g)

    # 4. indexed faster than glibc malloc on W1 at every size (both occupancies)
    g = "indexed faster than glibc malloc on W1 at every size"
    parts, ok, seen = [], True, 0
    for w in ("w1-50", "w1-90"):
        for n in (SIZE_16M, SIZE_100M, SIZE_1G):
            i, gl = find(rows, w, "indexed", n), find(rows, w, "glibc", n)
            if not (i and gl):
                continue
            seen += 1
            faster = i["median_ns"] < gl["median_ns"]
            ok = ok and faster
            parts.append(f"{w} {size_label(n)}: {i['median_ns']:,.0f} vs {gl['median_ns']:,.0f} ns "
                         f"({gl['median_ns'] / i['median_ns']:.2f}x){'' if faster else ' SLOWER'}")
    if seen == 6:
        goals.append({"goal": g, "measured": "; ".join(parts), "status": "MET" if ok else "NOT MET"})
    elif seen:
        goals.append({"goal": g, "measured": "; ".join(parts) + f" (only {seen} of 6 cells)",
                      "status": "NOT MEASURED"})
    else:
        missing(g)
    goals += w1_pair_goals(rows)
    return goals


def scan_goal(rows, goal, factor):
    """indexed at least `factor` times faster than the scan, W1 90%, 100 MiB."""
    s, i = find(rows, "w1-90", "scan", SIZE_100M), find(rows, "w1-90", "indexed", SIZE_100M)
    if not (s and i and i["median_ns"] > 0):
        return {"goal": goal, "measured": "not measured in this run", "status": "NOT MEASURED"}
    ratio = s["median_ns"] / i["median_ns"]
    m = f"{ratio:,.1f}x ({s['median_ns']:,.0f} / {i['median_ns']:,.0f} ns per pair)"
    if s["ir_per_op"] and i["ir_per_op"]:
        m += f"; by instructions {s['ir_per_op'] / i['ir_per_op']:,.1f}x"
    return {"goal": goal, "measured": m, "status": "MET" if ratio >= factor else "NOT MET"}


def w1_pair_goals(rows):
    """The goals for exact first fit at the cost of a good-fit allocator: a
    W1 malloc+free pair in at most 300 instructions at every size, at least
    50x the scan at 100 MiB/90%, no slower than glibc anywhere nor than
    mimalloc at 1 GiB, and the W3 worst case under 100 ns at 1 GiB."""
    goals = []
    cells = [(w, n) for w in ("w1-50", "w1-90") for n in (SIZE_16M, SIZE_100M, SIZE_1G)]

    def add(goal, parts, ok, seen, want):
        if seen == want:
            goals.append({"goal": goal, "measured": "; ".join(parts), "status": "MET" if ok else "NOT MET"})
        else:
            goals.append({"goal": goal, "measured": "; ".join(parts) + f" (only {seen} of {want} cells)"
                          if parts else "not measured in this run", "status": "NOT MEASURED"})

    parts, ok, seen = [], True, 0
    for w, n in cells:
        i = find(rows, w, "indexed", n)
        if i and i["ir_per_op"]:
            seen += 1
            pair = 2 * i["ir_per_op"]
            ok = ok and pair <= 300
            parts.append(f"{w} {size_label(n)}: {pair:,.0f}")
    add("W1: indexed <= 300 instructions per malloc+free pair at every size (callgrind)", parts, ok, seen, 6)

    goals.append(scan_goal(rows, "W1: indexed >= 50x faster than the scan, 90%, 100 MiB", 50))

    parts, ok, seen = [], True, 0
    for w, n in cells:
        i, m = find(rows, w, "indexed", n), find(rows, w, "mimalloc", n)
        if n != SIZE_1G or not (i and m):
            continue
        seen += 1
        ok = ok and i["median_ns"] <= m["median_ns"]
        parts.append(f"{w}: {i['median_ns']:,.0f} vs {m['median_ns']:,.0f} ns")
    add("W1: indexed no slower than mimalloc at 1 GiB", parts, ok, seen, 2)

    g = "W3 at 1 GiB < 100 ns, indexed (both requests)"
    f, nf = find(rows, "w3-fit", "indexed", SIZE_1G), find(rows, "w3-nofit", "indexed", SIZE_1G)
    if f and nf:
        worst = max(f["median_ns"], nf["median_ns"])
        add(g, [f"fits-at-end {f['median_ns']:,.0f} ns, cannot-fit {nf['median_ns']:,.0f} ns median"], worst < 100, 1, 1)
    else:
        add(g, [], False, 0, 1)
    return goals


def make_plots(rows, workloads, args):
    """One plot per workload: median cost against heap size, log-log, one line
    per allocator (and per sub-workload, e.g. w3-fit / w3-nofit)."""
    datadir = os.path.join(args.build, "plot")
    os.makedirs(datadir, exist_ok=True)
    made = []
    for w in sorted(workloads):
        series = {}
        for r in rows:
            if r["workload"] == w or r["workload"].startswith(w + "-") and r["workload"] not in workloads:
                series.setdefault((r["workload"], r["allocator"]), []).append(r)
        if not series:
            continue
        sub = sorted({k[0] for k in series})
        unit = "request" if all(r["unit"] == "request" for rs in series.values() for r in rs) else "pair"
        ylabel = "median ns per malloc+free pair" if unit == "pair" else "median ns per request"
        plots = []
        for idx, key in enumerate(sorted(series, key=lambda k: (alloc_key(k[1]), k[0]))):
            wl, al = key
            path = os.path.join(datadir, f"{w}--{wl}--{al}.dat")
            with open(path, "w") as f:
                for r in sorted(series[key], key=lambda r: r["blocks"]):
                    f.write(f"{r['heap_mib']} {max(r['median_ns'], 0.5)}\n")
            color = (f"rgb '{COLORS[ALLOC_ORDER.index(al)]}'" if al in ALLOC_ORDER
                     else str(len(ALLOC_ORDER) + idx))
            dash = sub.index(wl) + 1
            title = al if len(sub) == 1 else f"{al} ({wl[len(w) + 1:] if wl.startswith(w + '-') else wl})"
            plots.append(f"'{path}' using 1:2 with linespoints lc {color} dt {dash} pt {5 + dash} lw 2 "
                         f"title '{title}'")
        base = os.path.join(args.out, w)
        script = [
            "set logscale xy",
            "set xlabel 'heap size (MiB, log scale)'",
            f"set ylabel '{ylabel} (log scale)'",
            f"set title '{w}: cost against heap size'",
            "set key outside right top",
            "set grid",
            "set xtics ('16 MiB' 16, '100 MiB' 100, '1 GiB' 1024)",
            "set xrange [12:1400]",
            "set format y '10^{%L}'",
        ]
        for term, ext in (("pngcairo size 900,540 enhanced font 'sans,11'", "png"),
                          ("svg size 900,540 enhanced font 'sans,11'", "svg")):
            script += [f"set terminal {term}", f"set output '{base}.{ext}'", "plot " + ", \\\n  ".join(plots),
                       "unset output"]
        gp = os.path.join(datadir, f"{w}.gp")
        with open(gp, "w") as f:
            f.write("\n".join(script) + "\n")
        p = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            sys.exit(f"run.py: gnuplot failed on {gp}")
        made.append(w)
    return made


def write_markdown(path, rows, goals, plots, info, allocs, args, problems):
    L = []
    title = "Benchmark results" + (" (SMOKE RUN: tiny op counts, not figures)" if args.smoke else "")
    L += [f"# {title}", "",
          "Generated by `bench/run.py`: do not edit by hand, rerun the command below.", "",
          f"- Command: `{args.command}` (which runs `python3 bench/run.py --build {args.build} --out {args.out}"
          + (" --smoke" if args.smoke else "") + "`)",
          f"- Date: {info['date']}, {info['seconds']:.0f} s in all",
          f"- Machine: `nproc` = {info['nproc']}, CPU: {info['cpu']}, Linux {info['kernel']}",
          f"- Load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in info['load_start'])}, "
          f"at end {'/'.join(f'{x:.2f}' for x in info['load_end'])}: other work on the machine shows up in "
          "the wall-clock figures, not in the instruction counts",
          f"- Compiler: {info['cc']}, `-O2 -DNDEBUG`; {info['valgrind']}",
          "- Allocators:"]
    for a in sorted(allocs, key=alloc_key):
        L.append(f"  - **{a}**: {allocs[a]['describe']}")
    if problems:
        L += ["", "**PROBLEMS found by the cross-checks:**", ""] + [f"- {p}" for p in problems]
    L += ["", "## Goals, computed from this run", "",
          "| goal | measured | status |", "| --- | --- | --- |"]
    for g in goals:
        L.append(f"| {g['goal']} | {g['measured']} | **{g['status']}** |")

    nrounds = max((r["rounds"] for r in rows), default=1)
    L += ["", "## Median cost (ns)", "",
          f"W1: per malloc+free pair. W3: per request. Lower is better. Each figure is the median of "
          f"{nrounds} round(s) of the whole sweep (each round: the median over that process's batches).", ""]
    workloads = sorted({r["workload"] for r in rows})
    sizes = sorted({r["blocks"] for r in rows})
    L.append("| workload | allocator | " + " | ".join(size_label(n) for n in sizes) + " |")
    L.append("| --- | --- | " + " | ".join("---:" for _ in sizes) + " |")
    for w in workloads:
        for a in sorted({r["allocator"] for r in rows if r["workload"] == w}, key=alloc_key):
            cells = []
            for n in sizes:
                r = find(rows, w, a, n)
                cells.append(fnum(r["median_ns"], 1) if r else "-")
            L.append(f"| {w} | {a} | " + " | ".join(cells) + " |")

    if plots:
        L += ["", "## Plots", "", "Median cost against heap size, both axes log scale (PNG and SVG beside this file).", ""]
        for p in plots:
            L.append(f"![{p}]({p}.svg) ([PNG]({p}.png))")
            L.append("")

    L += ["## All figures", "",
          "median: per pair (W1) or request (W3), median of the rounds; rounds' medians: the lowest and "
          "highest round (a measure of the machine's noise); mean: total time / pairs; p99 and max: one operation "
          "(a malloc or a free; W3: one request) timed on its own, timer overhead subtracted; fail: "
          "allocations that returned NULL in the measured passes; Ir/op: callgrind instructions per "
          "operation (W1: per malloc or free, so a pair is twice that; W3: per request).", "",
          "| workload | heap | allocator | median ns | rounds' medians | mean ns | p99 ns | max ns | fail | "
          "Ir/op | timed ops |",
          "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        L.append(f"| {r['workload']} | {size_label(r['blocks'])} | {r['allocator']} | {fnum(r['median_ns'], 1)} | "
                 f"{fnum(r['median_min_ns'], 1)}..{fnum(r['median_max_ns'], 1)} | "
                 f"{fnum(r['mean_ns'], 1)} | {fnum(r['p99_ns'])} | {fnum(r['max_ns'])} | "
                 f"{100 * r['fail_rate']:.2f}% | {fnum(r['ir_per_op'])} | {r['ops_timed']:,} |")

    L += ["", "## Method", "",
          "- **Traces.** Each workload and heap size has one seeded trace (splitmix64, seed "
          f"{', '.join(str(x) for x in sorted(SEED))}, `bench/bench.c`), generated into an array and replayed unchanged on every allocator. Each "
          "(workload, heap size, allocator) runs in a fresh process, regenerating the trace from the seed; "
          "`run.py` checks that every allocator's trace hash is the same, and that the scan and the indexed "
          "heap end with byte-identical tables.",
          "- **W1** (`bench/w1.c`): requests of 1..16 blocks (n * 4096 - r bytes, r in 0..63), warm-up "
          "with allocations only up to the target occupancy (50% or 90% of the heap's blocks), then steady "
          "state: free a random live allocation while used >= target, else allocate. A settling phase of "
          "4 ops per live allocation is replayed unmeasured, then the throughput pass (100,000 ops; "
          "**20,000 at 1 GiB** for every allocator, because the scan is slowest there) and then the latency pass "
          "(as many ops, further on in the same trace). The throughput pass is timed in batches of 200 "
          "ops; the median is over batches, per malloc+free pair.",
          "- **W3** (`bench/w3.c`): fill all but the last 64 blocks with single blocks, free every other "
          "one, then 1000 times: a 64-block request (fits only at the end), a second one (cannot fit), "
          "both freed (not timed). Each request is timed on its own.",
          "- **malloc family** (glibc, jemalloc, mimalloc: Debian's packages, `bench/alloc_malloc.c` "
          "linked into one binary each): no fixed heap; they get the same trace, so the same live set "
          "in bytes. They never fail; in W3 the \"cannot fit\" request simply grows their heap.",
          "- **Scan set-up.** The scan heap's unmeasured set-up (W1 warm-up and settling, W3 fill) runs "
          "with a placement index attached, which is then detached before the first measured operation: "
          "with the O(n) scan, W3's fill at 1 GiB is 262,080 allocations each scanning the filled part of the table. Placement is exactly first "
          "fit either way (the differential test proves the tables identical); `run.py` reruns the scan at "
          "the smallest size with the scan doing its own set-up (`--scan-real-setup`) and checks the end "
          "state is the same.",
          "- **Pool.** The PeachOS heaps get a `PROT_NONE` pool: they never touch it (metadata is out of "
          "band), so the benchmark needs no memory for it and any access would fault.",
          "- **Rounds.** The whole native sweep (every cell, allocators interleaved, one process per cell) "
          "runs several times; a cell's median and p99 are the medians over the rounds, its max the "
          "maximum. Callgrind runs once: its counts do not depend on the machine's load.",
          "- **Timer.** `clock_gettime(CLOCK_MONOTONIC)` (vDSO); its median back-to-back cost is measured at "
          f"start-up ({min(TIMER, default=0)}..{max(TIMER, default=0)} ns in this run) and subtracted from "
          "single-op latencies. Medians are robust to a busy machine; p99 and "
          "max are not (preemption, page faults).",
          "- **Instructions.** `valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no`: "
          "collection is switched on (CALLGRIND_TOGGLE_COLLECT) only around the measured operations, "
          "2000 W1 ops (the first of the throughput pass) and 20 W3 requests of each kind; the figure "
          "includes the replay loop and call (~10 instructions).",
          "- **Build.** `-O2 -DNDEBUG` from `$(LIB_SRC)`; `mk/bench.mk`. `make test` only builds the bench "
          "binaries and runs them with tiny op counts (`test-bench-build`).", ""]
    with open(path, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""bench/tlsf.py - `make bench-tlsf TLSF=DIR` (mk/tlsf.mk): the indexed heap
against TLSF 3.1 on W1 (w1-50, w1-90) and W3, written to docs/bench/tlsf.md.

    python3 bench/tlsf.py --peach build/bench/bench-peach --tlsf build/tlsf/bench-tlsf \
        --rounds 7 --out docs/bench/tlsf.md --raw-dir build/tlsf --command "make bench-tlsf TLSF=DIR"

1. Runs each (workload, heap size, allocator) in its own process, as
   bench/run.py does: the two allocators interleaved cell by cell (which one
   goes first alternates between rounds), the whole sweep `--rounds` times;
   a cell's figure is the median of its round medians.
2. Runs each cell once under callgrind (only the measured operations are
   instrumented): instructions per W1 pair, per W3 request.
3. Checks both allocators replayed the same trace in every cell and that
   every round of a cell ended in the same heap state.
4. Writes the raw samples of this run to RAW_DIR/run-<time>.json; --include
   FILE (repeatable) pools the rounds of earlier runs into the medians.
5. Writes the markdown: per workload, a table by heap size of ns (indexed,
   TLSF, ratio), instructions, failure rates, and for W1 the goal "indexed
   time <= TLSF's at every size and occupancy", MET / NOT MET per cell.
Standard library only; the process, callgrind and aggregation helpers are
bench/run.py's.
"""
import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing run.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench_run  # noqa: E402  (bench/run.py: run_cell, read_callgrind, aggregate, ...)

ALLOCS = ["indexed", "tlsf"]
WORKLOADS = ["w1-50", "w1-90", "w3"]
SIZES = [bench_run.SIZE_16M, bench_run.SIZE_100M, bench_run.SIZE_1G]
SECTIONS = [
    ("w1-50", "W1 at 50% occupancy (`w1-50`)", "pair"),
    ("w1-90", "W1 at 90% occupancy (`w1-90`)", "pair"),
    ("w3-fit", "W3, the 64-block request that fits only at the end (`w3-fit`)", "request"),
    ("w3-nofit", "W3, the 64-block request that cannot fit (`w3-nofit`)", "request"),
]
GOAL = "W1, exact first fit: indexed time <= TLSF's at every size and occupancy"


def log(msg):
    print(msg, flush=True)


def key(workload, allocator, blocks):
    return f"{workload}|{allocator}|{blocks}"


def describe(binary, allocator):
    out = subprocess.run([binary, "--list"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if parts[0] == "alloc" and parts[1] == allocator:
            return parts[3] if len(parts) > 3 else ""
    sys.exit(f"tlsf.py: {binary} has no allocator {allocator}")


def thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def measure(args, binaries, info):
    """This run: the native rounds and the callgrind counts."""
    smoke = ["--smoke"] if args.smoke else []
    samples, ir = {}, {}
    for k in range(args.rounds):
        log(f"round {k + 1} of {args.rounds}")
        order = ALLOCS if k % 2 == 0 else ALLOCS[::-1]
        for w in WORKLOADS:
            for n in SIZES:
                for a in order:
                    cmd = [binaries[a], "--alloc", a, "--workload", w, "--blocks", str(n)] + smoke
                    got, secs = bench_run.run_cell(cmd)
                    for r in got:
                        samples.setdefault(key(r["workload"], a, n), []).append(r)
                    log(f"  {w:6} {bench_run.size_label(n):>8} {a:8} {secs:6.2f} s  "
                        + "  ".join(f"{r['workload']} {float(r['median_ns']):,.1f} ns" for r in got))
    if args.no_callgrind:
        return samples, ir
    if shutil.which("valgrind") is None:
        log("  valgrind not installed: no instruction counts (tools/need valgrind)")
        return samples, ir
    cgdir = os.path.join(args.raw_dir, "callgrind")
    os.makedirs(cgdir, exist_ok=True)
    for f in glob.glob(os.path.join(cgdir, "cg-*")):
        os.remove(f)
    for w in WORKLOADS:
        for n in SIZES:
            for a in ALLOCS:
                prefix = os.path.join(cgdir, f"cg-{w}-{n}-{a}")
                cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
                       f"--callgrind-out-file={prefix}", binaries[a], "--callgrind", "--alloc", a,
                       "--workload", w, "--blocks", str(n)] + smoke
                _, secs = bench_run.run_cell(cmd, native=False)
                found = bench_run.read_callgrind(prefix)
                for (wl, al, blocks), (total, ops) in found.items():
                    ir[key(wl, al, blocks)] = [total, ops]
                log(f"  callgrind {w:6} {bench_run.size_label(n):>8} {a:8} {secs:6.2f} s  "
                    + "  ".join(f"{k[0]} {v[0] / v[1]:,.1f} Ir/op" for k, v in sorted(found.items())))
    return samples, ir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peach", required=True, help="bench-peach (the indexed heap)")
    ap.add_argument("--tlsf", required=True, help="bench-tlsf (bench/alloc_tlsf.c + TLSF's tlsf.c)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default="docs/bench/tlsf.md")
    ap.add_argument("--raw-dir", default="build/tlsf")
    ap.add_argument("--include", action="append", default=[], help="raw samples of an earlier run (json)")
    ap.add_argument("--command", default="python3 bench/tlsf.py")
    ap.add_argument("--smoke", action="store_true", help="tiny op counts: checks the plumbing, no figures")
    ap.add_argument("--no-callgrind", action="store_true")
    args = ap.parse_args()

    started = time.time()
    binaries = {"indexed": args.peach, "tlsf": args.tlsf}
    descr = {a: describe(binaries[a], a) for a in ALLOCS}
    info = bench_run.machine_info()
    info.update(date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                load_start=os.getloadavg(), thp=thp_mode(), rounds=args.rounds, describe=descr)
    os.makedirs(args.raw_dir, exist_ok=True)

    samples, ir = measure(args, binaries, info)
    info["load_end"] = os.getloadavg()
    info["seconds"] = time.time() - started
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    raw = os.path.join(args.raw_dir, f"run-{stamp}{'-smoke' if args.smoke else ''}.json")
    with open(raw, "w") as f:
        json.dump({"info": info, "samples": samples, "ir": ir, "smoke": args.smoke}, f)
    log(f"raw samples of this run: {raw}")

    runs = [info]
    for path in args.include:
        with open(path) as f:
            old = json.load(f)
        if old.get("smoke") != args.smoke:
            sys.exit(f"tlsf.py: {path} is {'' if old.get('smoke') else 'not '}a smoke run")
        if old["info"]["describe"] != descr:
            sys.exit(f"tlsf.py: {path} measured other allocators:\n  {old['info']['describe']}\n  {descr}")
        for k, rs in old["samples"].items():
            samples.setdefault(k, []).extend(rs)
        for k, v in old["ir"].items():
            ir.setdefault(k, v)
        runs.insert(len(runs) - 1, old["info"])  # earlier runs first, in the order given; this one last

    rows, problems = {}, []
    for k, rs in samples.items():
        r = bench_run.aggregate(rs)
        for f in ("allocs", "failures", "rounds"):
            r[f] = int(r[f])
        got = ir.get(k)
        r["ir_per_op"] = got[0] / got[1] if got else None
        r["setup_failures"] = setup_failures(rs[0])
        rows[k] = r
        for f in ("trace_hash", "end_state"):
            if r[f] == "differs-between-rounds":
                problems.append(f"{k}: {f} differs between rounds")
    for wl, _, _ in SECTIONS:
        for n in SIZES:
            hashes = {rows[key(wl, a, n)]["trace_hash"] for a in ALLOCS if key(wl, a, n) in rows}
            if len(hashes) > 1:
                problems.append(f"{wl} {n} blocks: the allocators replayed different traces")

    cells, verdict = goal_cells(rows)
    write_markdown(args, rows, runs, cells, verdict, problems)
    log("")
    for wl, n, i, t, ok in cells:
        log(f"  {wl} {bench_run.size_label(n):>8}: indexed {i:,.1f} ns, TLSF {t:,.1f} ns  {'MET' if ok else 'NOT MET'}")
    log(f"{verdict}: {GOAL}" + (" (SMOKE RUN: not figures)" if args.smoke else ""))
    log(f"wrote {args.out} in {time.time() - started:.0f} s")
    if problems:
        for p in problems:
            log(f"PROBLEM: {p}")
        sys.exit(1)


def setup_failures(row):
    for part in row.get("note", "").split():
        if part.startswith("setup_failures="):
            return int(part.split("=", 1)[1])
    return None


def goal_cells(rows):
    cells, ok_all, seen = [], True, 0
    for wl in ("w1-50", "w1-90"):
        for n in SIZES:
            i, t = rows.get(key(wl, "indexed", n)), rows.get(key(wl, "tlsf", n))
            if not (i and t):
                continue
            seen += 1
            ok = i["median_ns"] <= t["median_ns"]
            ok_all = ok_all and ok
            cells.append((wl, n, i["median_ns"], t["median_ns"], ok))
    if seen < 6:
        return cells, f"NOT MEASURED ({seen} of 6 cells)"
    return cells, "MET" if ok_all else "NOT MET"


def ns(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def spread(r):
    if r["rounds"] == 1:
        return ns(r["median_ns"])
    return f"{ns(r['median_ns'])} ({ns(r['median_min_ns'])}-{ns(r['median_max_ns'])})"


def fail(r):
    s = f"{100.0 * r['failures'] / r['allocs']:.2f}%" if r["allocs"] else "-"
    if r["setup_failures"]:
        s += f" (+{r['setup_failures']:,} in set-up)"
    return s


def write_markdown(args, rows, runs, cells, verdict, problems):
    cur = runs[-1]
    L = [f"# TLSF against the indexed heap{' (SMOKE RUN: tiny op counts, not figures)' if args.smoke else ''}", "",
         "Generated by `bench/tlsf.py`: do not edit by hand, rerun the command below (it needs a TLSF "
         "source tree, see [Reproducing](#reproducing)).", "",
         f"- Command: `{args.command}`",
         f"- Date: {', '.join(r['date'] for r in runs)}"
         + (f" ({len(runs)} runs, their rounds pooled)" if len(runs) > 1 else "")
         + f"; {sum(r['rounds'] for r in runs)} round(s) of every cell in all",
         f"- Machine: `nproc` = {cur['nproc']}, CPU: {cur['cpu']}, Linux {cur['kernel']}; transparent huge "
         f"pages: `{cur['thp']}`",
         "- Load average (1/5/15 min): " + "; ".join(
             f"{'/'.join(f'{x:.2f}' for x in r['load_start'])} at start, "
             f"{'/'.join(f'{x:.2f}' for x in r['load_end'])} at end (run of {r['date']})" for r in runs)
         + ": other work on the machine shows up in the times, not in the instruction counts",
         f"- Compiler: {cur['cc']}, `-O2 -DNDEBUG` (BENCH_CFLAGS) for the harness, both heaps and tlsf.c; "
         f"{cur['valgrind']}",
         f"- **indexed**: {cur['describe']['indexed']}",
         f"- **tlsf**: {cur['describe']['tlsf']}",
         ""]
    if problems:
        L += ["**PROBLEMS found by the cross-checks:**", ""] + [f"- {p}" for p in problems] + [""]
    met = sum(1 for c in cells if c[4])
    L += ["## The goal", "",
          f"**{GOAL}: {verdict}** ({met} of {len(cells)} cells), by the median ns per malloc+free pair:", "",
          "| cell | indexed ns | TLSF ns | TLSF / indexed | status |", "| --- | ---: | ---: | ---: | --- |"]
    for wl, n, i, t, ok in cells:
        L.append(f"| {wl} {bench_run.size_label(n)} | {ns(i)} | {ns(t)} | {t / i:.2f}x | "
                 f"**{'MET' if ok else 'NOT MET'}** |")
    irs = {a: [2 * rows[key(wl, a, n)]["ir_per_op"] for wl, n, _, _, _ in cells
               if rows[key(wl, a, n)]["ir_per_op"]] for a in ALLOCS}
    if all(len(v) == len(cells) and v for v in irs.values()):
        fewer = all(t < i for i, t in zip(irs["indexed"], irs["tlsf"]))
        text = (f"By instructions (callgrind){' TLSF does less work in every W1 cell' if fewer else ''}: a W1 "
                f"pair is {min(irs['tlsf']):,.0f}-{max(irs['tlsf']):,.0f} instructions in TLSF against "
                f"{min(irs['indexed']):,.0f}-{max(irs['indexed']):,.0f} in the indexed heap.")
        if fewer and verdict == "MET":
            text += (" The time goal is met on memory, not on work: TLSF reads and writes 8-byte headers and "
                     "free-list links inside the pool, next to the blocks it splits and merges, so its cache and "
                     "TLB misses grow with the heap, while the block heap's "
                     "metadata is out of band and compact (a byte per 4 KiB block and the index) and it never "
                     "touches the pool.")
        L += ["", text]
    L += ["", "Per workload below: the median of the round medians, with the lowest and highest round "
          "median in brackets; instructions from callgrind (W1: per pair, twice the per-operation count "
          "over 2,000 steady-state operations; W3: per request, over 1,000 requests); failures: measured "
          "allocations that returned NULL, and those of the unmeasured set-up (W1's warm-up and settle) "
          "in brackets. TLSF / indexed above 1 means the indexed heap is faster. W3's requests are timed one "
          "at a time with the timer's own cost subtracted, so its figures are at the clock's resolution "
          "(CLOCK_MONOTONIC often moves in 10 ns steps: then 10 means \"at most about 10\"); the instruction "
          "counts separate them. W3 is not part of this goal (`make bench` checks \"W3 at 1 GiB < 100 ns\").", ""]
    for wl, title, unit in SECTIONS:
        w1 = unit == "pair"
        L += [f"## {title}: ns per {'malloc+free pair' if w1 else 'request'}", "",
              "| heap | indexed ns | TLSF ns | TLSF / indexed | indexed Ir | TLSF Ir | indexed failures "
              f"| TLSF failures | {'goal' if w1 else 'indexed <= TLSF'} |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for n in SIZES:
            i, t = rows.get(key(wl, "indexed", n)), rows.get(key(wl, "tlsf", n))
            if not (i and t):
                L.append(f"| {bench_run.size_label(n)} | not measured |||||||| |")
                continue
            mult = 2 if w1 else 1
            ir_i = f"{mult * i['ir_per_op']:,.0f}" if i["ir_per_op"] else "-"
            ir_t = f"{mult * t['ir_per_op']:,.0f}" if t["ir_per_op"] else "-"
            ok = i["median_ns"] <= t["median_ns"]
            status = f"**{'MET' if ok else 'NOT MET'}**" if w1 else ("yes" if ok else "no")
            ratio = f"{t['median_ns'] / i['median_ns']:.2f}x" if i["median_ns"] > 0 else "-"
            L.append(f"| {bench_run.size_label(n)} | {spread(i)} | {spread(t)} | {ratio} | {ir_i} | {ir_t} | "
                     f"{fail(i)} | {fail(t)} | {status} |")
        L.append("")
    L += ["## How TLSF is set up", "",
          "`bench/alloc_tlsf.c`: one pool per heap, created with `tlsf_create_with_pool`, requests through "
          "`tlsf_malloc` / `tlsf_free`. The block heap keeps its metadata out of band (a byte per 4 KiB "
          "block and the placement index, both malloc'd beside a `PROT_NONE` pool it never touches); TLSF "
          "keeps it in band (an 8-byte header per allocation, and its control structure). So TLSF gets the "
          "same data capacity plus what it needs to hold it: `tlsf_size()` + blocks x (4096 + "
          "`tlsf_alloc_overhead()`) + `tlsf_pool_overhead()` bytes, a header for every block, enough for "
          "W3's fill (blocks - 64 single blocks and the 64-block tail). It has no block rounding (a request "
          "of n x 4096 - r bytes takes that, rounded up to 8, plus 8), but its good-fit search rounds a "
          "request up to the next of 32 size classes per power of two, so it can refuse a request that "
          "exact first fit places: those are the TLSF failures above.", "",
          "The pool is TLSF's best case, as a kernel's heap mapping would be: `madvise(MADV_HUGEPAGE)` and "
          "every byte written before the heap is created, so no page fault lands in a timed operation. TLSF "
          "reads and writes headers across the whole pool, so it pays for cache and TLB misses that grow "
          "with the heap; on this machine a pool prefaulted with `MAP_POPULATE` on 4 KiB pages instead made "
          "a W1 pair at 1 GiB about 8x slower. Each cell is a fresh process that replays the same seeded "
          "trace as `make bench` (the trace hashes are checked equal); TLSF's end state (a hash of its pool "
          "walk) and `tlsf_check` are checked after every run.", "",
          "## Reproducing", "",
          "TLSF is not a Debian package and is not in this repository; fetch it, then run the target:", "",
          "```sh",
          "git clone https://github.com/mattconte/tlsf /tmp/tlsf     # or any directory with tlsf.c and tlsf.h",
          "make bench-tlsf TLSF=/tmp/tlsf                           # writes docs/bench/tlsf.md",
          "make bench-tlsf TLSF=/tmp/tlsf TLSF_INCLUDE=build/tlsf/run-<time>.json   # pool an earlier run's rounds",
          "```", "",
          "`TLSF_ROUNDS` (default 7) sets the rounds; each run keeps its raw samples in "
          "`build/tlsf/run-<time>.json`. Without `TLSF=` the target prints where to get TLSF and exits 2. "
          "Run it on a quiet machine: the times move with the load, the instruction counts do not.", ""]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()

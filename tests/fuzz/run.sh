#!/usr/bin/env bash
# tests/fuzz/run.sh MODE TARGET [SECONDS] - drive one libFuzzer target.
#   replay  run every input of tests/fuzz/corpus/TARGET once; any failed check fails
#   fuzz    fuzz for SECONDS on top of the corpus; new inputs go to
#           build/fuzz/work/TARGET, a crashing input to build/fuzz/artifacts/
# Prints one line of figures (executions, time, speed, coverage) on success,
# the tail of the log on failure. Used by mk/fuzz.mk.
set -u
mode=$1 target=$2 seconds=${3:-600}
build=${BUILD:-build}
bin=$build/fuzz/$target corpus=tests/fuzz/corpus/$target
case $target in
    fuzz_heap_ops) max_len=4096 ;;      # about 4 KiB of operations
    fuzz_heap_ops_small) max_len=4096; corpus=tests/fuzz/corpus/fuzz_heap_ops ;;
    fuzz_table_check) max_len=16384 ;;  # tables of up to 16 Ki blocks
    *) echo "run.sh: unknown target $target" >&2; exit 2 ;;
esac
mkdir -p "$build/fuzz/work/$target" "$build/fuzz/artifacts"
n=$(ls "$corpus" | wc -l)
case $mode in
replay)
    log=$build/fuzz/$target.replay.log
    if ! "$bin" -max_len=$max_len "$corpus"/* >"$log" 2>&1; then
        tail -n 40 "$log"; echo "$target: corpus replay FAILED (log: $log)"; exit 1
    fi
    echo "$target: replayed $n corpus inputs, all checks passed" ;;
fuzz)
    log=$build/fuzz/$target.log
    if ! "$bin" -max_len=$max_len -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
         -artifact_prefix="$build/fuzz/artifacts/$target-" -max_total_time="$seconds" \
         "$build/fuzz/work/$target" "$corpus" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "$target: FAILED (log: $log; the input is in $build/fuzz/artifacts/)"; exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    new=$(ls "$build/fuzz/work/$target" | wc -l)
    echo "$target: $execs executions in ${secs:-?} s ($speed exec/s), $cov," \
         "corpus $n + $new new inputs, no failure" ;;
*) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
esac

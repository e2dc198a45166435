# mk/bench.mk - `make bench`: the seed's scan, the indexed heap,
# glibc, jemalloc and mimalloc on the same seeded traces; writes
# docs/bench/results.{md,csv} and the plots. Timings are not tests: `make
# test` only runs test-bench-build, which compiles every bench binary and
# runs each with tiny op counts (no timing assertions).
#
# Binaries (build/bench/):
#   bench-peach     bench/*.c + bench/alloc_peach*.c + $(LIB_SRC): "scan", "indexed"
#   bench-glibc     bench/*.c + bench/alloc_malloc.c
#   bench-jemalloc  the same, -ljemalloc (replaces malloc)
#   bench-mimalloc  the same, -lmimalloc (replaces malloc)
# A workload is one file bench/w*.c using BENCH_WORKLOAD (see bench/bench.h); bench/run.py runs
# every (workload, heap size, allocator) in its own process, then callgrind.
# `bench-X --workload W --blocks N --trace-out FILE` writes the exact trace W
# replays, in heapmap's trace format, and exits: `make pictures` and
# test-heapmap (mk/pictures.mk) replay it in tools/heapmap.
#
# `make bench` also runs bench-w2 (docs/bench/w2.md) and bench-w2-threads
# (docs/bench/w2-threads.{md,png}), below.

BENCH_DIR := $(BUILD)/bench
BENCH_CFLAGS := -std=c11 -O2 -DNDEBUG -g $(WARN) -Isrc
# Workloads: the bench/w*.c files that register with BENCH_WORKLOAD (a
# bench/w*.c with its own main() is a separate program, not linked in here).
BENCH_WORKLOADS := $(sort $(shell grep -l '^BENCH_WORKLOAD' $(wildcard bench/w*.c) /dev/null 2>/dev/null))
BENCH_COMMON := bench/bench.c $(BENCH_WORKLOADS)
BENCH_HDR := $(wildcard bench/*.h)
BENCH_PEACH_ALLOC := $(sort $(wildcard bench/alloc_peach*.c))
BENCH_MALLOCS := glibc jemalloc mimalloc
BENCH_LIB_glibc := libc.so
BENCH_LIB_jemalloc := libjemalloc
BENCH_LIB_mimalloc := libmimalloc
BENCH_LDLIBS_jemalloc := -ljemalloc
BENCH_LDLIBS_mimalloc := -lmimalloc
BENCH_BINS := $(BENCH_DIR)/bench-peach $(BENCH_MALLOCS:%=$(BENCH_DIR)/bench-%)
BENCH_PACKAGES := libjemalloc-dev libmimalloc-dev valgrind gnuplot-nox $(PYTHON_PACKAGES)

TEST_STEPS += test-bench-build

.PHONY: bench bench-build test-bench-build

$(BENCH_DIR)/bench-peach: $(BENCH_COMMON) $(BENCH_PEACH_ALLOC) $(BENCH_HDR) $(LIB_SRC) $(LIB_HDR) $(HOSTED_SRC) \
                          $(HOSTED_HDR) mk/bench.mk | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(BENCH_CFLAGS) -o $@ $(BENCH_COMMON) $(BENCH_PEACH_ALLOC) $(LIB_SRC) $(HOSTED_SRC) -lpthread

$(BENCH_DIR)/bench-%: $(BENCH_COMMON) bench/alloc_malloc.c $(BENCH_HDR) mk/bench.mk | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(BENCH_CFLAGS) -DBENCH_MALLOC_NAME='"$*"' -DBENCH_MALLOC_LIB='"$(BENCH_LIB_$*)"' \
	  -o $@ $(BENCH_COMMON) bench/alloc_malloc.c $(BENCH_LDLIBS_$*)

bench-build: $(BENCH_BINS)

# The full run: about 2 minutes on 2 cores (90 s in the last run). Run nothing else meanwhile if
# the figures matter.
bench: | host-deps
	@tools/need $(BENCH_PACKAGES)
	@$(MAKE) --no-print-directory bench-build
	python3 bench/run.py --build $(BENCH_DIR) --out docs/bench --command "make bench"

# Smoke check for `make test`: every binary builds and runs each workload
# with tiny op counts; the report is generated into build/bench/smoke.
# Installs gcc's packages and python3 (bench/run.py) first; jemalloc,
# mimalloc, valgrind and gnuplot are optional here: used when installed,
# skipped if not (`make bench` installs them).
test-bench-build: | host-deps python-deps
	@set -e; bins="$(BENCH_DIR)/bench-peach $(BENCH_DIR)/bench-glibc"; \
	for m in jemalloc mimalloc; do \
	  if dpkg-query -W -f='$${Status}' lib$$m-dev 2>/dev/null | grep -q "install ok installed"; then \
	    bins="$$bins $(BENCH_DIR)/bench-$$m"; else echo "test-bench-build: lib$$m-dev not installed, bench-$$m skipped"; fi; \
	done; \
	$(MAKE) --no-print-directory $$bins; \
	python3 bench/run.py --smoke --build $(BENCH_DIR) --out $(BENCH_DIR)/smoke --command "make test-bench-build"
	@$(MAKE) --no-print-directory test-w2-threads-smoke

# W2 (small objects, bench/w2.c): `make bench-w2` writes docs/bench/w2.md.
# w2 is the magazine build (PEACHOS_KCACHE_MAGAZINES=1) with glibc's malloc
# beside it; the others run as its peers, a round at a time, interleaved
# with its own: the same code with the port's lock on every call
# (w2-locked), and w2 linked with jemalloc and with mimalloc (their
# malloc/free). Instruction counts come from callgrind (valgrind) over the
# measured loop of each.
W2_SRC := bench/w2.c $(LIB_SRC) $(HOSTED_SRC)
W2_DEPS := $(W2_SRC) bench/median.h $(LIB_HDR) $(HOSTED_HDR) mk/bench.mk
W2_BINS := $(BENCH_DIR)/w2 $(BENCH_DIR)/w2-locked $(BENCH_DIR)/w2-jemalloc $(BENCH_DIR)/w2-mimalloc
W2_PEERS := --peer "kmalloc_small/kfree (the port's lock)=$(BENCH_DIR)/w2-locked:small" \
            --peer "jemalloc malloc/free=$(BENCH_DIR)/w2-jemalloc:malloc" \
            --peer "mimalloc malloc/free=$(BENCH_DIR)/w2-mimalloc:malloc"
.PHONY: bench-w2 bench-w2-deps
bench-w2-deps: | host-deps
	@tools/need libjemalloc-dev libmimalloc-dev valgrind

$(BENCH_DIR)/w2: $(W2_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(MAG_FLAGS) -o $@ $(W2_SRC) -lpthread

$(BENCH_DIR)/w2-locked: $(W2_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $(W2_SRC) -lpthread

$(BENCH_DIR)/w2-%: $(W2_DEPS) | bench-w2-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(MAG_FLAGS) -DW2_MALLOC_NAME='"$*"' -o $@ $(W2_SRC) -lpthread \
	  $(BENCH_LDLIBS_$*)

bench-w2: $(W2_BINS) | bench-w2-deps
	@mkdir -p docs/bench
	$(BENCH_DIR)/w2 $(W2_PEERS) > $(BENCH_DIR)/w2.md
	cp $(BENCH_DIR)/w2.md docs/bench/w2.md
	@cat docs/bench/w2.md

bench: bench-w2

# W2 with threads (bench/w2_threads.c): `make bench-w2-threads` writes
# docs/bench/w2-threads.md and docs/bench/w2-threads.png. Each of 1, 2 and
# 4 threads runs W2's loop (2,000 live 8..512-byte objects a thread, a byte
# written to each) on the one shared heap for W2_THREADS_SECONDS a round;
# total pairs per second, the median of W2_THREADS_ROUNDS rounds, each
# (threads, allocator) its own process, interleaved. Allocators: the
# magazine build (w2-threads: kmalloc_small/kfree, and glibc's malloc/free),
# the same code with the port's lock on every call (w2-threads-locked), and
# w2-threads linked with jemalloc and mimalloc. The kheap rows also give
# the port's lock acquisitions per pair (kheap_hosted_lock_count over the
# timed part). Every kheap round exits 1 unless each object's byte is still
# its thread's when freed, and after the threads exit (giving back their
# magazines) kheap_check is clean and the heap empty. About 80 s.
# `make w2-threads-plot` redraws the PNG from the last run's data.
# test-w2-threads-smoke (in test-bench-build, so in `make test`) runs the
# same binaries with 1, 2 and 4 threads for 20 ms, one round: those checks,
# no timing assertion; jemalloc/mimalloc only when installed.
W2T_SRC := bench/w2_threads.c $(LIB_SRC) $(HOSTED_SRC)
W2T_DEPS := $(W2T_SRC) bench/median.h $(LIB_HDR) $(HOSTED_HDR) mk/bench.mk
W2_THREADS_SECONDS ?= 0.3
W2_THREADS_ROUNDS ?= 11
W2T_RUNS = --run "kmalloc_small/kfree, per-CPU magazines=$(BENCH_DIR)/w2-threads:small" \
           --run "kmalloc_small/kfree, the port's lock=$(BENCH_DIR)/w2-threads-locked:small" \
           --run "glibc malloc/free=$(BENCH_DIR)/w2-threads:malloc"
W2T_RUNS_MALLOCS = --run "jemalloc malloc/free=$(BENCH_DIR)/w2-threads-jemalloc:malloc" \
                   --run "mimalloc malloc/free=$(BENCH_DIR)/w2-threads-mimalloc:malloc"
.PHONY: bench-w2-threads w2-threads-plot test-w2-threads-smoke

$(BENCH_DIR)/w2-threads: $(W2T_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(MAG_FLAGS) -o $@ $(W2T_SRC) -lpthread

$(BENCH_DIR)/w2-threads-locked: $(W2T_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $(W2T_SRC) -lpthread

$(BENCH_DIR)/w2-threads-%: $(W2T_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(MAG_FLAGS) -o $@ $(W2T_SRC) -lpthread $(BENCH_LDLIBS_$*)

bench-w2-threads: | host-deps
	@tools/need libjemalloc-dev libmimalloc-dev gnuplot-nox
	@$(MAKE) --no-print-directory $(BENCH_DIR)/w2-threads $(BENCH_DIR)/w2-threads-locked \
	  $(BENCH_DIR)/w2-threads-jemalloc $(BENCH_DIR)/w2-threads-mimalloc
	@mkdir -p docs/bench
	$(BENCH_DIR)/w2-threads --rounds $(W2_THREADS_ROUNDS) --seconds $(W2_THREADS_SECONDS) \
	  --dat $(BENCH_DIR)/w2-threads.dat $(W2T_RUNS) $(W2T_RUNS_MALLOCS) > $(BENCH_DIR)/w2-threads.md
	@$(MAKE) --no-print-directory w2-threads-plot
	cp $(BENCH_DIR)/w2-threads.md docs/bench/w2-threads.md
	@cat docs/bench/w2-threads.md

# The plot alone, from the last run's $(BENCH_DIR)/w2-threads.dat.
w2-threads-plot:
	@tools/need gnuplot-nox
	gnuplot -e "set terminal pngcairo size 760,500; set output 'docs/bench/w2-threads.png'; \
	  set title 'W2 with threads: 8..512-byte pairs per second ($$(nproc) cores, median round)'; \
	  set xlabel 'threads'; set ylabel 'million pairs/s'; set xtics (1,2,4); set key below maxrows 2; \
	  set yrange [0:*]; \
	  plot '$(BENCH_DIR)/w2-threads.dat' using 1:(\$$2/1e6) with linespoints title 'kmalloc\_small, per-CPU magazines', \
	       '' using 1:(\$$3/1e6) with linespoints title 'kmalloc\_small, the port lock', \
	       '' using 1:(\$$4/1e6) with linespoints title 'glibc', \
	       '' using 1:(\$$5/1e6) with linespoints title 'jemalloc', \
	       '' using 1:(\$$6/1e6) with linespoints title 'mimalloc'"

bench: bench-w2-threads

test-w2-threads-smoke: | host-deps
	@set -e; bins="$(BENCH_DIR)/w2-threads $(BENCH_DIR)/w2-threads-locked"; runs=""; \
	for m in jemalloc mimalloc; do \
	  if dpkg-query -W -f='$${Status}' lib$$m-dev 2>/dev/null | grep -q "install ok installed"; then \
	    bins="$$bins $(BENCH_DIR)/w2-threads-$$m"; runs="$$runs --run $$m=$(BENCH_DIR)/w2-threads-$$m:malloc"; \
	  else echo "test-w2-threads-smoke: lib$$m-dev not installed, w2-threads-$$m skipped"; fi; \
	done; \
	$(MAKE) --no-print-directory $$bins; mkdir -p $(BENCH_DIR)/smoke; \
	$(BENCH_DIR)/w2-threads --rounds 1 --seconds 0.02 --command "make test-bench-build" $(W2T_RUNS) $$runs \
	  > $(BENCH_DIR)/smoke/w2-threads.md; \
	echo "test-w2-threads-smoke: 1, 2 and 4 threads on each allocator, heap sound and empty after each kheap round"

# mk/tlsf.mk - `make bench-tlsf TLSF=DIR`: the indexed heap against TLSF
# 3.1 on W1 (w1-50, w1-90) and W3 at 16 MiB, 100 MiB and 1 GiB; writes
# docs/bench/tlsf.md. The goal it checks: W1, exact first fit, "indexed
# time <= TLSF's at every size and occupancy".
#
# TLSF is not a Debian package and its code is not in this repository: DIR
# is a directory holding tlsf.c and tlsf.h (Matthew Conte's TLSF 3.1, BSD),
# e.g. a clone or `git archive` of https://github.com/mattconte/tlsf.
# Without TLSF= the target says so and fails (exit 2). Not part of `make
# test`: CI has no TLSF tree.
#
#   build/tlsf/bench-tlsf   bench/bench.c + the workloads + bench/alloc_tlsf.c
#                           + DIR/tlsf.c, with BENCH_CFLAGS (mk/bench.mk)
#   build/bench/bench-peach the indexed heap, as `make bench` builds it
#
# bench-tlsf lives in build/tlsf, not build/bench: bench/run.py (`make
# bench`, test-bench-build) runs every build/bench/bench-* it finds.
# bench/tlsf.py runs each (workload, size, allocator) in its own process,
# the two allocators interleaved cell by cell, TLSF_ROUNDS sweeps (medians
# kept), then each cell under callgrind for instructions per operation.
# Every run also leaves its raw samples in build/tlsf/run-*.json;
# TLSF_INCLUDE="FILE..." pools the rounds of earlier runs into the medians.
# The binary is rebuilt on every run (a second or two), so that TLSF= can
# point at another tree.

TLSF ?=
TLSF_ROUNDS ?= 7
TLSF_INCLUDE ?=
TLSF_COMMIT ?=
TLSF_BENCH_DIR := $(BUILD)/tlsf

.PHONY: bench-tlsf bench-tlsf-build bench-tlsf-need-dir

bench-tlsf-need-dir:
	@if [ -z "$(TLSF)" ]; then \
	  echo "bench-tlsf: TLSF is not set. TLSF 3.1 is not a Debian package and not in this repository:"; \
	  echo "  git clone https://github.com/mattconte/tlsf /path/to/tlsf"; \
	  echo "  make bench-tlsf TLSF=/path/to/tlsf      (a directory holding tlsf.c and tlsf.h)"; \
	  exit 2; \
	fi; \
	if [ ! -f "$(TLSF)/tlsf.c" ] || [ ! -f "$(TLSF)/tlsf.h" ]; then \
	  echo "bench-tlsf: $(TLSF) has no tlsf.c and tlsf.h (get TLSF 3.1 from https://github.com/mattconte/tlsf)"; \
	  exit 2; \
	fi

# Which TLSF: the directory, the sha256 of its tlsf.c, and its git commit
# when DIR is the top of a git work tree (else TLSF_COMMIT if given).
bench-tlsf-build: bench-tlsf-need-dir | host-deps
	@mkdir -p $(TLSF_BENCH_DIR)
	@set -e; dir=$$(cd "$(TLSF)" && pwd); \
	sum=$$(sha256sum "$$dir/tlsf.c" | cut -c1-16); \
	top=$$(git -C "$$dir" rev-parse --show-toplevel 2>/dev/null || true); \
	if [ "$$top" = "$$dir" ]; then \
	  commit="git commit $$(git -C "$$dir" rev-parse HEAD)$$(git -C "$$dir" diff --quiet HEAD -- tlsf.c tlsf.h || echo ' (modified)')"; \
	elif [ -n "$(TLSF_COMMIT)" ]; then commit="git commit $(TLSF_COMMIT) (TLSF_COMMIT, not checked)"; \
	else commit="not a git work tree"; fi; \
	src="$$dir, tlsf.c sha256 $$sum..., $$commit"; \
	echo "bench-tlsf: TLSF from $$src"; \
	echo "$(HOST_CC) $(BENCH_CFLAGS) -I$$dir -o $(TLSF_BENCH_DIR)/bench-tlsf $(BENCH_COMMON) bench/alloc_tlsf.c $$dir/tlsf.c"; \
	$(HOST_CC) $(BENCH_CFLAGS) -I"$$dir" -DBENCH_TLSF_SOURCE="\"$$src\"" -o $(TLSF_BENCH_DIR)/bench-tlsf \
	  $(BENCH_COMMON) bench/alloc_tlsf.c "$$dir/tlsf.c"
	@$(MAKE) --no-print-directory $(BENCH_DIR)/bench-peach

bench-tlsf: bench-tlsf-need-dir | host-deps python-deps
	@tools/need valgrind
	@$(MAKE) --no-print-directory bench-tlsf-build TLSF="$(TLSF)" TLSF_COMMIT="$(TLSF_COMMIT)"
	python3 bench/tlsf.py --peach $(BENCH_DIR)/bench-peach --tlsf $(TLSF_BENCH_DIR)/bench-tlsf \
	  --rounds $(TLSF_ROUNDS) --out docs/bench/tlsf.md --raw-dir $(TLSF_BENCH_DIR) \
	  $(foreach f,$(TLSF_INCLUDE),--include $(f)) \
	  --command "make bench-tlsf TLSF=$(TLSF)$(if $(TLSF_COMMIT), TLSF_COMMIT=$(TLSF_COMMIT))$(if $(TLSF_INCLUDE), TLSF_INCLUDE=\"$(TLSF_INCLUDE)\")"

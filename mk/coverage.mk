# mk/coverage.mk - line and branch coverage of src/memory/.
#
#   make coverage       build the host unit tests and short model runs with
#                       gcc --coverage into build/coverage/, run them, write
#                       the HTML report build/coverage/index.html (one page
#                       per file) and print the summary
#   make test-coverage  the same (part of make test), and fail if line
#                       coverage of src/memory/ is under COVERAGE_MIN_LINES
#                       (100) or branch coverage under COVERAGE_MIN_BRANCHES (95)
#
# The library and the hosted port are compiled once into objects whose .gcda
# counters every test binary adds to (-fprofile-update=atomic: some tests
# run threads). Old counters are removed before each run, so the report is
# always that of one complete run. No line is excluded (no GCOVR_EXCL
# markers): every line runs on the host. The few branches that cannot be
# taken are listed, with the reason, in docs/testing.md.
#
# The kernel heap's window (PEACHOS_KHEAP_VMALLOC=1: kheap_vmalloc.c and
# kheap.c's window lines, empty or left out in the default build) is
# measured in a second set of objects (obj-vmalloc/), with the unit tests
# test-unit-configs runs in that build; gcovr adds both sets' counters per
# source line. The kvmalloc model runs on the default objects. The per-CPU
# magazines (PEACHOS_KCACHE_MAGAZINES=1: kcache_cpu.c and the caches' live
# bitmap) are measured the same way in a third set (obj-mag/), with the
# unit tests and the kmalloc model that test-unit-configs and
# test-kmalloc-model run in that build. kheap.c's weak default CPU hooks
# (a port without CPUs) are measured in a fourth set (obj-nocpu/: the
# hosted port built with PEACHOS_HOSTED_NO_CPUS=1 defines no hooks), with
# the unit tests test-unit-configs runs there (UNIT_NOCPU_NAMES).

COV_DIR := $(BUILD)/coverage
COV_CFLAGS := -std=c11 -O0 -g $(WARN) -Isrc --coverage -fprofile-update=atomic
COV_LIB_OBJ := $(patsubst src/%.c,$(COV_DIR)/obj/%.o,$(LIB_SRC) $(HOSTED_SRC))
COV_MODEL_OBJ := $(patsubst src/%.c,$(COV_DIR)/obj/%.o,\
                 $(LIB_BLOCK_SRC))
# (mk/unit.mk is included after this file: its variables are not set yet.)
# (tests/unit/test_kcache_mag.c: in the magazine sets only, as in mk/unit.mk.)
COV_UNIT_BIN := $(patsubst tests/unit/%.c,$(COV_DIR)/unit/%,\
                $(filter-out tests/unit/test_kcache_mag.c,$(sort $(wildcard tests/unit/test_*.c))))
COV_VM_FLAGS := -DPEACHOS_KHEAP_VMALLOC=1
COV_VM_OBJ := $(patsubst src/%.c,$(COV_DIR)/obj-vmalloc/%.o,$(LIB_SRC) $(HOSTED_SRC))
COV_VM_UNIT_BIN := $(addprefix $(COV_DIR)/unit-vmalloc/,test_kvmalloc_kheap test_kheap test_kmalloc_contract)
COV_MAG_FLAGS := $(MAG_FLAGS) -DPEACHOS_KMALLOC_SMALL_OBJECTS=1
COV_MAG_OBJ := $(patsubst src/%.c,$(COV_DIR)/obj-mag/%.o,$(LIB_SRC) $(HOSTED_SRC))
COV_MAG_UNIT_BIN := $(addprefix $(COV_DIR)/unit-mag/,test_kcache test_kcache_table test_kcache_mag test_kheap \
                    test_kmalloc_contract)
COV_NOCPU_FLAGS := -DPEACHOS_KCACHE_MAGAZINES=1 -DPEACHOS_HOSTED_NO_CPUS=1 -DPEACHOS_KMALLOC_SMALL_OBJECTS=1
COV_NOCPU_OBJ := $(patsubst src/%.c,$(COV_DIR)/obj-nocpu/%.o,$(LIB_SRC) $(HOSTED_SRC))
COV_NOCPU_UNIT_BIN := $(addprefix $(COV_DIR)/unit-nocpu/,test_kcache_mag test_kheap test_kmalloc_contract)
COV_BIN := $(COV_UNIT_BIN) $(COV_VM_UNIT_BIN) $(COV_MAG_UNIT_BIN) $(COV_NOCPU_UNIT_BIN) $(COV_DIR)/model/heap_model \
           $(COV_DIR)/model/kmalloc_model $(COV_DIR)/model/kmalloc_model_mag $(COV_DIR)/model/kvmalloc_model
COVERAGE_MIN_LINES ?= 100
COVERAGE_MIN_BRANCHES ?= 95
# Short model runs: the unit tests do the aiming, the models add volume.
COV_HEAP_MODEL_SCALE ?= 0.05
COV_KMALLOC_MODEL_OPS ?= 100000
COV_KVMALLOC_MODEL_OPS ?= 50000

TEST_STEPS += test-coverage

.PHONY: coverage test-coverage coverage-deps coverage-run

# gcc for --coverage and gcov (in gcc-12), gcovr for the report.
COVERAGE_PACKAGES := gcovr libcmocka-dev
TEST_PACKAGES += $(COVERAGE_PACKAGES)

coverage-deps: gcc-deps
	@tools/need $(COVERAGE_PACKAGES)

$(COV_DIR)/obj/%.o: src/%.c $(LIB_HDR) $(HOSTED_HDR) mk/coverage.mk | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) -c -o $@ $<

$(COV_DIR)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(COV_LIB_OBJ) | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) -Itests/unit -o $@ $< $(COV_LIB_OBJ) -lcmocka -lpthread

$(COV_DIR)/obj-vmalloc/%.o: src/%.c $(LIB_HDR) $(HOSTED_HDR) mk/coverage.mk | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) $(COV_VM_FLAGS) -c -o $@ $<

$(COV_DIR)/unit-vmalloc/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(COV_VM_OBJ) | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) $(COV_VM_FLAGS) -Itests/unit -o $@ $< $(COV_VM_OBJ) -lcmocka -lpthread

$(COV_DIR)/obj-mag/%.o: src/%.c $(LIB_HDR) $(HOSTED_HDR) mk/coverage.mk | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) $(COV_MAG_FLAGS) -c -o $@ $<

$(COV_DIR)/unit-mag/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(COV_MAG_OBJ) | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) $(COV_MAG_FLAGS) -Itests/unit -o $@ $< $(COV_MAG_OBJ) -lcmocka -lpthread

$(COV_DIR)/obj-nocpu/%.o: src/%.c $(LIB_HDR) $(HOSTED_HDR) mk/coverage.mk | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) $(COV_NOCPU_FLAGS) -c -o $@ $<

$(COV_DIR)/unit-nocpu/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(COV_NOCPU_OBJ) | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) $(COV_NOCPU_FLAGS) -Itests/unit -o $@ $< $(COV_NOCPU_OBJ) -lcmocka -lpthread

$(COV_DIR)/model/kmalloc_model_mag: tests/model/kmalloc_model.c $(COV_MAG_OBJ) | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) $(COV_MAG_FLAGS) -o $@ $< $(COV_MAG_OBJ) -lpthread

$(COV_DIR)/model/kvmalloc_model: tests/model/kvmalloc_model.c tests/model/model_regions.h tests/unit/sim_pagetable.h \
                                 $(COV_LIB_OBJ) | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) -o $@ $< $(COV_LIB_OBJ) -lpthread

$(COV_DIR)/model/heap_model: tests/model/heap_model.c $(COV_MODEL_OBJ) | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) -o $@ $< $(COV_MODEL_OBJ)

$(COV_DIR)/model/kmalloc_model: tests/model/kmalloc_model.c $(COV_LIB_OBJ) | coverage-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(COV_CFLAGS) -o $@ $< $(COV_LIB_OBJ) -lpthread

# Run everything on fresh counters. The test binaries' own .gcda files (they
# are compiled with --coverage too) are not reported: gcovr keeps src/memory/.
coverage-run: $(COV_BIN)
	@set -u; find $(COV_DIR) -name '*.gcda' -delete; bad=""; \
	for t in $(COV_UNIT_BIN); do \
	  $$t > $(COV_DIR)/$$(basename $$t).log 2>&1 || bad="$$bad $$(basename $$t)"; done; \
	for t in $(COV_VM_UNIT_BIN); do \
	  $$t > $(COV_DIR)/vmalloc-$$(basename $$t).log 2>&1 || bad="$$bad vmalloc/$$(basename $$t)"; done; \
	for t in $(COV_MAG_UNIT_BIN); do \
	  $$t > $(COV_DIR)/mag-$$(basename $$t).log 2>&1 || bad="$$bad mag/$$(basename $$t)"; done; \
	for t in $(COV_NOCPU_UNIT_BIN); do \
	  $$t > $(COV_DIR)/nocpu-$$(basename $$t).log 2>&1 || bad="$$bad nocpu/$$(basename $$t)"; done; \
	$(COV_DIR)/model/kmalloc_model_mag --ops $(COV_KMALLOC_MODEL_OPS) > $(COV_DIR)/kmalloc_model_mag.log 2>&1 \
	  || bad="$$bad kmalloc_model_mag"; \
	$(COV_DIR)/model/heap_model --scale $(COV_HEAP_MODEL_SCALE) > $(COV_DIR)/heap_model.log 2>&1 || bad="$$bad heap_model"; \
	$(COV_DIR)/model/kmalloc_model --ops $(COV_KMALLOC_MODEL_OPS) > $(COV_DIR)/kmalloc_model.log 2>&1 \
	  || bad="$$bad kmalloc_model"; \
	$(COV_DIR)/model/kvmalloc_model --ops $(COV_KVMALLOC_MODEL_OPS) > $(COV_DIR)/kvmalloc_model.log 2>&1 \
	  || bad="$$bad kvmalloc_model"; \
	if [ -n "$$bad" ]; then echo "coverage: test binaries failed:$$bad (logs in $(COV_DIR)/)"; exit 1; fi; \
	echo "coverage: $(words $(COV_BIN)) test binaries passed"

COV_GCOVR := gcovr --root . --filter 'src/memory/' \
             --exclude-unreachable-branches $(COV_DIR)

coverage: coverage-run
	@$(COV_GCOVR) --html-details $(COV_DIR)/index.html --txt $(COV_DIR)/summary.txt --print-summary \
	  | tee $(COV_DIR)/totals.txt
	@cat $(COV_DIR)/summary.txt
	@echo "coverage: report in $(COV_DIR)/index.html"

test-coverage: coverage
	@lines=$$(awk '/^lines:/ {sub("%","",$$2); print $$2}' $(COV_DIR)/totals.txt); \
	branches=$$(awk '/^branches:/ {sub("%","",$$2); print $$2}' $(COV_DIR)/totals.txt); \
	ok=$$(awk -v l="$$lines" -v b="$$branches" 'BEGIN { print (l >= $(COVERAGE_MIN_LINES) && b >= $(COVERAGE_MIN_BRANCHES)) ? 1 : 0 }'); \
	if [ "$$ok" != 1 ]; then \
	  echo "test-coverage: FAILED: lines $$lines% (need $(COVERAGE_MIN_LINES)%), branches $$branches% (need $(COVERAGE_MIN_BRANCHES)%)"; exit 1; fi; \
	echo "test-coverage: lines $$lines% (>= $(COVERAGE_MIN_LINES)%), branches $$branches% (>= $(COVERAGE_MIN_BRANCHES)%)"

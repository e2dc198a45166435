# mk/unit.mk - host unit tests (cmocka): every tests/unit/test_*.c becomes its
# own binary, linked with the whole library and the hosted kheap port.
#
#   make test-unit            plain build (-O2), run every binary
#   make test-unit-asan       the same tests under ASan + UBSan, -fno-sanitize-recover=all
#   make test-unit-valgrind   the plain binaries under valgrind --leak-check=full
#   make test-unit-configs    the kheap configurations besides the default
#                             (src/memory/heap/heap_config.h): every test with
#                             small objects behind kmalloc; and the lean build
#                             (no caches, no index) of the tests that need
#                             neither, linked without kcache.c and heap_index.c;
#                             and the plain build (every speed trick's plain
#                             twin) of the heap tests; and the regions build
#                             (PEACHOS_KHEAP_REGIONS=4) of the kheap tests;
#                             and the per-CPU magazine builds (with the
#                             hosted port's CPUs, and without CPU hooks)
#
# New tests/unit/test_*.c files are picked up automatically, except those of
# UNIT_MAG_ONLY (built in the magazine builds only). Shared helpers live in
# tests/unit/*.h. Each step fails if any binary fails.

UNIT_DIR := $(BUILD)/unit
# Tests of the per-CPU magazines: nothing to test without them, so only in
# the magazine builds (UNIT_MAG_NAMES, UNIT_NOCPU_NAMES; mk/coverage.mk too).
UNIT_MAG_ONLY := tests/unit/test_kcache_mag.c
UNIT_SRC := $(filter-out $(UNIT_MAG_ONLY),$(sort $(wildcard tests/unit/test_*.c)))
UNIT_HDR := $(wildcard tests/unit/*.h)
UNIT_NAMES := $(patsubst tests/unit/%.c,%,$(UNIT_SRC))
UNIT_BIN := $(addprefix $(UNIT_DIR)/,$(UNIT_NAMES))
UNIT_ASAN_BIN := $(addprefix $(UNIT_DIR)/asan/,$(UNIT_NAMES))
UNIT_CFLAGS := $(HOST_CFLAGS) $(ASSERT_FLAGS) -Itests/unit
UNIT_LIBS := -lcmocka -lpthread
UNIT_DEPS := $(UNIT_HDR) $(LIB_SRC) $(LIB_HDR) $(HOSTED_SRC) $(HOSTED_HDR)

TEST_STEPS += test-unit test-unit-asan test-unit-valgrind test-unit-configs

.PHONY: test-unit test-unit-asan test-unit-valgrind test-unit-configs unit-deps unit-valgrind-deps

UNIT_SMALL_FLAGS := -DPEACHOS_KMALLOC_SMALL_OBJECTS=1
UNIT_SMALL_BIN := $(addprefix $(UNIT_DIR)/small/,$(UNIT_NAMES))
UNIT_LEAN_FLAGS := -DPEACHOS_KHEAP_CACHES=0 -DPEACHOS_KHEAP_INDEX=0
UNIT_LEAN_SRC := $(LIB_CORE) src/memory/heap/heap_check.c src/memory/heap/heap_report.c src/memory/heap/kheap.c src/memory/heap/kheap_init.c src/memory/heap/kheap_check.c
UNIT_LEAN_NAMES := test_memory test_heap_create test_heap_report test_kheap test_kmalloc_contract
UNIT_LEAN_BIN := $(addprefix $(UNIT_DIR)/lean/,$(UNIT_LEAN_NAMES))
# The plain build: every speed trick's plain twin (heap_table.h's byte loops,
# heap_index_bits.h's HEAP_INDEX_TRICKS: longest-run loop, byte loops, runs
# counted afresh, the tree's range walk).
UNIT_PLAIN_FLAGS := -DHEAP_TABLE_WORDS=0 -DHEAP_INDEX_TRICKS=0
UNIT_PLAIN_NAMES := test_heap_malloc test_heap_free test_heap_check test_heap_index test_kcache test_kmalloc_contract
UNIT_PLAIN_BIN := $(addprefix $(UNIT_DIR)/plain/,$(UNIT_PLAIN_NAMES))

# Several regions (kheap_regions.c over a multiheap): the regions test, and
# the kheap tests whose expectations hold there too (the others count a
# free outside the heap in heap->rejected_frees, where a multiheap counts it in
# rejected_outside, or fault-inject block allocations the multiheap makes).
UNIT_REGIONS_FLAGS := -DPEACHOS_KHEAP_REGIONS=4
UNIT_REGIONS_NAMES := test_kheap_regions test_kmalloc_contract test_kcache_overrun
UNIT_REGIONS_BIN := $(addprefix $(UNIT_DIR)/regions/,$(UNIT_REGIONS_NAMES))
# ... and without the caches or the index (multiheap.c links heap_index.c).
UNIT_REGIONS_LEAN_FLAGS := -DPEACHOS_KHEAP_REGIONS=2 $(UNIT_LEAN_FLAGS)
UNIT_REGIONS_LEAN_SRC := $(UNIT_LEAN_SRC) src/memory/heap/kheap_regions.c src/memory/heap/multiheap.c src/memory/heap/heap_index.c src/memory/heap/heap_index_tree.c
UNIT_REGIONS_LEAN_BIN := $(UNIT_DIR)/regions-lean/test_kmalloc_contract

UNIT_PACKAGES := libcmocka-dev
UNIT_VALGRIND_PACKAGES := valgrind
TEST_PACKAGES += $(UNIT_PACKAGES) $(UNIT_VALGRIND_PACKAGES)

# host-deps: gcc with libc6-dev (pthread) and, for the ASan build, gcc's
# libasan8/libubsan1 (gcc's own dependencies).
unit-deps: host-deps
	@tools/need $(UNIT_PACKAGES)

unit-valgrind-deps:
	@tools/need $(UNIT_VALGRIND_PACKAGES)

$(UNIT_DIR)/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

$(UNIT_DIR)/asan/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(SAN_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

$(UNIT_DIR)/small/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(UNIT_SMALL_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

$(UNIT_DIR)/plain/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(UNIT_PLAIN_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

$(UNIT_DIR)/regions/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(UNIT_REGIONS_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

$(UNIT_DIR)/regions-lean/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(UNIT_REGIONS_LEAN_FLAGS) -o $@ $< $(UNIT_REGIONS_LEAN_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

$(UNIT_DIR)/lean/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(UNIT_LEAN_FLAGS) -o $@ $< $(UNIT_LEAN_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

# $(call unit_run,<binaries>,<command prefix>,<step name>): run each binary,
# keep going after a failure, fail at the end if any failed.
define unit_run
	@set -u; n=0; bad=""; \
	for t in $(1); do n=$$((n+1)); echo "--- $$t"; $(2) $$t || bad="$$bad $$(basename $$t)"; done; \
	if [ -n "$$bad" ]; then echo "$(3): FAILED:$$bad"; exit 1; fi; \
	echo "$(3): all $$n test binaries passed"
endef

test-unit: $(UNIT_BIN)
	$(call unit_run,$(UNIT_BIN),,test-unit)

test-unit-asan: $(UNIT_ASAN_BIN)
	$(call unit_run,$(UNIT_ASAN_BIN),,test-unit-asan)

# UNIT_VALGRIND=1 lets a test skip what valgrind cannot do in reasonable time
# (test_memory's 4 GiB memset; it runs in the two other steps).
UNIT_VALGRIND_CMD := UNIT_VALGRIND=1 valgrind -q --error-exitcode=1 --leak-check=full

test-unit-valgrind: $(UNIT_BIN) | unit-valgrind-deps
	$(call unit_run,$(UNIT_BIN),$(UNIT_VALGRIND_CMD),test-unit-valgrind)

# The per-CPU magazine build (MAG_FLAGS, with small objects behind kmalloc):
# the engine's tests, the magazines' own, and the kheap tests whose
# expectations do not count the slabs that objects resting in a CPU's
# magazine keep.
UNIT_MAG_NAMES := test_kcache test_kcache_table test_kcache_mag test_kheap test_kmalloc_contract
UNIT_MAG_BIN := $(addprefix $(UNIT_DIR)/mag/,$(UNIT_MAG_NAMES))

$(UNIT_DIR)/mag/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(MAG_FLAGS) $(UNIT_SMALL_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

# The magazines on a port without CPU hooks: the hosted port built with
# PEACHOS_HOSTED_NO_CPUS=1 defines none, so kheap.c's weak defaults are
# linked (no CPU: every kmalloc_small and kfree on the locked path).
UNIT_NOCPU_FLAGS := -DPEACHOS_KCACHE_MAGAZINES=1 -DPEACHOS_HOSTED_NO_CPUS=1 $(UNIT_SMALL_FLAGS)
UNIT_NOCPU_NAMES := test_kcache_mag test_kheap test_kmalloc_contract
UNIT_NOCPU_BIN := $(addprefix $(UNIT_DIR)/nocpu/,$(UNIT_NOCPU_NAMES))

$(UNIT_DIR)/nocpu/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(UNIT_NOCPU_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

UNIT_CONFIG_BIN := $(UNIT_SMALL_BIN) $(UNIT_LEAN_BIN) $(UNIT_PLAIN_BIN) $(UNIT_REGIONS_BIN) $(UNIT_REGIONS_LEAN_BIN) \
                   $(UNIT_MAG_BIN) $(UNIT_NOCPU_BIN)
test-unit-configs: $(UNIT_CONFIG_BIN)
	$(call unit_run,$(UNIT_CONFIG_BIN),,test-unit-configs)

# The kernel heap's window (PEACHOS_KHEAP_VMALLOC=1, kheap_vmalloc.c): its
# test (the test file is the port's window) with one region and with
# several, and kheap tests whose port offers no window (nothing changes).
UNIT_VMALLOC_FLAGS := -DPEACHOS_KHEAP_VMALLOC=1
UNIT_VMALLOC_BIN := $(addprefix $(UNIT_DIR)/vmalloc/,test_kvmalloc_kheap test_kheap test_kmalloc_contract) \
                    $(UNIT_DIR)/vmalloc-regions/test_kvmalloc_kheap
UNIT_CONFIG_BIN += $(UNIT_VMALLOC_BIN)
test-unit-configs: $(UNIT_VMALLOC_BIN)

$(UNIT_DIR)/vmalloc/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(UNIT_VMALLOC_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

$(UNIT_DIR)/vmalloc-regions/%: tests/unit/%.c $(UNIT_DEPS) | unit-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(UNIT_CFLAGS) $(UNIT_VMALLOC_FLAGS) $(UNIT_REGIONS_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) $(UNIT_LIBS)

# mk/model.mk - the model tests: the table model (index-vs-scan
# differential test) and the kmalloc model.
#   make test-model        >= 1,000,000 ops, heaps of 1 .. 25,601 blocks (part of make test)
#   make test-model-asan   the same under ASan + UBSan (another seed) (part of make test)
#   make test-long         >= 10,000,000 ops, heaps up to 262,144 blocks (1 GiB), plain build
#   make test-kmalloc-model        seeded random model test of kmalloc & co.
#                                  (>= 1,000,000 operations, small and large sizes),
#                                  then again with PEACHOS_KMALLOC_SMALL_OBJECTS=1,
#                                  and with the per-CPU magazines too
#   make test-kmalloc-model-asan   the same under ASan + UBSan
#   make test-kmalloc-model-poison the same with -DPEACHOS_KCACHE_POISON=1
#                                  (plus a deliberate write after free that must be reported)
# Outputs go to build/model/ and build/kcache/.

MODEL_DEPS := tests/model/heap_model.c $(LIB_SRC) $(LIB_HDR)
MODEL_SRC := tests/model/heap_model.c $(LIB_BLOCK_SRC)

TEST_STEPS += test-model test-model-asan

$(BUILD)/model/heap_model: $(MODEL_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) -o $@ $(MODEL_SRC)

# Built with clang: clang-deps brings its ASan/UBSan runtime (libclang-rt-14-dev).
$(BUILD)/model/heap_model-asan: $(MODEL_DEPS) | clang-deps
	@mkdir -p $(@D)
	clang $(HOST_CFLAGS) $(ASSERT_FLAGS) -O1 $(SAN_FLAGS) -o $@ $(MODEL_SRC)

.PHONY: test-model test-model-asan test-long
test-model: $(BUILD)/model/heap_model
	$(BUILD)/model/heap_model

test-model-asan: $(BUILD)/model/heap_model-asan
	$(BUILD)/model/heap_model-asan --seed 7

test-long: $(BUILD)/model/heap_model
	$(BUILD)/model/heap_model --long

# ------------------------------------------------------------ the kmalloc model

KCACHE_DIR := $(BUILD)/kcache
KCACHE_DEPS := $(LIB_SRC) $(LIB_HDR) $(HOSTED_SRC) $(HOSTED_HDR)

TEST_STEPS += test-kmalloc-model test-kmalloc-model-asan test-kmalloc-model-poison

.PHONY: test-kmalloc-model test-kmalloc-model-asan test-kmalloc-model-poison

# HOST_CC (gcc) builds all three; gcc's -fsanitize runtimes (libasan8,
# libubsan1) come with gcc's own dependencies.
$(KCACHE_DIR)/kmalloc_model: tests/model/kmalloc_model.c $(KCACHE_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) -lpthread

$(KCACHE_DIR)/kmalloc_model-small: tests/model/kmalloc_model.c $(KCACHE_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) -DPEACHOS_KMALLOC_SMALL_OBJECTS=1 -o $@ $< $(LIB_SRC) $(HOSTED_SRC) -lpthread

$(KCACHE_DIR)/kmalloc_model-asan: tests/model/kmalloc_model.c $(KCACHE_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) $(SAN_FLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) -lpthread

$(KCACHE_DIR)/kmalloc_model-poison: tests/model/kmalloc_model.c $(KCACHE_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) -DPEACHOS_KCACHE_POISON=1 -o $@ $< $(LIB_SRC) $(HOSTED_SRC) -lpthread

# The per-CPU magazine build (MAG_FLAGS), with small objects behind kmalloc.
$(KCACHE_DIR)/kmalloc_model-mag: tests/model/kmalloc_model.c $(KCACHE_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) $(MAG_FLAGS) -DPEACHOS_KMALLOC_SMALL_OBJECTS=1 -o $@ $< $(LIB_SRC) $(HOSTED_SRC) -lpthread

test-kmalloc-model: $(KCACHE_DIR)/kmalloc_model $(KCACHE_DIR)/kmalloc_model-small $(KCACHE_DIR)/kmalloc_model-mag
	$(KCACHE_DIR)/kmalloc_model
	$(KCACHE_DIR)/kmalloc_model-small
	$(KCACHE_DIR)/kmalloc_model-mag

# Sanitizers are slower: the same operations, checked a little less often.
test-kmalloc-model-asan: $(KCACHE_DIR)/kmalloc_model-asan
	$< --check-every 20000

test-kmalloc-model-poison: $(KCACHE_DIR)/kmalloc_model-poison
	$<

# ------------------------------------------------------------ the multiheap model

# make test-multiheap-model        seeded differential model of the multiheap
#                                  (tests/model/multiheap_model.c): >= 200,000
#                                  operations on random layouts of 1..8 regions
# make test-multiheap-model-asan   the same under ASan + UBSan (another seed)
# It links the block layer and multiheap.c only (no kernel heap, no caches).
# The multiheap and kvmalloc models share these sources and the model's
# regions (tests/model/model_regions.h).
MODEL_MULTIHEAP_LIB := $(LIB_CORE) src/memory/heap/heap_check.c src/memory/heap/heap_index.c \
                       src/memory/heap/heap_index_tree.c src/memory/heap/multiheap.c
MODEL_REGIONS_HDR := tests/model/model_regions.h
MULTIHEAP_MODEL_SRC := tests/model/multiheap_model.c $(MODEL_MULTIHEAP_LIB)
MULTIHEAP_MODEL_DEPS := $(MULTIHEAP_MODEL_SRC) $(LIB_HDR) $(MODEL_REGIONS_HDR)

TEST_STEPS += test-multiheap-model test-multiheap-model-asan

.PHONY: test-multiheap-model test-multiheap-model-asan

$(BUILD)/model/multiheap_model: $(MULTIHEAP_MODEL_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) -o $@ $(MULTIHEAP_MODEL_SRC)

$(BUILD)/model/multiheap_model-asan: $(MULTIHEAP_MODEL_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) $(SAN_FLAGS) -o $@ $(MULTIHEAP_MODEL_SRC)

test-multiheap-model: $(BUILD)/model/multiheap_model
	$<

test-multiheap-model-asan: $(BUILD)/model/multiheap_model-asan
	$< --seed 7

# ------------------------------------------------------------ the kvmalloc model

# make test-kvmalloc-model        seeded differential model of kvmalloc over a
#                                 fragmented multiheap (tests/model/kvmalloc_model.c,
#                                 the page table of tests/unit/sim_pagetable.h):
#                                 >= 300,000 operations on 2..6-region layouts
# make test-kvmalloc-model-asan   the same under ASan + UBSan (another seed)
# It links the block layer, multiheap.c and kvmalloc.c (no kernel heap, no caches).
KVMALLOC_MODEL_SRC := tests/model/kvmalloc_model.c $(MODEL_MULTIHEAP_LIB) src/memory/heap/kvmalloc.c
KVMALLOC_MODEL_DEPS := $(KVMALLOC_MODEL_SRC) $(LIB_HDR) $(MODEL_REGIONS_HDR) tests/unit/sim_pagetable.h

TEST_STEPS += test-kvmalloc-model test-kvmalloc-model-asan

.PHONY: test-kvmalloc-model test-kvmalloc-model-asan

$(BUILD)/model/kvmalloc_model: $(KVMALLOC_MODEL_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) -o $@ $(KVMALLOC_MODEL_SRC)

$(BUILD)/model/kvmalloc_model-asan: $(KVMALLOC_MODEL_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) $(SAN_FLAGS) -o $@ $(KVMALLOC_MODEL_SRC)

test-kvmalloc-model: $(BUILD)/model/kvmalloc_model
	$<

test-kvmalloc-model-asan: $(BUILD)/model/kvmalloc_model-asan
	$< --seed 7

# mk/kcache.mk - small-object caches (issue 5): model test and W2 benchmark.
#
#   make test-kmalloc-model        seeded random model test of kmalloc & co.
#                                  (>= 1,000,000 operations, small and large sizes),
#                                  then again with PEACHOS_KMALLOC_SMALL_OBJECTS=1
#   make test-kmalloc-model-asan   the same under ASan + UBSan
#   make test-kmalloc-model-poison the same with -DPEACHOS_KCACHE_POISON=1
#                                  (plus a deliberate write after free that must be reported)
#   make bench-w2                  benchmark W2; writes docs/bench/w2.md
#
# The unit tests (tests/unit/test_kcache*.c) are built and run by mk/unit.mk.
# Outputs go to build/kcache/.

KCACHE_DIR := $(BUILD)/kcache
KCACHE_DEPS := $(LIB_SRC) $(LIB_HDR) $(HOSTED_SRC) $(HOSTED_HDR)

TEST_STEPS += test-kmalloc-model test-kmalloc-model-asan test-kmalloc-model-poison

.PHONY: test-kmalloc-model test-kmalloc-model-asan test-kmalloc-model-poison bench-w2

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

test-kmalloc-model: $(KCACHE_DIR)/kmalloc_model $(KCACHE_DIR)/kmalloc_model-small
	$(KCACHE_DIR)/kmalloc_model
	$(KCACHE_DIR)/kmalloc_model-small

# Sanitizers are slower: the same operations, checked a little less often.
test-kmalloc-model-asan: $(KCACHE_DIR)/kmalloc_model-asan
	$< --check-every 20000

test-kmalloc-model-poison: $(KCACHE_DIR)/kmalloc_model-poison
	$<

$(KCACHE_DIR)/w2: bench/w2.c $(KCACHE_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $< $(LIB_SRC) $(HOSTED_SRC) -lpthread

bench-w2: $(KCACHE_DIR)/w2
	@mkdir -p docs/bench
	$(KCACHE_DIR)/w2 > $(KCACHE_DIR)/w2.md
	cp $(KCACHE_DIR)/w2.md docs/bench/w2.md
	@cat docs/bench/w2.md

bench: bench-w2

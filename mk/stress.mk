# mk/stress.mk - concurrency stress of the kernel heap:
# tests/stress/stress.c, 4 threads on one kheap through the hosted port's
# lock hook (pthread mutex), mixed sizes, frees of each other's pointers,
# every byte verified, kheap_check clean at the end.
#
#   make test-stress        plain build (-O2), STRESS_SECONDS (default 10)
#   make test-stress-tsan   clang -fsanitize=thread build of the same test,
#                           STRESS_TSAN_SECONDS (default 5); any report fails
#                           (halt_on_error=1)
#   make stress STRESS_SECONDS=600   a long run (same binary as test-stress)
# STRESS_THREADS (default 4) sets the number of threads of both.

STRESS_DIR := $(BUILD)/stress
STRESS_SECONDS ?= 10
STRESS_TSAN_SECONDS ?= 5
STRESS_THREADS ?= 4
STRESS_SRC := tests/stress/stress.c $(LIB_SRC) $(HOSTED_SRC)
STRESS_DEPS := $(STRESS_SRC) $(LIB_HDR) $(HOSTED_HDR)

TEST_STEPS += test-stress test-stress-tsan

.PHONY: stress test-stress test-stress-tsan

$(STRESS_DIR)/stress: $(STRESS_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) -o $@ $(STRESS_SRC) -lpthread

# clang-deps: clang and its TSan runtime (libclang-rt-14-dev).
# The same with small objects behind kmalloc (PEACHOS_KMALLOC_SMALL_OBJECTS=1),
# so the caches meet threads too; test-stress runs both, half the time each.
$(STRESS_DIR)/stress-small: $(STRESS_DEPS) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $(ASSERT_FLAGS) -DPEACHOS_KMALLOC_SMALL_OBJECTS=1 -o $@ $(STRESS_SRC) -lpthread

$(STRESS_DIR)/stress-tsan: $(STRESS_DEPS) | clang-deps
	@mkdir -p $(@D)
	clang -std=c11 -O1 -g $(WARN) -Isrc -DPEACHOS_KMALLOC_SMALL_OBJECTS=1 -fsanitize=thread -fno-omit-frame-pointer \
	  -o $@ $(STRESS_SRC) -lpthread

test-stress stress: $(STRESS_DIR)/stress $(STRESS_DIR)/stress-small
	$(STRESS_DIR)/stress --seconds $$(( ($(STRESS_SECONDS) + 1) / 2 )) --threads $(STRESS_THREADS)
	$(STRESS_DIR)/stress-small --seconds $$(( ($(STRESS_SECONDS) + 1) / 2 )) --threads $(STRESS_THREADS)

test-stress-tsan: $(STRESS_DIR)/stress-tsan
	TSAN_OPTIONS="halt_on_error=1 abort_on_error=1 exitcode=66" $< --seconds $(STRESS_TSAN_SECONDS) --threads $(STRESS_THREADS)

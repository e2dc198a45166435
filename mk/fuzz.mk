# mk/fuzz.mk - libFuzzer targets (tests/fuzz/).
#   make fuzz        each target for FUZZ_SECONDS (default 600) on top of the
#                    checked-in corpus; new inputs go to build/fuzz/work/<target>
#   make fuzz-merge  merge build/fuzz/work/<target> into tests/fuzz/corpus/<target>
#                    (keeps only inputs that add coverage)
#   make test-fuzz   (part of make test) replay of the corpus, then a smoke run
#                    of FUZZ_SMOKE_SECONDS (default 25) per target, one process
# A crash leaves its input in build/fuzz/artifacts/; replay it with
#   build/fuzz/<target> build/fuzz/artifacts/<file>

# fuzz_heap_ops_small: fuzz_heap_ops built with small objects behind kmalloc
# (PEACHOS_KMALLOC_SMALL_OBJECTS=1); it shares fuzz_heap_ops's corpus.
FUZZ_TARGETS := fuzz_heap_ops fuzz_heap_ops_small fuzz_table_check
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 25
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=c11 -g -O1 -Wall -Wextra -Werror -Isrc -Itests/fuzz $(ASSERT_FLAGS) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SRC := $(LIB_SRC) $(HOSTED_SRC)
FUZZ_DEPS := $(FUZZ_SRC) $(LIB_HDR) $(HOSTED_HDR) tests/fuzz/fuzz_common.h
TEST_STEPS += test-fuzz

# clang-deps: clang, and libFuzzer/ASan/UBSan from libclang-rt-14-dev.
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_DEPS) | clang-deps
	@mkdir -p $(@D) $(BUILD)/fuzz/artifacts
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC) -lpthread

$(BUILD)/fuzz/fuzz_heap_ops_small: tests/fuzz/fuzz_heap_ops.c $(FUZZ_DEPS) | clang-deps
	@mkdir -p $(@D) $(BUILD)/fuzz/artifacts
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DPEACHOS_KMALLOC_SMALL_OBJECTS=1 -o $@ $< $(FUZZ_SRC) -lpthread

.PHONY: fuzz fuzz-merge test-fuzz fuzz-build
fuzz-build: $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))

test-fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do BUILD=$(BUILD) tests/fuzz/run.sh replay $$t || exit 1; done
	@for t in $(FUZZ_TARGETS); do BUILD=$(BUILD) tests/fuzz/run.sh fuzz $$t $(FUZZ_SMOKE_SECONDS) || exit 1; done

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do BUILD=$(BUILD) tests/fuzz/run.sh fuzz $$t $(FUZZ_SECONDS) || exit 1; done

# fuzz_heap_ops_small has no corpus of its own (it shares fuzz_heap_ops's).
fuzz-merge: fuzz-build
	@for t in $(filter-out fuzz_heap_ops_small,$(FUZZ_TARGETS)); do \
	  $(BUILD)/fuzz/$$t -merge=1 tests/fuzz/corpus/$$t $(BUILD)/fuzz/work/$$t || exit 1; done

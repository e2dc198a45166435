# mk/model.mk - seeded random model test and index-vs-scan differential test.
#   make test-model        >= 1,000,000 ops, heaps of 1 .. 25,601 blocks (part of make test)
#   make test-model-asan   the same under ASan + UBSan (another seed) (part of make test)
#   make test-long         >= 10,000,000 ops, heaps up to 262,144 blocks (1 GiB), plain build

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

# mk/host.mk - the library on the host: freestanding build matrix, link check.

FREESTANDING_FLAGS := -std=c11 -ffreestanding -fno-pie -Wall -Wextra -Wconversion -Werror -Isrc
# The lean kheap (no caches, no index): compiled too, and linked in the check below.
FREESTANDING_LEAN := -DPEACHOS_KHEAP_CACHES=0 -DPEACHOS_KHEAP_INDEX=0

TEST_STEPS += test-freestanding

# Every library file with gcc and clang, for i686 and x86_64, at -O0/-O2/-O3
# (kheap.c and kheap_check.c also in the lean configuration).
# Then: memory.o must need no symbol at all (so memset cannot have become a
# call to itself), heap.o only memset, memcpy and heap_table.o, the whole library nothing
# but the port's kheap_port_* (no libgcc helper such as __ctzdi2 or
# __udivdi3: PeachOS links without libgcc), and memory.o + heap.o + heap_table.o must link
# into a -nostdlib program.
.PHONY: test-freestanding
# gcc-deps: gcc, nm (binutils); clang-deps: clang, ld.lld (-fuse-ld=lld).
test-freestanding: $(LIB_SRC) $(LIB_HDR) tests/link/link_min.c | gcc-deps clang-deps
	@set -e; d=$(BUILD)/freestanding; mkdir -p $$d; n=0; \
	for cc in gcc clang; do for m in 32 64; do for o in -O0 -O2 -O3; do \
	  for f in $(LIB_SRC); do \
	    obj=$$d/$$cc-$$m$$o-$$(basename $$f .c).o; \
	    $$cc -m$$m $$o $(FREESTANDING_FLAGS) -c $$f -o $$obj; n=$$((n+1)); \
	  done; \
	  undef=$$(nm -u $$d/$$cc-$$m$$o-memory.o); \
	  if [ -n "$$undef" ]; then echo "memory.o ($$cc -m$$m $$o) needs: $$undef"; exit 1; fi; \
	  undef=$$(nm -u $$d/$$cc-$$m$$o-heap.o | awk '{print $$2}' | grep -v -e '^memset$$' -e '^memcpy$$' -e '^heap_table_' || true); \
	  if [ -n "$$undef" ]; then echo "heap.o ($$cc -m$$m $$o) needs: $$undef"; exit 1; fi; \
	  for f in kheap kheap_check; do \
	    $$cc -m$$m $$o $(FREESTANDING_FLAGS) $(FREESTANDING_LEAN) -c src/memory/heap/$$f.c -o $$d/$$cc-$$m$$o-lean-$$f.o; \
	    n=$$((n+1)); done; \
	  undef=$$(nm -u $$d/$$cc-$$m$$o-*.o | awk '{print $$2}' | sort -u); \
	  defined=$$(nm --defined-only $$d/$$cc-$$m$$o-*.o | awk '{print $$3}' | sort -u); \
	  undef=$$(comm -23 <(echo "$$undef") <(echo "$$defined") | grep -v '^kheap_port_' || true); \
	  if [ -n "$$undef" ]; then echo "the library ($$cc -m$$m $$o) needs outside symbols: $$undef"; exit 1; fi; \
	  $$cc -m$$m $$o $(FREESTANDING_FLAGS) -c tests/link/link_min.c -o $$d/link-$$cc-$$m$$o.o; \
	  $$cc -m$$m -nostdlib -static $$([ $$cc = gcc ] && echo -no-pie) -fuse-ld=lld -Wl,-e,_start -o $$d/link-$$cc-$$m$$o \
	    $$d/link-$$cc-$$m$$o.o $$d/$$cc-$$m$$o-memory.o $$d/$$cc-$$m$$o-heap.o $$d/$$cc-$$m$$o-heap_table.o; \
	done; done; done; \
	echo "freestanding: $$n compilations clean (gcc, clang x i686, x86_64 x -O0/-O2/-O3); memory.o+heap.o+heap_table.o link alone"

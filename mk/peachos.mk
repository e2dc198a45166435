# mk/peachos.mk - check our heap inside the real PeachOS (a checkout of
# github.com/nibblebits/PeachOS, not part of this repository).
#
#   make peachos-check PEACHOS=DIR
#       tools/peachos-check DIR: builds DIR twice (as is, and after
#       tools/peachos-dropin), boots both under QEMU (TCG), types commands
#       into the PeachOS shell and compares the two screens; fails if they
#       differ, if a boot never reaches the expected screen, or if a
#       kernel.bin outgrows the 51,200 bytes PeachOS's boot sector loads.
#   make peachos-check PEACHOS=DIR PEACHOS_CHECK_FLAGS=--no-dropin
#       the same with two unmodified copies (checks the harness itself);
#       other flags: tools/peachos-check --help.
#
# Not a TEST_STEPS step: CI has no PeachOS checkout.

PEACHOS ?=
PEACHOS_CHECK_FLAGS ?=

.PHONY: peachos-check peachos-deps

# The host's gcc and ld stand in for PeachOS's i686-elf cross tools, with
# clang's i386 compiler-rt builtins for libgcc (gcc-deps, clang-deps); nasm
# assembles its .asm files, mtools puts its programs on its FAT16 image
# (instead of its Makefile's sudo mount), qemu boots it.
peachos-deps: gcc-deps clang-deps
	@tools/need nasm mtools qemu-system-x86

peachos-check: | peachos-deps
	@if [ -z "$(PEACHOS)" ]; then \
	    echo "make peachos-check: give PEACHOS=DIR, a PeachOS checkout (github.com/nibblebits/PeachOS)" >&2; \
	    exit 2; \
	fi
	tools/peachos-check "$(PEACHOS)" $(PEACHOS_CHECK_FLAGS)

# test-peachos-flags (part of make test, no PeachOS tree needed): every
# library file and the PeachOS port compile with PeachOS's own compiler
# flags (gnu99, -Wall -Werror, -O0 as its Makefile and -Os as the drop-in's
# default), in the drop-in's configurations (index on or off, with or without
# its checker, caches on or
# off), against a stand-in kernel.h; and together they need no symbol but
# PeachOS's print and panic.
PEACHOS_FLAGS := -m32 -ffreestanding -fno-pie -fno-stack-protector -falign-jumps -falign-functions \
  -falign-labels -falign-loops -fstrength-reduce -fomit-frame-pointer -finline-functions -Wno-unused-function \
  -fno-builtin -Werror -Wno-unused-label -Wno-cpp -Wno-unused-parameter -nostdlib -nostartfiles -nodefaultlibs \
  -Wall -std=gnu99 -Isrc -Isrc/memory/heap -Itools/peachos/stub
PEACHOS_CONFIGS := "-DPEACHOS_KHEAP_INDEX=1 -DPEACHOS_KHEAP_CACHES=0" "-DPEACHOS_KHEAP_INDEX=0 -DPEACHOS_KHEAP_CACHES=0" \
  "-DPEACHOS_KHEAP_INDEX=1 -DPEACHOS_KHEAP_CACHES=1" "-DPEACHOS_KHEAP_INDEX=1 -DPEACHOS_KHEAP_CACHES=0 -DPEACHOS_HEAP_CHECK=0"
TEST_STEPS += test-peachos-flags
.PHONY: test-peachos-flags

test-peachos-flags: $(LIB_SRC) $(LIB_HDR) tools/peachos/kheap_port.c | gcc-deps
	@set -e; d=$(BUILD)/peachos-flags; rm -rf $$d; mkdir -p $$d; n=0; c=0; \
	for cfg in $(PEACHOS_CONFIGS); do c=$$((c+1)); for o in -O0 -Os; do \
	  for f in $(LIB_SRC) tools/peachos/kheap_port.c; do \
	    gcc $(PEACHOS_FLAGS) $$o $$cfg -c $$f -o $$d/$$c$$o-$$(basename $$f .c).o; n=$$((n+1)); \
	  done; \
	  undef=$$(nm -u $$d/$$c$$o-*.o | awk '{print $$2}' | sort -u); \
	  defined=$$(nm --defined-only $$d/$$c$$o-*.o | awk '{print $$3}' | sort -u); \
	  undef=$$(comm -23 <(echo "$$undef") <(echo "$$defined") | grep -v -x -e print -e panic || true); \
	  if [ -n "$$undef" ]; then echo "with PeachOS's flags ($$cfg $$o) the library needs: $$undef"; exit 1; fi; \
	done; done; \
	echo "peachos-flags: $$n compilations clean with PeachOS's flags (4 configurations x -O0/-Os), no symbol needed but print and panic"

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

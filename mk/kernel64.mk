# mk/kernel64.mk - the x86_64 demo kernel (docs/kernel.md, "The 64-bit kernel").
#
#   make kernel64             build build/kernel64/peachos64.elf
#   make run ARCH=x86_64      boot it under qemu-system-x86_64 (mk/kernel.mk's run; MEM=6G etc.)
#   make test-boot64          boot it with 128M, 3584M and 6G (must pass, memory map shown),
#                             32M (must refuse, exit 37) and a CPU without long mode (exit 37)
#
# QEMU's -kernel loads only 32-bit multiboot ELF images. src/boot64/boot64.S
# starts in 32-bit mode and enters long mode; the C code is x86_64. All of
# it is linked as one ELF64 image at 1 MiB (peachos64-debug.elf, with the
# symbols gdb needs), then objcopy -O elf32-i386 rewrites the same sections
# and program headers as the ELF32 file QEMU boots. The small code model
# (not -mcmodel=kernel, which wants the image in the top 2 GiB) fits an
# identity-mapped image below 2 GiB; -mno-red-zone because an interrupt
# would write below RSP; -mno-sse: CR4.OSFXSR is never set.

KERNEL64_DIR := $(BUILD)/kernel64
# The heap spans the multiboot memory map's RAM (src/kernel/kheap_port_regions.c):
# the seed's region and the available RAM above it, below and above 4 GiB.
# The small-object caches run with the per-CPU magazines here, so that
# their kernel per-CPU section (pushf; cli around the magazine alone,
# src/kernel/kheap_port.c) runs on bare metal in test-boot64 and test-gdb;
# the i686 kernel keeps the default caches, as PeachOS's drop-in does.
KERNEL64_HEAP_FLAGS := -DPEACHOS_KHEAP_REGIONS=8 -DPEACHOS_KHEAP_VMALLOC=1 -DPEACHOS_KCACHE_MAGAZINES=1
KERNEL64_ELF := $(KERNEL64_DIR)/peachos64.elf
KERNEL64_DEBUG_ELF := $(KERNEL64_DIR)/peachos64-debug.elf
KERNEL64_CFLAGS := --target=x86_64-elf -march=x86-64 -mcmodel=small -mno-red-zone -std=c11 -ffreestanding \
                   -fno-pie -fno-pic -nostdlib $(ASSERT_FLAGS) -fno-stack-protector -fno-omit-frame-pointer \
                   -mno-sse -mno-mmx -O2 -g $(WARN) -Isrc $(KERNEL64_HEAP_FLAGS)
KERNEL64_ASFLAGS := --target=x86_64-elf -g -Wall -Werror
KERNEL64_LDFLAGS := -m elf_x86_64 -nostdlib -static --no-pie --build-id=none -z max-page-size=4096 \
                    -T src/boot64/linker64.ld
# The i686 kernel's parts that are not 32-bit only. paging.c is (32-bit
# tables, CR0.PG): src/kernel64/paging64.c implements paging.h with 4-level
# tables, so selftest_paging.c's cases run here too (selftest_paging64.c
# calls them); kernel.c's boot is kernel64.c's.
KERNEL64_C_SRC := $(addprefix src/kernel/,boot_common.c print.c serial.c vga.c selftest.c selftest_reports.c kheap_port.c \
                    mmap.c kheap_port_regions.c regions_print.c selftest_regions.c selftest_paging.c paging_common.c) \
                  $(wildcard src/kernel64/*.c)
KERNEL64_OBJ := $(patsubst src/%.c,$(KERNEL64_DIR)/%.o,$(KERNEL64_C_SRC) $(LIB_SRC)) $(KERNEL64_DIR)/boot64/boot64.o
QEMU64 := qemu-system-x86_64

.PHONY: kernel64 test-boot64
TEST_STEPS += test-boot64

kernel64: $(KERNEL64_ELF)

$(KERNEL64_DIR)/%.o: src/%.c $(LIB_HDR) $(KERNEL_HDR) $(wildcard src/kernel64/*.h) mk/kernel64.mk | $(KERNEL_DIR)/.toolchain
	@mkdir -p $(@D)
	$(KERNEL_CC) $(KERNEL64_CFLAGS) -c -o $@ $<

$(KERNEL64_DIR)/%.o: src/%.S src/boot/multiboot_entry.inc mk/kernel64.mk | $(KERNEL_DIR)/.toolchain
	@mkdir -p $(@D)
	$(KERNEL_CC) $(KERNEL64_ASFLAGS) -c -o $@ $<

$(KERNEL64_DEBUG_ELF): $(KERNEL64_OBJ) src/boot64/linker64.ld
	$(KERNEL_LD) $(KERNEL64_LDFLAGS) -o $@ $(KERNEL64_OBJ)

# objcopy is GNU binutils' (Debian: binutils, a dependency of clang).
$(KERNEL64_ELF): $(KERNEL64_DEBUG_ELF)
	@command -v objcopy >/dev/null || tools/need binutils
	objcopy -O elf32-i386 $< $@
	@size=$$(stat -c %s $@); echo "kernel64: $@ ($$size bytes, ELF32 of $<)"

test-boot64: $(KERNEL64_ELF)
	@tools/need qemu-system-x86
	tests/boot/test-boot64.sh $(KERNEL64_ELF)

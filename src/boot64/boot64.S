/*
 * boot64.S - multiboot v1 entry of the x86_64 demo kernel: from 32-bit
 * protected mode into long mode, then kernel64_main(magic, info).
 *
 * QEMU's -kernel (and GRUB's multiboot) load only 32-bit images and enter
 * _start in 32-bit protected mode, paging off, EAX = 0x2BADB002, EBX = the
 * multiboot info. This file is assembled as x86_64 code with a .code32 part
 * (every address it names is below 4 GiB, so 32-bit relocations hold); the
 * image is linked as ELF64 and converted to ELF32 (mk/kernel64.mk).
 *
 * Long mode needs paging, so the 32-bit part builds an identity map with
 * 2 MiB pages (PML4 -> one PDPT -> one page directory per GiB): the first
 * 4 GiB always (kernel, heap, loader data, VGA, devices below 4 GiB), and up
 * to the end of the highest "available" entry of the multiboot memory map,
 * at most BOOT64_MAX_GIB. Then CR4.PAE, CR3, EFER.LME, CR0.PG, a 64-bit GDT
 * and a far jump into 64-bit code. A CPU without long mode is told so on
 * COM1 and QEMU exits 37 (refused), like any other refused boot.
 */
#include "../boot/multiboot_entry.inc"
#define MULTIBOOT_INFO_MMAP (1 << 6)
#ifndef BOOT64_MAX_GIB
#define BOOT64_MAX_GIB 64          /* page directories reserved in .bss (4 KiB each) */
#endif
#define PG_PRESENT 0x001
#define PG_WRITABLE 0x002
#define PG_LARGE 0x080             /* a 2 MiB page in a page-directory entry */
#define CR4_PAE (1 << 5)
#define CR0_PG (1 << 31)
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define EXIT_PORT 0xf4
#define EXIT_REFUSED 0x12          /* qemu exit 37, as src/kernel/kernel.h */

    .section .bss
    .balign 4096
    .global boot64_pml4, boot64_pdpt, boot64_pd
boot64_pml4: .skip 4096
boot64_pdpt: .skip 4096
boot64_pd:   .skip 4096 * BOOT64_MAX_GIB
    .balign 4
    .global boot64_mapped_gib
boot64_magic:      .skip 4
boot64_info:       .skip 4
boot64_mapped_gib: .skip 4         /* GiB identity-mapped from 0 (kernel64.c prints it) */

    .section .data
    .balign 8
gdt64:
    .quad 0
    .quad 0x00AF9A000000FFFF       /* 0x08: ring-0 code, L=1 (64-bit) */
    .quad 0x00CF92000000FFFF       /* 0x10: ring-0 data */
gdt64_end:
gdt64_ptr:
    .word gdt64_end - gdt64 - 1
    .quad gdt64
no_long_mode_msg:
    .asciz "boot: REFUSED: this CPU has no long mode (CPUID 0x80000001 EDX bit 29): not an x86_64\r\n"

    .section .text
    .code32
    /* _start (multiboot_entry.inc) goes on here, on its stack. */
    movl %eax, boot64_magic
    movl %ebx, boot64_info

    /* Long mode at all? (qemu-system-x86_64 -cpu qemu32 has none.) */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb no_long_mode
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 29), %edx
    jz no_long_mode

    /* How many GiB to map: 4, or up to the highest available RAM. An entry
     * is: size (not counting itself), base (64), length (64), type. The
     * magic is checked in C; with a wrong one, flags may be anything, so
     * the map is read only under the right magic. */
    movl $4, %ecx
    cmpl $0x2BADB002, boot64_magic
    jne 4f
    movl boot64_info, %ebx
    testl $MULTIBOOT_INFO_MMAP, (%ebx)
    jz 4f
    movl 48(%ebx), %esi            /* mmap_addr */
    movl 44(%ebx), %edx            /* mmap_length */
    addl %esi, %edx
1:  cmpl %edx, %esi
    jae 4f
    cmpl $1, 20(%esi)              /* type 1: available RAM */
    jne 3f
    movl 4(%esi), %eax             /* edi:eax = base + length = end */
    movl 8(%esi), %edi
    addl 12(%esi), %eax
    adcl 16(%esi), %edi
    cmpl $(BOOT64_MAX_GIB / 4), %edi
    jae 2f                         /* ends at or past the most we map */
    addl $0x3FFFFFFF, %eax         /* GiB = ceil(end / 2^30) */
    adcl $0, %edi
    shrl $30, %eax
    shll $2, %edi
    orl %edi, %eax
    cmpl %ecx, %eax
    jbe 3f
    movl %eax, %ecx
    jmp 3f
2:  movl $BOOT64_MAX_GIB, %ecx
3:  movl (%esi), %eax
    leal 4(%esi,%eax), %esi
    jmp 1b
4:  cmpl $BOOT64_MAX_GIB, %ecx
    jbe 5f
    movl $BOOT64_MAX_GIB, %ecx
5:  movl %ecx, boot64_mapped_gib

    /* PML4 and PDPT cleared (not left to the loader), then 512 2 MiB pages
     * per GiB: entry i maps i << 21 (bits 32 and up in the high dword). */
    movl $boot64_pml4, %edi
    xorl %eax, %eax
    movl $(2 * 4096 / 4), %ecx
    rep stosl
    movl boot64_mapped_gib, %ecx
    shll $9, %ecx
    movl $boot64_pd, %edi
    xorl %eax, %eax
6:  movl %eax, %edx
    shll $21, %edx
    orl $(PG_PRESENT | PG_WRITABLE | PG_LARGE), %edx
    movl %edx, (%edi,%eax,8)
    movl %eax, %edx
    shrl $11, %edx
    movl %edx, 4(%edi,%eax,8)
    incl %eax
    cmpl %ecx, %eax
    jb 6b
    /* PDPT entry g -> page directory g; PML4 entry 0 -> the PDPT. */
    movl boot64_mapped_gib, %ecx
    xorl %eax, %eax
7:  movl %eax, %edx
    shll $12, %edx
    addl $(boot64_pd + PG_PRESENT + PG_WRITABLE), %edx
    movl %edx, boot64_pdpt(,%eax,8)
    incl %eax
    cmpl %ecx, %eax
    jb 7b
    movl $(boot64_pdpt + PG_PRESENT + PG_WRITABLE), boot64_pml4

    /* The 64-bit GDT first, while still in legacy protected mode (the
     * current CS stays cached until the far jump). */
    lgdt gdt64_ptr
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $boot64_pml4, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    orl $CR0_PG, %eax              /* PE is on already: now IA-32e, compatibility mode */
    movl %eax, %cr0
    ljmp $0x08, $long_mode

no_long_mode:
    movl $no_long_mode_msg, %esi
    movw $0x3F8, %dx               /* COM1, as the BIOS left it: QEMU takes it */
1:  lodsb
    testb %al, %al
    jz 2f
    outb %al, %dx
    jmp 1b
2:  movw $EXIT_PORT, %dx
    movl $EXIT_REFUSED, %eax
    outl %eax, %dx
3:  hlt
    jmp 3b
    .size _start, . - _start

    .code64
long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movq $kernel_stack_top, %rsp
    xorl %ebp, %ebp                /* end of the frame chain for gdb */
    movl boot64_magic(%rip), %edi  /* kernel64_main(magic, info): SysV ABI */
    movl boot64_info(%rip), %esi
    call kernel64_main
1:  cli
    hlt
    jmp 1b

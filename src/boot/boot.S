/*
 * boot.S - multiboot v1 header and entry point of the PeachOS demo kernel.
 *
 * A multiboot loader (QEMU -kernel, GRUB) loads the ELF at 1 MiB (linker.ld),
 * enters _start in 32-bit protected mode with paging off, interrupts off,
 * EAX = 0x2BADB002 and EBX = the physical address of the multiboot info.
 * We set up our own stack (in .bss, above 1 MiB: nowhere near the heap table
 * at 0x7E00 or the index at 0xE200) and call kernel_main(magic, info).
 */
#define MULTIBOOT_MAGIC 0x1BADB002
/* bit 0: modules page-aligned, bit 1: give us mem_lower/mem_upper (and the map) */
#define MULTIBOOT_FLAGS 0x00000003
#define KERNEL_STACK_SIZE 65536

    .section .multiboot, "a"
    .balign 4
multiboot_header:
    .long MULTIBOOT_MAGIC
    .long MULTIBOOT_FLAGS
    .long -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

    .section .bss
    .balign 16
    .global kernel_stack_bottom
kernel_stack_bottom:
    .skip KERNEL_STACK_SIZE
    .global kernel_stack_top
kernel_stack_top:

    .section .text
    .global _start
    .type _start, @function
_start:
    cli
    cld
    movl $kernel_stack_top, %esp
    xorl %ebp, %ebp          /* end of the frame chain for gdb backtraces */
    pushl %ebx               /* multiboot info */
    pushl %eax               /* multiboot magic */
    call kernel_main
    /* kernel_main does not return (it exits QEMU); if it does, stop here. */
1:  cli
    hlt
    jmp 1b
    .size _start, . - _start

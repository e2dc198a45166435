/*
 * boot.S - multiboot v1 header and entry point of the PeachOS demo kernel.
 *
 * A multiboot loader (QEMU -kernel, GRUB) loads the ELF at 1 MiB (linker.ld),
 * enters _start in 32-bit protected mode with paging off, interrupts off,
 * EAX = 0x2BADB002 and EBX = the physical address of the multiboot info.
 * We set up our own stack (in .bss, above 1 MiB: nowhere near the heap table
 * at 0x7E00 or the index at 0xE200) and call kernel_main(magic, info).
 */
#include "multiboot_entry.inc"
    xorl %ebp, %ebp          /* end of the frame chain for gdb backtraces */
    pushl %ebx               /* multiboot info */
    pushl %eax               /* multiboot magic */
    call kernel_main
    /* kernel_main does not return (it exits QEMU); if it does, stop here. */
1:  cli
    hlt
    jmp 1b
    .size _start, . - _start

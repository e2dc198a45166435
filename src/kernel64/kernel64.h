/*
 * kernel64.h - what the x86_64 demo kernel's own files share. The multiboot
 * structures are src/kernel/multiboot.h; the heap regions' port and
 * self-test case are src/kernel/'s (kheap_port_regions.c,
 * selftest_regions.c), shared with the i686 kernel.
 */
#ifndef PEACHOS_KERNEL64_H
#define PEACHOS_KERNEL64_H

#include <stdint.h>

#define KERNEL64_GIB (1ull << 30)

/* boot64.S: GiB identity-mapped from 0. */
extern uint32_t boot64_mapped_gib;

#endif /* PEACHOS_KERNEL64_H */

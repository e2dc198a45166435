/*
 * config.h - the demo kernel's configuration. A PeachOS kernel's config.h
 * defines the heap's layout here (PEACHOS_HEAP_SIZE_BYTES, _BLOCK_SIZE,
 * _ADDRESS, _TABLE_ADDRESS); the demo kernel takes the seed's values, which
 * are the memory library's defaults in src/memory/heap/heap_config.h (100
 * MiB of 4 KiB blocks at 16 MiB, the table at 0x7E00). Any of them, and
 * every other setting listed there, may be set here or with -D.
 */
#ifndef PEACHOS_CONFIG_H
#define PEACHOS_CONFIG_H

/* The demo kernels keep the small-object caches' slab table here, between
 * their image and the heap, outside the pool (kheap_port.c): a record per
 * heap block, 1.1 MiB (i686) or 1.2 MiB (x86_64) for the 100 MiB heap. The
 * linker scripts keep the image below it. */
#define KERNEL_SLAB_TABLE_ADDRESS 0x00C00000
#define KERNEL_SLAB_TABLE_MAX_BYTES 0x00400000

#endif /* PEACHOS_CONFIG_H */

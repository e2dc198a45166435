/*
 * config.h - compile-time configuration of the PeachOS memory subsystem.
 *
 * Every value may be overridden with -D on the compiler command line; the
 * defaults are the seed's layout (docs/porting.md explains each one).
 */
#ifndef PEACHOS_CONFIG_H
#define PEACHOS_CONFIG_H

/* Size of the kernel heap's data pool: 100 MiB. */
#ifndef PEACHOS_HEAP_SIZE_BYTES
#define PEACHOS_HEAP_SIZE_BYTES 104857600
#endif

/* Allocation unit. One table byte describes one block. Must be a power of two. */
#ifndef PEACHOS_HEAP_BLOCK_SIZE
#define PEACHOS_HEAP_BLOCK_SIZE 4096
#endif

/* Physical address of the data pool (16 MiB, block-aligned). */
#ifndef PEACHOS_HEAP_ADDRESS
#define PEACHOS_HEAP_ADDRESS 0x01000000
#endif

/*
 * Physical address of the block table: free conventional memory right after
 * the boot sector (0x7C00..0x7DFF). 100 MiB / 4 KiB = 25,600 bytes, so the
 * table ends at 0xE200.
 */
#ifndef PEACHOS_HEAP_TABLE_ADDRESS
#define PEACHOS_HEAP_TABLE_ADDRESS 0x00007E00
#endif

/*
 * Physical address of the placement index (see docs/index.md): right after
 * the table (0x7E00 + 25,600 = 0xE200). For the default heap it needs
 * heap_index_bytes(25600) = 15,512 bytes on i686 (15,528 on x86_64), so it
 * ends at 0x11E98, well inside free conventional memory (which ends at
 * 0x7FFFF). kheap refuses to start if the index would exceed
 * PEACHOS_HEAP_INDEX_MAX_BYTES.
 */
#ifndef PEACHOS_HEAP_INDEX_ADDRESS
#define PEACHOS_HEAP_INDEX_ADDRESS 0x0000E200
#endif
#ifndef PEACHOS_HEAP_INDEX_MAX_BYTES
#define PEACHOS_HEAP_INDEX_MAX_BYTES 0x00010000
#endif

/*
 * What the kernel does with a rejected free (bad pointer, double free):
 * 0 = print a report on the console and carry on (the heap is unchanged),
 * 1 = print the report and halt.
 */
#ifndef PEACHOS_HEAP_PANIC_ON_BAD_FREE
#define PEACHOS_HEAP_PANIC_ON_BAD_FREE 0
#endif

#endif /* PEACHOS_CONFIG_H */

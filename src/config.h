/*
 * config.h - the demo kernel's configuration: the seed's heap layout, as
 * PeachOS's own config.h has it. Each value may be overridden with -D.
 * The memory library reads every setting through
 * src/memory/heap/heap_config.h, which gives a default to whatever a
 * kernel's config.h leaves out (docs/porting.md lists them all).
 */
#ifndef PEACHOS_CONFIG_H
#define PEACHOS_CONFIG_H

/* 100 MiB heap of 4 KiB blocks at 16 MiB, its table at 0x7E00. */
#ifndef PEACHOS_HEAP_SIZE_BYTES
#define PEACHOS_HEAP_SIZE_BYTES 104857600
#endif
#ifndef PEACHOS_HEAP_BLOCK_SIZE
#define PEACHOS_HEAP_BLOCK_SIZE 4096
#endif
#ifndef PEACHOS_HEAP_ADDRESS
#define PEACHOS_HEAP_ADDRESS 0x01000000
#endif
#ifndef PEACHOS_HEAP_TABLE_ADDRESS
#define PEACHOS_HEAP_TABLE_ADDRESS 0x00007E00
#endif

#endif /* PEACHOS_CONFIG_H */

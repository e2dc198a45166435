/*
 * tools/heapmap/map.c - the map of a table: each block's entry classified
 * into the cell the picture shows, and the map's memory. The parsers
 * (input.c, textmap.c) and replay build their maps here or with
 * hm_map_alloc; the statistics are counted in stats.c.
 *
 * Classification of a raw table entry (same encoding as src/memory/heap/heap.h):
 *   00                      free
 *   TAKEN|IS_FIRST|type     first block (type 0: plain, HEAP_BLOCK_TYPE_CACHE: cache,
 *                           HEAP_BLOCK_TYPE_VMAP: a block behind the kvmalloc window)
 *   TAKEN|type              further block
 * and a block is drawn INVALID when
 *   1. its entry is bad on its own: bits 5-4 set, a type other than plain,
 *      cache or vmap, or non-zero without TAKEN (the text map's '?');
 *   2. it is a further block whose predecessor is not a valid block of the
 *      same type with HAS_NEXT (an orphan, or the tail of a broken chain);
 *   3. it has HAS_NEXT but the next block is not a further block of the same
 *      type (a dangling chain), or it belongs to a chain that breaks later.
 * Some block is INVALID exactly when heap_check() rejects the table itself
 * (heap_check also checks the heap's counters and index, which a dump lacks).
 */
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"
#include "memory/heap/heap.h"

void hm_free(struct hm_map* map)
{
    free(map->state);
    free(map->share);
    free(map->bytes);
    memset(map, 0, sizeof(*map));
}

int hm_map_alloc(struct hm_map* map, size_t blocks, size_t per_cell)
{
    memset(map, 0, sizeof(*map));
    map->blocks = blocks;
    map->per_cell = per_cell;
    map->ncells = blocks / per_cell + (blocks % per_cell != 0);
    map->state = calloc(map->ncells, 1);
    map->share = calloc(map->ncells, 1);
    if (map->state == NULL || map->share == NULL) {
        fprintf(stderr, "heapmap: out of memory\n");
        hm_free(map);
        return -1;
    }
    return 0;
}

static bool hm_entry_is_bad(unsigned char e)
{
    unsigned char type = e & HEAP_BLOCK_TYPE_MASK;
    return e != HEAP_BLOCK_TABLE_ENTRY_FREE &&
           ((e & ~HEAP_BLOCK_KNOWN_BITS) != 0 || !(e & HEAP_BLOCK_TABLE_ENTRY_TAKEN) ||
            (type != HEAP_BLOCK_TYPE_PLAIN && type != HEAP_BLOCK_TYPE_CACHE && type != HEAP_BLOCK_TYPE_VMAP));
}

/* The cell of a valid first (or further) block of `type`, as heap_map.c
 * draws it: '#'/'=' plain, 'C'/'c' cache, 'V'/'v' vmap. */
static unsigned char hm_taken_cell(unsigned char type, bool first)
{
    if (type == HEAP_BLOCK_TYPE_CACHE) {
        return first ? HM_CACHE_FIRST : HM_CACHE_MORE;
    }
    if (type == HEAP_BLOCK_TYPE_VMAP) {
        return first ? HM_VMAP_FIRST : HM_VMAP_MORE;
    }
    return first ? HM_FIRST : HM_MORE;
}

/* Could `e` continue a chain of `type`? */
static bool hm_is_continuation(unsigned char e, unsigned char type)
{
    return e != HEAP_BLOCK_TABLE_ENTRY_FREE && !hm_entry_is_bad(e) && !(e & HEAP_BLOCK_IS_FIRST) &&
           (e & HEAP_BLOCK_TYPE_MASK) == type;
}

static bool hm_cell_is_valid_taken(unsigned char state)
{
    return state == HM_FIRST || state == HM_MORE || state == HM_CACHE_FIRST || state == HM_CACHE_MORE ||
           state == HM_VMAP_FIRST || state == HM_VMAP_MORE;
}

/* The cell of block i, given its predecessor's cell (rules 1, 2 and the
 * dangling end of rule 3). */
static unsigned char hm_classify(const unsigned char* entries, size_t blocks, size_t i, unsigned char prev)
{
    unsigned char e = entries[i];
    unsigned char type = e & HEAP_BLOCK_TYPE_MASK;
    if (e == HEAP_BLOCK_TABLE_ENTRY_FREE) {
        return HM_FREE;
    }
    if (hm_entry_is_bad(e)) {
        return HM_INVALID; /* rule 1 */
    }
    bool first = (e & HEAP_BLOCK_IS_FIRST) != 0;
    if (!first && !(i > 0 && hm_cell_is_valid_taken(prev) && (entries[i - 1] & HEAP_BLOCK_HAS_NEXT) &&
                    (entries[i - 1] & HEAP_BLOCK_TYPE_MASK) == type)) {
        return HM_INVALID; /* rule 2 */
    }
    if ((e & HEAP_BLOCK_HAS_NEXT) && !(i + 1 < blocks && hm_is_continuation(entries[i + 1], type))) {
        return HM_INVALID; /* rule 3: dangling */
    }
    return hm_taken_cell(type, first);
}

/* Rule 3: a chain that breaks is invalid from its first block on. */
static void hm_break_chains(const unsigned char* entries, size_t blocks, unsigned char* st)
{
    for (size_t i = blocks - 1; i-- > 0;) {
        if (hm_cell_is_valid_taken(st[i]) && (entries[i] & HEAP_BLOCK_HAS_NEXT) && st[i + 1] == HM_INVALID) {
            st[i] = HM_INVALID;
        }
    }
}

int hm_from_table(const unsigned char* entries, size_t blocks, struct hm_map* map)
{
    if (blocks == 0) {
        fprintf(stderr, "heapmap: empty table\n");
        return -1;
    }
    if (hm_map_alloc(map, blocks, 1) < 0) {
        return -1;
    }
    map->bytes = malloc(blocks);
    if (map->bytes == NULL) {
        hm_free(map);
        return -1;
    }
    memcpy(map->bytes, entries, blocks);
    map->source = "raw table";
    for (size_t i = 0; i < blocks; i++) {
        map->state[i] = hm_classify(entries, blocks, i, i > 0 ? map->state[i - 1] : HM_FREE);
    }
    hm_break_chains(entries, blocks, map->state);
    hm_count(map);
    return 0;
}

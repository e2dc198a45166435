/*
 * tools/heapmap/stats.c - a map's statistics: used, free, the largest free
 * run, allocations, cache, VMAP and invalid cells, the fragmentation figure
 * (README.md, "Statistics and the fragmentation figure"), and the "stats
 * ..." line every command prints. Counted from the cells when each cell is
 * one block; a grouped text map takes them from its end line (textmap.c).
 */
#include <string.h>

#include "heapmap.h"

double hm_fragmentation(size_t free_blocks, size_t largest_free)
{
    return free_blocks == 0 ? 0.0 : 1.0 - (double)largest_free / (double)free_blocks;
}

void hm_count(struct hm_map* map)
{
    struct hm_stats* s = &map->stats;
    memset(s, 0, sizeof(*s));
    s->known = true;
    s->cache_known = true;
    size_t run = 0;
    for (size_t i = 0; i < map->ncells; i++) {
        unsigned char st = map->state[i];
        run = st == HM_FREE ? run + 1 : 0;
        s->largest_free = run > s->largest_free ? run : s->largest_free;
        s->free += st == HM_FREE;
        s->used += st != HM_FREE && st != HM_MISSING;
        s->allocations += st == HM_FIRST || st == HM_CACHE_FIRST || st == HM_VMAP_FIRST;
        s->cache_blocks += st == HM_CACHE_FIRST || st == HM_CACHE_MORE;
        s->vmap_blocks += st == HM_VMAP_FIRST || st == HM_VMAP_MORE;
        s->invalid += st == HM_INVALID;
    }
}

void hm_print_stats(FILE* out, const struct hm_map* map)
{
    const struct hm_stats* s = &map->stats;
    fprintf(out, "stats blocks=%zu per_cell=%zu cells=%zu", map->blocks, map->per_cell, map->ncells);
    if (s->known) {
        fprintf(out, " used=%zu free=%zu largest_free=%zu allocations=%zu", s->used, s->free, s->largest_free,
                s->allocations);
    } else {
        fprintf(out, " used=? free=? largest_free=? allocations=?");
    }
    if (s->cache_known) {
        fprintf(out, " cache_blocks=%zu vmap_blocks=%zu", s->cache_blocks, s->vmap_blocks);
    } else {
        fprintf(out, " cache_blocks=? vmap_blocks=?");
    }
    fprintf(out, " invalid=%zu", s->invalid);
    if (s->known) {
        fprintf(out, " fragmentation=%.4f", hm_fragmentation(s->free, s->largest_free));
    } else {
        fprintf(out, " fragmentation=?");
    }
}

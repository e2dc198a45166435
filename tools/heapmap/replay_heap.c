/*
 * tools/heapmap/replay_heap.c - the hosted heap a replay runs on
 * (heap_create_indexed over an mmap'd pool: the library's own code) and the
 * operations on it, one place for what every workload does: allocate and
 * free by id, and after each operation sample the timeline, write the
 * record file and draw the snapshots asked for. The workloads
 * (replay_workload.c, replay_trace.c) only decide which operation comes next.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memory/heap/heap_index.h"
#include "replay.h"

int rp_create(struct rp* r, size_t blocks)
{
    size_t pool = blocks * PEACHOS_HEAP_BLOCK_SIZE;
    size_t index = heap_index_bytes(blocks);
    if (blocks == 0 || index == 0) {
        fprintf(stderr, "heapmap replay: cannot make a heap of %zu blocks\n", blocks);
        return -1;
    }
    size_t table = (blocks + 63) / 64 * 64;
    /* [pool][table][index], one block of slack to align the pool */
    r->map_bytes = PEACHOS_HEAP_BLOCK_SIZE + pool + table + index;
    void* map = mmap(NULL, r->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "heapmap replay: mmap: %s\n", strerror(errno));
        return -1;
    }
    r->map_base = map;
    uintptr_t start = ((uintptr_t)map + PEACHOS_HEAP_BLOCK_SIZE - 1) / PEACHOS_HEAP_BLOCK_SIZE *
                      PEACHOS_HEAP_BLOCK_SIZE;
    r->entries = (unsigned char*)(start + pool);
    r->table.entries = r->entries;
    r->table.total = blocks;
    r->blocks = blocks;
    int res = heap_create_indexed(&r->heap, (void*)start, (void*)(start + pool), &r->table, r->entries + table,
                                  index);
    if (res < 0) {
        fprintf(stderr, "heapmap replay: heap_create_indexed failed (%d)\n", res);
        return -1;
    }
    return 0;
}

static void rp_snapshot(struct rp* r, const char* label)
{
    if (r->snapshots > 0 && r->last_snapshot == r->ops) {
        return; /* already drawn at this operation */
    }
    if (r->snapshots == RP_MAX_SNAPSHOTS) {
        fprintf(stderr, "heapmap replay: more than %d snapshots; no more drawn\n", RP_MAX_SNAPSHOTS);
        r->snapshots++;
        return;
    }
    if (r->snapshots > RP_MAX_SNAPSHOTS) {
        return;
    }
    r->snapshots++;
    r->last_snapshot = r->ops;
    r->marks[r->nmarks++] = r->ops;
    struct hm_map map;
    if (hm_from_table(r->entries, r->blocks, &map) < 0) {
        return;
    }
    char title[256], prefix[4096];
    snprintf(title, sizeof(title), "%s: after operation %zu%s%s", r->name, r->ops, label[0] ? " - " : "", label);
    snprintf(prefix, sizeof(prefix), "%s-op%06zu", r->o->out, r->ops);
    struct hm_render_options ro = r->o->render;
    ro.title = title;
    printf("snapshot op=%zu label=\"%s\" ", r->ops, label);
    hm_print_stats(stdout, &map);
    printf("\n");
    hm_render(&map, &ro, prefix);
    hm_free(&map);
}

void rp_sample(struct rp* r)
{
    if (r->dat == NULL || r->ops % r->sample_every != 0) {
        return;
    }
    struct heap_stats s;
    heap_get_stats(&r->heap, &s);
    fprintf(r->dat, "%zu %.3f %.3f %.3f %zu\n", r->ops, 100.0 * (double)s.used_blocks / (double)s.total_blocks,
            100.0 * hm_fragmentation(s.free_blocks, s.largest_free_run),
            100.0 * (double)s.largest_free_run / (double)s.total_blocks, s.failed_allocs);
}

/* After each operation: timeline sample and the snapshots asked for. */
static void rp_after_op(struct rp* r)
{
    r->ops++;
    rp_sample(r);
    bool snap = r->o->every != 0 && r->ops % r->o->every == 0;
    for (size_t i = 0; i < r->o->nat; i++) {
        snap = snap || r->o->at[i] == r->ops;
    }
    if (snap) {
        rp_snapshot(r, "");
    }
}

static int rp_check_id(size_t id, size_t line)
{
    if (id >= RP_MAX_ID) {
        fprintf(stderr, "heapmap replay: line %zu: id %zu too large (ids are 0..%u)\n", line, id, RP_MAX_ID - 1);
        return -1;
    }
    return 0;
}

/* m / c: allocate `amount` (bytes for plain, blocks for cache) as `id`. */
int rp_malloc(struct rp* r, size_t id, size_t amount, bool cache, size_t line)
{
    if (rp_check_id(id, line) < 0) {
        return -1;
    }
    if (r->ptr[id] != NULL) {
        fprintf(stderr, "heapmap replay: line %zu: id %zu is still live\n", line, id);
        return -1;
    }
    void* p = cache ? heap_malloc_blocks_typed(&r->heap, amount, HEAP_BLOCK_TYPE_CACHE)
                    : heap_malloc(&r->heap, amount);
    r->ptr[id] = p;
    r->type[id] = cache ? HEAP_BLOCK_TYPE_CACHE : HEAP_BLOCK_TYPE_PLAIN;
    r->known[id] = 1;
    r->failed_ops += p == NULL;
    if (r->record != NULL) {
        fprintf(r->record, "%c %zu %zu\n", cache ? 'c' : 'm', id, amount);
    }
    rp_after_op(r);
    return 0;
}

int rp_free(struct rp* r, size_t id, size_t line)
{
    if (rp_check_id(id, line) < 0) {
        return -1;
    }
    if (!r->known[id]) {
        fprintf(stderr, "heapmap replay: line %zu: id %zu was never allocated\n", line, id);
        return -1;
    }
    /* A free of a failed allocation frees NULL, as real code would. */
    heap_free_typed(&r->heap, r->ptr[id], r->type[id]);
    r->ptr[id] = NULL;
    if (r->record != NULL) {
        fprintf(r->record, "f %zu\n", id);
    }
    rp_after_op(r);
    return 0;
}

void rp_mark(struct rp* r, const char* label)
{
    if (r->record != NULL) {
        fprintf(r->record, "snap %s\n", label);
    }
    rp_snapshot(r, label);
}

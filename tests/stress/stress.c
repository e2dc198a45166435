/*
 * tests/stress/stress.c - concurrency stress of the kernel heap.
 *
 * T threads (default 4) hammer one kernel heap through kheap.c and the
 * hosted port's lock hook (a pthread mutex) for a bounded time:
 *   - kmalloc / kzalloc / kcalloc / kpalloc / krealloc / kfree of mixed
 *     sizes: small objects of every class, and whole-block allocations up
 *     to 64 KiB;
 *   - objects handed to other threads through a lock-free exchange (an
 *     array of atomic pointers): whoever takes one verifies and frees it,
 *     so threads free each other's pointers all the time;
 *   - deliberate bad frees (interior pointers of live objects), which must
 *     be refused and counted, changing nothing;
 *   - kheap_check and kheap_trim now and then, while the others allocate.
 * Every object is filled over its whole usable size (ksize) with a pattern
 * derived from a tag unique to the allocation (stored in its first 8 bytes)
 * and verified before every krealloc, hand-over and free; krealloc must
 * keep the old contents. At the end every object is freed, the spares are
 * trimmed, and the heap must be empty, kheap_check clean, the refused frees
 * exactly the deliberate ones.
 *
 * Usage: stress [--seconds S] [--threads T] [--heap-mib M] [--seed N]
 * (defaults 10 s, 4 threads, 64 MiB; the environment variables
 * STRESS_SECONDS and STRESS_THREADS give other defaults). Prints the figures:
 * threads, operations, seconds, bytes verified. Exit status 0 iff clean.
 */
#define _DEFAULT_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hosted/kheap_hosted.h"
#include "memory/heap/kcache.h"
#include "memory/heap/kheap.h"
#include "status.h"
#include "memory/heap/heap_status.h"

#define MAX_THREADS 64
#define SLOTS 256          /* live objects a thread keeps */
#define EXCHANGE_SLOTS 64  /* objects in transit between threads */
#define CHECK_EVERY 5000   /* ops between two kheap_check of one thread */
#define TRIM_EVERY 10000   /* ops between two kheap_trim of one thread */

enum op_kind
{
    OP_KMALLOC,
    OP_KZALLOC,
    OP_KCALLOC,
    OP_KPALLOC,
    OP_KREALLOC,
    OP_KFREE,
    OP_GIVE,  /* put an object into the exchange */
    OP_TAKE,  /* got one out of it: verified and freed */
    OP_TAKE_OTHER, /* ... allocated by another thread */
    OP_BAD_FREE,
    OP_CHECK,
    OP_TRIM,
    OP_NULL,  /* allocation refused (heap full): allowed, counted */
    OP_KINDS
};

static const char* const op_names[OP_KINDS] = { "kmalloc", "kzalloc", "kcalloc", "kpalloc", "krealloc", "kfree",
                                                "give", "take", "of them another thread's", "bad kfree", "kheap_check", "kheap_trim", "NULL" };

struct object
{
    unsigned char* p;
    size_t size; /* requested */
};

struct thread
{
    pthread_t handle;
    unsigned id;
    uint64_t rng;
    uint64_t next_tag;
    struct object slots[SLOTS];
    unsigned long long ops[OP_KINDS];
    unsigned long long bytes_verified;
    unsigned long long bytes_written;
    unsigned long long errors;
};

static _Atomic(unsigned char*) exchange[EXCHANGE_SLOTS];
static atomic_bool stop;
static atomic_ullong total_errors;

static uint64_t rnd(uint64_t* s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static unsigned char pattern(uint64_t tag, size_t i)
{
    uint64_t x = tag * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
    return (unsigned char)(x >> 56);
}

static void error(struct thread* t, const char* what, const void* p, size_t at)
{
    t->errors++;
    atomic_fetch_add(&total_errors, 1);
    if (t->errors <= 5) {
        fprintf(stderr, "stress: thread %u: %s (object %p, byte %zu)\n", t->id, what, p, at);
    }
}

/* Fill the whole usable size: tag in the first 8 bytes, pattern after. */
static void stamp(struct thread* t, unsigned char* p)
{
    size_t n = ksize(p);
    if (n < sizeof(uint64_t)) {
        error(t, "ksize below 8 bytes", p, n);
        return;
    }
    uint64_t tag = ((uint64_t)t->id << 48) | t->next_tag++;
    memcpy(p, &tag, sizeof(tag));
    for (size_t i = sizeof(tag); i < n; i++) {
        p[i] = pattern(tag, i);
    }
    t->bytes_written += n;
}

/* Verify the first `limit` bytes (SIZE_MAX: the whole usable size). */
static void verify(struct thread* t, const unsigned char* p, size_t limit)
{
    size_t n = ksize(p);
    if (n == 0) {
        error(t, "ksize 0 for a live object", p, 0);
        return;
    }
    if (limit < n) {
        n = limit;
    }
    uint64_t tag;
    memcpy(&tag, p, sizeof(tag));
    for (size_t i = sizeof(tag); i < n; i++) {
        if (p[i] != pattern(tag, i)) {
            error(t, "pattern broken", p, i);
            return;
        }
    }
    t->bytes_verified += n;
}

static size_t pick_size(struct thread* t)
{
    uint64_t r = rnd(&t->rng);
    unsigned kind = (unsigned)(r % 100);
    r >>= 8;
    if (kind < 55) {
        return 1 + r % 256; /* the busy small classes */
    }
    if (kind < 80) {
        return 1 + r % KCACHE_MAX_SIZE; /* any class */
    }
    if (kind < 97) {
        return KCACHE_MAX_SIZE + 1 + r % (4 * PEACHOS_HEAP_BLOCK_SIZE); /* a few blocks */
    }
    return 1 + r % (16 * PEACHOS_HEAP_BLOCK_SIZE); /* up to 64 KiB */
}

static void do_alloc(struct thread* t, struct object* o)
{
    size_t size = pick_size(t);
    unsigned which = (unsigned)(rnd(&t->rng) % 8);
    enum op_kind kind;
    unsigned char* p;
    if (which < 4) {
        kind = OP_KMALLOC;
        p = kmalloc(size);
    } else if (which < 5) {
        kind = OP_KZALLOC;
        p = kzalloc(size);
    } else if (which < 6) {
        kind = OP_KCALLOC;
        size = (size + 3) / 4 * 4;
        p = kcalloc(size / 4, 4);
    } else if (which < 7) {
        kind = OP_KPALLOC;
        p = kpalloc(size);
    } else {
        kind = OP_KREALLOC;
        p = krealloc(NULL, size);
    }
    t->ops[kind]++;
    if (p == NULL) {
        t->ops[OP_NULL]++;
        return;
    }
    if (kind == OP_KZALLOC || kind == OP_KCALLOC) {
        for (size_t i = 0; i < size; i++) {
            if (p[i] != 0) {
                error(t, "kzalloc/kcalloc memory not zero", p, i);
                break;
            }
        }
        t->bytes_verified += size;
    }
    if (kind == OP_KPALLOC && ((uintptr_t)p % PEACHOS_HEAP_BLOCK_SIZE) != 0) {
        error(t, "kpalloc not block-aligned", p, 0);
    }
    if (ksize(p) < size) {
        error(t, "ksize below the requested size", p, size);
    }
    stamp(t, p);
    o->p = p;
    o->size = size;
}

static void do_realloc(struct thread* t, struct object* o)
{
    size_t size = pick_size(t);
    verify(t, o->p, SIZE_MAX);
    uint64_t tag;
    memcpy(&tag, o->p, sizeof(tag));
    size_t old_usable = ksize(o->p);
    t->ops[OP_KREALLOC]++;
    unsigned char* p = krealloc(o->p, size);
    if (p == NULL) {
        t->ops[OP_NULL]++;
        verify(t, o->p, SIZE_MAX); /* untouched */
        return;
    }
    /* The old contents survive up to the smaller of the two sizes. */
    uint64_t kept;
    memcpy(&kept, p, sizeof(kept));
    if (kept != tag) {
        error(t, "krealloc lost the tag", p, 0);
    } else {
        verify(t, p, size < old_usable ? size : old_usable);
    }
    stamp(t, p);
    o->p = p;
    o->size = size;
}

static void do_free(struct thread* t, struct object* o)
{
    verify(t, o->p, SIZE_MAX);
    kfree(o->p);
    t->ops[OP_KFREE]++;
    o->p = NULL;
}

/* Hand o over to whoever comes next; take what was there. */
static void do_give(struct thread* t, struct object* o)
{
    verify(t, o->p, SIZE_MAX);
    size_t k = (size_t)(rnd(&t->rng) % EXCHANGE_SLOTS);
    unsigned char* old = atomic_exchange(&exchange[k], o->p);
    t->ops[OP_GIVE]++;
    o->p = NULL;
    if (old != NULL) {
        verify(t, old, SIZE_MAX); /* most likely another thread's */
        uint64_t tag;
        memcpy(&tag, old, sizeof(tag));
        t->ops[OP_TAKE_OTHER] += (tag >> 48) != t->id;
        kfree(old);
        t->ops[OP_TAKE]++;
    }
}

static void do_bad_free(struct thread* t, struct object* o)
{
    /* An interior pointer of a live object: refused, nothing changes. */
    size_t n = ksize(o->p);
    size_t off = 1 + (size_t)(rnd(&t->rng) % (n - 1));
    kfree(o->p + off);
    t->ops[OP_BAD_FREE]++;
    verify(t, o->p, SIZE_MAX);
}

static void* worker(void* arg)
{
    struct thread* t = (struct thread*)arg;
    unsigned long long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        struct object* o = &t->slots[rnd(&t->rng) % SLOTS];
        unsigned r = (unsigned)(rnd(&t->rng) % 100);
        if (o->p == NULL) {
            do_alloc(t, o);
        } else if (r < 30) {
            do_realloc(t, o);
        } else if (r < 65) {
            do_free(t, o);
        } else if (r < 99) {
            do_give(t, o);
        } else {
            do_bad_free(t, o);
        }
        n++;
        if (n % CHECK_EVERY == 0) {
            size_t bad = 0;
            int res = kheap_check(&bad);
            t->ops[OP_CHECK]++;
            if (res != 0) {
                error(t, "kheap_check failed under load", NULL, bad);
            }
        }
        if (n % TRIM_EVERY == 0) {
            kheap_trim();
            t->ops[OP_TRIM]++;
        }
    }
    for (size_t i = 0; i < SLOTS; i++) {
        if (t->slots[i].p != NULL) {
            do_free(t, &t->slots[i]);
        }
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long env_or(const char* name, unsigned long fallback)
{
    const char* v = getenv(name);
    return v != NULL && *v != '\0' ? strtoul(v, NULL, 10) : fallback;
}

int main(int argc, char** argv)
{
    double seconds = (double)env_or("STRESS_SECONDS", 10);
    unsigned threads = (unsigned)env_or("STRESS_THREADS", 4);
    size_t heap_mib = 64;
    uint64_t seed = 20261125;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0) {
            seconds = strtod(argv[i + 1], NULL);
        } else if (strcmp(argv[i], "--threads") == 0) {
            threads = (unsigned)strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--heap-mib") == 0) {
            heap_mib = strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0) {
            seed = strtoull(argv[i + 1], NULL, 10);
        } else {
            fprintf(stderr, "usage: stress [--seconds S] [--threads T] [--heap-mib M] [--seed N]\n");
            return 2;
        }
    }
    if (argc % 2 == 0 || threads == 0 || threads > MAX_THREADS || seconds <= 0 || heap_mib == 0) {
        fprintf(stderr, "usage: stress [--seconds S] [--threads T (1..%d)] [--heap-mib M] [--seed N]\n",
                MAX_THREADS);
        return 2;
    }

    struct kheap_hosted_config config = { heap_mib << 20, true, false, true };
    kheap_hosted_configure(&config);
    kheap_init();
    if (!kheap_ready()) {
        fprintf(stderr, "stress: kheap_init failed\n");
        return 1;
    }
    static struct thread t[MAX_THREADS];
    double start = now();
    for (unsigned i = 0; i < threads; i++) {
        t[i].id = i;
        t[i].rng = seed * 0x9E3779B97F4A7C15ull + i + 1;
        if (pthread_create(&t[i].handle, NULL, worker, &t[i]) != 0) {
            fprintf(stderr, "stress: pthread_create failed\n");
            return 1;
        }
    }
    struct timespec nap = { 0, 50 * 1000 * 1000 };
    while (now() - start < seconds) {
        nanosleep(&nap, NULL);
    }
    atomic_store(&stop, true);
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(t[i].handle, NULL);
    }
    double elapsed = now() - start;

    /* What is still in the exchange: verified and freed by main. */
    struct thread drain;
    memset(&drain, 0, sizeof(drain));
    drain.id = threads;
    for (size_t k = 0; k < EXCHANGE_SLOTS; k++) {
        unsigned char* p = atomic_exchange(&exchange[k], NULL);
        if (p != NULL) {
            verify(&drain, p, SIZE_MAX);
            kfree(p);
            drain.ops[OP_TAKE]++;
            drain.ops[OP_TAKE_OTHER]++;
        }
    }

    unsigned long long ops[OP_KINDS] = { 0 };
    unsigned long long verified = drain.bytes_verified, written = 0, total = 0;
    for (unsigned i = 0; i <= threads; i++) {
        const struct thread* w = i < threads ? &t[i] : &drain;
        for (int k = 0; k < OP_KINDS; k++) {
            ops[k] += w->ops[k];
        }
        if (i < threads) {
            verified += w->bytes_verified;
            written += w->bytes_written;
        }
    }
    for (int k = 0; k < OP_KINDS; k++) {
        if (k != OP_NULL && k != OP_TAKE && k != OP_TAKE_OTHER) {
            total += ops[k];
        }
    }

    /* The end state: empty, sound, only the deliberate bad frees refused. */
    size_t trimmed = kheap_trim();
    size_t bad = 0;
    int check = kheap_check(&bad);
    const struct heap* h = kheap_get();
    struct kcache_stats st;
    kcache_get_stats(kheap_cache(), &st);
    bool ok = atomic_load(&total_errors) == 0;
    if (check != 0) {
        fprintf(stderr, "stress: kheap_check at the end: %d at block %zu\n", check, bad);
        ok = false;
    }
    bool empty = h->used_blocks == 0 && h->live_allocations == 0 && st.objects == 0 && st.slabs == 0;
    if (!empty) {
        fprintf(stderr, "stress: not empty at the end: %zu blocks, %zu allocations, %zu objects, %zu slabs\n",
                h->used_blocks, h->live_allocations, st.objects, st.slabs);
        ok = false;
    }
    bool refusals_deliberate =
        h->rejected_frees == ops[OP_BAD_FREE] && kheap_hosted_report_count() == ops[OP_BAD_FREE];
    if (!refusals_deliberate) {
        fprintf(stderr, "stress: %zu frees refused, %zu reported, %llu deliberate bad frees\n", h->rejected_frees,
                kheap_hosted_report_count(), ops[OP_BAD_FREE]);
        ok = false;
    }
    if (st.corruptions != 0 || st.use_after_free != 0) {
        fprintf(stderr, "stress: %zu corruptions, %zu use-after-free detected\n", st.corruptions, st.use_after_free);
        ok = false;
    }

    printf("stress: %u threads, %.1f s, %llu operations (%.0f ops/s), heap %zu MiB\n", threads, elapsed, total,
           (double)total / elapsed, heap_mib);
    printf("stress:");
    for (int k = 0; k < OP_KINDS; k++) {
        printf("%s %llu %s", k == 0 ? "" : ",", ops[k], op_names[k]);
    }
    printf("\nstress: %llu bytes written, %llu bytes verified; %zu blocks trimmed at the end\n", written, verified,
           trimmed);
    printf("stress: end state: heap %s, kheap_check %s, %zu refused frees (%s), errors %llu: %s\n",
           empty ? "empty" : "NOT empty", check == 0 ? "clean" : "FAILED", h->rejected_frees,
           refusals_deliberate ? "all deliberate" : "NOT all deliberate", atomic_load(&total_errors),
           ok ? "passed" : "FAILED");
    return ok ? 0 : 1;
}

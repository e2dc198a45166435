/*
 * test_kheap.c - the kernel heap (kheap.c) on the hosted port
 * (src/hosted/kheap_port.c): kheap_init success and failure, kmalloc,
 * kzalloc, kfree, kheap_get, kheap_lock/kheap_unlock, reports.
 *
 * Block-level expectations use sizes above 2048 bytes: those are whole
 * blocks with the seed's encoding whether or not small-object caches sit
 * in front of the heap (kcache).
 */
#include "unit.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hosted/kheap_hosted.h"

#define BIG (3 * 4096)  /* 3 whole blocks */
#define MIB ((size_t)1 << 20)

static void configure_quiet(size_t heap_bytes, bool indexed, bool fail_init, bool quiet)
{
    struct kheap_hosted_config config;
    memset(&config, 0, sizeof(config));
    config.heap_bytes = heap_bytes;
    config.indexed = indexed;
    config.fail_init = fail_init;
    config.quiet = quiet;
    kheap_hosted_configure(&config);
}

/* Reports are recorded but not printed (except where a test captures them). */
static void configure(size_t heap_bytes, bool indexed, bool fail_init)
{
    configure_quiet(heap_bytes, indexed, fail_init, true);
}

/* Redirect stderr (fd 2) to a temporary file between begin and end; end returns what was written. */
struct stderr_capture
{
    int saved;
    FILE* file;
    char text[1024];
};

static void stderr_begin(struct stderr_capture* c)
{
    fflush(stderr);
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved = dup(2);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->file), 2) >= 0);
}

static const char* stderr_end(struct stderr_capture* c)
{
    fflush(stderr);
    assert_true(dup2(c->saved, 2) >= 0);
    close(c->saved);
    rewind(c->file);
    size_t n = fread(c->text, 1, sizeof(c->text) - 1, c->file);
    c->text[n] = '\0';
    fclose(c->file);
    return c->text;
}

static const HEAP_BLOCK_TABLE_ENTRY* entry_of(const void* ptr)
{
    struct heap* heap = kheap_get();
    assert_non_null(heap);
    return &heap->table->entries[heap_address_to_block(heap, ptr)];
}

static void assert_kheap_clean(void)
{
    struct heap* heap = kheap_get();
    assert_non_null(heap);
    unit_assert_clean(heap);
}

static void test_init_default_heap(void** state)
{
    (void)state;
    configure(PEACHOS_HEAP_SIZE_BYTES, true, false);
    kheap_init();
    assert_true(kheap_ready());
    struct heap* heap = kheap_get();
    assert_non_null(heap);
    assert_int_equal(heap->table->total, PEACHOS_HEAP_SIZE_BYTES / PEACHOS_HEAP_BLOCK_SIZE);
    assert_int_equal(heap->table->total, 25600);
    assert_int_equal((uintptr_t)heap->saddr % UNIT_BS, 0);
    /* The port offers index memory; kheap uses it only if built with the index. */
    assert_true(PEACHOS_KHEAP_INDEX ? heap->index != NULL : heap->index == NULL);
    assert_non_null(heap->report); /* refused frees reach the port */
    struct heap_stats st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.total_blocks, 25600);
    assert_int_equal(st.free_blocks, 25600);
    assert_int_equal(st.largest_free_run, 25600);
    assert_int_equal(st.live_allocations, 0);
    for (size_t i = 0; i < 25600; i++) {
        assert_int_equal(heap->table->entries[i], 0);
    }
    assert_kheap_clean();
}

static void test_init_without_index_and_odd_size(void** state)
{
    (void)state;
    configure(5 * UNIT_BS + 100, false, false); /* rounded down to 5 blocks */
    kheap_init();
    assert_true(kheap_ready());
    struct heap* heap = kheap_get();
    assert_int_equal(heap->table->total, 5);
    assert_null(heap->index);
    void* a = kmalloc(2 * UNIT_BS);
    void* b = kmalloc(3 * UNIT_BS);
    assert_ptr_equal(a, heap->saddr);
    assert_ptr_equal(b, (char*)heap->saddr + 2 * UNIT_BS);
    unit_assert_table(heap, "C1 01 C1 81 01");
    assert_null(kmalloc(UNIT_BS + 1)); /* full */
    kfree(a);
    unit_assert_table(heap, "00 00 C1 81 01");
    assert_null(kmalloc(3 * UNIT_BS)); /* only 2 free blocks in front */
    kfree(b);
    unit_assert_table(heap, "00 00 00 00 00");
    assert_kheap_clean();
}

static void test_kmalloc_blocks(void** state)
{
    (void)state;
    configure(64 * UNIT_BS, true, false);
    kheap_init();
    struct heap* heap = kheap_get();
    char* start = (char*)heap->saddr;
    void* a = kmalloc(BIG);
    void* b = kmalloc(UNIT_BS);
    void* c = kmalloc(2 * UNIT_BS + 1);
    assert_ptr_equal(a, start);
    assert_ptr_equal(b, start + 3 * UNIT_BS);
    assert_ptr_equal(c, start + 4 * UNIT_BS);
    assert_memory_equal(entry_of(a), "\xC1\x81\x01\x41\xC1\x81\x01\x00", 8);
    /* The memory is really there: write every byte. */
    memset(a, 0xAB, BIG);
    memset(c, 0xCD, 2 * UNIT_BS + 1);
    kfree(a);
    assert_memory_equal(entry_of(a), "\x00\x00\x00\x41\xC1\x81\x01\x00", 8);
    void* d = kmalloc(2 * UNIT_BS); /* first fit: the freed hole */
    assert_ptr_equal(d, start);
    kfree(d);
    kfree(b);
    kfree(c);
    assert_int_equal(heap->used_blocks, 0);
    assert_int_equal(heap->rejected_frees, 0);
    assert_kheap_clean();
}

static void test_kmalloc_small_sizes(void** state)
{
    (void)state;
    configure(64 * UNIT_BS, true, false);
    kheap_init();
    static const size_t sizes[] = { 1, 7, 16, 100, 2048, 2049, 4095 };
    void* p[sizeof(sizes) / sizeof(sizes[0])];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        p[i] = kmalloc(sizes[i]);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        memset(p[i], (int)i + 1, sizes[i]);
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) { /* no overlap */
        const unsigned char* bytes = p[i];
        for (size_t j = 0; j < sizes[i]; j++) {
            assert_int_equal(bytes[j], i + 1);
        }
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        kfree(p[i]);
    }
    assert_int_equal(kheap_get()->rejected_frees, 0);
    assert_kheap_clean();
}

static void test_kmalloc_refusals(void** state)
{
    (void)state;
    configure(16 * UNIT_BS, true, false);
    kheap_init();
    struct heap* heap = kheap_get();
    assert_null(kmalloc(0));
    assert_null(kmalloc(SIZE_MAX));
    assert_null(kmalloc(SIZE_MAX - 4095));
    assert_null(kmalloc(17 * UNIT_BS));
    assert_null(kzalloc(0));
    assert_null(kzalloc(SIZE_MAX));
    assert_int_equal(heap->used_blocks, 0);
    void* all = kmalloc(16 * UNIT_BS);
    assert_ptr_equal(all, heap->saddr);
    kfree(all);
    assert_kheap_clean();
}

/* kzalloc zeroes the requested bytes, also in memory that was used before. */
static void test_kzalloc_zeroes(void** state)
{
    (void)state;
    configure(16 * UNIT_BS, true, false);
    kheap_init();
    unsigned char* p = kmalloc(BIG);
    assert_non_null(p);
    memset(p, 0xFF, BIG);
    kfree(p);
    unsigned char* q = kzalloc(BIG);
    assert_ptr_equal(q, p); /* first fit: the same blocks */
    for (size_t i = 0; i < BIG; i++) {
        assert_int_equal(q[i], 0);
    }
    kfree(q);
    /* A size that is not a whole number of blocks: its bytes are zero. */
    p = kmalloc(5000);
    memset(p, 0xEE, 5000);
    kfree(p);
    q = kzalloc(5000);
    assert_ptr_equal(q, p);
    for (size_t i = 0; i < 5000; i++) {
        assert_int_equal(q[i], 0);
    }
    kfree(q);
    /* Small sizes too. */
    for (size_t size = 1; size <= 300; size += 37) {
        p = kmalloc(size);
        memset(p, 0xDD, size);
        kfree(p);
        q = kzalloc(size);
        assert_non_null(q);
        for (size_t i = 0; i < size; i++) {
            assert_int_equal(q[i], 0);
        }
        kfree(q);
    }
    assert_int_equal(kheap_get()->rejected_frees, 0);
    assert_kheap_clean();
}

static void test_kfree_null(void** state)
{
    (void)state;
    configure(8 * UNIT_BS, true, false);
    kheap_init();
    void* a = kmalloc(BIG);
    size_t reports = kheap_hosted_report_count();
    struct heap before = *kheap_get();
    kfree(NULL);
    assert_int_equal(kheap_hosted_report_count(), reports);
    assert_memory_equal(kheap_get(), &before, sizeof(before));
    unit_assert_table(kheap_get(), "C1 81 01 00 00 00 00 00");
    kfree(a);
}

/* A refused kfree: reported through the port (counted, last report kept), heap unchanged. */
static void assert_kfree_refused_(void* ptr, enum heap_report_kind kind, size_t block, const char* file, int line)
{
    struct heap* heap = kheap_get();
    struct unit_snapshot before;
    unit_snapshot_take(heap, &before);
    size_t reports = kheap_hosted_report_count();
    kfree(ptr);
    struct heap_report last = kheap_hosted_last_report();
    bool ok = kheap_hosted_report_count() == reports + 1 && last.kind == kind && last.ptr == ptr &&
              last.block == block && heap->rejected_frees == before.rejected_frees + 1 &&
              heap->used_blocks == before.used_blocks && heap->live_allocations == before.live_allocations &&
              memcmp(before.entries, heap->table->entries, before.total) == 0;
    if (!ok) {
        print_error("kfree(%p): want kind %d block %zu, got %zu reports, last kind %d ptr %p block %zu\n", ptr,
                    (int)kind, block, kheap_hosted_report_count() - reports, (int)last.kind, last.ptr, last.block);
        _fail(file, line);
    }
}
#define assert_kfree_refused(ptr, kind, block) assert_kfree_refused_((ptr), (kind), (block), __FILE__, __LINE__)

static void test_kfree_bad_pointers_reported(void** state)
{
    (void)state;
    configure(8 * UNIT_BS, false, false);
    kheap_init();
    struct heap* heap = kheap_get();
    char* start = (char*)heap->saddr;
    char* a = kmalloc(BIG);
    assert_ptr_equal(a, start);
    int local = 0;
    assert_kfree_refused(a + UNIT_BS, HEAP_REPORT_FREE_INTERIOR, 1);
    assert_kfree_refused(a + 2 * UNIT_BS, HEAP_REPORT_FREE_INTERIOR, 2);
    assert_kfree_refused(a + 8, HEAP_REPORT_FREE_UNALIGNED, 0);
    assert_kfree_refused(start + 5 * UNIT_BS, HEAP_REPORT_FREE_NOT_ALLOCATED, 5);
    assert_kfree_refused(&local, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
    assert_kfree_refused(start + 8 * UNIT_BS, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
    assert_kfree_refused(start - UNIT_BS, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
    kfree(a);
    unit_assert_table(heap, "00 00 00 00 00 00 00 00");
    assert_kfree_refused(a, HEAP_REPORT_FREE_NOT_ALLOCATED, 0); /* double free */
    assert_int_equal(heap->rejected_frees, 8);
    assert_kheap_clean();
}

/* Without quiet, the hosted port prints each refused free on stderr. */
static void test_kfree_report_printed(void** state)
{
    (void)state;
    configure_quiet(8 * UNIT_BS, true, false, false);
    kheap_init();
    char* a = kmalloc(BIG);
    struct stderr_capture cap;
    stderr_begin(&cap);
    kfree(a + UNIT_BS);
    const char* text = stderr_end(&cap);
    assert_non_null(strstr(text, "kheap: refused free"));
    kfree(a);
    configure(8 * UNIT_BS, true, false); /* quiet again */
}

/* kheap_init failure: says so, and everything after is harmless. */
static void test_init_failure(void** state)
{
    (void)state;
    configure(16 * UNIT_BS, true, false);
    kheap_init();
    void* old = kmalloc(BIG);
    assert_non_null(old);

    configure(16 * UNIT_BS, true, true); /* the platform fails */
    struct stderr_capture cap;
    stderr_begin(&cap);
    kheap_init();
    const char* text = stderr_end(&cap);
    assert_non_null(strstr(text, "kheap: failed to create heap"));
    assert_false(kheap_ready());
    assert_null(kheap_get());
    assert_null(kmalloc(1));
    assert_null(kmalloc(BIG));
    assert_null(kzalloc(100));
    size_t reports = kheap_hosted_report_count();
    kfree(NULL);
    kfree(old); /* memory of the previous heap: ignored, not reported */
    int local;
    kfree(&local);
    assert_int_equal(kheap_hosted_report_count(), reports);
    uintptr_t s = kheap_lock(); /* the lock still works */
    kheap_unlock(s);

    /* A working platform again: a fresh heap. */
    configure(16 * UNIT_BS, true, false);
    kheap_init();
    assert_true(kheap_ready());
    assert_non_null(kheap_get());
    assert_int_equal(kheap_get()->used_blocks, 0);
    void* p = kmalloc(BIG);
    assert_ptr_equal(p, kheap_get()->saddr);
    kfree(p);
    assert_kheap_clean();
}

/* A pool smaller than one block (heap_create refuses) or too large to map:
 * kheap_init says so. */
static void test_init_failure_too_small(void** state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, UNIT_BS - 1 };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        configure(sizes[k], false, false);
        struct stderr_capture cap;
        stderr_begin(&cap);
        kheap_init();
        const char* text = stderr_end(&cap);
        assert_non_null(strstr(text, "kheap: failed to create heap"));
        assert_false(kheap_ready());
        assert_null(kheap_get());
        assert_null(kmalloc(1));
    }
    /* A pool the host cannot map (mmap fails): the same clear failure. */
    static const size_t huge[] = { (size_t)1 << 60, SIZE_MAX - 4095, SIZE_MAX };
    for (size_t k = 0; k < sizeof(huge) / sizeof(huge[0]); k++) {
        configure(huge[k], k == 0, false);
        struct stderr_capture cap;
        stderr_begin(&cap);
        kheap_init();
        assert_non_null(strstr(stderr_end(&cap), "kheap: failed to create heap"));
        assert_false(kheap_ready());
        assert_null(kmalloc(1));
    }
    configure(UNIT_BS, false, false); /* exactly one block works */
    kheap_init();
    assert_true(kheap_ready());
    assert_int_equal(kheap_get()->table->total, 1);
    void* p = kmalloc(UNIT_BS);
    assert_ptr_equal(p, kheap_get()->saddr);
    unit_assert_table(kheap_get(), "41");
    kfree(p);
}

/* kheap_init again forgets every allocation. */
static void test_init_again_forgets(void** state)
{
    (void)state;
    configure(8 * UNIT_BS, true, false);
    kheap_init();
    assert_non_null(kmalloc(BIG));
    assert_non_null(kmalloc(BIG));
    assert_int_equal(kheap_get()->used_blocks, 6);
    kheap_init();
    assert_true(kheap_ready());
    assert_int_equal(kheap_get()->used_blocks, 0);
    assert_int_equal(kheap_get()->live_allocations, 0);
    assert_int_equal(kheap_get()->rejected_frees, 0);
    unit_assert_table(kheap_get(), "00 00 00 00 00 00 00 00");
    assert_kheap_clean();
}

/* kheap_lock / kheap_unlock pair up (a second lock would deadlock otherwise)
 * and kheap operations work between pairs. */
static void test_lock_unlock(void** state)
{
    (void)state;
    configure(8 * UNIT_BS, true, false);
    kheap_init();
    for (int i = 0; i < 3; i++) {
        uintptr_t s = kheap_lock();
        struct heap_stats st;
        heap_get_stats(kheap_get(), &st);
        assert_int_equal(st.total_blocks, 8);
        assert_int_equal(heap_check(kheap_get(), NULL), 0);
        kheap_unlock(s);
        void* p = kmalloc(BIG);
        assert_non_null(p);
        kfree(p);
    }
}

/* Threads allocating and freeing at once: the lock keeps the heap consistent. */
struct worker
{
    unsigned id;
    size_t errors;
};

static void* worker_main(void* arg)
{
    struct worker* w = (struct worker*)arg;
    uint64_t rng = 12345u + w->id;
    unsigned char* live[8] = { 0 };
    size_t sizes[8] = { 0 };
    for (int op = 0; op < 3000; op++) {
        size_t slot = unit_rand(&rng) % 8;
        if (live[slot] != NULL) {
            for (size_t i = 0; i < sizes[slot]; i += 97) { /* nobody else wrote here */
                if (live[slot][i] != (unsigned char)(w->id * 16 + slot)) {
                    w->errors++;
                    break;
                }
            }
            kfree(live[slot]);
            live[slot] = NULL;
        } else {
            sizes[slot] = 2049 + unit_rand(&rng) % (3 * UNIT_BS);
            live[slot] = kmalloc(sizes[slot]);
            if (live[slot] != NULL) {
                memset(live[slot], (int)(w->id * 16 + slot), sizes[slot]);
            }
        }
    }
    for (size_t slot = 0; slot < 8; slot++) {
        kfree(live[slot]);
    }
    return NULL;
}

static void test_threads(void** state)
{
    (void)state;
    configure(256 * UNIT_BS, true, false);
    kheap_init();
    size_t reports = kheap_hosted_report_count();
    pthread_t threads[4];
    struct worker workers[4];
    for (unsigned i = 0; i < 4; i++) {
        workers[i].id = i;
        workers[i].errors = 0;
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].errors, 0);
    }
    assert_int_equal(kheap_hosted_report_count(), reports);
    struct heap* heap = kheap_get();
    assert_int_equal(heap->used_blocks, 0);
    assert_int_equal(heap->live_allocations, 0);
    assert_int_equal(heap->rejected_frees, 0);
    assert_kheap_clean();
}

/*
 * The hosted port puts a guard page between the pool and the table: a write
 * one byte past the pool's end faults (in a child process, whose SIGSEGV
 * handler exits 42) instead of silently rewriting the table or the index.
 */
static void guard_exit(int sig)
{
    (void)sig;
    _exit(42);
}

static void test_overrun_past_pool_faults(void** state)
{
    (void)state;
    configure(64 * 4096, true, false);
    kheap_init();
    unsigned char* end = (unsigned char*)kheap_get()->saddr + 64 * 4096;
    assert_ptr_equal(kheap_get()->table->entries, end + sysconf(_SC_PAGESIZE)); /* table after the guard */
    fflush(NULL);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = guard_exit;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        *(volatile unsigned char*)end = 0xAA; /* one byte past the last block */
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
    assert_kheap_clean();
}

/* A test that fails while holding the lock jumps out without unlocking;
 * the next test's configure + kheap_init must not block for ever. */
static void test_lock_left_held(void** state)
{
    (void)state;
    configure(8 * UNIT_BS, true, false);
    kheap_init();
    (void)kheap_lock(); /* and never kheap_unlock, as a failed assertion would */
    configure(8 * UNIT_BS, true, false);
    kheap_init(); /* would block here */
    assert_true(kheap_ready());
    void* p = kmalloc(1);
    assert_non_null(p);
    kfree(p);
    unit_assert_clean(kheap_get());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_default_heap),
        cmocka_unit_test(test_init_without_index_and_odd_size),
        cmocka_unit_test(test_kmalloc_blocks),
        cmocka_unit_test(test_kmalloc_small_sizes),
        cmocka_unit_test(test_kmalloc_refusals),
        cmocka_unit_test(test_kzalloc_zeroes),
        cmocka_unit_test(test_kfree_null),
        cmocka_unit_test(test_kfree_bad_pointers_reported),
        cmocka_unit_test(test_kfree_report_printed),
        cmocka_unit_test(test_init_failure),
        cmocka_unit_test(test_init_failure_too_small),
        cmocka_unit_test(test_init_again_forgets),
        cmocka_unit_test(test_lock_unlock),
        cmocka_unit_test(test_lock_left_held),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_overrun_past_pool_faults),
    };
    return cmocka_run_group_tests_name("kheap", tests, NULL, NULL);
}

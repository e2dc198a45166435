/*
 * test_memory.c - memset, memcpy and memcmp of src/memory/memory.c.
 *
 * The tests call the library's functions through volatile function pointers,
 * so the compiler cannot replace the calls with its builtins: what runs is
 * the code in memory.c (which, linked into this program, is also the memset
 * every other caller here gets).
 */
#include "unit.h"

#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

static void* (*volatile memset_fn)(void*, int, size_t) = memset;
static void* (*volatile memcpy_fn)(void*, const void*, size_t) = memcpy;
static int (*volatile memcmp_fn)(const void*, const void*, size_t) = memcmp;

#define GUARD 0x5C

static void test_memset_returns_ptr(void** state)
{
    (void)state;
    unsigned char buf[32];
    assert_ptr_equal(memset_fn(buf, 0, sizeof(buf)), buf);
    assert_ptr_equal(memset_fn(buf + 3, 1, 5), buf + 3);
    assert_ptr_equal(memset_fn(buf + 7, 1, 0), buf + 7);
}

static void test_memset_size_zero_writes_nothing(void** state)
{
    (void)state;
    unsigned char buf[16];
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (unsigned char)(0x30 + i);
    }
    unsigned char copy[16];
    for (size_t i = 0; i < sizeof(buf); i++) {
        copy[i] = buf[i];
    }
    for (size_t off = 0; off < sizeof(buf); off++) {
        assert_ptr_equal(memset_fn(buf + off, 0xAA, 0), buf + off);
    }
    assert_memory_equal(buf, copy, sizeof(buf));
}

static void test_memset_one_byte(void** state)
{
    (void)state;
    for (size_t off = 0; off < 16; off++) {
        unsigned char buf[24];
        for (size_t i = 0; i < sizeof(buf); i++) {
            buf[i] = GUARD;
        }
        memset_fn(buf + off, 0x7E, 1);
        for (size_t i = 0; i < sizeof(buf); i++) {
            assert_int_equal(buf[i], i == off ? 0x7E : GUARD);
        }
    }
}

/* Every start alignment (0..15) and every size 0..100: exactly the range. */
static void test_memset_all_offsets_and_sizes(void** state)
{
    (void)state;
    unsigned char* buf = unit_xmalloc(160);
    for (size_t off = 0; off < 16; off++) {
        for (size_t size = 0; size <= 100; size++) {
            for (size_t i = 0; i < 160; i++) {
                buf[i] = GUARD;
            }
            assert_ptr_equal(memset_fn(buf + off, 0xA3, size), buf + off);
            for (size_t i = 0; i < 160; i++) {
                int want = (i >= off && i < off + size) ? 0xA3 : GUARD;
                if (buf[i] != want) {
                    print_error("off %zu size %zu: byte %zu is %02X\n", off, size, i, buf[i]);
                }
                assert_int_equal(buf[i], want);
            }
        }
    }
    free(buf);
}

/* c is converted to unsigned char: only its low 8 bits count. */
static void test_memset_truncates_value(void** state)
{
    (void)state;
    static const struct
    {
        int c;
        unsigned char byte;
    } cases[] = {
        { 0, 0x00 },       { 0xFF, 0xFF },       { 0x1AB, 0xAB },   { 0x100, 0x00 },
        { -1, 0xFF },      { -2, 0xFE },         { -256, 0x00 },    { INT_MAX, 0xFF },
        { INT_MIN, 0x00 }, { 0x12345680, 0x80 }, { 0x7F, 0x7F },    { 0x80, 0x80 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        unsigned char buf[40];
        for (size_t i = 0; i < sizeof(buf); i++) {
            buf[i] = GUARD;
        }
        memset_fn(buf + 1, cases[k].c, 37); /* unaligned head, word body, tail */
        assert_int_equal(buf[0], GUARD);
        assert_int_equal(buf[38], GUARD);
        assert_int_equal(buf[39], GUARD);
        for (size_t i = 1; i < 38; i++) {
            assert_int_equal(buf[i], cases[k].byte);
        }
    }
}

static void test_memset_large_buffer(void** state)
{
    (void)state;
    size_t size = (1u << 20) + 13;
    unsigned char* buf = unit_xmalloc(size + 6);
    for (size_t i = 0; i < size + 6; i++) {
        buf[i] = GUARD;
    }
    memset_fn(buf + 3, 0x11, size);
    assert_int_equal(buf[0], GUARD);
    assert_int_equal(buf[1], GUARD);
    assert_int_equal(buf[2], GUARD);
    for (size_t i = 3; i < size + 3; i++) {
        if (buf[i] != 0x11) {
            print_error("byte %zu is %02X\n", i, buf[i]);
            fail();
        }
    }
    assert_int_equal(buf[size + 3], GUARD);
    assert_int_equal(buf[size + 4], GUARD);
    assert_int_equal(buf[size + 5], GUARD);
    free(buf);
}

/*
 * A size beyond INT_MAX and UINT32_MAX: the seed's `int i` counter overflows
 * at 2^31 (undefined behaviour; in practice it writes before the buffer).
 *
 * Writing 4 GiB of distinct memory would be slow and greedy, so the first
 * 4 GiB of the range are 2 MiB of a memfd mapped 2048 times (every chunk
 * aliases the same physical pages) and only the last two pages are distinct
 * anonymous memory. memset must write right up to the end of the range and
 * not one byte further. Skipped under valgrind (it would take minutes); the
 * plain and ASan steps run it.
 */
static void test_memset_beyond_int_and_uint32_max(void** state)
{
    (void)state;
#if SIZE_MAX <= UINT32_MAX
    skip(); /* a 32-bit host cannot map more than 4 GiB */
#else
    if (getenv("UNIT_VALGRIND") != NULL) {
        skip();
    }
    const size_t chunk = (size_t)2 << 20;
    const size_t aliased = (size_t)1 << 32;
    const size_t tail = 2 * 4096;
    const size_t total = aliased + tail;
    unsigned char* base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(base != MAP_FAILED);
    int fd = memfd_create("unit-memset", 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)chunk), 0);
    for (size_t off = 0; off < aliased; off += chunk) {
        void* m = mmap(base + off, chunk, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, 0);
        assert_ptr_equal(m, base + off);
    }
    void* t = mmap(base + aliased, tail, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    assert_ptr_equal(t, base + aliased);

    /* From base + 1 (unaligned) to base + aliased + 4113 (exclusive). */
    size_t size = aliased + 4112;
    assert_true(size > (size_t)INT_MAX && size > (size_t)UINT32_MAX);
    assert_ptr_equal(memset_fn(base + 1, 0xA5, size), base + 1);

    unsigned char* last = base + aliased;
    for (size_t i = 0; i < tail; i++) {
        int want = i < 4113 ? 0xA5 : 0x00;
        if (last[i] != want) {
            print_error("tail byte %zu is %02X, want %02X\n", i, last[i], want);
            fail();
        }
    }
    for (size_t i = 0; i < chunk; i++) { /* the shared pages: all written */
        if (base[i] != 0xA5) {
            print_error("aliased byte %zu is %02X\n", i, base[i]);
            fail();
        }
    }
    assert_int_equal(munmap(base, total), 0);
    close(fd);
#endif
}

static void test_memcpy_returns_dst_and_size_zero(void** state)
{
    (void)state;
    unsigned char src[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    unsigned char dst[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
    assert_ptr_equal(memcpy_fn(dst, src, 0), dst);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(dst[i], 9);
    }
    assert_ptr_equal(memcpy_fn(dst + 2, src, 3), dst + 2);
    unsigned char want[8] = { 9, 9, 1, 2, 3, 9, 9, 9 };
    assert_memory_equal(dst, want, 8);
}

/* Every source/destination alignment and size 0..80, every byte value. */
static void test_memcpy_all_offsets_and_sizes(void** state)
{
    (void)state;
    unsigned char src[128];
    unsigned char dst[128];
    for (size_t i = 0; i < sizeof(src); i++) {
        src[i] = (unsigned char)(i * 37 + 11);
    }
    for (size_t so = 0; so < 9; so++) {
        for (size_t dof = 0; dof < 9; dof++) {
            for (size_t size = 0; size <= 80; size++) {
                for (size_t i = 0; i < sizeof(dst); i++) {
                    dst[i] = GUARD;
                }
                assert_ptr_equal(memcpy_fn(dst + dof, src + so, size), dst + dof);
                for (size_t i = 0; i < sizeof(dst); i++) {
                    int want = (i >= dof && i < dof + size) ? src[so + i - dof] : GUARD;
                    assert_int_equal(dst[i], want);
                }
            }
        }
    }
    unsigned char all[256];
    unsigned char copy[256];
    for (size_t i = 0; i < 256; i++) {
        all[i] = (unsigned char)i;
        copy[i] = 0;
    }
    memcpy_fn(copy, all, 256);
    assert_memory_equal(copy, all, 256);
    for (size_t i = 0; i < sizeof(src); i++) { /* the source is untouched */
        assert_int_equal(src[i], (unsigned char)(i * 37 + 11));
    }
}

static void test_memcpy_large_buffer(void** state)
{
    (void)state;
    size_t size = (1u << 20) + 7;
    unsigned char* src = unit_xmalloc(size);
    unsigned char* dst = unit_xmalloc(size + 2);
    for (size_t i = 0; i < size; i++) {
        src[i] = (unsigned char)(i ^ (i >> 8));
    }
    dst[0] = GUARD;
    dst[size + 1] = GUARD;
    memcpy_fn(dst + 1, src, size);
    assert_int_equal(dst[0], GUARD);
    assert_int_equal(dst[size + 1], GUARD);
    assert_memory_equal(dst + 1, src, size);
    free(src);
    free(dst);
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static void test_memcmp_equal_and_size_zero(void** state)
{
    (void)state;
    unsigned char a[16] = {1, 2, 3};
    unsigned char b[16] = {9, 9, 9};
    assert_int_equal(memcmp_fn(a, b, 0), 0);
    assert_int_equal(memcmp_fn(a, a, sizeof(a)), 0);
    memcpy_fn(b, a, sizeof(a));
    assert_int_equal(memcmp_fn(a, b, sizeof(a)), 0);
}

/* The first differing byte decides, compared as unsigned char (0x80 > 0x7F),
 * at every position, whatever follows it; bytes past `size` are not read. */
static void test_memcmp_first_difference_decides(void** state)
{
    (void)state;
    unsigned char a[64];
    unsigned char b[64];
    for (size_t at = 0; at < sizeof(a); at++) {
        for (size_t i = 0; i < sizeof(a); i++) {
            a[i] = b[i] = (unsigned char)(i * 7 + 1);
        }
        a[at] = 0x80;
        b[at] = 0x7F;
        if (at + 1 < sizeof(a)) {
            a[at + 1] = 0x00; /* a later byte that says the opposite */
            b[at + 1] = 0xFF;
        }
        assert_int_equal(sign(memcmp_fn(a, b, sizeof(a))), 1);
        assert_int_equal(sign(memcmp_fn(b, a, sizeof(a))), -1);
        assert_int_equal(memcmp_fn(a, b, at), 0);
        assert_int_equal(sign(memcmp_fn(a, b, at + 1)), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memset_returns_ptr),
        cmocka_unit_test(test_memset_size_zero_writes_nothing),
        cmocka_unit_test(test_memset_one_byte),
        cmocka_unit_test(test_memset_all_offsets_and_sizes),
        cmocka_unit_test(test_memset_truncates_value),
        cmocka_unit_test(test_memset_large_buffer),
        cmocka_unit_test(test_memset_beyond_int_and_uint32_max),
        cmocka_unit_test(test_memcpy_returns_dst_and_size_zero),
        cmocka_unit_test(test_memcpy_all_offsets_and_sizes),
        cmocka_unit_test(test_memcpy_large_buffer),
        cmocka_unit_test(test_memcmp_equal_and_size_zero),
        cmocka_unit_test(test_memcmp_first_difference_decides),
    };
    return cmocka_run_group_tests_name("memory", tests, NULL, NULL);
}

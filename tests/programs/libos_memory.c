/* LibOS core test: brk, mmap, munmap, mprotect, mremap, madvise and malloc, checked
 * by the program itself. Exits with the number of the first failed check (0: all ok). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/syscall.h>

#define CHECK(n, cond) do { if (!(cond)) { printf("check %d failed: %s (errno %d)\n", n, #cond, errno); return n; } } while (0)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    CHECK(1, page == 4096);

    /* brk: grow, use, shrink, grow again: the memory reads as zero again */
    char *cur = (char *)syscall(SYS_brk, 0);
    CHECK(2, cur != NULL);
    char *top = (char *)syscall(SYS_brk, cur + 3 * page);
    CHECK(3, top == cur + 3 * page);
    memset(cur, 0xab, 3 * page);
    CHECK(4, (char *)syscall(SYS_brk, cur) == cur);
    CHECK(5, (char *)syscall(SYS_brk, cur + 3 * page) == cur + 3 * page);
    CHECK(6, cur[page] == 0 && cur[3 * page - 1] == 0);
    /* beyond the heap's size: the break does not move */
    CHECK(7, (char *)syscall(SYS_brk, cur + (1L << 40)) == cur + 3 * page);
    syscall(SYS_brk, cur);

    /* anonymous mmap: zeroed, writable */
    size_t len = 64 * page;
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(10, m != MAP_FAILED);
    for (size_t i = 0; i < len; i += 512) CHECK(11, m[i] == 0);
    memset(m, 0x5a, len);
    /* munmap a page in the middle, map it again with MAP_FIXED: it is zero */
    CHECK(12, munmap(m + 8 * page, page) == 0);
    unsigned char *again = mmap(m + 8 * page, page, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(13, again == m + 8 * page);
    CHECK(14, again[0] == 0 && again[page - 1] == 0 && m[8 * page - 1] == 0x5a && m[9 * page] == 0x5a);
    /* MAP_FIXED_NOREPLACE over a mapping: EEXIST */
    void *nr = mmap(m, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(15, nr == MAP_FAILED && errno == EEXIST);
    /* bad arguments */
    CHECK(16, mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL);
    CHECK(17, munmap(m + 1, page) == -1 && errno == EINVAL);
    CHECK(18, mmap(NULL, page, PROT_READ, MAP_PRIVATE, 99, 0) == MAP_FAILED && errno == EBADF);

    /* mprotect: read-only pages still read; the syscall layer refuses writes into them */
    CHECK(20, mprotect(m, 4 * page, PROT_READ) == 0);
    CHECK(21, m[0] == 0x5a && m[4 * page - 1] == 0x5a);
    CHECK(22, read(0, m, 1) == -1 && errno == EFAULT);     /* kernel writes need PROT_WRITE */
    CHECK(23, mprotect(m, 4 * page, PROT_READ | PROT_WRITE) == 0);
    m[0] = 1;
    CHECK(24, m[0] == 1);
    CHECK(25, syscall(SYS_mprotect, m + 1, page, PROT_READ) == -1 && errno == EINVAL);  /* musl rounds; the kernel does not */
    /* a range with a hole is not mapped: ENOMEM */
    CHECK(26, munmap(m + 20 * page, page) == 0);
    CHECK(27, mprotect(m + 19 * page, 3 * page, PROT_READ) == -1 && errno == ENOMEM);
    CHECK(28, write(1, m + 20 * page, 1) == -1 && errno == EFAULT);

    /* madvise(DONTNEED) zeroes private anonymous pages */
    m[30 * page] = 7;
    CHECK(30, madvise(m + 30 * page, page, MADV_DONTNEED) == 0);
    CHECK(31, m[30 * page] == 0);
    CHECK(32, madvise(m + 30 * page, page, MADV_WILLNEED) == 0);
    CHECK(33, madvise(m + 30 * page, page, 12345) == -1 && errno == EINVAL);

    /* mremap: grow (moving if needed) keeps the contents; shrink in place */
    unsigned char *r = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(40, r != MAP_FAILED);
    for (int i = 0; i < 4; i++) r[i * page] = (unsigned char)(i + 1);
    unsigned char *g = mremap(r, 4 * page, 400 * page, MREMAP_MAYMOVE);
    CHECK(41, g != MAP_FAILED);
    for (int i = 0; i < 4; i++) CHECK(42, g[i * page] == i + 1);
    CHECK(43, g[399 * page] == 0);
    g[399 * page] = 9;
    unsigned char *s = mremap(g, 400 * page, 2 * page, 0);
    CHECK(44, s == g && s[page] == 2);
    CHECK(45, munmap(s, 2 * page) == 0);
    CHECK(46, munmap(m, len) == 0);

    /* malloc of large blocks (musl: mmap and mremap underneath) */
    for (int round = 0; round < 3; round++) {
        size_t big = (size_t)(8 + round * 8) << 20;
        unsigned char *b = malloc(big);
        CHECK(50, b != NULL);
        for (size_t i = 0; i < big; i += 4096) CHECK(51, b[i] == 0 || round > 0);
        memset(b, round, big);
        b = realloc(b, big * 2);
        CHECK(52, b != NULL && b[big - 1] == round);
        free(b);
    }
    /* many small blocks */
    void *blocks[2000];
    for (int i = 0; i < 2000; i++) { blocks[i] = malloc(16 + i * 8); CHECK(53, blocks[i] != NULL); memset(blocks[i], i, 16 + i * 8); }
    for (int i = 0; i < 2000; i++) { CHECK(54, ((unsigned char *)blocks[i])[15] == (unsigned char)i); free(blocks[i]); }

    printf("memory ok\n");
    return 0;
}

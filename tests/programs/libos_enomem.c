/* LibOS core test: allocating past user_space_size fails cleanly (NULL / ENOMEM) and
 * memory given back can be allocated again. Exits with the failed check (0: ok). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHECK(n, cond) do { if (!(cond)) { printf("check %d failed: %s (errno %d)\n", n, #cond, errno); return n; } } while (0)

int main(void) {
    /* far more than the whole user space in one go */
    void *huge = mmap(NULL, (size_t)1 << 34, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(1, huge == MAP_FAILED && errno == ENOMEM);
    errno = 0;
    CHECK(2, malloc((size_t)1 << 34) == NULL && errno == ENOMEM);

    /* then 4 MiB at a time until the budget is used up */
    void *chunks[4096];
    int n = 0;
    for (; n < 4096; n++) {
        chunks[n] = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (chunks[n] == MAP_FAILED) break;
        memset(chunks[n], 1, 4096);
    }
    CHECK(3, n < 4096 && errno == ENOMEM);
    printf("mapped %d MiB before ENOMEM\n", n * 4);
    CHECK(4, n > 0);
    for (int i = 0; i < n; i++) CHECK(5, munmap(chunks[i], 4 << 20) == 0);
    void *back = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(6, back != MAP_FAILED && ((char *)back)[0] == 0);
    printf("enomem ok\n");
    return 0;
}

/* Informational benchmark (f): mmap + munmap of 256 KiB, then a pass over a working
 * set of `pages` pages, R times. Each mmap and munmap changes the emulator's memory
 * map, which flushes its whole TLB: this shows what a refill of the working set costs.
 * Usage: remap [rounds] [pages]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 1000;
    int pages = argc > 2 ? atoi(argv[2]) : 1000;
    char *ws = malloc((size_t)pages * 4096 + 1);
    memset(ws, 1, (size_t)pages * 4096 + 1);
    long sum = 0;
    for (int r = 0; r < rounds; r++) {
        char *p = mmap(0, 256 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 2;
        p[0] = (char)r;
        sum += p[0];
        munmap(p, 256 << 10);
        for (int i = 0; i < pages; i++) {
            ws[(size_t)i * 4096] += 1;
            sum += ws[(size_t)i * 4096 + 7];
        }
    }
    printf("remap %d rounds over %d pages: %ld\n", rounds, pages, sum);
    return 0;
}

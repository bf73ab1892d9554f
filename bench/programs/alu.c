/* Benchmark (a): ALU-bound. A 64-bit hash mixed N times in registers: no memory
 * traffic, no system calls, so it measures the translated code alone.
 * Usage: alu [iterations]; prints the hash so the loop cannot be optimised away. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

int main(int argc, char **argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], 0, 10) : 100000000ull;
    uint64_t h = 0xcbf29ce484222325ull, x = 88172645463325252ull;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;       /* xorshift64 */
        h = (h ^ (x & 0xff)) * 0x100000001b3ull;        /* FNV-1a step */
        h += (h >> 29) | (i << 3);
    }
    printf("alu %llu %016llx\n", (unsigned long long)n, (unsigned long long)h);
    return 0;
}

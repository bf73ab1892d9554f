/* Benchmark (b): memory-bound. The sieve of Eratosthenes over a 5 MB byte array
 * (in .bss), repeated R times: mostly byte stores spread over the whole array, which
 * stresses the emulator's software TLB and its store path.
 * Usage: sieve [repeats]; prints the prime count; exits 1 on a wrong count
 * (0 repeats: nothing to check, for measuring the start-up alone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 5000000
static unsigned char composite[N];

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 4;
    long count = 0;
    for (int r = 0; r < repeats; r++) {
        memset(composite, 0, sizeof composite);
        for (long i = 2; i * i < N; i++)
            if (!composite[i])
                for (long j = i * i; j < N; j += i)
                    composite[j] = 1;
        count = 0;
        for (long i = 2; i < N; i++)
            count += !composite[i];
    }
    printf("sieve %d primes below %d: %ld\n", repeats, N, count);
    return repeats == 0 || count == 348513 ? 0 : 1;
}

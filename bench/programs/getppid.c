/* Benchmark (c): system call rate. N getppid() calls, the cheapest call there is:
 * what is left is the cost of entering and leaving the (Lib)OS.
 * Usage: getppid [calls]. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long sum = 0;
    for (long i = 0; i < n; i++)
        sum += getppid();
    printf("getppid %ld calls, sum %ld\n", n, sum);
    return 0;
}

/* Layout probe: call-heavy. Naive recursive Fibonacci: every call pushes a return
 * address and saved registers and every return pops them, so the stack page is
 * written and read in turn; this is what exposes TLB refills that depend on the
 * access type. Usage: calls [n]; prints fib(n). */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static long fib(long n) {
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 30;
    printf("calls fib(%ld) = %ld\n", n, fib(n));
    return 0;
}

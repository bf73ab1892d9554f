/* LibOS core test: a null pointer write must kill the program with SIGSEGV. */
#include <stdio.h>

int main(void) {
    printf("before the fault\n");
    fflush(stdout);
    volatile int *p = 0;
    *p = 42;
    printf("after the fault: must not be printed\n");
    return 0;
}

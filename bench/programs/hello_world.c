/* Benchmark (e): the smallest program, for `occlum run` end-to-end start-up time. */
#include <stdio.h>

int main(void) {
    printf("Hello World\n");
    return 0;
}

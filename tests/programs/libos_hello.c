/* LibOS core test: hello world; prints argc and exits 0. */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello World from the emulated enclave (argc=%d)\n", argc);
    return 0;
}

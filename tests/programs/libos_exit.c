/* LibOS core test: exits with the status given as argv[1] (via exit(), so atexit runs). */
#include <stdio.h>
#include <stdlib.h>

static void bye(void) { printf("atexit ran\n"); }

int main(int argc, char **argv) {
    atexit(bye);
    exit(argc > 1 ? atoi(argv[1]) : 0);
}

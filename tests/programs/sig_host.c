/* The host's SIGTERM/SIGINT forwarded to the first process. "handler": a SIGTERM
 * handler runs and the program exits 7; "default": no handler, the run ends with
 * 128+signal; "compute": no handler, a loop with no system calls. Prints "ready" once
 * set up. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_term(int sig) { got = sig; }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "default";
    if (strcmp(mode, "handler") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
    }
    printf("ready\n");
    fflush(stdout);
    if (strcmp(mode, "compute") == 0) {
        volatile unsigned long x = 0;
        for (;;) x++;
    }
    struct timespec ts = {0, 10000000};
    for (int i = 0; i < 3000 && !got; i++)
        nanosleep(&ts, NULL);
    return got == SIGTERM ? 7 : 1;
}

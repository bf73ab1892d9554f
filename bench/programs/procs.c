/* Processes and threads in the enclave, timed by the program itself (CLOCK_MONOTONIC):
 *   procs spawn N   posix_spawn + waitpid of a small program (this one, "nop"), N times
 *   procs pipe MIB  MIB MiB through a pipe between two processes, 64 KiB writes
 *   procs futex N   N futex wake/wait round trips between two threads
 * Prints one line "<what> <rate> <unit>". */
#include <linux/futex.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile int turn;
static long rounds;

static void futex_wait(volatile int *addr, int val) { syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, 0, 0, 0); }
static void futex_wake(volatile int *addr) { syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0); }

static void *pong(void *arg) {
    for (long i = 0; i < rounds; i++) {
        while (turn != 1) futex_wait(&turn, 0);
        turn = 0;
        futex_wake(&turn);
    }
    return arg;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "nop";
    long n = argc > 2 ? atol(argv[2]) : 0;
    if (!strcmp(mode, "nop")) return 0;
    if (!strcmp(mode, "sink")) {
        static char buf[1 << 16]; long total = 0; ssize_t got;
        while ((got = read(0, buf, sizeof buf)) > 0) total += got;
        return total == n << 20 ? 0 : 1;
    }
    double t0 = now();
    if (!strcmp(mode, "spawn")) {
        char *args[] = {argv[0], "nop", 0};
        for (long i = 0; i < n; i++) {
            pid_t pid; int st;
            if (posix_spawn(&pid, "/proc/self/exe", 0, 0, args, environ) != 0) return 2;
            if (waitpid(pid, &st, 0) != pid || st != 0) return 3;
        }
        double t = now() - t0;
        printf("spawn %.0f per_s %.3f ms_each\n", n / t, t / (n ? n : 1) * 1e3);
        return 0;
    }
    if (!strcmp(mode, "pipe")) {
        int p[2]; if (pipe(p)) return 4;
        posix_spawn_file_actions_t fa; posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[0], 0);
        posix_spawn_file_actions_addclose(&fa, p[1]);
        char count[32]; snprintf(count, sizeof count, "%ld", n);
        char *args[] = {argv[0], "sink", count, 0};
        pid_t pid; int st;
        if (posix_spawn(&pid, "/proc/self/exe", &fa, 0, args, environ) != 0) return 5;
        close(p[0]);
        static char buf[1 << 16];
        memset(buf, 'x', sizeof buf);
        t0 = now();
        for (long i = 0; i < n * 16; i++) if (write(p[1], buf, sizeof buf) != sizeof buf) return 6;
        close(p[1]);
        if (waitpid(pid, &st, 0) != pid || st != 0) return 7;
        double t = now() - t0;
        printf("pipe %.0f MB_per_s\n", n * 1048576.0 / t / 1e6);
        return 0;
    }
    if (!strcmp(mode, "futex")) {
        rounds = n;
        pthread_t t; pthread_create(&t, 0, pong, 0);
        t0 = now();
        for (long i = 0; i < n; i++) {
            turn = 1;
            futex_wake(&turn);
            while (turn != 0) futex_wait(&turn, 1);
        }
        double el = now() - t0;
        pthread_join(t, 0);
        printf("futex %.0f round_trips_per_s\n", n / el);
        return 0;
    }
    return 9;
}

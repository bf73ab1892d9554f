/* A blocked read on a pipe interrupted by a signal with a handler: EINTR without
 * SA_RESTART, restarted with it (the read then gets the data written later); the
 * signal comes from another thread (pthread_kill) or another process (kill).
 * Exits with the number of the first failed check. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(n, cond) do { if (!(cond)) { fprintf(stderr, "check %d failed: %s\n", n, #cond); exit(n); } } while (0)

extern char **environ;
static volatile sig_atomic_t hits;
static pthread_t main_thread;
static int fds[2];

static void on_sig(int sig) { (void)sig; hits++; }

static void *interrupt_then_write(void *arg) {
    usleep(20000);
    pthread_kill(main_thread, SIGUSR1);
    if (arg) {
        usleep(20000);
        write(fds[1], "x", 1);
    }
    return NULL;
}

static int big[2];
static volatile ssize_t written;
static char chunk[200000];

static void *write_big(void *arg) {
    (void)arg;
    written = write(big[1], chunk, sizeof chunk);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) {                       /* the child: signal the parent */
        usleep(20000);
        kill(getppid(), SIGUSR1);
        return 0;
    }
    main_thread = pthread_self();
    CHECK(1, pipe(fds) == 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigaction(SIGUSR1, &sa, NULL);
    char c;
    pthread_t t;
    /* EINTR */
    pthread_create(&t, NULL, interrupt_then_write, NULL);
    ssize_t n = read(fds[0], &c, 1);
    CHECK(2, n == -1 && errno == EINTR && hits == 1);
    pthread_join(t, NULL);
    /* SA_RESTART: the read goes on and gets the byte */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_create(&t, NULL, interrupt_then_write, (void *)1);
    n = read(fds[0], &c, 1);
    CHECK(3, n == 1 && c == 'x' && hits == 2);
    pthread_join(t, NULL);
    /* from another process */
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    pid_t child;
    char *args[] = {argv[0], "child", NULL};
    CHECK(4, posix_spawn(&child, argv[0], NULL, NULL, args, environ) == 0);
    n = read(fds[0], &c, 1);
    CHECK(5, n == -1 && errno == EINTR && hits == 3);
    int status;
    CHECK(6, waitpid(child, &status, 0) == child && WIFEXITED(status));
    /* a write interrupted after part of it was done returns that part */
    CHECK(7, pipe(big) == 0);
    pthread_create(&t, NULL, write_big, NULL);
    usleep(20000);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    CHECK(8, written > 0 && written < (ssize_t)sizeof chunk && hits == 4);
    puts("sig_eintr ok");
    return 0;
}

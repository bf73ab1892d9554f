/* Signal handlers: raise/kill, SA_SIGINFO, masking, SA_RESETHAND, sigaltstack,
 * registers and FP state across a handler, sigsuspend, sigtimedwait, sigpending,
 * SIGCHLD. Exits with the number of the first failed check. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <pthread.h>
#include <spawn.h>

extern char **environ;

#define CHECK(n, cond) do { if (!(cond)) { fprintf(stderr, "check %d failed: %s\n", n, #cond); exit(n); } } while (0)

static volatile sig_atomic_t hits, last_sig, last_pid, last_code;
static volatile uintptr_t handler_sp;
static char altstack[65536];

static void on_sig(int sig) { hits++; last_sig = sig; }
static void on_info(int sig, siginfo_t *info, void *uc) {
    (void)uc; hits++; last_sig = info->si_signo; last_pid = info->si_pid; last_code = info->si_code;
}
static volatile int alt_flags, depth, max_depth, calls;
static void on_alt(int sig) {
    int local; stack_t cur;
    (void)sig; handler_sp = (uintptr_t)&local; hits++;
    sigaltstack(NULL, &cur);
    alt_flags = cur.ss_flags;
}
static void on_nested(int sig) {
    depth++; calls++;
    if (depth > max_depth) max_depth = depth;
    /* with SA_NODEFER it runs nested, at once; without, after this one returns */
    if (calls == 1) raise(sig);
    depth--;
}
static void on_fp(int sig) {
    volatile double x = 1.0;               /* clobbers xmm registers */
    for (int i = 0; i < 100; i++) x = x * 1.5 + 0.25;
    (void)sig; hits++;
}
static void on_check_align(int sig) {
    (void)sig;
    uintptr_t sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    handler_sp = sp; hits++;
}

static void *send_later(void *arg) {
    (void)arg;
    usleep(10000);
    kill(getpid(), SIGUSR1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) return 3;               /* the child of the SIGCHLD check */
    struct sigaction sa;
    pthread_t thread;
    memset(&sa, 0, sizeof sa);
    /* 1: a handler runs for raise() and the program continues */
    sa.sa_handler = on_sig;
    CHECK(1, sigaction(SIGUSR1, &sa, NULL) == 0);
    raise(SIGUSR1);
    CHECK(2, hits == 1 && last_sig == SIGUSR1);
    /* kill() to oneself */
    kill(getpid(), SIGUSR1);
    CHECK(3, hits == 2);
    /* SA_SIGINFO: si_signo, si_pid */
    sa.sa_sigaction = on_info; sa.sa_flags = SA_SIGINFO;
    CHECK(4, sigaction(SIGUSR2, &sa, NULL) == 0);
    kill(getpid(), SIGUSR2);
    CHECK(5, hits == 3 && last_sig == SIGUSR2 && last_pid == getpid() && last_code == SI_USER);
    /* a masked signal stays pending and is delivered on unmask */
    sigset_t set, old, pend;
    sigemptyset(&set); sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR1);
    CHECK(6, hits == 3);
    sigpending(&pend);
    CHECK(7, sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    CHECK(8, hits == 4);
    /* SA_RESETHAND: the second one takes the default action (ignored for SIGURG? use SIGCHLD) */
    sa.sa_handler = on_sig; sa.sa_flags = SA_RESETHAND;
    sigaction(SIGWINCH, &sa, NULL);
    raise(SIGWINCH);
    CHECK(9, hits == 5);
    struct sigaction now;
    sigaction(SIGWINCH, NULL, &now);
    CHECK(10, now.sa_handler == SIG_DFL);
    raise(SIGWINCH);                  /* default: ignored */
    CHECK(11, hits == 5);
    /* sigaltstack */
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    CHECK(12, sigaltstack(&ss, NULL) == 0);
    sa.sa_handler = on_alt; sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    CHECK(13, hits == 6 && handler_sp >= (uintptr_t)altstack && handler_sp < (uintptr_t)altstack + sizeof altstack);
    CHECK(27, alt_flags == SS_ONSTACK);
    stack_t small = {.ss_sp = altstack, .ss_size = 100, .ss_flags = 0};
    CHECK(14, sigaltstack(&small, NULL) == -1 && errno == ENOMEM);
    stack_t dis = {.ss_flags = SS_DISABLE}, got;
    CHECK(15, sigaltstack(&dis, &got) == 0 && got.ss_sp == altstack);
    /* alignment: rsp + 8 is 16-byte aligned at entry, so rsp inside is 16-aligned after push rbp or not: check loosely */
    sa.sa_handler = on_check_align; sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    CHECK(16, hits == 7 && handler_sp % 8 == 0);
    /* FP state and registers preserved */
    sa.sa_handler = on_fp; sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    volatile double a = 3.25, b = 1.5;
    double before = a * b + a / b;
    double c = a * b;
    raise(SIGUSR1);
    double after = c + a / b;
    CHECK(17, hits == 8 && before == after);
    /* sigsuspend: returns -1/EINTR after the handler ran, the old mask back */
    sa.sa_handler = on_sig; sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    sigprocmask(SIG_BLOCK, &set, &old);
    pthread_create(&thread, NULL, send_later, NULL);
    sigset_t empty; sigemptyset(&empty);
    int r = sigsuspend(&empty);
    CHECK(18, r == -1 && errno == EINTR && hits == 9);
    sigset_t cur; sigprocmask(SIG_SETMASK, NULL, &cur);
    CHECK(19, sigismember(&cur, SIGUSR1));
    pthread_join(thread, NULL);
    /* sigtimedwait: takes a pending blocked signal; EAGAIN after the timeout */
    raise(SIGUSR1);
    siginfo_t info;
    struct timespec ts = {0, 20000000};
    CHECK(20, sigtimedwait(&set, &info, &ts) == SIGUSR1 && info.si_signo == SIGUSR1 && hits == 9);
    CHECK(21, sigtimedwait(&set, &info, &ts) == -1 && errno == EAGAIN);
    pthread_create(&thread, NULL, send_later, NULL);
    CHECK(22, sigwaitinfo(&set, &info) == SIGUSR1 && info.si_pid == getpid());
    pthread_join(thread, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* SIGCHLD handler on child exit */
    sa.sa_sigaction = on_info; sa.sa_flags = SA_SIGINFO;
    sigaction(SIGCHLD, &sa, NULL);
    pid_t child;
    char *args[] = {argv[0], "child", NULL};
    CHECK(26, posix_spawn(&child, argv[0], NULL, NULL, args, environ) == 0);
    while (hits < 10) usleep(1000);
    CHECK(23, last_sig == SIGCHLD && last_pid == child);
    int status;
    CHECK(24, waitpid(child, &status, 0) == child && WEXITSTATUS(status) == 3);
    /* SA_NODEFER: the handler is interrupted by its own signal; without it, not */
    sa.sa_handler = on_nested; sa.sa_flags = SA_NODEFER;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    CHECK(28, max_depth == 2 && depth == 0 && calls == 2);
    max_depth = 0; calls = 0; sa.sa_flags = 0;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    CHECK(29, max_depth == 1 && depth == 0 && calls == 2);
    /* SIGKILL cannot be caught */
    CHECK(25, sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL);
    puts("sig_basic ok");
    return 0;
}

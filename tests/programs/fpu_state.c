/* The FPU state a program sees, printed so that a test can compare the output with the
 * same binary run natively on Linux (the oracle): x87 control word, tag word and MXCSR
 * at start, results that depend on them (printf, strtod, long double), and how the
 * state travels: inherited by threads, kept across thread switches and across a signal
 * handler (which starts with a fresh state), reset by execve. Nothing printed depends
 * on pids, times or addresses. */
#define _GNU_SOURCE
#include <fenv.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static unsigned fpu_cw(void) { unsigned short cw; __asm__ volatile("fnstcw %0" : "=m"(cw)); return cw; }
static unsigned mxcsr(void) { unsigned m; __asm__ volatile("stmxcsr %0" : "=m"(m)); return m; }
static unsigned fpu_tags(void)
{
    unsigned short env[14];
    __asm__ volatile("fnstenv %0" : "=m"(env));
    __asm__ volatile("fldenv %0" : : "m"(env));     /* fnstenv masks exceptions: undo */
    return env[4];
}
static const char *rounding(void)
{
    switch (fegetround()) {
    case FE_TONEAREST: return "nearest";
    case FE_DOWNWARD: return "down";
    case FE_UPWARD: return "up";
    case FE_TOWARDZERO: return "zero";
    }
    return "?";
}

static void state(const char *where)
{
    printf("%s: cw=%#x mxcsr=%#x tags=%#x round=%s\n", where, fpu_cw(), mxcsr() & ~0x3Fu, fpu_tags(), rounding());
}

static void results(const char *where)
{
    volatile double tenth = 0.1, three = 3.0;
    volatile long double one = 1.0L, two = 2.0L;
    volatile float f1 = 1.0f, f3 = 3.0f;
    printf("%s: %.17g %.21Lg %.17g %.21Lg %.9g %.17g %.21Lg\n", where, tenth, one / three,
           strtod("3.14159265358979", NULL), strtold("2.718281828459045235360", NULL), f1 / f3,
           1.0 / three, sqrtl(two));
}

/* ST(0) holds `value` across a system call that switches threads or runs a handler.
 * (Not fldpi: QEMU's x87 constants ignore the rounding mode, Linux's CPU does not.) */
static long double st0_across(long double value, long number, long a1, long a2)
{
    long double out;
    long ret;
    __asm__ volatile("fldt %2\n\tsyscall\n\tfstpt %0"
                     : "=m"(out), "=a"(ret) : "m"(value), "a"(number), "D"(a1), "S"(a2) : "rcx", "r11", "memory");
    return out;
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig)
{
    (void)sig;
    state("handler");
    /* the handler's own FPU work must not leak into the interrupted code */
    fesetround(FE_TOWARDZERO);
    volatile long double x = 1.0L;
    for (int i = 0; i < 6; i++) x = x / 3.0L;
    handled = 1;
}

static void *thread_inherits(void *arg)
{
    state((const char *)arg);
    results((const char *)arg);
    return NULL;
}

/* two threads with different modes, running at once and switching at every yield:
 * each keeps its own control words and x87 registers */
struct kept { int kept; long double sum, st0; } kept_by[2];

static void *thread_keeps(void *arg)
{
    long id = (long)arg;
    int mode = id ? FE_UPWARD : FE_DOWNWARD;
    fesetround(mode);
    int kept = 1;
    long double sum = 0;
    for (int i = 0; i < 200; i++) {
        volatile long double third = 1.0L / 3.0L;
        sum += third;
        sched_yield();
        if (fegetround() != mode) kept = 0;
    }
    kept_by[id].st0 = st0_across(sum / 7, SYS_sched_yield, 0, 0);
    kept_by[id].kept = kept;
    kept_by[id].sum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        state("after execve");
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    state("start");
    results("start");

    fesetround(FE_DOWNWARD);
    pthread_t t;
    pthread_create(&t, NULL, thread_inherits, "thread (down)");
    pthread_join(t, NULL);
    fesetround(FE_TONEAREST);

    pthread_t a, b;
    pthread_create(&a, NULL, thread_keeps, (void *)0);
    pthread_create(&b, NULL, thread_keeps, (void *)1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    for (int id = 0; id < 2; id++)
        printf("thread %d: kept=%d sum=%.21Lg st0=%.21Lg\n", id, kept_by[id].kept, kept_by[id].sum, kept_by[id].st0);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    fesetround(FE_UPWARD);
    volatile long double seven = 7.0L;
    long double kept_st0 = st0_across(1.0L / seven, SYS_kill, getpid(), SIGUSR1);
    printf("after handler: handled=%d st0=%.21Lg ", handled, kept_st0);
    state("main");

    pid_t pid;
    char *child_argv[] = {argv[0], "child", NULL};
    fesetround(FE_DOWNWARD);
    if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, child_argv, environ) != 0 &&
        posix_spawn(&pid, argv[0], NULL, NULL, child_argv, environ) != 0) {
        puts("spawn failed");
        return 1;
    }
    int status;
    waitpid(pid, &status, 0);
    fesetround(FE_TONEAREST);
    results("end");
    return WEXITSTATUS(status);
}

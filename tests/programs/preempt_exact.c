/* Preemption must never run an instruction twice or skip one. Threads that compute
 * without system calls are taken off the CPU by the scheduler's watchdog; each mode
 * ends with a total that is exact only if every preemption was exact, and prints
 * what it found (the test compares with the expected total and with Linux).
 *
 *   xadd N M    N threads each add 1 to one counter M times with lock xadd
 *   rmw N M     N threads each run a loop whose only side effects are read-modify-write
 *               instructions on memory (add/inc/sub on the stack and on a shared
 *               array, cmpxchg), interleaved with threads making system calls
 *   cas N M     N threads increment a counter M times with a lock cmpxchg retry loop
 *               (a CAS that ran twice looks failed, and the retry adds one more)
 *   syscalls N M  N threads compute (lock xadd) while two threads make M getpid calls
 *               and M CPUIDs each and check every answer: a call that is skipped
 *               leaves its number (39) where the pid should be, a CPUID whose hook
 *               is skipped answers as Unicorn's own CPU model
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long counter;
static long shared[64];
static long iterations;
static volatile int stop_syscalls;

static void *xadd_worker(void *arg)
{
    (void)arg;
    for (long i = 0; i < iterations; i++) {
        long one = 1;
        __asm__ volatile("lock xaddq %0, %1" : "+r"(one), "+m"(counter) : : "memory");
    }
    return NULL;
}

static void *rmw_worker(void *arg)
{
    long id = (long)arg;
    long mine[4] = {0, 0, 0, 0};
    for (long i = 0; i < iterations; i++) {
        /* each a single instruction that reads and writes memory */
        __asm__ volatile("addq $3, %0" : "+m"(mine[0]));
        __asm__ volatile("incq %0" : "+m"(mine[1]));
        __asm__ volatile("subq $2, %0" : "+m"(mine[2]));
        __asm__ volatile("lock incq %0" : "+m"(shared[id & 63]));
        __asm__ volatile("lock addq $5, %0" : "+m"(shared[(id + 1) & 63]));
    }
    long expect = iterations;
    int ok = mine[0] == 3 * expect && mine[1] == expect && mine[2] == -2 * expect;
    return (void *)(long)ok;
}

static void *cas_worker(void *arg)
{
    (void)arg;
    for (long i = 0; i < iterations; i++) {
        long old = __atomic_load_n(&counter, __ATOMIC_RELAXED);
        for (;;) {
            long want = old + 1;
            unsigned char ok;
            __asm__ volatile("lock cmpxchgq %3, %1; sete %2"
                             : "+a"(old), "+m"(counter), "=q"(ok) : "r"(want) : "memory", "cc");
            if (ok) break;
        }
    }
    return NULL;
}

static long wrong_answers;
static void *getpid_caller(void *arg)
{
    (void)arg;
    long pid = getpid(), wrong = 0;
    unsigned first[4], now[4];
    __asm__ volatile("cpuid" : "=a"(first[0]), "=b"(first[1]), "=c"(first[2]), "=d"(first[3]) : "a"(0x80000002u), "c"(0));
    for (long i = 0; i < iterations; i++) {
        long r;
        __asm__ volatile("syscall" : "=a"(r) : "a"(39L) : "rcx", "r11", "memory");
        if (r != pid) wrong++;
        /* the CPU's answers never change */
        __asm__ volatile("cpuid" : "=a"(now[0]), "=b"(now[1]), "=c"(now[2]), "=d"(now[3]) : "a"(0x80000002u), "c"(0));
        if (memcmp(now, first, sizeof now)) wrong++;
    }
    __atomic_fetch_add(&wrong_answers, wrong, __ATOMIC_RELAXED);
    return NULL;
}

static void *xadd_forever(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop_syscalls, __ATOMIC_RELAXED)) {
        long one = 1;
        __asm__ volatile("lock xaddq %0, %1" : "+r"(one), "+m"(counter) : : "memory");
    }
    return NULL;
}

/* two threads that make system calls all the time, half of them blocking: a ping-pong
 * over two pipes, so that threads park and wake while the others compute */
static int ping[2], pong[2];
static void *syscaller(void *arg)
{
    long id = (long)arg;
    long n = 0;
    char c = 0;
    while (!__atomic_load_n(&stop_syscalls, __ATOMIC_RELAXED)) {
        if (id == 0) {
            if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) break;
        } else {
            if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1) break;
        }
        getppid();
        n++;
    }
    return (void *)n;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s xadd|rmw|cas|syscalls THREADS ITERATIONS\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    int threads = atoi(argv[2]);
    iterations = atol(argv[3]);
    if (!strcmp(mode, "syscalls")) {
        pthread_t comp[64], callers2[2];
        for (int i = 0; i < threads; i++) pthread_create(&comp[i], NULL, xadd_forever, NULL);
        for (int i = 0; i < 2; i++) pthread_create(&callers2[i], NULL, getpid_caller, NULL);
        for (int i = 0; i < 2; i++) pthread_join(callers2[i], NULL);
        __atomic_store_n(&stop_syscalls, 1, __ATOMIC_RELAXED);
        for (int i = 0; i < threads; i++) pthread_join(comp[i], NULL);
        printf("syscalls: %ld wrong answers\n", wrong_answers);
        return wrong_answers != 0;
    }
    pthread_t t[64], caller[2];
    void *(*worker)(void *) = !strcmp(mode, "xadd") ? xadd_worker : !strcmp(mode, "rmw") ? rmw_worker : cas_worker;
    int callers = !strcmp(mode, "xadd") ? 0 : 2;
    if (pipe(ping) || pipe(pong)) return 3;
    for (int i = 0; i < callers; i++) pthread_create(&caller[i], NULL, syscaller, (void *)(long)i);
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(long)i);
    long flags = 0;
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(t[i], &r);
        flags += (long)r;
    }
    __atomic_store_n(&stop_syscalls, 1, __ATOMIC_RELAXED);
    close(ping[1]);               /* a reader still waiting sees EOF */
    close(pong[1]);
    for (int i = 0; i < callers; i++) pthread_join(caller[i], NULL);
    if (!strcmp(mode, "xadd")) {
        printf("xadd total %ld\n", counter);
        return counter != threads * iterations;
    }
    if (!strcmp(mode, "rmw")) {
        long sum = 0;
        for (int i = 0; i < 64; i++) sum += shared[i];
        printf("rmw exact threads %ld of %d, shared total %ld\n", flags, threads, sum);
        return flags != threads || sum != 6L * threads * iterations;
    }
    printf("cas total %ld\n", counter);
    return counter != threads * iterations;
}

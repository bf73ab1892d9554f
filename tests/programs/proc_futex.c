/* Futexes directly: WAIT with a relative timeout, WAIT_BITSET with absolute
 * CLOCK_MONOTONIC and CLOCK_REALTIME deadlines, EAGAIN on a changed word, WAKE_BITSET
 * selecting waiters, CMP_REQUEUE, WAKE_OP, a robust mutex whose owner exits
 * (EOWNERDEAD: get_robust_list must answer), and clone's CHILD_CLEARTID through
 * pthread_join. Exits with the
 * number of the failed check. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHECK(n, cond) do { if (!(cond)) { fprintf(stderr, "check %d failed: %s (errno %d)\n", n, #cond, errno); return n; } } while (0)

static long futex(volatile int *addr, int op, int val, const struct timespec *ts, volatile int *addr2, int val3) {
    return syscall(SYS_futex, addr, op, val, ts, addr2, val3);
}
static long ms_since(struct timespec *a) {
    struct timespec b; clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

static volatile int word, word2, woken;
static void *waiter(void *arg) {
    int bits = (int)(long)arg;
    long r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, 0, 0, bits);
    if (r == 0) __sync_fetch_and_add(&woken, 1);
    return 0;
}
static void settle(void) { for (int i = 0; i < 50; i++) sched_yield(); struct timespec t = {0, 5000000}; nanosleep(&t, 0); }

static pthread_mutex_t robust;
static void *die_holding(void *arg) { pthread_mutex_lock(&robust); return arg; }   /* exits without unlocking */

int main(void) {
    struct timespec start, rel = {0, 30 * 1000 * 1000}, abs;
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK(1, futex(&word, FUTEX_WAIT_PRIVATE, 0, &rel, 0, 0) == -1 && errno == ETIMEDOUT && ms_since(&start) >= 25);
    CHECK(2, futex(&word, FUTEX_WAIT_PRIVATE, 1, 0, 0, 0) == -1 && errno == EAGAIN);
    clock_gettime(CLOCK_MONOTONIC, &start);
    abs = start; abs.tv_nsec += 30 * 1000 * 1000; if (abs.tv_nsec >= 1000000000) { abs.tv_sec++; abs.tv_nsec -= 1000000000; }
    CHECK(3, futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, 0, FUTEX_BITSET_MATCH_ANY) == -1 && errno == ETIMEDOUT && ms_since(&start) >= 25);
    clock_gettime(CLOCK_REALTIME, &abs); abs.tv_nsec += 20 * 1000 * 1000; if (abs.tv_nsec >= 1000000000) { abs.tv_sec++; abs.tv_nsec -= 1000000000; }
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK(4, futex(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &abs, 0, -1) == -1 && errno == ETIMEDOUT && ms_since(&start) >= 15);

    /* bitsets: wake only the waiter whose bits match */
    pthread_t a, b, c;
    pthread_create(&a, 0, waiter, (void *)1L); pthread_create(&b, 0, waiter, (void *)2L);
    settle();
    CHECK(5, futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 10, 0, 0, 2) == 1);
    pthread_join(b, 0);
    CHECK(6, woken == 1);
    /* requeue: the waiter moves to word2, a wake on word2 reaches it */
    CHECK(7, futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)1L, &word2, 1) == -1 && errno == EAGAIN);
    CHECK(8, futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)10L, &word2, 0) == 1);
    CHECK(9, futex(&word, FUTEX_WAKE_PRIVATE, 10, 0, 0, 0) == 0);
    CHECK(10, futex(&word2, FUTEX_WAKE_PRIVATE, 10, 0, 0, 0) == 1);
    pthread_join(a, 0);
    CHECK(11, woken == 2);
    /* wake_op: word2 += 1 (old 0 == 0: also wake word2's waiters) */
    pthread_create(&c, 0, waiter, (void *)-1L);
    settle();
    int op = FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0);
    CHECK(12, futex(&word2, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1L, &word, op) == 1 && word == 1);
    pthread_join(c, 0);
    CHECK(13, woken == 3);
    /* a robust mutex whose owner thread ended: the next locker gets EOWNERDEAD */
    pthread_mutexattr_t attr; pthread_mutexattr_init(&attr);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &attr);
    pthread_t d; pthread_create(&d, 0, die_holding, 0); pthread_join(d, 0);
    CHECK(14, pthread_mutex_lock(&robust) == EOWNERDEAD);
    CHECK(15, pthread_mutex_consistent(&robust) == 0 && pthread_mutex_unlock(&robust) == 0);
    printf("futex ok\n");
    return 0;
}

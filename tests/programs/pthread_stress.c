/* pthreads under preemption: robust mutexes whose owners exit, a condition variable
 * ping-pong, timed locks against a holder, and a contended counter. Each part prints a
 * line whose content does not depend on timing, so that the output can be compared
 * with Linux's; the exit status is 0 only when every total is exact.
 *
 *   pthread_stress ROUNDS      (the condition variable part runs ROUNDS rounds)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int failures;
#define CHECK(cond) do { if (!(cond)) { failures++; fprintf(stderr, "check failed line %d\n", __LINE__); } } while (0)

/* ---- robust mutexes: the owner exits holding the lock --------------------------------- */
static pthread_mutex_t robust;
static void *die_holding(void *arg) { pthread_mutex_lock(&robust); return arg; }

static void robust_part(int rounds)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &attr);
    int owner_dead = 0;
    for (int i = 0; i < rounds; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, die_holding, NULL) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        int r = pthread_mutex_lock(&robust);
        if (r == EOWNERDEAD) {
            owner_dead++;
            CHECK(pthread_mutex_consistent(&robust) == 0);
        }
        CHECK(pthread_mutex_unlock(&robust) == 0);
    }
    printf("robust: %d of %d locks saw EOWNERDEAD\n", owner_dead, rounds);
}

/* ---- condition variable ping-pong ---------------------------------------------------- */
static pthread_mutex_t cv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long turn, cv_rounds;

static void *pong(void *arg)
{
    long me = (long)arg;
    for (;;) {
        pthread_mutex_lock(&cv_lock);
        while (turn % 2 != me && turn < 2 * cv_rounds) pthread_cond_wait(&cv, &cv_lock);
        if (turn >= 2 * cv_rounds) { pthread_mutex_unlock(&cv_lock); return NULL; }
        turn++;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&cv_lock);
    }
}

static void condvar_part(long rounds)
{
    cv_rounds = rounds;
    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, pong, (void *)0L) == 0);
    CHECK(pthread_create(&b, NULL, pong, (void *)1L) == 0);
    CHECK(pthread_join(a, NULL) == 0);
    CHECK(pthread_join(b, NULL) == 0);
    CHECK(turn == 2 * rounds);
    printf("condvar: %ld turns\n", turn);
}

/* ---- timed locks against a holder ---------------------------------------------------- */
static pthread_mutex_t timed = PTHREAD_MUTEX_INITIALIZER;
static volatile int holder_ready;
static void *hold_a_while(void *arg)
{
    pthread_mutex_lock(&timed);
    holder_ready = 1;
    struct timespec ts = {0, 60 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pthread_mutex_unlock(&timed);
    return arg;
}

static void timed_part(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, hold_a_while, NULL) == 0);
    while (!holder_ready) sched_yield();
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 5 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000; }
    int first = pthread_mutex_timedlock(&timed, &deadline);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    int second = pthread_mutex_timedlock(&timed, &deadline);
    CHECK(first == ETIMEDOUT && second == 0);
    pthread_mutex_unlock(&timed);
    CHECK(pthread_join(t, NULL) == 0);
    printf("timedlock: first %s, then %s\n", first == ETIMEDOUT ? "timed out" : "did not time out",
           second == 0 ? "locked" : "failed");
}

/* ---- a contended counter ------------------------------------------------------------- */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static long count;
static void *add_many(void *arg)
{
    long n = (long)arg, done = 0;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&count_lock);
        long c = count;       /* read, compute, write: a preemption inside must not matter */
        for (volatile int spin = 0; spin < 2000; spin++) {}
        count = c + 1;
        pthread_mutex_unlock(&count_lock);
        done++;
    }
    return (void *)done;
}

static void counter_part(int threads, long each)
{
    pthread_t t[16];
    for (int i = 0; i < threads; i++) {
        int r = pthread_create(&t[i], NULL, add_many, (void *)each);
        CHECK(r == 0);
        if (r) fprintf(stderr, "pthread_create %d: error %d\n", i, r);
    }
    for (int i = 0; i < threads; i++) {
        void *done = NULL;
        CHECK(pthread_join(t[i], &done) == 0);
        if ((long)done != each) fprintf(stderr, "thread %d did %ld of %ld\n", i, (long)done, each);
    }
    CHECK(count == threads * each);
    printf("counter: %ld\n", count);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 100000;
    setvbuf(stdout, NULL, _IONBF, 0);
    robust_part(20);
    condvar_part(rounds);
    timed_part();
    counter_part(4, rounds);
    return failures ? 1 : 0;
}

/* Threads: a mutex-protected counter, a condition-variable producer/consumer,
 * pthread_join and detached threads, a thread bomb against max_num_of_threads.
 * Exits non-zero (the number of the failed check) on a wrong result. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(n, cond) do { if (!(cond)) { fprintf(stderr, "check %d failed: %s\n", n, #cond); return n; } } while (0)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *add(void *arg) {
    long rounds = (long)arg;
    for (long i = 0; i < rounds; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return (void *)(rounds * 2);
}

#define SLOTS 4
static int queue[SLOTS], head, tail, count;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;

static void *producer(void *arg) {
    for (int i = 1; i <= 1000; i++) {
        pthread_mutex_lock(&lock);
        while (count == SLOTS) pthread_cond_wait(&not_full, &lock);
        queue[tail] = i; tail = (tail + 1) % SLOTS; count++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
    }
    return arg;
}

static void *consumer(void *arg) {
    long sum = 0;
    for (int i = 1; i <= 1000; i++) {
        pthread_mutex_lock(&lock);
        while (count == 0) pthread_cond_wait(&not_empty, &lock);
        sum += queue[head]; head = (head + 1) % SLOTS; count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&lock);
    }
    return (void *)sum;
}

static volatile int detached_ran;
static void *detached(void *arg) { __sync_fetch_and_add(&detached_ran, 1); return arg; }

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static void *sleeper(void *arg) { pthread_mutex_lock(&gate); pthread_mutex_unlock(&gate); return arg; }

static __thread int tls_value = 7;
static void *tls_check(void *arg) { tls_value += (int)(long)arg; return (void *)(long)tls_value; }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "all";
    if (!strcmp(mode, "all") || !strcmp(mode, "counter")) {
        pthread_t t[16];
        for (int i = 0; i < 16; i++) CHECK(1, pthread_create(&t[i], 0, add, (void *)2000L) == 0);
        for (int i = 0; i < 16; i++) { void *r; CHECK(2, pthread_join(t[i], &r) == 0 && r == (void *)4000L); }
        CHECK(3, counter == 16 * 2000);
        printf("counter %ld\n", counter);
    }
    if (!strcmp(mode, "all") || !strcmp(mode, "condvar")) {
        pthread_t p, c; void *sum;
        CHECK(4, pthread_create(&c, 0, consumer, 0) == 0 && pthread_create(&p, 0, producer, 0) == 0);
        CHECK(5, pthread_join(p, 0) == 0 && pthread_join(c, &sum) == 0);
        CHECK(6, (long)sum == 500500);
        printf("condvar sum %ld\n", (long)sum);
    }
    if (!strcmp(mode, "all") || !strcmp(mode, "detached")) {
        pthread_attr_t attr; pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        for (int i = 0; i < 8; i++) { pthread_t t; CHECK(7, pthread_create(&t, &attr, detached, 0) == 0); }
        for (int spins = 0; detached_ran < 8 && spins < 100000; spins++) sched_yield();
        CHECK(8, detached_ran == 8);
        pthread_t t; void *r;
        CHECK(9, pthread_create(&t, 0, tls_check, (void *)5L) == 0 && pthread_join(t, &r) == 0);
        CHECK(10, (long)r == 12 && tls_value == 7);
        printf("detached %d tls ok\n", detached_ran);
    }
    if (!strcmp(mode, "bomb")) {
        pthread_t t[64]; int made = 0, err = 0;
        pthread_attr_t attr; pthread_attr_init(&attr); pthread_attr_setstacksize(&attr, 65536);
        pthread_mutex_lock(&gate);
        while (made < 64 && (err = pthread_create(&t[made], &attr, sleeper, 0)) == 0) made++;
        CHECK(11, err == EAGAIN);
        pthread_mutex_unlock(&gate);
        for (int i = 0; i < made; i++) CHECK(12, pthread_join(t[i], 0) == 0);
        /* the enclave keeps running: threads can be made again */
        pthread_t again; CHECK(13, pthread_create(&again, 0, detached, 0) == 0 && pthread_join(again, 0) == 0);
        printf("bomb made %d then EAGAIN\n", made);
    }
    return 0;
}

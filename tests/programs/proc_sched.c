/* Scheduling: preemption (a child computes forever while the first process prints on
 * a timer and then exits, which ends the run), deadlocks that must be reported, not
 * hang, and poll/select over pipes. Run as /bin/proc_sched. */
#include <errno.h>
#include <fcntl.h>
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(n, cond) do { if (!(cond)) { fprintf(stderr, "check %d failed: %s (errno %d)\n", n, #cond, errno); return n; } } while (0)
extern char **environ;

static pthread_t main_thread, other_thread;

/* pipestress: records of at most PIPE_BUF bytes from two writer threads must arrive
 * whole and in order per writer; a byte stream written in odd sizes must arrive intact */
struct record { int writer, seq, len; unsigned char body[4000]; };
static int stress_fd;
static void *record_writer(void *arg) {
    int id = (int)(long)arg;
    struct record r;
    for (int seq = 0; seq < 300; seq++) {
        r.writer = id; r.seq = seq; r.len = 12 + (seq * 37 + id * 11) % 3988;
        memset(r.body, (seq + id) & 0xff, sizeof r.body);
        if (write(stress_fd, &r, r.len) != r.len) return (void *)1L;
    }
    return 0;
}
static unsigned char pattern(long i) { return (unsigned char)(i * 2654435761u >> 13); }
static void *stream_writer(void *arg) {
    static unsigned char buf[200000];
    long pos = 0, total = (long)arg;
    for (int k = 1; pos < total; k++) {
        long n = (k * 7919L) % 150000 + 1;
        if (n > total - pos) n = total - pos;
        for (long i = 0; i < n; i++) buf[i] = pattern(pos + i);
        if (write(stress_fd, buf, n) != n) return (void *)1L;
        pos += n;
    }
    close(stress_fd);
    return 0;
}
static void *join_main(void *arg) { pthread_join(main_thread, 0); return arg; }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "spin")) { volatile unsigned long x = 0; for (;;) x++; }
    if (!strcmp(mode, "preempt")) {
        char *args[] = {"/bin/proc_sched", "spin", 0};
        pid_t pid;
        CHECK(1, posix_spawn(&pid, "/bin/proc_sched", 0, 0, args, environ) == 0);
        for (int i = 0; i < 5; i++) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, 0);
            printf("tick %d\n", i);
            fflush(stdout);
        }
        return 0;                /* the spinning child is killed with the run */
    }
    if (!strcmp(mode, "deadlock-join")) {
        /* two threads each joining the other */
        main_thread = pthread_self();
        CHECK(2, pthread_create(&other_thread, 0, join_main, 0) == 0);
        pthread_join(other_thread, 0);
        return 0;
    }
    if (!strcmp(mode, "deadlock-pipe")) {
        int p[2]; char c;
        CHECK(3, pipe(p) == 0);
        read(p[0], &c, 1);      /* we hold the only write end: nobody ever writes */
        return 0;
    }
    if (!strcmp(mode, "poll")) {
        int p[2]; CHECK(4, pipe2(p, O_NONBLOCK) == 0);
        struct pollfd fds[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
        CHECK(5, poll(fds, 2, 0) == 1 && fds[0].revents == 0 && fds[1].revents == POLLOUT);
        char c; CHECK(6, read(p[0], &c, 1) == -1 && errno == EAGAIN);
        struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
        CHECK(7, poll(fds, 1, 30) == 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        CHECK(8, ms >= 25);
        CHECK(9, write(p[1], "x", 1) == 1 && poll(fds, 1, -1) == 1 && fds[0].revents == POLLIN);
        fd_set r, w; FD_ZERO(&r); FD_ZERO(&w); FD_SET(p[0], &r); FD_SET(p[1], &w);
        struct timeval tv = {1, 0};
        CHECK(10, select(p[1] + 1, &r, &w, 0, &tv) == 2 && FD_ISSET(p[0], &r) && FD_ISSET(p[1], &w));
        CHECK(11, read(p[0], &c, 1) == 1 && c == 'x');
        FD_ZERO(&r); FD_SET(p[0], &r); tv.tv_sec = 0; tv.tv_usec = 20000;
        CHECK(12, select(p[0] + 1, &r, 0, 0, &tv) == 0 && !FD_ISSET(p[0], &r));
        struct timespec ten = {0, 10 * 1000 * 1000};
        fds[0].revents = 99;
        CHECK(32, ppoll(fds, 1, &ten, 0) == 0 && fds[0].revents == 0);
        FD_ZERO(&r); FD_SET(p[0], &r);
        CHECK(33, pselect(p[0] + 1, &r, 0, 0, &ten, 0) == 0 && !FD_ISSET(p[0], &r));
        CHECK(34, write(p[1], "y", 1) == 1 && ppoll(fds, 1, 0, 0) == 1 && fds[0].revents == POLLIN);
        FD_ZERO(&r); FD_SET(p[0], &r);
        CHECK(35, pselect(p[0] + 1, &r, 0, 0, 0, 0) == 1 && FD_ISSET(p[0], &r) && read(p[0], &c, 1) == 1);
        /* a full pipe: 64 KiB, then EAGAIN */
        static char big[70000]; ssize_t n = write(p[1], big, sizeof big);
        CHECK(13, n == 65536 && write(p[1], big, 1) == -1 && errno == EAGAIN);
        close(p[0]);
        signal(13, SIG_IGN);
        CHECK(14, write(p[1], big, 1) == -1 && errno == EPIPE);
        printf("poll/select ok\n");
        return 0;
    }
    if (!strcmp(mode, "pipestress")) {
        int p[2]; CHECK(21, pipe(p) == 0);
        stress_fd = p[1];
        pthread_t a, b;
        CHECK(22, pthread_create(&a, 0, record_writer, (void *)1L) == 0 && pthread_create(&b, 0, record_writer, (void *)2L) == 0);
        int next[3] = {0, 0, 0};
        for (int got = 0; got < 600; got++) {
            struct record r;
            CHECK(23, read(p[0], &r, 12) == 12);
            CHECK(24, (r.writer == 1 || r.writer == 2) && r.seq == next[r.writer] && r.len >= 12 && r.len <= 4000);
            size_t have = 0;
            while (have < (size_t)r.len - 12) { ssize_t n = read(p[0], r.body + have, r.len - 12 - have); CHECK(25, n > 0); have += n; }
            for (int i = 0; i < r.len - 12; i++) CHECK(26, r.body[i] == ((r.seq + r.writer) & 0xff));
            next[r.writer]++;
        }
        void *ra, *rb;
        CHECK(27, pthread_join(a, &ra) == 0 && pthread_join(b, &rb) == 0 && !ra && !rb);
        long total = 20L << 20;
        pthread_t s;
        CHECK(28, pthread_create(&s, 0, stream_writer, (void *)total) == 0);
        static unsigned char in[100000];
        long pos = 0;
        for (int k = 1;; k++) {
            ssize_t n = read(p[0], in, (k * 104729L) % sizeof in + 1);
            CHECK(29, n >= 0);
            if (n == 0) break;
            for (ssize_t i = 0; i < n; i++) if (in[i] != pattern(pos + i)) { fprintf(stderr, "byte %ld\n", pos + i); return 30; }
            pos += n;
        }
        CHECK(31, pos == total && pthread_join(s, 0) == 0);
        printf("pipe stress ok\n");
        return 0;
    }
    if (!strcmp(mode, "sigpipe")) {
        int p[2]; CHECK(15, pipe(p) == 0);
        close(p[0]);
        write(p[1], "x", 1);
        return 0;                /* not reached: SIGPIPE's default action ends us */
    }
    if (!strcmp(mode, "kill")) {
        char *args[] = {"/bin/proc_sched", "spin", 0};
        pid_t pid; int st;
        CHECK(16, posix_spawn(&pid, "/bin/proc_sched", 0, 0, args, environ) == 0);
        CHECK(17, kill(pid, 0) == 0 && kill(pid, SIGTERM) == 0);
        CHECK(18, waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
        CHECK(19, kill(pid, 0) == -1 && errno == ESRCH);
        signal(SIGUSR1, SIG_IGN);
        CHECK(20, raise(SIGUSR1) == 0);        /* ignored: we carry on */
        printf("kill ok\n");
        fflush(stdout);
        abort();                               /* SIGABRT's default action: 128+6 */
    }
    return 100;
}

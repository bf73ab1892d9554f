/* LibOS core test: ids, uname, clocks, getrandom, EFAULT, ENOSYS, CPUID.
 * With an argument, runs only that probe and prints its result. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/sysinfo.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define CHECK(n, cond) do { if (!(cond)) { printf("check %d failed: %s (errno %d)\n", n, #cond, errno); return n; } } while (0)

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "getppid") == 0) {
        long r = syscall(SYS_getppid);
        printf("getppid=%ld errno=%d\n", r, r < 0 ? errno : 0);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "enosys") == 0) {
        long a = syscall(SYS_fork), b = syscall(SYS_fork);
        printf("fork=%ld,%ld errno=%d\n", a, b, errno);
        return 0;
    }
    CHECK(1, getpid() == 1 && syscall(SYS_gettid) == 1);
    struct utsname u;
    CHECK(2, uname(&u) == 0 && strcmp(u.machine, "x86_64") == 0 && strcmp(u.sysname, "Linux") == 0);
    struct timespec a, b;
    CHECK(3, clock_gettime(CLOCK_MONOTONIC, &a) == 0 && clock_gettime(CLOCK_MONOTONIC, &b) == 0);
    CHECK(4, b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec));
    CHECK(5, clock_gettime(CLOCK_REALTIME, &a) == 0 && a.tv_sec > 1600000000);
    CHECK(6, clock_gettime(12345, &a) == -1 && errno == EINVAL);
    unsigned char rnd[64] = {0};
    CHECK(7, getrandom(rnd, sizeof rnd, 0) == sizeof rnd);
    int nonzero = 0;
    for (int i = 0; i < 64; i++) nonzero |= rnd[i];
    CHECK(8, nonzero);
    CHECK(9, write(1, (void *)16, 4) == -1 && errno == EFAULT);
    CHECK(10, clock_gettime(CLOCK_MONOTONIC, (void *)16) == -1 && errno == EFAULT);
    CHECK(11, write(77, "x", 1) == -1 && errno == EBADF);
    CHECK(12, syscall(SYS_fork) == -1 && errno == ENOSYS);
    CHECK(13, syscall(100000) == -1 && errno == ENOSYS);
    __builtin_cpu_init();
    CHECK(14, __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt"));
    CHECK(15, !__builtin_cpu_supports("avx") && !__builtin_cpu_supports("avx2") && !__builtin_cpu_supports("fma"));
    struct timespec nap = {0, 1000000};
    CHECK(16, nanosleep(&nap, NULL) == 0);
    /* sysinfo reports the enclave's user space (256 MiB in the tests) */
    struct sysinfo si;
    CHECK(17, sysinfo(&si) == 0 && si.mem_unit == 1 && si.totalram == 256UL << 20);
    CHECK(18, si.freeram > 0 && si.freeram < si.totalram && si.procs == 1);
    cpu_set_t cpus;
    CHECK(19, sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) >= 1);
    /* dispositions and masks are recorded and reported back */
    struct sigaction sa = {0}, old = {0};
    sa.sa_handler = SIG_IGN;
    CHECK(20, sigaction(SIGUSR1, &sa, NULL) == 0 && sigaction(SIGUSR1, NULL, &old) == 0);
    CHECK(21, old.sa_handler == SIG_IGN);
    CHECK(22, sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL);
    sigset_t set, got;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGKILL);
    CHECK(23, sigprocmask(SIG_BLOCK, &set, NULL) == 0 && sigprocmask(SIG_BLOCK, NULL, &got) == 0);
    CHECK(24, sigismember(&got, SIGUSR2) && !sigismember(&got, SIGKILL));
    printf("misc ok\n");
    return 0;
}

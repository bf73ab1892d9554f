/* /proc and /dev in the LibOS. argv[1]: what /proc/self/exe must show. Writes
 * "to stdout via /dev/stdout" and "to stdout via /dev/fd/1" on stdout; prints failed
 * checks and exits with their number, "fs proc ok" when all pass. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fails;
#define CHECK(cond) do { if (!(cond)) { printf("FAIL line %d: %s (errno %d: %s)\n", __LINE__, #cond, \
                                               errno, strerror(errno)); fails++; } } while (0)

static char text[65536];

static int slurp(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int total = 0, n;
    while ((n = read(fd, text + total, sizeof text - 1 - total)) > 0) total += n;
    close(fd);
    text[total] = 0;
    return n < 0 ? -1 : total;
}

static int all_zero(const unsigned char *p, int n) {
    for (int i = 0; i < n; i++) if (p[i]) return 0;
    return 1;
}

int main(int argc, char **argv) {
    char buf[4096];
    if (argc < 2) return 100;
    /* /proc/self */
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    CHECK(n > 0);
    buf[n > 0 ? n : 0] = 0;
    if (strcmp(buf, argv[1])) printf("exe is %s, expected %s\n", buf, argv[1]);
    CHECK(strcmp(buf, argv[1]) == 0);
    n = readlink("/proc/self", buf, sizeof buf - 1);
    CHECK(n > 0 && atoi((buf[n] = 0, buf)) == getpid());
    struct stat st;
    CHECK(stat("/proc/self", &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(slurp("/proc/self/maps") > 0 && strstr(text, argv[1]) && strstr(text, "[stack]") && strstr(text, "[heap]"));
    CHECK(strstr(text, "r-xp") != NULL);
    int len = slurp("/proc/self/cmdline");
    int expect = 0;
    for (int i = 0; i < argc; i++) expect += strlen(argv[i]) + 1;
    CHECK(len == expect && strcmp(text, argv[0]) == 0 && strcmp(text + strlen(argv[0]) + 1, argv[1]) == 0);
    snprintf(buf, sizeof buf, "/proc/%d/cmdline", getpid());
    CHECK(slurp(buf) == expect);
    snprintf(buf, sizeof buf, "/proc/%d/stat", getpid());
    char head[32];
    snprintf(head, sizeof head, "%d (", getpid());
    CHECK(slurp(buf) > 0 && strncmp(text, head, strlen(head)) == 0);
    CHECK(slurp("/proc/self/comm") > 0 && text[strlen(text) - 1] == '\n');
    CHECK(open("/proc/self/maps", O_WRONLY) == -1 && errno == EACCES);
    CHECK(open("/proc/99999/cmdline", O_RDONLY) == -1 && errno == ENOENT);
    /* cpuinfo agrees with CPUID: SSE4.2 and AES, no AVX */
    CHECK(slurp("/proc/cpuinfo") > 0 && strstr(text, "flags") && strstr(text, " sse4_2") && strstr(text, " aes"));
    CHECK(strstr(text, " avx") == NULL && strstr(text, " fma") == NULL && strstr(text, "processor"));
    __builtin_cpu_init();
    CHECK(__builtin_cpu_supports("sse4.2") && !__builtin_cpu_supports("avx"));
    long total = 0, free_kb = 0;
    CHECK(slurp("/proc/meminfo") > 0 && sscanf(strstr(text, "MemTotal:"), "MemTotal: %ld kB", &total) == 1);
    CHECK(sscanf(strstr(text, "MemFree:"), "MemFree: %ld kB", &free_kb) == 1);
    CHECK(total > 0 && free_kb > 0 && free_kb < total);
    /* /proc/self/fd */
    int fd = open("/proc/cpuinfo", O_RDONLY);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
    char target[256];
    n = readlink(buf, target, sizeof target - 1);
    CHECK(n > 0 && (target[n] = 0, strcmp(target, "/proc/cpuinfo") == 0));
    DIR *d = opendir("/proc/self/fd");
    int seen = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') seen |= 1 << (atoi(e->d_name) < 8 ? atoi(e->d_name) : 8);
    CHECK(d && (seen & 7) == 7 && (seen & (1 << fd)));
    if (d) closedir(d);
    close(fd);
    /* /dev */
    fd = open("/dev/null", O_RDWR);
    CHECK(fd >= 0 && read(fd, buf, 10) == 0 && write(fd, "x", 1) == 1);
    CHECK(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode));
    close(fd);
    fd = open("/dev/zero", O_RDONLY);
    memset(buf, 1, 100);
    CHECK(fd >= 0 && read(fd, buf, 100) == 100 && all_zero((unsigned char *)buf, 100));
    unsigned char *z = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(z != MAP_FAILED && all_zero(z, 8192));
    z = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(z != MAP_FAILED && all_zero(z, 8192) && (z[100] = 1) == 1 && munmap(z, 8192) == 0);
    close(fd);
    const char *randoms[] = {"/dev/urandom", "/dev/random", "/dev/arandom"};
    for (int i = 0; i < 3; i++) {
        fd = open(randoms[i], O_RDONLY);
        memset(buf, 0, 64);
        CHECK(fd >= 0 && read(fd, buf, 64) == 64 && !all_zero((unsigned char *)buf, 64));
        close(fd);
    }
    fd = open("/dev/stdout", O_WRONLY);
    CHECK(fd >= 0 && write(fd, "to stdout via /dev/stdout\n", 26) == 26);
    close(fd);
    fd = open("/dev/fd/1", O_WRONLY);
    CHECK(fd >= 0 && write(fd, "to stdout via /dev/fd/1\n", 24) == 24);
    close(fd);
    CHECK(lstat("/dev/stdin", &st) == 0 && S_ISLNK(st.st_mode));
    n = readlink("/dev/fd", buf, sizeof buf - 1);
    CHECK(n > 0 && (buf[n] = 0, strcmp(buf, "/proc/self/fd") == 0));
    /* /dev/shm is a ramfs */
    fd = open("/dev/shm/segment", O_CREAT | O_RDWR, 0600);
    CHECK(fd >= 0 && write(fd, "shared", 6) == 6 && pread(fd, buf, 6, 0) == 6 && memcmp(buf, "shared", 6) == 0);
    close(fd);
    CHECK(unlink("/dev/shm/segment") == 0);
    /* a file mapping: private copy, shared read-only */
    fd = open("/dev/shm/mapped", O_CREAT | O_RDWR, 0600);
    CHECK(fd >= 0 && write(fd, "mapped file contents", 20) == 20);
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED && memcmp(p, "mapped file contents", 20) == 0 && p[20] == 0);
    if (p != MAP_FAILED) {
        p[0] = 'M';
        CHECK(pread(fd, buf, 1, 0) == 1 && buf[0] == 'm');      /* private: the file is unchanged */
        munmap(p, 4096);
    }
    p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED && memcmp(p, "mapped file contents", 20) == 0);
    if (p != MAP_FAILED) munmap(p, 4096);
    int wo = open("/dev/shm/mapped", O_WRONLY);
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, wo, 0) == MAP_FAILED && errno == EACCES);
    close(wo);
    close(fd);
    /* the mount points show in / */
    d = opendir("/");
    seen = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, "proc")) seen |= 1;
        if (!strcmp(e->d_name, "dev")) seen |= 2;
    }
    CHECK(seen == 3);
    if (d) closedir(d);
    CHECK(rmdir("/proc") == -1 && errno == EBUSY);
    CHECK(rename("/dev/shm/none", "/x") == -1 && (errno == ENOENT || errno == EXDEV));
    CHECK(link("/proc/cpuinfo", "/cpuinfo") == -1 && errno == EXDEV);
    if (fails) {
        printf("%d checks failed\n", fails);
        return fails > 99 ? 99 : fails;
    }
    printf("fs proc ok\n");
    return 0;
}

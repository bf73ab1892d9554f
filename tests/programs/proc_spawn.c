/* Processes: posix_spawn with file actions and pipes, spawn chains, vfork + execve,
 * execve with a new argv and environment, wait4 statuses. Run as /bin/proc_spawn.
 * Exits non-zero (the number of the failed check) on a wrong result. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(n, cond) do { if (!(cond)) { fprintf(stderr, "check %d failed: %s (errno %d)\n", n, #cond, errno); return n; } } while (0)
#define SELF "/bin/proc_spawn"
extern char **environ;

static pid_t spawn(char *const argv[], posix_spawn_file_actions_t *fa) {
    pid_t pid;
    int err = posix_spawn(&pid, SELF, fa, 0, argv, environ);
    if (err) { errno = err; return -1; }
    return pid;
}

static int child_mode(int argc, char **argv) {
    const char *mode = argv[1];
    if (!strcmp(mode, "echo")) { printf("hello from pid %d ppid %d\n", getpid(), getppid()); return 0; }
    if (!strcmp(mode, "exit")) return atoi(argv[2]);
    if (!strcmp(mode, "segv")) { *(volatile int *)16 = 1; return 0; }
    if (!strcmp(mode, "drain")) { char b[64]; while (read(0, b, sizeof b) > 0) {} return 5; }
    if (!strcmp(mode, "execd")) {
        const char *v = getenv("PROC_VALUE");
        if (argc != 4 || strcmp(argv[2], "second") || strcmp(argv[3], "third") || !v || strcmp(v, "42")) return 20;
        if (getenv("PROC_GONE")) return 21;
        if (fcntl(3, F_GETFD) != -1 || errno != EBADF) return 22;   /* it was close-on-exec */
        if (fcntl(4, F_GETFD) != 0) return 23;                      /* it was not */
        return 9;
    }
    if (!strcmp(mode, "parentof")) {          /* spawns a grandchild and leaves at once */
        char *args[] = {SELF, "grandchild", 0};
        return spawn(args, 0) > 0 ? 0 : 50;
    }
    if (!strcmp(mode, "grandchild")) {        /* outlives its parent: adopted by pid 1 */
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, 0);
        return getppid() == 1 ? 0 : 51;
    }
    if (!strcmp(mode, "chain")) {
        int depth = atoi(argv[2]);
        if (depth == 0) return 40;
        char d[16]; snprintf(d, sizeof d, "%d", depth - 1);
        char *args[] = {SELF, "chain", d, 0};
        pid_t pid = spawn(args, 0);
        if (pid < 0) return 30;
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return 31;
        return WEXITSTATUS(st) + 1;
    }
    return -1;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "all";
    int r = argc > 1 ? child_mode(argc, argv) : -1;
    if (r != -1) return r;
    int all = !strcmp(mode, "all");
    if (all || !strcmp(mode, "pipe")) {
        int p[2];
        CHECK(1, pipe2(p, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        char *args[] = {SELF, "echo", 0};
        pid_t pid = spawn(args, &fa);
        CHECK(2, pid > 1);
        close(p[1]);
        char buf[128] = {0}; size_t got = 0; ssize_t n;
        while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0) got += n;
        char want[128]; snprintf(want, sizeof want, "hello from pid %d ppid %d\n", pid, getpid());
        CHECK(3, strcmp(buf, want) == 0);
        int st; CHECK(4, waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        close(p[0]);
        printf("pipe: %s", buf);
    }
    if (all || !strcmp(mode, "chains")) {
        char *args[] = {SELF, "chain", "3", 0};
        pid_t pid = spawn(args, 0);
        int st; CHECK(5, pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 43);
        printf("chain: %d\n", WEXITSTATUS(st));
    }
    if (all || !strcmp(mode, "vfork")) {
        int keep = open("/bin", O_RDONLY | O_DIRECTORY);           /* lands on 3: close-on-exec below */
        CHECK(6, keep == 3 && fcntl(3, F_SETFD, FD_CLOEXEC) == 0 && dup2(0, 4) == 4);
        pid_t pid = vfork();
        if (pid == 0) {
            char *args[] = {"renamed", "execd", "second", "third", 0};
            char *env[] = {"PROC_VALUE=42", 0};
            execve(SELF, args, env);
            _exit(99);
        }
        int st; CHECK(7, pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 9);
        pid = vfork();
        if (pid == 0) { execve("/bin/does-not-exist", argv, environ); _exit(errno == ENOENT ? 3 : 4); }
        CHECK(8, pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 3);
        close(3); close(4);
        printf("vfork+exec ok\n");
    }
    if (all || !strcmp(mode, "wait")) {
        char *e3[] = {SELF, "exit", "3", 0}, *segv[] = {SELF, "segv", 0}, *drain[] = {SELF, "drain", 0};
        pid_t a = spawn(e3, 0), b = spawn(segv, 0);
        int p[2]; CHECK(9, pipe(p) == 0);
        posix_spawn_file_actions_t fa; posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[0], 0);
        posix_spawn_file_actions_addclose(&fa, p[1]);
        pid_t c = spawn(drain, &fa);
        close(p[0]);
        CHECK(10, a > 0 && b > 0 && c > 0);
        int st;
        CHECK(11, waitpid(c, &st, WNOHANG) == 0);             /* c waits for our end of the pipe */
        CHECK(12, waitpid(a, &st, 0) == a && WIFEXITED(st) && WEXITSTATUS(st) == 3);
        CHECK(13, waitpid(b, &st, 0) == b && WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
        CHECK(14, write(p[1], "data", 4) == 4 && close(p[1]) == 0);
        struct rusage ru; memset(&ru, 0xff, sizeof ru);
        CHECK(15, wait4(-1, &st, 0, &ru) == c && WIFEXITED(st) && WEXITSTATUS(st) == 5 && ru.ru_utime.tv_sec == 0);
        CHECK(16, waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD);
        CHECK(17, getpgrp() == getpgid(0) && getsid(0) > 0);
        printf("wait statuses ok\n");
    }
    if (all || !strcmp(mode, "orphan")) {
        char *args[] = {SELF, "parentof", 0};
        pid_t pid = spawn(args, 0);
        int st;
        CHECK(18, pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        pid_t orphan = wait(&st);                 /* the grandchild is ours now */
        CHECK(19, orphan > pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        printf("orphan adopted\n");
    }
    return 0;
}

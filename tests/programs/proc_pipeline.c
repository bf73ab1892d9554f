/* A pipeline of three LibOS processes, as a shell would build it:
 *   /bin/gen N | /bin/filter | /bin/count
 * One program, installed under four names; what it does depends on argv[0]'s
 * basename. /bin/pipeline N spawns the three with pipes and
 * posix_spawn_file_actions_adddup2, waits for them, and exits with count's status
 * (0 when the count and sum of the even numbers up to N are right). */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *base(const char *path) { const char *s = strrchr(path, '/'); return s ? s + 1 : path; }

static pid_t start(const char *path, char *arg, int in, int out, int close1, int close2) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in >= 0) posix_spawn_file_actions_adddup2(&fa, in, 0);
    if (out >= 0) posix_spawn_file_actions_adddup2(&fa, out, 1);
    if (close1 >= 0) posix_spawn_file_actions_addclose(&fa, close1);
    if (close2 >= 0) posix_spawn_file_actions_addclose(&fa, close2);
    char *argv[] = {(char *)path, arg, 0};
    pid_t pid;
    if (posix_spawn(&pid, path, &fa, 0, argv, environ) != 0) return -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

int main(int argc, char **argv) {
    const char *me = base(argv[0]);
    long n = argc > 1 ? atol(argv[1]) : 1000;
    if (!strcmp(me, "gen")) {
        for (long i = 1; i <= n; i++) printf("%ld\n", i);
        return 0;
    }
    if (!strcmp(me, "filter")) {
        char line[64];
        while (fgets(line, sizeof line, stdin)) if (atol(line) % 2 == 0) fputs(line, stdout);
        return 0;
    }
    if (!strcmp(me, "count")) {
        char line[64]; long count = 0, sum = 0;
        while (fgets(line, sizeof line, stdin)) { count++; sum += atol(line); }
        printf("count=%ld sum=%ld\n", count, sum);
        long want = n / 2;
        return count == want && sum == want * (want + 1) ? 0 : 3;
    }
    /* the pipeline itself */
    int a[2], b[2];
    /* close-on-exec: each child keeps only the ends dup2 gave it */
    if (pipe2(a, O_CLOEXEC) || pipe2(b, O_CLOEXEC)) return 10;
    char nbuf[32]; snprintf(nbuf, sizeof nbuf, "%ld", n);
    pid_t gen = start("/bin/gen", nbuf, -1, a[1], a[0], -1);
    pid_t filter = start("/bin/filter", nbuf, a[0], b[1], a[1], b[0]);
    pid_t count = start("/bin/count", nbuf, b[0], -1, b[1], a[0]);
    close(a[0]); close(a[1]); close(b[0]); close(b[1]);
    if (gen < 0 || filter < 0 || count < 0) return 11;
    int st, status = 12;
    for (int i = 0; i < 3; i++) {
        pid_t pid = wait(&st);
        if (pid < 0 || !WIFEXITED(st)) return 13;
        if (pid == count) status = WEXITSTATUS(st);
        else if (WEXITSTATUS(st) != 0) return 14;
    }
    return status;
}

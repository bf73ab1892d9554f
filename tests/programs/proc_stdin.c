/* A read of the host's stdin must park only the reading thread: the first process
 * spawns a child that prints (on its own, while the parent reads), then reads a line
 * from stdin and echoes it. */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc > 1) {
        /* the child: wait until the parent is surely blocked in read, then print */
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, 0);
        printf("child ran while the parent read stdin\n");
        return 0;
    }
    char *args[] = {"/bin/proc_stdin", "child", 0};
    pid_t pid;
    if (posix_spawn(&pid, "/bin/proc_stdin", 0, 0, args, environ) != 0) return 2;
    char line[128] = {0};
    ssize_t n = read(0, line, sizeof line - 1);
    if (n <= 0) return 3;
    int st;
    if (waitpid(pid, &st, 0) != pid || st != 0) return 4;
    printf("parent read: %s", line);
    return 0;
}
